//! Row-at-a-time construction of canonical event batches, straight into Arrow builders.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use sha2::{Digest, Sha256};

use crate::{event_schema, outcome};

/// One normalized event before it enters a batch. Strings borrow from the parsed record where they can.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)] // Each field is the column of the same name; see `columns.rs`.
pub struct EventRow<'a> {
    pub time_us: i64,
    pub source: Cow<'a, str>,
    pub class: Option<Cow<'a, str>>,
    pub activity: Option<Cow<'a, str>>,
    pub outcome: Cow<'a, str>,
    pub actor_user: Option<Cow<'a, str>>,
    pub actor_type: Option<Cow<'a, str>>,
    pub src_ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub mfa: Option<bool>,
    pub target_user: Option<Cow<'a, str>>,
    pub target_resource: Option<Cow<'a, str>>,
    pub privilege: Option<Cow<'a, str>>,
    pub http_method: Option<Cow<'a, str>>,
    pub http_path: Option<Cow<'a, str>>,
    pub http_status: Option<i32>,
    pub bytes: Option<i64>,
    pub latency_ms: Option<f64>,
    pub cloud_account: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub attrs: Option<Cow<'a, str>>,
}

impl<'a> EventRow<'a> {
    /// An empty row of `source` with outcome `unknown` and time 0; normalizers fill the rest.
    pub fn new(source: impl Into<Cow<'a, str>>) -> Self {
        EventRow { source: source.into(), outcome: Cow::Borrowed(outcome::UNKNOWN), ..EventRow::default() }
    }
}

/// Where one record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// Kafka topic, or `file-<fingerprint>`.
    pub ingest_source: &'a str,
    /// Kafka partition, 0 for files.
    pub partition: i32,
    /// Kafka offset, or 1-based record number in the file.
    pub offset: i64,
    /// When the record was read, UTC microseconds.
    pub ingest_time_us: i64,
}

/// The stable event id: hex of the first 16 bytes of SHA-256(source, 0x00, raw).
pub fn event_id(source: &str, raw: &[u8]) -> String {
    let mut hex = [0u8; 32];
    write_event_id(source, raw, &mut hex).to_string()
}

/// [`event_id`] written into `out`, without allocating.
fn write_event_id<'o>(source: &str, raw: &[u8], out: &'o mut [u8; 32]) -> &'o str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = Sha256::new();
    hasher.update(source.as_bytes());
    hasher.update([0u8]);
    hasher.update(raw);
    for (pair, byte) in out.chunks_exact_mut(2).zip(&hasher.finalize()[..16]) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    // ASCII hex digits only
    std::str::from_utf8(out).unwrap_or_default()
}

/// Builds a [`RecordBatch`] of [`event_schema`] one row at a time.
#[derive(Debug)]
pub struct EventBatchBuilder {
    time: TimestampMicrosecondBuilder,
    source: StringBuilder,
    class: StringBuilder,
    activity: StringBuilder,
    outcome: StringBuilder,
    actor_user: StringBuilder,
    actor_type: StringBuilder,
    src_ip: StringBuilder,
    user_agent: StringBuilder,
    mfa: BooleanBuilder,
    target_user: StringBuilder,
    target_resource: StringBuilder,
    privilege: StringBuilder,
    http_method: StringBuilder,
    http_path: StringBuilder,
    http_status: Int32Builder,
    bytes: Int64Builder,
    latency_ms: Float64Builder,
    cloud_account: StringBuilder,
    region: StringBuilder,
    attrs: StringBuilder,
    /// `None` when the caller supplies the `raw` column at [`EventBatchBuilder::finish_with_raw`].
    raw: Option<BinaryBuilder>,
    event_id: StringBuilder,
    ingest_source: StringBuilder,
    ingest_partition: Int32Builder,
    ingest_offset: Int64Builder,
    ingest_time: TimestampMicrosecondBuilder,
    rows: usize,
}

impl EventBatchBuilder {
    /// A builder with room for `rows` rows before it reallocates.
    pub fn with_capacity(rows: usize) -> Self {
        let mut builder = Self::with_capacity_external_raw(rows);
        builder.raw = Some(BinaryBuilder::with_capacity(rows, rows * 800));
        builder
    }

