//! Tampering that a versioned bucket remembers, on a real S3-compatible server (moto, started by
//! `deploy/local/s3.sh`): vigil archives real fixtures, then an ordinary S3 client (the AWS CLI) deletes,
//! overwrites and unlocks evidence with plain requests that Object Lock allows. `vigil verify` names each
//! from the object versions (`file_deleted_recoverable`, `file_overwritten`, `retention_missing`), and the
//! restore command it prints works. A bucket whose lock is weaker than the config asks is refused at start
//! and left as it is; a stronger one is kept.
//!
//! What moto (5.2.5) does not do, and how the tests live with it: it refuses to change a bucket's Object
//! Lock configuration once the bucket holds objects (`InvalidBucket: Bucket needs to be empty`; AWS allows
//! it), so the weaker lock is set on a new, empty bucket; it answers `GetObjectRetention` with the object's
//! bytes instead of the retention (vigil reads retention from a HEAD, which moto answers right); and it
//! lets anyone shorten or remove a `COMPLIANCE` retention (AWS refuses), so the unlocked objects are made
//! the way AWS allows: a new version uploaded with its own short `GOVERNANCE` retention, and one whose
//! `GOVERNANCE` retention is then removed with `--bypass-governance-retention`.

use vigil_tests::repo;
use vigil_tests::s3::{BUCKET, S3Server};

fn vigil(args: &[&str]) -> (i32, String, String) {
    vigil_tests::s3::run_vigil(env!("CARGO_BIN_EXE_vigil"), args)
}

fn archive_fixtures(server: &S3Server, prefix: &str) -> String {
    vigil_tests::s3::archive_fixtures(env!("CARGO_BIN_EXE_vigil"), server, prefix)
}

fn verify(url: &str) -> (i32, serde_json::Value) {
    vigil_tests::s3::verify_json(env!("CARGO_BIN_EXE_vigil"), url)
}

/// The finding of `kind` about exactly `object`, if any.
fn finding<'a>(report: &'a serde_json::Value, kind: &str, object: &str) -> Option<&'a serde_json::Value> {
    report["findings"].as_array()?.iter().find(|f| f["kind"] == kind && f["object"] == object)
}

const VERSION_KINDS: [&str; 3] = ["file_deleted_recoverable", "file_overwritten", "retention_missing"];

/// `(kind, object)` of every finding and warning about object versions.
fn version_findings(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ["findings", "warnings"]
        .iter()
        .filter_map(|list| report[list].as_array())
        .flatten()
        .filter(|f| {
            let kind = f["kind"].as_str().unwrap_or("");
            VERSION_KINDS.contains(&kind) || kind == "versions_unavailable" || kind == "retention_unreadable"
        })
        .map(|f| (f["kind"].as_str().unwrap_or("").to_string(), f["object"].as_str().unwrap_or("").to_string()))
        .collect();
    out.sort();
    out
}

