//! SQL statements that change the catalog: `CREATE DATABASE` (a hive),
//! `CREATE SCHEMA` (a box), `CREATE TABLE [AS SELECT]` (a frame),
//! `ALTER TABLE … ADD COLUMN`, `CREATE INDEX` and `DROP INDEX` (a frame's
//! clustering key), `DROP TABLE` and `TRUNCATE`.
//!
//! DataFusion would run these against in-memory tables, so they are taken
//! from the parsed statement before planning and applied through the catalog
//! — the same validated path as the SDK's `create_*` calls. Column types use
//! Postgres names (`bigint`, `text`, `numeric(p,s)`, `timestamp`, …) as well
//! as Apiary's own (`int64`, `utf8`, …).

use apiary_catalog::types::{is_widening, ColumnType};
use apiary_catalog::{names, Error as CatalogError, ObjectKind, WriteMode, WriteOptions};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnOption, CreateIndex, CreateTable,
    DataType as SqlType, Expr, HiveDistributionStyle, ObjectName, ObjectNamePart, ObjectType,
    RenameTableNameKind, SchemaName, Statement,
};

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{EngineError, Result};
use crate::session::{Outcome, Session};

/// Whether `statement` is one this module applies to the catalog (or, for
/// `MERGE`, hands to delta-rs whole).
pub(crate) fn is_catalog_statement(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateDatabase { .. }
            | Statement::CreateSchema { .. }
            | Statement::CreateTable(_)
            | Statement::Drop {
                object_type: ObjectType::Table,
                ..
            }
            | Statement::Truncate(_)
            | Statement::Merge(_)
            | Statement::AlterTable(_)
            | Statement::CreateIndex(_)
            | Statement::Drop {
                object_type: ObjectType::Index,
                ..
            }
    )
}

/// Applies a catalog statement; returns its command tag.
pub(crate) async fn run(session: &Session, statement: &Statement) -> Result<Outcome> {
    let catalog = session.catalog();
    let (cur_hive, cur_box) = session.current();
    match statement {
        Statement::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => {
            let [hive] = name_parts::<1>(db_name, "a database (hive) name")?;
            tolerate_exists(catalog.create_hive(&hive).await, *if_not_exists)?;
            Ok(done("CREATE DATABASE"))
        }
        Statement::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => {
            let name = match schema_name {
                SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => name,
                SchemaName::UnnamedAuthorization(_) => {
                    return Err(EngineError::InvalidArgument(
                        "CREATE SCHEMA needs a name: CREATE SCHEMA [hive.]box".into(),
                    ))
                }
            };
            let (hive, boxname) = match parts(name)?.as_slice() {
                [b] => (cur_hive, b.clone()),
                [h, b] => (h.clone(), b.clone()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "{name} is not a schema name; use box or hive.box"
                    )))
                }
            };
            tolerate_exists(catalog.create_box(&hive, &boxname).await, *if_not_exists)?;
            Ok(done("CREATE SCHEMA"))
        }
        Statement::CreateTable(create) => create_table(session, create).await,
        Statement::Drop {
            object_type: ObjectType::Index,
            names,
            if_exists,
            ..
        } => {
            for name in names {
                let (hive, boxname, index) = resolve(name, &cur_hive, &cur_box)?;
                match catalog.drop_index(&hive, &boxname, &index).await {
                    Err(CatalogError::NotFound { .. }) if *if_exists => {}
                    other => other?,
                }
            }
            Ok(done("DROP INDEX"))
        }
        Statement::CreateIndex(create) => create_index(session, create).await,
        Statement::AlterTable(alter) => alter_table(session, alter).await,
        Statement::Drop {
            names, if_exists, ..
        } => {
            for name in names {
                let (hive, boxname, frame) = resolve(name, &cur_hive, &cur_box)?;
                match catalog.drop_frame(&hive, &boxname, &frame).await {
                    Err(CatalogError::NotFound { .. }) if *if_exists => {}
                    other => other?,
                }
            }
            Ok(done("DROP TABLE"))
        }
        Statement::Truncate(truncate) => {
            // Each frame loses every row as a `DELETE` would: a Delta commit
            // that removes its cells (staged inside a transaction block).
            for target in &truncate.table_names {
                resolve(&target.name, &cur_hive, &cur_box)?;
                let delete = Parser::parse_sql(
                    &PostgreSqlDialect {},
                    &format!("DELETE FROM {}", target.name),
                )
                .map_err(|e| EngineError::Sql(e.to_string()))?
                .remove(0);
                let plan = session
                    .context()
                    .state()
                    .statement_to_plan(DfStatement::Statement(Box::new(delete)))
                    .await?;
                session
                    .context()
                    .execute_logical_plan(plan)
                    .await?
                    .collect()
                    .await?;
            }
            Ok(done("TRUNCATE TABLE"))
        }
        Statement::Merge(merge) => crate::merge::run(session, merge).await,
        other => Err(EngineError::Unsupported {
            statement: other.to_string(),
            hint: "this statement does not change the catalog".into(),
        }),
    }
}

