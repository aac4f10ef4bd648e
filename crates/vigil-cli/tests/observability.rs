//! What an operator sees of a running `vigil run --metrics-addr`, over real HTTP from the real binary:
//! `/healthz` and `/readyz` during a run, `/readyz` at 503 from SIGTERM until the drain ends, the
//! shutdown time limit (exit 2 naming what was not made durable, read again on the next run), a stuck
//! partition failing `/healthz`, Prometheus histograms on `/metrics`, and the Grafana dashboard in
//! `deploy/grafana` naming only metrics that vigil exports.
//!
//! The drain is held open with the test-only failpoint `VIGIL_FAILPOINT=archive_write:N:stall=MS` (the
//! N-th and later archive writes wait MS milliseconds, as against a store that hangs).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::kafka::Broker;
use vigil_tests::process::{HUNG, LoggedChild};
use vigil_tests::{read_kind, repo};

/// A `vigil` process ([`LoggedChild`]): its stderr in a file, killed when dropped.
fn start_vigil(args: &[&str], env: &[(&str, &str)], log: PathBuf, stdin: Stdio) -> LoggedChild {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo())
        .args(args)
        .env("VIGIL_LOG", "info")
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    LoggedChild { child: cmd.spawn().expect("vigil starts"), log }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    format!("127.0.0.1:{port}")
}

