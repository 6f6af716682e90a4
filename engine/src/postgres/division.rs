//! `numeric` division at the scale Postgres picks for each quotient.
//!
//! Postgres rounds a quotient to at least 16 significant digits: its scale
//! (`select_div_scale`) is 16 places less four for every base-10000 digit
//! the quotient has before the point, and never less than either
//! operand's scale. So `7.0 / 2` is `3.5000000000000000` and `1.0 / 3` is
//! `0.33333333333333333333`. A column has one scale, so [`NumericDivide`]
//! rounds each quotient to Postgres's scale and writes it at the column's
//! (at least 20): the value is Postgres's, written with trailing zeros
//! where Postgres's scale is shorter.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{i256, DataType, Decimal128Type};
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::columnar;

/// The fewest significant digits of a quotient (`NUMERIC_MIN_SIG_DIGITS`).
const MIN_SIGNIFICANT_DIGITS: i32 = 16;

/// The fewest decimal places of a quotient column: a quotient below 1 has
/// up to 20 in Postgres.
pub const QUOTIENT_COLUMN_SCALE: i8 = 20;

/// `numeric_divide(a, b)`: `a / b` for `numeric` (or integer) operands.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericDivide {
    signature: Signature,
}

impl Default for NumericDivide {
    fn default() -> Self {
        NumericDivide {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// An operand as a `numeric`: integers become `numeric(20, 0)`.
fn as_numeric(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Decimal128(_, _) => Some(data_type.clone()),
        t if t.is_integer() => Some(DataType::Decimal128(20, 0)),
        DataType::Null => Some(DataType::Decimal128(20, 0)),
        _ => None,
    }
}

fn scale_of(data_type: &DataType) -> i8 {
    match data_type {
        DataType::Decimal128(_, scale) => *scale,
        _ => 0,
    }
}

/// The scale of the quotient column for operands of these types.
pub fn quotient_scale(left: &DataType, right: &DataType) -> i8 {
    QUOTIENT_COLUMN_SCALE
        .max(scale_of(left))
        .max(scale_of(right))
        .min(38)
}

impl ScalarUDFImpl for NumericDivide {
    fn name(&self) -> &str {
        "numeric_divide"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [left, right, ..] if args.len() <= 3 => match (as_numeric(left), as_numeric(right)) {
                // The scale stays the constant it was written as (an
                // `int4` once literals are narrowed), so it is still a
                // constant when the result type is computed again.
                (Some(left), Some(right)) if args.len() == 3 && args[2].is_integer() => {
                    Ok(vec![left, right, args[2].clone()])
                }
                (Some(left), Some(right)) => Ok(vec![left, right]),
                _ => plan_err!(
                    "numeric_divide takes numeric or integer operands, not {left} and {right}"
                ),
            },
            _ => plan_err!("numeric_divide takes two operands (and a result scale)"),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, quotient_scale(&args[0], &args[1])))
    }

