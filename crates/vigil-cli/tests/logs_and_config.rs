//! Running vigil the way a container does (issue 19, item 4): JSON logs on stderr, `${VAR}` in the config,
//! every flag from a `VIGIL_*` variable, `validate --json`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use vigil_tests::repo;

/// `vigil` in the repository, with no `VIGIL_*` variable of the caller's environment.
fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIGIL_") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("NO_COLOR");
    cmd
}

fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = cmd.stdin(Stdio::null()).output().expect("vigil runs");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

/// Every line of `stderr` is one JSON object with exactly the five stable keys.
fn json_lines(stderr: &str) -> Vec<Value> {
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes: {stderr}");
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, ["fields", "level", "message", "target", "timestamp"], "{line}");
            assert!(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&value["level"].as_str().expect("level")));
            let ts = value["timestamp"].as_str().expect("timestamp");
            assert!(ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "RFC 3339 UTC: {ts}");
            assert!(value["target"].is_string() && value["message"].is_string() && value["fields"].is_object());
            value
        })
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_stable_fields() {
    let out = tempfile::tempdir().expect("tempdir");
    // debug: the pipeline's own events, with fields; alerts on stdout: the summary goes to stderr.
    let (code, stdout, stderr) = output(
        vigil()
            .args(["--log-format", "json", "run", "--input", "apache_combined:fixtures/apache_combined"])
            .args(["--rules", "pipelines/rules/soc2", "--alerts", "-", "--batch-ms", "50", "--evidence"])
            .arg(out.path().join("evidence"))
            .env("VIGIL_LOG", "debug"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.lines().count() > 100, "alerts on stdout");
    let lines = json_lines(&stderr);
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG" && l["target"].as_str().is_some_and(|t| t.starts_with("vigil_")))
    );
    assert!(lines.iter().any(|l| !l["fields"].as_object().expect("fields").is_empty()), "events keep their fields");
    let summary = lines.iter().find(|l| l["fields"]["summary"].is_object()).expect("the summary as a JSON line");
    assert_eq!(summary["target"], "vigil");
    assert!(summary["message"].as_str().expect("text").contains("records read 2500 = archived 2500"));

    // The final error too, with its class, and no secret.
    let (code, _, stderr) = output(
        vigil()
            .args([
                "run",
                "--input",
                "cloudtrail:kafka://vigil:hunter2@127.0.0.1:9/t?group=g",
                "--rules",
                "pipelines/rules/soc2",
                "--no-progress",
            ])
            .arg("--evidence")
            .arg(out.path().join("ev2"))
            .env("VIGIL_LOG_FORMAT", "json"),
    );
    assert_eq!(code, Some(2));
    let lines = json_lines(&stderr);
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["class"], "user");
    assert_eq!(last["fields"]["exit_code"], 2);
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // Text logs are not coloured when stderr is not a terminal.
    let (_, _, stderr) = output(
        vigil()
            .args(["validate", "--config", "pipelines/demo.toml"])
            .env("VIGIL_LOG", "debug")
            .env("CLICOLOR_FORCE", "1"),
    );
    assert!(stderr.contains("warning: pipelines/demo.toml: no signing key") && !stderr.contains('\u{1b}'), "{stderr}");
}

const CONFIG: &str = r#"# ${VT_IN_A_COMMENT} is not looked at
[pipeline]
batch_ms = ${VT_BATCH_MS:-50}
[[inputs]]
format = "${VT_FORMAT}"
path = "${VT_FIXTURES}/apache_combined/elastic-apache-head1000.log"
[rules]
dirs = ["${VT_RULES:-rules}"]
[evidence]
url = "${VT_EVIDENCE}"
[alerts]
path = "alerts-$${literal}.ndjson"
"#;

#[test]
fn a_config_with_variables_validates_and_runs_and_an_unset_one_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("p.toml");
    std::fs::write(&config, CONFIG).expect("write");
    let evidence = dir.path().join("evidence");
    let set = |cmd: &mut Command| {
        cmd.env("VT_FORMAT", "apache_combined")
            .env("VT_FIXTURES", repo().join("fixtures"))
            .env("VT_RULES", repo().join("pipelines/rules/soc2"))
            .env("VT_EVIDENCE", &evidence);
    };
    let mut validate = vigil();
    validate.arg("validate").arg("--config").arg(&config);
    set(&mut validate);
    let (code, stdout, stderr) = output(&mut validate);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok (1 inputs, 48 rules"), "{stdout}");

    let mut run = vigil();
    run.arg("run").arg("--config").arg(&config);
    set(&mut run);
    let (code, stdout, stderr) = output(&mut run);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("records read 1000 = archived 1000"), "{stdout}");
    assert!(evidence.join("manifests").is_dir(), "evidence where VT_EVIDENCE says");
    assert!(dir.path().join("alerts-${literal}.ndjson").is_file(), "$${{ is a literal ${{");

    // VT_EVIDENCE unset: an error naming it, the file and the line; no value of another variable.
    let mut unset = vigil();
    unset.arg("validate").arg("--config").arg(&config);
    set(&mut unset);
    unset.env_remove("VT_EVIDENCE").env("VT_FORMAT", "apache_combined-s3cr3t");
    let (code, stdout, stderr) = output(&mut unset);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    let expect = format!("error: {}:10: the environment variable `VT_EVIDENCE` is not set", config.display());
    assert!(stderr.starts_with(&expect), "{stderr}");
    assert!(!stderr.contains("s3cr3t") && !stdout.contains("s3cr3t"), "{stderr}");
}

