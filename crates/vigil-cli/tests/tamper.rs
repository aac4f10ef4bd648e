//! Someone with write access to the evidence directory, but not the signing key, edits the archive:
//! `vigil verify --public-key` names each edit, an untouched archive passes, keys rotate, and `expire`
//! keeps to its floors. (The same on S3, with object versions, is in `s3_tamper.rs`.)
//!
//! One signed archive of the real CloudTrail fixtures is written per test and copied for each tampering.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_evidence::manifest::ManifestEntry;
use vigil_tests::repo;

fn vigil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .env_remove("VIGIL_SIGNING_KEY")
        .env_remove("VIGIL_SIGNING_KEY_FILE")
        .args(args)
        .output()
        .expect("vigil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A new key pair in `dir`: (private key file, public key file).
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    let (code, out, err) = vigil(&["keys", "generate", "--out", s(&private)]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&public, out).expect("write public key");
    (private, public)
}

/// `vigil run` of `input` into `evidence`, signed with `key`.
fn archive(input: &str, evidence: &Path, key: Option<&Path>) -> (i32, String) {
    let mut args = vec!["run", "--no-progress", "--input", input, "--rules", "pipelines/rules/soc2"];
    args.extend(["--evidence", s(evidence), "--batch-rows", "40", "--alerts", "-"]);
    if let Some(key) = key {
        args.extend(["--signing-key", s(key)]);
    }
    let (code, out, err) = vigil(&args);
    (code, format!("{out}{err}"))
}

/// `vigil verify --json` with these public keys: (exit code, report).
fn verify(evidence: &Path, keys: &[&Path], extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["verify", "--json", "--evidence", s(evidence)];
    for key in keys {
        args.extend(["--public-key", s(key)]);
    }
    args.extend(extra);
    let (code, out, err) = vigil(&args);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("verify --json: {e}: {out}{err}"));
    (code, report)
}

/// The findings' kinds, each with its object.
fn findings(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| (f["kind"].as_str().unwrap_or("").into(), f["object"].as_str().unwrap_or("").into()))
                .collect()
        })
        .unwrap_or_default()
}

fn has(report: &serde_json::Value, kind: &str, object: &str) -> bool {
    findings(report).iter().any(|(k, o)| k == kind && o.contains(object))
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp").args(["-a", s(from), s(to)]).status().expect("cp runs");
    assert!(status.success());
}

/// Every chain's entries, by chain folder `manifests/{source}/{partition}`.
fn chains(evidence: &Path) -> Vec<(PathBuf, Vec<ManifestEntry>)> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(evidence.join("manifests")).expect("manifests") {
        for partition in std::fs::read_dir(source.expect("entry").path()).expect("partitions") {
            let dir = partition.expect("entry").path();
            let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
                .expect("entries")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with("pending")))
                .collect();
            names.sort();
            let entries = names
                .iter()
                .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("entry"))
                .collect();
            out.push((dir, entries));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The longest chain (most entries).
fn longest(evidence: &Path) -> (PathBuf, Vec<ManifestEntry>) {
    chains(evidence).into_iter().max_by_key(|(_, e)| e.len()).expect("a chain")
}

fn chain_name(entry: &ManifestEntry) -> String {
    format!("{}/{}", entry.ingest_source, entry.partition)
}

