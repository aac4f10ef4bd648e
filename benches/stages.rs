//! The rule and archive stages alone, per core, on normalized CloudTrail events (the fixture lines, 20k).
//!
//! `cargo bench -p vigil-benches --bench stages` reports, in events/s:
//! - `rules/kit_11`: the 11 translated kit rules (`benches/rules/`) over one 20k-event micro-batch;
//! - `rules/pack_10`, `pack_30`, `pack_100`: the first 10, 30 and 100 rules of the kit rules followed by
//!   the SOC 2 pack (`pipelines/rules/soc2/`), repeated under new ids to reach 100: what each rule costs
//!   as a pack grows (the per-rule cost is the slope between them);
//! - `rules/attr_calls_per_row`: the kit rules with attribute columns off (each `json_get_*` parses `attrs`
//!   per row): what [`vigil_rules::EngineOptions::attr_columns`] saves;
//! - `archive/encode_zstd3`: the evidence encoding of the same events (zstd 3 Parquet, raw bytes included,
//!   SHA-256 per file), also in MB/s of input.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_evidence::{RangeCommit, prepare};
use vigil_normalize::{Format, FormatOptions, RawRecords, normalize_records};
use vigil_rules::rule::parse_rule;
use vigil_rules::{EngineOptions, Rule, RuleEngine, RulePack, load_rules};

const EVENTS: usize = 20_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn events() -> (Vec<arrow::array::RecordBatch>, u64) {
    let text = std::fs::read(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson")).expect("fixture");
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut records = RawRecords::default();
    let mut bytes = 0u64;
    for (i, line) in lines.iter().cycle().take(EVENTS).enumerate() {
        records.push(i as i64 + 1, line);
        bytes += line.len() as u64;
    }
    let normalizer = Format::Cloudtrail.build(&FormatOptions::default()).expect("normalizer");
    let normalized = normalize_records(normalizer.as_ref(), records, "bench", 0, 0, EVENTS);
    assert!(normalized.dead_letters.is_empty());
    (normalized.batches, bytes)
}

/// `n` rules: the kit's, then the SOC 2 pack's, then copies of them under new ids.
fn pack_of(n: usize) -> RulePack {
    let all = load_rules(&[repo().join("benches/rules"), repo().join("pipelines/rules/soc2")]).expect("rules").rules;
    let rules: Vec<Rule> = (0..n)
        .map(|i| {
            let base = &all[i % all.len()];
            if i < all.len() {
                return base.clone();
            }
            let text = std::fs::read_to_string(&base.path).expect("rule file");
            let renamed = text.replacen(&format!("-- id: {}", base.id), &format!("-- id: {}_copy{i}", base.id), 1);
            parse_rule(&base.path, &renamed).expect("copied rule")
        })
        .collect();
    RulePack::new(rules).expect("pack")
}

fn bench(c: &mut Criterion) {
    let (batches, bytes) = events();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    let kit = load_rules(&[repo().join("benches/rules")]).expect("kit rules");
    let cases = [
        ("kit_11", kit.clone(), EngineOptions::default()),
        ("attr_calls_per_row", kit, EngineOptions { attr_columns: false, ..EngineOptions::default() }),
        ("pack_10", pack_of(10), EngineOptions::default()),
        ("pack_30", pack_of(30), EngineOptions::default()),
        ("pack_100", pack_of(100), EngineOptions::default()),
    ];
    for (name, pack, options) in cases {
        let mut engine = rt.block_on(RuleEngine::with_options(&pack, 1, options)).expect("rules plan");
        let mut state = engine.new_state();
        group.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(engine.evaluate(&mut state, &batches)).expect("rules run").len()))
        });
    }
    group.finish();

    for (unit, throughput) in [("events", Throughput::Elements(EVENTS as u64)), ("bytes", Throughput::Bytes(bytes))] {
        let mut group = c.benchmark_group(format!("archive/{unit}"));
        group.throughput(throughput);
        group.sample_size(10);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
        group.bench_function("encode_zstd3", |b| {
            b.iter(|| {
                let commit = RangeCommit {
                    ingest_source: "bench",
                    partition: 0,
                    first_offset: 1,
                    last_offset: EVENTS as i64,
                    format: "cloudtrail",
                    input: "bench",
                    events: &batches,
                    dead_letters: None,
                    alerts: None,
                    skipped: 0,
                    rule_pack_hash: "",
                    lost_reason: None,
                    source_prefix: None,
                    blobs: &[],
                };
                black_box(pool.install(|| prepare(&commit, 3)).expect("encode"))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
