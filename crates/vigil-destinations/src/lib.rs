//! Alert destinations: generic HTTPS webhooks (signed), Slack incoming webhooks and PagerDuty Events
//! v2, fed from a durable local queue so that a destination that is down never holds the pipeline up
//! and never loses an alert.
//!
//! ```text
//!  emit stage ──enqueue (fsync'd)──> spool/{kind}-{hash}/*.seg ──background task──> POST ──2xx──> ack
//!      │                                                              └── fails: back-off, same alert again
//!      └─> then the batch's manifest entry and offset commit
//! ```
//!
//! Delivery is at least once: an alert is queued before its batch is committed, sent until the
//! destination answers 2xx, and acknowledged after; a crash in between sends it again with the same
//! alert id (`Idempotency-Key`, PagerDuty's `dedup_key`), so the receiver drops the repeat. Alerts
//! queued when vigil stops are delivered by the next run. `vigil_alerts_pending{destination}` shows the
//! backlog and `vigil_alert_deliveries_total{destination,outcome}` counts delivered, failed (retried) and
//! rejected attempts.
//!
//! - [`target`]: destination URLs and their secrets (never logged);
//! - [`render`]: Slack messages and PagerDuty events;
//! - [`spool`]: the on-disk queue;
//! - [`deliver`]: the tasks, signatures and retry policy.
//!
//! ```no_run
//! # async fn example() -> vigil_destinations::Result<()> {
//! use vigil_destinations::{DestinationConfig, Destinations};
//! let configs = [DestinationConfig::from_url("pagerduty://")];
//! let env = |name: &str| std::env::var(name).ok();
//! let destinations = Destinations::open(&configs, "/var/lib/vigil/alert-spool".as_ref(), &Default::default(), &env)?;
//! // destinations.enqueue(&alerts)? in the emit stage; at the end:
//! let left = destinations.finish(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

pub mod deliver;
mod error;
pub mod render;
pub mod spool;
pub mod target;

pub use deliver::{Destinations, SIGNATURE_HEADER, signature};
pub use error::{Error, Result};
pub use render::Outgoing;
pub use target::{DestinationConfig, Kind, Target};