#[test]
fn a_signed_archive_names_every_edit_made_without_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path(), "writer");
    let clean = dir.path().join("clean");
    let (code, out) = archive("cloudtrail:fixtures/cloudtrail", &clean, Some(&key));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("evidence signed: digest 0"), "{out}");
    let key_text = std::fs::read_to_string(&key).expect("key");
    let pem_body = key_text.lines().nth(1).expect("a PEM line");
    for file in walk(&clean) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(!String::from_utf8_lossy(&bytes).contains(pem_body), "the private key is in {}", file.display());
    }

    // Untouched: verified and authenticated; without the key, said loudly.
    let (code, report) = verify(&clean, &[&public], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!((report["authenticated"].as_bool(), report["digests"].as_u64()), (Some(true), Some(1)));
    let (code, out, _) = vigil(&["verify", "--evidence", s(&clean)]);
    assert_eq!(code, 0);
    assert!(out.contains("NOT AUTHENTICATED") && out.contains("only internal consistency"), "{out}");

    // 1. The newest entry of a chain deleted with its data files.
    let cut = dir.path().join("cut");
    copy_dir(&clean, &cut);
    let (chain_dir, entries) = longest(&cut);
    let newest = entries.last().expect("entries");
    assert!(entries.len() >= 3, "the fixture makes chains of several entries");
    for file in &newest.files {
        std::fs::remove_file(cut.join(&file.path)).expect("remove data file");
    }
    std::fs::remove_file(chain_dir.join(format!("{:012}.json", newest.seq))).expect("remove entry");
    let (code, report) = verify(&cut, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "chain_truncated", &chain_name(newest)), "{report:#}");

    // 2. One chain deleted entirely.
    let gone = dir.path().join("gone");
    copy_dir(&clean, &gone);
    let (chain_dir, entries) = longest(&gone);
    for entry in &entries {
        for file in &entry.files {
            std::fs::remove_file(gone.join(&file.path)).expect("remove data file");
        }
    }
    std::fs::remove_dir_all(chain_dir.parent().expect("source dir")).expect("remove chain");
    let (code, report) = verify(&gone, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "chain_missing", &chain_name(&entries[0])), "{report:#}");

    // 3. History rewritten: the alert files removed and the chain re-hashed, consistently.
    let rewritten = dir.path().join("rewritten");
    copy_dir(&clean, &rewritten);
    let (chain_dir, entries) = chains(&rewritten)
        .into_iter()
        .find(|(_, e)| e.iter().any(|e| e.files.iter().any(|f| f.kind == "alerts")))
        .expect("a chain with alerts");
    let mut prev = String::new();
    for mut entry in entries.clone() {
        for file in entry.files.iter().filter(|f| f.kind == "alerts") {
            std::fs::remove_file(rewritten.join(&file.path)).expect("remove alerts");
        }
        entry.files.retain(|f| f.kind != "alerts");
        entry.counts.alerts = 0;
        entry.prev_hash = prev.clone();
        let entry = entry.seal();
        prev = entry.entry_hash.clone();
        let path = chain_dir.join(format!("{:012}.json", entry.seq));
        std::fs::write(path, serde_json::to_vec_pretty(&entry).expect("json")).expect("write entry");
    }
    let (code, report) = verify(&rewritten, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "chain_rewritten", &chain_name(&entries[0])), "{report:#}");
    // ... and the digest rewritten to match, signed with the attacker's own key: consistent to anyone
    // without the public key, refused by anyone with it.
    let digest_path = rewritten.join("digests/000000000000.json");
    let mut digest: vigil_evidence::digest::Digest =
        serde_json::from_slice(&std::fs::read(&digest_path).expect("digest")).expect("digest json");
    let now = chains(&rewritten);
    for head in &mut digest.heads {
        if let Some((_, entries)) = now.iter().find(|(d, _)| d == &chain_dir)
            && head.ingest_source == entries[0].ingest_source
        {
            head.entry_hash = entries[head.seq as usize].entry_hash.clone();
        }
    }
    let attacker = vigil_evidence::keys::PrivateKey::generate().expect("key");
    digest.key_id = attacker.id().to_string();
    digest.signature = attacker.sign(&digest.signed_bytes());
    std::fs::write(&digest_path, serde_json::to_vec_pretty(&digest).expect("json")).expect("write digest");
    let (code, consistent) = verify(&rewritten, &[], &[]);
    assert_eq!(code, 0, "internally consistent again: {consistent:#}");
    let (code, report) = verify(&rewritten, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "digest_unknown_key", "digests/000000000000.json"), "{report:#}");

    // 4. A copied events file planted with a pending intent that lists it.
    let planted = dir.path().join("planted");
    copy_dir(&clean, &planted);
    let (chain_dir, entries) = longest(&planted);
    let source = entries[0].files.iter().find(|f| f.kind == "events").expect("an events file");
    let copy = source.path.replace(".parquet", "-copy.parquet");
    std::fs::copy(planted.join(&source.path), planted.join(&copy)).expect("copy");
    std::fs::write(chain_dir.join("pending-000000000099.json"), serde_json::to_vec(&[&copy]).expect("json"))
        .expect("plant intent");
    let (code, report) = verify(&planted, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "pending_invalid", "pending-000000000099.json"), "{report:#}");
    assert!(has(&report, "extra_file", &copy), "{report:#}");
    // Named for the chain's next range and left for an hour: still a finding, without the key too.
    let next = entries.last().expect("entries").last_offset + 1;
    let stem = format!("{}-0-{next}-{}.parquet", entries[0].ingest_source, next + 9);
    let named = format!("{}/{stem}", source.path.rsplit_once('/').expect("a folder").0);
    std::fs::copy(planted.join(&source.path), planted.join(&named)).expect("copy");
    let intent = chain_dir.join("pending-000000000098.json");
    std::fs::write(&intent, serde_json::to_vec(&[&named]).expect("json")).expect("plant intent");
    backdate(&intent, 3600);
    let (_, report) = verify(&planted, &[], &[]);
    assert!(has(&report, "range_abandoned", "pending-000000000098.json"), "{report:#}");
    assert!(has(&report, "extra_file", &named), "{report:#}");

    // 5. A digest edited, or replaced by one signed with another key.
    let forged = dir.path().join("forged");
    copy_dir(&clean, &forged);
    let digest_path = forged.join("digests/000000000000.json");
    let text = std::fs::read_to_string(&digest_path).expect("digest");
    std::fs::write(&digest_path, text.replacen("\"closing\": true", "\"closing\": false", 1)).expect("edit");
    let (code, report) = verify(&forged, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "digest_signature_invalid", "digests/000000000000.json"), "{report:#}");
    let (_, other_public) = keypair(dir.path(), "other");
    let (code, report) = verify(&clean, &[&other_public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "digest_unknown_key", "digests/000000000000.json"), "{report:#}");

    // 6. An entry appended after the writer's shutdown digest (hashes right), found an hour later.
    let appended = dir.path().join("appended");
    copy_dir(&clean, &appended);
    let (chain_dir, entries) = longest(&appended);
    let last = entries.last().expect("entries").clone();
    let mut extra = last.clone();
    extra.seq += 1;
    extra.first_offset = last.last_offset + 1;
    extra.last_offset = last.last_offset + 1;
    extra.files.clear();
    extra.counts = vigil_evidence::Counts { skipped: 1, ..Default::default() };
    extra.prev_hash = last.entry_hash.clone();
    let extra = extra.seal();
    let path = chain_dir.join(format!("{:012}.json", extra.seq));
    std::fs::write(&path, serde_json::to_vec_pretty(&extra).expect("json")).expect("append");
    let (code, fresh) = verify(&appended, &[&public], &[]);
    assert_eq!(code, 0, "a writer may still be signing it: {fresh:#}");
    assert!(fresh["warnings"].to_string().contains("entry_not_yet_signed"), "{fresh:#}");
    backdate(&path, 2 * 3600);
    let (code, report) = verify(&appended, &[&public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "entry_unsigned", &chain_name(&extra)), "{report:#}");

    // 7. A run without the key on a signed archive is refused; the archive is untouched.
    let (code, out) = archive("cloudtrail:fixtures/cloudtrail", &clean, None);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is signed") && out.contains("signing_key_file"), "{out}");
}

