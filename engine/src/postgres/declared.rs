//! SQL types whose declaration Arrow cannot hold: `varchar(n)`, `char(n)`
//! and an unconstrained `numeric`.
//!
//! DataFusion plans `x::varchar(3)` as a cast to text and forgets the
//! length, so the value is not cut to 3 characters and the column is not
//! reported as `varchar`; it plans `5::numeric` as `numeric(38, 10)`, so
//! the value is written `5.0000000000` where Postgres keeps the operand's
//! scale. [`DeclaredTypes`] plans these types as Arrow types whose field
//! carries the declaration (`apiary.sql_type`, as a frame's declared
//! columns do); the Postgres rules then give the casts their meaning:
//! [`BoundText`] cuts (and for `char`, pads) the text, and a cast to an
//! unconstrained `numeric` takes the operand's scale.

use std::collections::HashMap;
use std::sync::Arc;

use apiary_catalog::types::SQL_TYPE_KEY;
use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType as SqlType, ExactNumberInfo,
};

use super::columnar;

/// The declaration an unconstrained `numeric` carries.
pub const UNCONSTRAINED_NUMERIC: &str = "numeric";

/// Plans `varchar(n)`, `char(n)` and `numeric` with their declaration; other
/// types go to `inner` (the gateway's planner for `regclass` and kin).
#[derive(Debug, Default)]
pub struct DeclaredTypes {
    inner: Option<Arc<dyn TypePlanner>>,
}

impl DeclaredTypes {
    /// This planner in front of `inner`.
    pub fn over(inner: Arc<dyn TypePlanner>) -> Self {
        DeclaredTypes { inner: Some(inner) }
    }
}

/// A field of `data_type` declared as `declared`.
fn declared_field(data_type: DataType, declared: String) -> FieldRef {
    Arc::new(
        Field::new("", data_type, true)
            .with_metadata(HashMap::from([(SQL_TYPE_KEY.to_string(), declared)])),
    )
}

/// The length of `char(n)`/`varchar(n)`, if it is a number.
fn length(length: &Option<CharacterLength>) -> Option<u64> {
    match length {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
        _ => None,
    }
}

impl TypePlanner for DeclaredTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        let declared = match sql_type {
            SqlType::Varchar(n) | SqlType::CharacterVarying(n) => match length(n) {
                Some(n) => Some((DataType::Utf8, format!("varchar({n})"))),
                None => Some((DataType::Utf8, "varchar".to_string())),
            },
            SqlType::Char(n) | SqlType::Character(n) => {
                Some((DataType::Utf8, format!("char({})", length(n).unwrap_or(1))))
            }
            SqlType::Numeric(ExactNumberInfo::None)
            | SqlType::Decimal(ExactNumberInfo::None)
            | SqlType::Dec(ExactNumberInfo::None) => Some((
                DataType::Decimal128(38, 10),
                UNCONSTRAINED_NUMERIC.to_string(),
            )),
            _ => None,
        };
        if let Some(kind) = oid_array_kind(sql_type) {
            // `oid[]` (asyncpg's `$1::oid[]`): the elements keep their OID
            // kind, so the array is described as `oid[]`, not `int4[]`.
            let element = Field::new_list_field(DataType::Int32, true)
                .with_metadata(HashMap::from([(OID_ALIAS_KEY.to_string(), kind)]));
            let list = DataType::List(Arc::new(element));
            return Ok(Some(Arc::new(Field::new("", list, true))));
        }
        if is_quoted_char(sql_type) {
            // Postgres's one-byte `"char"` (`relkind`, `typtype`): text here,
            // as the catalogs keep those columns.
            return Ok(Some(Arc::new(Field::new("", DataType::Utf8, true))));
        }
        match (declared, &self.inner) {
            (Some((data_type, declared)), _) => Ok(Some(declared_field(data_type, declared))),
            (None, Some(inner)) => inner.plan_type_field(sql_type),
            (None, None) => Ok(None),
        }
    }
}

/// Field metadata naming the OID kind of an `Int32` (`oid`, `regtype`, …),
/// as the catalogs' columns carry it.
pub const OID_ALIAS_KEY: &str = "pg.oid_alias";

