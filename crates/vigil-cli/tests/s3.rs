//! Evidence on a real S3-compatible server (moto, started by `deploy/local/s3.sh`): vigil archives real
//! fixtures there, sets the bucket's Object Lock retention itself, `verify` passes, a locked object cannot be
//! deleted, and tampering done with an ordinary S3 client (the AWS CLI) is caught and named. The archive also
//! reads in DuckDB (through pyarrow's S3 filesystem), and `vigil evidence expire` keeps to the bucket's lock.

use vigil_tests::s3::{BUCKET, CREDENTIALS, S3Server};

fn vigil(args: &[&str]) -> (i32, String, String) {
    vigil_tests::s3::run_vigil(env!("CARGO_BIN_EXE_vigil"), args)
}

fn archive_fixtures(server: &S3Server, prefix: &str) -> String {
    vigil_tests::s3::archive_fixtures(env!("CARGO_BIN_EXE_vigil"), server, prefix)
}

fn verify(url: &str) -> (i32, serde_json::Value) {
    vigil_tests::s3::verify_json(env!("CARGO_BIN_EXE_vigil"), url)
}

fn has_finding(report: &serde_json::Value, kind: &str, object: &str) -> bool {
    report["findings"].as_array().is_some_and(|f| {
        f.iter().any(|f| f["kind"] == kind && f["object"].as_str().is_some_and(|o| o.contains(object)))
    })
}

