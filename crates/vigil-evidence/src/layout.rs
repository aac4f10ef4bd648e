//! Where each object lives in the archive (Hive-style, so DataFusion, DuckDB, Spark, Trino and Athena
//! read each kind as one table):
//!
//! ```text
//! {root}/events/source=S/date=YYYY-MM-DD/hour=HH/{ingest_source}-{partition}-{first}-{last}.parquet
//! {root}/alerts/date=YYYY-MM-DD/{ingest_source}-{partition}-{first}-{last}.parquet
//! {root}/dead_letters/format=F/{ingest_source}-{partition}-{first}-{last}.parquet
//! {root}/dead_letters/blobs/{ingest_source}-{partition}-{offset}.bin   (one oversized dead letter, whole)
//! {root}/manifests/{ingest_source}/{partition}/{seq:012}.json
//! {root}/manifests/{ingest_source}/{partition}/pending-{seq:012}.json   (only while a range is written)
//! {root}/rules/{sha256}.parquet, {root}/triage/{sha256}.parquet   (rule texts and triage: crate::records)
//! ```
//!
//! A data file's name is fixed by the offsets it covers, so a replay of the same range rewrites the same
//! object instead of adding one. Dead letters have no trustworthy event time, so they are partitioned by
//! input format only (their `ingest_time` column dates them).

use object_store::path::Path;

/// The top-level folders of data files (each listed by manifest entries): the source data, and the
/// record tables of [`crate::records`].
pub const DATA_KINDS: [&str; 5] = ["events", "alerts", "dead_letters", "rules", "triage"];

/// The base name of the data files of one committed range.
pub fn file_stem(ingest_source: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{ingest_source}-{partition}-{first}-{last}")
}

pub use vigil_schema::date_hour;

/// Path of an events file.
pub fn events_path(root: &Path, source: &str, date: &str, hour: &str, stem: &str) -> Path {
    root.clone()
        .join("events")
        .join(format!("source={source}").as_str())
        .join(format!("date={date}").as_str())
        .join(format!("hour={hour}").as_str())
        .join(format!("{stem}.parquet").as_str())
}

/// Path of an alerts file.
pub fn alerts_path(root: &Path, date: &str, stem: &str) -> Path {
    root.clone().join("alerts").join(format!("date={date}").as_str()).join(format!("{stem}.parquet").as_str())
}

/// Path of a dead-letters file.
pub fn dead_letters_path(root: &Path, format: &str, stem: &str) -> Path {
    root.clone().join("dead_letters").join(format!("format={format}").as_str()).join(format!("{stem}.parquet").as_str())
}

/// Path of a dead letter's whole bytes, stored as one object (a blob): named by its record's offset, so
/// a replay of the record rewrites the same object. Engines reading `dead_letters/**/*.parquet` skip it.
pub fn dead_letter_blob_path(root: &Path, ingest_source: &str, partition: i32, offset: i64) -> Path {
    root.clone().join("dead_letters").join("blobs").join(format!("{ingest_source}-{partition}-{offset}.bin").as_str())
}

/// [`dead_letter_blob_path`] relative to the archive root, as a manifest entry lists it.
pub fn dead_letter_blob_relative(ingest_source: &str, partition: i32, offset: i64) -> String {
    dead_letter_blob_path(&Path::default(), ingest_source, partition, offset).to_string()
}

/// Folder of one source partition's manifest chain.
pub fn manifest_dir(root: &Path, ingest_source: &str, partition: i32) -> Path {
    root.clone().join("manifests").join(ingest_source).join(partition.to_string().as_str())
}

/// Path of one manifest entry.
pub fn manifest_path(root: &Path, ingest_source: &str, partition: i32, seq: u64) -> Path {
    manifest_dir(root, ingest_source, partition).join(format!("{seq:012}.json").as_str())
}

/// Path of the intent that lists the data files of entry `seq` while they are written.
pub fn pending_path(root: &Path, ingest_source: &str, partition: i32, seq: u64) -> Path {
    manifest_dir(root, ingest_source, partition).join(format!("pending-{seq:012}.json").as_str())
}