/// `GET path`: the status code and the body, or `None` when nothing answers (yet, or any more).
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: vigil\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HUNG, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` CloudTrail records from the Stratus Red Team detonations (they raise alerts), one line each, the
/// 5th cut short (a dead letter `invalid_json`).
fn records(n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson")).expect("fixture");
    let mut out = Vec::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).take(n).enumerate() {
        let line = if i == 4 { &line[..line.len() / 2] } else { line };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The value of the sample `series` (name and labels exactly as exported).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn probes_answer_during_a_run_and_readyz_is_503_from_sigterm_until_the_drain_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = dir.path().join("evidence");
    let addr = free_addr();
    let evidence_arg = evidence.to_string_lossy().to_string();
    let args = [
        "run",
        "--input",
        "cloudtrail:-",
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &evidence_arg,
        "--metrics-addr",
        &addr,
        "--batch-rows",
        "10",
        "--batch-ms",
        "600000",
        "--threads",
        "2",
        "--no-progress",
    ];
    // The second and every later archive write hang for 6 s.
    let env = [("VIGIL_FAILPOINT", "archive_write:2:stall=6000")];
    let mut vigil = start_vigil(&args, &env, dir.path().join("vigil.log"), Stdio::piped());

    wait_until("/readyz answers 200", || get(&addr, "/readyz").is_some_and(|(status, _)| status == 200));
    let (status, body) = get(&addr, "/healthz").expect("answers");
    assert!(status == 200 && body.starts_with("ok:"), "{status} {body}");

    // 25 records, stdin held open: records 1-10 are archived (their write settles on a health tick, the
    // input being quiet), 11-20 are written with the stalled write, 21-25 wait in the open batch.
    vigil.write_stdin(&records(25));
    let mut metrics = String::new();
    wait_until("the first batch is durable", || {
        metrics = get(&addr, "/metrics").map(|(_, body)| body).unwrap_or_default();
        sample(&metrics, "vigil_event_to_archive_seconds_count") == Some(10.0)
    });
    for line in [
        "# TYPE vigil_event_to_archive_seconds histogram",
        "# TYPE vigil_batch_stage_seconds histogram",
        "# TYPE vigil_event_to_alert_seconds histogram",
        r#"vigil_event_to_archive_seconds_bucket{le="+Inf"} 10"#,
        r#"vigil_dead_letters_total{ingest_source="file",partition="0",reason="invalid_json"} 1"#,
        r#"vigil_events_archived_total{ingest_source="file",partition="0"} 9"#,
        r#"vigil_batch_stage_seconds_count{stage="archive"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing `{line}` in\n{metrics}");
    }
    assert!(metrics.contains(&format!("vigil_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{metrics}");
    assert!(!metrics.contains("quantile="), "histograms, not summaries");
    let (status, body) = get(&addr, "/healthz").expect("answers");
    assert!(status == 200 && body.contains("1 with records not yet durable"), "{status} {body}");

    vigil.sigterm();
    let signalled = Instant::now();
    // At once: not ready, and saying why; alive all the same.
    let mut readyz = (0, String::new());
    wait_until("/readyz turns 503", || {
        readyz = get(&addr, "/readyz").expect("answers while draining");
        readyz.0 != 200
    });
    assert!(readyz.0 == 503 && readyz.1.contains("draining since"), "{readyz:?}");
    assert!(signalled.elapsed() < Duration::from_secs(3), "503 from the signal on, not after the drain");
    let (status, body) = get(&addr, "/healthz").expect("answers while draining");
    assert_eq!(status, 200, "{body}");
    // Still draining a while later (the writes hang): still 503.
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = get(&addr, "/readyz").expect("still draining");
    assert!(status == 503 && body.contains("draining since"), "{status} {body}");

    let exit = vigil.wait();
    assert!(exit.success(), "{}", vigil.log_text());
    assert!(signalled.elapsed() >= Duration::from_secs(4), "the hung writes held the drain");
    let events = read_kind(&evidence, "events").expect("events").num_rows();
    let dead = read_kind(&evidence, "dead_letters").expect("dead letters").num_rows();
    assert_eq!((events, dead), (24, 1), "every record read before SIGTERM was made durable");
}

#[test]
fn a_stuck_partition_fails_healthz_and_the_shutdown_limit_exits_2_naming_what_is_not_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence = dir.path().join("evidence");
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "[pipeline]\nbatch_rows = 5\nthreads = 2\nstuck_after_secs = 1\n\n[[inputs]]\nformat = \"cloudtrail\"\n\
             path = \"-\"\n\n[rules]\ndirs = [\"{}\"]\n\n[evidence]\nurl = \"{}\"\n",
            repo().join("pipelines/rules/soc2").display(),
            evidence.display()
        ),
    )
    .expect("config");
    let config_arg = config.to_string_lossy().to_string();
    let addr = free_addr();
    let args = ["run", "--config", &config_arg, "--metrics-addr", &addr, "--shutdown-timeout", "2", "--no-progress"];
    // Every archive write hangs (10 minutes).
    let env = [("VIGIL_FAILPOINT", "archive_write:1:stall=600000")];
    let mut vigil = start_vigil(&args, &env, dir.path().join("vigil.log"), Stdio::piped());
    wait_until("/readyz answers 200", || get(&addr, "/readyz").is_some_and(|(status, _)| status == 200));
    let input = records(8);
    vigil.write_stdin(&input);

    // Records 1-5 close a batch whose write hangs; 6-8 close a second one a second later, which waits
    // for the first: the loop stands still, and so does the partition.
    let mut healthz = (0, String::new());
    wait_until("/healthz turns 503", || {
        healthz = get(&addr, "/healthz").expect("answers");
        healthz.0 == 503
    });
    let body = &healthz.1;
    assert!(
        body.contains("stuck: file-") && body.contains("/0 (-): records waiting without progress since 20"),
        "{body}"
    );
    assert!(body.contains("offsets 1-") && body.contains("not durable (durable through 0)"), "{body}");
    assert!(body.contains("(stuck_after_secs = 1)"), "{body}");
    assert_eq!(get(&addr, "/readyz").expect("answers").0, 200, "stuck is not unready: the store answered");

    vigil.sigterm();
    let signalled = Instant::now();
    let exit = vigil.wait();
    let waited = signalled.elapsed();
    let log = vigil.log_text();
    assert_eq!(exit.code(), Some(2), "{log}");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(60), "{waited:?}");
    assert!(log.contains("did not finish within 2 s"), "{log}");
    assert!(log.contains("offsets 1-8 not durable (durable through 0)"), "{log}");
    assert!(log.contains("not committed") && log.contains("read again"), "{log}");
    assert!(read_kind(&evidence, "events").is_none(), "nothing was made durable");

    // Nothing is lost: the next run reads them again.
    let mut rerun = start_vigil(
        &["run", "--config", &config_arg, "--no-progress"],
        &[],
        dir.path().join("rerun.log"),
        Stdio::piped(),
    );
    rerun.write_stdin(&input);
    drop(rerun.child.stdin.take());
    let exit = rerun.wait();
    assert!(exit.success(), "{}", rerun.log_text());
    let events = read_kind(&evidence, "events").expect("events").num_rows();
    let dead = read_kind(&evidence, "dead_letters").expect("dead letters").num_rows();
    assert_eq!(events + dead, 8);
}

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label names
/// (in `{...}`, `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`), strings, ranges or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Grafana's `label_values(metric, label)`: the metric only.
    let mut text = expr.to_string();
    if let Some(start) = text.find("label_values(") {
        let args = &text[start + "label_values(".len()..];
        let metric = args.split([',', ')']).next().unwrap_or("").trim().to_string();
        text = metric;
    }
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    // Drop strings, `{...}` matchers and `[...]` ranges.
    while let Some(c) = chars.next() {
        let close = match c {
            '"' => '"',
            '{' => '}',
            '[' => ']',
            _ => {
                out.push(c);
                continue;
            }
        };
        for d in chars.by_ref() {
            if d == close {
                break;
            }
        }
        out.push(' ');
    }
    let tokens: Vec<(String, char)> = {
        let mut tokens = Vec::new();
        let bytes: Vec<char> = out.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_alphabetic() || bytes[i] == '_' || bytes[i] == ':' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' || bytes[i] == ':') {
                    i += 1;
                }
                let next = bytes[i..].iter().find(|c| !c.is_whitespace()).copied().unwrap_or(' ');
                tokens.push((bytes[start..i].iter().collect(), next));
            } else {
                i += 1;
            }
        }
        tokens
    };
    const KEYWORDS: [&str; 11] =
        ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"];
    // `sum by (le) (...)`: an aggregation need not be followed by its parenthesis.
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];
    let mut names = BTreeSet::new();
    let mut in_grouping = false;
    for (token, next) in tokens {
        if in_grouping {
            // Label names up to the closing parenthesis (an identifier followed by `)` ends it).
            if next == ')' {
                in_grouping = false;
            }
            continue;
        }
        if GROUPING.contains(&token.as_str()) {
            in_grouping = next == '(';
            continue;
        }
        if KEYWORDS.contains(&token.as_str()) || AGGREGATIONS.contains(&token.as_str()) || next == '(' {
            continue;
        }
        names.insert(token);
    }
    names
}

#[test]
fn promql_metric_names_are_told_from_functions_labels_and_keywords() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, stage) (rate(vigil_batch_stage_seconds_bucket{job=~"$job",x="a b"}[$__rate_interval]))) / on (job) group_left (version) sum(vigil_build_info) or vector(0)"#,
    );
    assert_eq!(names, BTreeSet::from(["vigil_batch_stage_seconds_bucket".into(), "vigil_build_info".into()]));
    assert_eq!(metric_names("label_values(vigil_build_info, job)"), BTreeSet::from(["vigil_build_info".into()]));
}

/// Every PromQL expression of the dashboard: panel targets and templating queries.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        ("query", serde_json::Value::String(q)) if q.contains("vigil_") => out.push(q.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    walk(dashboard, &mut out);
    out
}

#[test]
fn every_metric_the_grafana_dashboard_queries_is_exported_by_a_running_vigil() {
    let path = repo().join("deploy/grafana/vigil-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("the dashboard is JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{queries:?}");
    let mut wanted = BTreeSet::new();
    for q in &queries {
        let names = metric_names(q);
        assert!(!names.is_empty(), "a query naming no metric: {q}");
        for name in names {
            assert!(name.starts_with("vigil_"), "`{name}` in `{q}` is not vigil's");
            wanted.insert(name);
        }
    }

    // A real run: a file input, then a Kafka input (lag), scraped once everything is durable.
    let Some(broker) = Broker::start() else { return };
    broker.create_topic("trail", 2);
    let lines: Vec<Vec<u8>> =
        records(60).split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    broker.produce("trail", 2, &lines);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trail.ndjson");
    std::fs::write(&file, records(30)).expect("file input");
    let (file_arg, evidence, alerts) = (
        format!("cloudtrail:{}", file.display()),
        dir.path().join("evidence").to_string_lossy().to_string(),
        dir.path().join("alerts.ndjson").to_string_lossy().to_string(),
    );
    let kafka = format!("cloudtrail:kafka://{}/trail?group=dashboard&statistics.interval.ms=300", broker.address);
    let addr = free_addr();
    let args = [
        "run",
        "--input",
        &file_arg,
        "--input",
        &kafka,
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &evidence,
        "--alerts",
        &alerts,
        "--dlq",
        &alerts,
        "--metrics-addr",
        &addr,
        "--batch-ms",
        "200",
        "--no-progress",
    ];
    let mut vigil = start_vigil(&args, &[], dir.path().join("vigil.log"), Stdio::null());
    let mut metrics = String::new();
    wait_until("the file and the topic are archived, the lag reported", || {
        metrics = get(&addr, "/metrics").map(|(_, body)| body).unwrap_or_default();
        let read: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("vigil_records_read_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        read == 90.0
            && sample(&metrics, "vigil_event_to_archive_seconds_count") == Some(90.0)
            && (0..2).all(|p| {
                sample(&metrics, &format!("vigil_kafka_consumer_lag{{ingest_source=\"trail\",partition=\"{p}\"}}"))
                    == Some(0.0)
            })
    });
    let (status, body) = get(&addr, "/readyz").expect("answers");
    assert!(status == 200 && body.contains("consumer group joined"), "{status} {body}");
    // A sample's name, or a family declared with no series yet (the destination metrics of a run
    // without destinations).
    let exported: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or(""))
        .chain(metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()))
        .collect();
    let missing: Vec<&String> = wanted.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard queries metrics vigil does not export: {missing:?}\n{metrics}");
    // And the other way round: every metric family vigil exports has a panel.
    let families: BTreeSet<&str> =
        metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let unused: Vec<&&str> = families
        .iter()
        .filter(|f| !wanted.iter().any(|w| w == *f || w.strip_prefix(**f).is_some_and(|s| s.starts_with('_'))))
        .collect();
    assert!(unused.is_empty(), "exported but on no panel: {unused:?}");
    // The histograms hold real observations: alerts were raised and batches archived.
    assert!(sample(&metrics, "vigil_event_to_alert_seconds_count").is_some_and(|n| n > 0.0), "{metrics}");
    assert!(sample(&metrics, r#"vigil_batch_stage_seconds_count{stage="rules"}"#).is_some_and(|n| n > 0.0));
    vigil.sigterm();
    assert!(vigil.wait().success(), "{}", vigil.log_text());
}
