//! `vigil query`: read-only SQL over an archive's `events`, `alerts` and `dead_letters`.
//!
//! Only queries run: DDL, DML and statements (`COPY`, `SET`, `CREATE`, ...) are refused before planning,
//! and the only tables are the archive's three, so a query cannot read or write other files.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use vigil_evidence::Archive;

use crate::{Error, Result};

/// One table of the archive: its folder, partition columns and full schema.
struct TableSpec {
    name: &'static str,
    partitions: &'static [&'static str],
    schema: SchemaRef,
}

fn tables() -> [TableSpec; 3] {
    [
        TableSpec { name: "events", partitions: &["source", "date", "hour"], schema: vigil_schema::event_schema() },
        TableSpec { name: "alerts", partitions: &["date"], schema: vigil_schema::alert_schema() },
        TableSpec { name: "dead_letters", partitions: &["format"], schema: vigil_schema::dead_letter_schema() },
    ]
}

/// The base URL of the archive for DataFusion, with the store registered when it is not local.
fn base_url(ctx: &SessionContext, archive: &Archive) -> Result<String> {
    match archive.bucket() {
        Some(bucket) => {
            let name = &bucket.settings().bucket;
            let url = datafusion::execution::object_store::ObjectStoreUrl::parse(format!("s3://{name}"))?;
            ctx.register_object_store(url.as_ref(), archive.object_store());
            let root = archive.root().as_ref();
            Ok(if root.is_empty() { format!("s3://{name}/") } else { format!("s3://{name}/{root}/") })
        }
        None => {
            let dir = vigil_evidence::store::Location::parse(archive.location())?;
            let vigil_evidence::store::Location::Local(dir) = dir else {
                return Err(Error::Invalid(format!("unsupported archive location {}", archive.location())));
            };
            let abs = std::fs::canonicalize(&dir)
                .map_err(|e| Error::Invalid(format!("evidence directory {}: {e}", dir.display())))?;
            Ok(format!("{}/", abs.display()))
        }
    }
}

/// A session with the archive's three tables registered (Hive partitions, JSON functions).
pub async fn archive_context(archive: &Archive) -> Result<SessionContext> {
    let config = SessionConfig::new().with_information_schema(true);
    let mut state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    datafusion_functions_json::register_all(&mut state)?;
    let ctx = SessionContext::new_with_state(state);
    let base = base_url(&ctx, archive)?;
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
        let folder = format!("{base}{}/", spec.name);
        if archive.bucket().is_none() {
            // A local archive without this kind yet: an empty folder lists as an empty table.
            std::fs::create_dir_all(&folder).ok();
        }
        let url = ListingTableUrl::parse(&folder)?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(file_schema);
        ctx.register_table(spec.name, Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(ctx)
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
                writer.write(b).map_err(|e| err(e.to_string()))?;
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