/// The sequence number of a manifest entry's object name (`000000000007.json` -> 7); `None` for other names.
pub fn entry_seq(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The sequence number of a pending intent's object name (`pending-000000000007.json` -> 7).
pub fn pending_seq(name: &str) -> Option<u64> {
    entry_seq(name.strip_prefix("pending-")?)
}

/// Whether `file` (relative to the root) is a data file of source partition `ingest_source`/`partition`
/// for offsets after `after` (any offsets when `None`): a file of the chain's unwritten range, which no
/// committed entry can list. Parquet files are named for their range (`{stem}.parquet`, the range must
/// start after `after`), blobs for their record's offset.
pub fn names_unwritten_range(file: &str, ingest_source: &str, partition: i32, after: Option<i64>) -> bool {
    let kind = file.split('/').next().unwrap_or("");
    if !["events", "alerts", "dead_letters"].contains(&kind) || file.contains("..") {
        return false;
    }
    let Some(name) = file.rsplit('/').next() else { return false };
    let Some(rest) = name.strip_prefix(&format!("{ingest_source}-{partition}-")) else { return false };
    let first = if let Some(range) = rest.strip_suffix(".parquet") {
        let Some((first, last)) = range.split_once('-') else { return false };
        match (first.parse::<i64>(), last.parse::<i64>()) {
            (Ok(first), Ok(last)) if first <= last => first,
            _ => return false,
        }
    } else if let Some(offset) = rest.strip_suffix(".bin").filter(|_| file.starts_with("dead_letters/blobs/")) {
        match offset.parse::<i64>() {
            Ok(offset) => offset,
            Err(_) => return false,
        }
    } else {
        return false;
    };
    after.is_none_or(|after| first > after)
}

/// The path relative to the archive root, as recorded in manifests.
pub fn relative(root: &Path, path: &Path) -> String {
    let full = path.as_ref();
    let prefix = root.as_ref();
    if prefix.is_empty() {
        return full.to_string();
    }
    full.strip_prefix(prefix).map(|s| s.trim_start_matches('/')).unwrap_or(full).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_hive_style() {
        let root = Path::from("archive");
        let (date, hour) = date_hour(1_722_588_804_000_000);
        assert_eq!((date.as_str(), hour.as_str()), ("2024-08-02", "08"));
        let stem = file_stem("file-ab", 0, 1, 10);
        let p = events_path(&root, "aws.cloudtrail", &date, &hour, &stem);
        assert_eq!(p.as_ref(), "archive/events/source=aws.cloudtrail/date=2024-08-02/hour=08/file-ab-0-1-10.parquet");
        assert_eq!(relative(&root, &p), "events/source=aws.cloudtrail/date=2024-08-02/hour=08/file-ab-0-1-10.parquet");
        assert_eq!(manifest_path(&root, "t", 3, 7).as_ref(), "archive/manifests/t/3/000000000007.json");
        assert_eq!(
            dead_letter_blob_path(&root, "file-ab", 0, 12).as_ref(),
            "archive/dead_letters/blobs/file-ab-0-12.bin"
        );
        assert_eq!(entry_seq("000000000007.json"), Some(7));
        assert_eq!(entry_seq("pending-000000000007.json"), None);
        assert_eq!(pending_seq("pending-000000000007.json"), Some(7));
        assert_eq!(pending_seq(pending_path(&root, "t", 3, 7).filename().unwrap_or("")), Some(7));
    }

    #[test]
    fn only_files_of_the_unwritten_range_are_the_chains_to_remove() {
        let own = "events/source=aws.cloudtrail/date=2024-08-02/hour=08/file-ab-0-11-20.parquet";
        assert!(names_unwritten_range(own, "file-ab", 0, Some(10)));
        assert!(names_unwritten_range(own, "file-ab", 0, None));
        assert!(!names_unwritten_range(own, "file-ab", 0, Some(11)), "a committed range");
        assert!(!names_unwritten_range(own, "file-ab", 1, Some(10)), "another partition");
        assert!(!names_unwritten_range(own, "file-a", 0, Some(10)), "another source");
        assert!(names_unwritten_range("dead_letters/blobs/t-3-12.bin", "t", 3, Some(11)));
        assert!(!names_unwritten_range("dead_letters/blobs/t-3-12.bin", "t", 3, Some(12)));
        assert!(!names_unwritten_range("manifests/t/3/000000000001.json", "t", 3, None));
        assert!(!names_unwritten_range("state/t-3-12-20.parquet", "t", 3, None));
        assert!(!names_unwritten_range("events/../manifests/t-3-12-20.parquet", "t", 3, None));
        assert!(!names_unwritten_range("events/x/t-3-20-12.parquet", "t", 3, None));
    }
}
