//! `vigil verify` on a real archive (CloudTrail, Kubernetes audit and web fixtures): clean, then tampered in
//! each way an auditor worries about; each must be caught and named, with exit code 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_evidence::ManifestEntry;
use vigil_tests::{config, files_below, parquet_files, repo, run};

fn vigil(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil")).current_dir(repo()).args(args).output().expect("vigil runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// An archive of the fixtures with small batches (many entries per chain).
fn archive(dir: &Path) -> PathBuf {
    let f = repo().join("fixtures");
    let summary = run(config(
        &[("cloudtrail", f.join("cloudtrail/stratus-detonations.ndjson")), ("k8s_audit", f.join("k8s_audit"))],
        dir,
        40,
        2,
    ));
    assert!(summary.total().events > 200, "fixtures produce a real archive");
    dir.join("evidence")
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files_below(from) {
        let target = to.join(file.strip_prefix(from).expect("below"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &target).expect("copy");
    }
}

/// The chain (manifest folder) with the most entries, and its entry files in order.
fn longest_chain(evidence: &Path) -> Vec<PathBuf> {
    let mut chains: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    for f in files_below(&evidence.join("manifests")) {
        chains.entry(f.parent().expect("dir").to_path_buf()).or_default().push(f);
    }
    let mut longest = chains.into_values().max_by_key(Vec::len).expect("a chain");
    longest.sort();
    assert!(longest.len() >= 4, "the fixture archive has chains of several entries");
    longest
}

fn read_entry(path: &Path) -> ManifestEntry {
    serde_json::from_slice(&std::fs::read(path).expect("entry")).expect("entry json")
}

fn write_entry(path: &Path, entry: &ManifestEntry) {
    std::fs::write(path, serde_json::to_vec_pretty(entry).expect("json")).expect("write entry");
}

fn verify_json(evidence: &Path) -> (i32, serde_json::Value) {
    let (code, text) = vigil(&["verify", "--evidence", evidence.to_str().expect("utf-8"), "--json"]);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("verify --json: {e}: {text}"));
    (code, json)
}

/// Tampers with a copy of `clean` and expects `verify` to fail naming `kind` on an object containing `object`.
fn expect_caught(clean: &Path, what: &str, kind: &str, tamper: impl FnOnce(&Path) -> String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = dir.path().join("evidence");
    copy_dir(clean, &evidence);
    let object = tamper(&evidence);
    let (code, report) = verify_json(&evidence);
    assert_eq!(code, 1, "{what}: verify must fail: {report:#}");
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["kind"] == kind && f["object"].as_str().is_some_and(|o| o.contains(&object))),
        "{what}: expected a {kind} finding naming {object}: {report:#}"
    );
    // The human output names it too.
    let (_, text) = vigil(&["verify", "--evidence", evidence.to_str().expect("utf-8")]);
    assert!(text.contains(kind) && text.contains("PROBLEM"), "{what}: {text}");
}

fn rel(evidence: &Path, path: &Path) -> String {
    path.strip_prefix(evidence).expect("below").to_string_lossy().into_owned()
}

