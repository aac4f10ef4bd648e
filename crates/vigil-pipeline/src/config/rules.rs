//! `[rules]`: rule directories and each rule's budget.

use std::path::PathBuf;

use serde::Deserialize;

/// Rule directories.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Directories of `.sql` rule files.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Stateful rules: seconds between two stored snapshots of their state (`{evidence}/state/`); 0 stores
    /// after every micro-batch. A restart replays what the archive holds after the snapshot, so a longer
    /// interval costs replay time, never correctness.
    #[serde(default = "default_state_checkpoint_secs")]
    pub state_checkpoint_secs: u64,
    /// Silence rules on Kafka: seconds between two looks at partitions that receive nothing. A partition
    /// quiet for longer counts its wall-clock quiet as event time, so a topic or partition that stops
    /// altogether still raises its silence alerts (within this many seconds of their deadline).
    #[serde(default = "default_idle_check_secs")]
    pub idle_check_secs: u64,
    /// Memory one rule may use on one micro-batch (its operators and its result), in MiB. A rule that
    /// needs more is quarantined for the rest of the run with a `rule_failed` alert.
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// Seconds one rule may take on one micro-batch; longer, it is quarantined like the above.
    #[serde(default = "default_time_limit_secs")]
    pub time_limit_secs: u64,
    /// Events dated more than this many seconds ahead of the wall clock are archived and flagged
    /// (`event_time_in_future`) but do not move the stateful rules' event time.
    #[serde(default = "default_max_future_skew_secs")]
    pub max_future_skew_secs: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dirs: Vec::new(),
            state_checkpoint_secs: DEFAULT_STATE_CHECKPOINT_SECS,
            idle_check_secs: DEFAULT_IDLE_CHECK_SECS,
            memory_limit_mb: default_memory_limit_mb(),
            time_limit_secs: default_time_limit_secs(),
            max_future_skew_secs: default_max_future_skew_secs(),
        }
    }
}

impl RulesConfig {
    /// How the rule engine runs these rules: their budget and the future-skew limit.
    pub fn engine_options(&self) -> vigil_rules::EngineOptions {
        vigil_rules::EngineOptions {
            budget: vigil_rules::RuleBudget {
                memory_bytes: usize::try_from(self.memory_limit_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
                time: std::time::Duration::from_secs(self.time_limit_secs),
            },
            max_future_skew: std::time::Duration::from_secs(self.max_future_skew_secs),
            ..vigil_rules::EngineOptions::default()
        }
    }
}

fn default_memory_limit_mb() -> u64 {
    (vigil_rules::RuleBudget::default().memory_bytes >> 20) as u64
}

fn default_time_limit_secs() -> u64 {
    vigil_rules::RuleBudget::default().time.as_secs()
}

fn default_max_future_skew_secs() -> u64 {
    vigil_rules::DEFAULT_MAX_FUTURE_SKEW.as_secs()
}

/// Default seconds between two looks at idle Kafka partitions.
pub const DEFAULT_IDLE_CHECK_SECS: u64 = 10;

fn default_idle_check_secs() -> u64 {
    DEFAULT_IDLE_CHECK_SECS
}

/// Default seconds between rule state snapshots.
pub const DEFAULT_STATE_CHECKPOINT_SECS: u64 = 60;

fn default_state_checkpoint_secs() -> u64 {
    DEFAULT_STATE_CHECKPOINT_SECS
}
