//! Crash points for tests of the delivery guarantee: `VIGIL_FAILPOINT=NAME:N` makes the process abort
//! (like `kill -9`: no unwinding, no flushing) the N-th time it reaches the point `NAME`. Unset, a
//! point costs one relaxed atomic load. `VIGIL_FAILPOINT=NAME:N:stall=MS` instead makes the N-th and
//! every later pass wait MS milliseconds where the code asks for a [`stall`] (a store that hangs: tests
//! of the stuck detection and of the shutdown time limit).
//!
//! | point | where |
//! | --- | --- |
//! | `before_archive` | alerts and dead letters are emitted, nothing of the batch is in the archive |
//! | `before_manifest` | the batch's data files are stored, its manifest entry is not |
//! | `before_commit` | the manifest entry is stored, the source has not been told (no offset commit) |
//! | `archive_write` | `stall=` only: a batch's archive write, encoded, before anything of it is stored |
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
    /// Wait this long instead of aborting.
    stall: Option<std::time::Duration>,
}

#[cfg(feature = "failpoints")]
fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("VIGIL_FAILPOINT").ok()?;
            let (name, at) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
            let (at, stall) = match at.split_once(":stall=") {
                Some((at, ms)) => (at, Some(std::time::Duration::from_millis(ms.parse().ok()?))),
                None => (at, None),
            };
            Some(Armed { name: name.to_string(), at: at.parse().ok()?, hits: AtomicU64::new(0), stall })
        })
        .as_ref()
}

/// Aborts the process if `VIGIL_FAILPOINT` names this point and this is the hit it names.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if let Some(armed) = armed()
        && armed.name == name
        && armed.stall.is_none()
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

/// How long to wait here, when `VIGIL_FAILPOINT` names this point with `stall=MS` and this pass is the
/// N-th or a later one.
#[cfg(feature = "failpoints")]
pub fn stall(name: &str) -> Option<std::time::Duration> {
    let armed = armed()?;
    let stall = armed.stall?;
    (armed.name == name && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 >= armed.at).then_some(stall)
}

/// Without the `failpoints` feature: never.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn stall(_name: &str) -> Option<std::time::Duration> {
    None
}
