//! Waiting out storage faults on the write path.
//!
//! Two layers. `object_store` retries each HTTP request a few times within seconds ([`request_retry`]:
//! 5xx answers, `SlowDown`, refused connections, and timeouts of requests that are safe to repeat). What
//! outlasts that comes here: [`patiently`] repeats the whole operation with capped exponential backoff
//! ([`Patience`]) for as long as the error is one that passes ([`transient`]: no answer, a reset, a
//! timeout, a 5xx, 429 or 408). The pipeline awaits the archive write of a batch before it reads the next
//! one (or, with overlapped writes, before it closes the next one), so while the store is down vigil stops
//! taking input, acknowledges nothing past the last durable range, and goes on by itself when the store
//! answers again. An error that does not pass (403, 404, a refused precondition, a bad request) fails at
//! once, as before.
//!
//! Repeating an operation is safe for everything the archive writes. Data files and pending intents are
//! plain PUTs of the same bytes to the same key (a repeat stores the same object again; every upload
//! carries its SHA-256 checksum, so a request cut short can never be stored as a truncated object, and
//! nothing is uploaded in parts). A manifest entry is created only if its key is free: when the first
//! attempt was stored but its answer was lost, the repeat finds the key taken and [`crate::Archive`]
//! compares what is there with what it wrote (same entry hash: it is ours, the commit is done), so a lost
//! answer can neither double a range nor be taken for a second writer. Deletes of pending intents are
//! idempotent.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::client::HttpError;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

/// How long an operation of the archive waits out a store that does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Wait before the first repeat; doubled after each failure.
    pub first_wait: Duration,
    /// Longest wait between two repeats.
    pub max_wait: Duration,
    /// Give up (return the error) once this much time has passed; `None`: never, the write path.
    pub give_up_after: Option<Duration>,
}

impl Patience {
    /// The pipeline's write path: repeat until the store answers (1 s, 2 s, 4 s, ... at most 10 s apart).
    pub const UNTIL_STORED: Patience =
        Patience { first_wait: Duration::from_secs(1), max_wait: Duration::from_secs(10), give_up_after: None };
    /// Reading commands (`verify`, `query`, `expire`): the same waits, for at most a minute.
    pub const BRIEF: Patience = Patience {
        first_wait: Duration::from_secs(1),
        max_wait: Duration::from_secs(10),
        give_up_after: Some(Duration::from_secs(60)),
    };
    /// Fail at the first error (tests).
    pub const NONE: Patience =
        Patience { first_wait: Duration::ZERO, max_wait: Duration::ZERO, give_up_after: Some(Duration::ZERO) };
}

impl Default for Patience {
    fn default() -> Self {
        Patience::UNTIL_STORED
    }
}

/// `object_store`'s own per-request retries: a few quick repeats for a blip (up to 4 repeats, 100 ms
/// doubling to at most 2 s, within 20 s); anything longer is [`patiently`]'s.
pub fn request_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(20),
    }
}

/// HTTP client settings of the S3 store: connect within 5 s, a whole request (upload included) within 60 s,
/// so a stalled request is abandoned and repeated instead of holding the pipeline.
pub fn client_options() -> ClientOptions {
    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(60))
}