#[test]
fn verify_passes_a_clean_archive_and_names_every_kind_of_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = archive(dir.path());
    let (code, report) = verify_json(&clean);
    assert_eq!(code, 0, "a clean archive verifies: {report:#}");
    let files = parquet_files(&clean).len() as u64;
    assert_eq!(report["files_checked"].as_u64(), Some(files), "every data file is read");
    assert!(report["heads"].as_array().is_some_and(|h| !h.is_empty()));
    let (code, text) = vigil(&["verify", "--evidence", clean.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("VERIFIED"), "{text}");

    expect_caught(&clean, "flip one byte", "file_hash_mismatch", |ev| {
        let file = parquet_files(ev).into_iter().find(|p| rel(ev, p).starts_with("events/")).expect("events file");
        let mut bytes = std::fs::read(&file).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&file, bytes).expect("write");
        rel(ev, &file)
    });
    expect_caught(&clean, "delete a file", "file_missing", |ev| {
        let file = parquet_files(ev).into_iter().find(|p| rel(ev, p).starts_with("alerts/")).expect("alerts file");
        std::fs::remove_file(&file).expect("rm");
        rel(ev, &file)
    });
    expect_caught(&clean, "add a file", "extra_file", |ev| {
        let file = parquet_files(ev).into_iter().find(|p| rel(ev, p).starts_with("events/")).expect("events file");
        let added = file.with_file_name("planted-0-1-2.parquet");
        std::fs::copy(&file, &added).expect("copy");
        rel(ev, &added)
    });
    expect_caught(&clean, "delete a manifest entry", "entry_missing", |ev| {
        let chain = longest_chain(ev);
        let entry = read_entry(&chain[1]);
        std::fs::remove_file(&chain[1]).expect("rm");
        format!("{}/{}#1", entry.ingest_source, entry.partition)
    });
    expect_caught(&clean, "edit a manifest entry", "entry_edited", |ev| {
        let chain = longest_chain(ev);
        let mut entry = read_entry(&chain[2]);
        entry.counts.alerts += 1;
        write_entry(&chain[2], &entry);
        rel(ev, &chain[2])
    });
    expect_caught(&clean, "reorder manifest entries", "entry_out_of_order", |ev| {
        let chain = longest_chain(ev);
        let (a, b) = (std::fs::read(&chain[1]).expect("read"), std::fs::read(&chain[2]).expect("read"));
        std::fs::write(&chain[1], b).expect("write");
        std::fs::write(&chain[2], a).expect("write");
        rel(ev, &chain[1])
    });
    // The hardest one: a range of offsets removed together with its files, and every later entry
    // renumbered and re-sealed so that the hash chain itself is consistent. The offsets give it away.
    expect_caught(&clean, "drop a range of offsets", "offset_gap", |ev| {
        let chain = longest_chain(ev);
        let dropped = read_entry(&chain[1]);
        for file in &dropped.files {
            std::fs::remove_file(ev.join(&file.path)).expect("rm data file");
        }
        let mut prev = read_entry(&chain[0]);
        let mut renamed = chain[0].clone();
        for path in &chain[2..] {
            let mut entry = read_entry(path);
            entry.seq = prev.seq + 1;
            entry.prev_hash = prev.entry_hash.clone();
            let entry = entry.seal();
            let target = path.with_file_name(format!("{:012}.json", entry.seq));
            write_entry(&target, &entry);
            renamed = target;
            prev = entry;
        }
        std::fs::remove_file(chain.last().expect("last")).expect("rm last");
        assert_ne!(&renamed, chain.last().expect("last"));
        // The entry after the hole now sits where the dropped one was.
        rel(ev, &chain[1])
    });
}

#[test]
fn verify_catches_a_cut_off_chain_tail_given_an_earlier_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = archive(dir.path());
    let (code, report) = verify_json(&clean);
    assert_eq!(code, 0);
    let earlier = dir.path().join("verify-before.json");
    std::fs::write(&earlier, serde_json::to_vec(&report).expect("json")).expect("write");
    // Remove the newest entry of a chain together with its files: the chain alone stays consistent.
    let chain = longest_chain(&clean);
    let last = chain.last().expect("last");
    let entry = read_entry(last);
    for file in &entry.files {
        std::fs::remove_file(clean.join(&file.path)).expect("rm");
    }
    std::fs::remove_file(last).expect("rm entry");
    let (code, _) = verify_json(&clean);
    assert_eq!(code, 0, "without an anchor, a cut-off tail looks like a shorter archive");
    let (code, text) =
        vigil(&["verify", "--evidence", clean.to_str().expect("utf-8"), "--since", earlier.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("chain_truncated"), "{text}");
}

