//! `numeric` math with Postgres's digits: `div`, `sqrt`, `power` and the
//! variance family of aggregates over exact numbers.
//!
//! DataFusion computes these in `float8`, so `sqrt(2.0)` ends in
//! `…0951` where Postgres, computing in decimal, gives
//! `1.414213562373095`; `stddev()` of an integer column is a `float8`
//! where Postgres's is a `numeric`. Each function here computes in
//! arbitrary precision and rounds to the scale Postgres's `numeric.c`
//! picks for the value (`sqrt_var`, `power_var`,
//! `numeric_stddev_internal`, Postgres 15). A column has one scale: the
//! planner passes it as the last argument, the exact scale when the
//! operand is a constant, otherwise one that holds Postgres's digits for
//! ordinary values (docs/postgres.md).

use std::str::FromStr;
use std::sync::Arc;

use bigdecimal::num_bigint::BigInt;
use bigdecimal::{BigDecimal, Context, One, RoundingMode, Signed, ToPrimitive, Zero};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::{columnar, sql_error};

/// Digits carried through a computation before the final rounding.
const WORKING_DIGITS: u64 = 60;

/// [`WORKING_DIGITS`] as `bigdecimal`'s precision (checked when compiled).
const WORKING_PRECISION: std::num::NonZeroU64 = match std::num::NonZeroU64::new(WORKING_DIGITS) {
    Some(digits) => digits,
    None => panic!("WORKING_DIGITS is not zero"),
};

/// `NUMERIC_MIN_SIG_DIGITS`.
const MIN_SIGNIFICANT_DIGITS: i64 = 16;

/// The scale of a result column when the operand is not a constant.
pub const COLUMN_SCALE: i8 = 16;

/// A `Decimal128` value as a `BigDecimal`.
fn big(unscaled: i128, scale: i8) -> BigDecimal {
    BigDecimal::new(BigInt::from(unscaled), i64::from(scale))
}

/// `value` rounded half away from zero to `scale` places, unscaled, or
/// 22003 when it does not fit a `numeric(38, scale)`.
fn unscaled(value: &BigDecimal, scale: i8) -> Result<i128> {
    let (digits, _) = value
        .with_scale_round(i64::from(scale), RoundingMode::HalfUp)
        .into_bigint_and_exponent();
    digits
        .to_i128()
        .filter(|v| v.unsigned_abs() < 10u128.pow(38))
        .ok_or_else(|| sql_error("22003", "numeric field overflow"))
}

/// Postgres's `weight` (of the first base-10000 digit) and that digit.
fn first_digit(value: &BigDecimal) -> (i64, u64) {
    if value.is_zero() {
        return (0, 0);
    }
    let (digits, scale) = value.abs().normalized().into_bigint_and_exponent();
    let text = digits.to_string();
    let leading = text.len() as i64 - 1 - scale;
    let weight = leading.div_euclid(4);
    let width = (leading - 4 * weight + 1) as usize;
    let digit = text
        .chars()
        .chain(std::iter::repeat('0'))
        .take(width)
        .collect::<String>();
    (weight, digit.parse().unwrap_or(0))
}

/// Postgres's `select_div_scale` for `num / den` given their scales.
fn division_scale(num: &BigDecimal, num_scale: i64, den: &BigDecimal, den_scale: i64) -> i64 {
    let (num_weight, num_digit) = first_digit(num);
    let (den_weight, den_digit) = first_digit(den);
    let mut weight = num_weight - den_weight;
    if num_digit <= den_digit {
        weight -= 1;
    }
    (MIN_SIGNIFICANT_DIGITS - weight * 4)
        .max(num_scale)
        .max(den_scale)
        .clamp(0, 1000)
}

/// The scale of `sqrt(value)` in Postgres (`sqrt_var`).
pub fn sqrt_scale(value: &BigDecimal, scale: i64) -> i64 {
    let (weight, _) = first_digit(value);
    // C's integer division truncates toward zero.
    let root_weight = (weight + 1) * 4 / 2 - 1;
    (MIN_SIGNIFICANT_DIGITS - root_weight)
        .max(scale)
        .clamp(0, 1000)
}

fn context() -> Context {
    Context::default().with_precision(WORKING_PRECISION)
}

