//! A real S3-compatible server for tests: each [`S3Server`] is its own moto process (started by
//! `deploy/local/s3.sh` in a temporary directory, on a free loopback port) with a bucket that has Object Lock
//! enabled; [`S3Server::aws`] runs the AWS CLI against it, as an auditor or an attacker would.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::repo;

/// Test credentials (moto accepts any).
pub const CREDENTIALS: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "vigil-test"), ("AWS_SECRET_ACCESS_KEY", "vigil-test-secret"), ("AWS_REGION", "us-east-1")];

/// The bucket `start` creates.
pub const BUCKET: &str = "vigil-evidence";

/// A moto server of one test.
pub struct S3Server {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn script() -> PathBuf {
    repo().join("deploy/local/s3.sh")
}

impl S3Server {
    /// Starts a server, or returns `None` (after saying so) when moto is not installed and
    /// `VIGIL_REQUIRE_S3` is unset. `scripts/test.sh` installs it and sets `VIGIL_REQUIRE_S3=1`.
    pub fn start() -> Option<S3Server> {
        if !crate::service_installed("s3.sh", "VIGIL_REQUIRE_S3", "S3-compatible server (moto)") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = S3Server { dir, endpoint: String::new() };
        let out = server.command("start").output().expect("s3.sh runs");
        assert!(out.status.success(), "s3.sh start failed: {}", String::from_utf8_lossy(&out.stderr));
        server.endpoint = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(server)
    }

    fn command(&self, verb: &str) -> Command {
        let mut cmd = Command::new(script());
        cmd.arg(verb).env("VIGIL_S3_DIR", self.dir.path());
        for (k, v) in CREDENTIALS {
            cmd.env(k, v);
        }
        cmd
    }

    /// `s3://BUCKET/PREFIX?endpoint=...` for vigil.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}?endpoint={}", self.endpoint)
    }

    /// Runs the AWS CLI against the server.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.command("aws").args(args).output().expect("s3.sh aws runs")
    }

    /// Like [`S3Server::aws`], asserting success; returns stdout.
    pub fn aws_ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys below `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out =
            self.aws_ok(&["s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", prefix, "--output", "json"]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let mut keys: Vec<String> = json["Contents"]
            .as_array()
            .map(|c| c.iter().filter_map(|o| o["Key"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.command("stop").output();
    }
}

/// Runs `vigil` (the binary at `bin`, from the repository root) with the test credentials: (exit code,
/// stdout, stderr).
pub fn run_vigil(bin: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(bin);
    cmd.current_dir(repo()).args(args);
    for (k, v) in CREDENTIALS {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("vigil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Archives the CloudTrail and Kubernetes audit fixtures with the SOC 2 pack under `prefix` (40 records a
/// batch, so chains have several entries); returns the archive's URL.
pub fn archive_fixtures(bin: &str, server: &S3Server, prefix: &str) -> String {
    let url = server.url(prefix);
    let (code, out, err) = run_vigil(
        bin,
        &[
            "run",
            "--input",
            "cloudtrail:fixtures/cloudtrail/stratus-detonations.ndjson",
            "--input",
            "k8s_audit:fixtures/k8s_audit",
            "--rules",
            "pipelines/rules/soc2",
            "--evidence",
            &url,
            "--batch-rows",
            "40",
        ],
    );
    assert_eq!(code, 0, "run to S3 failed: {out}{err}");
    url
}

/// `vigil verify --json` of `url`: (exit code, report).
pub fn verify_json(bin: &str, url: &str) -> (i32, serde_json::Value) {
    let (code, out, err) = run_vigil(bin, &["verify", "--evidence", url, "--json"]);
    let json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("verify --json: {e}: {out}{err}"));
    (code, json)
}
