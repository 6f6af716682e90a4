//! Every run-time parameter PostgreSQL 15 has, as `pg_settings`,
//! `pg_show_all_settings()` and `SHOW ALL` list them. pgAdmin reads the
//! whole view on connect; pgJDBC's `DatabaseMetaData` asks for
//! `max_index_keys`; tools read `server_version_num` or `max_connections`.
//!
//! `pg_settings.json` holds PostgreSQL 15's own descriptions, units, ranges
//! and built-in defaults (generated from a stock server's `pg_settings`).
//! A parameter's value is the connection's where Apiary has one (see
//! [`Settings`]), otherwise that default.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanArray, Int32Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::streaming::PartitionStream;
use serde_json::Value;

use crate::activity::one_batch;
use crate::builtin::Settings;

/// One parameter as PostgreSQL describes it.
#[derive(Debug)]
struct Parameter {
    name: String,
    unit: Option<String>,
    category: Option<String>,
    short_desc: Option<String>,
    extra_desc: Option<String>,
    context: Option<String>,
    vartype: Option<String>,
    min_val: Option<String>,
    max_val: Option<String>,
    enumvals: Option<Vec<String>>,
    boot_val: Option<String>,
}

/// PostgreSQL's parameters, by lower-case name.
fn parameters() -> &'static (Vec<Parameter>, HashMap<String, usize>) {
    static PARAMETERS: OnceLock<(Vec<Parameter>, HashMap<String, usize>)> = OnceLock::new();
    PARAMETERS.get_or_init(|| {
        let rows: Vec<Value> =
            serde_json::from_str(include_str!("pg_settings.json")).unwrap_or_default();
        let text = |row: &Value, key: &str| row.get(key)?.as_str().map(str::to_string);
        let parameters: Vec<Parameter> = rows
            .iter()
            .filter_map(|row| {
                Some(Parameter {
                    name: text(row, "name")?,
                    unit: text(row, "unit"),
                    category: text(row, "category"),
                    short_desc: text(row, "short_desc"),
                    extra_desc: text(row, "extra_desc"),
                    context: text(row, "context"),
                    vartype: text(row, "vartype"),
                    min_val: text(row, "min_val"),
                    max_val: text(row, "max_val"),
                    enumvals: row.get("enumvals")?.as_array().map(|values| {
                        values
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    }),
                    boot_val: text(row, "boot_val"),
                })
            })
            .collect();
        let by_name = parameters
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.to_ascii_lowercase(), i))
            .collect();
        (parameters, by_name)
    })
}

/// PostgreSQL's built-in default of a parameter (any case), if it has one.
pub fn default_value(name: &str) -> Option<String> {
    let (parameters, by_name) = parameters();
    let parameter = &parameters[*by_name.get(&name.to_ascii_lowercase())?];
    parameter.boot_val.clone()
}

/// A parameter's one-line description, for `SHOW ALL`.
pub fn description(name: &str) -> Option<String> {
    let (parameters, by_name) = parameters();
    parameters[*by_name.get(&name.to_ascii_lowercase())?]
        .short_desc
        .clone()
}

/// Every parameter's name: PostgreSQL's, then any others the connection
/// set (`SET myapp.flag = …`), sorted as Postgres sorts them.
pub fn names(settings: &Settings) -> Vec<String> {
    let (parameters, by_name) = parameters();
    let mut names: Vec<String> = parameters.iter().map(|p| p.name.clone()).collect();
    names.extend(
        settings
            .names()
            .into_iter()
            .filter(|name| !by_name.contains_key(name)),
    );
    names.sort_by_key(|name| name.to_ascii_lowercase());
    names
}

/// `pg_settings`' columns.
fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text("name"),
        text("setting"),
        text("unit"),
        text("category"),
        text("short_desc"),
        text("extra_desc"),
        text("context"),
        text("vartype"),
        text("source"),
        text("min_val"),
        text("max_val"),
        Field::new("enumvals", DataType::new_list(DataType::Utf8, true), true),
        text("boot_val"),
        text("reset_val"),
        text("sourcefile"),
        Field::new("sourceline", DataType::Int32, true),
        Field::new("pending_restart", DataType::Boolean, true),
    ]))
}

/// `pg_settings` for a connection with `settings`.
fn batch(settings: &Settings) -> DfResult<RecordBatch> {
    let (parameters, by_name) = parameters();
    let names = names(settings);
    let known = |name: &str| {
        by_name
            .get(&name.to_ascii_lowercase())
            .map(|&i| &parameters[i])
    };
    let column = |f: &dyn Fn(&str, Option<&Parameter>) -> Option<String>| -> ArrayRef {
        Arc::new(
            names
                .iter()
                .map(|name| f(name, known(name)))
                .collect::<StringArray>(),
        )
    };
    let field = |get: fn(&Parameter) -> &Option<String>| {
        column(&move |_, p| p.and_then(|p| get(p).clone()))
    };
    let mut enumvals = ListBuilder::new(StringBuilder::new());
    for name in &names {
        match known(name).and_then(|p| p.enumvals.as_ref()) {
            Some(values) => {
                enumvals.append_value(values.iter().map(Some));
            }
            None => enumvals.append_null(),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        column(&|name, _| Some(name.to_string())),
        column(&|name, _| settings.get(name)),
        field(|p| &p.unit),
        field(|p| &p.category),
        field(|p| &p.short_desc),
        field(|p| &p.extra_desc),
        column(&|_, p| Some(p.and_then(|p| p.context.clone()).unwrap_or("user".into()))),
        column(&|_, p| Some(p.and_then(|p| p.vartype.clone()).unwrap_or("string".into()))),
        column(&|name, _| Some(settings.source(name).to_string())),
        field(|p| &p.min_val),
        field(|p| &p.max_val),
        Arc::new(enumvals.finish()),
        field(|p| &p.boot_val),
        column(&|name, _| settings.reset_value(name)),
        column(&|_, _| None),
        Arc::new(Int32Array::from(vec![None; names.len()])),
        Arc::new(BooleanArray::from(vec![Some(false); names.len()])),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// The `pg_settings` view: node-wide in `pg_catalog`, it reads the
/// scanning connection's [`Settings`] from the session's configuration.
#[derive(Debug)]
pub struct PgSettings {
    schema: SchemaRef,
}

impl PgSettings {
    pub fn new() -> Self {
        PgSettings { schema: schema() }
    }
}

impl Default for PgSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionStream for PgSettings {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let settings = ctx
            .session_config()
            .get_extension::<Settings>()
            .map(|settings| settings.as_ref().clone())
            .unwrap_or_default();
        one_batch(&self.schema, batch(&settings))
    }
}

/// `pg_show_all_settings()`, the function behind `pg_settings` (pgAdmin
/// calls it directly).
#[derive(Debug)]
pub struct ShowAllSettings(pub Settings);

impl TableFunctionImpl for ShowAllSettings {
    fn call(&self, _args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let batch = batch(&self.0)?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}
