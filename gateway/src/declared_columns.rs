//! Frames' declared column types in `pg_attribute`. The crate builds that
//! catalog from the frames' Arrow types, so a `varchar(20)` column would
//! read as `text` and a `numeric(10,2)` as `numeric` without its precision
//! (psql's `\d`, pgJDBC's `getColumns`, pg_dump's `CREATE TABLE` all use
//! `format_type(atttypid, atttypmod)`). The registry keeps each column's
//! declared type; these functions put it back, by box, frame and column.

use std::collections::HashSet;
use std::sync::Arc;

use apiary_engine::catalog::Catalog;
use arrow::array::{Array, AsArray, Int32Array};
use arrow::datatypes::{DataType, Field, FieldRef, Int32Type};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Which half of a declared type a [`DeclaredColumn`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// `atttypid`.
    TypeOid,
    /// `atttypmod`.
    TypeModifier,
}

/// `(type OID, type modifier)` of a declared type with a modifier:
/// `varchar(n)`, `char(n)`, `numeric(p[, s])`. `None` for the rest, whose
/// Arrow type already gives the OID and no modifier.
pub fn declared_type(declared: &str) -> Option<(i32, i32)> {
    let declared = declared.trim().to_ascii_lowercase();
    let (base, rest) = declared.split_once('(')?;
    let args: Vec<i32> = rest
        .strip_suffix(')')?
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    match (base.trim(), args.as_slice()) {
        ("varchar" | "character varying", [n]) => Some((1043, n + 4)),
        ("char" | "character" | "bpchar", [n]) => Some((1042, n + 4)),
        ("numeric" | "decimal", [p]) => Some((1700, (p << 16) + 4)),
        ("numeric" | "decimal", [p, s]) => Some((1700, ((p << 16) | s) + 4)),
        _ => None,
    }
}

/// `apiary_declared_type(box, frame, column, arrow_value)`: the declared
/// type's OID or modifier for a frame's column, `arrow_value` otherwise
/// (catalog tables, columns without a modifier, or a box and frame name
/// that hives declare differently).
#[derive(Debug)]
pub struct DeclaredColumn {
    catalog: Arc<Catalog>,
    part: Part,
    signature: Signature,
}

impl DeclaredColumn {
    pub fn new(catalog: Arc<Catalog>, part: Part) -> Self {
        DeclaredColumn {
            catalog,
            part,
            signature: Signature::exact(
                vec![
                    DataType::Utf8,
                    DataType::Utf8,
                    DataType::Utf8,
                    DataType::Int32,
                ],
                Volatility::Stable,
            ),
        }
    }
}

impl PartialEq for DeclaredColumn {
    fn eq(&self, other: &Self) -> bool {
        self.part == other.part && Arc::ptr_eq(&self.catalog, &other.catalog)
    }
}

impl Eq for DeclaredColumn {}

impl std::hash::Hash for DeclaredColumn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.part.hash(state);
    }
}

impl ScalarUDFImpl for DeclaredColumn {
    fn name(&self) -> &str {
        match self.part {
            Part::TypeOid => "apiary_declared_typid",
            Part::TypeModifier => "apiary_declared_typmod",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    /// The value keeps its column's field (an `atttypid` stays an OID).
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(match args.arg_fields.get(3) {
            Some(field) => Arc::new(field.as_ref().clone().with_nullable(true)),
            None => Arc::new(Field::new(self.name(), DataType::Int32, true)),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        let (boxes, frames, columns) = (
            arrays[0].as_string::<i32>(),
            arrays[1].as_string::<i32>(),
            arrays[2].as_string::<i32>(),
        );
        let values = arrays[3].as_primitive::<Int32Type>();
        let snapshot = self.catalog.snapshot();
        let declared = |row: usize| -> Option<(i32, i32)> {
            if boxes.is_null(row) || frames.is_null(row) || columns.is_null(row) {
                return None;
            }
            let (boxname, frame, column) =
                (boxes.value(row), frames.value(row), columns.value(row));
            let found: HashSet<Option<(i32, i32)>> = snapshot
                .hives
                .values()
                .filter_map(|hive| hive.boxes.get(boxname)?.frames.get(frame))
                .filter_map(|def| def.columns.iter().find(|c| c.name == column))
                .map(|c| declared_type(&c.type_name))
                .collect();
            match found.len() {
                1 => found.into_iter().next().flatten(),
                _ => None,
            }
        };
        let out: Int32Array = (0..rows)
            .map(|row| match (declared(row), self.part) {
                (Some((oid, _)), Part::TypeOid) => Some(oid),
                (Some((_, modifier)), Part::TypeModifier) => Some(modifier),
                (None, _) => (!values.is_null(row)).then(|| values.value(row)),
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::declared_type;

    #[test]
    fn modifiers_are_postgres_typmods() {
        assert_eq!(declared_type("varchar(20)"), Some((1043, 24)));
        assert_eq!(declared_type("char(3)"), Some((1042, 7)));
        assert_eq!(declared_type("numeric(10,2)"), Some((1700, 655366)));
        assert_eq!(declared_type("numeric(5)"), Some((1700, 327684)));
        assert_eq!(declared_type("text"), None);
        assert_eq!(declared_type("numeric"), None);
    }
}
