use super::*;
use arrow::array::{Array, AsArray};
use proptest::strategy::Strategy;

proptest::proptest! {
    /// No input makes a normalizer panic, and every record ends up as a row or a dead letter.
    #[test]
    fn any_bytes_become_a_row_or_a_dead_letter(
        records in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                "[ -~]{0,200}".prop_map(String::into_bytes),
                r#"\{"(eventTime|eventName|kind|verb|timestamp|request|status|userIdentity)":("[ -~]{0,30}"|[0-9]{1,12}|null|true|\{\}|\[\])(,"[a-zA-Z@]{1,12}":"[ -~]{0,20}"){0,4}\}"#.prop_map(String::into_bytes),
            ],
            1..20,
        )
    ) {
        let mut raw = RawRecords::default();
        for (i, r) in records.iter().enumerate() {
            raw.push(i as i64 + 1, r);
        }
        for format in Format::ALL {
            let normalizer = format.build(&FormatOptions::default()).unwrap();
            let out = normalize_records(normalizer.as_ref(), raw.clone(), "p", 0, 0, 7);
            proptest::prop_assert_eq!(out.rows() + out.dead_letters.len(), records.len());
        }
    }
}

/// CloudTrail, except on records holding a marker: `PANIC-BEFORE` panics before touching the builder,
/// `PANIC-AFTER-ROW` after appending a whole row, `PANIC-IN-JSON` inside the tape callback (the tape is
/// out of `Scratch`); each first leaves junk in the scratch buffers.
#[derive(Debug)]
struct Boom;

impl Normalizer for Boom {
    fn format(&self) -> &'static str {
        "boom"
    }
    fn source(&self) -> &str {
        cloudtrail::SOURCE
    }
    fn framing(&self) -> Framing {
        cloudtrail::CloudTrail.framing()
    }
    fn normalize(
        &self,
        raw: &[u8],
        provenance: &Provenance<'_>,
        scratch: &mut Scratch,
        out: &mut EventBatchBuilder,
    ) -> Result<(), Rejection> {
        let has = |marker: &[u8]| raw.windows(marker.len()).any(|w| w == marker);
        scratch.attrs.push_str("junk");
        scratch.data.extend_from_slice(b"junk");
        if has(b"PANIC-BEFORE") {
            panic!("boom before, offset {}", provenance.offset);
        }
        if has(b"PANIC-AFTER-ROW") {
            cloudtrail::CloudTrail.normalize(raw, provenance, scratch, out)?;
            panic!("boom after a row");
        }
        if has(b"PANIC-IN-JSON") {
            return scratch.with_json(raw, |_, attrs| {
                attrs.push_str("half");
                std::panic::panic_any(42u8)
            });
        }
        scratch.attrs.clear();
        cloudtrail::CloudTrail.normalize(raw, provenance, scratch, out)
    }
}

