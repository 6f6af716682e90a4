//! Postgres's `make_timestamp(year, month, day, hour, minute, seconds)`.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::columnar;

/// `make_timestamp`: a `timestamp` from its fields, the seconds with a
/// fraction.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MakeTimestamp {
    signature: Signature,
}

impl Default for MakeTimestamp {
    fn default() -> Self {
        MakeTimestamp {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MakeTimestamp {
    fn name(&self) -> &str {
        "make_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 6 || !args.iter().all(|t| t.is_numeric() || t == &DataType::Null) {
            return plan_err!(
                "make_timestamp takes (year, month, day, hour, minute, seconds) as numbers"
            );
        }
        let mut types = vec![DataType::Int32; 5];
        types.push(DataType::Float64);
        Ok(types)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let fields: Vec<_> = arrays[..5]
            .iter()
            .map(|a| cast(a, &DataType::Int32))
            .collect::<std::result::Result<_, _>>()?;
        let seconds = cast(&arrays[5], &DataType::Float64)?;
        let seconds = seconds.as_primitive::<Float64Type>();
        let field = |f: usize, row: usize| {
            let values = fields[f].as_primitive::<Int32Type>();
            (!values.is_null(row)).then(|| values.value(row))
        };
        let mut out = Vec::with_capacity(seconds.len());
        for row in 0..seconds.len() {
            let parts = (0..5).map(|f| field(f, row)).collect::<Option<Vec<i32>>>();
            let (Some(parts), false) = (parts, seconds.is_null(row)) else {
                out.push(None);
                continue;
            };
            let second = seconds.value(row);
            let micros = (second * 1e6).round() as i64;
            let time = NaiveDate::from_ymd_opt(parts[0], parts[1] as u32, parts[2] as u32)
                .and_then(|date| date.and_hms_opt(parts[3] as u32, parts[4] as u32, 0))
                .filter(|_| (0..60_000_000).contains(&micros));
            let Some(time) = time else {
                return exec_err!(
                    "date field value out of range: {}-{:02}-{:02} {:02}:{:02}:{second}",
                    parts[0],
                    parts[1],
                    parts[2],
                    parts[3],
                    parts[4]
                );
            };
            out.push(Some(time.and_utc().timestamp_micros() + micros));
        }
        let result: Arc<dyn Array> = Arc::new(TimestampMicrosecondArray::from(out));
        columnar(&args.args, result)
    }
}