#[test]
fn query_answers_over_the_archive_and_refuses_anything_but_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = archive(dir.path());
    let ev = evidence.to_str().expect("utf-8");
    let rows = vigil_tests::read_kind(&evidence, "events").expect("events").num_rows();
    let (code, text) = vigil(&["query", "--evidence", ev, "--format", "csv", "SELECT count(*) AS n FROM events"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().nth(1), Some(rows.to_string().as_str()), "{text}");
    // Partition columns answer from the folder names.
    let (code, text) = vigil(&[
        "query",
        "--evidence",
        ev,
        "--format",
        "json",
        "SELECT source, count(*) AS n FROM events WHERE source = 'k8s.audit' GROUP BY source",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"source\":\"k8s.audit\""), "{text}");
    for refused in [
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/vigil-x.csv'",
        "INSERT INTO events SELECT * FROM events",
    ] {
        let (code, text) = vigil(&["query", "--evidence", ev, refused]);
        assert_eq!(code, 2, "{refused} must be refused: {text}");
    }
}

#[test]
fn the_same_seed_draws_the_same_sample_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = archive(dir.path());
    let ev = evidence.to_str().expect("utf-8");
    let draw = |out: &Path, seed: &str| {
        let args = [
            "sample",
            "--evidence",
            ev,
            "--criterion",
            "CC6.1",
            "--from",
            "2015-01-01",
            "--to",
            "2030-01-01",
            "--size",
            "4",
        ];
        let (code, text) = vigil(&[&args[..], &["--seed", seed, "--out", out.to_str().expect("utf-8")]].concat());
        assert_eq!(code, 0, "{text}");
    };
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    draw(&a, "audit-2026");
    draw(&b, "audit-2026");
    draw(&c, "another seed");
    let names = [
        "SUMMARY.txt",
        "population.json",
        "provenance.json",
        "records.csv",
        "records.parquet",
        "source_events.parquet",
    ];
    for name in names {
        assert_eq!(
            std::fs::read(a.join(name)).expect(name),
            std::fs::read(b.join(name)).expect(name),
            "{name} differs"
        );
    }
    let population: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("population.json")).expect("population")).expect("json");
    let drawn = population["drawn"].as_array().expect("drawn");
    assert_eq!(drawn.len(), 4);
    assert!(population["count"].as_u64().expect("count") >= 4);
    // The draw is the 4 lowest SHA-256("seed:id") among the population, recomputable by anyone.
    let ranks: Vec<&str> = drawn.iter().map(|d| d["rank"].as_str().expect("rank")).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]));
    for d in drawn {
        let id = d["id"].as_str().expect("id");
        let rank = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("audit-2026:{id}").as_bytes()));
        assert_eq!(d["rank"].as_str(), Some(rank.as_str()));
    }
    let provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("provenance.json")).expect("provenance")).expect("json");
    assert!(provenance.as_array().is_some_and(|p| p.len() >= 4), "every drawn alert has its entry: {provenance}");
    assert_ne!(std::fs::read(a.join("population.json")).ok(), std::fs::read(c.join("population.json")).ok());
}