/// Versions of one key, oldest first, as `(version id, is a delete marker)`.
fn versions_of(server: &S3Server, key: &str) -> Vec<(String, bool)> {
    let out =
        server.aws_ok(&["s3api", "list-object-versions", "--bucket", BUCKET, "--prefix", key, "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mut all: Vec<(String, String, bool)> = Vec::new();
    for (list, marker) in [("Versions", false), ("DeleteMarkers", true)] {
        for v in json[list].as_array().into_iter().flatten().filter(|v| v["Key"] == key) {
            let id = v["VersionId"].as_str().expect("version id").to_string();
            all.push((v["LastModified"].as_str().expect("time").to_string(), id, marker));
        }
    }
    all.sort();
    all.into_iter().map(|(_, id, marker)| (id, marker)).collect()
}

#[test]
fn deleted_overwritten_and_unlocked_evidence_is_named_from_its_versions() {
    let Some(server) = S3Server::start() else { return };
    let url = archive_fixtures(&server, "archive");
    let (code, report) = verify(&url);
    assert_eq!(code, 0, "clean archive on S3 verifies: {report:#}");
    assert_eq!(version_findings(&report), Vec::<(String, String)>::new(), "{report:#}");

    let keys = server.keys("archive/");
    let rel = |key: &str| key.strip_prefix("archive/").expect("under the prefix").to_string();
    let of_kind = |kind: &str| -> Vec<&String> {
        keys.iter().filter(|k| k.starts_with(&format!("archive/{kind}/")) && k.ends_with(".parquet")).collect()
    };
    let (events, alerts) = (of_kind("events"), of_kind("alerts"));
    assert!(events.len() >= 2 && !alerts.is_empty(), "{keys:?}");
    let (deleted, unlocked, overwritten) = (events[0].clone(), events[1].clone(), alerts[0].clone());
    let entry = keys.iter().find(|k| k.ends_with("/000000000000.json")).expect("a manifest entry").clone();
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = |name: &str| scratch.path().join(name).to_str().expect("utf-8").to_string();

    // 1. A plain delete: S3 only puts a delete marker on top.
    let vigils_version = versions_of(&server, &deleted)[0].0.clone();
    let answer = server.aws_ok(&["s3api", "delete-object", "--bucket", BUCKET, "--key", &deleted, "--output", "json"]);
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let marker = answer["VersionId"].as_str().expect("a delete marker's version id").to_string();
    assert_eq!(answer["DeleteMarker"], true, "{answer}");

    // 2. A plain overwrite with other bytes: a new version on top.
    let original_alerts = versions_of(&server, &overwritten)[0].0.clone();
    std::fs::write(file("other.parquet"), b"not the evidence vigil wrote").expect("write");
    let put = server.aws_ok(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        &overwritten,
        "--body",
        &file("other.parquet"),
    ]);
    let put: serde_json::Value = serde_json::from_str(&put).expect("json");
    let new_alerts = put["VersionId"].as_str().expect("version id").to_string();

    // 3. The same bytes again as new versions without the bucket's retention: a manifest entry with its own
    // GOVERNANCE retention of an hour, and an events file whose GOVERNANCE retention is then removed.
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (key, local) in [(&entry, file("entry.json")), (&unlocked, file("events.parquet"))] {
        server.aws_ok(&["s3api", "get-object", "--bucket", BUCKET, "--key", key, &local]);
        server.aws_ok(&[
            "s3api",
            "put-object",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--body",
            &local,
            "--object-lock-mode",
            "GOVERNANCE",
            "--object-lock-retain-until-date",
            &soon,
        ]);
    }
    server.aws_ok(&[
        "s3api",
        "put-object-retention",
        "--bucket",
        BUCKET,
        "--key",
        &unlocked,
        "--bypass-governance-retention",
        "--retention",
        "{}",
    ]);
    let head = server.aws_ok(&["s3api", "head-object", "--bucket", BUCKET, "--key", &unlocked]);
    assert!(!head.contains("ObjectLockMode"), "the new version has no retention left: {head}");

    let (code, report) = verify(&url);
    assert_eq!(code, 1, "{report:#}");
    let expected: Vec<(String, String)> = vec![
        ("file_deleted_recoverable".into(), rel(&deleted)),
        ("file_overwritten".into(), rel(&overwritten)),
        ("retention_missing".into(), rel(&entry)),
        ("retention_missing".into(), rel(&unlocked)),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(version_findings(&report), expected, "exactly the tampered objects: {report:#}");
    // The current-object checks still see the deletion and the overwrite.
    assert!(finding(&report, "file_missing", &rel(&deleted)).is_some(), "{report:#}");
    let changed = ["file_size_mismatch", "file_hash_mismatch"];
    assert!(changed.iter().any(|kind| finding(&report, kind, &rel(&overwritten)).is_some()), "{report:#}");

    let detail = |kind: &str, key: &str| {
        finding(&report, kind, &rel(key)).and_then(|f| f["detail"].as_str()).expect("detail").to_string()
    };
    let text = detail("file_deleted_recoverable", &deleted);
    assert!(text.contains(&format!("delete marker (version {marker}")), "{text}");
    assert!(text.contains(&format!("still in version {vigils_version}")), "{text}");
    let text = detail("file_overwritten", &overwritten);
    let (at_vigil, at_new) =
        (text.find(&original_alerts).expect("vigil's version"), text.find(&new_alerts).expect("the new version"));
    assert!(at_vigil < at_new && text.starts_with("2 versions with different content, oldest first"), "{text}");
    let text = detail("retention_missing", &entry);
    assert!(text.contains(&format!("has GOVERNANCE retention until {soon}")), "{text}");
    assert!(text.contains("demands COMPLIANCE until"), "{text}");
    let text = detail("retention_missing", &unlocked);
    assert!(text.contains("has no Object Lock retention"), "{text}");

    // The restore command verify prints works: the events file is back, with vigil's bytes.
    let text = detail("file_deleted_recoverable", &deleted);
    let command = text.split('`').nth(1).expect("a command in backticks");
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..3], ["aws", "s3api", "delete-object"], "{command}");
    server.aws_ok(&words[1..]);
    let (code, report) = verify(&url);
    assert_eq!(code, 1, "the overwrite and the unlocked objects remain: {report:#}");
    assert!(finding(&report, "file_deleted_recoverable", &rel(&deleted)).is_none(), "{report:#}");
    assert!(finding(&report, "file_missing", &rel(&deleted)).is_none(), "restored: {report:#}");
    assert!(changed.iter().all(|kind| finding(&report, kind, &rel(&deleted)).is_none()), "restored: {report:#}");
    assert!(finding(&report, "file_overwritten", &rel(&overwritten)).is_some(), "{report:#}");
}