/// The square root of `value` at `scale` places (2201F when negative).
fn sqrt(value: &BigDecimal, scale: i64) -> Result<BigDecimal> {
    if value.is_negative() {
        return Err(sql_error(
            "2201F",
            "cannot take square root of a negative number",
        ));
    }
    let root = value
        .sqrt_with_context(&context())
        .unwrap_or_else(BigDecimal::zero);
    Ok(root.with_scale_round(scale, RoundingMode::HalfUp))
}

/// The natural logarithm of a positive `value`, to [`WORKING_DIGITS`]:
/// square roots bring it near 1, where `2 atanh((x-1)/(x+1))` converges
/// fast.
fn ln(value: &BigDecimal) -> BigDecimal {
    let ctx = context();
    let mut x = value.clone();
    let mut halvings = 0u32;
    let near = BigDecimal::new(BigInt::one(), 2);
    while (&x - BigDecimal::one()).abs() > near {
        x = x.sqrt_with_context(&ctx).unwrap_or_else(BigDecimal::one);
        halvings += 1;
    }
    let y = ((&x - BigDecimal::one()) / (&x + BigDecimal::one()))
        .with_precision_round(WORKING_PRECISION, RoundingMode::HalfEven);
    let y2 = (&y * &y).with_prec(WORKING_DIGITS);
    let (mut term, mut sum) = (y.clone(), y);
    let epsilon = BigDecimal::new(BigInt::one(), WORKING_DIGITS as i64 + 5);
    for n in (3u32..).step_by(2) {
        term = (&term * &y2).with_prec(WORKING_DIGITS);
        let next = (&term / BigDecimal::from(n)).with_prec(WORKING_DIGITS);
        if next.abs() < epsilon {
            break;
        }
        sum += next;
    }
    (sum * BigDecimal::from(2u64.pow(halvings + 1))).with_prec(WORKING_DIGITS)
}

