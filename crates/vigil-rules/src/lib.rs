//! Detection rules: SQL files with a metadata header, checked to be read-only, run by DataFusion over
//! each micro-batch of canonical events.
//!
//! ```text
//!  rules/*.sql ─ parse_rule (header) ─ check_read_only (AST) ─ RuleEngine::new (plan once)
//!  micro-batch (RecordBatch partitions) ─ RuleEngine::evaluate ─> Vec<Alert> (deterministic ids)
//! ```
//!
//! A rule file is documented in [`rule`]; what is refused is in [`validate`]. JSON functions from
//! `datafusion-functions-json` are registered, so a rule reaches any source field through `attrs`:
//! `json_get_str(attrs, 'requestParameters', 'policyArn')` or `attrs->'requestParameters'->>'policyArn'`.
//!
//! This crate knows nothing of Kafka, files or Parquet: it turns batches into alerts.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use vigil_rules::{RulePack, RuleEngine, rule::parse_rule};
//! let text = "-- id: demo\n-- title: Demo\n-- severity: low\n-- criteria: CC7.2\nSELECT time, event_id FROM events WHERE outcome = 'failure'";
//! let pack = RulePack::new(vec![parse_rule("demo.sql".as_ref(), text).unwrap()]).unwrap();
//! let mut engine = RuleEngine::new(&pack, 2).await.unwrap();
//! let mut state = engine.new_state(); // one per source partition: stateful rules keep it
//! assert!(engine.evaluate(&mut state, &[]).await.unwrap().is_empty());
//! # });
//! ```

pub mod alert;
mod attr_columns;
pub mod budget;
pub mod correlation;
pub mod engine;
mod error;
mod events_table;
mod pack;
mod rows;
pub mod rule;
pub mod sigma;
mod source_filter;
pub mod stateful;
pub mod validate;

pub use alert::{Alert, alert_id, alerts_to_batch, format_time_us};
pub use budget::{RuleBudget, RuleFailure};
pub use engine::{
    DEFAULT_MAX_FUTURE_SKEW, EngineOptions, EngineSnapshot, PartitionState, RuleEngine, RulePack, TABLES, load_rules,
    rule_files,
};
pub use error::{Error, Result};
pub use rule::{Rule, RuleKind, Severity, StatefulSpec};