fn validate_json(cmd: &mut Command) -> (Option<i32>, Value) {
    let (code, stdout, stderr) = output(cmd.arg("--json"));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}{stderr}"));
    (code, report)
}

fn key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let (code, _, stderr) = output(vigil().args(["keys", "generate", "--out"]).arg(&path));
    assert_eq!(code, Some(0), "{stderr}");
    let id = stderr.split_whitespace().nth(4).expect("wrote the private key ID").to_string();
    (path, id)
}

#[test]
fn flags_come_from_vigil_variables_and_validate_json_reports() {
    let dir = tempfile::tempdir().expect("tempdir");

    // VIGIL_CONFIG and VIGIL_EVIDENCE (which overrides the config's evidence url, like --evidence).
    let evidence = dir.path().join("from-env");
    let (code, report) = validate_json(
        vigil().arg("validate").env("VIGIL_CONFIG", "pipelines/demo.toml").env("VIGIL_EVIDENCE", &evidence),
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["evidence"], evidence.to_string_lossy().as_ref());
    assert_eq!(report["rules"], 48);
    assert_eq!(report["inputs"].as_array().expect("inputs").len(), 4);
    assert_eq!(report["inputs"][0]["format"], "cloudtrail");
    assert_eq!(report["signing_key"], Value::Null);
    assert!(report["warnings"][0].as_str().expect("a warning").contains("no signing key"), "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]));

    // A run from variables only: several inputs in VIGIL_INPUT, one per line; booleans as words.
    let (code, stdout, stderr) = output(
        vigil()
            .arg("run")
            .env("VIGIL_INPUT", "apache_combined:fixtures/apache_combined/elastic-apache-head1000.log\nweb_access_json:fixtures/web_access\n")
            .env("VIGIL_RULES", "pipelines/rules/soc2")
            .env("VIGIL_EVIDENCE", &evidence)
            .env("VIGIL_ALERTS", dir.path().join("alerts.ndjson"))
            .env("VIGIL_BATCH_MS", "50")
            .env("VIGIL_THREADS", "1")
            .env("VIGIL_NO_PROGRESS", "yes")
            .env("VIGIL_SUMMARY_JSON", dir.path().join("summary.json")),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("records read 1500 = archived 1500"), "{stdout}");
    assert!(dir.path().join("alerts.ndjson").is_file() && dir.path().join("summary.json").is_file());
    assert!(evidence.join("manifests").is_dir());

    // VIGIL_SIGNING_KEY_FILE keeps its place after the config's signing_key_file; --signing-key wins.
    let (a, a_id) = key(dir.path(), "a.pem");
    let (b, b_id) = key(dir.path(), "b.pem");
    let config = dir.path().join("signed.toml");
    let demo = std::fs::read_to_string(repo().join("pipelines/demo.toml")).expect("demo");
    let demo = demo.replace("\"../", &format!("\"{}/", repo().display()));
    let demo = demo.replace("\"rules/", &format!("\"{}/pipelines/rules/", repo().display()));
    std::fs::write(&config, demo.replace("[evidence]\n", &format!("[evidence]\nsigning_key_file = {:?}\n", a)))
        .expect("write");
    let signed_by = |cmd: &mut Command| validate_json(cmd).1["signing_key"].clone();
    let with_b = || {
        let mut cmd = vigil();
        cmd.arg("validate").env("VIGIL_SIGNING_KEY_FILE", &b);
        cmd
    };
    assert_eq!(signed_by(with_b().arg("--config").arg(&config)), a_id.as_str());
    assert_eq!(signed_by(with_b().arg("--config").arg(&config).arg("--signing-key").arg(&b)), b_id.as_str());
    assert_eq!(signed_by(with_b().arg("--config").arg("pipelines/demo.toml")), b_id.as_str());

    // Problems: origin and reason apart, exit 1 as without --json.
    let (code, report) = validate_json(vigil().args([
        "validate",
        "--input",
        "syslog:-",
        "--evidence",
        "ev",
        "--rules",
        "pipelines/rules/soc2",
    ]));
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["origin"], "flags");
    assert!(report["problems"][0]["reason"].as_str().expect("reason").contains("unknown input format `syslog`"));

    // `run --help` names the variable of every flag.
    let (_, help, _) = output(vigil().args(["run", "--help"]));
    // An option's block starts at a line indented 2 or 6 spaces with its flag; its text is indented 10.
    let mut options: Vec<String> = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        match options.last_mut() {
            _ if (2..=6).contains(&indent) && line.trim_start().starts_with('-') => options.push(line.to_string()),
            Some(option) => option.push_str(line),
            None => {}
        }
    }
    let options: Vec<&String> = options.iter().filter(|o| !o.contains("--help")).collect();
    assert!(options.len() >= 15, "{help}");
    for option in options {
        assert!(option.contains("[env: VIGIL_"), "no variable for {option}");
    }
}
