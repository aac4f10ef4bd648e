//! `vigil query`: read-only SQL over an archive's `events`, `alerts` and `dead_letters`, and the record
//! tables `rules` (the text of every rule pack that ran) and `triage` (what was decided about alerts; see
//! `vigil_evidence::records`).
//!
//! Only queries run: DDL, DML and statements (`COPY`, `SET`, `CREATE`, ...) are refused before planning,
//! and the only tables are the archive's five, so a query cannot read or write other files. The tables
//! read through a [`ChainedStore`], which holds only the data files the archive's manifest chains list
//! (not disposed of) and refuses writes: a Parquet file added to a data folder is not counted.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use vigil_evidence::Archive;

use crate::chained_store::{ChainedFiles, ChainedStore, chained_files};
use crate::{Error, Result};

/// One table of the archive: its folder, partition columns and full schema.
struct TableSpec {
    name: &'static str,
    partitions: &'static [&'static str],
    schema: SchemaRef,
}

fn tables() -> [TableSpec; 5] {
    use vigil_evidence::records::{rules_schema, triage_schema};
    [
        TableSpec { name: "events", partitions: &["source", "date", "hour"], schema: vigil_schema::event_schema() },
        TableSpec { name: "alerts", partitions: &["date"], schema: vigil_schema::alert_schema() },
        TableSpec { name: "dead_letters", partitions: &["format"], schema: vigil_schema::dead_letter_schema() },
        TableSpec { name: "rules", partitions: &[], schema: rules_schema() },
        TableSpec { name: "triage", partitions: &[], schema: triage_schema() },
    ]
}

/// An archive's tables, read through a [`ChainedStore`]: only the data files its manifest chains list.
pub struct ArchiveSession {
    /// The session, with `events`, `alerts`, `dead_letters`, `rules` and `triage` registered.
    pub ctx: SessionContext,
    /// Parquet files in the data folders that no manifest entry lists, left out of every query (relative to
    /// the archive root, sorted): planted, or of a range still being written.
    pub left_out: Vec<String>,
}

/// Registers a [`ChainedStore`] over the archive for DataFusion and returns the archive root's URL.
fn register_store(ctx: &SessionContext, archive: &Archive, files: &ChainedFiles) -> Result<String> {
    match archive.bucket() {
        Some(bucket) => {
            let name = &bucket.settings().bucket;
            let url = datafusion::execution::object_store::ObjectStoreUrl::parse(format!("s3://{name}"))?;
            // The archive's store is the bucket's, with the archive at its root prefix.
            let root = archive.root();
            ctx.register_object_store(url.as_ref(), Arc::new(ChainedStore::new(archive.object_store(), root, files)));
            let root = root.as_ref();
            Ok(if root.is_empty() { format!("s3://{name}/") } else { format!("s3://{name}/{root}/") })
        }
        None => {
            let dir = vigil_evidence::store::Location::parse(archive.location())?;
            let vigil_evidence::store::Location::Local(dir) = dir else {
                return Err(Error::Invalid(format!("unsupported archive location {}", archive.location())));
            };
            let abs = std::fs::canonicalize(&dir)
                .map_err(|e| Error::Invalid(format!("evidence directory {}: {e}", dir.display())))?;
            // DataFusion reads local files as `file://` URLs, by absolute path.
            let base = object_store::path::Path::from_absolute_path(&abs)
                .map_err(|e| Error::Invalid(format!("evidence directory {}: {e}", abs.display())))?;
            let local = Arc::new(object_store::local::LocalFileSystem::new());
            let url = datafusion::execution::object_store::ObjectStoreUrl::local_filesystem();
            ctx.register_object_store(url.as_ref(), Arc::new(ChainedStore::new(local, &base, files)));
            Ok(format!("{}/", abs.display()))
        }
    }
}

/// A session over the archive's three tables (Hive partitions, JSON functions) that reads only the data
/// files its manifest chains list ([`crate::chained_store`]). The caller tells people about the files left
/// out ([`ArchiveSession::left_out`]); [`archive_context`] logs them.
pub async fn archive_session(archive: &Archive) -> Result<ArchiveSession> {
    let files = chained_files(archive).await?;
    if !files.broken_entries.is_empty() {
        tracing::warn!(
            entries = files.broken_entries.len(),
            first = %files.broken_entries[0],
            "manifest entries that are unreadable or not sealed by their own hash are ignored, with the files they \
             list (`vigil verify` names them)"
        );
    }
    let config = SessionConfig::new().with_information_schema(true);
    let mut state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    datafusion_functions_json::register_all(&mut state)?;
    let ctx = SessionContext::new_with_state(state);
    let base = register_store(&ctx, archive, &files)?;
    for spec in tables() {
        // Partition values come from the folder names; the files' own copy of a column is not read.
        let file_fields: Vec<Field> = spec
            .schema
            .fields()
            .iter()
            .filter(|f| !spec.partitions.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        let file_schema = Arc::new(Schema::new_with_metadata(file_fields, spec.schema.metadata().clone()));
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(spec.partitions.iter().map(|p| (p.to_string(), DataType::Utf8)).collect());
        // A kind the archive has no files of yet lists as an empty table (the store lists, not the disk).
        let url = ListingTableUrl::parse(format!("{base}{}/", spec.name))?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(file_schema);
        ctx.register_table(spec.name, Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(ArchiveSession { ctx, left_out: files.unlisted })
}

/// [`archive_session`]'s session, with a warning logged when data files that no manifest entry lists were
/// left out.
pub async fn archive_context(archive: &Archive) -> Result<SessionContext> {
    let session = archive_session(archive).await?;
    if let Some(first) = session.left_out.first() {
        tracing::warn!(
            files = session.left_out.len(),
            first = %first,
            "data files that no manifest entry lists are left out of queries (`vigil verify` names them)"
        );
    }
    Ok(session.ctx)
}

/// Runs one read-only query.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = ctx.sql_with_options(sql, options).await?;
    Ok(frame.collect().await?)
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file.
    Parquet,
}

impl std::str::FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "parquet" => Ok(OutputFormat::Parquet),
            _ => Err(Error::Invalid(format!("unknown format `{s}`: use table, csv, json or parquet"))),
        }
    }
}

