//! A fault-injecting HTTP proxy on loopback, put between vigil and the S3 server (moto) in tests.
//!
//! Every connection carries one request: the proxy reads its head, asks for `Connection: close` upstream
//! and decides, with a seeded generator (the same seed gives the same sequence of decisions), whether to
//! fault it and how:
//!
//! | fault | what the client sees | reached the server? |
//! | --- | --- | --- |
//! | [`Fault::InternalError`] | `500` with an S3 `InternalError` XML body | no |
//! | [`Fault::SlowDown`] | `503` with an S3 `SlowDown` XML body | no |
//! | [`Fault::ResetRequest`] | the connection reset after half the body was sent | no |
//! | [`Fault::ResetResponse`] | the connection reset instead of the answer | yes: the request took effect |
//! | [`Fault::Stall`] | the answer after [`FaultPlan::stall`] | yes |
//!
//! [`FaultProxy::set_outage`] refuses everything (connections reset at once) until it is turned off, and
//! [`FaultPlan::lose_create_answers`] loses the answers of the first N conditional creates
//! (`If-None-Match: *`, how vigil writes manifest entries): the request is stored and the client cannot
//! know it. Everything injected is counted ([`FaultProxy::counts`]), so a test can assert that the faults
//! really happened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fault the proxy injects into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `500 InternalError`, without forwarding.
    InternalError,
    /// `503 SlowDown`, without forwarding.
    SlowDown,
    /// Reset mid-request, without forwarding.
    ResetRequest,
    /// Forwarded and answered by the server; the client gets a reset instead of the answer.
    ResetResponse,
    /// Held for [`FaultPlan::stall`], then forwarded.
    Stall,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 5] =
        [Fault::InternalError, Fault::SlowDown, Fault::ResetRequest, Fault::ResetResponse, Fault::Stall];
}

/// What the proxy injects.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seed of the decisions.
    pub seed: u64,
    /// Share of requests faulted, `0.0..=1.0`.
    pub rate: f64,
    /// The faults drawn from (uniformly) when a request is faulted.
    pub faults: Vec<Fault>,
    /// How long a [`Fault::Stall`] holds a request.
    pub stall: Duration,
    /// Lose the answers of this many conditional creates (`If-None-Match: *`) first, whatever the rate.
    pub lose_create_answers: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            seed: 1,
            rate: 0.0,
            faults: Fault::ALL.to_vec(),
            stall: Duration::from_secs(2),
            lose_create_answers: 0,
        }
    }
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests read (a head arrived), outage refusals included.
    pub requests: u64,
    /// Requests passed to the server and answered to the client unchanged (stalls included).
    pub forwarded: u64,
    /// Faults injected, by kind and HTTP method.
    pub injected: BTreeMap<(Fault, String), u64>,
    /// Conditional creates (`If-None-Match: *`: manifest entries) seen.
    pub creates: u64,
    /// Conditional creates whose answer was lost ([`FaultPlan::lose_create_answers`] and random
    /// [`Fault::ResetResponse`] on them).
    pub lost_create_answers: u64,
    /// Connections refused during an outage.
    pub refused: u64,
}

impl FaultCounts {
    /// Faults of one kind, any method.
    pub fn of(&self, fault: Fault) -> u64 {
        self.injected.iter().filter(|((f, _), _)| *f == fault).map(|(_, n)| n).sum()
    }

    /// Faults of every kind.
    pub fn total(&self) -> u64 {
        self.injected.values().sum()
    }
}

struct State {
    upstream: SocketAddr,
    plan: Mutex<FaultPlan>,
    rng: Mutex<u64>,
    outage: AtomicBool,
    requests: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
    creates_seen: AtomicU64,
    lost_create_answers: AtomicU64,
    injected: Mutex<BTreeMap<(Fault, String), u64>>,
}

