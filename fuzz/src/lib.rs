//! What the fuzz targets run: a normalizer over the input's lines, and the JSON scanner, with the invariants
//! that must hold for any bytes. A broken invariant panics, which libFuzzer reports as a crash.

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use vigil_normalize::{Format, FormatOptions, RawRecords, ReasonCode, normalize_records, scan};

/// At most this many records per input: enough to reuse a chunk's scratch buffers and builder.
const MAX_RECORDS: usize = 16;

/// Normalizes `data` as records of `format`, one per line (the last line may lack its newline), in chunks
/// of 3; checks that every record is exactly one row or one dead letter, that no dead letter is an
/// `internal_error` (a normalizer panic the second wall caught), and that each keeps its bytes whole.
pub fn normalize(format: Format, data: &[u8]) {
    // linux_auth: a fixed reference date, so the year (and a roll-back to the year before) is reproducible
    let options = FormatOptions { file_date: Some((2024, 1, 31)), ..FormatOptions::default() };
    let Ok(normalizer) = format.build(&options) else { panic!("{format} does not build") };
    let mut records = RawRecords::default();
    let mut inputs: Vec<&[u8]> = data.split(|&b| b == b'\n').take(MAX_RECORDS).collect();
    if inputs.len() > 1 && inputs.last().is_some_and(|l| l.is_empty()) {
        inputs.pop();
    }
    for (i, r) in inputs.iter().enumerate() {
        records.push(10 + 2 * i as i64, r);
    }
    let out = normalize_records(normalizer.as_ref(), records, "fuzz", 0, 0, 3);
    for d in &out.dead_letters {
        assert!(d.code != ReasonCode::InternalError, "{format} panicked on a record: {}", d.reason);
    }
    let mut seen: Vec<(i64, Vec<u8>)> = out.dead_letters.iter().map(|d| (d.offset, d.raw.clone())).collect();
    for batch in &out.batches {
        let (Some(raw), Some(offset)) = (batch.column_by_name("raw"), batch.column_by_name("ingest_offset")) else {
            panic!("a batch without raw or ingest_offset")
        };
        let (raw, offset) = (raw.as_binary::<i32>(), offset.as_primitive::<Int64Type>());
        assert_eq!(raw.len(), batch.num_rows());
        for row in 0..batch.num_rows() {
            seen.push((offset.value(row), raw.value(row).to_vec()));
        }
    }
    seen.sort();
    let expected: Vec<(i64, Vec<u8>)> =
        inputs.iter().enumerate().map(|(i, r)| (10 + 2 * i as i64, r.to_vec())).collect();
    assert_eq!(seen, expected, "{format}: not one row or dead letter per record with its bytes whole");
}

/// Runs every scanner entry point over `data` and indexes `data` with each span it returns (so a span out of
/// bounds or reversed panics here).
pub fn scan(data: &[u8]) {
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
        assert!(member.key.end < member.value.start, "key {:?} after value {:?}", member.key, member.value);
    }
    let _ = scan::object_members(data);
    let _ = scan::is_single_value(data);
}
