//! Runaway rules mixed into the SOC 2 pack, and a record dated 2099 in front of an attack trace, on the
//! real CloudTrail fixtures: the run goes on, the evidence is complete, and every other alert is the
//! one a run without them raises.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use vigil_tests::repo;

/// Runs `vigil run` with the TOML `config` written into `dir`; returns its output.
fn run(dir: &Path, config: &str) -> Output {
    let path = dir.join("p.toml");
    std::fs::write(&path, config).expect("write config");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--config"])
        .arg(&path)
        .output()
        .expect("vigil runs")
}

fn alerts(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("alert json")).collect()
}

/// (rule id, alert id) of every alert but vigil's own.
fn rule_alerts(alerts: &[serde_json::Value], skip: &[&str]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap_or_default().to_string(),
                a["alert_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(rule, _)| !skip.contains(&rule.as_str()))
        .collect()
}

fn config(inputs: &[(&str, &Path)], rules: &[&Path], out: &Path, rules_section: &str) -> String {
    let mut text = String::from("[pipeline]\nbatch_rows = 200\nthreads = 2\n");
    for (format, path) in inputs {
        text += &format!("[[inputs]]\nformat = \"{format}\"\npath = {:?}\n", path.display().to_string());
    }
    let dirs: Vec<String> = rules.iter().map(|d| format!("{:?}", d.display().to_string())).collect();
    text += &format!("[rules]\ndirs = [{}]\n{rules_section}\n", dirs.join(", "));
    text += &format!("[evidence]\nurl = {:?}\n", out.join("evidence").display().to_string());
    text += &format!("[alerts]\npath = {:?}\n", out.join("alerts.ndjson").display().to_string());
    text += &format!("[dead_letters]\npath = {:?}\n", out.join("dlq.ndjson").display().to_string());
    text
}

const RUNAWAYS: [(&str, &str); 3] = [
    (
        "zz_cross_join.sql",
        "-- id: zz_cross_join\n-- title: Runaway join\n-- severity: low\n-- criteria: CC7.2\nSELECT a.time, a.event_id, b.raw AS rb, c.raw AS rc, d.raw AS rd FROM events a, events b, events c, events d\n",
    ),
    (
        "zz_slow.sql",
        "-- id: zz_slow\n-- title: Runaway count\n-- severity: low\n-- criteria: CC7.2\nSELECT max(a.time) AS time, array_agg(DISTINCT a.event_id) AS event_ids FROM events a, events b, events c, events d, events e HAVING count(*) > 0\n",
    ),
    (
        "zz_cast.sql",
        "-- id: zz_cast\n-- title: Cast that fails on one value\n-- severity: low\n-- criteria: CC7.2\nSELECT time, event_id FROM events WHERE CAST(json_get_str(attrs, 'eventVersion') AS INT) > 1\n",
    ),
];

#[test]
fn runaway_rules_are_quarantined_and_the_soc2_pack_alerts_as_without_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let soc2 = repo().join("pipelines/rules/soc2");
    let runaway_dir = dir.path().join("runaway");
    std::fs::create_dir(&runaway_dir).expect("mkdir");
    for (name, text) in RUNAWAYS {
        std::fs::write(runaway_dir.join(name), text).expect("write rule");
    }
    let traces = repo().join("fixtures/cloudtrail");
    let budget = "memory_limit_mb = 64\ntime_limit_secs = 3";
    let (clean, mixed) = (dir.path().join("clean"), dir.path().join("mixed"));
    let reference = run(dir.path(), &config(&[("cloudtrail", &traces)], &[&soc2], &clean, budget));
    assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
    let output = run(dir.path(), &config(&[("cloudtrail", &traces)], &[&soc2, &runaway_dir], &mixed, budget));
    // The summary goes to stdout (alerts go to a file), warnings to stderr.
    let stderr = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the run goes on: {stderr}");
    assert!(stderr.contains("(ok)"), "every record archived or dead-lettered: {stderr}");
    for (name, _) in RUNAWAYS {
        let id = name.trim_end_matches(".sql");
        assert!(stderr.contains(&format!("RULE QUARANTINED: {id} ")), "the summary names {id}: {stderr}");
    }

    let got = alerts(&mixed.join("alerts.ndjson"));
    let failed: Vec<&serde_json::Value> = got.iter().filter(|a| a["rule_id"] == "rule_failed").collect();
    let failed_rules: BTreeSet<&str> = failed.iter().filter_map(|a| a["fields"]["rule"].as_str()).collect();
    assert_eq!(failed_rules, BTreeSet::from(["zz_cast", "zz_cross_join", "zz_slow"]), "{failed:?}");
    assert_eq!(failed.len(), 3, "one rule_failed alert per rule, not per batch: {failed:?}");
    for alert in &failed {
        assert_eq!(alert["severity"], "high");
        assert!(alert["fields"]["batch"].as_str().is_some_and(|b| b.contains("offsets")), "{alert}");
    }
    let reasons: Vec<String> =
        failed.iter().map(|a| format!("{}: {}", a["fields"]["rule"], a["fields"]["reason"])).collect();
    let reason_of = |id: &str| reasons.iter().find(|r| r.contains(id)).cloned().unwrap_or_default();
    assert!(reason_of("zz_cross_join").contains("memory limit"), "{reasons:?}");
    assert!(reason_of("zz_slow").contains("time limit"), "{reasons:?}");
    assert!(reason_of("zz_cast").contains("1.0"), "the cast error names the value: {reasons:?}");

    let skip = ["rule_failed", "zz_cross_join", "zz_slow", "zz_cast"];
    let expected = rule_alerts(&alerts(&clean.join("alerts.ndjson")), &skip);
    assert!(expected.len() > 100, "the SOC 2 pack alerts on the traces");
    assert_eq!(rule_alerts(&got, &skip), expected, "the other rules' alerts are unchanged");

    // the evidence is complete and verifies
    let verify = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["verify", "--evidence"])
        .arg(mixed.join("evidence"))
        .output()
        .expect("verify runs");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn a_record_dated_2099_before_an_attack_trace_does_not_blind_the_stateful_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let soc2 = repo().join("pipelines/rules/soc2");
    let trace =
        std::fs::read_to_string(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson")).expect("fixture");
    let first = trace.lines().next().expect("a record");
    // the same record, dated 2099 (so another record, with another event id)
    let at = first.find("\"eventTime\":\"").expect("eventTime") + "\"eventTime\":\"".len();
    let future = format!("{}2099{}", &first[..at], &first[at + 4..]);
    let plain = dir.path().join("plain.ndjson");
    let poisoned = dir.path().join("poisoned.ndjson");
    std::fs::write(&plain, &trace).expect("write");
    std::fs::write(&poisoned, format!("{future}\n{trace}")).expect("write");
    let (clean, mixed) = (dir.path().join("clean"), dir.path().join("mixed"));
    let reference = run(dir.path(), &config(&[("cloudtrail", &plain)], &[&soc2], &clean, ""));
    assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
    let output = run(dir.path(), &config(&[("cloudtrail", &poisoned)], &[&soc2], &mixed, ""));
    // The summary goes to stdout (alerts go to a file), warnings to stderr.
    let stderr = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("records read 311 = archived 311"), "the 2099 record is archived as it is: {stderr}");
    assert!(stderr.contains("1 event(s) dated in the future"), "{stderr}");

    let got = alerts(&mixed.join("alerts.ndjson"));
    let flagged: Vec<&serde_json::Value> = got.iter().filter(|a| a["rule_id"] == "event_time_in_future").collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    let future_id = flagged[0]["event_ids"][0].as_str().expect("the 2099 event is named").to_string();
    let expected = rule_alerts(&alerts(&clean.join("alerts.ndjson")), &[]);
    assert!(
        expected.iter().any(|(rule, _)| rule == "aws_first_user_agent_for_user"),
        "a stateful rule alerts on the trace"
    );
    let got_rules = rule_alerts(&got, &["event_time_in_future"]);
    let missing: Vec<_> = expected.difference(&got_rules).collect();
    assert!(missing.is_empty(), "alerts lost behind the 2099 record: {missing:?}");
    // the only new alerts are stateless ones on the 2099 record itself
    for (rule, id) in got_rules.difference(&expected) {
        let alert = got.iter().find(|a| a["alert_id"] == id.as_str()).expect("alert");
        let ids: Vec<&str> = alert["event_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        assert_eq!(ids, [future_id.as_str()], "{rule}: {alert}");
    }
}