/// splitmix64: small, seeded, good enough to spread faults.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    state: Arc<State>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        let address = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream: SocketAddr = address.parse().expect("upstream is http://IP:PORT");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let state = Arc::new(State {
            upstream,
            rng: Mutex::new(plan.seed),
            plan: Mutex::new(plan),
            outage: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            creates_seen: AtomicU64::new(0),
            lost_create_answers: AtomicU64::new(0),
            injected: Mutex::new(BTreeMap::new()),
        });
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let accepting = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let state = accepting.clone();
                tokio::spawn(async move { serve(state, client).await });
            }
        });
        FaultProxy { state, endpoint, runtime: Some(runtime) }
    }

    /// `s3://BUCKET/PREFIX?endpoint=<this proxy>`.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3://{bucket}/{prefix}?endpoint={}", self.endpoint)
    }

    /// Starts (`true`) or ends an outage: while it lasts every connection is reset at once.
    pub fn set_outage(&self, on: bool) {
        self.state.outage.store(on, Ordering::SeqCst);
    }

    /// Changes the share of requests faulted.
    pub fn set_rate(&self, rate: f64) {
        self.state.plan.lock().expect("plan").rate = rate;
    }

    /// What was seen and injected so far.
    pub fn counts(&self) -> FaultCounts {
        let s = &self.state;
        FaultCounts {
            requests: s.requests.load(Ordering::SeqCst),
            forwarded: s.forwarded.load(Ordering::SeqCst),
            injected: s.injected.lock().expect("counts").clone(),
            creates: s.creates_seen.load(Ordering::SeqCst),
            lost_create_answers: s.lost_create_answers.load(Ordering::SeqCst),
            refused: s.refused.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Closes `stream` with a TCP reset (RST), not a clean FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// A request head: its bytes (up to and including the blank line), the body bytes read with it, and the
/// fields the proxy needs.
struct Head {
    bytes: Vec<u8>,
    rest: Vec<u8>,
    method: String,
    content_length: Option<u64>,
    create: bool,
}

async fn read_head(client: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(end);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let method = lines.next()?.split(' ').next()?.to_string();
    let mut content_length = None;
    let mut create = false;
    // The head sent upstream: the same, with `Connection: close` (one request per connection).
    let mut head = Vec::with_capacity(buf.len() + 20);
    head.extend_from_slice(text.split("\r\n").next()?.as_bytes());
    head.extend_from_slice(b"\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "connection" | "keep-alive" | "proxy-connection" => continue,
            "content-length" => content_length = value.trim().parse().ok(),
            "if-none-match" => create = value.trim() == "*",
            _ => {}
        }
        head.extend_from_slice(line.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Some(Head { bytes: head, rest, method, content_length, create })
}

fn decide(state: &State, head: &Head) -> Option<Fault> {
    let plan = state.plan.lock().expect("plan").clone();
    if head.create && state.creates_seen.fetch_add(1, Ordering::SeqCst) < plan.lose_create_answers {
        return Some(Fault::ResetResponse);
    }
    let mut rng = state.rng.lock().expect("rng");
    let draw = next(&mut rng);
    let pick = next(&mut rng);
    if plan.faults.is_empty() || (draw >> 11) as f64 / (1u64 << 53) as f64 >= plan.rate {
        return None;
    }
    Some(plan.faults[(pick % plan.faults.len() as u64) as usize])
}

fn count(state: &State, fault: Fault, method: &str) {
    *state.injected.lock().expect("counts").entry((fault, method.to_string())).or_default() += 1;
}

async fn serve(state: Arc<State>, mut client: TcpStream) {
    if state.outage.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return reset(client);
    }
    let Some(head) = read_head(&mut client).await else { return };
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.outage.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return reset(client);
    }
    let fault = decide(&state, &head);
    let remaining = head.content_length.unwrap_or(0).saturating_sub(head.rest.len() as u64);
    match fault {
        Some(fault @ (Fault::InternalError | Fault::SlowDown)) => {
            count(&state, fault, &head.method);
            // Read the whole body first, so the client reads the answer instead of a reset.
            let _ = tokio::io::copy(&mut (&mut client).take(remaining), &mut tokio::io::sink()).await;
            let (status, code, message) = match fault {
                Fault::InternalError => (
                    "500 Internal Server Error",
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                ),
                _ => ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                 <RequestId>fault-proxy</RequestId></Error>"
            );
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            let _ = client.shutdown().await;
        }
        Some(Fault::ResetRequest) => {
            count(&state, Fault::ResetRequest, &head.method);
            let _ = tokio::io::copy(&mut (&mut client).take(remaining / 2), &mut tokio::io::sink()).await;
            reset(client);
        }
        Some(Fault::ResetResponse) => {
            count(&state, Fault::ResetResponse, &head.method);
            if head.create {
                state.lost_create_answers.fetch_add(1, Ordering::SeqCst);
            }
            // The server gets the whole request and answers; the answer is dropped.
            let Ok(mut upstream) = TcpStream::connect(state.upstream).await else { return reset(client) };
            if send_request(&head, remaining, &mut client, &mut upstream).await.is_ok() {
                let _ = tokio::io::copy(&mut upstream, &mut tokio::io::sink()).await;
            }
            reset(client);
        }
        Some(Fault::Stall) | None => {
            if fault == Some(Fault::Stall) {
                count(&state, Fault::Stall, &head.method);
                let stall = state.plan.lock().expect("plan").stall;
                tokio::time::sleep(stall).await;
            }
            let Ok(mut upstream) = TcpStream::connect(state.upstream).await else { return reset(client) };
            if send_request(&head, remaining, &mut client, &mut upstream).await.is_err() {
                return reset(client);
            }
            if tokio::io::copy(&mut upstream, &mut client).await.is_ok() {
                state.forwarded.fetch_add(1, Ordering::SeqCst);
            }
            let _ = client.shutdown().await;
        }
    }
}

/// Sends the head and the whole body (`remaining` bytes after those read with the head) upstream.
async fn send_request(
    head: &Head,
    remaining: u64,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
) -> std::io::Result<()> {
    upstream.write_all(&head.bytes).await?;
    upstream.write_all(&head.rest).await?;
    let copied = tokio::io::copy(&mut client.take(remaining), upstream).await?;
    if copied < remaining {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "request body cut short"));
    }
    upstream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_seed_and_the_rate() {
        let draws = |seed: u64| {
            let mut s = seed;
            (0..10_000).map(|_| (next(&mut s) >> 11) as f64 / (1u64 << 53) as f64).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let faulted = draws(7).iter().filter(|d| **d < 0.2).count();
        assert!((1800..2200).contains(&faulted), "{faulted}");
    }
}
