//! The Postgres type of each column a plan produces.
//!
//! DataFusion has types Postgres lacks (unsigned integers from
//! `row_number()` and `rank()`, the `Null` type of an untyped `NULL`).
//! The RowDescription, the rows, and `pg_typeof()` all go through
//! [`postgres_schema`], so a client is told one type and reads that type.

use std::sync::Arc;

use apiary_engine::catalog::types::SQL_TYPE_KEY;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion_postgres::arrow_pg::datatypes::{
    arrow_schema_to_pg_fields, field_into_pg_type, into_pg_type, PG_OID_ALIAS_KEY,
};
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::types::format::FormatOptions;

use crate::compat::sent_name;
use crate::origins::{ATTNUM_KEY, TABLE_OID_KEY};

/// The type a column of `data_type` is sent as.
pub fn postgres_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Null => DataType::Utf8,
        DataType::List(element) => DataType::List(Arc::new(
            element
                .as_ref()
                .clone()
                .with_data_type(postgres_type(element.data_type())),
        )),
        other => other.clone(),
    }
}

/// RowDescription fields for `schema`: arrow-pg's, with a column declared
/// `varchar(n)` or `char(n)` (its field's [`SQL_TYPE_KEY`]) sent as that
/// type rather than as `text`.
pub fn pg_fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    let fields = arrow_schema_to_pg_fields(&without_stale_oid_kinds(schema), format, options)?;
    let fields = fields
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            if let Some(array) = oid_array_field_type(field) {
                return FieldInfo::new(
                    info.name().into(),
                    info.table_id(),
                    info.column_id(),
                    array,
                    info.format(),
                )
                .with_format_options(info.format_options().clone());
            }
            let declared = declared_string_type(field);
            match declared {
                // A length's type modifier counts Postgres's 4-byte header;
                // none is -1.
                Some((ty, modifier)) => FieldInfo::new(
                    info.name().into(),
                    info.table_id(),
                    info.column_id(),
                    ty,
                    info.format(),
                )
                .with_format_options(info.format_options().clone())
                .with_type_modifier(modifier),
                None => info,
            }
        })
        .collect();
    Ok(with_origins(fields, schema))
}

/// `fields` with the table OID and attribute number that `described`'s
/// fields carry (origins.rs); 0 stays where they carry none.
pub fn with_origins(fields: Vec<FieldInfo>, described: &Schema) -> Vec<FieldInfo> {
    fields
        .into_iter()
        .zip(described.fields())
        .map(|(info, field)| {
            let value = |key: &str| field.metadata().get(key);
            let table = value(TABLE_OID_KEY).and_then(|v| v.parse::<i32>().ok());
            let attnum = value(ATTNUM_KEY).and_then(|v| v.parse::<i16>().ok());
            let (Some(table), Some(attnum)) = (table, attnum) else {
                return info;
            };
            FieldInfo::new(
                info.name().into(),
                Some(table),
                Some(attnum),
                info.datatype().clone(),
                info.format(),
            )
            .with_format_options(info.format_options().clone())
            .with_type_size(info.type_size())
            .with_type_modifier(info.type_modifier())
        })
        .collect()
}