/// Whether `error` may pass if the operation is repeated: the store did not answer (refused or reset
/// connection, timeout, a body cut short) or answered 5xx, 429 or 408. Local-disk errors and every
/// definite answer (not found, already exists, precondition, permission, other 4xx) do not.
pub fn transient(error: &object_store::Error) -> bool {
    let object_store::Error::Generic { store, source } = error else { return false };
    if *store == "LocalFileSystem" {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(e) = cause {
        if e.downcast_ref::<HttpError>().is_some() {
            return true; // transport: no (complete) answer
        }
        cause = e.source();
    }
    match answered_status(&error.to_string()) {
        Some(code) => code >= 500 || code == 429 || code == 408,
        None => true,
    }
}

/// Errors [`patiently`] can tell apart: those that may pass ([`transient`]) and those that do not.
pub trait MayPass: std::fmt::Display {
    /// Whether repeating the operation may succeed.
    fn may_pass(&self) -> bool;
}

impl MayPass for object_store::Error {
    fn may_pass(&self) -> bool {
        transient(self)
    }
}

impl MayPass for crate::Error {
    fn may_pass(&self) -> bool {
        matches!(self, crate::Error::Store { source, .. } if transient(source))
    }
}

/// The HTTP status of an answer as `object_store` words it ("... status code: 503 Service Unavailable").
fn answered_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// When the last warning about an unavailable store was logged (ms since the Unix epoch): one warning per
/// [`WARN_WINDOW`] for the whole process, however many writes are waiting.
static LAST_WARNING_MS: AtomicU64 = AtomicU64::new(0);
const WARN_WINDOW: Duration = Duration::from_secs(10);

fn warning_due() -> bool {
    let now = crate::now_us().max(0) as u64 / 1000;
    let last = LAST_WARNING_MS.load(Ordering::Relaxed);
    now.saturating_sub(last) >= WARN_WINDOW.as_millis() as u64
        && LAST_WARNING_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Failed attempts of store operations in this process that were retried (the error may pass).
static FAILED_ATTEMPTS: AtomicU64 = AtomicU64::new(0);
/// Operations failing right now (waiting out a transient error), and since when (ms since the Unix
/// epoch) the oldest stretch of failures began.
static FAILING: std::sync::Mutex<Failing> =
    std::sync::Mutex::new(Failing { operations: 0, since_ms: 0, last_error: String::new() });

struct Failing {
    operations: usize,
    since_ms: u64,
    last_error: String,
}

fn failing() -> std::sync::MutexGuard<'static, Failing> {
    FAILING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the store has been doing in this process (for readiness and the error counter of the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trouble {
    /// Failed attempts of store operations so far that were retried.
    pub failed_attempts: u64,
    /// Since when (ms since the Unix epoch) some operation has been failing and is still being retried.
    pub failing_since_ms: Option<u64>,
    /// The error that operation last got.
    pub last_error: Option<String>,
}

/// The store's trouble so far.
pub fn trouble() -> Trouble {
    let failing = failing();
    Trouble {
        failed_attempts: FAILED_ATTEMPTS.load(Ordering::Relaxed),
        failing_since_ms: (failing.operations > 0).then_some(failing.since_ms),
        last_error: (failing.operations > 0).then(|| failing.last_error.clone()),
    }
}

/// Marks one operation as failing until dropped (also when the operation is abandoned).
struct FailingOperation;

impl FailingOperation {
    fn start(error: &str) -> Self {
        let mut failing = failing();
        if failing.operations == 0 {
            failing.since_ms = crate::now_us().max(0) as u64 / 1000;
        }
        failing.operations += 1;
        failing.last_error = error.to_string();
        FailingOperation
    }
}

impl Drop for FailingOperation {
    fn drop(&mut self) {
        let mut failing = failing();
        failing.operations = failing.operations.saturating_sub(1);
    }
}

/// Runs `attempt` until it succeeds, fails with an error that is not [`transient`], or `patience` gives up.
/// While it waits it logs a warning (at most one per 10 s for the whole process) and, once it succeeds
/// again, how long the store was away. Every retried attempt is counted, and while it waits the
/// operation counts as failing ([`trouble`]).
pub async fn patiently<T, E, F, Fut>(
    patience: Patience,
    operation: &'static str,
    path: &Path,
    mut attempt: F,
) -> Result<T, E>
where
    E: MayPass,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut wait = patience.first_wait;
    let mut failures = 0u32;
    let mut failing: Option<FailingOperation> = None;
    loop {
        match attempt().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(
                        operation,
                        path = %path,
                        failures,
                        waited_s = start.elapsed().as_secs(),
                        "evidence store answers again; the write is durable and the pipeline goes on"
                    );
                }
                return Ok(value);
            }
            Err(error)
                if error.may_pass() && patience.give_up_after.is_none_or(|limit| start.elapsed() + wait <= limit) =>
            {
                failures += 1;
                FAILED_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
                match &failing {
                    None => failing = Some(FailingOperation::start(&error.to_string())),
                    Some(_) => self::failing().last_error = error.to_string(),
                }
                if warning_due() {
                    tracing::warn!(
                        operation,
                        path = %path,
                        failures,
                        waiting_s = start.elapsed().as_secs(),
                        retry_in_ms = wait.as_millis() as u64,
                        %error,
                        "evidence store unavailable: input paused, nothing past the last durable range is \
                         acknowledged; retrying until it answers"
                    );
                } else {
                    tracing::debug!(operation, path = %path, failures, %error, "evidence store still unavailable");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(patience.max_wait);
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: text.to_string().into() }
    }

    #[test]
    fn what_passes_and_what_does_not() {
        assert!(transient(&generic(
            "Error performing PUT in 20s - Server returned non-2xx status code: 503 Service Unavailable: <Code>SlowDown</Code>"
        )));
        assert!(transient(&generic("Server returned non-2xx status code: 500 Internal Server Error: ")));
        assert!(transient(&generic("Server returned non-2xx status code: 429 Too Many Requests")));
        assert!(!transient(&generic("Server returned non-2xx status code: 400 Bad Request: <Code>BadDigest</Code>")));
        assert!(transient(&generic("error sending request")));
        let local = object_store::Error::Generic { store: "LocalFileSystem", source: "disk full".into() };
        assert!(!transient(&local));
        let not_found = object_store::Error::NotFound { path: "x".into(), source: "404".into() };
        assert!(!transient(&not_found));
        let exists = object_store::Error::AlreadyExists { path: "x".into(), source: "412".into() };
        assert!(!transient(&exists));
    }

    #[tokio::test]
    async fn a_waiting_operation_counts_as_failing_and_its_attempts_are_counted() {
        let ms = Duration::from_millis;
        let patience = Patience { first_wait: ms(1), max_wait: ms(2), give_up_after: None };
        let before = trouble().failed_attempts;
        let calls = AtomicU32::new(0);
        let seen = std::sync::Mutex::new(Vec::new());
        let result = patiently(patience, "put", &Path::from("a/b"), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            seen.lock().unwrap().push(trouble());
            if n < 3 { Err(generic("Server returned non-2xx status code: 503 Service Unavailable")) } else { Ok(()) }
        })
        .await;
        assert!(result.is_ok());
        let seen = seen.into_inner().unwrap();
        // Other tests of this process may fail operations too: only what this one must have caused.
        assert!(seen[1..].iter().all(|t| t.failing_since_ms.is_some() && t.last_error.is_some()), "{seen:?}");
        assert!(trouble().failed_attempts >= before + 3);
    }

    #[tokio::test]
    async fn repeats_until_the_store_answers_then_gives_up_only_when_told() {
        let ms = Duration::from_millis;
        let forever = Patience { first_wait: ms(1), max_wait: ms(4), give_up_after: None };
        let calls = AtomicU32::new(0);
        let path = Path::from("a/b");
        let result = patiently(forever, "put", &path, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 12 { Err(generic("Server returned non-2xx status code: 503 Service Unavailable")) } else { Ok(n) }
        })
        .await;
        assert_eq!(result.unwrap(), 12, "every failure is waited out");

        calls.store(0, Ordering::SeqCst);
        let bounded = Patience { give_up_after: Some(ms(60)), max_wait: ms(20), ..forever };
        let result: object_store::Result<()> = patiently(bounded, "get", &path, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(generic("Server returned non-2xx status code: 500 Internal Server Error"))
        })
        .await;
        assert!(result.is_err());
        // Waits of 1 + 2 + 4 + 8 + 16 + 20 = 51 ms fit in 60 ms, the next 20 ms do not: 7 attempts at most.
        assert!((2..=7).contains(&calls.load(Ordering::SeqCst)), "{calls:?}");

        calls.store(0, Ordering::SeqCst);
        let result: object_store::Result<()> = patiently(forever, "put", &path, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(object_store::Error::PermissionDenied { path: "a/b".into(), source: "403".into() })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a definite refusal is not repeated");
    }
}