/// `batch` in columns CSV can hold: a list, struct, map or union column (CSV has no nesting; alerts'
/// `criteria` and `event_ids` are lists) becomes its JSON text, one JSON value per cell
/// (`["CC6.1","CC7.2"]`); a binary column (`raw`) becomes its bytes as UTF-8 text (invalid sequences
/// replaced: the Parquet and JSON outputs keep the exact bytes). Nulls stay empty cells.
pub fn csv_ready(batch: &RecordBatch) -> Result<RecordBatch> {
    let err = |e: arrow::error::ArrowError| Error::Output { what: "CSV".into(), reason: e.to_string() };
    let options = arrow::json::writer::EncoderOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let text: Option<StringArray> = if field.data_type().is_nested() {
            let mut encoder = arrow::json::writer::make_encoder(field, column.as_ref(), &options).map_err(err)?;
            let mut buf = Vec::new();
            Some(
                (0..column.len())
                    .map(|i| {
                        (!encoder.is_null(i)).then(|| {
                            buf.clear();
                            encoder.encode(i, &mut buf);
                            String::from_utf8_lossy(&buf).into_owned()
                        })
                    })
                    .collect(),
            )
        } else {
            match field.data_type() {
                DataType::Binary => Some(binary_text(column.as_binary::<i32>())),
                DataType::LargeBinary => Some(binary_text(column.as_binary::<i64>())),
                _ => None,
            }
        };
        match text {
            Some(text) => {
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(Arc::new(text) as ArrayRef);
            }
            None => {
                fields.push(field.as_ref().clone().with_nullable(true));
                columns.push(column.clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)
}

fn binary_text<O: arrow::array::OffsetSizeTrait>(bin: &arrow::array::GenericBinaryArray<O>) -> StringArray {
    bin.iter().map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned())).collect()
}

/// Writes `batches` in `format`.
pub fn write_output(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    let err = |reason: String| Error::Output { what: "query results".into(), reason };
    match format {
        OutputFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches(batches).map_err(|e| err(e.to_string()))?;
            writeln!(out, "{text}").map_err(|e| err(e.to_string()))?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(out);
            for b in batches {
                writer.write(&csv_ready(b)?).map_err(|e| err(e.to_string()))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            writer.write_batches(&batches.iter().collect::<Vec<_>>()).map_err(|e| err(e.to_string()))?;
            writer.finish().map_err(|e| err(e.to_string()))?;
        }
        OutputFormat::Parquet => {
            let schema = batches.first().map(RecordBatch::schema).unwrap_or_else(|| Arc::new(Schema::empty()));
            let mut buf = Vec::new();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).map_err(|e| err(e.to_string()))?;
            for b in batches {
                writer.write(b).map_err(|e| err(e.to_string()))?;
            }
            writer.close().map_err(|e| err(e.to_string()))?;
            out.write_all(&buf).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{BinaryArray, Int64Array, ListBuilder, StringBuilder, StructArray};

    use super::*;

    #[test]
    fn csv_holds_lists_structs_and_binary_as_text() {
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.values().append_value("CC6.1");
        lists.values().append_value("CC7.2");
        lists.append(true);
        lists.append(false);
        lists.values().append_value("a,\"b\"");
        lists.append(true);
        let lists = lists.finish();
        let inner: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let structs = StructArray::from(vec![(Arc::new(Field::new("n", DataType::Int64, true)), inner)]);
        let raw = BinaryArray::from_opt_vec(vec![Some(b"{\"x\":1}".as_slice()), None, Some(b"\xffz".as_slice())]);
        let schema = Schema::new(vec![
            Field::new("criteria", lists.data_type().clone(), true),
            Field::new("s", structs.data_type().clone(), true),
            Field::new("raw", DataType::Binary, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(lists) as ArrayRef, Arc::new(structs) as ArrayRef, Arc::new(raw) as ArrayRef],
        )
        .unwrap();
        let mut out = Vec::new();
        write_output(&[batch], OutputFormat::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "criteria,s,raw");
        assert_eq!(lines[1], r#""[""CC6.1"",""CC7.2""]","{""n"":1}","{""x"":1}""#);
        assert_eq!(lines[2], ",{},");
        assert_eq!(lines[3], "\"[\"\"a,\\\"\"b\\\"\"\"\"]\",\"{\"\"n\"\":3}\",\u{fffd}z");
    }
}
