//! DuckDB (with pyarrow), installed by `deploy/local/duckdb.sh`, as the outside engine that reads an evidence
//! archive with no vigil code: [`archive_checks`] runs the same queries over a local archive (DuckDB's own
//! `read_parquet` with Hive partitioning) or one on S3 (pyarrow's S3 filesystem feeding DuckDB).

use std::process::Command;

use crate::repo;

/// The venv's python with DuckDB and pyarrow, or `None` (after saying so) when not installed and neither
/// `CI` nor `VIGIL_REQUIRE_DUCKDB` is set. `VIGIL_DUCKDB_PYTHON` names it directly.
pub fn python() -> Option<String> {
    if let Ok(p) = std::env::var("VIGIL_DUCKDB_PYTHON") {
        return Some(p);
    }
    let out = Command::new(repo().join("deploy/local/duckdb.sh")).arg("python").output().ok()?;
    if out.status.success() {
        return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let required = std::env::var_os("CI").is_some() || std::env::var_os("VIGIL_REQUIRE_DUCKDB").is_some();
    assert!(!required, "DuckDB is required here: run deploy/local/duckdb.sh install");
    eprintln!("skipped: DuckDB not installed (deploy/local/duckdb.sh install)");
    None
}

/// Where the archive is, for the script.
pub enum ArchiveAt<'a> {
    /// A local directory.
    Local(&'a std::path::Path),
    /// `bucket/prefix` on an S3-compatible server at `endpoint` (`http://HOST:PORT`), with these keys.
    S3 {
        /// `http://HOST:PORT`.
        endpoint: &'a str,
        /// `bucket/prefix`.
        path: &'a str,
        /// Access key id.
        key: &'a str,
        /// Secret.
        secret: &'a str,
    },
}

/// Runs the checks of the outside-engine tests and returns their JSON: `events`, `dead`, `alerts`,
/// `bad_partition` (rows whose time disagrees with their date/hour folder), `null_time`, `sources`,
/// `login_no_mfa`, `raw_is_original` (k8s events whose raw bytes are the original Event JSON), `web_404`,
/// `alert_events_found` (alert event ids that join to archived events).
pub fn archive_checks(python: &str, at: ArchiveAt<'_>) -> serde_json::Value {
    let tables = match at {
        ArchiveAt::Local(root) => format!(
            r#"
for kind in ("events", "alerts", "dead_letters"):
    c.sql(f"CREATE VIEW {{kind}} AS SELECT * FROM read_parquet('{root}/{{kind}}/**/*.parquet', hive_partitioning=true)")
"#,
            root = root.display()
        ),
        ArchiveAt::S3 { endpoint, path, key, secret } => {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("http", endpoint));
            format!(
                r#"
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.fs as pafs
fs = pafs.S3FileSystem(endpoint_override="{host}", scheme="{scheme}", access_key="{key}", secret_key="{secret}", region="us-east-1")
parts = {{"events": ["source", "date", "hour"], "alerts": ["date"], "dead_letters": ["format"]}}
for kind, cols in parts.items():
    part = ds.partitioning(pa.schema([(c, pa.string()) for c in cols]), flavor="hive")
    data = ds.dataset("{path}/" + kind, filesystem=fs, format="parquet", partitioning=part)
    c.register(kind, data)
"#
            )
        }
    };
    let script = format!(
        r#"
import duckdb, json
c = duckdb.connect()
c.sql("SET TimeZone='UTC'")
{tables}
r = {{}}
r["events"], r["bad_partition"], r["null_time"], r["sources"] = c.execute("SELECT count(*), count(*) FILTER (WHERE strftime(time, '%Y-%m-%d') <> date::VARCHAR OR strftime(time, '%H') <> lpad(hour::VARCHAR, 2, '0')), count(*) FILTER (WHERE time IS NULL), string_agg(DISTINCT source, ',' ORDER BY source) FROM events").fetchone()
r["login_no_mfa"] = c.execute("SELECT count(*) FROM events WHERE source = 'aws.cloudtrail' AND activity = 'ConsoleLogin' AND mfa = false").fetchone()[0]
r["raw_is_original"] = c.execute("SELECT count(*) FROM events WHERE source = 'k8s.audit' AND decode(raw) LIKE '%\"kind\":\"Event\"%'").fetchone()[0]
r["web_404"] = c.execute("SELECT count(*) FROM events WHERE source = 'web.access' AND http_status = 404").fetchone()[0]
r["alerts"] = c.execute("SELECT count(*) FROM alerts").fetchone()[0]
r["alert_events_found"] = c.execute("SELECT count(DISTINCT e.event_id) FROM (SELECT unnest(event_ids) AS id FROM alerts) a JOIN events e ON e.event_id = a.id").fetchone()[0]
r["dead"] = c.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
print(json.dumps(r))
"#
    );
    let output = Command::new(python).arg("-c").arg(&script).output().expect("python runs");
    assert!(output.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json")
}
