//! Values as Postgres writes them in text.

use chrono::{NaiveDateTime, Timelike};

/// Postgres's `float8out`/`float4out`: the shortest digits that read back
/// as the same value, in exponent form (`1e+16`, `1.5e-05`) when the
/// decimal exponent is below -4 or at least `precision` (15 for `float8`,
/// 6 for `float4`), else plain (`1`, `0.0001`). Rust's own formatting of
/// `value` already gives the shortest digits, in either form.
pub fn float_text<F>(value: F, precision: i32) -> String
where
    F: Copy + Into<f64> + std::fmt::Display + std::fmt::LowerExp,
{
    let scientific = format!("{value:e}");
    let value_f64: f64 = value.into();
    if value_f64.is_nan() {
        return "NaN".into();
    }
    if value_f64.is_infinite() {
        return if value_f64 > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into();
    }
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if value_f64 != 0.0 && (exponent < -4 || exponent >= precision) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        value.to_string()
    }
}

/// `2024-01-02 03:04:05.5`: date, time, and the fraction without trailing zeros.
pub fn wall_clock(time: NaiveDateTime) -> String {
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = time.nanosecond() / 1000;
    if micros > 0 {
        let fraction = format!(".{micros:06}");
        text.push_str(fraction.trim_end_matches('0'));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_like_postgres() {
        let f8 = |v: f64| float_text(v, 15);
        assert_eq!(f8(1.0), "1");
        assert_eq!(f8(1e16), "1e+16");
        assert_eq!(f8(1.5e-7), "1.5e-07");
        assert_eq!(f8(0.0001), "0.0001");
        assert_eq!(f8(123456789012345.0), "123456789012345");
        assert_eq!(f8(f64::INFINITY), "Infinity");
        assert_eq!(f8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f8(f64::NAN), "NaN");
        assert_eq!(f8(-0.0), "-0");
        let f4 = |v: f32| float_text(v, 6);
        assert_eq!(f4(1e10), "1e+10");
        assert_eq!(f4(100000.0), "100000");
    }
}
