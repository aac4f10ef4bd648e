//! The whole path on real fixtures: files -> normalize -> rules -> alerts + Parquet evidence, read back
//! with the plain Parquet reader.

use std::collections::BTreeSet;
use std::path::PathBuf;

use arrow::array::AsArray;
use vigil_tests::{
    config, files_below, parquet_files, read_kind, repo, rows_by_event, run, shared_datasets, tree_hashes,
};

fn fixture_inputs() -> Vec<(&'static str, PathBuf)> {
    let f = repo().join("fixtures");
    vec![
        ("cloudtrail", f.join("cloudtrail")),
        ("k8s_audit", f.join("k8s_audit")),
        ("apache_combined", f.join("apache_combined")),
        ("web_access_json", f.join("web_access")),
    ]
}

fn alert_ids(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("alerts.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("alert json")["alert_id"]
                .as_str()
                .expect("alert_id")
                .to_string()
        })
        .collect()
}

/// Every record of every fixture ends up in exactly one of evidence or dead letters, per file, and the
/// archive holds exactly the rows the summary counts.
#[test]
fn every_fixture_record_is_archived_or_dead_lettered() {
    let out = tempfile::tempdir().expect("tempdir");
    let summary = run(config(&fixture_inputs(), out.path(), 1000, 2));
    assert!(summary.inputs.len() >= 10, "every fixture file is read: {summary}");
    for input in &summary.inputs {
        assert!(input.reconciles(), "{input:?}");
        assert!(input.records_read > 0, "{input:?}");
    }
    let total = summary.total();
    let evidence = out.path().join("evidence");
    let events = read_kind(&evidence, "events").expect("events archived");
    let dead = read_kind(&evidence, "dead_letters").expect("dead letters archived");
    assert_eq!(events.num_rows() as u64, total.events);
    assert_eq!(dead.num_rows() as u64, total.dead_letters);
    assert_eq!(total.records_read, total.events + total.dead_letters);
    // Each (source file, offset) appears once across both tables.
    let mut seen = BTreeSet::new();
    for batch in [&events, &dead] {
        let src = batch.column_by_name("ingest_source").expect("col").as_string::<i32>();
        let off = batch.column_by_name("ingest_offset").expect("col").as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            assert!(seen.insert((src.value(row).to_string(), off.value(row))), "offset archived twice");
        }
    }
    // The malformed audit event {"kind": 0} is a dead letter with its reason and original bytes.
    let reasons = dead.column_by_name("reason").expect("reason").as_string::<i32>();
    let raws = dead.column_by_name("raw").expect("raw").as_binary::<i32>();
    assert!((0..dead.num_rows()).any(|r| raws.value(r) == br#"{"kind": 0}"# && reasons.value(r).contains("kind")));
    let dlq = std::fs::read_to_string(out.path().join("dead_letters.ndjson")).expect("dlq file");
    assert_eq!(dlq.lines().count() as u64, total.dead_letters);
    assert!(dlq.contains(r#""reason_code":"invalid_field""#));
    // Alerts: one NDJSON line per archived alert, ids unique, and each names archived events.
    let alerts = read_kind(&evidence, "alerts").expect("alerts archived");
    let ids = alert_ids(out.path());
    assert_eq!(ids.len(), alerts.num_rows());
    assert_eq!(alerts.num_rows() as u64, total.alerts);
    let event_ids: BTreeSet<&str> =
        events.column_by_name("event_id").expect("col").as_string::<i32>().iter().flatten().collect();
    let lists = alerts.column_by_name("event_ids").expect("col").as_list::<i32>();
    for row in 0..alerts.num_rows() {
        let values = lists.value(row);
        for id in values.as_string::<i32>().iter().flatten() {
            assert!(event_ids.contains(id), "alert names an event that is not archived");
        }
    }
    // The shipped rules fire on the attack traces.
    for rule in [
        "aws_console_login_without_mfa",
        "aws_admin_policy_attached",
        "aws_cloudtrail_logging_disabled",
        "k8s_cluster_admin_binding",
        "k8s_exec_into_pod",
        "web_sensitive_path_probe",
    ] {
        assert!(summary.alerts_by_rule.get(rule).copied().unwrap_or(0) > 0, "{rule} did not fire: {summary}");
    }
}

/// Alerts and evidence rows do not depend on the batch size or the thread count.
#[test]
fn results_do_not_depend_on_batch_size_or_threads() {
    let inputs = fixture_inputs();
    let mut reference = None;
    for (batch_rows, threads) in [(1_000_000, 1), (1, 2), (7, 1), (1000, 2)] {
        // batch size 1 over every fixture is slow in debug builds: use the CloudTrail and k8s fixtures there.
        let inputs: Vec<_> = if batch_rows == 1 { inputs[..2].to_vec() } else { inputs.clone() };
        let out = tempfile::tempdir().expect("tempdir");
        let summary = run(config(&inputs, out.path(), batch_rows, threads));
        assert!(summary.reconciles());
        let evidence = out.path().join("evidence");
        let events = rows_by_event(&read_kind(&evidence, "events").expect("events"));
        let dead = rows_by_event(&read_kind(&evidence, "dead_letters").expect("dead letters"));
        let alerts = alert_ids(out.path());
        if batch_rows == 1 {
            let (ref_events, ref_dead, ref_alerts): &(
                std::collections::BTreeMap<_, _>,
                std::collections::BTreeMap<_, _>,
                BTreeSet<String>,
            ) = reference.as_ref().expect("reference first");
            let sources: BTreeSet<&str> = events.values().map(|cells| cells[1].as_str()).collect();
            let subset = |m: &std::collections::BTreeMap<(String, i64), Vec<String>>| -> std::collections::BTreeMap<(String, i64), Vec<String>> {
                m.iter().filter(|(_, cells)| sources.contains(cells[1].as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
            };
            assert_eq!(events, subset(ref_events), "events differ at batch size 1");
            assert_eq!(dead.len(), ref_dead.len());
            assert!(alerts.is_subset(ref_alerts), "alerts differ at batch size 1");
        } else if let Some((ref_events, ref_dead, ref_alerts)) = &reference {
            assert_eq!(&events, ref_events, "events differ at batch size {batch_rows}, {threads} threads");
            assert_eq!(&dead, ref_dead);
            assert_eq!(&alerts, ref_alerts, "alerts differ at batch size {batch_rows}, {threads} threads");
        } else {
            reference = Some((events, dead, alerts));
        }
    }
}

/// Running the same input twice leaves every file of the archive unchanged, even with another batch size.
#[test]
fn running_twice_leaves_the_archive_unchanged() {
    let out = tempfile::tempdir().expect("tempdir");
    let inputs = fixture_inputs();
    let first = run(config(&inputs, out.path(), 500, 2));
    let before = tree_hashes(&out.path().join("evidence"));
    let second = run(config(&inputs, out.path(), 77, 1));
    let after = tree_hashes(&out.path().join("evidence"));
    assert_eq!(before, after);
    assert_eq!(second.total().records_read, 0);
    assert_eq!(second.total().already_archived, first.total().records_read);
}

/// An appended file continues its chain: only the new lines are read, and the manifest ranges stay
/// contiguous.
#[test]
fn an_appended_file_resumes_after_its_archived_lines() {
    let out = tempfile::tempdir().expect("tempdir");
    let log = out.path().join("access.log");
    let lines: Vec<String> =
        std::fs::read_to_string(repo().join("fixtures/apache_combined/elastic-apache-head1000.log"))
            .expect("fixture")
            .lines()
            .map(str::to_string)
            .collect();
    std::fs::write(&log, lines[..600].join("\n") + "\n\n").expect("write");
    let first = run(config(&[("apache_combined", log.clone())], out.path(), 256, 2));
    assert_eq!(first.total().records_read, 600);
    std::fs::write(&log, lines[..600].join("\n") + "\n\n" + &lines[600..].join("\n") + "\n").expect("append");
    let second = run(config(&[("apache_combined", log)], out.path(), 256, 2));
    assert_eq!(second.total().records_read, 400);
    assert_eq!(second.total().already_archived, 600);
    let events = read_kind(&out.path().join("evidence"), "events").expect("events");
    assert_eq!(events.num_rows(), 1000);
    // Manifest entries cover 1..=1001 (one blank line) without a hole.
    let manifests = parquet_files(&out.path().join("evidence/manifests"));
    assert!(manifests.is_empty());
    // The file's chain only: the archive's own chains (`@rules`, the rule texts) live beside it.
    let mut entries: Vec<serde_json::Value> = files_below(&out.path().join("evidence/manifests"))
        .iter()
        .filter(|p| !p.to_string_lossy().contains("/manifests/@"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
        .collect();
    entries.sort_by_key(|e| e["seq"].as_u64());
    let mut next = 1;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64));
        assert_eq!(e["first_offset"].as_i64(), Some(next), "{e}");
        next = e["last_offset"].as_i64().expect("last") + 1;
        if i > 0 {
            assert_eq!(e["prev_hash"], entries[i - 1]["entry_hash"]);
        }
    }
    assert_eq!(next, 1002);
}

/// Every CloudTrail, Kubernetes audit and web access file of ../shared/datasets runs through without a
/// crash and reconciles (skipped when the datasets are not beside the repository).
#[test]
fn every_shared_dataset_file_runs_and_reconciles() {
    let Some(datasets) = shared_datasets() else {
        eprintln!("../shared/datasets not present: skipped");
        return;
    };
    let inputs = vec![
        ("cloudtrail", datasets.join("cloudtrail-invictus-stratus")),
        ("cloudtrail", datasets.join("cloudtrail-stratus-detonations/cloudtrail.ndjson")),
        ("cloudtrail", datasets.join("cloudtrail-stratus-detonations/original")),
        ("cloudtrail", datasets.join("otrf-aws-azure/cloudtrail-ec2-proxy-s3-exfil")),
        ("cloudtrail", datasets.join("panther-rule-tests/aws_cloudtrail/events.ndjson")),
        ("k8s_audit", datasets.join("k8s-audit-falco/k8s_audit.ndjson")),
        ("k8s_audit", datasets.join("k8s-audit-falco/original")),
        ("k8s_audit", datasets.join("panther-rule-tests/k8s_eks_audit/events.ndjson")),
        ("apache_combined", datasets.join("web-access-yauaa-hackers/hackers-access.log")),
        ("apache_combined", datasets.join("web-access-elastic-examples/apache_logs")),
        ("web_access_json", datasets.join("web-access-yauaa-hackers/hackers-access.ndjson")),
        ("web_access_json", datasets.join("web-access-elastic-examples/apache_logs.ndjson")),
    ];
    let out = tempfile::tempdir().expect("tempdir");
    let summary = run(config(&inputs, out.path(), 4096, 2));
    for input in &summary.inputs {
        assert!(input.reconciles(), "{input:?}");
    }
    let total = summary.total();
    let events = read_kind(&out.path().join("evidence"), "events").expect("events");
    assert_eq!(events.num_rows() as u64, total.events);
    // Known volumes: 2,900 + 310 + 310 + 103 CloudTrail, 51 + 52 audit events, 3,456 + 10,000 web lines twice.
    assert!(total.records_read >= 2_900 + 310 * 2 + 103 + 51 + 52 + (3_456 + 10_000) * 2, "{summary}");
    // Real logs normalize completely. Only these may be refused: the deliberately malformed audit event,
    // the SOURCE.md note inside a dataset folder, and Panther rule-test fragments that carry no event time
    // or verb (synthetic snippets, not whole records).
    for input in &summary.inputs {
        let may_refuse = input.input.contains("panther-rule-tests")
            || input.input.ends_with("SOURCE.md")
            || input.input.ends_with("fal_01_003.json");
        if !may_refuse {
            assert_eq!(input.dead_letters, 0, "{input:?}");
        }
    }
    assert!(summary.inputs.iter().any(|i| i.input.ends_with("fal_01_003.json") && i.dead_letters == 1));
}
