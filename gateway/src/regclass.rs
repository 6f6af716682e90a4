//! A name computed in a query and cast to `regclass`, looked up as Postgres
//! looks it up.
//!
//! Metabase reads column comments with
//! `col_description(format('%I.%I', schema, table)::regclass::oid, n)`.
//! The catalog crate turns a *literal* name cast to `regclass` into a
//! lookup in `pg_class`; a computed one would be cast to an integer and
//! fail. The parser rewrites such a cast into `apiary_regclass(name)`
//! (compat.rs), and this function finds the relation in `pg_class`: a
//! qualified name in its schema, an unqualified one in `pg_catalog` and
//! then the connection's box, as `search_path` does. An unknown relation
//! is error 42P01, as in Postgres. An integer passes through unchanged,
//! since an OID is already a `regclass`.

use std::collections::HashMap;
use std::sync::Arc;

use apiary_engine::postgres::sql_error;
use arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use async_trait::async_trait;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::SchemaProvider;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The function the parser calls for a computed name cast to `regclass`.
pub const REGCLASS_FUNCTION: &str = "apiary_regclass";

/// `apiary_regclass(name)`; reads `pg_class` and `pg_namespace` from
/// `pg_catalog` when it is evaluated.
pub fn regclass(pg_catalog: Arc<dyn SchemaProvider>) -> ScalarUDF {
    AsyncScalarUDF::new(Arc::new(Regclass {
        pg_catalog,
        signature: Signature::any(1, Volatility::Stable),
    }))
    .into_scalar_udf()
}

#[derive(Debug)]
struct Regclass {
    pg_catalog: Arc<dyn SchemaProvider>,
    signature: Signature,
}

impl PartialEq for Regclass {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.pg_catalog, &other.pg_catalog)
    }
}

impl Eq for Regclass {}

impl std::hash::Hash for Regclass {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        REGCLASS_FUNCTION.hash(state);
    }
}

impl ScalarUDFImpl for Regclass {
    fn name(&self) -> &str {
        REGCLASS_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("{REGCLASS_FUNCTION} is evaluated asynchronously")
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for Regclass {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let names = args.args[0].to_array(args.number_rows)?;
        if names.data_type().is_integer() {
            return Ok(ColumnarValue::Array(cast(&names, &DataType::Int32)?));
        }
        let names = cast(&names, &DataType::Utf8)?;
        let relations = relation_oids(self.pg_catalog.as_ref()).await?;
        let default_box = &args.config_options.catalog.default_schema;
        let oids = names
            .as_string::<i32>()
            .iter()
            .map(|name| {
                name.map(|name| lookup(&relations, name, default_box))
                    .transpose()
            })
            .collect::<Result<Int32Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(oids) as ArrayRef))
    }
}

/// Relation OIDs by (schema, relation) name, read from `pg_class` and
/// `pg_namespace` of `pg_catalog`.
pub async fn relation_oids(
    pg_catalog: &dyn SchemaProvider,
) -> Result<HashMap<(String, String), i32>> {
    let ctx = SessionContext::new();
    for name in ["pg_class", "pg_namespace"] {
        if let Some(table) = pg_catalog.table(name).await? {
            ctx.register_table(name, table)?;
        }
    }
    let batches = ctx
        .sql(
            "SELECT n.nspname, c.relname, c.oid FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace",
        )
        .await?
        .collect()
        .await?;
    let mut relations = HashMap::new();
    for batch in batches {
        let schemas = cast(batch.column(0), &DataType::Utf8)?;
        let names = cast(batch.column(1), &DataType::Utf8)?;
        let oids = cast(batch.column(2), &DataType::Int32)?;
        let oids = oids.as_primitive::<arrow::datatypes::Int32Type>();
        for row in 0..batch.num_rows() {
            let key = (
                schemas.as_string::<i32>().value(row).to_string(),
                names.as_string::<i32>().value(row).to_string(),
            );
            relations.entry(key).or_insert(oids.value(row));
        }
    }
    Ok(relations)
}

/// The OID of the relation `name` (`frame`, `box.frame`, `"Box"."Frame"`),
/// or 42P01.
fn lookup(
    relations: &HashMap<(String, String), i32>,
    name: &str,
    default_box: &str,
) -> Result<i32> {
    let parts = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(name)
        .and_then(|mut parser| parser.parse_object_name(false))
        .map_err(|_| sql_error("42602", format!("invalid name syntax: \"{name}\"")))?
        .0
        .iter()
        .map(|part| {
            let ident = part.as_ident().expect("an object name is identifiers");
            match ident.quote_style {
                Some(_) => ident.value.clone(),
                None => ident.value.to_lowercase(),
            }
        })
        .collect::<Vec<_>>();
    let schemas: Vec<&str> = match parts.as_slice() {
        [_] => vec!["pg_catalog", default_box],
        [.., schema, _] => vec![schema.as_str()],
        [] => vec![],
    };
    let relation = parts.last().map(String::as_str).unwrap_or_default();
    schemas
        .into_iter()
        .find_map(|schema| relations.get(&(schema.to_string(), relation.to_string())))
        .copied()
        .ok_or_else(|| sql_error("42P01", format!("relation \"{name}\" does not exist")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_postgres_reads_them() {
        let relations = HashMap::from([
            (("pg_catalog".into(), "pg_class".into()), 1259),
            (("sales".into(), "orders".into()), 16390),
            (("Sales".into(), "Big Orders".into()), 16391),
        ]);
        assert_eq!(lookup(&relations, "pg_class", "sales").unwrap(), 1259);
        assert_eq!(lookup(&relations, "orders", "sales").unwrap(), 16390);
        assert_eq!(
            lookup(&relations, "SALES.Orders", "default").unwrap(),
            16390
        );
        assert_eq!(
            lookup(&relations, "\"Sales\".\"Big Orders\"", "x").unwrap(),
            16391
        );
        assert!(lookup(&relations, "orders", "default").is_err());
        assert!(lookup(&relations, "Sales.\"Big Orders\"", "x").is_err());
    }
}