async fn create_table(session: &Session, create: &CreateTable) -> Result<Outcome> {
    let (cur_hive, cur_box) = session.current();
    let (hive, boxname, frame) = resolve(&create.name, &cur_hive, &cur_box)?;
    if create.or_replace {
        return Err(EngineError::Unsupported {
            statement: "CREATE OR REPLACE TABLE".into(),
            hint: "DROP TABLE the frame first, then CREATE TABLE".into(),
        });
    }
    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let mut declared = sql_type(&column.data_type)?;
        if column
            .options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::NotNull))
        {
            declared.push_str(" not null");
        }
        columns.push((column.name.value.clone(), declared));
    }
    let mut partition_by = Vec::new();
    if let HiveDistributionStyle::PARTITIONED { columns: keys } = &create.hive_distribution {
        for key in keys {
            let known = columns
                .iter()
                .any(|(c, _)| c.eq_ignore_ascii_case(&key.name.value));
            if !known && !matches!(key.data_type, SqlType::Unspecified) {
                columns.push((key.name.value.clone(), sql_type(&key.data_type)?));
            }
            partition_by.push(key.name.value.clone());
        }
    }
    if let Some(expr) = &create.partition_by {
        partition_by.extend(partition_columns(expr)?);
    }

    let Some(query) = &create.query else {
        let created = session
            .catalog()
            .create_frame(&hive, &boxname, &frame, &columns, &partition_by)
            .await;
        tolerate_exists(created.map(|_| ()), create.if_not_exists)?;
        return Ok(done("CREATE TABLE"));
    };

    // CREATE TABLE … AS SELECT: the frame takes the query's column types.
    let statement = DfStatement::Statement(Box::new(Statement::Query(query.clone())));
    let plan = session
        .context()
        .state()
        .statement_to_plan(statement)
        .await?;
    let frame_data = session.context().execute_logical_plan(plan).await?;
    if columns.is_empty() {
        for field in frame_data.schema().fields() {
            let ty = ColumnType::from_arrow(field.data_type())?;
            columns.push((field.name().clone(), ty.name));
        }
    }
    let batches = frame_data.collect().await?;
    let catalog = session.catalog();
    match catalog
        .create_frame(&hive, &boxname, &frame, &columns, &partition_by)
        .await
    {
        Err(CatalogError::AlreadyExists { .. }) if create.if_not_exists => {
            return Ok(done("CREATE TABLE"))
        }
        other => other?,
    };
    let written = catalog
        .write(
            &hive,
            &boxname,
            &frame,
            &batches,
            WriteMode::Append,
            WriteOptions::default(),
        )
        .await;
    match written {
        Ok(result) => Ok(Outcome::Done {
            command: "SELECT".into(),
            rows: Some(result.rows_written),
        }),
        Err(e) => {
            // Leave nothing behind: the frame was created for this statement.
            let _ = catalog.drop_frame(&hive, &boxname, &frame).await;
            Err(e.into())
        }
    }
}