/// `base ^ exponent` and its scale in Postgres (`power_var`), with its
/// errors (2201F).
pub fn power(
    base: &BigDecimal,
    base_scale: i64,
    exponent: &BigDecimal,
    exponent_scale: i64,
) -> Result<(BigDecimal, i64)> {
    if base.is_zero() && exponent.is_negative() {
        return Err(sql_error(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if exponent.is_integer() {
        if let Some(n) = exponent.to_i64().filter(|n| i32::try_from(*n).is_ok()) {
            let scale = MIN_SIGNIFICANT_DIGITS.max(base_scale).clamp(0, 1000);
            if !base.is_zero() {
                let weight = n as f64 * base.abs().to_f64().map_or(0.0, f64::log10);
                check_weight(weight)?;
                if weight < -(scale as f64) - 1.0 {
                    return Ok((BigDecimal::zero(), scale));
                }
            }
            return Ok((base.powi_with_context(n, &context()), scale));
        }
    }
    if base.is_negative() {
        return Err(sql_error(
            "2201F",
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if base.is_zero() {
        return Ok((BigDecimal::zero(), MIN_SIGNIFICANT_DIGITS));
    }
    let exponent_ln = (exponent * ln(base)).with_prec(WORKING_DIGITS);
    let weight = exponent_ln.to_f64().unwrap_or(0.0) * std::f64::consts::LOG10_E;
    check_weight(weight)?;
    let scale = (MIN_SIGNIFICANT_DIGITS - weight as i64)
        .max(base_scale)
        .max(exponent_scale)
        .clamp(0, 1000);
    if weight < -(scale as f64) - 1.0 {
        return Ok((BigDecimal::zero(), scale));
    }
    Ok((exponent_ln.exp_with_context(&context()), scale))
}

/// 22003 for a result whose decimal weight is past what a `numeric` here
/// holds (38 digits), found before computing it: `power(2.0, 1e9)` would
/// otherwise compute hundreds of millions of digits.
fn check_weight(weight: f64) -> Result<()> {
    if weight > 38.0 {
        return Err(sql_error("22003", "value overflows numeric format"));
    }
    Ok(())
}

/// A `numeric` function of one or two operands whose last argument is the
/// scale of its result column (a constant the planner chose).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactMath {
    op: MathOp,
    signature: Signature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MathOp {
    /// `div(a, b)`: the integer quotient, truncated.
    Div,
    Sqrt,
    Power,
}

impl ExactMath {
    fn new(op: MathOp) -> Self {
        ExactMath {
            op,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    pub fn div() -> Self {
        Self::new(MathOp::Div)
    }

    pub fn sqrt() -> Self {
        Self::new(MathOp::Sqrt)
    }

    pub fn power() -> Self {
        Self::new(MathOp::Power)
    }

    fn operands(&self) -> usize {
        match self.op {
            MathOp::Sqrt => 1,
            MathOp::Div | MathOp::Power => 2,
        }
    }
}

/// An operand as a `numeric`: integers become `numeric(20, 0)`.
fn as_numeric(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Decimal128(_, _) => Some(data_type.clone()),
        t if t.is_integer() || t == &DataType::Null => Some(DataType::Decimal128(20, 0)),
        _ => None,
    }
}

/// The result scale written in a call's last argument.
fn result_scale(scalar: Option<&ScalarValue>) -> i8 {
    super::constant_scale(scalar).unwrap_or(COLUMN_SCALE)
}

impl ScalarUDFImpl for ExactMath {
    fn name(&self) -> &str {
        match self.op {
            MathOp::Div => "div",
            MathOp::Sqrt => "numeric_sqrt",
            MathOp::Power => "numeric_power",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let operands = self.operands();
        let scale_given = args.len() == operands + 1;
        if args.len() != operands && !scale_given {
            return plan_err!("{} takes {operands} operand(s)", self.name());
        }
        let mut types = Vec::with_capacity(args.len());
        for t in &args[..operands] {
            match as_numeric(t) {
                Some(t) => types.push(t),
                None => {
                    return plan_err!("{} takes numeric or integer operands, not {t}", self.name())
                }
            }
        }
        // The scale stays the constant it was written as (see
        // `NumericDivide::coerce_types`).
        match args.get(operands) {
            Some(t) if t.is_integer() => types.push(t.clone()),
            Some(_) => types.push(DataType::Int64),
            None => {}
        }
        Ok(types)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, COLUMN_SCALE))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let scale = match self.op {
            MathOp::Div => 0,
            _ => result_scale(
                args.scalar_arguments
                    .get(self.operands())
                    .copied()
                    .flatten(),
            ),
        };
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Decimal128(38, scale),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let out_scale = match args.return_field.data_type() {
            DataType::Decimal128(_, scale) => *scale,
            _ => COLUMN_SCALE,
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..self.operands()])?;
        let mut operands = Vec::with_capacity(arrays.len());
        for array in &arrays {
            let numeric = cast(
                array,
                &as_numeric(array.data_type()).unwrap_or(DataType::Decimal128(20, 0)),
            )?;
            let scale = match numeric.data_type() {
                DataType::Decimal128(_, scale) => *scale,
                _ => 0,
            };
            operands.push((numeric, scale));
        }
        let value = |i: usize, row: usize| -> Option<BigDecimal> {
            let (array, scale) = &operands[i];
            let array = array.as_primitive::<Decimal128Type>();
            let row = if array.len() == 1 { 0 } else { row };
            array.is_valid(row).then(|| big(array.value(row), *scale))
        };
        let rows = arrays.iter().map(|a| a.len()).max().unwrap_or(0);
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let result = match self.op {
                MathOp::Div => match (value(0, row), value(1, row)) {
                    (Some(a), Some(b)) => Some(integer_quotient(&a, &b)?),
                    _ => None,
                },
                MathOp::Sqrt => match value(0, row) {
                    Some(x) => {
                        let scale = sqrt_scale(&x, i64::from(operands[0].1));
                        Some(sqrt(&x, scale)?)
                    }
                    None => None,
                },
                MathOp::Power => match (value(0, row), value(1, row)) {
                    (Some(a), Some(b)) => {
                        let (raised, scale) =
                            power(&a, i64::from(operands[0].1), &b, i64::from(operands[1].1))?;
                        Some(raised.with_scale_round(scale, RoundingMode::HalfUp))
                    }
                    _ => None,
                },
            };
            out.push(result.map(|v| unscaled(&v, out_scale)).transpose()?);
        }
        let result = Decimal128Array::from(out).with_precision_and_scale(38, out_scale)?;
        columnar(&args.args[..self.operands()], Arc::new(result))
    }
}

/// `div(a, b)`: `a / b` truncated toward zero (22012 for a zero divisor).
fn integer_quotient(a: &BigDecimal, b: &BigDecimal) -> Result<BigDecimal> {
    if b.is_zero() {
        return Err(super::sql_error("22012", "division by zero"));
    }
    Ok((a / b).with_scale_round(0, RoundingMode::Down))
}

/// Which of the variance family an aggregate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spread {
    VarianceSample,
    VariancePopulation,
    StddevSample,
    StddevPopulation,
}

impl Spread {
    pub const ALL: [Spread; 4] = [
        Spread::VarianceSample,
        Spread::VariancePopulation,
        Spread::StddevSample,
        Spread::StddevPopulation,
    ];

    /// The member for a Postgres aggregate name.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "variance" | "var" | "var_samp" | "var_sample" => Spread::VarianceSample,
            "var_pop" | "var_population" => Spread::VariancePopulation,
            "stddev" | "stddev_samp" => Spread::StddevSample,
            "stddev_pop" => Spread::StddevPopulation,
            _ => return None,
        })
    }

    fn sample(self) -> bool {
        matches!(self, Spread::VarianceSample | Spread::StddevSample)
    }

    fn root(self) -> bool {
        matches!(self, Spread::StddevSample | Spread::StddevPopulation)
    }
}