/// The element kind of `oid[]`, `regtype[]`, `regclass[]`, … .
fn oid_array_kind(sql_type: &SqlType) -> Option<String> {
    let SqlType::Array(ArrayElemTypeDef::SquareBracket(element, _)) = sql_type else {
        return None;
    };
    let SqlType::Custom(name, modifiers) = element.as_ref() else {
        return None;
    };
    let kind = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    let is_oid = matches!(
        kind.as_str(),
        "oid" | "regtype" | "regclass" | "regproc" | "regnamespace" | "regrole"
    );
    (modifiers.is_empty() && is_oid).then_some(kind)
}

/// `"char"`, quoted: the catalogs' single-character type, not `char(1)`.
fn is_quoted_char(sql_type: &SqlType) -> bool {
    match sql_type {
        SqlType::Custom(name, modifiers) if modifiers.is_empty() => match name.0.as_slice() {
            [part] => part
                .as_ident()
                .is_some_and(|ident| ident.quote_style == Some('"') && ident.value == "char"),
            _ => false,
        },
        _ => false,
    }
}

/// The length and padding of a `varchar(n)`/`char(n)` declaration.
pub fn bounded(declared: &str) -> Option<(i64, bool)> {
    let (base, rest) = declared.split_once('(')?;
    let limit = rest.strip_suffix(')')?.parse().ok()?;
    match base {
        "varchar" => Some((limit, false)),
        "char" => Some((limit, true)),
        _ => None,
    }
}

/// `bound_text(text, n, pad)`: an explicit cast to `varchar(n)` (or, with
/// `pad`, `char(n)`): the text cut to `n` characters, a `char` padded with
/// spaces to `n`. The result's field carries the declaration.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BoundText {
    signature: Signature,
}

impl Default for BoundText {
    fn default() -> Self {
        BoundText {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for BoundText {
    fn name(&self) -> &str {
        "bound_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args.len() {
            3 => Ok(vec![DataType::Utf8, DataType::Int64, DataType::Boolean]),
            _ => plan_err!("bound_text takes (text, length, pad)"),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let constant = |i: usize| args.scalar_arguments.get(i).copied().flatten();
        let declared = match (constant(1), constant(2)) {
            (Some(ScalarValue::Int64(Some(n))), Some(ScalarValue::Boolean(Some(pad)))) => {
                format!("{}({n})", if *pad { "char" } else { "varchar" })
            }
            _ => "varchar".to_string(),
        };
        Ok(declared_field(DataType::Utf8, declared))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (limit, pad) = match (&args.args[1], &args.args[2]) {
            (
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))),
                ColumnarValue::Scalar(ScalarValue::Boolean(Some(pad))),
            ) => (usize::try_from(*n).unwrap_or(0), *pad),
            _ => return plan_err!("bound_text takes a constant length and padding"),
        };
        let text = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(text.len(), text.len() * limit);
        for value in text.iter() {
            match value {
                Some(value) => {
                    let mut bounded: String = value.chars().take(limit).collect();
                    if pad {
                        let short = limit.saturating_sub(bounded.chars().count());
                        bounded.extend(std::iter::repeat_n(' ', short));
                    }
                    out.append_value(bounded);
                }
                None => out.append_null(),
            }
        }
        columnar(&args.args[..1], Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_read_back() {
        assert_eq!(bounded("varchar(3)"), Some((3, false)));
        assert_eq!(bounded("char(10)"), Some((10, true)));
        assert_eq!(bounded("varchar"), None);
        assert_eq!(bounded(UNCONSTRAINED_NUMERIC), None);
    }

    #[test]
    fn lengths_and_unconstrained_numerics_are_kept() {
        let planner = DeclaredTypes::default();
        let declared = |t: SqlType| {
            planner
                .plan_type_field(&t)
                .unwrap()
                .map(|f| f.metadata()[SQL_TYPE_KEY].clone())
        };
        let three = Some(CharacterLength::IntegerLength {
            length: 3,
            unit: None,
        });
        assert_eq!(
            declared(SqlType::Varchar(three)).as_deref(),
            Some("varchar(3)")
        );
        assert_eq!(declared(SqlType::Char(None)).as_deref(), Some("char(1)"));
        assert_eq!(
            declared(SqlType::Numeric(ExactNumberInfo::None)).as_deref(),
            Some("numeric")
        );
        assert_eq!(
            declared(SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(10, 2))),
            None
        );
    }
}
