//! The `vigil` binary as a user runs it: flags, stdin, exit codes and messages.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo());
    cmd
}

#[test]
fn run_reads_stdin_and_writes_alerts_to_stdout() {
    let out = tempfile::tempdir().expect("tempdir");
    let lines = "203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] \"GET /.env HTTP/1.1\" 404 153 \"-\" \"sqlmap/1.7\"\n\
                 not a log line\n\
                 \n\
                 198.51.100.1 - - [10/Oct/2023:13:55:37 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"\n";
    let mut child = vigil()
        .args([
            "run",
            "--input",
            "apache_combined:-",
            "--rules",
            "pipelines/rules/soc2",
            "--alerts",
            "-",
            "--batch-ms",
            "50",
        ])
        .arg("--evidence")
        .arg(out.path().join("ev"))
        .arg("--dlq")
        .arg(out.path().join("dlq.ndjson"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    child.stdin.take().expect("stdin").write_all(lines.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("vigil ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("alert json")).collect();
    let rules: Vec<&str> = alerts.iter().map(|a| a["rule_id"].as_str().expect("rule_id")).collect();
    assert!(rules.contains(&"web_sensitive_path_probe") && rules.contains(&"attack_tool_user_agent"), "{stdout}");
    assert!(stderr.contains("records read 3 = archived 2 + dead-lettered 1 (ok)"), "{stderr}");
    let dlq = std::fs::read_to_string(out.path().join("dlq.ndjson")).expect("dlq");
    assert!(dlq.contains(r#""raw":"not a log line""#) && dlq.contains(r#""ingest_offset":2"#), "{dlq}");
}

#[test]
fn validate_names_file_line_and_reason_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::write(
        rules.join("good.sql"),
        "-- id: good\n-- title: Good\n-- severity: low\n-- criteria: CC7.2\nSELECT time, event_id FROM events\n",
    )
    .expect("write");
    std::fs::write(rules.join("evil.sql"), "-- id: evil\n-- title: Evil\n-- severity: low\n-- criteria: CC7.2\nSELECT time, event_id FROM events;\nDROP TABLE events\n").expect("write");
    std::fs::write(rules.join("typo.sql"), "-- id: typo\n-- title: Typo\n-- severity: low\n-- criteria: CC7.2\nSELECT time, event_id FROM events WHERE actor = 'x'\n").expect("write");
    let config = dir.path().join("p.toml");
    std::fs::write(&config, "[[inputs]]\nformat = \"cloudtrail\"\npath = \"missing.ndjson\"\n[[inputs]]\nformat = \"syslog\"\npath = \"-\"\n[rules]\ndirs = [\"rules\"]\n[evidence]\nurl = \"ev\"\n").expect("write");
    let output = vigil().arg("validate").arg("--config").arg(&config).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("evil.sql:1: a rule holds exactly one SELECT query"), "{stdout}");
    assert!(
        stdout.contains("p.toml:3: input") && stdout.contains("missing.ndjson") && stdout.contains("does not exist"),
        "{stdout}"
    );
    assert!(stdout.contains("p.toml:6: input `-`: unknown input format `syslog`"), "{stdout}");
    std::fs::remove_file(rules.join("evil.sql")).expect("rm");
    let output = vigil().arg("validate").arg("--config").arg(&config).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("typo.sql:5: the query does not plan"), "{stdout}");
}

#[test]
fn validate_accepts_the_demo_pipeline() {
    let output = vigil().args(["validate", "--config", "pipelines/demo.toml"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn a_missing_input_is_an_error_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = vigil()
        .args(["run", "--input", "cloudtrail:/no/such/file", "--rules", "pipelines/rules/soc2", "--evidence"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/no/such/file") && stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn rules_test_passes_the_pack_and_fails_a_wrong_expectation() {
    let output = vigil().args(["rules", "test", "pipelines/rules/soc2"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let dir = tempfile::tempdir().expect("tempdir");
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(pack.join("tests")).expect("mkdir");
    std::fs::copy(repo().join("pipelines/rules/soc2/k8s_exec_into_pod.sql"), pack.join("k8s_exec_into_pod.sql"))
        .expect("copy");
    let good = std::fs::read_to_string(repo().join("pipelines/rules/soc2/tests/k8s_exec_into_pod.test")).expect("read");
    let wrong = good.replacen("records 2:", "records 9:", 1);
    assert_ne!(good, wrong);
    std::fs::write(pack.join("tests/k8s_exec_into_pod.test"), wrong).expect("write");
    let output = vigil().arg("rules").arg("test").arg(&pack).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("missing: records 9:") && stdout.contains("extra:   records 2:"), "{stdout}");
    let output = vigil().arg("rules").arg("test").arg("--update").arg(&pack).output().expect("runs");
    assert_eq!(output.status.code(), Some(0), "--update rewrites the expectations");
    assert_eq!(std::fs::read_to_string(pack.join("tests/k8s_exec_into_pod.test")).expect("read"), good);
}

/// `vigil bench` prints the DuckDB kit's JSON line, and its match counts are right: checked here against
/// counts computed straight from the raw CloudTrail records (the kit's own cross-check needs
/// ../shared/bench, which a clean clone does not have).
#[test]
fn bench_prints_the_kits_json_line_with_the_right_match_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for name in ["stratus-detonations.ndjson", "otrf-logstash-ec2-proxy-s3-exfil.ndjson"] {
        text.push_str(&std::fs::read_to_string(repo().join("fixtures/cloudtrail").join(name)).expect("fixture"));
    }
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, &text).expect("input");
    let records: Vec<serde_json::Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("json")).collect();

    // What the translated rules 01, 06 and 11 must find, computed from the records.
    let str_at = |r: &serde_json::Value, path: &[&str]| -> Option<String> {
        path.iter().try_fold(r, |v, k| v.get(*k)).and_then(|v| v.as_str()).map(str::to_string)
    };
    let logging = records
        .iter()
        .filter(|r| {
            str_at(r, &["eventSource"]).as_deref() == Some("cloudtrail.amazonaws.com")
                && matches!(str_at(r, &["eventName"]).as_deref(), Some("StopLogging" | "DeleteTrail"))
        })
        .count();
    let mut denied: std::collections::HashMap<(Option<String>, i64), usize> = std::collections::HashMap::new();
    for r in &records {
        let code = str_at(r, &["errorCode"]);
        if matches!(code.as_deref(), Some("AccessDenied" | "UnauthorizedOperation" | "Client.UnauthorizedOperation")) {
            let time = str_at(r, &["eventTime"]).or_else(|| str_at(r, &["@timestamp"])).expect("time");
            let secs = chrono::DateTime::parse_from_rfc3339(&time).expect("rfc3339").timestamp();
            *denied.entry((str_at(r, &["userIdentity", "arn"]), secs.div_euclid(300))).or_default() += 1;
        }
    }
    let bursts = denied.values().filter(|n| **n >= 10).count();
    let tools = ["python-requests/", "curl/", "sqlmap", "pacu", "kali"];
    let tool_agents = records
        .iter()
        .filter(|r| str_at(r, &["userAgent"]).is_some_and(|ua| tools.iter().any(|t| ua.contains(t))))
        .count();
    assert!(logging > 0 && bursts > 0, "the fixtures hold what this test checks");

    let out = vigil()
        .args(["bench", "--threads", "2", "--rules", "benches/rules", "--out"])
        .arg(dir.path().join("out"))
        .arg(&input)
        .output()
        .expect("vigil runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON line");
    assert_eq!(line["engine"], "vigil");
    assert_eq!(line["threads"], 2);
    assert_eq!(line["bytes"], text.len() as u64);
    assert_eq!(
        line["events"].as_u64().expect("events") + line["dead_letters"].as_u64().expect("dead"),
        records.len() as u64
    );
    for key in ["parse_s", "rules_s", "parquet_s", "total_s", "events_per_s", "mb_per_s", "parquet_bytes"] {
        assert!(line[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {line}");
    }
    let matches = line["matches"].as_object().expect("matches");
    assert_eq!(matches.len(), 11, "every rule, zeros included: {line}");
    assert_eq!(matches["01_cloudtrail_logging_disabled"], logging as u64);
    assert_eq!(matches["06_access_denied_burst"], bursts as u64);
    assert_eq!(matches["11_attack_tool_user_agent"], tool_agents as u64);

    // A second run starts from an empty archive (nothing "already archived").
    let again = vigil()
        .args(["bench", "--rules", "benches/rules", "--out"])
        .arg(dir.path().join("out"))
        .arg(&input)
        .output()
        .expect("vigil runs");
    let again: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&again.stdout).lines().last().expect("a line")).expect("JSON");
    assert_eq!(again["events"], line["events"]);
    assert_eq!(again["matches"], line["matches"]);
}

#[test]
fn a_batch_closes_before_its_bytes_pass_max_buffered_bytes_and_the_summary_has_latencies() {
    // Memory stays bounded by bytes as well as rows: with a 64 KiB bound, the CloudTrail fixture (a few MB)
    // is archived in many batches, each under the bound, and everything reconciles.
    let out = tempfile::tempdir().expect("tempdir");
    let fixture = repo().join("fixtures/cloudtrail/stratus-detonations.ndjson");
    let config = out.path().join("bounded.toml");
    let toml = format!(
        "[pipeline]\nmax_buffered_bytes = 65536\nthreads = 2\n\n[[inputs]]\nformat = \"cloudtrail\"\npath = {:?}\n\n\
         [rules]\ndirs = [{:?}]\n\n[evidence]\nurl = {:?}\n",
        fixture.display().to_string(),
        repo().join("benches/rules").display().to_string(),
        out.path().join("ev").display().to_string(),
    );
    std::fs::write(&config, toml).expect("config");
    let summary_path = out.path().join("summary.json");
    let output = vigil()
        .args(["run", "--no-progress", "--config"])
        .arg(&config)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .expect("vigil runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("summary json");
    let input = &summary["inputs"][0];
    let lines = std::fs::read_to_string(&fixture).expect("fixture");
    let sizes: Vec<usize> = lines.lines().filter(|l| !l.trim().is_empty()).map(str::len).collect();
    let total: usize = sizes.iter().sum();
    let batches = input["batches"].as_u64().expect("batches") as usize;
    // Each batch holds under 64 KiB (or one larger record): at least total / 64 KiB of them.
    assert!(batches >= total.div_ceil(65536), "{batches} batches for {total} bytes");
    assert_eq!(input["records_read"].as_u64(), Some(sizes.len() as u64));
    assert_eq!(
        input["events"].as_u64().expect("events") + input["dead_letters"].as_u64().expect("dead"),
        sizes.len() as u64
    );
    // The archive's manifest entries, one per batch, are intact and chained.
    let verify = vigil().args(["verify", "--evidence"]).arg(out.path().join("ev")).output().expect("verify runs");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    // Read -> archived latency is in the summary, with ordered quantiles.
    let archived = &summary["latency"]["event_to_archive"];
    let q = |k: &str| archived[k].as_f64().expect("quantile");
    assert!(q("p50") > 0.0 && q("p50") <= q("p99") && q("p99") <= q("max"), "{archived}");
}

/// A secret no output may repeat.
const SECRET: &str = "hunter2-S3cr3tValue";

/// `vigil ARGS`: exit code and everything it printed (stdout, stderr).
fn vigil_all(args: &[&str]) -> (Option<i32>, String) {
    let output = vigil().args(args).output().expect("vigil runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

#[test]
fn inline_secrets_in_kafka_and_s3_urls_are_refused_and_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = dir.path().join("ev").display().to_string();
    let fixture = "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson";
    let kafka_inputs = [
        format!("cloudtrail:kafka://127.0.0.1:9/cloudtrail?group=vigil&sasl.password={SECRET}"),
        format!("cloudtrail:kafka://127.0.0.1:9/cloudtrail?group=vigil&sasl.pasword={SECRET}&start=latest"),
        format!("cloudtrail:kafka://127.0.0.1:9/cloudtrail?group=vigil&sasl_password={SECRET}"),
        format!("cloudtrail:kafka://127.0.0.1:9/cloudtrail?group=vigil&ssl.key.password={SECRET}"),
        format!("cloudtrail:kafka://vigil:{SECRET}@127.0.0.1:9/cloudtrail?group=vigil"),
        // A typo'd format too: the input is still shown redacted.
        format!("cloudtrial:kafka://127.0.0.1:9/cloudtrail?group=vigil&token={SECRET}"),
    ];
    let evidences = [
        format!("s3://audit-bucket/vigil?region=us-east-1&secret={SECRET}"),
        format!("s3://audit-bucket/vigil?aws_secret_access_key={SECRET}"),
        format!("s3://audit-bucket/vigil?session_token={SECRET}"),
        format!("s3://AKIAEXAMPLE:{SECRET}@audit-bucket/vigil"),
        format!("s3://audit-bucket/vigil?endpoint=http://minio:{SECRET}@127.0.0.1:9"),
        format!("s3://audit-bucket/vigil?secert_key={SECRET}"),
    ];
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    for input in &kafka_inputs {
        let flags = vec!["--input".to_string(), input.clone(), "--evidence".into(), evidence.clone()];
        cases.push((flags, "refused"));
    }
    for ev in &evidences {
        cases.push((vec!["--input".into(), fixture.into(), "--evidence".into(), ev.clone()], "refused"));
    }
    let summary = dir.path().join("summary.json");
    for (flags, expect) in &cases {
        let mut args = vec!["validate", "--rules", "pipelines/rules/soc2"];
        args.extend(flags.iter().map(String::as_str));
        let (code, text) = vigil_all(&args);
        assert_eq!(code, Some(1), "validate {flags:?}: {text}");
        assert!(!text.contains(SECRET) && !text.contains("S3cr3t"), "validate {flags:?} repeats the secret: {text}");
        let mut args = vec!["run", "--no-progress", "--rules", "pipelines/rules/soc2"];
        args.extend(flags.iter().map(String::as_str));
        let summary_arg = summary.display().to_string();
        args.extend(["--summary-json", summary_arg.as_str()]);
        let (code, text) = vigil_all(&args);
        assert_eq!(code, Some(2), "run {flags:?}: {text}");
        assert!(!text.contains(SECRET) && !text.contains("S3cr3t"), "run {flags:?} repeats the secret: {text}");
        if text.contains("cloudtrial") {
            continue; // refused for its format first
        }
        assert!(text.contains(expect), "run {flags:?}: {text}");
        let summary_text = std::fs::read_to_string(&summary).unwrap_or_default();
        assert!(!summary_text.contains(SECRET), "{summary_text}");
    }
    // Kafka: the refusal says which mechanism to use instead; S3: the environment or a profile.
    let (_, text) = vigil_all(&[
        "validate",
        "--rules",
        "pipelines/rules/soc2",
        "--input",
        &kafka_inputs[0],
        "--evidence",
        &evidence,
    ]);
    assert!(text.contains("sasl_password_env=") && text.contains("sasl.password"), "{text}");
    let (_, text) =
        vigil_all(&["validate", "--rules", "pipelines/rules/soc2", "--input", fixture, "--evidence", &evidences[0]]);
    assert!(text.contains("AWS_SECRET_ACCESS_KEY") && text.contains("profile"), "{text}");
    // The archive commands refuse the same way.
    for command in [vec!["verify"], vec!["query", "SELECT 1"]] {
        let mut args = command.clone();
        args.extend(["--evidence", evidences[0].as_str()]);
        let (code, text) = vigil_all(&args);
        assert_eq!(code, Some(2), "{command:?}: {text}");
        assert!(!text.contains(SECRET) && text.contains("refused"), "{command:?}: {text}");
    }
    // Alerts and dead letters to a Kafka URL with a secret.
    let alerts = format!("kafka://127.0.0.1:9/vigil-alerts?sasl.password={SECRET}");
    let (code, text) = vigil_all(&[
        "run",
        "--input",
        fixture,
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &evidence,
        "--alerts",
        &alerts,
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn secrets_in_a_config_file_are_refused_and_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("p.toml");
    let rules = repo().join("pipelines/rules/soc2").display().to_string();
    let bodies = [
        // A secret property written inline, misspelt.
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\n[inputs.kafka]\nbrokers = [\"127.0.0.1:9\"]\ntopics = [\"t\"]\n\
             group = \"g\"\n[inputs.kafka.properties]\n\"sasl.passwd\" = \"{SECRET}\"\n"
        ),
        // A secret as the reference itself.
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\n[inputs.kafka]\nbrokers = [\"127.0.0.1:9\"]\ntopics = [\"t\"]\n\
             group = \"g\"\n[inputs.kafka.secrets]\n\"sasl.password\" = \"{SECRET}\"\n"
        ),
        // An unknown key: the TOML error quotes its line.
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\n[inputs.kafka]\nbrokers = [\"127.0.0.1:9\"]\ntopics = [\"t\"]\n\
             password = \"{SECRET}\"\n"
        ),
        // A URL in path, and a broker with a password.
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\npath = \"kafka://127.0.0.1:9/t?group=g&sasl.password={SECRET}\"\n"
        ),
        format!(
            "[[inputs]]\nformat = \"cloudtrail\"\n[inputs.kafka]\nbrokers = [\"u:{SECRET}@127.0.0.1:9\"]\n\
             topics = [\"t\"]\ngroup = \"g\"\n"
        ),
    ];
    for body in bodies {
        let text = format!("{body}\n[rules]\ndirs = [{rules:?}]\n[evidence]\nurl = \"s3://audit/p?token={SECRET}\"\n");
        std::fs::write(&config, &text).expect("config");
        let config = config.display().to_string();
        for command in ["validate", "run"] {
            let (code, out) = vigil_all(&[command, "--config", &config]);
            assert!(code == Some(1) || code == Some(2), "{command} {body}: {out}");
            assert!(!out.contains(SECRET) && !out.contains("S3cr3t"), "{command} repeats the secret:\n{body}\n{out}");
        }
    }
}

#[test]
fn a_json_source_outside_the_safe_characters_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.ndjson");
    std::fs::write(&log, "{\"ts\":\"2024-08-01T00:00:00Z\",\"user\":\"a\"}\n").expect("log");
    let rules = repo().join("pipelines/rules/soc2").display().to_string();
    for (source, ok) in
        [("myapp.audit", true), ("../evil", false), ("a/b", false), ("a b", false), ("a%2Fb", false), ("..", false)]
    {
        let config = dir.path().join("p.toml");
        std::fs::write(
            &config,
            format!(
                "[[inputs]]\nformat = \"json\"\npath = {:?}\nsource = {source:?}\nfields = {{ time = \"ts\", actor_user = \
                 \"user\" }}\n[rules]\ndirs = [{rules:?}]\n[evidence]\nurl = {:?}\n",
                log.display().to_string(),
                dir.path().join("ev").display().to_string()
            ),
        )
        .expect("config");
        let (code, text) = vigil_all(&["validate", "--config", &config.display().to_string()]);
        if ok {
            assert_eq!(code, Some(0), "{source}: {text}");
        } else {
            assert_eq!(code, Some(1), "{source}: {text}");
            assert!(text.contains("source") && text.contains("letters, digits"), "{source}: {text}");
        }
    }
    // Accepted, it names the folder as it is: not percent-encoded.
    let (code, text) =
        vigil_all(&["run", "--no-progress", "--config", &dir.path().join("p.toml").display().to_string()]);
    assert_eq!(code, Some(2), "the last config is refused: {text}");
    let config = dir.path().join("ok.toml");
    std::fs::write(
        &config,
        format!(
            "[[inputs]]\nformat = \"json\"\npath = {:?}\nsource = \"my-app_1.audit\"\nfields = {{ time = \"ts\" }}\n\
             [rules]\ndirs = [{rules:?}]\n[evidence]\nurl = {:?}\n",
            log.display().to_string(),
            dir.path().join("ev").display().to_string()
        ),
    )
    .expect("config");
    let (code, text) = vigil_all(&["run", "--no-progress", "--config", &config.display().to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(dir.path().join("ev/events/source=my-app_1.audit").is_dir(), "{text}");
}

#[test]
fn query_writes_list_columns_as_csv_and_an_output_failure_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ev = dir.path().join("ev").display().to_string();
    let (code, text) = vigil_all(&[
        "run",
        "--no-progress",
        "--input",
        "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &ev,
    ]);
    assert_eq!(code, Some(0), "{text}");
    let output =
        vigil().args(["query", "--evidence", &ev, "--format", "csv", "SELECT * FROM alerts"]).output().expect("runs");
    let csv = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let header = csv.lines().next().expect("header");
    assert!(header.contains("criteria") && header.contains("event_ids"), "{header}");
    // Lists are JSON text in one quoted cell: ["CC6.1","CC7.2"] is written "[""CC6.1"",""CC7.2""]".
    assert!(csv.contains("\"[\"\"CC"), "{}", &csv[..csv.len().min(2000)]);
    let (code, json) = vigil_all(&["query", "--evidence", &ev, "--format", "json", "SELECT count(*) AS n FROM alerts"]);
    assert_eq!(code, Some(0), "{json}");
    let n: serde_json::Value = serde_json::from_str(json.lines().next().expect("line")).expect("json");
    let alerts = n["n"].as_u64().expect("count");
    assert!(alerts > 0);
    // Every alert is one record of the CSV (cells may hold quoted newlines: count records by event id lists).
    assert!(csv.matches("\"[\"\"").count() as u64 >= alerts, "{alerts} alerts");
    // Events (binary raw, JSON attrs) too.
    let (code, text) = vigil_all(&["query", "--evidence", &ev, "--format", "csv", "SELECT * FROM events LIMIT 3"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("eventName"), "raw bytes as text: {text}");
    // Output failures: an unwritable --out, and a full stdout.
    let (code, text) = vigil_all(&[
        "query",
        "--evidence",
        &ev,
        "--format",
        "csv",
        "--out",
        "/nonexistent/dir/x.csv",
        "SELECT * FROM alerts",
    ]);
    assert_eq!(code, Some(2), "{text}");
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let output = vigil()
            .args(["query", "--evidence", &ev, "--format", "csv", "SELECT * FROM alerts"])
            .stdout(full)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn errors_say_what_kind_of_failure_they_are() {
    // An output that cannot be written (a full disk) is a failure outside vigil: exit 2 and the advice to
    // run again once it is fixed. A wrong argument is the user's: exit 2 with its own fix and no such advice.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ev = dir.path().join("ev");
    let run = vigil()
        .args(["run", "--input", "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson"])
        .args(["--rules", "pipelines/rules/soc2", "--alerts", "-", "--evidence"])
        .arg(&ev)
        .output()
        .expect("runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let output = vigil()
        .args(["query", "--format", "csv", "--evidence"])
        .arg(&ev)
        .arg("SELECT count(*) FROM events")
        .stdout(full)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a service vigil depends on failed"), "{stderr}");
    let wrong = vigil().args(["verify", "--evidence", "gs://bucket"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("s3://BUCKET") && !stderr.contains("a service vigil depends on"), "{stderr}");
}
