//! Math functions that refuse operands outside their domain, as Postgres's
//! do: `ln(0)` is 2201E `cannot take logarithm of zero`, `sqrt(-1)` 2201F.
//! DataFusion's answer `-inf` or `NaN` instead. [`DomainChecked`] wraps
//! DataFusion's function under its own name and checks the operand first.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Float64Type};
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
}

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
        // `log(b, x)` checks `x`; the others have one operand.
        if let Some(operand) = args.args.last() {
            self.check(operand)?;
        }
        self.inner.invoke_with_args(args)
    }
}
