//! Storage faults lose nothing: `vigil run` archives to a real S3-compatible server (moto, started by
//! `deploy/local/s3.sh`) through a fault-injecting proxy on loopback (`vigil_tests::fault_proxy`): 500
//! `InternalError`, 503 `SlowDown`, connections reset before the request reached the server and after it
//! took effect (the answer lost), stalls, and outages longer than `object_store`'s own retries (20 s with a
//! file input; 30 s with a Kafka input, records arriving throughout and the group's committed offsets watched). The run completes, `verify` passes on the server
//! itself (not through the proxy), and every record is in the archive exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::fault_proxy::{Fault, FaultPlan, FaultProxy};
use vigil_tests::process::LoggedChild;
use vigil_tests::repo;
use vigil_tests::s3::{BUCKET, CREDENTIALS, S3Server};

/// Generous bound on how long a run may take before the test is declared hung (not a speed check).
const HUNG: Duration = Duration::from_secs(300);

/// `n` real CloudTrail records, each made unique by an added `vigilTestSeq` field: one in ten from the
/// Stratus Red Team detonations (they raise alerts), the rest benign (OTRF); every 100th one is cut short
/// (a dead letter).
fn events(n: usize) -> Vec<Vec<u8>> {
    let attacks = vigil_tests::cloudtrail_lines("stratus-detonations.ndjson");
    let benign = vigil_tests::cloudtrail_lines("otrf-logstash-ec2-proxy-s3-exfil.ndjson");
    vigil_tests::unique_records(&attacks, &benign, n)
}

/// [`events`] as an NDJSON file.
fn write_events(path: &Path, n: usize) {
    let mut out = Vec::new();
    for record in events(n) {
        out.extend_from_slice(&record);
        out.push(b'\n');
    }
    std::fs::write(path, out).expect("write the input");
}

fn vigil_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo()).args(args).env("VIGIL_LOG", "info");
    for (k, v) in CREDENTIALS {
        cmd.env(k, v);
    }
    cmd
}

