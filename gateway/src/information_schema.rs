//! A Postgres-shaped `information_schema` for each hive: the views, columns
//! and values (`udt_name`, `is_identity`, 1-based `ordinal_position`, SQL
//! type names) that BI tools and ORMs read, where DataFusion's own
//! `information_schema` has its own shape and Arrow type names.
//!
//! It lists the hive's frames, read from the registry when a query scans
//! it. Frames have no keys, defaults or identity columns; a NOT NULL column
//! shows as a CHECK constraint, as in Postgres 16.

use std::sync::Arc;

use apiary_engine::catalog::provider::SystemSchema;
use apiary_engine::catalog::types::ColumnType;
use apiary_engine::catalog::{Catalog, FrameDef};
use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;

use crate::types::sql_name;

/// The views, each with its columns; `#` marks an integer column.
pub(crate) const VIEWS: &[(&str, &[&str])] = &[
    (
        "schemata",
        &[
            "catalog_name",
            "schema_name",
            "schema_owner",
            "default_character_set_catalog",
            "default_character_set_schema",
            "default_character_set_name",
            "sql_path",
        ],
    ),
    (
        "tables",
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "table_type",
            "self_referencing_column_name",
            "reference_generation",
            "user_defined_type_catalog",
            "user_defined_type_schema",
            "user_defined_type_name",
            "is_insertable_into",
            "is_typed",
            "commit_action",
        ],
    ),
    (
        "columns",
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "#ordinal_position",
            "column_default",
            "is_nullable",
            "data_type",
            "#character_maximum_length",
            "#character_octet_length",
            "#numeric_precision",
            "#numeric_precision_radix",
            "#numeric_scale",
            "#datetime_precision",
            "interval_type",
            "#interval_precision",
            "character_set_catalog",
            "character_set_schema",
            "character_set_name",
            "collation_catalog",
            "collation_schema",
            "collation_name",
            "domain_catalog",
            "domain_schema",
            "domain_name",
            "udt_catalog",
            "udt_schema",
            "udt_name",
            "scope_catalog",
            "scope_schema",
            "scope_name",
            "#maximum_cardinality",
            "dtd_identifier",
            "is_self_referencing",
            "is_identity",
            "identity_generation",
            "identity_start",
            "identity_increment",
            "identity_maximum",
            "identity_minimum",
            "identity_cycle",
            "is_generated",
            "generation_expression",
            "is_updatable",
        ],
    ),
    (
        "views",
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "view_definition",
            "check_option",
            "is_updatable",
            "is_insertable_into",
            "is_trigger_updatable",
            "is_trigger_deletable",
            "is_trigger_insertable_into",
        ],
    ),
    (
        "table_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
            "enforced",
            "nulls_distinct",
        ],
    ),
    (
        "check_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "check_clause",
        ],
    ),
    (
        "key_column_usage",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "#ordinal_position",
            "#position_in_unique_constraint",
        ],
    ),
    (
        "referential_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ],
    ),
    (
        "character_sets",
        &[
            "character_set_catalog",
            "character_set_schema",
            "character_set_name",
            "character_repertoire",
            "form_of_use",
            "default_collate_catalog",
            "default_collate_schema",
            "default_collate_name",
        ],
    ),
];

/// Schemas every hive has besides its boxes.
const SYSTEM_SCHEMAS: [&str; 2] = ["information_schema", "pg_catalog"];

/// `information_schema`, made for each hive.
#[derive(Debug)]
pub struct InformationSchemas {
    catalog: Arc<Catalog>,
}

impl InformationSchemas {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        InformationSchemas { catalog }
    }
}

impl SystemSchema for InformationSchemas {
    fn for_hive(&self, hive: &str) -> Arc<dyn SchemaProvider> {
        Arc::new(InformationSchema {
            catalog: self.catalog.clone(),
            hive: hive.to_string(),
        })
    }
}

#[derive(Debug)]
struct InformationSchema {
    catalog: Arc<Catalog>,
    hive: String,
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        VIEWS.iter().map(|(name, _)| name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(VIEWS
            .iter()
            .find(|(view, _)| *view == name)
            .map(|(view, columns)| {
                Arc::new(View {
                    catalog: self.catalog.clone(),
                    hive: self.hive.clone(),
                    name: view,
                    schema: view_schema(columns),
                }) as _
            }))
    }

    fn table_exist(&self, name: &str) -> bool {
        VIEWS.iter().any(|(view, _)| *view == name)
    }
}

