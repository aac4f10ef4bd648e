//! UTC microsecond timestamps as text, for alerts, manifests and archive partitions.

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 text of UTC microseconds, as `2024-08-02T08:53:24.000001Z` (fraction only when non-zero).
pub fn format_time_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let base = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if micros == 0 { format!("{base}Z") } else { format!("{base}.{micros:06}Z") }
}

/// `(YYYY-MM-DD, HH)` of UTC microseconds: the archive's `date=` and `hour=` partition values.
pub fn date_hour(us: i64) -> (String, String) {
    let secs = us.div_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    (format!("{y:04}-{m:02}-{d:02}"), format!("{:02}", secs.rem_euclid(86_400) / 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text() {
        assert_eq!(format_time_us(1_722_588_804_000_000), "2024-08-02T08:53:24Z");
        assert_eq!(format_time_us(1_722_588_804_000_001), "2024-08-02T08:53:24.000001Z");
        assert_eq!(format_time_us(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time_us(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(date_hour(1_722_588_804_000_000), ("2024-08-02".to_string(), "08".to_string()));
    }
}
