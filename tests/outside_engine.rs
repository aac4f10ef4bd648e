//! The archive reads as one table in an outside engine with no vigil code: DuckDB (installed by
//! `deploy/local/duckdb.sh install`) over `read_parquet('.../events/**/*.parquet', hive_partitioning=true)`.
//! Skipped with a message when DuckDB is not installed, unless `CI` or `VIGIL_REQUIRE_DUCKDB` is set.

use std::process::Command;

use vigil_tests::{config, repo, run};

fn duckdb_python() -> Option<String> {
    if let Ok(p) = std::env::var("VIGIL_DUCKDB_PYTHON") {
        return Some(p);
    }
    let out = Command::new(repo().join("deploy/local/duckdb.sh")).arg("python").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn duckdb_reads_the_archive_as_one_table() {
    let Some(python) = duckdb_python() else {
        let required = std::env::var_os("CI").is_some() || std::env::var_os("VIGIL_REQUIRE_DUCKDB").is_some();
        assert!(!required, "DuckDB is required here: run deploy/local/duckdb.sh install");
        eprintln!("DuckDB not installed (deploy/local/duckdb.sh install): skipped");
        return;
    };
    let out = tempfile::tempdir().expect("tempdir");
    let f = repo().join("fixtures");
    let summary = run(config(
        &[
            ("cloudtrail", f.join("cloudtrail")),
            ("k8s_audit", f.join("k8s_audit")),
            ("apache_combined", f.join("apache_combined")),
        ],
        out.path(),
        700,
        2,
    ));
    let total = summary.total();
    let root = out.path().join("evidence");
    let script = format!(
        r#"
import duckdb, json
c = duckdb.connect()
c.sql("SET TimeZone='UTC'")
ev = "read_parquet('{root}/events/**/*.parquet', hive_partitioning=true)"
al = "read_parquet('{root}/alerts/**/*.parquet', hive_partitioning=true)"
dl = "read_parquet('{root}/dead_letters/**/*.parquet', hive_partitioning=true)"
r = {{}}
r["events"], r["bad_partition"], r["null_time"], r["sources"] = c.execute(f"SELECT count(*), count(*) FILTER (WHERE strftime(time, '%Y-%m-%d') <> date::VARCHAR OR strftime(time, '%H') <> hour::VARCHAR), count(*) FILTER (WHERE time IS NULL), string_agg(DISTINCT source, ',' ORDER BY source) FROM {{ev}}").fetchone()
r["login_no_mfa"] = c.execute(f"SELECT count(*) FROM {{ev}} WHERE source = 'aws.cloudtrail' AND activity = 'ConsoleLogin' AND mfa = false").fetchone()[0]
r["raw_is_original"] = c.execute(f"SELECT count(*) FROM {{ev}} WHERE source = 'k8s.audit' AND decode(raw) LIKE '%\"kind\":\"Event\"%'").fetchone()[0]
r["web_404"] = c.execute(f"SELECT count(*) FROM {{ev}} WHERE source = 'web.access' AND http_status = 404").fetchone()[0]
r["alerts"] = c.execute(f"SELECT count(*) FROM {{al}}").fetchone()[0]
r["alert_events_found"] = c.execute(f"SELECT count(DISTINCT e.event_id) FROM (SELECT unnest(event_ids) AS id FROM {{al}}) a JOIN {{ev}} e ON e.event_id = a.id").fetchone()[0]
r["dead"] = c.execute(f"SELECT count(*) FROM {{dl}}").fetchone()[0]
print(json.dumps(r))
"#,
        root = root.display()
    );
    let output = Command::new(&python).arg("-c").arg(&script).output().expect("python runs");
    assert!(output.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    let r: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(r["events"].as_u64(), Some(total.events), "{r}");
    assert_eq!(r["dead"].as_u64(), Some(total.dead_letters), "{r}");
    assert_eq!(r["alerts"].as_u64(), Some(total.alerts), "{r}");
    assert_eq!(r["bad_partition"], 0, "time agrees with the date/hour partition: {r}");
    assert_eq!(r["null_time"], 0);
    assert_eq!(r["sources"], "aws.cloudtrail,k8s.audit,web.access");
    assert_eq!(r["login_no_mfa"], 1, "the Stratus console login without MFA: {r}");
    assert_eq!(r["raw_is_original"], 51, "raw keeps the original audit events: {r}");
    assert!(r["web_404"].as_u64() > Some(0));
    assert!(r["alert_events_found"].as_u64() > Some(0));
}
