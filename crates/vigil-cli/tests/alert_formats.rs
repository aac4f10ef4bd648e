//! Issue 20 item 5: `--alerts-format ocsf` writes OCSF Detection Findings (class 2004) that validate against
//! the OCSF model of the `py-ocsf-models` package (installed by `deploy/local/ocsf.sh`), checked by
//! `scripts/ocsf-validate.py` with no vigil code. Skipped with a message when the package is not installed,
//! unless `CI` or `VIGIL_REQUIRE_OCSF` is set (`scripts/test.sh` installs it).

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    vigil_tests::repo()
}

/// The venv's python with py-ocsf-models, or `None` (after saying so).
fn ocsf_python() -> Option<String> {
    if let Ok(p) = std::env::var("VIGIL_OCSF_PYTHON") {
        return Some(p);
    }
    let out = Command::new(repo().join("deploy/local/ocsf.sh")).arg("python").output().ok()?;
    if out.status.success() {
        return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let required = std::env::var_os("CI").is_some() || std::env::var_os("VIGIL_REQUIRE_OCSF").is_some();
    assert!(!required, "py-ocsf-models is required here: run deploy/local/ocsf.sh install");
    eprintln!("skipped: py-ocsf-models not installed (deploy/local/ocsf.sh install)");
    None
}

const SIGMA_RULE: &str = "title: IAM user created\nid: 5f3c1e9a-0000-4000-8000-00000000c0de\nauthor: vigil tests\n\
logsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName: CreateUser\n  condition: sel\nlevel: medium\n";

#[test]
fn ocsf_alerts_are_valid_detection_findings() {
    let Some(python) = ocsf_python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sigma = dir.path().join("sigma");
    std::fs::create_dir(&sigma).expect("rules dir");
    std::fs::write(sigma.join("iam_user_created.yml"), SIGMA_RULE).expect("sigma rule");
    let findings = dir.path().join("findings.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--input", "cloudtrail:fixtures/cloudtrail", "--input"])
        .arg("apache_combined:fixtures/apache_combined")
        .args(["--rules", "pipelines/rules/soc2", "--rules"])
        .arg(&sigma)
        .arg("--evidence")
        .arg(dir.path().join("ev"))
        .arg("--alerts")
        .arg(&findings)
        .args(["--alerts-format", "ocsf"])
        .output()
        .expect("vigil runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&findings).expect("findings");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert!(lines.len() > 10, "the fixtures raise alerts: {}", lines.len());

    let check =
        Command::new(&python).arg(repo().join("scripts/ocsf-validate.py")).arg(&findings).output().expect("python");
    let report: serde_json::Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|_| panic!("validator output: {}", String::from_utf8_lossy(&check.stderr)));
    assert!(check.status.success(), "findings do not validate: {report}");
    assert_eq!(report["findings"], lines.len());

    // Every finding is a Detection Finding of its own alert id, and the Sigma rule's author rides along.
    let ids: std::collections::BTreeSet<&str> =
        lines.iter().map(|f| f["finding_info"]["uid"].as_str().expect("uid")).collect();
    assert_eq!(ids.len(), lines.len(), "one finding per alert id");
    let sigma: Vec<&serde_json::Value> =
        lines.iter().filter(|f| f["finding_info"]["analytic"]["uid"] == "iam_user_created").collect();
    assert!(!sigma.is_empty(), "the Sigma rule fired");
    for f in sigma {
        assert_eq!(f["finding_info"]["related_analytics"][0]["uid"], "5f3c1e9a-0000-4000-8000-00000000c0de");
        assert_eq!(f["unmapped"]["source_rule"]["author"], "vigil tests");
        assert_eq!(f["severity_id"], 3);
    }

    // The validator is no rubber stamp: a finding with an attribute OCSF does not have, or a wrong enum, fails.
    let bad = dir.path().join("bad.ndjson");
    let mut wrong = lines[0].clone();
    wrong["finding_info"]["rule_author"] = "x".into();
    let mut enum_wrong = lines[0].clone();
    enum_wrong["status_id"] = 7.into();
    std::fs::write(&bad, format!("{wrong}\n{enum_wrong}\n")).expect("bad findings");
    let check = Command::new(&python).arg(repo().join("scripts/ocsf-validate.py")).arg(&bad).output().expect("python");
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).expect("report");
    assert!(!check.status.success());
    assert_eq!(report["invalid"], 2, "{report}");
}
