//! Normalizer throughput next to bare simd-json tape parsing of the same lines, per core.
//!
//! `cargo bench -p vigil-benches --bench normalize` reports, for the CloudTrail fixture lines:
//! `simd_json_tape` (parse only, buffers reused: the ceiling) and `vigil_cloudtrail` (parse + canonical
//! columns + attrs + event id into Arrow), each in MB/s (`bytes/`) and events/s (`events/`).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_normalize::{Format, FormatOptions, RawRecords, normalize_records};

fn cloudtrail_lines() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/cloudtrail/stratus-detonations.ndjson");
    let text = std::fs::read(path).expect("fixture");
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
    let normalizer = Format::Cloudtrail.build(&FormatOptions::default()).expect("normalizer");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");

    for (unit, throughput) in
        [("bytes", Throughput::Bytes(bytes)), ("events", Throughput::Elements(lines.len() as u64))]
    {
        let mut group = c.benchmark_group(format!("normalize_cloudtrail/{unit}"));
        group.throughput(throughput);
        group.sample_size(20);
        group.bench_function("simd_json_tape", |b| {
            let mut buffers = simd_json::Buffers::new(4096);
            let mut scratch = Vec::new();
            b.iter(|| {
                let mut nodes = 0usize;
                for line in &lines {
                    scratch.clear();
                    scratch.extend_from_slice(line);
                    let tape = simd_json::to_tape_with_buffers(&mut scratch, &mut buffers).expect("valid json");
                    nodes += tape.0.len();
                }
                black_box(nodes)
            })
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
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
