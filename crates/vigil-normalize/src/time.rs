//! Timestamp parsing into UTC microseconds: RFC 3339 / ISO 8601 text, epoch numbers, and the
//! Apache/NGINX `10/Oct/2000:13:55:36 -0700` form. Hand-rolled for the hot path; returns `None` on
//! anything it does not fully understand, so the caller can dead-letter with a reason.
//!
//! Every time returned lies in [`MIN_US`, `MAX_US`] (years 0000 to 9999, as four-digit text writes them,
//! widened by the largest zone offset): text has four year digits, and an epoch number outside that span is
//! refused, so no later arithmetic or calendar conversion on a time can overflow. A leap second (`:60`) is
//! the first second of the next minute; zone offsets are at most 23:59.

use chrono::NaiveDate;

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// The earliest time a parser returns: 0000-01-01T00:00:00Z less the largest zone offset.
pub const MIN_US: i64 = -62_167_219_200_000_000 - MAX_OFFSET_S * 1_000_000;
/// The latest time a parser returns: 9999-12-31T23:59:60.999999Z (a leap second) plus the largest offset.
pub const MAX_US: i64 = 253_402_300_800_999_999 + MAX_OFFSET_S * 1_000_000;
/// The largest zone offset accepted, in seconds (23:59).
const MAX_OFFSET_S: i64 = 23 * 3600 + 59 * 60;

fn epoch_us(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<i64> {
    if !(0..=9999).contains(&year) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let date =
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    let days = date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    // |days| < 3.7 million for years 0-9999: none of this can overflow, checked all the same
    days.checked_mul(86_400)?.checked_add(h * 3600 + m * 60 + s)?.checked_mul(1_000_000)
}

/// A zone offset `hh`:`mm` with its sign, in seconds; `None` beyond 23:59.
fn offset_s(sign: u8, hh: i64, mm: i64) -> Option<i64> {
    if hh > 23 || mm > 59 {
        return None;
    }
    let s = hh * 3600 + mm * 60;
    match sign {
        b'+' => Some(s),
        b'-' => Some(-s),
        _ => None,
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]`; no zone means UTC.
pub fn parse_rfc3339_us(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    if at(4) != b'-' || at(7) != b'-' || !matches!(at(10), b'T' | b't' | b' ') || at(13) != b':' || at(16) != b':' {
        return None;
    }
    let base = epoch_us(
        digits(b, 0, 4)?,
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        digits(b, 11, 2)?,
        digits(b, 14, 2)?,
        digits(b, 17, 2)?,
    )?;
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 6 {
                micros = micros * 10 + i64::from(c - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset_s = match b.get(i) {
        None => 0,
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = b.get(i + 1..)?;
            let (hh, mm) = match rest.len() {
                5 if rest.get(2) == Some(&b':') => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                2 => (digits(rest, 0, 2)?, 0),
                _ => return None,
            };
            offset_s(sign, hh, mm)?
        }
        _ => return None,
    };
    base.checked_add(micros)?.checked_sub(offset_s.checked_mul(1_000_000)?)
}

/// Apache/NGINX `%t` without brackets: `25/Oct/2015:04:11:25 +0100`.
pub fn parse_clf_us(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    if b.len() != 26 || at(2) != b'/' || at(6) != b'/' || at(11) != b':' || at(20) != b' ' {
        return None;
    }
    let month = month_number(b.get(3..6)?)?;
    let base =
        epoch_us(digits(b, 7, 4)?, month, digits(b, 0, 2)?, digits(b, 12, 2)?, digits(b, 15, 2)?, digits(b, 18, 2)?)?;
    let offset_s = offset_s(at(21), digits(b, 22, 2)?, digits(b, 24, 2)?)?;
    base.checked_sub(offset_s.checked_mul(1_000_000)?)
}

/// `Jan`..`Dec` to 1..12.
pub fn month_number(name: &[u8]) -> Option<i64> {
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name)).map(|p| p as i64 + 1)
}

/// Epoch number: seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude. `None` for
/// a negative or non-finite number, and for one past [`MAX_US`] (year 10000).
pub fn epoch_number_us(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let us = if value < 1e11 {
        value * 1e6
    } else if value < 1e14 {
        value * 1e3
    } else if value < 1e17 {
        value
    } else {
        value / 1e3
    };
    // in range, the cast is exact to the microsecond (and `as` saturates, never wraps, out of it)
    (us <= MAX_US as f64).then_some(us as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let z = parse_rfc3339_us("2024-08-02T08:53:24Z").unwrap();
        assert_eq!(z, 1_722_588_804_000_000);
        assert_eq!(parse_rfc3339_us("2024-08-02T08:53:24.5Z"), Some(z + 500_000));
        assert_eq!(parse_rfc3339_us("2018-10-26T13:42:46.764713Z").map(|v| v % 1_000_000), Some(764_713));
        assert_eq!(parse_rfc3339_us("2024-08-02T10:53:24+02:00"), Some(z));
        assert_eq!(parse_rfc3339_us("2024-08-02 08:53:24"), Some(z));
        assert_eq!(parse_rfc3339_us("2024-08-02T08:53:24.000000001Z"), Some(z));
        for bad in ["", "2024-13-02T08:53:24Z", "2024-02-30T00:00:00Z", "2024-08-02T08:53:24Q", "2024-08-02T08:53"] {
            assert_eq!(parse_rfc3339_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn extreme_dates_stay_in_range_and_odd_ones_are_refused() {
        let max = parse_rfc3339_us("9999-12-31T23:59:60.999999-23:59").unwrap();
        assert_eq!(max, MAX_US);
        assert_eq!(parse_rfc3339_us("0000-01-01T00:00:00+23:59"), Some(MIN_US));
        assert_eq!(parse_clf_us("31/Dec/9999:23:59:60 -2359"), Some(MAX_US - 999_999));
        // a leap second is the first second of the next minute
        assert_eq!(parse_rfc3339_us("2016-12-31T23:59:60Z"), parse_rfc3339_us("2017-01-01T00:00:00Z"));
        for bad in [
            "2024-08-02T08:53:24+99:99",
            "2024-08-02T08:53:24+24:00",
            "2024-08-02T08:53:24-00:60",
            "2024-08-02T08:53:61Z",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "２０２４-08-02T08:53:24Z",
            "2024-08-02T08:53:2é",
        ] {
            assert_eq!(parse_rfc3339_us(bad), None, "{bad}");
        }
        for bad in ["10/Oct/2000:13:55:36 +9999", "10/Oct/2000:13:55:36 *0000", "10/Oct/2000:13:55:3é +0000"] {
            assert_eq!(parse_clf_us(bad), None, "{bad}");
        }
        // epoch numbers: seconds to nanoseconds, never past year 9999
        assert_eq!(epoch_number_us(1e20), Some(100_000_000_000_000_000)); // ns: year 5138
        for bad in [1e25, 1e308, f64::MAX, f64::INFINITY, -1.0] {
            assert_eq!(epoch_number_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn clf_and_epoch() {
        assert_eq!(parse_clf_us("25/Oct/2015:04:11:25 +0100"), parse_rfc3339_us("2015-10-25T03:11:25Z"));
        assert_eq!(parse_clf_us("25/Foo/2015:04:11:25 +0100"), None);
        assert_eq!(epoch_number_us(1_700_000_000.0), Some(1_700_000_000_000_000));
        assert_eq!(epoch_number_us(1_700_000_000_000.0), Some(1_700_000_000_000_000));
        assert_eq!(epoch_number_us(f64::NAN), None);
    }
}