#[test]
fn keys_rotate_and_tails_cut_with_their_digests_are_caught_with_an_earlier_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_key, old_public) = keypair(dir.path(), "2025");
    let (new_key, new_public) = keypair(dir.path(), "2026");
    let evidence = dir.path().join("evidence");
    let (code, out) = archive("cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson", &evidence, Some(&old_key));
    assert_eq!(code, 0, "{out}");
    let (_, earlier) = verify(&evidence, &[&old_public], &[]);
    let report_file = dir.path().join("earlier.json");
    std::fs::write(&report_file, earlier.to_string()).expect("write report");
    let (code, out) = archive("k8s_audit:fixtures/k8s_audit", &evidence, Some(&new_key));
    assert_eq!(code, 0, "{out}");
    let (_, later) = verify(&evidence, &[&old_public, &new_public], &[]);
    let later_file = dir.path().join("later.json");
    std::fs::write(&later_file, later.to_string()).expect("write report");

    // Both keys: everything verifies, the old digests included. One file may hold both keys.
    let (code, report) = verify(&evidence, &[&old_public, &new_public], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["digests"].as_u64(), Some(2));
    let both = dir.path().join("both.pub");
    let text =
        std::fs::read_to_string(&old_public).expect("read") + &std::fs::read_to_string(&new_public).expect("read");
    std::fs::write(&both, text).expect("write");
    assert_eq!(verify(&evidence, &[&both], &[]).0, 0);
    // Only the new key: the old digest is named, not silently trusted.
    let (code, report) = verify(&evidence, &[&new_public], &[]);
    assert_eq!(code, 1);
    assert!(has(&report, "digest_unknown_key", "digests/000000000000.json"), "{report:#}");

    // The second run's chains and digest removed together: the remaining archive is consistent and its
    // newest digest is a shutdown digest, so only the earlier report proves the cut.
    let k8s_chains: Vec<PathBuf> = chains(&evidence)
        .into_iter()
        .filter(|(_, e)| e[0].format == "k8s_audit")
        .map(|(dir, entries)| {
            for entry in &entries {
                for file in &entry.files {
                    std::fs::remove_file(evidence.join(&file.path)).expect("remove");
                }
            }
            dir
        })
        .collect();
    assert!(!k8s_chains.is_empty());
    for dir in &k8s_chains {
        std::fs::remove_dir_all(dir.parent().expect("source")).expect("remove chain");
    }
    std::fs::remove_file(evidence.join("digests/000000000001.json")).expect("remove digest");
    let (code, _) = verify(&evidence, &[&both], &["--since", s(&report_file)]);
    assert_eq!(code, 0, "the state the earlier report saw");
    let (code, report) = verify(&evidence, &[&both], &["--since", s(&later_file)]);
    assert_eq!(code, 1);
    assert!(has(&report, "digest_missing", "digests/000000000001.json"), "{report:#}");
    assert!(has(&report, "chain_missing", ""), "{report:#}");
}