/// `CREATE INDEX [name] ON frame (columns)`: the columns become the frame's
/// clustering key (see `apiary_catalog::schema_change`).
async fn create_index(session: &Session, create: &CreateIndex) -> Result<Outcome> {
    let refuse = |what: &str| {
        Err(EngineError::Unsupported {
            statement: format!("CREATE INDEX with {what}"),
            hint: "a frame's index is a clustering key for OPTIMIZE, not a constraint or a \
                   B-tree; create it on plain columns: CREATE INDEX name ON frame (a, b)"
                .into(),
        })
    };
    if create.unique {
        return refuse("UNIQUE (a frame does not enforce uniqueness)");
    }
    if create.predicate.is_some() {
        return refuse("WHERE (a partial index)");
    }
    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        match &column.column.expr {
            Expr::Identifier(ident) => columns.push(ident.value.clone()),
            other => return refuse(&format!("the expression {other}")),
        }
    }
    let (cur_hive, cur_box) = session.current();
    let (hive, boxname, frame) = resolve(&create.table_name, &cur_hive, &cur_box)?;
    let index = match &create.name {
        Some(name) => match parts(name)?.as_slice() {
            [.., last] => last.clone(),
            [] => unreachable!("a name has a part"),
        },
        // PostgreSQL's choice: frame_column_idx.
        None => format!("{frame}_{}_idx", columns.join("_")),
    };
    tolerate_exists(
        session
            .catalog()
            .create_index(&hive, &boxname, &frame, &index, &columns)
            .await,
        create.if_not_exists,
    )?;
    Ok(done("CREATE INDEX"))
}