#[test]
fn a_bucket_lock_weaker_than_the_config_is_refused_and_never_changed() {
    let Some(server) = S3Server::start() else { return };
    let lock_of = |bucket: &str| -> (String, u64) {
        let out = server.aws_ok(&["s3api", "get-object-lock-configuration", "--bucket", bucket, "--output", "json"]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("json");
        let retention = &json["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
        (retention["Mode"].as_str().unwrap_or("").to_string(), retention["Days"].as_u64().unwrap_or(0))
    };
    let set_lock = |bucket: &str, mode: &str, days: u32| {
        server.aws_ok(&["s3api", "create-bucket", "--bucket", bucket, "--object-lock-enabled-for-bucket"]);
        let config = format!(
            r#"{{"ObjectLockEnabled":"Enabled","Rule":{{"DefaultRetention":{{"Mode":"{mode}","Days":{days}}}}}}}"#
        );
        server.aws_ok(&[
            "s3api",
            "put-object-lock-configuration",
            "--bucket",
            bucket,
            "--object-lock-configuration",
            &config,
        ]);
    };
    let input = "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson";

    // GOVERNANCE for a day, while the config asks for the defaults (COMPLIANCE, 400 days): refused.
    set_lock("weak", "GOVERNANCE", 1);
    let weak = format!("s3://weak/evidence?endpoint={}", server.endpoint);
    let (code, out, err) = vigil(&["run", "--input", input, "--rules", "pipelines/rules/soc2", "--evidence", &weak]);
    assert_ne!(code, 0, "a weaker lock must be refused: {out}{err}");
    assert!(err.contains("(GOVERNANCE, 1 days) is weaker in mode and shorter than"), "{err}");
    assert!(err.contains("(COMPLIANCE, 400 days)") && err.contains("never changes an existing lock"), "{err}");
    assert!(err.contains("put-object-lock-configuration --bucket weak"), "{err}");
    assert_eq!(lock_of("weak"), ("GOVERNANCE".to_string(), 1), "the bucket's lock is left as it was");
    let written = server.aws_ok(&["s3api", "list-objects-v2", "--bucket", "weak", "--output", "json"]);
    assert!(!written.contains("\"Key\""), "nothing was written: {written}");

    // COMPLIANCE for 800 days, while the config asks for GOVERNANCE for 400: kept, and the run goes on.
    set_lock("strong", "COMPLIANCE", 800);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("pipeline.toml");
    let repo = repo();
    std::fs::write(
        &config,
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\npath = \"{}\"\n\n[rules]\ndirs = [\"{}\"]\n\n[evidence]\n\
             url = \"s3://strong/evidence?endpoint={}\"\nretention_days = 400\nobject_lock_mode = \"GOVERNANCE\"\n\n\
             [alerts]\npath = \"{}\"\n\n[dead_letters]\npath = \"{}\"\n",
            repo.join("fixtures/cloudtrail/stratus-detonations.ndjson").display(),
            repo.join("pipelines/rules/soc2").display(),
            server.endpoint,
            dir.path().join("alerts.ndjson").display(),
            dir.path().join("dead_letters.ndjson").display(),
        ),
    )
    .expect("write config");
    let (code, out, err) = vigil(&["run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "a stronger lock is kept and used: {out}{err}");
    assert_eq!(lock_of("strong"), ("COMPLIANCE".to_string(), 800), "the bucket's lock is left as it was");
}

#[test]
fn signed_evidence_on_s3_names_a_cut_tail_and_an_edited_digest() {
    let Some(server) = S3Server::start() else { return };
    let scratch = tempfile::tempdir().expect("tempdir");
    let key = scratch.path().join("signing.key");
    let key_path = key.to_str().expect("utf-8");
    let (code, public_pem, err) = vigil(&["keys", "generate", "--out", key_path]);
    assert_eq!(code, 0, "{err}");
    let public = scratch.path().join("signing.pub");
    std::fs::write(&public, public_pem).expect("write public key");
    let public = public.to_str().expect("utf-8");
    let url = server.url("signed");
    let (code, out, err) = vigil(&[
        "run",
        "--input",
        "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &url,
        "--batch-rows",
        "40",
        "--signing-key",
        key_path,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("evidence signed: digest 0"), "{out}");
    let signed = |url: &str| {
        let (code, out, err) = vigil(&["verify", "--evidence", url, "--json", "--public-key", public]);
        let json: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("verify --json: {e}: {out}{err}"));
        (code, json)
    };
    let (code, report) = signed(&url);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["authenticated"], true, "{report:#}");
    let keys = server.keys("signed/");
    assert!(!keys.iter().any(|k| k.contains("signing")), "no key material in the bucket: {keys:?}");

    // The newest manifest entry deleted with a plain DELETE: the signed head names the cut, the bucket
    // still holds the entry beneath a delete marker.
    let mut entries: Vec<&String> =
        keys.iter().filter(|k| k.starts_with("signed/manifests/") && !k.contains("pending")).collect();
    entries.sort();
    let newest = entries.last().expect("entries").to_string();
    server.aws_ok(&["s3api", "delete-object", "--bucket", BUCKET, "--key", &newest]);
    // The digest overwritten with an edited copy (a new version).
    let digest = "signed/digests/000000000000.json";
    let body = server.aws_ok(&["s3", "cp", &format!("s3://{BUCKET}/{digest}"), "-"]);
    let edited = scratch.path().join("digest.json");
    std::fs::write(&edited, body.replacen("\"closing\": true", "\"closing\": false", 1)).expect("write");
    server.aws_ok(&["s3", "cp", edited.to_str().expect("utf-8"), &format!("s3://{BUCKET}/{digest}")]);
    let (code, report) = signed(&url);
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["kind"].as_str().unwrap_or("").to_string(), f["object"].as_str().unwrap_or("").to_string()))
        .collect();
    let rel = |k: &str| k.strip_prefix("signed/").expect("prefix").to_string();
    for (kind, object) in [
        ("file_deleted_recoverable", rel(&newest)),
        ("digest_signature_invalid", rel(digest)),
        ("file_overwritten", rel(digest)),
    ] {
        assert!(kinds.iter().any(|(k, o)| k == kind && o == &object), "{kind} {object}: {report:#}");
    }
}
