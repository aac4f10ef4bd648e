//! The canonical, versioned schemas of vigil: what every normalizer produces, what every rule reads,
//! and what the evidence archive stores.
//!
//! ```text
//!  bytes ─> normalizer ─> EventRow ─> EventBatchBuilder ─> RecordBatch (event_schema) ─> rules, Parquet
//!                     └─> DeadLetter (dead_letter_schema)                   alerts (alert_schema) <─┘
//! ```
//!
//! Three tables share this crate so that the producer and every reader agree on one contract:
//! [`event_schema`] (the `events` table rules query and the archive keeps), [`alert_schema`] and
//! [`dead_letter_schema`]. Each column is documented where its name is defined (`columns.rs`). The version
//! is [`SCHEMA_VERSION`]: adding a nullable column is a compatible change; renaming or retyping a column is
//! not and needs a new version.
//!
//! ```
//! use vigil_schema::{EventBatchBuilder, EventRow, Provenance};
//! let mut builder = EventBatchBuilder::with_capacity(1);
//! let row = EventRow { time_us: 1_700_000_000_000_000, activity: Some("ConsoleLogin".into()), ..EventRow::new("aws.cloudtrail") };
//! let provenance = Provenance { ingest_source: "file-0123", partition: 0, offset: 1, ingest_time_us: 0 };
//! builder.append(&row, br#"{"eventName":"ConsoleLogin"}"#, &provenance);
//! let batch = builder.finish();
//! assert_eq!(batch.num_rows(), 1);
//! ```

mod builder;
mod columns;
pub mod failure;
pub mod json_scan;
mod partition;
pub mod redact;
pub mod time;

pub use builder::{EventBatchBuilder, EventRow, Provenance, event_id};
pub use columns::*;
pub use failure::ErrorClass;
pub use partition::PartitionId;
pub use time::{date_hour, format_time_us};

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the canonical event schema, written into every Parquet file's metadata and every manifest entry.
pub const SCHEMA_VERSION: u32 = 1;

/// The longest `source` value a config may set.
pub const MAX_SOURCE_LEN: usize = 64;

/// Why `source` cannot be the `source` column of a configured input, or `None` when it can: 1 to
/// [`MAX_SOURCE_LEN`] letters, digits, `.`, `_` and `-`, with at least one letter or digit. The value
/// names a folder of the archive (`events/source=S/`) and a Hive partition, so it is used there as it is,
/// never percent-encoded.
pub fn source_name_problem(source: &str) -> Option<String> {
    let shown: String = source.chars().take(MAX_SOURCE_LEN).collect();
    let fix = "use letters, digits, `.`, `_` and `-` only (for example `myapp.audit`)";
    if source.is_empty() {
        return Some(format!("source is empty: {fix}"));
    }
    if source.chars().count() > MAX_SOURCE_LEN {
        return Some(format!("source {shown:?}... is longer than {MAX_SOURCE_LEN} characters: {fix}"));
    }
    if let Some(bad) = source.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Some(format!("source {shown:?} holds {bad:?}: {fix}"));
    }
    if !source.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Some(format!("source {shown:?} has no letter or digit: {fix}"));
    }
    None
}

/// Key of the Parquet/Arrow metadata entry that carries [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "vigil.schema_version";