/// `ALTER TABLE frame ADD [COLUMN] [IF NOT EXISTS] name type, …`. Changes
/// that would need Delta's column mapping (renaming or dropping a column)
/// are refused with the reason.
async fn alter_table(session: &Session, alter: &AlterTable) -> Result<Outcome> {
    let (cur_hive, cur_box) = session.current();
    let (hive, boxname, frame) = resolve(&alter.name, &cur_hive, &cur_box)?;
    let (_, def) = match session.catalog().frame(&hive, &boxname, &frame).await {
        Err(CatalogError::NotFound { .. }) if alter.if_exists => return Ok(done("ALTER TABLE")),
        other => other?,
    };
    if let [AlterTableOperation::RenameTable { table_name }] = alter.operations.as_slice() {
        let new_name = rename_target(table_name, &hive, &boxname)?;
        session
            .catalog()
            .rename_frame(&hive, &boxname, &frame, &new_name)
            .await?;
        return Ok(done("ALTER TABLE"));
    }
    let mut added = Vec::new();
    let mut retyped = Vec::new();
    for operation in &alter.operations {
        match operation {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let column = column_def.name.value.to_ascii_lowercase();
                if *if_not_exists && def.columns.iter().any(|c| c.name == column) {
                    continue;
                }
                let mut declared = sql_type(&column_def.data_type)?;
                if column_def
                    .options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::NotNull))
                {
                    declared.push_str(" not null");
                }
                if let Some(option) = column_def
                    .options
                    .iter()
                    .find(|o| !matches!(o.option, ColumnOption::NotNull | ColumnOption::Null))
                {
                    return Err(EngineError::Unsupported {
                        statement: format!("ADD COLUMN … {}", option.option),
                        hint: "a column added to a frame is nullable and has no default; \
                               fill it with UPDATE"
                            .into(),
                    });
                }
                added.push((column_def.name.value.clone(), declared));
            }
            AlterTableOperation::RenameColumn { .. } | AlterTableOperation::DropColumn { .. } => {
                return Err(EngineError::Unsupported {
                    statement: format!("ALTER TABLE … {operation}"),
                    hint: "renaming or dropping a column needs Delta column mapping, and the \
                           swarm's scans read cells by column name; create a new frame with \
                           CREATE TABLE … AS SELECT the columns you want, named as you want"
                        .into(),
                });
            }
            AlterTableOperation::AlterColumn {
                column_name,
                op:
                    AlterColumnOperation::SetDataType {
                        data_type,
                        using: None,
                        ..
                    },
            } => retyped.push((
                names::validate(ObjectKind::Column, &column_name.value)?,
                sql_type(data_type)?,
            )),
            AlterTableOperation::AlterColumn { .. } => {
                return Err(EngineError::Unsupported {
                    statement: format!("ALTER TABLE … {operation}"),
                    hint: "ALTER COLUMN supports TYPE with a wider type (no USING); a column \
                           added to a frame is nullable and has no default"
                        .into(),
                });
            }
            AlterTableOperation::RenameTable { .. } => {
                return Err(EngineError::Unsupported {
                    statement: format!("ALTER TABLE … {operation}, …"),
                    hint: "RENAME TO cannot be combined with other changes; run it on its own"
                        .into(),
                })
            }
            other => {
                return Err(EngineError::Unsupported {
                    statement: format!("ALTER TABLE … {other}"),
                    hint: "ALTER TABLE supports ADD COLUMN (nullable), ALTER COLUMN … TYPE \
                           (widening) and RENAME TO"
                        .into(),
                })
            }
        }
    }
    // Every change is checked before the first is made, so that a refused
    // one does not leave the statement half applied.
    for (column, declared) in &retyped {
        let current = def.columns.iter().find(|c| &c.name == column);
        if let (Some(current), Ok(to)) = (current, ColumnType::parse(declared)) {
            let from = ColumnType::parse(&current.type_name)?;
            if !is_widening(&from, &to) {
                return Err(EngineError::Unsupported {
                    statement: format!("ALTER COLUMN {column} TYPE {declared}"),
                    hint: format!(
                        "{column} is {}; a column's type can only widen so that every value \
                         stays as it is (a wider integer or decimal, float32 to float64, a \
                         longer varchar); create a new frame with CREATE TABLE … AS SELECT \
                         CAST({column} AS {declared})",
                        from.name
                    ),
                });
            }
        }
    }
    if !added.is_empty() {
        session
            .catalog()
            .add_columns(&hive, &boxname, &frame, &added)
            .await?;
    }
    for (column, declared) in &retyped {
        session
            .catalog()
            .change_column_type(&hive, &boxname, &frame, column, declared)
            .await?;
    }
    Ok(done("ALTER TABLE"))
}

/// The new name in `RENAME TO name`: a frame stays in its hive and box,
/// as a PostgreSQL table stays in its schema.
fn rename_target(target: &RenameTableNameKind, hive: &str, boxname: &str) -> Result<String> {
    let (RenameTableNameKind::To(name) | RenameTableNameKind::As(name)) = target;
    match parts(name)?.as_slice() {
        [frame] => Ok(frame.clone()),
        [b, frame] if b == boxname => Ok(frame.clone()),
        [h, b, frame] if h == hive && b == boxname => Ok(frame.clone()),
        _ => Err(EngineError::Unsupported {
            statement: format!("ALTER TABLE … RENAME TO {name}"),
            hint: format!(
                "a frame is renamed within its box ({hive}.{boxname}); give the new name \
                 without a box, and copy the frame with CREATE TABLE … AS SELECT to move it"
            ),
        }),
    }
}

fn done(command: &str) -> Outcome {
    Outcome::Done {
        command: command.into(),
        rows: None,
    }
}

/// `IF NOT EXISTS` turns "already exists" into success.
fn tolerate_exists(result: apiary_catalog::Result<()>, if_not_exists: bool) -> Result<()> {
    match result {
        Err(CatalogError::AlreadyExists { .. }) if if_not_exists => Ok(()),
        other => Ok(other?),
    }
}

/// The identifiers of a (possibly qualified) name.
pub(crate) fn parts(name: &ObjectName) -> Result<Vec<String>> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Ok(ident.value.clone()),
            other => Err(EngineError::InvalidArgument(format!(
                "{other} is not a plain name"
            ))),
        })
        .collect()
}