fn vigil(args: &[&str]) -> (i32, String, String) {
    let out = vigil_command(args).output().expect("vigil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vigil verify --json` on `url`: exit code and report.
fn verify(url: &str) -> (i32, serde_json::Value) {
    let (code, out, err) = vigil(&["verify", "--evidence", url, "--json"]);
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("verify --json: {e}: {out}{err}"));
    (code, json)
}

/// One row of `vigil query --format json`.
fn query(url: &str, sql: &str) -> serde_json::Value {
    let (code, out, err) = vigil(&["query", "--evidence", url, "--format", "json", sql]);
    assert_eq!(code, 0, "query {sql}: {out}{err}");
    serde_json::from_str(out.lines().next().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The heads of a verify report's data chains: the input's own, not the archive's `@rules` chain (the
/// rule texts) beside them.
fn data_heads(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["heads"]
        .as_array()
        .map(|heads| heads.iter().filter(|h| !h["ingest_source"].as_str().unwrap_or("").starts_with('@')).collect())
        .unwrap_or_default()
}

/// The archive under `prefix` (read on the server, not through the proxy) holds each of the `n` records
/// of `write_events` exactly once: as an event or, every 100th, as a dead letter; `verify` passes.
fn assert_complete_and_verified(server: &S3Server, prefix: &str, n: u64) {
    let url = &server.url(prefix);
    let (code, report) = verify(url);
    assert_eq!(code, 0, "the archive verifies: {report:#}");
    let heads = data_heads(&report);
    assert_eq!(heads.len(), 1, "one input, one chain: {report:#}");
    assert_eq!(heads[0]["last_offset"].as_u64(), Some(n), "the chain covers every line: {report:#}");
    let events = query(
        url,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT ingest_offset) AS offsets FROM events",
    );
    let dead = query(url, "SELECT count(*) AS n, count(DISTINCT ingest_offset) AS offsets FROM dead_letters");
    let expected_dead = n / 100;
    assert_eq!(events["n"].as_u64(), Some(n - expected_dead), "no event lost or doubled: {events}");
    assert_eq!(events["ids"], events["n"], "no event doubled: {events}");
    assert_eq!(events["offsets"], events["n"], "no line doubled: {events}");
    assert_eq!(dead["n"].as_u64(), Some(expected_dead), "dead letters: {dead}");
    assert_eq!(dead["offsets"], dead["n"], "{dead}");
    let pending =
        server.keys(&format!("{prefix}/")).into_iter().filter(|k| k.contains("/pending-")).collect::<Vec<_>>();
    assert!(pending.is_empty(), "interrupted writes left behind: {pending:?}");
}

#[test]
fn a_fifth_of_requests_faulted_still_archives_every_record_exactly_once() {
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.ndjson");
    const N: u64 = 4_000;
    write_events(&input, N as usize);
    // 20 % of requests faulted, the five faults alike; and the answers of the first three manifest entries
    // (conditional creates) lost after the server stored them.
    let plan = FaultPlan {
        seed: 16,
        rate: 0.2,
        stall: Duration::from_millis(500),
        lose_create_answers: 3,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&server.endpoint, plan);
    let summary = dir.path().join("summary.json");
    let (code, out, err) = vigil(&[
        "run",
        "--input",
        &format!("cloudtrail:{}", input.display()),
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &proxy.url(BUCKET, "faulted"),
        "--batch-rows",
        "200",
        "--summary-json",
        summary.to_str().expect("utf-8"),
        "--no-progress",
    ]);
    let counts = proxy.counts();
    eprintln!("proxy: {counts:?}");
    assert_eq!(code, 0, "the run completes through the faults: {out}{err}");
    for fault in Fault::ALL {
        assert!(counts.of(fault) > 0, "no {fault:?} was injected: {counts:?}");
    }
    let put_faults: u64 = counts.injected.iter().filter(|((_, m), _)| m == "PUT").map(|(_, n)| n).sum();
    assert!(put_faults >= 10, "writes were faulted: {counts:?}");
    assert!(counts.lost_create_answers >= 3, "{counts:?}");
    let faulted = counts.total() as f64 / counts.requests as f64;
    assert!((0.1..0.4).contains(&faulted), "about a fifth of {} requests faulted: {counts:?}", counts.requests);
    assert!(err.contains("answer was lost"), "the stored entries whose answer was lost are recognised: {err}");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("summary json");
    let input_summary = &summary["inputs"][0];
    assert_eq!(input_summary["events"].as_u64(), Some(N - N / 100), "{summary:#}");
    assert_eq!(input_summary["dead_letters"].as_u64(), Some(N / 100), "{summary:#}");
    assert_complete_and_verified(&server, "faulted", N);
}

#[test]
fn a_signed_run_through_faults_signs_exactly_what_it_archived() {
    // Digests and signed intents go through the same faulty store: a faulted write must neither break the
    // digest chain nor leave an entry unsigned.
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.ndjson");
    // 600 records in batches of 200: three manifest entries and the closing digest (conditional creates,
    // the first three of whose answers are lost after the server stored them).
    const N: u64 = 600;
    write_events(&input, N as usize);
    let key = dir.path().join("signing.key");
    let (code, public_pem, err) = vigil(&["keys", "generate", "--out", key.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let public = dir.path().join("signing.pub");
    std::fs::write(&public, public_pem).expect("write public key");
    let plan = FaultPlan {
        seed: 17,
        rate: 0.2,
        stall: Duration::from_millis(100),
        lose_create_answers: 3,
        ..FaultPlan::default()
    };
    let proxy = FaultProxy::start(&server.endpoint, plan);
    let (code, out, err) = vigil(&[
        "run",
        "--input",
        &format!("cloudtrail:{}", input.display()),
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &proxy.url(BUCKET, "signed"),
        "--batch-rows",
        "200",
        "--signing-key",
        key.to_str().expect("utf-8"),
        "--no-progress",
    ]);
    let counts = proxy.counts();
    assert_eq!(code, 0, "the run completes through the faults: {out}{err}");
    assert!(counts.lost_create_answers >= 3, "{counts:?}");
    assert!(out.contains("evidence signed: digest"), "{out}");
    assert_complete_and_verified(&server, "signed", N);
    let url = server.url("signed");
    let (code, out, err) =
        vigil(&["verify", "--evidence", &url, "--json", "--public-key", public.to_str().expect("utf-8")]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["authenticated"], true, "{report:#}");
}

/// `GET /metrics`, the counters summed over their labels.
fn scrape(addr: &str) -> BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut out = BTreeMap::new();
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return out };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let Some((_, body)) = response.split_once("\r\n\r\n") else { return out };
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let name = name.split('{').next().unwrap_or(name);
        *out.entry(name.to_string()).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// A `vigil run` in the background.
type Running = LoggedChild;

#[test]
fn a_20_second_outage_pauses_a_file_run_which_then_completes_losing_nothing() {
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.ndjson");
    const N: u64 = 5_000;
    write_events(&input, N as usize);
    let proxy = FaultProxy::start(&server.endpoint, FaultPlan::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.path().join("vigil.log");
    let input_flag = format!("cloudtrail:{}", input.display());
    let url = proxy.url(BUCKET, "outage");
    let child = vigil_command(&[
        "run",
        "--input",
        &input_flag,
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &url,
        "--batch-rows",
        "100",
        "--metrics-addr",
        &addr,
        "--no-progress",
    ])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("vigil starts");
    let mut run = Running { child, log };

    // A few batches in, the store goes away for 20 s.
    let start = Instant::now();
    while proxy.counts().creates < 5 {
        assert!(start.elapsed() < HUNG, "no batch archived: {}", run.log_text());
        assert!(run.child.try_wait().expect("wait").is_none(), "vigil ended early: {}", run.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.set_outage(true);
    let outage = Instant::now();
    let direct = server.url("outage");
    let mut read_at = Vec::new();
    let mut checked = 0;
    while outage.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_secs(1));
        assert!(run.child.try_wait().expect("wait").is_none(), "vigil ended during the outage: {}", run.log_text());
        let metrics = scrape(&addr);
        let claimed = metrics.get("vigil_events_archived_total").copied().unwrap_or(0.0)
            + metrics.get("vigil_dead_letters_total").copied().unwrap_or(0.0);
        read_at.push((outage.elapsed(), metrics.get("vigil_records_read_total").copied().unwrap_or(0.0)));
        // What vigil counts as archived is in the store: never more than the chain on the server covers.
        if outage.elapsed() > Duration::from_secs(3 + 10 * checked) {
            checked += 1;
            let (code, report) = verify(&direct);
            assert_eq!(code, 0, "what is on the server verifies during the outage: {report:#}");
            let durable = data_heads(&report).first().and_then(|h| h["last_offset"].as_f64()).unwrap_or(0.0);
            assert!(claimed <= durable, "vigil counts {claimed} records archived, the server holds {durable}");
        }
    }
    let counts = proxy.counts();
    proxy.set_outage(false);
    assert!(counts.refused > 0, "the outage refused vigil's requests: {counts:?}");
    // Input stopped: nothing more was read after the first seconds of the outage, and the end was not reached.
    let settled: Vec<f64> =
        read_at.iter().filter(|(t, _)| *t > Duration::from_secs(5)).map(|(_, read)| *read).collect();
    assert!(settled.len() >= 12, "{read_at:?}");
    assert!(settled.iter().all(|r| *r == settled[0]), "vigil kept reading during the outage: {read_at:?}");
    assert!(settled[0] < N as f64, "the outage began before the input was read: {read_at:?}");

    let start = Instant::now();
    let status = loop {
        if let Some(status) = run.child.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < HUNG, "vigil did not finish after the outage: {}", run.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = run.log_text();
    assert!(status.success(), "the run completes after the outage: {log}");
    assert!(log.contains("evidence store unavailable"), "the wait is logged: {log}");
    assert!(log.contains("evidence store answers again"), "the recovery is logged: {log}");
    eprintln!(
        "outage test: {:.1} s after the outage ended; proxy: {:?}",
        start.elapsed().as_secs_f64(),
        proxy.counts()
    );
    assert_complete_and_verified(&server, "outage", N);
}

/// Durable chain heads on the server: partition -> last offset archived.
fn durable_heads(url: &str) -> BTreeMap<i64, i64> {
    let (code, report) = verify(url);
    assert_eq!(code, 0, "what is on the server verifies: {report:#}");
    data_heads(&report)
        .into_iter()
        .filter_map(|h| Some((h["partition"].as_i64()?, h["last_offset"].as_i64()?)))
        .collect()
}

#[test]
fn a_30_second_outage_under_a_kafka_input_commits_no_offset_past_the_archive() {
    let Some(server) = S3Server::start() else { return };
    let Some(broker) = vigil_tests::kafka::Broker::start() else { return };
    const PARTITIONS: i32 = 2;
    const N: usize = 6_000;
    broker.create_topic("ct", PARTITIONS);
    let records = events(N);
    broker.produce("ct", PARTITIONS, &records[..2_000]);
    let proxy = FaultProxy::start(&server.endpoint, FaultPlan::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("vigil.log");
    let input = format!("cloudtrail:kafka://{}/ct?group=paused", broker.address);
    let (alerts, dlq) = (dir.path().join("alerts.ndjson"), dir.path().join("dlq.ndjson"));
    let child = vigil_command(&[
        "run",
        "--input",
        &input,
        "--rules",
        "pipelines/rules/soc2",
        "--evidence",
        &proxy.url(BUCKET, "kafka"),
        "--alerts",
        alerts.to_str().expect("utf-8"),
        "--dlq",
        dlq.to_str().expect("utf-8"),
        "--batch-rows",
        "200",
        "--batch-ms",
        "200",
        "--metrics-addr",
        &addr,
    ])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log file"))
    .spawn()
    .expect("vigil starts");
    let mut run = Running { child, log };

    // Records keep arriving, before, during and after the outage: 100 every 0.75 s.
    let producing = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            for chunk in records[2_000..].chunks(100) {
                broker.produce("ct", PARTITIONS, chunk);
                std::thread::sleep(Duration::from_millis(750));
            }
        });
        let start = Instant::now();
        while proxy.counts().creates < 4 {
            assert!(start.elapsed() < HUNG, "no batch archived: {}", run.log_text());
            assert!(run.child.try_wait().expect("wait").is_none(), "vigil ended early: {}", run.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy.set_outage(true);
        let outage = Instant::now();
        let direct = server.url("kafka");
        // Writes in flight when it began fail now; from here on nothing reaches the server.
        std::thread::sleep(Duration::from_secs(2));
        let heads = durable_heads(&direct);
        let mut samples = Vec::new();
        while outage.elapsed() < Duration::from_secs(30) {
            assert!(run.child.try_wait().expect("wait").is_none(), "vigil ended during the outage: {}", run.log_text());
            let committed = broker.committed("paused", "ct", PARTITIONS);
            let read = scrape(&addr).get("vigil_records_read_total").copied().unwrap_or(0.0);
            for (p, offset) in committed.iter().enumerate() {
                // The committed offset is the next one to read: at most one past the archived head.
                let head = heads.get(&(p as i64)).copied().unwrap_or(-1);
                assert!(*offset <= head + 1, "partition {p}: offset {offset} committed, archive holds up to {head}");
            }
            samples.push((outage.elapsed(), committed, read));
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(durable_heads(&direct), heads, "nothing reached the server during the outage");
        let counts = proxy.counts();
        proxy.set_outage(false);
        assert!(counts.refused > 0, "{counts:?}");
        producer.join().expect("producer");
        samples
    });
    // Input stopped: after the first seconds of the outage vigil read nothing more and committed nothing more.
    let settled: Vec<_> = producing.iter().filter(|(t, _, _)| *t > Duration::from_secs(5)).collect();
    // How many samples fit in the 25 s depends on the machine's load (each takes a scrape and a broker
    // query); a handful spread over them is enough to show that nothing moved.
    assert!(settled.len() >= 8, "{producing:?}");
    assert!(settled.iter().all(|(_, c, r)| *c == settled[0].1 && *r == settled[0].2), "{producing:?}");
    assert!(settled[0].2 < N as f64, "the outage began before every record was read: {producing:?}");

    // Once the store is back everything is archived and committed; then a SIGTERM ends the run cleanly.
    let ends = broker.end_offsets("ct", PARTITIONS);
    assert_eq!(ends.iter().sum::<i64>(), N as i64);
    let start = Instant::now();
    while broker.committed("paused", "ct", PARTITIONS) != ends {
        assert!(start.elapsed() < HUNG, "not everything was committed after the outage: {}", run.log_text());
        assert!(run.child.try_wait().expect("wait").is_none(), "vigil ended: {}", run.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let caught_up = start.elapsed();
    let kill = Command::new("kill").args(["-TERM", &run.child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = run.child.try_wait().expect("wait") {
            break status;
        }
        assert!(start.elapsed() < HUNG, "vigil did not stop: {}", run.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = run.log_text();
    assert!(status.success(), "{log}");
    assert!(log.contains("evidence store unavailable") && log.contains("evidence store answers again"), "{log}");
    eprintln!(
        "kafka outage test: caught up {:.1} s after the outage; proxy: {:?}",
        caught_up.as_secs_f64(),
        proxy.counts()
    );

    let url = server.url("kafka");
    assert_eq!(durable_heads(&url), ends.iter().enumerate().map(|(p, e)| (p as i64, e - 1)).collect());
    let rows = |table: &str| {
        query(
            &url,
            &format!(
                "SELECT count(*) AS n, count(DISTINCT concat(CAST(ingest_partition AS VARCHAR), '/', \
                 CAST(ingest_offset AS VARCHAR))) AS offsets FROM {table}"
            ),
        )
    };
    let (events, dead) = (rows("events"), rows("dead_letters"));
    assert_eq!(events["n"].as_u64(), Some((N - N / 100) as u64), "no event lost or doubled: {events}");
    assert_eq!(events["offsets"], events["n"], "{events}");
    assert_eq!(dead["n"].as_u64(), Some((N / 100) as u64), "{dead}");
    assert_eq!(dead["offsets"], dead["n"], "{dead}");
}
