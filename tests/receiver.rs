//! A stand-in alert destination on loopback for the destination tests: a real HTTP/1.1 server (one
//! request per connection, `Connection: close`) that records every request and answers by plan: the
//! first requests get the planned failures ([`Answer`]), later ones the current default answer, which a
//! test can switch (a destination that goes down and comes back).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status, with a short body.
    Status(u16),
    /// 429 with `Retry-After: SECS`.
    TooMany(u64),
    /// No answer: the connection is held open until the client gives up (a time-out).
    Hang,
    /// The connection is closed without an answer.
    Close,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What it was answered.
    pub answer: Answer,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// Whether it was answered 2xx.
    pub fn accepted(&self) -> bool {
        matches!(self.answer, Answer::Status(s) if (200..300).contains(&s))
    }
}

struct State {
    plan: Vec<Answer>,
    default: Answer,
    requests: Vec<Request>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Starts on a free loopback port: the first requests get `plan`, the rest `default`.
    pub fn start(plan: Vec<Answer>, default: Answer) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("receiver")
            .enable_all()
            .build()
            .expect("receiver runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind the receiver");
        let address = listener.local_addr().expect("receiver address");
        let state = Arc::new(Mutex::new(State { plan, default, requests: Vec::new() }));
        let accepting = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(serve(stream, accepting.clone()));
            }
        });
        Receiver { address, state, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// From now on, requests past the plan get `answer`.
    pub fn set_default(&self, answer: Answer) {
        self.state.lock().expect("receiver state").default = answer;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("receiver state").requests.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    let answer = {
        let mut state = state.lock().expect("receiver state");
        let n = state.requests.len();
        let answer = state.plan.get(n).copied().unwrap_or(state.default);
        state.requests.push(Request { path, headers, body, answer });
        answer
    };
    let (status, extra) = match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        Answer::Close => return,
        Answer::Status(s) => (s, String::new()),
        Answer::TooMany(secs) => (429, format!("Retry-After: {secs}\r\n")),
    };
    let text = if (200..300).contains(&status) { "ok" } else { "try later" };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
