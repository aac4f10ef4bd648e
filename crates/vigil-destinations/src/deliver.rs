//! Delivery: one background task per destination takes the oldest queued alert, sends it, and
//! acknowledges it in the spool once the destination answered 2xx. Nothing here blocks the pipeline:
//! [`Destinations::enqueue`] only writes the spool.
//!
//! | answer | what happens | counted as |
//! | --- | --- | --- |
//! | 2xx | acknowledged, next alert | `delivered` |
//! | no answer, time-out, 408, 425, 429, 5xx | wait, then the same alert again | `failed` |
//! | 401, 403, 404, 410 (a secret or URL to fix) | the same, logged as an error: alerts stay queued until fixed | `failed` |
//! | any other 4xx (this alert is malformed for it) | kept under `rejected/` with the answer, next alert | `rejected` |
//!
//! Waits double from `retry_initial_ms` up to `retry_max_secs` with jitter (each wait drawn between half
//! and all of it), and are at least a 429's `Retry-After`. Alerts go one at a time in queue order, so a
//! destination that is down costs one request per wait, and comes back in order.
//!
//! Requests (`Content-Type: application/json`, `User-Agent: vigil/VERSION`, no redirects followed):
//! - webhook: the alert, `X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>`,
//!   `Idempotency-Key` and `X-Vigil-Alert-Id`: the alert id (the same on every retry and replay);
//! - Slack: the message of [`crate::render::slack`];
//! - PagerDuty: the event of [`crate::render::pagerduty`] with `routing_key`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use vigil_metrics::Metrics;

use crate::render::{self, Outgoing};
use crate::spool::{Entry, Spool};
use crate::target::{DestinationConfig, Kind, Target};
use crate::{Error, Result};

/// The signature header of webhooks.
pub const SIGNATURE_HEADER: &str = "X-Vigil-Signature";

/// `sha256=<hex>` of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Retry { reason: String, after: Option<Duration>, fix: bool },
    Rejected(String),
}

struct Lane {
    target: Target,
    spool: Spool,
    wake: Notify,
    metrics: Metrics,
    client: reqwest::Client,
}

/// Every alert destination of a pipeline: their spools and delivery tasks.
pub struct Destinations {
    lanes: Vec<Arc<Lane>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.lanes.iter().map(|l| l.target.label())).finish()
    }
}

impl Drop for Destinations {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Destinations {
    /// Resolves `configs` (secrets from `env`), opens their spools under `spool_root` and starts delivering
    /// what they hold (call within a tokio runtime).
    pub fn open(
        configs: &[DestinationConfig],
        spool_root: &Path,
        metrics: &Metrics,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut lanes: Vec<Arc<Lane>> = Vec::new();
        for config in configs {
            let target = config.resolve(env)?;
            if lanes.iter().any(|l| l.target.spool_name() == target.spool_name()) {
                return Err(Error::Config {
                    destination: target.label().to_string(),
                    reason: "given twice: name each destination once".into(),
                });
            }
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(target.timeout)
                .build()
                .map_err(Error::Client)?;
            let spool = Spool::open(&spool_root.join(target.spool_name()))?;
            metrics.alerts_pending(target.label(), spool.pending());
            if spool.pending() > 0 {
                tracing::info!(destination = %target.label(), pending = spool.pending(), "alerts queued by an earlier run are delivered now");
            }
            lanes.push(Arc::new(Lane { target, spool, wake: Notify::new(), metrics: metrics.clone(), client }));
        }
        warn_about_orphans(spool_root, &lanes);
        let tasks = lanes.iter().map(|lane| tokio::spawn(deliver(lane.clone()))).collect();
        Ok(Destinations { lanes, tasks })
    }

    /// Whether there is any destination.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Queues `alerts` for every destination, durably, and wakes the delivery tasks. When this returns
    /// the alerts survive a crash.
    pub fn enqueue(&self, alerts: &[Outgoing]) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        for lane in &self.lanes {
            let entries: Vec<Entry> = alerts
                .iter()
                .map(|a| Entry {
                    id: a.alert_id.clone(),
                    body: match lane.target.kind {
                        Kind::Webhook => a.webhook_body.clone(),
                        Kind::Slack => render::slack(a).to_string(),
                        Kind::PagerDuty => render::pagerduty(a).to_string(),
                    },
                })
                .collect();
            lane.spool.enqueue(&entries)?;
            lane.metrics.alerts_pending(lane.target.label(), lane.spool.pending());
            lane.wake.notify_one();
        }
        Ok(())
    }

    /// Alerts queued and not yet delivered, over all destinations.
    pub fn pending(&self) -> u64 {
        self.lanes.iter().map(|l| l.spool.pending()).sum()
    }

    /// Gives the tasks up to `limit` to deliver what is queued, then stops them; returns what is still
    /// queued (delivered on the next start), logging where.
    pub async fn finish(mut self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        while self.pending() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for lane in &self.lanes {
            let left = lane.spool.pending();
            if left > 0 {
                tracing::warn!(
                    destination = %lane.target.label(),
                    pending = left,
                    spool = %lane.spool.dir().display(),
                    "alerts not yet delivered stay queued and are delivered when vigil next runs"
                );
            }
        }
        self.pending()
    }
}

/// Warns about spools under `root` that hold alerts for a destination no longer configured.
fn warn_about_orphans(root: &Path, lanes: &[Arc<Lane>]) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if lanes.iter().any(|l| l.target.spool_name() == name) {
            continue;
        }
        let queued = std::fs::read_dir(entry.path())
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".seg")).count())
            .unwrap_or(0);
        if queued > 0 {
            tracing::warn!(
                spool = %entry.path().display(),
                segments = queued,
                "this spool holds alerts for a destination that is no longer configured; configure it again to deliver them"
            );
        }
    }
}

