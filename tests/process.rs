//! A `vigil` process a test runs in the background: its stderr goes to a log file, it is killed when the
//! test ends, and a failing test prints the log's last lines.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Generous bound on any one wait before a test is declared hung (not a speed check).
pub const HUNG: Duration = Duration::from_secs(300);

/// A child process with its log file.
pub struct LoggedChild {
    /// The process.
    pub child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl LoggedChild {
    /// Waits for it to exit, at most [`HUNG`].
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_within(HUNG)
    }

    /// Writes `bytes` to its stdin (which must be piped) and flushes.
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin piped");
        stdin.write_all(bytes).expect("vigil reads stdin");
        stdin.flush().expect("flush");
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends it SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for it to end; past `limit` it is killed and the test fails with its log.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("vigil did not end; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of vigil's log ---\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}
