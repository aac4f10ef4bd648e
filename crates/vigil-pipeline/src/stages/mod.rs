//! The batch path, one stage a file, in the order a micro-batch goes through them. Each stage is a
//! method of [`crate::run::Pipeline`] that takes the value the one before handed on:
//!
//! ```text
//!  batch.rs      records of one source partition gather; the micro-batch closes   ──> ClosedBatch
//!  normalize.rs  parsed on rayon into canonical Arrow events and dead letters      ──> NormalizedBatch
//!  detect.rs     the rule engine: alerts (and its own findings)                    ──> Vec<Alert>
//!  emit.rs       alerts and dead letters reach their outputs (before the checkpoint)
//!  archive.rs    Parquet + manifest entry written in the background                ──> InFlight
//!  commit.rs     the write is settled: durable, chain head moved, counted, offsets reported
//! ```
//!
//! Where the records come from (files, stdin, Kafka) is [`crate::source`] and the loops of [`crate::run`].

pub(crate) mod archive;
pub(crate) mod batch;
pub(crate) mod commit;
pub(crate) mod detect;
pub(crate) mod emit;
pub(crate) mod normalize;