/// `variance()`, `stddev()` and kin of an integer or `numeric`: exact
/// sums, then Postgres's `numeric_stddev_internal`. The partial state is
/// the count and the two sums as decimal text, so it crosses nodes
/// exactly.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericSpread {
    spread: Spread,
    signature: Signature,
}

impl NumericSpread {
    pub fn new(spread: Spread) -> Self {
        NumericSpread {
            spread,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The scale of the result column for an operand of `scale` places.
    pub fn column_scale(scale: i8) -> i8 {
        COLUMN_SCALE.max(scale.saturating_mul(2)).min(38)
    }
}

impl AggregateUDFImpl for NumericSpread {
    fn name(&self) -> &str {
        match self.spread {
            Spread::VarianceSample => "numeric_var_samp",
            Spread::VariancePopulation => "numeric_var_pop",
            Spread::StddevSample => "numeric_stddev_samp",
            Spread::StddevPopulation => "numeric_stddev_pop",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [t] => match as_numeric(t) {
                Some(t) => Ok(vec![t]),
                None => plan_err!(
                    "{} takes a numeric or integer operand, not {t}",
                    self.name()
                ),
            },
            _ => plan_err!("{} takes one operand", self.name()),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let scale = match args.first() {
            Some(DataType::Decimal128(_, scale)) => *scale,
            _ => 0,
        };
        Ok(DataType::Decimal128(38, Self::column_scale(scale)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[count]", args.name),
                DataType::Int64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[sum]", args.name),
                DataType::Utf8,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[sum_squares]", args.name),
                DataType::Utf8,
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let scale = match args.expr_fields.first().map(|f| f.data_type()) {
            Some(DataType::Decimal128(_, scale)) => *scale,
            _ => 0,
        };
        Ok(Box::new(SpreadAccumulator {
            spread: self.spread,
            scale,
            count: 0,
            sum: BigDecimal::zero(),
            sum_squares: BigDecimal::zero(),
        }))
    }
}

#[derive(Debug)]
struct SpreadAccumulator {
    spread: Spread,
    /// The operand's scale (Postgres's `dscale` of the sums).
    scale: i8,
    count: i64,
    sum: BigDecimal,
    sum_squares: BigDecimal,
}

impl SpreadAccumulator {
    /// Postgres's `numeric_stddev_internal`.
    fn result(&self) -> Option<BigDecimal> {
        let n = BigDecimal::from(self.count);
        if self.count == 0 || (self.spread.sample() && self.count <= 1) {
            return None;
        }
        let numerator = &n * &self.sum_squares - &self.sum * &self.sum;
        if !numerator.is_positive() {
            return Some(BigDecimal::zero());
        }
        let denominator = if self.spread.sample() {
            &n * BigDecimal::from(self.count - 1)
        } else {
            &n * &n
        };
        let scale = division_scale(&numerator, 2 * i64::from(self.scale), &denominator, 0);
        let variance = (numerator / denominator)
            .with_prec(WORKING_DIGITS)
            .with_scale_round(scale, RoundingMode::HalfUp);
        if self.spread.root() {
            sqrt(&variance, scale).ok()
        } else {
            Some(variance)
        }
    }
}

impl Accumulator for SpreadAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<Decimal128Type>();
        for value in values.iter().flatten() {
            let value = big(value, self.scale);
            self.sum_squares += &value * &value;
            self.sum += value;
            self.count += 1;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<Int64Type>();
        let sums = states[1].as_string::<i32>();
        let squares = states[2].as_string::<i32>();
        for row in 0..counts.len() {
            if counts.is_null(row) {
                continue;
            }
            let parse = |text: &str| {
                BigDecimal::from_str(text)
                    .map_err(|e| DataFusionError::Internal(format!("bad partial sum {text}: {e}")))
            };
            self.count += counts.value(row);
            self.sum += parse(sums.value(row))?;
            self.sum_squares += parse(squares.value(row))?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Utf8(Some(self.sum.to_plain_string())),
            ScalarValue::Utf8(Some(self.sum_squares.to_plain_string())),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let scale = NumericSpread::column_scale(self.scale);
        let value = self.result().map(|v| unscaled(&v, scale)).transpose()?;
        Ok(ScalarValue::Decimal128(value, 38, scale))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sum.digits() as usize
            + self.sum_squares.digits() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> BigDecimal {
        BigDecimal::from_str(text).unwrap()
    }

    fn scale_of(text: &str) -> i64 {
        text.split_once('.').map_or(0, |(_, f)| f.len() as i64)
    }

    #[test]
    fn square_roots_have_postgres_digits() {
        for (x, expected) in [
            ("2.0", "1.414213562373095"),
            ("0.0", "0.000000000000000"),
            ("16.00", "4.000000000000000"),
            ("0.0001", "0.01000000000000000"),
            ("123456789.123", "11111.11106609056"),
        ] {
            let x = num(x);
            let scale = sqrt_scale(&x, x.fractional_digit_count());
            assert_eq!(sqrt(&x, scale).unwrap().to_plain_string(), expected);
        }
        assert!(sqrt(&num("-1"), 16).is_err());
    }

    #[test]
    fn powers_have_postgres_digits() {
        for (base, exponent, expected) in [
            ("2.0", "0.5", "1.4142135623730950"),
            ("2.0", "2", "4.0000000000000000"),
            ("2.5", "-2", "0.1600000000000000"),
            ("10.0", "20", "100000000000000000000.0000000000000000"),
            ("1.5", "2.5", "2.7556759606310754"),
            ("0.0", "0.5", "0.0000000000000000"),
        ] {
            let (raised, scale) = power(
                &num(base),
                scale_of(base),
                &num(exponent),
                scale_of(exponent),
            )
            .unwrap();
            assert_eq!(
                raised
                    .with_scale_round(scale, RoundingMode::HalfUp)
                    .to_plain_string(),
                expected,
                "{base} ^ {exponent}"
            );
        }
        assert!(power(&num("0.0"), 1, &num("-1.5"), 1).is_err());
        // Too large to hold: refused before it is computed.
        assert!(power(&num("2.0"), 1, &num("1000000000"), 0).is_err());
        assert!(power(&num("2.0"), 1, &num("1000000000.5"), 1).is_err());
        let (tiny, _) = power(&num("0.5"), 1, &num("1000000000"), 0).unwrap();
        assert!(tiny.is_zero());
        assert!(power(&num("-2.0"), 1, &num("0.5"), 1).is_err());
    }

    #[test]
    fn variances_have_postgres_digits() {
        let run = |spread, scale, values: &[&str]| {
            let mut acc = SpreadAccumulator {
                spread,
                scale,
                count: 0,
                sum: BigDecimal::zero(),
                sum_squares: BigDecimal::zero(),
            };
            for v in values {
                let v = num(v);
                acc.sum_squares += &v * &v;
                acc.sum += v;
                acc.count += 1;
            }
            acc.result().map(|v| v.to_plain_string())
        };
        let values = ["1.5", "2.25", "4"];
        assert_eq!(
            run(Spread::VarianceSample, 2, &values).unwrap(),
            "1.6458333333333333"
        );
        assert_eq!(
            run(Spread::VariancePopulation, 2, &values).unwrap(),
            "1.09722222222222222222"
        );
        assert_eq!(
            run(Spread::StddevPopulation, 2, &values).unwrap(),
            "1.04748375749804455964"
        );
        assert_eq!(
            run(Spread::StddevSample, 0, &["1", "2", "4"]).unwrap(),
            "1.5275252316519467"
        );
        assert_eq!(run(Spread::VarianceSample, 0, &["1", "1"]).unwrap(), "0");
        assert_eq!(run(Spread::VarianceSample, 0, &["1"]), None);
    }
}