/// The UTC microsecond timestamp type used for every time column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn with_version(fields: Vec<Field>) -> SchemaRef {
    let metadata = [(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())].into();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// The canonical event schema (OCSF-aligned); each column is documented at its name constant.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
            with_version(vec![
                Field::new(TIME, timestamp_type(), false),
                Field::new(SOURCE, DataType::Utf8, false),
                utf8(CLASS),
                utf8(ACTIVITY),
                Field::new(OUTCOME, DataType::Utf8, false),
                utf8(ACTOR_USER),
                utf8(ACTOR_TYPE),
                utf8(SRC_IP),
                utf8(USER_AGENT),
                Field::new(MFA, DataType::Boolean, true),
                utf8(TARGET_USER),
                utf8(TARGET_RESOURCE),
                utf8(PRIVILEGE),
                utf8(HTTP_METHOD),
                utf8(HTTP_PATH),
                Field::new(HTTP_STATUS, DataType::Int32, true),
                Field::new(BYTES, DataType::Int64, true),
                Field::new(LATENCY_MS, DataType::Float64, true),
                utf8(CLOUD_ACCOUNT),
                utf8(REGION),
                Field::new(ATTRS, DataType::Utf8, true),
                Field::new(RAW, DataType::Binary, false),
                Field::new(EVENT_ID, DataType::Utf8, false),
                Field::new(INGEST_SOURCE, DataType::Utf8, false),
                Field::new(INGEST_PARTITION, DataType::Int32, false),
                Field::new(INGEST_OFFSET, DataType::Int64, false),
                Field::new(INGEST_TIME, timestamp_type(), false),
            ])
        })
        .clone()
}

/// Schema of archived alerts (`{root}/alerts/...`), one row per alert.
pub fn alert_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            with_version(vec![
                Field::new(ALERT_ID, DataType::Utf8, false),
                Field::new(RULE_ID, DataType::Utf8, false),
                Field::new(RULE_TITLE, DataType::Utf8, false),
                Field::new(SEVERITY, DataType::Utf8, false),
                Field::new(CRITERIA, list.clone(), false),
                Field::new(RULE_HASH, DataType::Utf8, false),
                Field::new(TIME, timestamp_type(), false),
                Field::new(EVENT_IDS, list, false),
                Field::new(FIELDS, DataType::Utf8, false),
                Field::new(INGEST_SOURCE, DataType::Utf8, false),
                Field::new(INGEST_PARTITION, DataType::Int32, false),
            ])
        })
        .clone()
}

/// Schema of archived dead letters (`{root}/dead_letters/...`): records that could not be normalized.
pub fn dead_letter_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            with_version(vec![
                Field::new(SOURCE, DataType::Utf8, false),
                Field::new(FORMAT, DataType::Utf8, false),
                Field::new(REASON_CODE, DataType::Utf8, false),
                Field::new(REASON, DataType::Utf8, false),
                Field::new(RAW, DataType::Binary, false),
                Field::new(EVENT_ID, DataType::Utf8, false),
                Field::new(INGEST_SOURCE, DataType::Utf8, false),
                Field::new(INGEST_PARTITION, DataType::Int32, false),
                Field::new(INGEST_OFFSET, DataType::Int64, false),
                Field::new(INGEST_TIME, timestamp_type(), false),
            ])
        })
        .clone()
}

/// `outcome` values.
pub mod outcome {
    /// The action succeeded.
    pub const SUCCESS: &str = "success";
    /// The action was refused or failed.
    pub const FAILURE: &str = "failure";
    /// The source does not say.
    pub const UNKNOWN: &str = "unknown";
}

/// `class` values (OCSF class names in snake case).
pub mod class {
    /// Logins, token issuance, role assumption (OCSF 3002).
    pub const AUTHENTICATION: &str = "authentication";
    /// Users, keys, credentials, group and policy membership changed (OCSF 3001).
    pub const ACCOUNT_CHANGE: &str = "account_change";
    /// Any other control-plane API call (OCSF 6003).
    pub const API_ACTIVITY: &str = "api_activity";
    /// An HTTP request served (OCSF 4002).
    pub const HTTP_ACTIVITY: &str = "http_activity";
    /// Other system log lines: daemons, kernel, cron (OCSF 1001-1008 family).
    pub const SYSTEM_ACTIVITY: &str = "system_activity";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_carries_its_version() {
        for schema in [event_schema(), alert_schema(), dead_letter_schema()] {
            assert_eq!(schema.metadata().get(SCHEMA_VERSION_KEY).map(String::as_str), Some("1"));
        }
    }

    #[test]
    fn event_columns_are_unique() {
        let schema = event_schema();
        let mut names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
        assert_eq!(before, 27);
    }
}
