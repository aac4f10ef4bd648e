//! Normalizer throughput next to bare simd-json tape parsing of the same lines, per core.
//!
//! `cargo bench -p vigil-benches --bench normalize` reports, for 20,000 CloudTrail lines (the fixture, or
//! the first lines of the NDJSON file named by `VIGIL_BENCH_INPUT`), each in MB/s (`bytes/`) and events/s
//! (`events/`), on one core:
//! - `normalize_cloudtrail/`: `simd_json_tape` (parse only, buffers reused: the ceiling) and
//!   `vigil_cloudtrail` (parse + canonical columns + attrs + event id into Arrow);
//! - `floor/`: the least work any engine does per event under vigil's evidence contract, whatever its
//!   design: parse the JSON (`simd_json_tape`), hash the record for its content id (`sha256_raw`, the
//!   `event_id`), and zstd-compress its raw bytes into Parquet (`zstd1_parquet_raw`, level 1, plain
//!   encoding, as the archive writes `raw`). `tape_sha256_zstd1` does the three in a row: its events/s is
//!   an upper bound for the whole pipeline, before canonical columns, `attrs`, rules and the rest of the
//!   evidence are paid for.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_normalize::{Format, FormatOptions, RawRecords, normalize_records};

fn cloudtrail_lines() -> Vec<Vec<u8>> {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/cloudtrail/stratus-detonations.ndjson");
    let path = std::env::var("VIGIL_BENCH_INPUT").unwrap_or_else(|_| fixture.to_string());
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    lines.iter().cycle().take(20_000).cloned().collect()
}

fn bench(c: &mut Criterion) {
    let lines = cloudtrail_lines();
    let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let mut records = RawRecords::default();
    for (i, l) in lines.iter().enumerate() {
        records.push(i as i64 + 1, l);
    }
    let raw_column = BinaryArray::from_iter_values(lines.iter());
    let raw = RecordBatch::try_from_iter([("raw", Arc::new(raw_column) as ArrayRef)]).expect("raw batch");
    let normalizer = Format::Cloudtrail.build(&FormatOptions::default()).expect("normalizer");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");

    for (unit, throughput) in
        [("bytes", Throughput::Bytes(bytes)), ("events", Throughput::Elements(lines.len() as u64))]
    {
        let mut group = c.benchmark_group(format!("normalize_cloudtrail/{unit}"));
        group.throughput(throughput.clone());
        group.sample_size(20);
        group.bench_function("simd_json_tape", |b| {
            let mut buffers = simd_json::Buffers::new(4096);
            let mut scratch = Vec::new();
            b.iter(|| black_box(tape_nodes(&lines, &mut scratch, &mut buffers)))
        });
        // The records are moved in (they become the raw column), as in the pipeline; the copy is set-up.
        group.bench_function("vigil_cloudtrail", |b| {
            b.iter_batched(
                || records.clone(),
                |records| {
                    pool.install(|| {
                        black_box(normalize_records(normalizer.as_ref(), records, "bench", 0, 0, 8192).rows())
                    })
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();

        let mut group = c.benchmark_group(format!("floor/{unit}"));
        group.throughput(throughput);
        group.sample_size(20);
        group.bench_function("sha256_raw", |b| b.iter(|| black_box(sha256_all(&lines))));
        group.bench_function("zstd1_parquet_raw", |b| b.iter(|| black_box(zstd1_parquet(&raw).len())));
        group.bench_function("tape_sha256_zstd1", |b| {
            let mut buffers = simd_json::Buffers::new(4096);
            let mut scratch = Vec::new();
            b.iter(|| {
                let nodes = tape_nodes(&lines, &mut scratch, &mut buffers);
                black_box((nodes, sha256_all(&lines), zstd1_parquet(&raw).len()))
            })
        });
        group.finish();
    }
}

/// simd-json tapes of every line, buffers reused; the number of tape nodes.
fn tape_nodes(lines: &[Vec<u8>], scratch: &mut Vec<u8>, buffers: &mut simd_json::Buffers) -> usize {
    let mut nodes = 0usize;
    for line in lines {
        scratch.clear();
        scratch.extend_from_slice(line);
        let tape = simd_json::to_tape_with_buffers(scratch, buffers).expect("valid json");
        nodes += tape.0.len();
    }
    nodes
}

/// SHA-256 of every line, as the event id hashes it (source, 0x00, raw); the first byte of each, summed.
fn sha256_all(lines: &[Vec<u8>]) -> u64 {
    use sha2::{Digest, Sha256};
    lines
        .iter()
        .map(|line| {
            let mut hasher = Sha256::new();
            hasher.update(b"aws.cloudtrail\0");
            hasher.update(line);
            u64::from(hasher.finalize()[0])
        })
        .sum()
}

/// `raw` alone as one zstd (level 1) Parquet file, encoded as the archive encodes that column.
fn zstd1_parquet(raw: &RecordBatch) -> Vec<u8> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1")))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), raw.schema(), Some(props)).expect("writer");
    writer.write(raw).expect("write");
    writer.into_inner().expect("close")
}

criterion_group!(benches, bench);
criterion_main!(benches);