/// `schema` without the OID kind on columns that are no longer OIDs: a
/// cast keeps its input's metadata, so `typelem::regtype::text` would be
/// described as `oid` while its values are text. `regproc` columns are
/// the exception: they hold function names (see `regproc.rs`).
fn without_stale_oid_kinds(schema: &Schema) -> Schema {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|field| {
            let kind = field.metadata().get(PG_OID_ALIAS_KEY).map(String::as_str);
            let stale = kind.is_some_and(|kind| kind != "regproc")
                && !matches!(field.data_type(), DataType::Int32 | DataType::UInt32);
            if stale {
                let mut metadata = field.metadata().clone();
                metadata.remove(PG_OID_ALIAS_KEY);
                Arc::new(field.as_ref().clone().with_metadata(metadata))
            } else {
                field.clone()
            }
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// The Postgres type a parameter of `data_type` is described as: an
/// array of OIDs (`$1::oid[]`) is `oid[]` (or `regtype[]`, …), as its
/// elements' kind says; anything else by its Arrow type.
pub fn parameter_type(data_type: &DataType) -> PgWireResult<Type> {
    if let DataType::List(element) = data_type {
        if let Some(array) = oid_array_type(element.metadata().get(PG_OID_ALIAS_KEY)) {
            return Ok(array);
        }
    }
    into_pg_type(data_type)
}

/// The array type of a list column whose field carries an OID kind
/// (`array_agg(atttypid)`, see `oid_arrays.rs`).
fn oid_array_field_type(field: &Field) -> Option<Type> {
    match field.data_type() {
        DataType::List(element)
            if matches!(element.data_type(), DataType::Int32 | DataType::UInt32) =>
        {
            oid_array_type(field.metadata().get(PG_OID_ALIAS_KEY))
        }
        _ => None,
    }
}

/// `oid[]`, `regtype[]`, … for an OID kind.
fn oid_array_type(kind: Option<&String>) -> Option<Type> {
    match kind.map(String::as_str)? {
        "oid" => Some(Type::OID_ARRAY),
        "regtype" => Some(Type::REGTYPE_ARRAY),
        "regclass" => Some(Type::REGCLASS_ARRAY),
        "regproc" => Some(Type::REGPROC_ARRAY),
        "regnamespace" => Some(Type::REGNAMESPACE_ARRAY),
        "regrole" => Some(Type::REGROLE_ARRAY),
        _ => None,
    }
}

/// The type and type modifier of a column declared `varchar`,
/// `varchar(n)` or `char(n)` (its field's [`SQL_TYPE_KEY`]).
fn declared_string_type(field: &Field) -> Option<(Type, i32)> {
    let declared = field.metadata().get(SQL_TYPE_KEY)?;
    let (base, modifier) = match declared.split_once('(') {
        Some((base, rest)) => (base, rest.strip_suffix(')')?.parse::<i32>().ok()? + 4),
        None => (declared.as_str(), -1),
    };
    let ty = match base {
        "varchar" => Type::VARCHAR,
        "char" => Type::BPCHAR,
        "unknown" => Type::UNKNOWN,
        _ => return None,
    };
    Some((ty, modifier))
}

/// `schema` with each column in the type and under the name it is sent
/// with.
pub fn postgres_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_name(sent_name(f.name()))
                    .with_data_type(postgres_type(f.data_type()))
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// What `regtypeout` writes for a type: its SQL name (`integer`,
/// `timestamp with time zone`, `text[]`).
pub fn type_name(oid: u32) -> String {
    let Some(ty) = Type::from_oid(oid) else {
        return oid.to_string();
    };
    // An array type's name is its element's with a leading underscore.
    match ty.name().strip_prefix('_') {
        Some(element) => format!("{}[]", sql_name(element)),
        None => sql_name(ty.name()).into(),
    }
}

/// The SQL name of the type Postgres calls `name` internally (`int4` is
/// `integer`), as `regtypeout` and `information_schema` write it.
pub fn sql_name(name: &str) -> &str {
    match name {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "varchar" => "character varying",
        "bpchar" => "character",
        "char" => "\"char\"",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        other => other,
    }
}

/// Field metadata marking a `regtype` column whose text form is the
/// type's name (`pg_typeof()`). The system catalogs' oid columns carry the
/// crate's `regtype` tag too, but clients read those as numbers.
pub const TYPE_NAME_KEY: &str = "apiary.type_name";

/// `pg_typeof(x)`: the Postgres type `x` is sent as, a `regtype` (an oid
/// that reads as the type's name).
pub fn pg_typeof() -> ScalarUDF {
    ScalarUDF::from(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Int32, false).with_metadata(
                [
                    (PG_OID_ALIAS_KEY.to_string(), "regtype".to_string()),
                    (TYPE_NAME_KEY.to_string(), "true".to_string()),
                ]
                .into(),
            ),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let field = &args.arg_fields[0];
        let sent = Arc::new(
            field
                .as_ref()
                .clone()
                .with_data_type(postgres_type(field.data_type())),
        );
        let oid = match declared_string_type(field) {
            Some((ty, _)) => ty.oid(),
            None => field_into_pg_type(&sent).map_or(Type::UNKNOWN.oid(), |ty| ty.oid()),
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(oid as i32))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_like_regtype() {
        assert_eq!(type_name(Type::INT4.oid()), "integer");
        assert_eq!(
            type_name(Type::TIMESTAMPTZ.oid()),
            "timestamp with time zone"
        );
        assert_eq!(type_name(Type::TEXT_ARRAY.oid()), "text[]");
        assert_eq!(type_name(Type::NUMERIC.oid()), "numeric");
    }
}