    /// A third argument, a constant the planner computed from constant
    /// operands, is the result's scale: Postgres's for that quotient.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<&DataType> = args.arg_fields.iter().map(|f| f.data_type()).collect();
        let scale = super::constant_scale(args.scalar_arguments.get(2).copied().flatten())
            .unwrap_or_else(|| quotient_scale(types[0], types[1]));
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Decimal128(38, scale),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let out_scale = match args.return_field.data_type() {
            DataType::Decimal128(_, scale) => *scale,
            _ => return plan_err!("numeric_divide returns a numeric"),
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let (left, right) = (
            cast(
                &arrays[0],
                &as_numeric(arrays[0].data_type()).unwrap_or(DataType::Decimal128(20, 0)),
            )?,
            cast(
                &arrays[1],
                &as_numeric(arrays[1].data_type()).unwrap_or(DataType::Decimal128(20, 0)),
            )?,
        );
        let (left_scale, right_scale) = (scale_of(left.data_type()), scale_of(right.data_type()));
        let (left, right) = (
            left.as_primitive::<Decimal128Type>(),
            right.as_primitive::<Decimal128Type>(),
        );
        let quotients = left
            .iter()
            .zip(right.iter())
            .map(|pair| match pair {
                (Some(a), Some(b)) => {
                    divide((a, left_scale), (b, right_scale), out_scale).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(38, out_scale)?;
        let result: Arc<dyn Array> = Arc::new(quotients);
        columnar(&args.args[..2], result)
    }
}

/// The weight of a value's first base-10000 digit, and that digit (Postgres's
/// `NumericVar` `weight` and `digits[0]`); zero for zero.
fn first_digit(mantissa: i128, scale: i8) -> (i32, u128) {
    let magnitude = mantissa.unsigned_abs();
    if magnitude == 0 {
        return (0, 0);
    }
    let leading = magnitude.ilog10() as i32 - i32::from(scale);
    let weight = leading.div_euclid(4);
    let shift = i32::from(scale) + 4 * weight;
    let digit = if shift >= 0 {
        magnitude / 10u128.pow(shift as u32)
    } else {
        magnitude * 10u128.pow((-shift) as u32)
    };
    (weight, digit)
}

/// Postgres's `select_div_scale`.
pub fn division_scale(left: (i128, i8), right: (i128, i8)) -> i32 {
    let (left_weight, left_digit) = first_digit(left.0, left.1);
    let (right_weight, right_digit) = first_digit(right.0, right.1);
    let mut weight = left_weight - right_weight;
    if left_digit <= right_digit {
        weight -= 1;
    }
    (MIN_SIGNIFICANT_DIGITS - weight * 4)
        .max(i32::from(left.1))
        .max(i32::from(right.1))
        .clamp(0, 1000)
}

fn overflow() -> DataFusionError {
    super::sql_error("22003", "numeric field overflow")
}

fn pow10(exponent: i32) -> Result<i256> {
    i256::from_i128(10)
        .checked_pow(exponent as u32)
        .ok_or_else(overflow)
}

/// `left / right` rounded (half away from zero) to Postgres's scale, as
/// the unscaled value at `out_scale`.
pub fn divide(left: (i128, i8), right: (i128, i8), out_scale: i8) -> Result<i128> {
    if right.0 == 0 {
        return Err(super::sql_error("22012", "division by zero"));
    }
    // Rounded once, at the scale written when Postgres's is longer.
    let scale = division_scale(left, right).min(i32::from(out_scale));
    let shift = scale + i32::from(right.1) - i32::from(left.1);
    let (mut numerator, mut denominator) = (i256::from_i128(left.0), i256::from_i128(right.0));
    if shift >= 0 {
        numerator = numerator.checked_mul(pow10(shift)?).ok_or_else(overflow)?;
    } else {
        denominator = denominator
            .checked_mul(pow10(-shift)?)
            .ok_or_else(overflow)?;
    }
    let quotient = numerator.checked_div(denominator).ok_or_else(overflow)?;
    let remainder = numerator.checked_rem(denominator).ok_or_else(overflow)?;
    let doubled = remainder
        .wrapping_abs()
        .checked_mul(i256::from_i128(2))
        .ok_or_else(overflow)?;
    let quotient = if doubled >= denominator.wrapping_abs() {
        let away = if numerator.is_negative() != denominator.is_negative() {
            i256::from_i128(-1)
        } else {
            i256::from_i128(1)
        };
        quotient.checked_add(away).ok_or_else(overflow)?
    } else {
        quotient
    };
    let padded = quotient
        .checked_mul(pow10(i32::from(out_scale) - scale)?)
        .ok_or_else(overflow)?;
    padded.to_i128().ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(unscaled: i128, scale: i8) -> String {
        let array = Decimal128Array::from(vec![unscaled])
            .with_precision_and_scale(38, scale)
            .unwrap();
        array.value_as_string(0)
    }

    #[test]
    fn quotients_have_postgres_digits() {
        // 7.0 / 2 = 3.5000000000000000 (scale 16), written at scale 20.
        assert_eq!(division_scale((70, 1), (2, 0)), 16);
        assert_eq!(
            text(divide((70, 1), (2, 0), 20).unwrap(), 20),
            "3.50000000000000000000"
        );
        // 1.0 / 3 = 0.33333333333333333333 (scale 20).
        assert_eq!(division_scale((10, 1), (3, 0)), 20);
        assert_eq!(
            text(divide((10, 1), (3, 0), 20).unwrap(), 20),
            "0.33333333333333333333"
        );
        // 2.0 / 3 rounds its last place up; a negative quotient rounds away from zero.
        assert_eq!(
            text(divide((20, 1), (3, 0), 20).unwrap(), 20),
            "0.66666666666666666667"
        );
        assert_eq!(
            text(divide((-20, 1), (3, 0), 20).unwrap(), 20),
            "-0.66666666666666666667"
        );
        // 10 / 3: 3.3333333333333333, then zeros.
        assert_eq!(
            text(divide((10, 0), (3, 0), 20).unwrap(), 20),
            "3.33333333333333330000"
        );
        // 123456 / 2 has a base-10000 digit before the point's: scale 12.
        assert_eq!(division_scale((123456, 0), (2, 0)), 12);
        assert_eq!(division_scale((12345, 0), (1, 0)), 16);
        assert!(divide((1, 0), (0, 0), 20).is_err());
    }
}