/// The wait before attempt `failures + 1`: `initial * 2^(failures-1)`, at most `max`, drawn between half and all.
fn backoff(target: &Target, failures: u32, at_least: Option<Duration>) -> Duration {
    let exp = target.retry_initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let full = exp.min(target.retry_max);
    let jitter = getrandom::u64().unwrap_or(0) % 1_000;
    let wait = full / 2 + (full / 2).mul_f64(jitter as f64 / 1_000.0);
    wait.max(at_least.unwrap_or_default().min(target.retry_max))
}

async fn deliver(lane: Arc<Lane>) {
    let label = lane.target.label().to_string();
    let mut failures: u32 = 0;
    loop {
        let Some(seq) = lane.spool.oldest() else {
            lane.wake.notified().await;
            continue;
        };
        let entries = match lane.spool.load(seq) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(destination = %label, error = %e, "cannot read the alert spool; trying again");
                tokio::time::sleep(lane.target.retry_max.min(Duration::from_secs(5))).await;
                continue;
            }
        };
        for (line, entry) in entries {
            loop {
                match send(&lane, &entry).await {
                    Outcome::Delivered => {
                        if failures > 0 {
                            tracing::info!(destination = %label, failed_attempts = failures, "alert destination delivers again");
                        }
                        failures = 0;
                        lane.metrics.alert_delivery(&label, "delivered");
                        if let Err(e) = lane.spool.ack(seq, line) {
                            tracing::error!(destination = %label, error = %e, "cannot record a delivery; the alert may be sent again");
                        }
                        break;
                    }
                    Outcome::Rejected(answer) => {
                        lane.metrics.alert_delivery(&label, "rejected");
                        tracing::error!(
                            destination = %label,
                            alert_id = %entry.id,
                            answer = %answer,
                            "the destination refused this alert as malformed; it is kept in the spool's rejected/ folder"
                        );
                        if let Err(e) = lane.spool.reject(seq, line, &entry, &answer) {
                            tracing::error!(destination = %label, error = %e, "cannot keep a rejected alert");
                        }
                        break;
                    }
                    Outcome::Retry { reason, after, fix } => {
                        failures += 1;
                        lane.metrics.alert_delivery(&label, "failed");
                        let wait = backoff(&lane.target, failures, after);
                        let pending = lane.spool.pending();
                        if fix {
                            tracing::error!(destination = %label, answer = %reason, pending, retry_in_ms = wait.as_millis() as u64, "the destination refuses vigil's credentials or URL: fix them; alerts stay queued");
                        } else if failures == 1 {
                            tracing::warn!(destination = %label, error = %reason, pending, retry_in_ms = wait.as_millis() as u64, "alert delivery failed; alerts stay queued and are retried");
                        } else {
                            tracing::debug!(destination = %label, error = %reason, attempt = failures, retry_in_ms = wait.as_millis() as u64, "alert delivery failed again");
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            lane.metrics.alerts_pending(&label, lane.spool.pending());
        }
    }
}

/// One attempt to send `entry`.
async fn send(lane: &Lane, entry: &Entry) -> Outcome {
    let target = &lane.target;
    let body: Vec<u8> = match (target.kind, &target.key) {
        (Kind::PagerDuty, Some(key)) => match serde_json::from_str::<serde_json::Value>(&entry.body) {
            Ok(serde_json::Value::Object(mut event)) => {
                event.insert("routing_key".into(), key.0.clone().into());
                serde_json::Value::Object(event).to_string().into_bytes()
            }
            _ => return Outcome::Rejected("the queued event is not a JSON object".into()),
        },
        _ => entry.body.clone().into_bytes(),
    };
    let mut request = lane
        .client
        .post(target.url().clone())
        .timeout(target.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let (Kind::Webhook, Some(key)) = (target.kind, &target.key) {
        request = request
            .header(SIGNATURE_HEADER, signature(key.0.as_bytes(), &body))
            .header("Idempotency-Key", &entry.id)
            .header("X-Vigil-Alert-Id", &entry.id);
    }
    let response = match request.body(body).send().await {
        Ok(r) => r,
        // Without the URL: it may be a secret (Slack) or hold one.
        Err(e) => return Outcome::Retry { reason: describe(&e.without_url()), after: None, fix: false },
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(300).collect();
    let answer = vigil_schema::redact::text(&format!("{} {}", status.as_u16(), text.trim())).into_owned();
    match status.as_u16() {
        408 | 425 | 429 | 500..=599 => Outcome::Retry { reason: answer, after, fix: false },
        401 | 403 | 404 | 410 => Outcome::Retry { reason: answer, after, fix: true },
        400..=499 => Outcome::Rejected(answer),
        // 1xx/3xx (redirects are not followed): the URL is not the endpoint.
        _ => Outcome::Retry { reason: answer, after, fix: true },
    }
}

/// An HTTP error's text with its causes (timeouts, refused connections), without the URL.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_string() } else { error.to_string() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    vigil_schema::redact::text(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn waits_double_up_to_the_limit_with_jitter() {
        let config =
            DestinationConfig { retry_initial_ms: 100, retry_max_secs: 1, ..DestinationConfig::from_url("https://h/") };
        let target = config.resolve(&|_| Some("k".into())).unwrap();
        for _ in 0..50 {
            let first = backoff(&target, 1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let fourth = backoff(&target, 4, None);
            assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800), "{fourth:?}");
            let capped = backoff(&target, 30, None);
            assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_secs(1), "{capped:?}");
            assert_eq!(backoff(&target, 1, Some(Duration::from_secs(9))), Duration::from_secs(1));
        }
    }
}
