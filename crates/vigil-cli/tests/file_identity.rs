//! Input files as an attacker or an accident shapes them, through the `vigil` binary: a file whose first
//! 4 KiB equal an archived file's (plain, gzip, stdin), an appended file, oversized records and documents,
//! and a directory with a symlink loop. Each run must read every record once, keep every byte, reconcile
//! records and bytes, and leave an archive that `vigil verify` accepts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vigil_tests::{files_below, read_kind, repo};

fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.current_dir(repo());
    cmd
}

/// The fixture's access-log lines.
fn lines() -> Vec<String> {
    std::fs::read_to_string(repo().join("fixtures/apache_combined/elastic-apache-head1000.log"))
        .expect("fixture")
        .lines()
        .map(str::to_string)
        .collect()
}

fn text(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

/// The output of one run.
struct Run {
    code: i32,
    output: String,
    summary: serde_json::Value,
}

impl Run {
    fn input(&self, i: usize) -> &serde_json::Value {
        &self.summary["inputs"][i]
    }

    fn read(&self) -> u64 {
        self.input(0)["records_read"].as_u64().expect("records_read")
    }

    fn already(&self) -> u64 {
        self.input(0)["already_archived"].as_u64().expect("already_archived")
    }

    fn identity(&self) -> String {
        self.input(0)["ingest_source"].as_str().expect("ingest_source").to_string()
    }
}

/// Runs `vigil run` over `input` (`FORMAT:PATH`, or `FORMAT:-` with `stdin`) into `out/evidence`.
fn run(out: &Path, input: &str, stdin: Option<&[u8]>, extra: &[&str]) -> Run {
    let summary_path = out.join("summary.json");
    let _ = std::fs::remove_file(&summary_path);
    let mut child = vigil()
        .args(["run", "--input", input, "--rules", "pipelines/rules/soc2", "--no-progress", "--threads", "2"])
        .args(extra)
        .arg("--evidence")
        .arg(out.join("evidence"))
        .arg("--alerts")
        .arg(out.join("alerts.ndjson"))
        .arg("--dlq")
        .arg(out.join("dlq.ndjson"))
        .arg("--summary-json")
        .arg(&summary_path)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    if let Some(bytes) = stdin {
        child.stdin.take().expect("stdin").write_all(bytes).expect("write stdin");
    }
    let result = child.wait_with_output().expect("vigil ends");
    let output = format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
    let summary = std::fs::read(&summary_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    Run { code: result.status.code().unwrap_or(-1), output, summary }
}

fn verify(evidence: &Path) -> (i32, String) {
    let out = vigil().args(["verify", "--evidence"]).arg(evidence).output().expect("verify runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn assert_clean(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}", run.output);
    assert!(!run.output.contains("MISMATCH"), "{what}: {}", run.output);
    assert!(
        run.output.contains("+ kept in dead letters"),
        "{what}: the byte reconciliation is printed: {}",
        run.output
    );
}

#[test]
fn a_file_with_an_archived_files_first_4_kib_is_a_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let all = lines();
    let a_lines: Vec<String> = all[..100].to_vec();
    let b_lines: Vec<String> = all[..60].iter().chain(&all[300..400]).cloned().collect();
    let (a, b) = (out.join("a.log"), out.join("b.log"));
    std::fs::write(&a, text(&a_lines)).expect("write a");
    std::fs::write(&b, text(&b_lines)).expect("write b");
    assert_eq!(text(&a_lines).as_bytes()[..4096], text(&b_lines).as_bytes()[..4096], "the first 4 KiB collide");
    let input = |p: &Path| format!("apache_combined:{}", p.display());

    let first = run(out, &input(&a), None, &[]);
    assert_clean(&first, "a");
    assert_eq!(first.read(), 100);
    let a_id = first.identity();

    // Before: b was taken for a, 100 of its lines "already archived" and the rest never read.
    let second = run(out, &input(&b), None, &[]);
    assert_clean(&second, "b");
    assert_eq!((second.read(), second.already()), (160, 0), "{}", second.output);
    let b_id = second.identity();
    assert!(b_id.starts_with(&format!("{a_id}-")) && b_id.len() == a_id.len() + 9, "{a_id} / {b_id}");
    let events = read_kind(&out.join("evidence"), "events").expect("events");
    assert_eq!(events.num_rows() as u64, 100 + 160);
    let (code, report) = verify(&out.join("evidence"));
    assert_eq!(code, 0, "{report}");

    // Each file is still recognised as itself: nothing is read again.
    let again = run(out, &input(&a), None, &[]);
    assert_eq!((again.read(), again.already(), again.identity()), (0, 100, a_id.clone()));
    let again = run(out, &input(&b), None, &[]);
    assert_eq!((again.read(), again.already(), again.identity()), (0, 160, b_id.clone()));

    // A third colliding file, gzip-compressed: checked on its decompressed content, a third identity.
    let c_lines: Vec<String> = all[..60].iter().chain(&all[500..550]).cloned().collect();
    let c = out.join("c.log.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&c).expect("create"), flate2::Compression::fast());
    gz.write_all(text(&c_lines).as_bytes()).expect("gzip");
    gz.finish().expect("gzip end");
    let third = run(out, &input(&c), None, &[]);
    assert_clean(&third, "c.gz");
    assert_eq!((third.read(), third.already()), (110, 0));
    assert!(third.identity().starts_with(&a_id) && third.identity() != a_id && third.identity() != b_id);

    // Appending to a still continues its chain.
    let appended: Vec<String> = a_lines.iter().chain(&all[700..710]).cloned().collect();
    std::fs::write(&a, text(&appended)).expect("append");
    let fourth = run(out, &input(&a), None, &[]);
    assert_clean(&fourth, "appended a");
    assert_eq!((fourth.read(), fourth.already(), fourth.identity()), (10, 100, a_id));

    let events = read_kind(&out.join("evidence"), "events").expect("events");
    assert_eq!(events.num_rows() as u64, 100 + 160 + 110 + 10);
    let (code, report) = verify(&out.join("evidence"));
    assert_eq!(code, 0, "{report}");
}

#[test]
fn stdin_with_an_archived_streams_first_4_kib_is_a_new_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let all = lines();
    let a = text(&all[..100]);
    let b = text(&all[..60].iter().chain(&all[300..400]).cloned().collect::<Vec<_>>());
    let first = run(out, "apache_combined:-", Some(a.as_bytes()), &[]);
    assert_clean(&first, "stdin a");
    let second = run(out, "apache_combined:-", Some(b.as_bytes()), &[]);
    assert_clean(&second, "stdin b");
    assert_eq!((second.read(), second.already()), (160, 0), "{}", second.output);
    assert_ne!(second.identity(), first.identity());
    let again = run(out, "apache_combined:-", Some(a.as_bytes()), &[]);
    assert_eq!((again.read(), again.already(), again.identity()), (0, 100, first.identity()));
    let (code, report) = verify(&out.join("evidence"));
    assert_eq!(code, 0, "{report}");
}

fn write_config(out: &Path, input: &Path, max_record_bytes: usize, max_document_bytes: usize) -> PathBuf {
    let config = format!(
        "[pipeline]\nthreads = 2\nmax_record_bytes = {max_record_bytes}\nmax_document_bytes = {max_document_bytes}\n\n\
         [[inputs]]\nformat = \"cloudtrail\"\npath = \"{}\"\n\n[rules]\ndirs = [\"{}\"]\n\n\
         [evidence]\nurl = \"{}\"\n\n[alerts]\npath = \"{}\"\n\n[dead_letters]\npath = \"{}\"\n",
        input.display(),
        repo().join("pipelines/rules/soc2").display(),
        out.join("evidence").display(),
        out.join("alerts.ndjson").display(),
        out.join("dlq.ndjson").display(),
    );
    let path = out.join("vigil.toml");
    std::fs::write(&path, config).expect("config");
    path
}

#[test]
fn oversized_records_and_documents_are_kept_whole_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let input = out.join("in");
    std::fs::create_dir(&input).expect("mkdir");
    // 1: a JSON document (a bare array of 4 KB) over max_document_bytes.
    let doc = std::fs::read(repo().join("fixtures/cloudtrail/stratus-iam-create-admin-user.array.json")).expect("doc");
    std::fs::write(input.join("1-document.json"), &doc).expect("write");
    // 2: NDJSON with a 300 KB record (valid JSON) between two ordinary ones.
    let ndjson =
        std::fs::read_to_string(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson")).expect("ndjson");
    let small: Vec<&str> = ndjson.lines().filter(|l| l.len() < 4000).take(2).collect();
    let huge = format!(r#"{{"eventVersion":"1.08","padding":"{}"}}"#, "x".repeat(300_000));
    std::fs::write(input.join("2-huge-line.ndjson"), format!("{}\n{huge}\n{}\n", small[0], small[1])).expect("write");
    // 3: an ordinary file after them, which must still be read.
    std::fs::copy(repo().join("fixtures/cloudtrail/stratus-detonations.ndjson"), input.join("3-after.ndjson"))
        .expect("copy");
    let config = write_config(out, &input, 64 << 10, 2048);

    let summary_path = out.join("summary.json");
    let result = vigil()
        .args(["run", "--no-progress", "--config"])
        .arg(&config)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .expect("vigil runs");
    let output = format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
    assert!(result.status.success(), "{output}");
    assert!(!output.contains("MISMATCH"), "{output}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("json");
    let inputs = summary["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 3, "every file was read: {summary:#}");
    let field = |i: usize, f: &str| inputs[i][f].as_u64().unwrap_or_else(|| panic!("{f}: {summary:#}"));
    // The document: one dead letter holding all of it.
    assert_eq!((field(0, "records_read"), field(0, "dead_letters")), (1, 1));
    assert_eq!((field(0, "bytes_read"), field(0, "dead_letter_bytes")), (doc.len() as u64, doc.len() as u64));
    // The huge line: one dead letter, kept whole; the two others are events.
    assert_eq!((field(1, "records_read"), field(1, "events"), field(1, "dead_letters")), (3, 2, 1));
    assert_eq!(field(1, "dead_letter_bytes"), huge.len() as u64);
    assert_eq!(field(1, "bytes_read"), field(1, "event_bytes") + field(1, "dead_letter_bytes"));
    assert_eq!(field(2, "records_read"), ndjson.lines().filter(|l| !l.trim().is_empty()).count() as u64);
    for i in 0..3 {
        assert_eq!(field(i, "bytes_read"), field(i, "event_bytes") + field(i, "dead_letter_bytes"), "{summary:#}");
    }

    // The blobs hold the bytes whole, and the dead-letter rows name them.
    let evidence = out.join("evidence");
    let blobs: Vec<Vec<u8>> =
        files_below(&evidence.join("dead_letters/blobs")).iter().map(|p| std::fs::read(p).expect("blob")).collect();
    assert_eq!(blobs.len(), 2);
    assert!(blobs.contains(&doc) && blobs.contains(&huge.clone().into_bytes()));
    let dlq = std::fs::read_to_string(out.join("dlq.ndjson")).expect("dlq");
    assert_eq!(dlq.matches("\"too_large\"").count(), 2, "{dlq}");
    assert!(dlq.contains("dead_letters/blobs/"), "{dlq}");

    let (code, report) = verify(&evidence);
    assert_eq!(code, 0, "{report}");
    // An auditor still queries the dead letters (the blobs are not Parquet and are not in the table).
    let query = vigil()
        .args(["query", "--evidence"])
        .arg(&evidence)
        .args(["--format", "csv", "SELECT reason_code, count(*) AS n FROM dead_letters GROUP BY 1 ORDER BY 1"])
        .output()
        .expect("query runs");
    let text = String::from_utf8_lossy(&query.stdout);
    assert!(query.status.success(), "{text}{}", String::from_utf8_lossy(&query.stderr));
    assert!(text.contains("too_large,2"), "{text}");

    // A blob changed afterwards is caught.
    let blob = files_below(&evidence.join("dead_letters/blobs")).remove(0);
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[10] ^= 1;
    std::fs::write(&blob, bytes).expect("tamper");
    let (code, report) = verify(&evidence);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("file_hash_mismatch"), "{report}");
}

#[cfg(unix)]
#[test]
fn a_directory_walk_does_not_follow_a_symlink_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let input = out.join("logs");
    std::fs::create_dir_all(input.join("sub")).expect("mkdir");
    std::fs::write(input.join("sub/x.log"), text(&lines()[..50])).expect("write");
    std::os::unix::fs::symlink(".", input.join("sub/loop")).expect("symlink");
    std::os::unix::fs::symlink("sub/x.log", input.join("x-again.log")).expect("symlink");
    let result = run(out, &format!("apache_combined:{}", input.display()), None, &[]);
    assert_clean(&result, "walk");
    assert_eq!(result.summary["inputs"].as_array().map(Vec::len), Some(1), "{}", result.output);
    assert_eq!(result.read(), 50);
    assert!(result.output.contains("symbolic link") && result.output.contains("loop"), "{}", result.output);
    assert!(result.output.contains("x-again.log"), "{}", result.output);
}

/// On S3 with Object Lock: an oversized record is stored whole (in parts when over 8 MiB), `verify` hashes
/// it, and a rerun finds the file's chain by its committed content.
#[test]
fn oversized_records_on_s3_are_stored_whole_in_parts() {
    let Some(server) = vigil_tests::s3::S3Server::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.ndjson");
    let small = r#"{"eventVersion":"1.08","eventName":"X"}"#;
    let medium = format!(r#"{{"padding":"{}"}}"#, "m".repeat(5 << 20));
    let large = format!(r#"{{"padding":"{}"}}"#, "l".repeat(20 << 20));
    std::fs::write(&file, format!("{small}\n{medium}\n{large}\n{small}\n")).expect("write");
    let url = server.url("big");
    let with_credentials = |cmd: &mut Command| {
        for (k, v) in vigil_tests::s3::CREDENTIALS {
            cmd.env(k, v);
        }
    };
    let run_once = || {
        let mut cmd = vigil();
        with_credentials(&mut cmd);
        let summary = dir.path().join("summary.json");
        let out = cmd
            .args(["run", "--no-progress", "--rules", "pipelines/rules/soc2", "--evidence", &url, "--input"])
            .arg(format!("cloudtrail:{}", file.display()))
            .arg("--summary-json")
            .arg(&summary)
            .output()
            .expect("vigil runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && !text.contains("MISMATCH"), "{text}");
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&summary).expect("summary")).expect("json")
    };
    let first = run_once();
    let input = &first["inputs"][0];
    // The two small records are no CloudTrail events either: every record is a dead letter, whole.
    assert_eq!((input["records_read"].as_u64(), input["dead_letters"].as_u64()), (Some(4), Some(4)));
    assert_eq!(input["dead_letter_bytes"].as_u64(), Some((2 * small.len() + medium.len() + large.len()) as u64));
    let keys = server.keys("big/dead_letters/blobs/");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for (key, bytes) in keys.iter().zip([&medium, &large]) {
        let head = server.aws_ok(&["s3api", "head-object", "--bucket", vigil_tests::s3::BUCKET, "--key", key]);
        assert!(head.contains(&format!("\"ContentLength\": {}", bytes.len())), "{key}: {head}");
    }
    let mut cmd = vigil();
    with_credentials(&mut cmd);
    let out = cmd.args(["verify", "--json", "--evidence", &url]).output().expect("verify runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    // moto (5.2) does not apply a bucket's default retention to multipart uploads (S3 does): the large
    // blob, stored in parts, is named `retention_missing` there, and nothing else may be found.
    let findings = report["findings"].as_array().expect("findings");
    for f in findings {
        let multipart_blob = f["kind"] == "retention_missing"
            && f["object"].as_str().is_some_and(|o| o.starts_with("dead_letters/blobs/"));
        assert!(multipart_blob, "{report:#}");
    }
    assert!(findings.len() <= 1, "{report:#}");
    let again = run_once();
    assert_eq!(
        (again["inputs"][0]["records_read"].as_u64(), again["inputs"][0]["already_archived"].as_u64()),
        (Some(0), Some(4))
    );
}
