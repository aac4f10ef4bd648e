//! The metrics endpoint on a hostile network: idle sockets, slow senders and oversized requests neither
//! lock a scraper out nor fill the log. No assertion on speed: deadlines only say "it answered at all".

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_metrics::{Limits, Metrics, serve_with};

/// Liveness only: far longer than any limit under test.
const DEADLINE: Duration = Duration::from_secs(60);

/// Log lines written while a test runs (tracing on this thread: the tests run on one thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

async fn start(limits: Limits) -> SocketAddr {
    let metrics = Metrics::new();
    let counts = vigil_metrics::BatchCounts { alerts: [("some_rule".to_string(), 1)].into(), ..Default::default() };
    metrics.archived(&vigil_schema::PartitionId::new("t", 0), &counts, Duration::from_millis(5));
    let (addr, task) = serve_with(loopback(), metrics, limits).await.expect("binds");
    // The server lives as long as the test's runtime.
    std::mem::forget(task);
    addr
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.expect("sends");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads until the server closes; what it sent (an error such as a reset counts as closed).
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn idle_sockets_do_not_lock_out_a_scrape_and_do_not_fill_the_log() {
    let log = Captured::default();
    let _guard = log.install();
    let addr = start(Limits::default()).await;
    // 300 sockets that connect and never send a byte (the cap is 64).
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/metrics")).await.expect("the scrape is answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("vigil_alerts_total{rule=\"some_rule\"} 1"), "{answer}");
    // Again, while the idle sockets are still open.
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/metrics")).await.expect("answered again");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    // Every idle socket is closed by the server: evicted to make room, or timed out.
    for stream in &mut idle {
        let sent = tokio::time::timeout(DEADLINE, until_closed(stream)).await.expect("idle socket closed");
        assert!(sent.is_empty());
    }
    let text = log.text();
    let warnings = text.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 1, "one warning at most per interval, not one per connection:\n{text}");
    assert!(text.lines().count() <= 3, "{text}");
}

#[tokio::test]
async fn a_slow_or_oversized_request_is_cut_off() {
    let log = Captured::default();
    let _guard = log.install();
    let limits = Limits { head_timeout: Duration::from_secs(1), ..Limits::default() };
    let addr = start(limits).await;
    // Slow loris: a partial request, then one byte now and then, never the end of the head.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let closed = tokio::time::timeout(DEADLINE, trickle).await;
    assert!(closed.is_ok(), "the server closed the slow connection");
    let sent = tokio::time::timeout(DEADLINE, until_closed(&mut slow)).await.expect("closed");
    assert!(!String::from_utf8_lossy(&sent).contains("200 OK"));
    // An oversized head: 431, then closed.
    let mut big = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 << 10));
    let _ = big.write_all(head.as_bytes()).await;
    let sent = tokio::time::timeout(DEADLINE, until_closed(&mut big)).await.expect("closed");
    let sent = String::from_utf8_lossy(&sent);
    assert!(sent.is_empty() || sent.starts_with("HTTP/1.1 431"), "{sent}");
    // Still serving, and the log did not grow per connection.
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"GET /met").await;
    }
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/")).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let text = log.text();
    assert!(text.lines().filter(|l| l.contains("WARN")).count() <= 1, "{text}");
}

#[tokio::test]
async fn over_the_cap_busy_connections_are_refused_at_once_and_paths_answer() {
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let addr = start(limits).await;
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    let mut post = TcpStream::connect(addr).await.unwrap();
    post.write_all(b"POST /metrics HTTP/1.1\r\n\r\n").await.unwrap();
    let sent = tokio::time::timeout(DEADLINE, until_closed(&mut post)).await.expect("answered");
    assert!(String::from_utf8_lossy(&sent).starts_with("HTTP/1.1 405"));
    // Many idle sockets against a cap of 2: each new one closes the oldest idle one, and a scrape gets in.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/metrics")).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn a_non_loopback_address_is_warned_about() {
    let log = Captured::default();
    let _guard = log.install();
    let (addr, task) = serve_with("0.0.0.0:0".parse().unwrap(), Metrics::new(), Limits::default()).await.unwrap();
    assert!(addr.ip().is_unspecified());
    task.abort();
    let text = log.text();
    assert!(text.contains("WARN") && text.contains("non-loopback"), "{text}");
    let log = Captured::default();
    let _guard = log.install();
    let (_, task) = serve_with("127.0.0.1:0".parse().unwrap(), Metrics::new(), Limits::default()).await.unwrap();
    task.abort();
    assert!(!log.text().contains("WARN"), "{}", log.text());
}

#[tokio::test]
async fn the_probes_answer_200_or_503_with_the_reason_and_get_in_past_idle_sockets() {
    let metrics = Metrics::new();
    let health = metrics.health();
    let limits = Limits { max_connections: 2, head_timeout: Duration::from_secs(30), ..Limits::default() };
    let (addr, task) = serve_with(loopback(), metrics, limits).await.expect("binds");
    let answer = get(addr, "/readyz").await;
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable"), "{answer}");
    assert!(answer.contains("the rules are not compiled yet"), "{answer}");
    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
    health.config_loaded();
    health.rules_compiled();
    health.store_reachable();
    // Idle sockets against a cap of 2 do not keep a probe out.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/readyz")).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ready\n"), "{answer}");
    health.draining();
    let answer = tokio::time::timeout(DEADLINE, get(addr, "/readyz")).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("draining since"), "{answer}");
    let mut head = TcpStream::connect(addr).await.unwrap();
    head.write_all(b"HEAD /healthz HTTP/1.1\r\n\r\n").await.unwrap();
    let sent = tokio::time::timeout(DEADLINE, until_closed(&mut head)).await.expect("answered");
    let sent = String::from_utf8_lossy(&sent);
    assert!(sent.starts_with("HTTP/1.1 200 OK") && sent.ends_with("\r\n\r\n"), "HEAD: no body: {sent}");
    task.abort();
}
