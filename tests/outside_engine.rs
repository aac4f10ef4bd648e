//! The archive reads as one table in an outside engine with no vigil code: DuckDB (installed by
//! `deploy/local/duckdb.sh install`) over `read_parquet('.../events/**/*.parquet', hive_partitioning=true)`.
//! Skipped with a message when DuckDB is not installed, unless `CI` or `VIGIL_REQUIRE_DUCKDB` is set. The same
//! checks on S3 are in `crates/vigil-cli/tests/s3.rs`.

use vigil_tests::duckdb::{ArchiveAt, archive_checks};
use vigil_tests::{config, repo, run};

#[test]
fn duckdb_reads_the_archive_as_one_table() {
    let Some(python) = vigil_tests::duckdb::python() else { return };
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
    let r = archive_checks(&python, ArchiveAt::Local(&out.path().join("evidence")));
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