#[test]
fn expire_lists_then_disposes_past_retention_and_the_archive_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = archive(dir.path());
    let ev = evidence.to_str().expect("utf-8");
    let data_files = parquet_files(&evidence).len();
    let entries = files_below(&evidence.join("manifests")).len();
    // Under the default 400 days nothing is due.
    let (code, text) = vigil(&["evidence", "expire", "--evidence", ev]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 file(s)"), "{text}");
    // A dry run with a retention of 0 days lists every data file and changes nothing.
    let (code, text) = vigil(&["evidence", "expire", "--evidence", ev, "--retention-days", "0", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning: a retention of 0 days"), "{text}");
    let report: serde_json::Value = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .next()
        .expect("a report")
        .expect("report json (stdout comes first)");
    assert_eq!(report["files"].as_array().map(Vec::len), Some(data_files), "{report:#}");
    assert_eq!((parquet_files(&evidence).len(), files_below(&evidence.join("manifests")).len()), (data_files, entries));
    // For real: every data file goes, one disposal entry per chain records it, and verify still passes.
    let chains = report["chains"].as_u64().expect("chains") as usize;
    let (code, text) = vigil(&["evidence", "expire", "--evidence", ev, "--retention-days", "0"]);
    assert_eq!(code, 2, "below the 365-day floor without the override: {text}");
    assert_eq!(parquet_files(&evidence).len(), data_files, "nothing deleted");
    let (code, text) =
        vigil(&["evidence", "expire", "--evidence", ev, "--retention-days", "0", "--allow-short-retention"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{data_files} deleted")), "{text}");
    assert!(parquet_files(&evidence).is_empty(), "every data file is deleted");
    assert_eq!(files_below(&evidence.join("manifests")).len(), entries + chains, "one disposal entry per chain");
    // Every disposal is recorded: verify names each as below the floor, and nothing else.
    let (code, report) = verify_json(&evidence);
    assert_eq!(code, 1, "{report:#}");
    let kinds: std::collections::BTreeSet<&str> =
        report["findings"].as_array().expect("findings").iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["disposal_below_floor"].into(), "{report:#}");
    // A disposal entry removed from the chain is caught: the files it excused are missing again.
    let chain = longest_chain(&evidence);
    let disposal = chain.last().expect("disposal entry");
    assert!(read_entry(disposal).disposal.is_some());
    std::fs::remove_file(disposal).expect("remove");
    let (code, report) = verify_json(&evidence);
    assert_eq!(code, 1, "{report:#}");
    assert!(report["findings"].as_array().is_some_and(|f| f.iter().any(|f| f["kind"] == "file_missing")));
}

#[test]
fn archive_commands_refuse_a_location_without_an_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-archive");
    let m = missing.to_str().expect("utf-8");
    for args in [
        vec!["verify", "--evidence", m],
        vec!["query", "--evidence", m, "SELECT 1"],
        vec!["evidence", "expire", "--evidence", m, "--dry-run"],
    ] {
        let (code, text) = vigil(&args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains("no such directory"), "{args:?}: {text}");
        assert!(!missing.exists(), "{args:?} must not create the folder");
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let (code, text) = vigil(&["verify", "--evidence", empty.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("holds no evidence archive"), "{text}");
}

/// `vigil query --format csv "SELECT count(*) AS n FROM {table}"` on `evidence`: the count and stderr.
fn count_rows(evidence: &Path, table: &str) -> (usize, String) {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["query", "--evidence", evidence.to_str().expect("utf-8"), "--format", "csv", &sql])
        .output()
        .expect("vigil runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(0), "{sql}: {stdout}{stderr}");
    let n = stdout.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or_else(|| panic!("{sql}: {stdout}{stderr}"));
    (n, stderr)
}

#[test]
fn queries_and_samples_leave_out_data_files_no_manifest_entry_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = archive(dir.path());
    let ev = evidence.to_str().expect("utf-8");
    let rows = vigil_tests::read_kind(&evidence, "events").expect("events").num_rows();
    let alerts = vigil_tests::read_kind(&evidence, "alerts").expect("alerts").num_rows();
    let (n, stderr) = count_rows(&evidence, "events");
    assert_eq!(n, rows);
    assert!(!stderr.contains("left out"), "nothing is left out of a clean archive: {stderr}");
    let sample = |out: &Path| {
        let args = ["sample", "--evidence", ev, "--criterion", "CC6.1", "--from", "2015-01-01", "--to", "2030-01-01"];
        let out = out.to_str().expect("utf-8");
        let (code, text) = vigil(&[&args[..], &["--size", "4", "--seed", "s", "--out", out]].concat());
        assert_eq!(code, 0, "{text}");
        std::fs::read(Path::new(out).join("population.json")).expect("population")
    };
    let clean_sample = sample(&dir.path().join("clean-sample"));
    // A copy of an events file and of an alerts file under new names beside them, and a whole partition
    // folder of its own: Parquet files that read like evidence but that no entry lists.
    let events_file = parquet_files(&evidence.join("events")).into_iter().next().expect("an events file");
    let planted = events_file.with_file_name("planted-copy.parquet");
    std::fs::copy(&events_file, &planted).expect("plant");
    let (n, stderr) = count_rows(&evidence, "events");
    assert_eq!(n, rows, "the planted copy is not counted");
    assert!(stderr.contains("note: 1 data file(s) that no manifest entry lists"), "{stderr}");
    assert!(stderr.contains(&rel(&evidence, &planted)), "{stderr}");
    let folder = evidence.join("events/source=planted/date=2024-01-01/hour=00");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(&events_file, folder.join("planted.parquet")).expect("plant");
    let alerts_file = parquet_files(&evidence.join("alerts")).into_iter().next().expect("an alerts file");
    std::fs::copy(&alerts_file, alerts_file.with_file_name("planted-copy.parquet")).expect("plant");
    let (n, stderr) = count_rows(&evidence, "events");
    assert_eq!(n, rows);
    assert!(stderr.contains("note: 3 data file(s)"), "{stderr}");
    assert_eq!(count_rows(&evidence, "alerts").0, alerts);
    let (code, text) = vigil(&["query", "--evidence", ev, "SELECT count(*) FROM events WHERE source = 'planted'"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("| 0 "), "the planted partition is not there: {text}");
    // `vigil sample` reads through the same tables: the same population, the same draw.
    assert_eq!(sample(&dir.path().join("planted-sample")), clean_sample);
    // The planted files are still there (queries write nothing), and verify names them.
    assert!(planted.exists());
    let (code, report) = verify_json(&evidence);
    assert_eq!(code, 1, "{report:#}");
    let extra = report["findings"].as_array().expect("findings").iter().filter(|f| f["kind"] == "extra_file").count();
    assert_eq!(extra, 3, "{report:#}");
}

#[test]
fn queries_answer_after_expire_and_leave_out_a_disposed_file_put_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = archive(dir.path());
    let ev = evidence.to_str().expect("utf-8");
    let events_file = parquet_files(&evidence.join("events")).into_iter().next().expect("an events file");
    let kept = std::fs::read(&events_file).expect("read");
    let (code, text) =
        vigil(&["evidence", "expire", "--evidence", ev, "--retention-days", "0", "--allow-short-retention"]);
    assert_eq!(code, 0, "{text}");
    assert!(parquet_files(&evidence).is_empty(), "every data file is disposed of: {text}");
    for table in ["events", "alerts", "dead_letters"] {
        let (n, stderr) = count_rows(&evidence, table);
        assert_eq!(n, 0, "{table}: {stderr}");
        assert!(!stderr.contains("left out"), "{stderr}");
    }
    // A disposed file put back: its entry still lists it, but a later disposal of its chain disposed of it.
    std::fs::create_dir_all(events_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&events_file, &kept).expect("put back");
    let (n, stderr) = count_rows(&evidence, "events");
    assert_eq!(n, 0);
    assert!(stderr.contains("note: 1 data file(s)") && stderr.contains(&rel(&evidence, &events_file)), "{stderr}");
    // New evidence after the disposals is queried as usual.
    let web = repo().join("fixtures/web_access/yauaa-hackers-head500.ndjson");
    vigil_tests::run(config(&[("web_access_json", web)], dir.path(), 100, 2));
    let alone = dir.path().join("put-back");
    std::fs::create_dir_all(alone.join("events")).expect("mkdir");
    std::fs::write(alone.join("events/f.parquet"), &kept).expect("copy");
    let put_back = vigil_tests::read_kind(&alone, "events").expect("rows").num_rows();
    let fresh = vigil_tests::read_kind(&evidence, "events").expect("events").num_rows() - put_back;
    assert!(fresh > 100, "the web fixture archived events");
    let (n, stderr) = count_rows(&evidence, "events");
    assert_eq!(n, fresh, "{stderr}");
    assert!(stderr.contains("note: 1 data file(s)"), "{stderr}");
}
