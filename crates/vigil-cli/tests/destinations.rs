//! Issue 20 item 4: alerts reach webhooks, Slack and PagerDuty at least once, through destinations that
//! fail and recover, and a destination that stays down delays no evidence and loses no alert. The
//! destinations are real HTTP servers on loopback (`vigil_tests::receiver`) and `vigil` the real binary.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::receiver::{Answer, Receiver, Request};

const SECRET: &str = "webhook-hmac-secret-4f1c";
const ROUTING_KEY: &str = "R0UTINGKEY0123456789abcdef012345";
const FIXTURE: &str = "fixtures/cloudtrail/stratus-detonations.ndjson";

fn repo() -> PathBuf {
    vigil_tests::repo()
}

/// A Sigma rule (its license asks that alerts carry its author: destinations must too).
const SIGMA_RULE: &str = "title: IAM user created\nid: 5f3c1e9a-0000-4000-8000-00000000beef\nauthor: vigil tests\n\
logsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName: CreateUser\n  condition: sel\nlevel: high\n";

/// A pipeline config with the given destinations (TOML tables) and a file output of the same alerts; the
/// rules are the SOC 2 pack and [`SIGMA_RULE`].
fn config(dir: &Path, drain_secs: u64, destinations: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    let sigma = dir.join("sigma");
    std::fs::create_dir_all(&sigma).expect("sigma dir");
    std::fs::write(sigma.join("iam_user_created.yml"), SIGMA_RULE).expect("sigma rule");
    let text = format!(
        "[[inputs]]\nformat = \"cloudtrail\"\npath = \"{}\"\n[rules]\ndirs = [\"{}\", \"{}\"]\n[evidence]\nurl = \"{}\"\n\
         [alerts]\npath = \"{}\"\ndrain_secs = {drain_secs}\n{destinations}",
        repo().join(FIXTURE).display(),
        repo().join("pipelines/rules/soc2").display(),
        sigma.display(),
        dir.join("ev").display(),
        dir.join("alerts.ndjson").display(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Fast retries for tests: 1 s request limit, waits from 50 ms up to 1 s.
const FAST: &str = "timeout_secs = 1\nretry_initial_ms = 50\nretry_max_secs = 1\n";

fn run(config: &Path, dir: &Path) -> (bool, String) {
    std::fs::write(dir.join("pd.key"), format!("{ROUTING_KEY}\n")).expect("key file");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--config"])
        .arg(config)
        .env("HOOK_SECRET", SECRET)
        .env_remove("VIGIL_WEBHOOK_SECRET")
        .output()
        .expect("vigil runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Ids of the alerts in the file output (each id once).
fn alert_ids(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("alerts.ndjson"))
        .expect("alerts file")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("alert")["alert_id"].as_str().expect("id").to_string()
        })
        .collect()
}

/// Ids accepted by a receiver, read from each request by `id_of`.
fn accepted(requests: &[Request], id_of: impl Fn(&Request) -> String) -> BTreeSet<String> {
    requests.iter().filter(|r| r.accepted()).map(id_of).collect()
}

fn check_webhook(request: &Request) -> String {
    let body = request.json();
    let id = body["alert_id"].as_str().expect("alert_id in the body").to_string();
    assert_eq!(request.header("idempotency-key"), Some(id.as_str()), "Idempotency-Key is the alert id");
    assert_eq!(request.header("content-type"), Some("application/json"));
    // An independent HMAC-SHA256 (vigil-aws's, proven on RFC 4231) over the bytes received.
    let expected = format!("sha256={}", hex::encode(vigil_aws::sigv4::hmac_sha256(SECRET.as_bytes(), &request.body)));
    assert_eq!(request.header("x-vigil-signature"), Some(expected.as_str()), "signature of {id}");
    id
}

fn check_pagerduty(request: &Request) -> String {
    let event = request.json();
    assert_eq!(event["routing_key"], ROUTING_KEY);
    assert_eq!(event["event_action"], "trigger");
    let payload = &event["payload"];
    for key in ["summary", "source", "severity", "timestamp"] {
        assert!(payload[key].as_str().is_some_and(|s| !s.is_empty()), "payload.{key} in {event}");
    }
    assert!(["critical", "error", "warning", "info"].contains(&payload["severity"].as_str().unwrap_or_default()));
    let id = event["dedup_key"].as_str().expect("dedup_key").to_string();
    assert_eq!(payload["custom_details"]["alert_id"], id.as_str());
    id
}

fn check_slack(request: &Request) -> String {
    let message = request.json();
    assert!(message["text"].as_str().is_some_and(|t| !t.is_empty()), "Slack fallback text: {message}");
    let blocks = message["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"].as_str().expect("header text").chars().count() <= 150);
    let context = blocks[2]["elements"][0]["text"].as_str().expect("context");
    context.trim_start_matches("vigil alert `").trim_end_matches('`').to_string()
}

#[test]
fn alerts_reach_a_webhook_slack_and_pagerduty_that_fail_then_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each fails its first requests (a 500, a time-out, a closed connection, a 429, a 503), then accepts.
    let failing = || vec![Answer::Status(500), Answer::Hang, Answer::Close, Answer::TooMany(0), Answer::Status(503)];
    let webhook = Receiver::start(failing(), Answer::Status(200));
    let slack = Receiver::start(failing(), Answer::Status(200));
    let pagerduty = Receiver::start(failing(), Answer::Status(202));
    let destinations = format!(
        "[[alerts.destinations]]\nurl = \"{}/hooks/vigil\"\nsecret_env = \"HOOK_SECRET\"\n{FAST}\
         [[alerts.destinations]]\nurl = \"slack+{}/services/T000/B000/XXXXSECRETPATH\"\n{FAST}\
         [[alerts.destinations]]\nurl = \"pagerduty+{}/v2/enqueue\"\nrouting_key_file = \"{}\"\n{FAST}",
        webhook.url(),
        slack.url(),
        pagerduty.url(),
        dir.path().join("pd.key").display()
    );
    let config = config(dir.path(), 60, &destinations);
    let (ok, log) = run(&config, dir.path());
    assert!(ok, "{log}");
    let ids = alert_ids(dir.path());
    assert!(ids.len() >= 5, "the fixture raises alerts: {ids:?}");
    assert_eq!(accepted(&webhook.requests(), check_webhook), ids, "every alert reached the webhook");
    assert_eq!(accepted(&slack.requests(), check_slack), ids, "every alert reached Slack");
    assert_eq!(accepted(&pagerduty.requests(), check_pagerduty), ids, "every alert reached PagerDuty");
    for (name, r) in [("webhook", &webhook), ("slack", &slack), ("pagerduty", &pagerduty)] {
        let requests = r.requests();
        assert!(requests.len() >= ids.len() + 5, "{name}: the failures were retried ({} requests)", requests.len());
        assert!(requests.iter().all(|q| q.path != "/"), "{name}: requests go to the configured path");
    }
    // A retried alert is the same request: same id, same bytes, same signature.
    let requests = webhook.requests();
    let (first, later) = requests.split_first().expect("requests");
    assert!(!first.accepted());
    let again = later.iter().filter(|r| r.header("idempotency-key") == first.header("idempotency-key"));
    assert!(
        again.clone().any(|r| r.body == first.body
            && r.header("x-vigil-signature") == first.header("x-vigil-signature")
            && r.accepted()),
        "the failed first alert was sent again as it was"
    );
    for secret in [SECRET, ROUTING_KEY, "XXXXSECRETPATH", "hooks/vigil"] {
        assert!(!log.contains(secret), "the log shows a secret or a URL path ({secret}):\n{log}");
    }
    // The Sigma rule's author reaches every destination.
    let sigma = |r: &Request| r.body.windows(11).any(|w| w == b"vigil tests");
    let hook = webhook.requests().into_iter().find(|r| r.accepted() && sigma(r)).expect("the Sigma alert, webhook");
    assert_eq!(hook.json()["source_rule"]["id"], "5f3c1e9a-0000-4000-8000-00000000beef");
    let pd = pagerduty.requests().into_iter().find(|r| r.accepted() && sigma(r)).expect("the Sigma alert, PagerDuty");
    assert_eq!(pd.json()["payload"]["custom_details"]["source_rule"]["author"], "vigil tests");
    assert_eq!(pd.json()["payload"]["severity"], "error", "Sigma high is vigil high is PagerDuty error");
    let message = slack.requests().into_iter().find(|r| r.accepted() && sigma(r)).expect("the Sigma alert, Slack");
    assert!(message.json()["blocks"][1]["text"]["text"].as_str().is_some_and(|t| t.contains("by vigil tests")));
    // Delivered: nothing stays queued.
    assert_eq!(queued(&dir.path().join("ev")), 0);
}