fn name_parts<const N: usize>(name: &ObjectName, what: &str) -> Result<[String; N]> {
    parts(name)?
        .try_into()
        .map_err(|_| EngineError::InvalidArgument(format!("{name} is not {what}")))
}

/// Resolves `frame`, `box.frame` or `hive.box.frame` against the current hive and box.
pub(crate) fn resolve(
    name: &ObjectName,
    cur_hive: &str,
    cur_box: &str,
) -> Result<(String, String, String)> {
    match parts(name)?.as_slice() {
        [f] => Ok((cur_hive.into(), cur_box.into(), f.clone())),
        [b, f] => Ok((cur_hive.into(), b.clone(), f.clone())),
        [h, b, f] => Ok((h.clone(), b.clone(), f.clone())),
        _ => Err(EngineError::InvalidArgument(format!(
            "{name} is not a table name; use frame, box.frame or hive.box.frame"
        ))),
    }
}

/// Column names in `PARTITION BY (a, b)`.
fn partition_columns(expr: &Expr) -> Result<Vec<String>> {
    match expr {
        Expr::Identifier(ident) => Ok(vec![ident.value.clone()]),
        Expr::Nested(inner) => partition_columns(inner),
        Expr::Tuple(items) => items
            .iter()
            .map(partition_columns)
            .collect::<Result<Vec<_>>>()
            .map(|v| v.concat()),
        other => Err(EngineError::InvalidArgument(format!(
            "PARTITION BY {other}: frames are partitioned by plain columns, e.g. PARTITIONED BY (country)"
        ))),
    }
}

/// Apiary's type name for a SQL column type. Postgres spellings are mapped
/// (so `int8` is `bigint` here, as in Postgres); anything else is passed to
/// the catalog's own type parser, which lists the accepted names.
fn sql_type(data_type: &SqlType) -> Result<String> {
    let spelled = data_type.to_string().to_ascii_lowercase();
    let (base, args) = match spelled.split_once('(') {
        Some((base, rest)) => (base.trim(), rest.trim_end_matches(')').trim()),
        None => (spelled.trim(), ""),
    };
    let name = match base {
        "smallint" | "int2" => "int16".to_string(),
        "int" | "integer" | "int4" => "int32".to_string(),
        "bigint" | "int8" => "int64".to_string(),
        "real" | "float4" => "float32".to_string(),
        "double precision" | "double" | "float8" | "float" => "float64".to_string(),
        "varchar" | "character varying" if !args.is_empty() => format!("varchar({args})"),
        "char" | "character" | "bpchar" if !args.is_empty() => format!("char({args})"),
        // Postgres's `char` without a length is `char(1)`.
        "char" | "character" => "char(1)".to_string(),
        "varchar" | "character varying" => "varchar".to_string(),
        "text" | "bpchar" | "string" => "utf8".to_string(),
        "bool" | "boolean" => "bool".to_string(),
        "date" => "date32".to_string(),
        // SQL's `timestamp` is a wall-clock time; Apiary's `timestamp` (as
        // the SDK declares it) is an instant, SQL's `timestamptz`.
        "timestamp" | "timestamp without time zone" => "timestamp_ntz".to_string(),
        "timestamptz" | "timestamp with time zone" => "timestamp".to_string(),
        "bytea" | "blob" | "binary" | "varbinary" => "binary".to_string(),
        "numeric" | "decimal" | "dec" => {
            let (p, s) = args.split_once(',').unwrap_or((args, "0"));
            if p.trim().is_empty() {
                return Err(CatalogError::InvalidSchema(format!(
                    "{spelled} needs a precision: use {base}(p,s), e.g. {base}(18,2)"
                ))
                .into());
            }
            format!("decimal({},{})", p.trim(), s.trim())
        }
        _ => spelled.clone(),
    };
    Ok(ColumnType::parse(&name)?.name)
}
