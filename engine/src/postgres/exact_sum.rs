//! `exact_sum(integer)`: the sum of integers as a `numeric(38, 0)`, added in
//! 128 bits as the values arrive.
//!
//! Postgres sums `bigint`s without overflow (its `avg(bigint)` and
//! `sum(bigint)` are `numeric`). DataFusion's way there, widening the
//! column to a 128-bit decimal and summing that, materialises a second
//! column of 16 bytes a row; this adds each value into its group's 128-bit
//! sum directly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Decimal128Array};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::sql_error;

/// The result type: every `bigint` sum fits 38 digits.
const SUM_TYPE: DataType = DataType::Decimal128(38, 0);

/// The aggregate; see the module's documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactSum {
    signature: Signature,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ExactSum {
    fn name(&self) -> &str {
        "exact_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [t] if t.is_integer() || t == &DataType::Null => Ok(vec![DataType::Int64]),
            _ => plan_err!("exact_sum takes one integer operand"),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(SUM_TYPE)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sum]", args.name),
            SUM_TYPE,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("exact_sum does not take DISTINCT");
        }
        Ok(Box::new(SumAccumulator::default()))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(GroupSums::default()))
    }
}

fn overflow() -> datafusion::common::DataFusionError {
    sql_error("22003", "numeric field overflow")
}

/// Adds `value` to `sum`, 22003 past 38 digits.
fn add(sum: Option<i128>, value: i128) -> Result<Option<i128>> {
    let total = sum.unwrap_or(0).checked_add(value).ok_or_else(overflow)?;
    if total.unsigned_abs() >= 10u128.pow(38) {
        return Err(overflow());
    }
    Ok(Some(total))
}

/// The values of an update (`bigint`s) or a merge (partial sums) as i128s.
fn as_i128(array: &ArrayRef) -> Result<Vec<Option<i128>>> {
    Ok(match array.data_type() {
        DataType::Decimal128(_, _) => array.as_primitive::<Decimal128Type>().iter().collect(),
        DataType::Int64 => array
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
        _ => cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(i128::from))
            .collect(),
    })
}

fn sums_array(sums: Vec<Option<i128>>) -> Result<ArrayRef> {
    Ok(Arc::new(
        Decimal128Array::from(sums).with_precision_and_scale(38, 0)?,
    ))
}

#[derive(Debug, Default)]
struct SumAccumulator {
    sum: Option<i128>,
}

impl Accumulator for SumAccumulator {
    fn update_batch(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        for value in as_i128(&arrays[0])?.into_iter().flatten() {
            self.sum = add(self.sum, value)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Decimal128(self.sum, 38, 0))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// One 128-bit sum per group; `None` until the group sees a value.
#[derive(Debug, Default)]
struct GroupSums {
    sums: Vec<Option<i128>>,
}

impl GroupSums {
    fn add_all(
        &mut self,
        array: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize(total_num_groups, None);
        if array.data_type() == &DataType::Int64 && filter.is_none() && array.null_count() == 0 {
            // The common case, without the checks: a group's sum of
            // `bigint`s stays under 2^126 < 10^38 until it has summed 2^63
            // rows.
            let values = array.as_primitive::<Int64Type>().values();
            for (&value, &group) in values.iter().zip(group_indices) {
                *self.sums[group].get_or_insert(0) += i128::from(value);
            }
            return Ok(());
        }
        let passes = |row: usize| filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        // Read in place: no widened copy of the column on the hot path.
        let mut add_row = |row: usize, value: i128, group: usize| -> Result<()> {
            if passes(row) {
                self.sums[group] = add(self.sums[group], value)?;
            }
            Ok(())
        };
        match array.data_type() {
            DataType::Int64 => {
                let values = array.as_primitive::<Int64Type>();
                for (row, &group) in group_indices.iter().enumerate() {
                    if values.is_valid(row) {
                        add_row(row, i128::from(values.value(row)), group)?;
                    }
                }
            }
            _ => {
                for (row, (value, &group)) in
                    as_i128(array)?.into_iter().zip(group_indices).enumerate()
                {
                    if let Some(value) = value {
                        add_row(row, value, group)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for GroupSums {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add_all(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add_all(&values[0], group_indices, None, total_num_groups)
    }

    /// Each row as its own partial sum (when partial aggregation is
    /// skipped).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let sums = as_i128(&values[0])?
            .into_iter()
            .enumerate()
            .map(|(row, value)| {
                let passes = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
                value.filter(|_| passes)
            })
            .collect();
        Ok(vec![sums_array(sums)?])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        sums_array(emit_to.take_needed(&mut self.sums))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<Option<i128>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    #[test]
    fn groups_sum_past_bigint_without_overflow() {
        let mut sums = GroupSums::default();
        let values: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(i64::MAX),
            Some(i64::MAX),
            None,
            Some(5),
        ]));
        sums.update_batch(&[values], &[0, 0, 1, 2], None, 4)
            .unwrap();
        let result = sums.evaluate(EmitTo::All).unwrap();
        let result = result.as_primitive::<Decimal128Type>();
        assert_eq!(result.value(0), 2 * i128::from(i64::MAX));
        assert!(result.is_null(1));
        assert_eq!(result.value(2), 5);
        assert!(result.is_null(3));
    }

    #[test]
    fn a_column_without_nulls_sums_the_same() {
        let mut sums = GroupSums::default();
        let values: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, i64::MIN, i64::MAX, 5]));
        sums.update_batch(std::slice::from_ref(&values), &[0, 1, 0, 2], None, 4)
            .unwrap();
        sums.update_batch(&[values], &[2, 2, 2, 2], None, 4)
            .unwrap();
        let result = sums.evaluate(EmitTo::All).unwrap();
        let result = result.as_primitive::<Decimal128Type>();
        assert_eq!(result.value(0), 2 * i128::from(i64::MAX));
        assert_eq!(result.value(1), i128::from(i64::MIN));
        assert_eq!(
            result.value(2),
            5 + i128::from(i64::MAX) * 2 + i128::from(i64::MIN) + 5
        );
        assert!(result.is_null(3));
    }
}
