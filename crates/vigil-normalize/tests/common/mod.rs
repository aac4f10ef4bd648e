//! Checks shared by the hostile-record property tests and the fuzz corpus replay: the contract of
//! `normalize_records` for any input.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use vigil_normalize::{Format, FormatOptions, NormalizedBatch, RawRecords, ReasonCode, normalize_records, scan};

/// The normalizer of `format` as the tests run it: `linux_auth` with a fixed reference date (January 2024),
/// so its years are reproducible.
pub fn normalizer(format: Format) -> std::sync::Arc<dyn vigil_normalize::Normalizer> {
    let options = FormatOptions { file_date: Some((2024, 1, 31)), ..FormatOptions::default() };
    format.build(&options).expect("the format builds")
}

/// Normalizes `records` (offsets 10, 12, 14, ...) in chunks of `chunk_rows` and checks that every record
/// is exactly one row or one dead letter, that none is an `internal_error` (a panic the second wall
/// caught), and that each row's `raw` or dead letter's `raw` is the record's bytes, whole. Returns the
/// output.
pub fn check_records(format: Format, records: &[Vec<u8>], chunk_rows: usize) -> NormalizedBatch {
    let mut raw = RawRecords::default();
    for (i, r) in records.iter().enumerate() {
        raw.push(offset(i), r);
    }
    let out = normalize_records(normalizer(format).as_ref(), raw, "prop", 1, 0, chunk_rows);
    for d in &out.dead_letters {
        assert!(d.code != ReasonCode::InternalError, "{format} panicked on {:?}: {}", show(&d.raw), d.reason);
    }
    let mut seen: Vec<(i64, Vec<u8>)> = out.dead_letters.iter().map(|d| (d.offset, d.raw.clone())).collect();
    for batch in &out.batches {
        let raw = batch.column_by_name("raw").expect("raw column").as_binary::<i32>();
        let offsets = batch.column_by_name("ingest_offset").expect("ingest_offset column").as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            seen.push((offsets.value(row), raw.value(row).to_vec()));
        }
    }
    seen.sort();
    let expected: Vec<(i64, Vec<u8>)> = records.iter().enumerate().map(|(i, r)| (offset(i), r.clone())).collect();
    assert_eq!(
        seen.len(),
        expected.len(),
        "{format}: {} records gave {} rows and dead letters",
        records.len(),
        seen.len()
    );
    for (got, want) in seen.iter().zip(&expected) {
        assert_eq!(got, want, "{format}: record {} not kept whole: {:?}", want.0, show(&want.1));
    }
    out
}

fn offset(i: usize) -> i64 {
    10 + 2 * i as i64
}

/// A record for a failure message: lossy text, cut at 300 characters.
pub fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).chars().take(300).collect()
}

/// Runs every entry point of the JSON scanner over `data` and checks each span is inside it.
#[allow(dead_code)] // used by fuzz_corpus, not by hostile_records
pub fn check_scan(data: &[u8]) {
    let check = |span: &std::ops::Range<usize>| {
        assert!(span.start <= span.end && span.end <= data.len(), "span {span:?} of {} bytes", data.len());
    };
    if let Ok(values) = scan::top_level_values(data) {
        values.iter().for_each(check);
        for v in values.iter().take(4) {
            if let Ok(items) = scan::array_elements(data, v.start) {
                items.iter().for_each(check);
            }
        }
    }
    if let Ok(items) = scan::array_elements(data, 0) {
        items.iter().for_each(check);
    }
    for member in scan::members(data).flatten() {
        check(&member.key);
        check(&member.value);
        assert!(member.key.end < member.value.start);
    }
    let _ = scan::object_members(data);
    let _ = scan::is_single_value(data);
}
