//! The `/metrics` endpoint: a minimal HTTP/1.1 server on tokio, enough for Prometheus, curl, a browser
//! and Kubernetes probes. `GET /metrics` answers the text format; `GET /healthz` 200 while the pipeline
//! is alive and 503 naming what is stuck; `GET /readyz` 200 when it is ready and 503 with every reason
//! it is not (see [`crate::Health`]); `GET /` a pointer to them; anything else 404 or 405.
//!
//! It survives a hostile network ([`Limits`]): the request head must arrive within 5 s of the
//! connection (a slow-loris sender is cut off), it may be at most 8 KiB (else 431 and close), the answer
//! must be taken within 10 s, and at most 64 connections are open at once. A connection over the cap
//! first closes the oldest one that has not yet sent its request (so idle sockets cannot lock a scraper
//! out); when every open connection is being answered, the new one is closed at once. After an accept
//! error (`EMFILE`, out of memory, ...) the loop sleeps, 10 ms doubling to 1 s, instead of spinning.
//! None of this logs per connection: the counts go into at most one warning per minute. Binding a
//! non-loopback address logs a warning at start. The probes go through the same limits as scrapes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::Metrics;

/// What the endpoint tolerates from one connection, and how often it may log about trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request head (request line and headers) must be complete this long after the connection.
    pub head_timeout: Duration,
    /// Writing the answer must be done in this long (a client that does not read is cut off).
    pub write_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// The longest request head read; a longer one is answered 431 and closed.
    pub max_request_bytes: usize,
    /// At most one warning about refused, timed-out or failed connections per this interval.
    pub log_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 64,
            max_request_bytes: 8 << 10,
            log_interval: Duration::from_secs(60),
        }
    }
}

/// The first pause after a failed accept, doubled after each failure in a row up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// The longest pause after failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Binds `addr` and serves `metrics` with the default [`Limits`] until the task is dropped. Returns the
/// bound address (port 0 picks a free one) once listening, so callers can print it.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, metrics, Limits::default()).await
}

/// [`serve`] with other limits.
pub async fn serve_with(
    addr: SocketAddr,
    metrics: Metrics,
    limits: Limits,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(%bound, "metrics endpoint listening: GET /metrics, /healthz, /readyz");
    if !bound.ip().is_loopback() {
        tracing::warn!(
            %bound,
            "the metrics endpoint is bound to a non-loopback address: anyone who can reach it reads the metrics \
             (topics, rule names, rates); bind 127.0.0.1 unless a scraper on another host needs it, and firewall it"
        );
    }
    let server = Arc::new(Server {
        metrics,
        limits,
        open: AtomicUsize::new(0),
        idle: Mutex::default(),
        next_id: AtomicU64::new(0),
        trouble: Trouble::new(limits.log_interval),
    });
    let task = tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = MIN_BACKOFF;
                    server.admit(stream);
                }
                Err(e) => {
                    server.trouble.note(Problem::AcceptFailed, Some(&e));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    Ok((bound, task))
}

/// What went wrong with a connection (counted, logged at most once per interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// Closed at once: the cap was reached and every open connection was being answered.
    OverCap,
    /// Closed to make room: it had not sent its request yet when the cap was reached.
    Evicted,
    /// The request head did not arrive in time.
    HeadTimeout,
    /// The request head was too long.
    TooLarge,
    /// Reading or writing failed, or the answer was not taken in time.
    Io,
    /// `accept` failed.
    AcceptFailed,
}

const PROBLEMS: [(Problem, &str); 6] = [
    (Problem::OverCap, "closed over the connection cap"),
    (Problem::Evicted, "idle closed to make room"),
    (Problem::HeadTimeout, "timed out before a complete request"),
    (Problem::TooLarge, "request too large"),
    (Problem::Io, "read or write failed"),
    (Problem::AcceptFailed, "accept failed"),
];

/// Counts problems and logs them together, at most once per interval.
#[derive(Debug)]
struct Trouble {
    interval: Duration,
    state: Mutex<TroubleState>,
}

#[derive(Debug, Default)]
struct TroubleState {
    last_log: Option<Instant>,
    counts: [u64; PROBLEMS.len()],
    last_error: Option<String>,
}

impl Trouble {
    fn new(interval: Duration) -> Self {
        Trouble { interval, state: Mutex::default() }
    }

    fn note(&self, problem: Problem, error: Option<&std::io::Error>) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = PROBLEMS.iter().position(|(p, _)| *p == problem) {
            state.counts[i] += 1;
        }
        if let Some(e) = error {
            state.last_error = Some(e.to_string());
        }
        let now = Instant::now();
        if state.last_log.is_some_and(|t| now.duration_since(t) < self.interval) {
            return;
        }
        let counts: Vec<String> = PROBLEMS
            .iter()
            .zip(state.counts)
            .filter(|(_, n)| *n > 0)
            .map(|((_, what), n)| format!("{n} {what}"))
            .collect();
        let since = match state.last_log {
            Some(t) => format!("in the last {} s", now.duration_since(t).as_secs()),
            None => "so far".to_string(),
        };
        tracing::warn!(
            last_error = state.last_error.as_deref().unwrap_or(""),
            "metrics endpoint: connections {since}: {}; still serving (at most one such warning per {} s)",
            counts.join(", "),
            self.interval.as_secs()
        );
        *state = TroubleState { last_log: Some(now), ..TroubleState::default() };
    }
}