/// Alerts queued in the spool (lines of segments, less acknowledged ones).
fn queued(evidence: &Path) -> usize {
    let root = evidence.join("state/alert-spool");
    let mut n = 0;
    for spool in std::fs::read_dir(&root).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        for entry in std::fs::read_dir(spool.path()).expect("spool").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".seg") {
                let lines = std::fs::read_to_string(entry.path()).expect("segment").lines().count();
                let acks = std::fs::read_to_string(spool.path().join(format!("{stem}.ack")))
                    .map(|t| t.lines().count())
                    .unwrap_or(0);
                n += lines - acks;
            }
        }
    }
    n
}

#[test]
fn a_destination_that_stays_down_delays_no_evidence_and_loses_no_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let webhook = Receiver::start(Vec::new(), Answer::Status(503));
    let destinations =
        format!("[[alerts.destinations]]\nurl = \"{}/in\"\nsecret_env = \"HOOK_SECRET\"\n{FAST}", webhook.url());
    let config = config(dir.path(), 1, &destinations);
    let (ok, log) = run(&config, dir.path());
    assert!(ok, "the run completes while its destination is down: {log}");
    let ids = alert_ids(dir.path());
    assert!(!ids.is_empty());
    assert!(log.contains("stay queued"), "the run says the alerts stay queued: {log}");
    let verify = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["verify", "--evidence"])
        .arg(dir.path().join("ev"))
        .output()
        .expect("verify runs");
    assert!(verify.status.success(), "the evidence is complete: {}", String::from_utf8_lossy(&verify.stdout));
    assert!(webhook.requests().iter().all(|r| !r.accepted()));
    assert_eq!(queued(&dir.path().join("ev")), ids.len(), "every alert is queued on disk");

    // The destination comes back; the next vigil (nothing new to read) delivers what was queued.
    webhook.set_default(Answer::Status(204));
    let (ok, log) = run(&config, dir.path());
    assert!(ok, "{log}");
    assert_eq!(accepted(&webhook.requests(), check_webhook), ids, "queued alerts delivered after the restart");
    assert_eq!(queued(&dir.path().join("ev")), 0);
    assert_eq!(alert_ids(dir.path()), ids, "the restart raised no alert twice into the file");
}