#[test]
fn evidence_on_s3_is_locked_verified_and_tampering_is_named() {
    let Some(server) = S3Server::start() else { return };
    let url = archive_fixtures(&server, "archive");
    // vigil set the bucket's default retention: 400 days, COMPLIANCE.
    let lock = server.aws_ok(&["s3api", "get-object-lock-configuration", "--bucket", BUCKET, "--output", "json"]);
    let lock: serde_json::Value = serde_json::from_str(&lock).expect("json");
    let retention = &lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    assert_eq!((retention["Mode"].as_str(), retention["Days"].as_u64()), (Some("COMPLIANCE"), Some(400)), "{lock}");

    let keys = server.keys("archive/");
    let data: Vec<&String> = keys.iter().filter(|k| k.ends_with(".parquet")).collect();
    assert!(data.len() > 10 && keys.iter().any(|k| k.starts_with("archive/manifests/")), "{keys:?}");
    let (code, report) = verify(&url);
    assert_eq!(code, 0, "clean archive on S3 verifies: {report:#}");
    assert_eq!(report["files_checked"].as_u64(), Some(data.len() as u64));

    // A locked object version cannot be deleted.
    let events_key = data.iter().find(|k| k.starts_with("archive/events/")).expect("events key").to_string();
    let versions = server.aws_ok(&["s3api", "list-object-versions", "--bucket", BUCKET, "--prefix", &events_key]);
    let versions: serde_json::Value = serde_json::from_str(&versions).expect("json");
    let version = versions["Versions"][0]["VersionId"].as_str().expect("a version id").to_string();
    let delete =
        server.aws(&["s3api", "delete-object", "--bucket", BUCKET, "--key", &events_key, "--version-id", &version]);
    assert!(!delete.status.success(), "deleting a locked version must fail");
    assert!(String::from_utf8_lossy(&delete.stderr).contains("AccessDenied"), "{:?}", delete);

    // Tampering with an ordinary S3 client, each on its own copy of the archive (uploaded from a download:
    // a server-side copy is refused by moto on a bucket with a default retention).
    let local = tempfile::tempdir().expect("tempdir");
    let download = local.path().join("archive");
    server.aws_ok(&[
        "s3",
        "cp",
        "--recursive",
        "--quiet",
        &format!("s3://{BUCKET}/archive/"),
        download.to_str().expect("utf-8"),
    ]);
    let copy = |name: &str| -> String {
        server.aws_ok(&[
            "s3",
            "cp",
            "--recursive",
            "--quiet",
            download.to_str().expect("utf-8"),
            &format!("s3://{BUCKET}/{name}/"),
        ]);
        server.url(name)
    };
    let rel = |key: &str| key.split_once('/').expect("prefix").1.to_string();
    let data_rel: Vec<String> = data.iter().map(|k| rel(k)).collect();
    let pick = |kind: &str| data_rel.iter().find(|k| k.starts_with(kind)).expect("a file of that kind").clone();
    let entries: Vec<String> = keys.iter().filter(|k| k.contains("/manifests/")).map(|k| rel(k)).collect();
    // Entry 1 of a chain that goes on after it.
    let entry = entries
        .iter()
        .find(|k| k.ends_with("000000000001.json") && entries.contains(&k.replace("01.json", "02.json")))
        .expect("a chain with three entries")
        .clone();

    // 1. flip one byte
    let t = copy("flip");
    let file = pick("events/");
    let path = local.path().join("f.parquet");
    server.aws_ok(&["s3", "cp", "--quiet", &format!("s3://{BUCKET}/flip/{file}"), path.to_str().expect("utf-8")]);
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).expect("write");
    server.aws_ok(&["s3", "cp", "--quiet", path.to_str().expect("utf-8"), &format!("s3://{BUCKET}/flip/{file}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "file_hash_mismatch", &file), "flip: {report:#}");
    // 2. delete a file
    let t = copy("delete");
    let file = pick("alerts/");
    server.aws_ok(&["s3", "rm", "--quiet", &format!("s3://{BUCKET}/delete/{file}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "file_missing", &file), "delete: {report:#}");
    // 3. add a file
    let t = copy("add");
    let file = pick("events/");
    let planted = file.replace(".parquet", "-planted.parquet");
    let source = download.join(&file);
    server.aws_ok(&["s3", "cp", "--quiet", source.to_str().expect("utf-8"), &format!("s3://{BUCKET}/add/{planted}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "extra_file", &planted), "add: {report:#}");
    // 4. delete a manifest entry
    let t = copy("unlist");
    server.aws_ok(&["s3", "rm", "--quiet", &format!("s3://{BUCKET}/unlist/{entry}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "entry_missing", "#1"), "delete entry: {report:#}");
    // 5. edit a manifest entry
    let t = copy("edit");
    let path = local.path().join("e.json");
    server.aws_ok(&["s3", "cp", "--quiet", &format!("s3://{BUCKET}/edit/{entry}"), path.to_str().expect("utf-8")]);
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    json["counts"]["alerts"] = serde_json::json!(json["counts"]["alerts"].as_u64().unwrap_or(0) + 1);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json")).expect("write");
    server.aws_ok(&["s3", "cp", "--quiet", path.to_str().expect("utf-8"), &format!("s3://{BUCKET}/edit/{entry}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "entry_edited", &entry), "edit entry: {report:#}");
    // 6. reorder two entries
    let t = copy("reorder");
    let next = entry.replace("000000000001.json", "000000000000.json");
    let (a, b) = (local.path().join("a.json"), local.path().join("b.json"));
    server.aws_ok(&["s3", "cp", "--quiet", &format!("s3://{BUCKET}/reorder/{entry}"), a.to_str().expect("utf-8")]);
    server.aws_ok(&["s3", "cp", "--quiet", &format!("s3://{BUCKET}/reorder/{next}"), b.to_str().expect("utf-8")]);
    server.aws_ok(&["s3", "cp", "--quiet", a.to_str().expect("utf-8"), &format!("s3://{BUCKET}/reorder/{next}")]);
    server.aws_ok(&["s3", "cp", "--quiet", b.to_str().expect("utf-8"), &format!("s3://{BUCKET}/reorder/{entry}")]);
    let (code, report) = verify(&t);
    assert!(code == 1 && has_finding(&report, "entry_out_of_order", &entry), "reorder: {report:#}");
    // 7. drop a range of offsets: entry 1 and every data file it lists
    let t = copy("drop");
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(download.join(&entry)).expect("entry")).expect("json");
    for file in listed["files"].as_array().expect("files") {
        let key = format!("s3://{BUCKET}/drop/{}", file["path"].as_str().expect("path"));
        server.aws_ok(&["s3", "rm", "--quiet", &key]);
    }
    server.aws_ok(&["s3", "rm", "--quiet", &format!("s3://{BUCKET}/drop/{entry}")]);
    let (code, report) = verify(&t);
    let after = entry.replace("000000000001.json", "000000000002.json");
    assert!(code == 1 && has_finding(&report, "offset_gap", &after), "drop a range: {report:#}");
    assert!(has_finding(&report, "entry_missing", "#1"), "drop a range: {report:#}");
}

#[test]
fn validate_warns_when_the_evidence_bucket_cannot_lock() {
    let Some(server) = S3Server::start() else { return };
    server.aws_ok(&["s3api", "create-bucket", "--bucket", "plain"]);
    let url = format!("s3://plain/evidence?endpoint={}", server.endpoint);
    let args =
        ["validate", "--input", "cloudtrail:fixtures/cloudtrail", "--rules", "pipelines/rules/soc2", "--evidence"];
    let (code, out, err) = vigil(&[&args[..], &[url.as_str()]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("has no Object Lock"), "{err}");
    let locked = server.url("evidence");
    let (code, out, err) = vigil(&[&args[..], &[locked.as_str()]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("Object Lock"), "{err}");
}

/// Sum of one count over the inputs of a `--summary-json` file.
fn summed(summary: &serde_json::Value, field: &str) -> u64 {
    summary["inputs"].as_array().expect("inputs").iter().filter_map(|i| i[field].as_u64()).sum()
}

#[test]
fn duckdb_reads_the_archive_on_s3_as_one_table() {
    let Some(server) = S3Server::start() else { return };
    let Some(python) = vigil_tests::duckdb::python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let summary_path = dir.path().join("summary.json");
    let url = server.url("duck");
    let (code, out, err) = vigil(&[
        "run",
        "--input",
        "cloudtrail:fixtures/cloudtrail",
        "--input",
        "k8s_audit:fixtures/k8s_audit",
        "--input",
        "apache_combined:fixtures/apache_combined",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &url,
        "--batch-rows",
        "700",
        "--summary-json",
        summary_path.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "run to S3 failed: {out}{err}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("summary json");
    let [(_, key), (_, secret), _] = CREDENTIALS;
    let at =
        vigil_tests::duckdb::ArchiveAt::S3 { endpoint: &server.endpoint, path: &format!("{BUCKET}/duck"), key, secret };
    let r = vigil_tests::duckdb::archive_checks(&python, at);
    assert_eq!(r["events"].as_u64(), Some(summed(&summary, "events")), "{r}");
    assert_eq!(r["dead"].as_u64(), Some(summed(&summary, "dead_letters")), "{r}");
    assert_eq!(r["alerts"].as_u64(), Some(summed(&summary, "alerts")), "{r}");
    assert_eq!(r["bad_partition"], 0, "time agrees with the date/hour partition: {r}");
    assert_eq!(r["null_time"], 0);
    assert_eq!(r["sources"], "aws.cloudtrail,k8s.audit,web.access");
    assert_eq!(r["login_no_mfa"], 1, "the Stratus console login without MFA: {r}");
    assert_eq!(r["raw_is_original"], 51, "raw keeps the original audit events: {r}");
    assert!(r["alert_events_found"].as_u64() > Some(0), "{r}");
}

#[test]
fn expire_respects_the_bucket_lock_and_records_disposals_on_s3() {
    let Some(server) = S3Server::start() else { return };
    // On the locked bucket (400 days COMPLIANCE, set by vigil): nothing is due, and a shorter retention is
    // refused, since S3 would keep the locked versions anyway.
    let locked = archive_fixtures(&server, "locked");
    let (code, out, err) = vigil(&["evidence", "expire", "--evidence", &locked, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" 0 file(s)"), "{out}");
    let (code, out, err) = vigil(&["evidence", "expire", "--evidence", &locked, "--retention-days", "30"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("shorter than the bucket's Object Lock retention of 400 days"), "{err}");
    // On a bucket without Object Lock, a retention of 0 days disposes of everything, recorded in the chains.
    server.aws_ok(&["s3api", "create-bucket", "--bucket", "plain"]);
    let plain = format!("s3://plain/evidence?endpoint={}", server.endpoint);
    let (code, out, err) = vigil(&[
        "run",
        "--input",
        "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &plain,
        "--batch-rows",
        "40",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let data = |server: &S3Server| {
        let keys = server.aws_ok(&["s3", "ls", "--recursive", "s3://plain/evidence/"]);
        keys.lines().filter(|l| l.ends_with(".parquet")).count()
    };
    let before = data(&server);
    assert!(before > 3, "the run wrote data files");
    let (code, out, err) = vigil(&["evidence", "expire", "--evidence", &plain, "--retention-days", "0"]);
    assert_eq!(code, 2, "below the 365-day floor without the override: {out}{err}");
    let args = ["evidence", "expire", "--evidence", &plain, "--retention-days", "0", "--allow-short-retention"];
    // expire measures age by the store's clock too, which S3 gives in whole seconds: entries stored in
    // this very second are not yet "0 days old" by it. Let the second pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out, err) = vigil(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{before} deleted")), "{out}");
    assert_eq!(data(&server), 0, "every data file is deleted");
    // The disposals are recorded in the chains; verify names them as below the floor, and nothing else.
    let (code, report) = verify(&plain);
    assert_eq!(code, 1, "{report:#}");
    let kinds: std::collections::BTreeSet<&str> =
        report["findings"].as_array().expect("findings").iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["disposal_below_floor"].into(), "{report:#}");
}

#[test]
fn queries_on_s3_read_only_the_data_files_a_manifest_entry_lists() {
    let Some(server) = S3Server::start() else { return };
    server.aws_ok(&["s3api", "create-bucket", "--bucket", "rooted", "--object-lock-enabled-for-bucket"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let count = |url: &str| -> (String, String) {
        let (code, out, err) =
            vigil(&["query", "--evidence", url, "--format", "csv", "SELECT count(*) AS n FROM events"]);
        assert_eq!(code, 0, "{out}{err}");
        (out.lines().nth(1).expect("a count").to_string(), err)
    };
    // Under a prefix of more than one level, and at the root of a bucket.
    let rooted = format!("s3://rooted?endpoint={}", server.endpoint);
    for (bucket, prefix, url) in [(BUCKET, "nested/archive/", server.url("nested/archive")), ("rooted", "", rooted)] {
        let args = ["run", "--input", "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson", "--rules"];
        let (code, out, err) = vigil(&[&args[..], &["pipelines/rules/soc2", "--evidence", &url]].concat());
        assert_eq!(code, 0, "run to S3 failed: {out}{err}");
        let (n, err) = count(&url);
        assert!(n.parse::<u64>().expect("a number") > 100 && !err.contains("left out"), "{n} {err}");
        // A copy of an events file under a new name beside it (uploaded from a download).
        let listing = server.aws_ok(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            &format!("{prefix}events/"),
            "--output",
            "json",
        ]);
        let listing: serde_json::Value = serde_json::from_str(&listing).expect("json");
        let key = listing["Contents"][0]["Key"].as_str().expect("an events file").to_string();
        let local = dir.path().join("events.parquet");
        let local = local.to_str().expect("utf-8");
        server.aws_ok(&["s3", "cp", "--quiet", &format!("s3://{bucket}/{key}"), local]);
        let planted = key.replace(".parquet", "-planted.parquet");
        server.aws_ok(&["s3", "cp", "--quiet", local, &format!("s3://{bucket}/{planted}")]);
        let (again, err) = count(&url);
        assert_eq!(again, n, "the planted copy is not counted: {err}");
        let relative = planted.strip_prefix(prefix).expect("below the prefix");
        assert!(err.contains("note: 1 data file(s)") && err.contains(relative), "{err}");
    }
}
