//! Shared helpers for the end-to-end tests: run a pipeline into a temporary archive and read it back
//! with the plain `parquet` reader (no vigil code on the read side).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vigil_pipeline::config::{EvidenceConfig, InputConfig, OutputConfig, PipelineConfig, RulesConfig, Settings};
use vigil_pipeline::summary::RunSummary;

pub mod duckdb;
pub mod fault_proxy;
pub mod kafka;
pub mod process;
pub mod receiver;
pub mod s3;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The non-blank lines of `fixtures/cloudtrail/NAME`.
pub fn cloudtrail_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("fixtures/cloudtrail").join(name)).expect("fixture");
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// `n` records, each made unique by an added `vigilTestSeq` field: one in ten from `attacks`, the rest
/// from `benign`; every 100th one is cut short (malformed, a dead letter).
pub fn unique_records(attacks: &[String], benign: &[String], n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let line = if i % 10 == 0 { &attacks[(i / 10) % attacks.len()] } else { &benign[i % benign.len()] };
            let unique = format!("{{\"vigilTestSeq\":{i},{}", &line[1..]);
            if i % 100 == 99 { unique.as_bytes()[..unique.len() / 2].to_vec() } else { unique.into_bytes() }
        })
        .collect()
}

/// True when `deploy/local/SCRIPT installed` says the service is there. Otherwise says the tests are
/// skipped and returns false, or fails when `require_var` is set (`scripts/test.sh` installs every service
/// and sets it, so CI never skips).
pub fn service_installed(script: &str, require_var: &str, what: &str) -> bool {
    let path = repo().join("deploy/local").join(script);
    let installed = std::process::Command::new(&path).arg("installed").status().is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var_os(require_var).is_none(),
            "{require_var} is set but the {what} is not installed: run deploy/local/{script} install"
        );
        eprintln!("skipped: no {what} (run deploy/local/{script} install, or scripts/test.sh)");
    }
    installed
}

/// `../shared/datasets` beside the repository, when present.
pub fn shared_datasets() -> Option<PathBuf> {
    let dir = repo().parent()?.join("shared/datasets");
    dir.is_dir().then_some(dir)
}

/// A config over `inputs` (`(format, path)`) with the SOC 2 pack, writing into `out`.
pub fn config(inputs: &[(&str, PathBuf)], out: &Path, batch_rows: usize, threads: usize) -> PipelineConfig {
    PipelineConfig {
        pipeline: Settings { batch_rows, threads, ..Settings::default() },
        inputs: inputs
            .iter()
            .map(|(format, path)| {
                InputConfig::from_flag(&format!("{format}:{}", path.display())).expect("valid input flag")
            })
            .collect(),
        rules: RulesConfig { dirs: vec![repo().join("pipelines/rules/soc2")], ..RulesConfig::default() },
        evidence: EvidenceConfig::at(out.join("evidence").display().to_string()),
        alerts: OutputConfig { path: Some(out.join("alerts.ndjson").display().to_string()), ..Default::default() },
        dead_letters: OutputConfig {
            path: Some(out.join("dead_letters.ndjson").display().to_string()),
            ..Default::default()
        },
    }
}

/// Runs a config to the end on a fresh multi-threaded runtime.
pub fn run(config: PipelineConfig) -> RunSummary {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        vigil_pipeline::Pipeline::new(config, "test")
            .await
            .expect("pipeline starts")
            .run()
            .await
            .expect("pipeline runs")
    })
}

/// Every file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every Parquet file below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    files_below(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect()
}

/// All rows of one kind (`events`, `alerts`, `dead_letters`) of an archive, as one batch.
pub fn read_kind(evidence: &Path, kind: &str) -> Option<RecordBatch> {
    let mut batches = Vec::new();
    for file in parquet_files(&evidence.join(kind)) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).expect("open parquet"))
            .expect("parquet footer")
            .build()
            .expect("reader");
        batches.extend(reader.map(|b| b.expect("batch")));
    }
    let schema = batches.first()?.schema();
    Some(concat_batches(&schema, &batches).expect("concat"))
}

/// Every row of an events/dead-letter table keyed by event id and offset, with every column rendered as
/// text except `ingest_time` (the wall clock of the run): what must not depend on batching or threads.
pub fn rows_by_event(batch: &RecordBatch) -> BTreeMap<(String, i64), Vec<String>> {
    let ids = batch.column_by_name("event_id").expect("event_id").as_string::<i32>();
    let offsets =
        batch.column_by_name("ingest_offset").expect("ingest_offset").as_primitive::<arrow::datatypes::Int64Type>();
    let mut out = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() != "ingest_time")
            .map(|(i, _)| arrow::util::display::array_value_to_string(batch.column(i), row).expect("display"))
            .collect();
        out.insert((ids.value(row).to_string(), offsets.value(row)), cells);
    }
    out
}

/// SHA-256 of every file below `dir`, by relative path.
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    files_below(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            (rel, hex::encode(sha2::Sha256::digest(std::fs::read(&p).expect("read"))))
        })
        .collect()
}
