//! Integer arithmetic that fails on overflow, and float division by zero
//! that fails, as in Postgres.
//!
//! DataFusion's `+`, `-`, `*` and unary `-` wrap around on integers
//! (`9223372036854775807::bigint + 1` is the smallest `bigint`), and a
//! float divided by zero is `Infinity`. Postgres refuses both: 22003
//! `integer out of range`, 22012 `division by zero`. After type coercion,
//! [`CheckedArithmetic`] replaces these operators on `int2`/`int4`/`int8`
//! (and float division) with functions that check.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::{columnar, rewrite_node_expressions, sql_error};

/// One checked operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Negate,
    /// Float division.
    Divide,
}

/// A checked operator as a function (`checked_add(a, b)`, …).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    op: Op,
    signature: Signature,
}

impl Checked {
    fn new(op: Op) -> Self {
        Checked {
            op,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// Every checked operation, for registering.
    pub fn all() -> Vec<ScalarUDF> {
        [Op::Add, Op::Subtract, Op::Multiply, Op::Negate, Op::Divide]
            .into_iter()
            .map(|op| ScalarUDF::from(Checked::new(op)))
            .collect()
    }
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        match self.op {
            Op::Add => "checked_add",
            Op::Subtract => "checked_subtract",
            Op::Multiply => "checked_multiply",
            Op::Negate => "checked_negate",
            Op::Divide => "checked_divide",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        args.first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("{} needs an operand", self.name())))
    }

    /// Both operands as the wider type: a statement is analyzed again
    /// when it runs, and a literal may be narrowed then.
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let arity = if self.op == Op::Negate { 1 } else { 2 };
        if args.len() != arity {
            return Err(DataFusionError::Plan(format!(
                "{} takes {arity} operand(s), not {}",
                self.name(),
                args.len()
            )));
        }
        if !args
            .iter()
            .all(|t| t.is_integer() || t.is_floating() || t == &DataType::Null)
        {
            return Err(DataFusionError::Plan(format!(
                "{} takes integer or float operands",
                self.name()
            )));
        }
        let rank = |t: &DataType| match t {
            DataType::Int16 => 0,
            DataType::Int32 => 1,
            DataType::Int64 => 2,
            DataType::Float32 => 3,
            _ => 4,
        };
        let widest = args.iter().max_by_key(|t| rank(t)).cloned();
        let widest = widest
            .ok_or_else(|| DataFusionError::Plan(format!("{} needs an operand", self.name())))?;
        Ok(vec![widest; args.len()])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result = self
            .compute(&arrays)
            .map_err(|e| out_of_range(e, arrays[0].data_type()))?;
        columnar(&args.args, result)
    }
}

impl Checked {
    fn compute(&self, arrays: &[ArrayRef]) -> std::result::Result<ArrayRef, ArrowError> {
        match self.op {
            Op::Add => numeric::add(&arrays[0], &arrays[1]),
            Op::Subtract => numeric::sub(&arrays[0], &arrays[1]),
            Op::Multiply => numeric::mul(&arrays[0], &arrays[1]),
            Op::Negate => numeric::neg(&arrays[0]),
            Op::Divide => {
                let divisor = &arrays[1];
                let zero = match divisor.data_type() {
                    DataType::Float64 => divisor
                        .as_primitive::<Float64Type>()
                        .iter()
                        .any(|v| v == Some(0.0)),
                    DataType::Float32 => divisor
                        .as_primitive::<Float32Type>()
                        .iter()
                        .any(|v| v == Some(0.0)),
                    _ => false,
                };
                if zero {
                    return Err(ArrowError::DivideByZero);
                }
                numeric::div(&arrays[0], divisor)
            }
        }
    }
}

/// Postgres's error for an overflow of `data_type` (22003) or a division
/// by zero (22012).
fn out_of_range(e: ArrowError, data_type: &DataType) -> DataFusionError {
    match e {
        ArrowError::ArithmeticOverflow(_) => sql_error(
            "22003",
            match data_type {
                DataType::Int16 => "smallint out of range",
                DataType::Int64 => "bigint out of range",
                _ => "integer out of range",
            },
        ),
        ArrowError::DivideByZero => sql_error("22012", "division by zero"),
        other => DataFusionError::ArrowError(Box::new(other), None),
    }
}

/// Replaces integer `+`, `-`, `*`, unary `-` and float `/` with the
/// checked functions; see the module's documentation.
#[derive(Debug)]
pub struct CheckedArithmetic;

impl AnalyzerRule for CheckedArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| rewrite_node_expressions(node, checked))
            .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_checked_arithmetic"
    }
}

fn is_checked_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn checked(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let call = |op: Op, args: Vec<Expr>| {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(Checked::new(op))),
            args,
        ))
    };
    let op = match &expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema))
            else {
                return Ok(Transformed::no(expr));
            };
            match op {
                _ if left_type != right_type => None,
                Operator::Plus if is_checked_integer(&left_type) => Some(Op::Add),
                Operator::Minus if is_checked_integer(&left_type) => Some(Op::Subtract),
                Operator::Multiply if is_checked_integer(&left_type) => Some(Op::Multiply),
                Operator::Divide if left_type.is_floating() => Some(Op::Divide),
                _ => None,
            }
        }
        Expr::Negative(operand) => operand
            .get_type(schema)
            .is_ok_and(|t| is_checked_integer(&t))
            .then_some(Op::Negate),
        _ => None,
    };
    Ok(match (op, expr) {
        (Some(op), Expr::BinaryExpr(BinaryExpr { left, right, .. })) => {
            Transformed::yes(call(op, vec![*left, *right]))
        }
        (Some(op), Expr::Negative(operand)) => Transformed::yes(call(op, vec![*operand])),
        (_, expr) => Transformed::no(expr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int16Array, Int64Array};

    fn run(op: Op, arrays: Vec<ArrayRef>) -> std::result::Result<ArrayRef, String> {
        let data_type = arrays[0].data_type().clone();
        Checked::new(op)
            .compute(&arrays)
            .map_err(|e| out_of_range(e, &data_type).to_string())
    }

    #[test]
    fn overflow_is_an_error_named_for_the_type() {
        let max: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX]));
        let one: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let error = run(Op::Add, vec![max, one.clone()]).unwrap_err();
        assert!(error.contains("bigint out of range"), "{error}");
        let min: ArrayRef = Arc::new(Int16Array::from(vec![i16::MIN]));
        let error = run(Op::Negate, vec![min]).unwrap_err();
        assert!(error.contains("smallint out of range"), "{error}");
        let sum = run(Op::Add, vec![one.clone(), one]).unwrap();
        assert_eq!(
            sum.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            2
        );
    }

    #[test]
    fn float_division_by_zero_is_an_error() {
        let x: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        let zero: ArrayRef = Arc::new(Float64Array::from(vec![0.0]));
        assert!(run(Op::Divide, vec![x.clone(), zero]).is_err());
        let two: ArrayRef = Arc::new(Float64Array::from(vec![2.0]));
        assert!(run(Op::Divide, vec![x, two]).is_ok());
    }
}