#[test]
fn expire_keeps_to_its_floor_and_signs_its_disposals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path(), "writer");
    let evidence = dir.path().join("evidence");
    let (code, out) = archive("cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson", &evidence, Some(&key));
    assert_eq!(code, 0, "{out}");
    let files_before = walk(&evidence.join("events")).len();

    let (code, _, err) = vigil(&["evidence", "expire", "--evidence", s(&evidence), "--retention-days", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("below the minimum of 365 days") && err.contains("--allow-short-retention"), "{err}");
    assert_eq!(walk(&evidence.join("events")).len(), files_before, "nothing deleted");
    // Overridden, but without the key: a signed archive refuses an unsigned disposal.
    let args = ["evidence", "expire", "--evidence", s(&evidence), "--retention-days", "0", "--allow-short-retention"];
    let (code, _, err) = vigil(&args);
    assert_eq!(code, 2);
    assert!(err.contains("no signing key"), "{err}");
    let mut with_key = args.to_vec();
    with_key.extend(["--signing-key", s(&key)]);
    let (code, out, err) = vigil(&with_key);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("disposals signed in digest 1"), "{out}");
    assert!(walk(&evidence.join("events")).is_empty(), "the events are gone");
    // verify accepts the disposed files as disposed, names the disposal below the floor, and finds every
    // entry signed.
    let (code, report) = verify(&evidence, &[&public], &[]);
    assert_eq!(code, 1);
    let kinds: std::collections::BTreeSet<String> = findings(&report).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["disposal_below_floor".to_string()].into(), "{report:#}");
    assert_eq!(report["authenticated"].as_bool(), Some(true));
}

fn backdate(path: &Path, secs: u64) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    std::fs::File::options().write(true).open(path).and_then(|f| f.set_modified(then)).expect("set mtime");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else { return out };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_running_writer_signs_a_digest_every_interval_and_one_at_shutdown() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path(), "writer");
    let evidence = dir.path().join("evidence");
    let config = dir.path().join("p.toml");
    let rules = repo().join("pipelines/rules/soc2");
    std::fs::write(
        &config,
        format!(
            "[pipeline]\nbatch_ms = 300\n[[inputs]]\nformat = \"cloudtrail\"\npath = \"-\"\n[rules]\ndirs = [{:?}]\n\
             [evidence]\nurl = {:?}\nsigning_key_file = {:?}\ndigest_interval = \"1s\"\n[alerts]\npath = {:?}\n",
            s(&rules),
            s(&evidence),
            s(&key),
            s(&dir.path().join("alerts.ndjson"))
        ),
    )
    .expect("config");
    let trace =
        std::fs::read_to_string(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson")).expect("fixture");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--config", s(&config)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vigil runs");
    let mut stdin = child.stdin.take().expect("stdin");
    // Records trickle in for about 4 s: batches close on their 300 ms deadline, digests every second.
    for chunk in trace.lines().collect::<Vec<_>>().chunks(40) {
        for line in chunk {
            writeln!(stdin, "{line}").expect("write record");
        }
        stdin.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("vigil ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut digests: Vec<vigil_evidence::digest::Digest> = walk(&evidence.join("digests"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("digest"))
        .collect();
    digests.sort_by_key(|d| d.seq);
    let periodic: Vec<_> = digests.iter().filter(|d| !d.closing).collect();
    assert!(periodic.len() >= 2, "a digest every second while running: {digests:#?}");
    assert!(periodic.iter().any(|d| !d.heads.is_empty()), "periodic digests sign the heads written meanwhile");
    assert!(digests.last().is_some_and(|d| d.closing), "the last is the shutdown digest");
    let (code, report) = verify(&evidence, &[&public], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["digests"].as_u64(), Some(digests.len() as u64));
}