#[test]
fn a_panic_on_one_record_dead_letters_it_and_the_rest_is_unchanged() {
    let line = |i: i64, name: &str| {
        format!(
            r#"{{"eventTime":"2024-01-01T00:00:{:02}Z","eventName":"{name}","eventSource":"s3.amazonaws.com","n":{i}}}"#,
            i % 60
        )
    };
    let mut all = RawRecords::default();
    let mut kept = RawRecords::default();
    let mut panics = Vec::new();
    for i in 0..40i64 {
        let record = match i % 9 {
            2 => line(i, "PANIC-BEFORE"),
            4 if i > 20 => line(i, "PANIC-AFTER-ROW"),
            5 => line(i, "PANIC-IN-JSON"),
            7 => "{broken".to_string(),
            _ => line(i, "GetObject"),
        };
        // offsets are not contiguous (Kafka after compaction)
        let offset = 100 + 3 * i;
        all.push(offset, record.as_bytes());
        if record.contains("PANIC") {
            panics.push((offset, record));
        } else {
            kept.push(offset, record.as_bytes());
        }
    }
    // the first and the last record panic too
    let first = line(0, "PANIC-AFTER-ROW");
    let last = line(99, "PANIC-BEFORE");
    let mut records = RawRecords::default();
    records.push(1, first.as_bytes());
    for (o, r) in all.iter() {
        records.push(o, r);
    }
    records.push(1000, last.as_bytes());
    panics.insert(0, (1, first));
    panics.push((1000, last));

    let concat =
        |b: &NormalizedBatch| arrow::compute::concat_batches(&vigil_schema::event_schema(), &b.batches).unwrap();
    // Boom's panics are expected: keep the default hook's message and backtrace for any other
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let boom = payload.is::<u8>() || panic_message(payload).starts_with("boom");
            if !boom {
                default(info);
            }
        }));
    });
    let expected = normalize_records(&cloudtrail::CloudTrail, kept, "t", 3, 5, 1000);
    assert_eq!(expected.dead_letters.len(), 4);
    for chunk in [1, 2, 3, 4, 7, 9, 16, 1000] {
        let out = normalize_records(&Boom, records.clone(), "t", 3, 5, chunk);
        assert_eq!(concat(&out), concat(&expected), "chunk {chunk}");
        let (internal, other): (Vec<&DeadLetter>, Vec<&DeadLetter>) =
            out.dead_letters.iter().partition(|d| d.code == ReasonCode::InternalError);
        assert_eq!(other, expected.dead_letters.iter().collect::<Vec<_>>(), "chunk {chunk}");
        let got: Vec<(i64, &[u8])> = internal.iter().map(|d| (d.offset, d.raw.as_slice())).collect();
        let want: Vec<(i64, &[u8])> = panics.iter().map(|(o, r)| (*o, r.as_bytes())).collect();
        assert_eq!(got, want, "chunk {chunk}");
        // input order kept
        assert!(out.dead_letters.windows(2).all(|w| w[0].offset < w[1].offset), "chunk {chunk}");
        for d in &internal {
            assert_eq!(d.code.as_str(), "internal_error");
            assert!(d.reason.contains("bug") && d.reason.contains("boom"), "{}", d.reason);
            let message = if d.raw.windows(13).any(|w| w == b"PANIC-IN-JSON") {
                "a panic without a message".to_string()
            } else if d.raw.windows(12).any(|w| w == b"PANIC-BEFORE") {
                format!("boom before, offset {}", d.offset)
            } else {
                "boom after a row".to_string()
            };
            assert!(d.reason.contains(&message), "{}", d.reason);
        }
    }
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), *f);
    }
    let err = "syslog".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("cloudtrail") && err.contains("syslog"), "{err}");
}

#[test]
fn output_does_not_depend_on_chunking() {
    let normalizer = Format::Cloudtrail.build(&FormatOptions::default()).unwrap();
    let mut records = RawRecords::default();
    for i in 0..50 {
        if i % 7 == 0 {
            records.push(i, b"{broken");
        } else {
            let line = format!(
                r#"{{"eventTime":"2024-01-01T00:00:{:02}Z","eventName":"E{i}","eventSource":"s3.amazonaws.com"}}"#,
                i % 60
            );
            records.push(i, line.as_bytes());
        }
    }
    let whole = normalize_records(normalizer.as_ref(), records.clone(), "t", 0, 5, 1000);
    let concat =
        |b: &NormalizedBatch| arrow::compute::concat_batches(&vigil_schema::event_schema(), &b.batches).unwrap();
    for chunk in [1, 3, 16] {
        let cut = normalize_records(normalizer.as_ref(), records.clone(), "t", 0, 5, chunk);
        assert_eq!(concat(&cut), concat(&whole));
        assert_eq!(cut.dead_letters, whole.dead_letters);
    }
    assert_eq!(whole.dead_letters.len(), 8);
    assert_eq!(whole.rows(), 42);
    // raw is each kept record's bytes, whether a chunk kept all its records (the column is a slice of
    // the records' buffer) or refused some (the kept ones are copied)
    let kept: Vec<&[u8]> = records.iter().map(|(_, r)| r).filter(|r| *r != b"{broken").collect();
    for chunk in [1, 7, 1000] {
        let cut = normalize_records(normalizer.as_ref(), records.clone(), "t", 0, 5, chunk);
        let raw: Vec<Vec<u8>> = cut
            .batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name(vigil_schema::RAW).unwrap().as_binary::<i32>().clone();
                (0..column.len()).map(move |i| column.value(i).to_vec())
            })
            .collect();
        assert_eq!(raw, kept, "chunk {chunk}");
    }
}
