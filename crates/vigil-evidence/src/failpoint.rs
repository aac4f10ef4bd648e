//! Crash points for tests of the delivery guarantee: `VIGIL_FAILPOINT=NAME:N` makes the process abort
//! (like `kill -9`: no unwinding, no flushing) the N-th time it reaches the point `NAME`. Unset, a
//! point costs one relaxed atomic load.
//!
//! | point | where |
//! | --- | --- |
//! | `before_archive` | alerts and dead letters are emitted, nothing of the batch is in the archive |
//! | `before_manifest` | the batch's data files are stored, its manifest entry is not |
//! | `before_commit` | the manifest entry is stored, the source has not been told (no offset commit) |
//!
//! Only builds with the `failpoints` feature have them (the test builds: `vigil-cli`'s dev-dependencies
//! turn it on); in any other build [`hit`] is empty and `VIGIL_FAILPOINT` does nothing.

#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "failpoints")]
struct Armed {
    name: String,
    at: u64,
    hits: AtomicU64,
}

#[cfg(feature = "failpoints")]
fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("VIGIL_FAILPOINT").ok()?;
            let (name, at) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
            Some(Armed { name: name.to_string(), at: at.parse().ok()?, hits: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Aborts the process if `VIGIL_FAILPOINT` names this point and this is the hit it names.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if let Some(armed) = armed()
        && armed.name == name
        && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 == armed.at
    {
        eprintln!("vigil: failpoint {name}:{} reached, aborting", armed.at);
        std::process::abort();
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
