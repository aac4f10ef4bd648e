//! The vigil runtime: wires sources, normalizers, the rule engine, outputs and the evidence archive.
//!
//! ```text
//!  config (TOML or flags) ─> Pipeline::new (rules compiled, archive opened)
//!  Pipeline::run: per input file ─> reader thread ─┐
//!                 Kafka inputs ─> consumer poller ──┴> micro-batches ─> normalize ─> detect ─> emit ─> archive
//!                                                       ─> commit Kafka offsets of what is archived
//! ```
//!
//! Guarantees: every record read ends up in exactly one of the events or the dead letters of the
//! archive ([`summary::RunSummary::reconciles`]); a range is acknowledged only after its alerts, dead
//! letters, Parquet files and manifest entry are written; a rerun resumes after the archived offsets.
//! Results do not depend on batch size or thread count. Rule tests as data live in [`rule_tests`].
//!
//! ```no_run
//! # async fn demo() -> vigil_pipeline::Result<()> {
//! use vigil_pipeline::{Pipeline, config::PipelineConfig};
//! let config = PipelineConfig::load("pipelines/demo.toml".as_ref())?;
//! let summary = Pipeline::new(config, "pipelines/demo.toml").await?.run().await?;
//! assert!(summary.reconciles());
//! # Ok(()) }
//! ```

pub mod check;
pub mod config;
mod error;
mod input;
pub mod rule_state;
pub mod rule_tests;
pub mod rule_texts;
mod run;
pub mod sink;
pub mod source;
mod stages;
pub mod summary;

pub use error::{Error, Result};
pub use run::{Pipeline, ShutdownHandle};
