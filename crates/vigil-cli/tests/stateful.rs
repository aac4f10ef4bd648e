//! Stateful rules through the real pipeline: a run killed mid-way (at each failpoint) and started again
//! archives exactly the alerts of an uninterrupted run, each once. The rerun restores the rule state
//! stored beside the evidence and replays what the archive holds after it.

use std::path::Path;
use std::process::Command;

use vigil_tests::repo;

fn vigil(evidence: &Path, failpoint: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo()).args([
        "run",
        "--input",
        "linux_auth:fixtures/linux_auth/loghub-openssh-2k.log",
        "--input",
        "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        evidence.to_str().expect("utf-8"),
        "--batch-rows",
        "50",
    ]);
    if let Some(f) = failpoint {
        cmd.env("VIGIL_FAILPOINT", f);
    }
    let out = cmd.output().expect("vigil runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `rule_id,alert_id` of every archived alert, sorted.
fn alerts(evidence: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args([
            "query",
            "--evidence",
            evidence.to_str().expect("utf-8"),
            "--format",
            "csv",
            "SELECT rule_id, alert_id FROM alerts ORDER BY rule_id, alert_id",
        ])
        .output()
        .expect("vigil query runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().skip(1).map(str::to_string).collect()
}

#[test]
fn a_crash_and_restart_archive_exactly_the_alerts_of_one_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = dir.path().join("clean");
    let (ok, log) = vigil(&clean, None);
    assert!(ok, "{log}");
    let expected = alerts(&clean);
    // attack_tool_user_agent and aws_secrets_retrieved are grouped (suppress): restart-safe like the rest.
    for rule in [
        "ssh_brute_force",
        "ssh_password_spraying",
        "aws_mass_secret_reads",
        "source_silence",
        "attack_tool_user_agent",
        "aws_secrets_retrieved",
    ] {
        assert!(expected.iter().any(|a| a.starts_with(&format!("{rule},"))), "{rule} fires in the clean run");
    }
    for failpoint in ["before_archive:9", "before_manifest:17", "before_commit:25", "before_commit:45"] {
        let evidence = dir.path().join(failpoint.replace(':', "-"));
        let (ok, log) = vigil(&evidence, Some(failpoint));
        assert!(!ok, "{failpoint}: the first run should have died: {log}");
        let (ok, log) = vigil(&evidence, None);
        assert!(ok, "{failpoint}: the restart failed: {log}");
        assert_eq!(alerts(&evidence), expected, "{failpoint}: alerts differ from the uninterrupted run");
    }
}