    /// A builder that does not copy the records' bytes: [`EventBatchBuilder::finish_with_raw`] takes the
    /// `raw` column instead, typically slices of the buffer the records were read into.
    pub fn with_capacity_external_raw(rows: usize) -> Self {
        let s = || StringBuilder::with_capacity(rows, rows * 16);
        EventBatchBuilder {
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            source: s(),
            class: s(),
            activity: s(),
            outcome: s(),
            actor_user: s(),
            actor_type: s(),
            src_ip: s(),
            user_agent: StringBuilder::with_capacity(rows, rows * 64),
            mfa: BooleanBuilder::with_capacity(rows),
            target_user: s(),
            target_resource: s(),
            privilege: s(),
            http_method: s(),
            http_path: s(),
            http_status: Int32Builder::with_capacity(rows),
            bytes: Int64Builder::with_capacity(rows),
            latency_ms: Float64Builder::with_capacity(rows),
            cloud_account: s(),
            region: s(),
            attrs: StringBuilder::with_capacity(rows, rows * 512),
            raw: None,
            event_id: StringBuilder::with_capacity(rows, rows * 32),
            ingest_source: s(),
            ingest_partition: Int32Builder::with_capacity(rows),
            ingest_offset: Int64Builder::with_capacity(rows),
            ingest_time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            rows: 0,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended yet.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event with its original bytes and provenance; computes `event_id`.
    pub fn append(&mut self, row: &EventRow<'_>, raw: &[u8], provenance: &Provenance<'_>) {
        self.time.append_value(row.time_us);
        self.source.append_value(&row.source);
        self.class.append_option(row.class.as_deref());
        self.activity.append_option(row.activity.as_deref());
        self.outcome.append_value(&row.outcome);
        self.actor_user.append_option(row.actor_user.as_deref());
        self.actor_type.append_option(row.actor_type.as_deref());
        self.src_ip.append_option(row.src_ip.as_deref());
        self.user_agent.append_option(row.user_agent.as_deref());
        self.mfa.append_option(row.mfa);
        self.target_user.append_option(row.target_user.as_deref());
        self.target_resource.append_option(row.target_resource.as_deref());
        self.privilege.append_option(row.privilege.as_deref());
        self.http_method.append_option(row.http_method.as_deref());
        self.http_path.append_option(row.http_path.as_deref());
        self.http_status.append_option(row.http_status);
        self.bytes.append_option(row.bytes);
        self.latency_ms.append_option(row.latency_ms);
        self.cloud_account.append_option(row.cloud_account.as_deref());
        self.region.append_option(row.region.as_deref());
        self.attrs.append_option(row.attrs.as_deref());
        if let Some(builder) = &mut self.raw {
            builder.append_value(raw);
        }
        let mut id = [0u8; 32];
        self.event_id.append_value(write_event_id(&row.source, raw, &mut id));
        self.ingest_source.append_value(provenance.ingest_source);
        self.ingest_partition.append_value(provenance.partition);
        self.ingest_offset.append_value(provenance.offset);
        self.ingest_time.append_value(provenance.ingest_time_us);
        self.rows += 1;
    }

    /// The batch of every row appended; the builder is left empty for reuse.
    ///
    /// # Panics
    /// When the builder was made by [`EventBatchBuilder::with_capacity_external_raw`] (a bug: use
    /// [`EventBatchBuilder::finish_with_raw`]).
    pub fn finish(&mut self) -> RecordBatch {
        #[allow(clippy::expect_used)]
        let raw = self.raw.as_mut().expect("finish() on a builder without raw bytes (bug)").finish();
        self.finish_with_raw(raw)
    }

    /// The batch of every row appended, with `raw` as its `raw` column (one value per row, in order); the
    /// builder is left empty for reuse.
    ///
    /// # Panics
    /// When `raw` does not hold one value per row (a bug in the caller).
    pub fn finish_with_raw(&mut self, raw: BinaryArray) -> RecordBatch {
        assert_eq!(raw.len(), self.rows, "raw column of {} values for {} rows (bug)", raw.len(), self.rows);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.class.finish()),
            Arc::new(self.activity.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.actor_user.finish()),
            Arc::new(self.actor_type.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.mfa.finish()),
            Arc::new(self.target_user.finish()),
            Arc::new(self.target_resource.finish()),
            Arc::new(self.privilege.finish()),
            Arc::new(self.http_method.finish()),
            Arc::new(self.http_path.finish()),
            Arc::new(self.http_status.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.latency_ms.finish()),
            Arc::new(self.cloud_account.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.attrs.finish()),
            Arc::new(raw),
            Arc::new(self.event_id.finish()),
            Arc::new(self.ingest_source.finish()),
            Arc::new(self.ingest_partition.finish()),
            Arc::new(self.ingest_offset.finish()),
            Arc::new(self.ingest_time.finish()),
        ];
        self.rows = 0;
        // Every column was appended exactly once per row with the schema's types, so this cannot fail.
        #[allow(clippy::expect_used)]
        RecordBatch::try_new(event_schema(), columns).expect("builder columns match event_schema (bug)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_depends_on_source_and_raw() {
        let a = event_id("aws.cloudtrail", b"{}");
        assert_eq!(a.len(), 32);
        let mut hasher = Sha256::new();
        hasher.update(b"aws.cloudtrail\0{}");
        assert_eq!(a, hex::encode(&hasher.finalize()[..16]));
        assert_eq!(a, event_id("aws.cloudtrail", b"{}"));
        assert_ne!(a, event_id("k8s.audit", b"{}"));
        assert_ne!(a, event_id("aws.cloudtrail", b"{ }"));
    }

    #[test]
    fn builder_round_trips_a_row() {
        let mut builder = EventBatchBuilder::with_capacity(2);
        let mut row = EventRow::new("web.access");
        row.time_us = 42;
        row.http_status = Some(404);
        row.mfa = Some(false);
        let provenance = Provenance { ingest_source: "file-x", partition: 0, offset: 7, ingest_time_us: 1 };
        builder.append(&row, b"raw line", &provenance);
        builder.append(&row, b"raw line 2", &provenance);
        let batch = builder.finish();
        assert_eq!(batch.num_rows(), 2);
        assert!(builder.is_empty());
        assert_eq!(batch.schema(), event_schema());
    }
}