/// The value of the sample `series` at `GET http://addr/metrics`, when it answers.
fn metric(addr: &str, series: &str) -> Option<f64> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_backlog_shows_in_the_metrics_and_drains_when_the_destination_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let webhook = Receiver::start(Vec::new(), Answer::Status(502));
    let destinations =
        format!("[[alerts.destinations]]\nurl = \"{}/in\"\nsecret_env = \"HOOK_SECRET\"\n{FAST}", webhook.url());
    // Long enough a drain for the destination to come back while this run is still delivering.
    let config = config(dir.path(), 120, &destinations);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--metrics-addr", &addr, "--config"])
        .arg(&config)
        .env("HOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil starts");
    let label = format!("destination=\"webhook {}/…\"", webhook.url());
    let pending = format!("vigil_alerts_pending{{{label}}}");
    let failed = format!("vigil_alert_deliveries_total{{{label},outcome=\"failed\"}}");
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(60), "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Down: everything raised is queued, attempts fail.
    wait("a backlog and failed attempts", &|| {
        metric(&addr, &pending).is_some_and(|n| n > 0.0) && metric(&addr, &failed).is_some_and(|n| n >= 2.0)
    });
    let ids = alert_ids(dir.path());
    wait("every alert in the backlog", &|| metric(&addr, &pending) == Some(ids.len() as f64));
    // Back: the backlog drains in this same run (the drain ends as soon as nothing is queued).
    webhook.set_default(Answer::Status(200));
    let started = Instant::now();
    let status = child.wait().expect("vigil ends");
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(60), "the drain ended when the queue was empty");
    assert_eq!(accepted(&webhook.requests(), check_webhook), ids);
    assert_eq!(queued(&dir.path().join("ev")), 0);
}

#[test]
fn a_crash_with_alerts_queued_loses_none_and_a_replay_keeps_their_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let webhook = Receiver::start(Vec::new(), Answer::Status(503));
    let destinations =
        format!("[[alerts.destinations]]\nurl = \"{}/in\"\nsecret_env = \"HOOK_SECRET\"\n{FAST}", webhook.url());
    let config = config(dir.path(), 30, &destinations);
    // Small batches; the process aborts before the 4th batch's offsets are committed (its alerts are
    // queued and in the file), while the destination is down.
    let crashed = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(repo())
        .args(["run", "--no-progress", "--batch-rows", "40", "--config"])
        .arg(&config)
        .env("HOOK_SECRET", SECRET)
        .env("VIGIL_FAILPOINT", "before_commit:4")
        .output()
        .expect("vigil runs");
    assert!(!crashed.status.success(), "the first run should have died");
    assert!(queued(&dir.path().join("ev")) > 0, "alerts were queued when it died");
    webhook.set_default(Answer::Status(200));
    let (ok, log) = run(&config, dir.path());
    assert!(ok, "{log}");
    // Every alert ever raised (the replayed batch raised its alerts again, with the same ids) arrived.
    let ids = alert_ids(dir.path());
    assert_eq!(accepted(&webhook.requests(), check_webhook), ids);
    assert_eq!(queued(&dir.path().join("ev")), 0);
    // ... and they are the alerts of an uninterrupted run.
    let clean = tempfile::tempdir().expect("tempdir");
    let (ok, log) = run(&self::config(clean.path(), 1, ""), clean.path());
    assert!(ok, "{log}");
    assert_eq!(alert_ids(clean.path()), ids);
}
