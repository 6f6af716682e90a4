//! Functions that refuse operands outside their domain, as Postgres's do:
//! `ln(0)` is 2201E `cannot take logarithm of zero`, `sqrt(-1)` 2201F
//! (DataFusion's answer `-inf` or `NaN` instead), and `repeat`, `lpad` and
//! `rpad` refuse to make a value past Postgres's 1 GB limit with 54000
//! (DataFusion's allocate it, however large, and could take the node's
//! memory with them). [`DomainChecked`] wraps DataFusion's function under
//! its own name and checks the operands first.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use super::sql_error;

/// What a function's operand must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Domain {
    /// Logarithms: positive.
    Positive,
    /// Square roots: not negative.
    NotNegative,
    /// Text made to a requested length: at most [`MAX_VALUE_BYTES`].
    Length,
}

/// Postgres's largest value: 1 GB less one byte.
const MAX_VALUE_BYTES: i64 = (1 << 30) - 1;

/// DataFusion's `inner` (`ln`, `log`, `sqrt`) with Postgres's domain
/// errors.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DomainChecked {
    inner: Arc<ScalarUDF>,
    domain: Domain,
}

impl DomainChecked {
    /// The wrapper for `inner`, if Postgres checks its operand.
    pub fn wrap(inner: Arc<ScalarUDF>) -> Option<ScalarUDF> {
        let domain = match inner.name() {
            "ln" | "log" | "log10" | "log2" => Domain::Positive,
            "sqrt" => Domain::NotNegative,
            "repeat" | "lpad" | "rpad" => Domain::Length,
            _ => return None,
        };
        Some(ScalarUDF::from(DomainChecked { inner, domain }))
    }

    fn check(&self, operand: &ColumnarValue) -> Result<()> {
        let values = cast(&operand.to_array(1)?, &DataType::Float64)?;
        for value in values.as_primitive::<Float64Type>().iter().flatten() {
            match self.domain {
                Domain::Positive if value == 0.0 => {
                    return Err(sql_error("2201E", "cannot take logarithm of zero"))
                }
                Domain::Positive if value < 0.0 => {
                    return Err(sql_error(
                        "2201E",
                        "cannot take logarithm of a negative number",
                    ))
                }
                Domain::NotNegative if value < 0.0 => {
                    return Err(sql_error(
                        "2201F",
                        "cannot take square root of a negative number",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl ScalarUDFImpl for DomainChecked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.domain {
            Domain::Length => check_length(self.inner.name(), &args)?,
            // `log(b, x)` checks `x`; the others have one operand.
            _ => {
                if let Some(operand) = args.args.last() {
                    self.check(operand)?;
                }
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// 54000 `requested length too large` when `repeat(text, n)` or
/// `lpad`/`rpad(text, n)` would make a value longer than Postgres allows,
/// before any of it is allocated.
fn check_length(name: &str, args: &ScalarFunctionArgs) -> Result<()> {
    let Some(count) = args.args.get(1) else {
        return Ok(());
    };
    let all_scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if all_scalar { 1 } else { args.number_rows };
    let counts = cast(&count.to_array(rows)?, &DataType::Int64)?;
    let counts = counts.as_primitive::<Int64Type>();
    let too_large = || sql_error("54000", "requested length too large");
    if name == "repeat" {
        let Ok(lengths) = length(&args.args[0].to_array(rows)?) else {
            return Ok(());
        };
        let lengths = cast(&lengths, &DataType::Int64)?;
        let lengths = lengths.as_primitive::<Int64Type>();
        for (length, n) in lengths.iter().zip(counts.iter()) {
            if let (Some(length), Some(n)) = (length, n) {
                if length.saturating_mul(n) > MAX_VALUE_BYTES {
                    return Err(too_large());
                }
            }
        }
    } else if counts
        .iter()
        .flatten()
        // Up to four bytes a character.
        .any(|n| n.saturating_mul(4) > MAX_VALUE_BYTES)
    {
        return Err(too_large());
    }
    Ok(())
}
