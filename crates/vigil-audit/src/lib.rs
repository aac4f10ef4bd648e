//! What auditors run against an evidence archive, local or on S3: read-only SQL over the tables
//! `events`, `alerts`, `dead_letters`, `rules` and `triage` ([`query`]), the triage records and queue
//! ([`triage`]), and reproducible evidence samples ([`sample`]).
//!
//! The tables are DataFusion listing tables over the archive's Hive layout, so a filter on a partition
//! column skips whole folders without opening a file: `source`, `date` and `hour` for `events`, `date` for
//! `alerts`, `format` for `dead_letters` (all text: `date = '2024-08-02'`, `hour = '08'`). They hold only
//! the data files a manifest entry lists ([`chained_store`]): a file added to the folders is left out.

pub mod chained_store;
mod error;
pub mod query;
pub mod sample;
pub mod triage;

pub use error::{Error, Result};