/// A connection that has not sent its request yet and may be closed to make room.
struct Idle {
    id: u64,
    close: Arc<Notify>,
}

struct Server {
    metrics: Metrics,
    limits: Limits,
    /// Connections open now.
    open: AtomicUsize,
    /// Connections still waiting for their request head, oldest first.
    idle: Mutex<VecDeque<Idle>>,
    next_id: AtomicU64,
    trouble: Trouble,
}

impl Server {
    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes an accepted connection, making room by closing the oldest idle one when at the cap.
    fn admit(self: &Arc<Self>, stream: TcpStream) {
        if self.open.load(Ordering::Acquire) >= self.limits.max_connections {
            match self.idle().pop_front() {
                Some(oldest) => {
                    oldest.close.notify_one();
                    self.trouble.note(Problem::Evicted, None);
                }
                None => {
                    // Every open connection is being answered: close this one at once.
                    drop(stream);
                    self.trouble.note(Problem::OverCap, None);
                    return;
                }
            }
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.idle().push_back(Idle { id, close: close.clone() });
        let server = self.clone();
        tokio::spawn(async move {
            let outcome = server.connection(stream, id, &close).await;
            server.idle().retain(|i| i.id != id);
            server.open.fetch_sub(1, Ordering::AcqRel);
            if let Err(problem) = outcome {
                server.trouble.note(problem, None);
            }
        });
    }

    async fn connection(&self, mut stream: TcpStream, id: u64, close: &Notify) -> Result<(), Problem> {
        let head = tokio::select! {
            head = tokio::time::timeout(self.limits.head_timeout, read_head(&mut stream, self.limits.max_request_bytes)) => head,
            () = close.notified() => return Err(Problem::Evicted),
        };
        // From here on the connection is being answered: not closed to make room.
        self.idle().retain(|i| i.id != id);
        let answer = match head {
            Err(_) => return Err(Problem::HeadTimeout),
            Ok(Err(_)) => return Err(Problem::Io),
            Ok(Ok(Head::Closed)) => return Ok(()),
            Ok(Ok(Head::TooLarge)) => {
                let answer = Answer::text("431 Request Header Fields Too Large", "request too large\n");
                let _ = tokio::time::timeout(self.limits.write_timeout, answer.write(&mut stream, true)).await;
                return Err(Problem::TooLarge);
            }
            Ok(Ok(Head::Request(line))) => line,
        };
        let (answer, with_body) = route(&answer, &self.metrics);
        match tokio::time::timeout(self.limits.write_timeout, answer.write(&mut stream, with_body)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Problem::Io),
        }
    }
}

/// What reading a request head gave.
enum Head {
    /// The request line.
    Request(String),
    /// The client closed before sending anything.
    Closed,
    /// Longer than the limit.
    TooLarge,
}

async fn read_head(stream: &mut TcpStream, max: usize) -> std::io::Result<Head> {
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            if request.is_empty() {
                return Ok(Head::Closed);
            }
            break;
        }
        request.extend_from_slice(&buf[..n]);
        if request.windows(4).any(|w| w == b"\r\n\r\n") || request.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if request.len() > max {
            return Ok(Head::TooLarge);
        }
    }
    let line = request.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    Ok(Head::Request(String::from_utf8_lossy(line).into_owned()))
}

struct Answer {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Answer {
    fn text(status: &'static str, body: &str) -> Self {
        Answer { status, content_type: "text/plain; charset=utf-8", body: body.to_string() }
    }

    async fn write(&self, stream: &mut TcpStream, with_body: bool) -> std::io::Result<()> {
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        if with_body {
            stream.write_all(self.body.as_bytes()).await?;
        }
        stream.shutdown().await
    }
}

/// The answer to a request line, and whether it carries a body (not for `HEAD`).
fn route(line: &str, metrics: &Metrics) -> (Answer, bool) {
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let probe = |outcome: Result<String, String>| match outcome {
        Ok(body) => Answer::text("200 OK", &body),
        Err(body) => Answer::text("503 Service Unavailable", &body),
    };
    let answer = match (method, path) {
        ("GET" | "HEAD", "/metrics") => Answer {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics.render(),
        },
        ("GET" | "HEAD", "/healthz") => probe(metrics.health().liveness()),
        ("GET" | "HEAD", "/readyz") => probe(metrics.health().readiness()),
        ("GET" | "HEAD", "/") => Answer::text("200 OK", "vigil: /metrics, /healthz (alive), /readyz (ready)\n"),
        ("GET" | "HEAD", _) => Answer::text("404 Not Found", "not found: try /metrics, /healthz or /readyz\n"),
        _ => Answer::text("405 Method Not Allowed", "only GET\n"),
    };
    (answer, method != "HEAD")
}