fn view_schema(columns: &[&str]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|column| match column.strip_prefix('#') {
            Some(name) => Field::new(name, DataType::Int32, true),
            None => Field::new(*column, DataType::Utf8, true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// One view, computed from the registry when scanned.
#[derive(Debug)]
struct View {
    catalog: Arc<Catalog>,
    hive: String,
    name: &'static str,
    schema: SchemaRef,
}

/// A value of a view's row.
enum Cell {
    Text(Option<String>),
    Int(Option<i32>),
}

fn text(value: impl Into<String>) -> Cell {
    Cell::Text(Some(value.into()))
}

const NULL: Cell = Cell::Text(None);

fn int(value: Option<i32>) -> Cell {
    Cell::Int(value)
}

impl View {
    fn rows(&self) -> Vec<Vec<Cell>> {
        let snapshot = self.catalog.snapshot();
        let Ok(hive) = snapshot.hive(&self.hive) else {
            return vec![];
        };
        let hive_name = &self.hive;
        let frames = hive.boxes.iter().flat_map(|(boxname, boxdef)| {
            boxdef
                .frames
                .iter()
                .map(move |(frame, def)| (boxname.as_str(), frame.as_str(), def))
        });
        match self.name {
            "schemata" => hive
                .boxes
                .keys()
                .map(String::as_str)
                .chain(SYSTEM_SCHEMAS)
                .map(|schema| {
                    vec![
                        text(hive_name),
                        text(schema),
                        text("apiary"),
                        NULL,
                        NULL,
                        text("UTF8"),
                        NULL,
                    ]
                })
                .collect(),
            "tables" => frames
                .map(|(boxname, frame, _)| {
                    let mut row = vec![text(hive_name), text(boxname), text(frame)];
                    row.extend([text("BASE TABLE"), NULL, NULL, NULL, NULL, NULL]);
                    row.extend([text("YES"), text("NO"), NULL]);
                    row
                })
                .collect(),
            "columns" => frames
                .flat_map(|(boxname, frame, def)| column_rows(hive_name, boxname, frame, def))
                .collect(),
            "table_constraints" => not_null_columns(frames)
                .map(|(boxname, frame, column)| {
                    let name = not_null_name(frame, column);
                    let mut row = vec![text(hive_name), text(boxname), text(name)];
                    row.extend([text(hive_name), text(boxname), text(frame)]);
                    row.extend([text("CHECK"), text("NO"), text("NO"), text("YES"), NULL]);
                    row
                })
                .collect(),
            "check_constraints" => not_null_columns(frames)
                .map(|(boxname, frame, column)| {
                    vec![
                        text(hive_name),
                        text(boxname),
                        text(not_null_name(frame, column)),
                        text(format!("{} IS NOT NULL", quote_ident(column))),
                    ]
                })
                .collect(),
            // One encoding, as in a Postgres database (Power BI asks).
            "character_sets" => vec![vec![
                NULL,
                NULL,
                text("UTF8"),
                text("UCS"),
                text("UTF8"),
                text(hive_name),
                text("pg_catalog"),
                text("C"),
            ]],
            // Frames have no views, keys, foreign keys or unique constraints.
            _ => vec![],
        }
    }

    fn batch(&self) -> DfResult<RecordBatch> {
        let rows = self.rows();
        let arrays: Vec<ArrayRef> =
            (0..self.schema.fields().len())
                .map(|i| match self.schema.field(i).data_type() {
                    DataType::Int32 => Arc::new(Int32Array::from_iter(rows.iter().map(|row| {
                        match &row[i] {
                            Cell::Int(value) => *value,
                            Cell::Text(_) => None,
                        }
                    }))) as ArrayRef,
                    _ => Arc::new(StringArray::from_iter(rows.iter().map(|row| {
                        match &row[i] {
                            Cell::Text(value) => value.clone(),
                            Cell::Int(value) => value.map(|v| v.to_string()),
                        }
                    }))) as ArrayRef,
                })
                .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

/// `(box, frame, column)` of each NOT NULL column.
fn not_null_columns<'a>(
    frames: impl Iterator<Item = (&'a str, &'a str, &'a FrameDef)>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
    frames.flat_map(|(boxname, frame, def)| {
        def.columns
            .iter()
            .filter(|column| !column.nullable)
            .map(move |column| (boxname, frame, column.name.as_str()))
    })
}

/// A NOT NULL constraint's name, as Postgres makes it.
fn not_null_name(frame: &str, column: &str) -> String {
    format!("{frame}_{column}_not_null")
}

fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !name.is_empty() {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn column_rows(hive: &str, boxname: &str, frame: &str, def: &FrameDef) -> Vec<Vec<Cell>> {
    def.columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let sql = SqlType::of(&column.type_name);
            let mut row = vec![text(hive), text(boxname), text(frame), text(&column.name)];
            row.push(int(i32::try_from(i + 1).ok()));
            row.push(NULL); // column_default
            row.push(text(if column.nullable { "YES" } else { "NO" }));
            row.push(text(sql.data_type));
            // Character lengths: `varchar(n)`/`char(n)` have them, text is
            // unbounded. Postgres counts 4 bytes per character for UTF-8.
            row.extend([
                int(sql.max_chars),
                int(sql.max_chars.map(|n| n.saturating_mul(4))),
            ]);
            row.extend([int(sql.precision), int(sql.radix), int(sql.scale)]);
            row.push(int(sql.datetime_precision));
            row.extend([NULL, int(None)]); // interval
            row.extend([NULL, NULL, NULL, NULL, NULL, NULL]); // character set, collation
            row.extend([NULL, NULL, NULL]); // domain
            row.extend([text(hive), text("pg_catalog"), text(sql.udt_name)]);
            row.extend([NULL, NULL, NULL, int(None)]); // scope, maximum_cardinality
            row.push(text((i + 1).to_string())); // dtd_identifier
            row.extend([text("NO"), text("NO")]); // self-referencing, identity
            row.extend([NULL, NULL, NULL, NULL, NULL, text("NO")]);
            row.extend([text("NEVER"), NULL, text("YES")]);
            row
        })
        .collect()
}

/// How Postgres describes a column's type in `information_schema.columns`.
struct SqlType {
    data_type: String,
    udt_name: String,
    precision: Option<i32>,
    radix: Option<i32>,
    scale: Option<i32>,
    datetime_precision: Option<i32>,
    /// The `n` of `varchar(n)`/`char(n)`.
    max_chars: Option<i32>,
}

impl SqlType {
    /// From a frame's declared type, through the Postgres type its values
    /// are sent as, so this agrees with `pg_attribute` and the wire.
    fn of(declared: &str) -> SqlType {
        let column = ColumnType::parse(declared).ok();
        let arrow = column
            .as_ref()
            .map(|t| t.arrow.clone())
            .unwrap_or(DataType::Utf8);
        let strings = column
            .as_ref()
            .and_then(|t| t.sql_type().map(|_| t.max_chars()));
        let udt_name = match strings {
            Some(Some((_, true))) => "bpchar".to_string(),
            Some(_) => "varchar".to_string(),
            None => into_pg_type(&arrow)
                .map(|t| t.name().to_string())
                .unwrap_or_else(|_| "text".into()),
        };
        let max_chars = strings.flatten().and_then(|(n, _)| i32::try_from(n).ok());
        let binary = |bits| (Some(bits), Some(2), Some(0));
        let (precision, radix, scale) = match (&arrow, udt_name.as_str()) {
            (_, "int2") => binary(16),
            (_, "int4") => binary(32),
            (_, "int8") => binary(64),
            (_, "float4") => (Some(24), Some(2), None),
            (_, "float8") => (Some(53), Some(2), None),
            (DataType::Decimal128(p, s), _) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s))),
            _ => (None, None, None),
        };
        let datetime_precision = match udt_name.as_str() {
            "date" => Some(0),
            "timestamp" | "timestamptz" | "time" | "timetz" | "interval" => Some(6),
            _ => None,
        };
        let data_type = sql_name(&udt_name).to_string();
        SqlType {
            data_type,
            udt_name,
            precision,
            radix,
            scale,
            datetime_precision,
            max_chars,
        }
    }
}

#[async_trait]
impl TableProvider for View {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(self.schema.clone(), vec![vec![self.batch()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_read_as_postgres_describes_them() {
        let bigint = SqlType::of("int64");
        assert_eq!(
            (bigint.data_type.as_str(), bigint.udt_name.as_str()),
            ("bigint", "int8")
        );
        assert_eq!(
            (bigint.precision, bigint.radix, bigint.scale),
            (Some(64), Some(2), Some(0))
        );
        let money = SqlType::of("decimal(12,3)");
        assert_eq!(
            (money.data_type.as_str(), money.udt_name.as_str()),
            ("numeric", "numeric")
        );
        assert_eq!(
            (money.precision, money.radix, money.scale),
            (Some(12), Some(10), Some(3))
        );
        let at = SqlType::of("timestamp");
        assert_eq!(at.data_type, "timestamp with time zone");
        assert_eq!(
            (at.udt_name.as_str(), at.datetime_precision),
            ("timestamptz", Some(6))
        );
        assert_eq!(SqlType::of("utf8").data_type, "text");
        let code = SqlType::of("char(3)");
        assert_eq!(
            (
                code.data_type.as_str(),
                code.udt_name.as_str(),
                code.max_chars
            ),
            ("character", "bpchar", Some(3))
        );
        let label = SqlType::of("varchar(5)");
        assert_eq!(
            (label.data_type.as_str(), label.max_chars),
            ("character varying", Some(5))
        );
        assert_eq!(SqlType::of("float64").data_type, "double precision");
        assert_eq!(SqlType::of("bool").udt_name, "bool");
    }

    #[test]
    fn every_view_row_fits_its_columns() {
        for (_, columns) in VIEWS {
            assert_eq!(view_schema(columns).fields().len(), columns.len());
        }
        let def = FrameDef {
            columns: vec![apiary_engine::catalog::ColumnDef {
                name: "Id".into(),
                type_name: "int64".into(),
                nullable: false,
            }],
            partition_by: vec![],
            created_at: String::new(),
            indexes: Vec::new(),
            location: None,
        };
        let rows = column_rows("h", "b", "f", &def);
        let columns = VIEWS
            .iter()
            .find(|(n, _)| *n == "columns")
            .map(|(_, c)| c.len());
        assert_eq!(Some(rows[0].len()), columns);
        assert_eq!(quote_ident("Id"), "\"Id\"");
        assert_eq!(quote_ident("id"), "id");
    }
}
