//! Object versions on S3, for `vigil verify`: evidence that was deleted, overwritten or left without its
//! lock, seen in what a versioned bucket still remembers.
//!
//! A bucket with Object Lock is versioned. A plain `delete-object` removes nothing: it puts a delete marker
//! on top and the key reads as gone. A plain `put-object` puts a new version on top. The versions vigil
//! wrote stay beneath, locked. The rest of `verify` sees only the current objects (`file_missing`,
//! `file_hash_mismatch`, ...); this check lists the versions (`ListObjectVersions`) and names what
//! happened, with what it takes to undo it:
//!
//! - `file_deleted_recoverable`: the current version of an evidence object is a delete marker and its data
//!   is in an older version. The detail names the version holding the data and the `aws s3api
//!   delete-object --version-id` command that deletes the marker, which restores the object.
//! - `file_overwritten`: an evidence object has versions with different content (ETags) from the one vigil
//!   wrote on. The detail lists them oldest first with their times; the first is vigil's. Writing the same
//!   bytes again (a retried upload) is no finding.
//! - `retention_missing`: the bucket has a default retention, and a current evidence object has no Object
//!   Lock retention, a weaker mode (`GOVERNANCE` where the default is `COMPLIANCE`), or one that ends
//!   before its LastModified plus the default's days (one day of slack). The detail says what it has, what
//!   the default demands, and the `put-object-retention` command that locks it again.
//!
//! **Evidence** here is every manifest entry (`manifests/S/P/NNNNNNNNNNNN.json`), every digest
//! (`digests/*.json`), and every data file (`events/`, `alerts/`, `dead_letters/`) that a readable
//! manifest entry lists and no disposal entry lists. Not evidence: `state/` and pending intents (vigil
//! replaces and deletes them itself), data files no entry lists (vigil's resume deletes the files of a
//! range it wrote but never committed; `extra_file` covers any other), and disposed files (deleted on
//! purpose once past retention).
//!
//! A data file may also have versions older than the one its entry commits to, all vigil's: a range
//! written, not committed (the process stopped), deleted on resume and written again. Only the version
//! that was current when the entry was written (by the bucket's own clock, so no clock skew) and later ones
//! are compared.
//!
//! Warnings, not failures: `versions_unavailable` when the bucket is not versioned (S3 keeps no older
//! versions to check or restore) or the credentials may not list versions; `retention_unreadable` when
//! they may not read an object's retention or the bucket's lock. A read-only auditor needs
//! `s3:ListBucketVersions`, `s3:GetBucketVersioning`, `s3:GetBucketObjectLockConfiguration`,
//! `s3:GetObjectVersion` and `s3:GetObjectRetention` besides what the rest of `verify` reads.
//!
//! Cost: one listing of every version under the archive's root (1000 per request), and one HEAD per
//! current evidence object when the bucket has a default retention, [`VersionScope::concurrency`] at once.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use crate::layout::DATA_KINDS;
use crate::manifest::ManifestEntry;
use crate::store::{ObjectRetention, ObjectVersion, mode_strength};
use crate::verify::{Finding, VerifyReport};
use crate::{Archive, Result, layout};

const DAY_US: i64 = 86_400_000_000;

/// Retention reads at once when [`VersionScope::concurrency`] is 0.
const DEFAULT_CONCURRENCY: usize = 32;

/// What [`check`] treats as evidence, from the manifest entries `verify` read.
#[derive(Debug, Clone, Default)]
pub struct VersionScope {
    /// Data files a readable manifest entry lists (paths relative to the archive root), each with the path
    /// of the entry that lists it.
    pub listed: BTreeMap<String, String>,
    /// Data files a disposal entry records as deleted past retention.
    pub disposed: BTreeSet<String>,
    /// Retention reads (HEAD requests) at once; 0: 32.
    pub concurrency: usize,
}

impl VersionScope {
    /// The scope of the manifest entries `entries` (path relative to the root -> its bytes); entries that
    /// do not parse are left out (`verify` reports them).
    pub fn from_entries(entries: &BTreeMap<String, bytes::Bytes>, concurrency: usize) -> VersionScope {
        let mut scope = VersionScope { concurrency, ..VersionScope::default() };
        for (path, bytes) in entries {
            let Ok(entry) = serde_json::from_slice::<ManifestEntry>(bytes) else { continue };
            for file in entry.files {
                scope.listed.entry(file.path).or_insert_with(|| path.clone());
            }
            if let Some(disposal) = entry.disposal {
                scope.disposed.extend(disposal.files.into_iter().map(|f| f.path));
            }
        }
        scope
    }
}

/// Which kind of evidence a key (relative to the archive root) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence<'a> {
    /// A manifest entry.
    Entry,
    /// A digest (`digests/*.json`).
    Digest,
    /// A data file, listed by the entry at this path.
    Data {
        /// The entry that lists it.
        entry: &'a str,
    },
}

/// What `key` (relative to the archive root) is, or `None` when it is no evidence (see the module docs).
pub fn evidence<'a>(key: &str, scope: &'a VersionScope) -> Option<Evidence<'a>> {
    match key.split('/').collect::<Vec<_>>().as_slice() {
        ["manifests", _, partition, name] => {
            (partition.parse::<i32>().is_ok() && layout::entry_seq(name).is_some()).then_some(Evidence::Entry)
        }
        ["digests", name] => name.ends_with(".json").then_some(Evidence::Digest),
        [kind, ..] if DATA_KINDS.contains(kind) && !scope.disposed.contains(key) => {
            scope.listed.get(key).map(|entry| Evidence::Data { entry })
        }
        _ => None,
    }
}

fn time_us(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
}

fn format_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| us.to_string())
}

/// `text` as one shell word (quoted unless it is plainly safe).
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._=-+:@,".contains(&b)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The versions of each key under `prefix`, by key relative to it, newest first (by LastModified, then
/// the current one first, then the listing's order, which is newest first per key).
pub fn by_key(versions: Vec<ObjectVersion>, prefix: &str) -> BTreeMap<String, Vec<ObjectVersion>> {
    let mut out: BTreeMap<String, Vec<ObjectVersion>> = BTreeMap::new();
    for version in versions {
        let Some(relative) = version.key.strip_prefix(prefix) else { continue };
        out.entry(relative.to_string()).or_default().push(version);
    }
    for versions in out.values_mut() {
        versions.sort_by(|a, b| {
            let (ta, tb) = (time_us(&a.last_modified), time_us(&b.last_modified));
            tb.cmp(&ta).then(b.is_latest.cmp(&a.is_latest))
        });
    }
    out
}

fn describe(v: &ObjectVersion) -> String {
    format!("{} ({}, {} bytes, ETag {})", v.version_id, v.last_modified, v.size, v.etag)
}

/// `file_deleted_recoverable` when the current version of `key` is a delete marker with data beneath.
/// `versions` newest first; `full_key` is the key in `bucket`.
pub fn deleted(key: &str, full_key: &str, bucket: &str, versions: &[ObjectVersion]) -> Option<Finding> {
    if !versions.first()?.delete_marker {
        return None;
    }
    let data_at = versions.iter().position(|v| !v.delete_marker)?;
    let (markers, data) = (&versions[..data_at], &versions[data_at]);
    let command = |m: &ObjectVersion| {
        format!(
            "`aws s3api delete-object --bucket {} --key {} --version-id {}`",
            shell_word(bucket),
            shell_word(full_key),
            shell_word(&m.version_id)
        )
    };
    let commands: Vec<String> = markers.iter().map(command).collect();
    let detail = if let [marker] = markers {
        format!(
            "deleted by a delete marker (version {}, {}); the data is still in version {}: restore it with {}",
            marker.version_id,
            marker.last_modified,
            describe(data),
            commands[0]
        )
    } else {
        let ids: Vec<&str> = markers.iter().map(|m| m.version_id.as_str()).collect();
        format!(
            "deleted by {} delete markers (versions {}, newest first); the data is still in version {}: restore it \
             by deleting each marker: {}",
            markers.len(),
            ids.join(", "),
            describe(data),
            commands.join(" then ")
        )
    };
    Some(Finding { kind: "file_deleted_recoverable".into(), object: key.to_string(), detail })
}

/// `file_overwritten` when `key` has versions with different ETags from the one vigil wrote on: the oldest
/// version, or for a data file (`committed_at`: when its entry was written, by the bucket's clock) the
/// newest version written by then. `versions` newest first.
pub fn overwritten(
    key: &str,
    full_key: &str,
    bucket: &str,
    versions: &[ObjectVersion],
    committed_at: Option<i64>,
) -> Option<Finding> {
    let data: Vec<&ObjectVersion> = versions.iter().rev().filter(|v| !v.delete_marker).collect();
    let base = committed_at
        .and_then(|at| data.iter().rposition(|v| time_us(&v.last_modified).is_some_and(|t| t <= at)))
        .unwrap_or(0);
    let kept = &data[base..];
    let first = kept.first()?;
    if kept.iter().all(|v| v.etag == first.etag) {
        return None;
    }
    let current = match versions.first() {
        Some(v) if v.delete_marker => format!("the key now reads as deleted (delete marker {})", v.version_id),
        Some(v) => format!("the current one is {}", v.version_id),
        None => String::new(),
    };
    let earlier = if base > 0 {
        format!(" ({base} earlier version(s), written before its manifest entry, are vigil's uncommitted attempts)")
    } else {
        String::new()
    };
    let listed: Vec<String> = kept.iter().map(|v| describe(v)).collect();
    let detail = format!(
        "{} versions with different content, oldest first: {}; the first is what vigil wrote, {current}{earlier}. \
         Read vigil's with `aws s3api get-object --bucket {} --key {} --version-id {} FILE`",
        kept.len(),
        listed.join("; "),
        shell_word(bucket),
        shell_word(full_key),
        shell_word(&first.version_id)
    );
    Some(Finding { kind: "file_overwritten".into(), object: key.to_string(), detail })
}

/// `retention_missing` when the `current` version of `key` is protected less than the bucket's default
/// retention (`mode`, `days`) demands: no retention, a weaker mode, or an end before LastModified + `days`
/// (less one day of slack).
pub fn retention_missing(
    key: &str,
    full_key: &str,
    bucket: &str,
    current: &ObjectVersion,
    retention: &ObjectRetention,
    mode: &str,
    days: u32,
) -> Option<Finding> {
    let written = time_us(&current.last_modified)?;
    let demanded = written + i64::from(days) * DAY_US;
    let until = retention.retain_until.as_deref().and_then(time_us);
    let (has, risk) = match (retention.mode.as_deref(), until) {
        (Some(has_mode), Some(until)) => {
            let weaker = mode_strength(has_mode) < mode_strength(mode);
            let shorter = until < demanded - DAY_US;
            if !weaker && !shorter {
                return None;
            }
            let risk = if shorter {
                format!("it can be deleted from {} on", format_us(until))
            } else {
                "whoever has s3:BypassGovernanceRetention can delete it now".to_string()
            };
            (format!("{has_mode} retention until {}", format_us(until)), risk)
        }
        _ => ("no Object Lock retention".to_string(), "whoever may delete objects can delete it".to_string()),
    };
    let hold = if retention.legal_hold {
        " (a legal hold is on, which whoever has s3:PutObjectLegalHold can lift)"
    } else {
        ""
    };
    let until = format_us(demanded);
    let detail = format!(
        "version {} (written {}) has {has}{hold}, but the bucket's default retention ({mode}, {days} days) demands \
         {mode} until {until}: {risk}. Lock it again with `aws s3api put-object-retention --bucket {} --key {} \
         --version-id {} --retention '{{\"Mode\":\"{mode}\",\"RetainUntilDate\":\"{until}\"}}'`",
        current.version_id,
        current.last_modified,
        shell_word(bucket),
        shell_word(full_key),
        shell_word(&current.version_id)
    );
    Some(Finding { kind: "retention_missing".into(), object: key.to_string(), detail })
}

fn warn(report: &mut VerifyReport, kind: &str, object: &str, detail: String) {
    report.warnings.push(Finding { kind: kind.into(), object: object.to_string(), detail });
}

/// Checks the object versions of `archive` (see the module docs); does nothing for an archive that is not
/// on S3. Findings and warnings go to `report`. Fails only when the bucket does not answer.
pub async fn check(archive: &Archive, scope: &VersionScope, report: &mut VerifyReport) -> Result<()> {
    let Some(bucket) = archive.bucket() else { return Ok(()) };
    let name = bucket.settings().bucket.clone();
    let root: &str = archive.root().as_ref();
    let prefix = if root.is_empty() { String::new() } else { format!("{root}/") };
    match bucket.versioning().await? {
        Ok(Some(status)) if status == "Enabled" => {}
        Ok(status) => {
            let detail = format!(
                "the bucket's versioning is {}: S3 keeps no earlier versions, so evidence deleted or overwritten \
                 cannot be shown or restored; keep evidence in a bucket created with Object Lock enabled (which \
                 enables versioning)",
                status.as_deref().unwrap_or("off")
            );
            warn(report, "versions_unavailable", &name, detail);
            return Ok(());
        }
        Err(denied) => {
            let detail = format!("{denied}; object versions (deleted or overwritten evidence) were not checked");
            warn(report, "versions_unavailable", &name, detail);
            return Ok(());
        }
    }
    let versions = match bucket.list_object_versions(&prefix).await? {
        Ok(versions) => versions,
        Err(denied) => {
            let detail = format!("{denied}; object versions (deleted or overwritten evidence) were not checked");
            warn(report, "versions_unavailable", &name, detail);
            return Ok(());
        }
    };
    let history = by_key(versions, &prefix);
    // When an entry was written, by the bucket's clock: its first version (entries are only ever created).
    let written = |entry: &str| {
        history.get(entry)?.iter().rev().find(|v| !v.delete_marker).and_then(|v| time_us(&v.last_modified))
    };
    let mut current: Vec<(String, String, ObjectVersion)> = Vec::new();
    for (key, versions) in &history {
        let Some(kind) = evidence(key, scope) else { continue };
        let full_key = format!("{prefix}{key}");
        report.findings.extend(deleted(key, &full_key, &name, versions));
        let committed_at = match kind {
            Evidence::Data { entry } => written(entry),
            Evidence::Entry | Evidence::Digest => None,
        };
        report.findings.extend(overwritten(key, &full_key, &name, versions, committed_at));
        if let Some(latest) = versions.first().filter(|v| !v.delete_marker) {
            current.push((key.clone(), full_key, latest.clone()));
        }
    }
    let lock = match bucket.lock_status().await {
        Ok(lock) => lock,
        Err(e) => {
            let detail = format!("{e}; object retention was not checked (needs s3:GetBucketObjectLockConfiguration)");
            warn(report, "retention_unreadable", &name, detail);
            return Ok(());
        }
    };
    let (true, Some(mode), Some(days)) = (lock.enabled, lock.mode, lock.days) else { return Ok(()) };
    let concurrency = if scope.concurrency == 0 { DEFAULT_CONCURRENCY } else { scope.concurrency };
    let reads: Vec<_> = futures::stream::iter(current.into_iter().map(|(key, full_key, version)| async move {
        let retention = bucket.object_retention(&full_key, &version.version_id).await;
        (key, full_key, version, retention)
    }))
    .buffer_unordered(concurrency)
    .collect()
    .await;
    let mut denied = Vec::new();
    for (key, full_key, version, retention) in reads {
        match retention? {
            Ok(Some(retention)) => {
                report.findings.extend(retention_missing(&key, &full_key, &name, &version, &retention, &mode, days))
            }
            Ok(None) => {}
            Err(refused) => denied.push((key, refused)),
        }
    }
    if let Some((key, refused)) = denied.first() {
        let detail = format!(
            "{refused}: the Object Lock retention of {} object(s), such as {key}, was not checked",
            denied.len()
        );
        warn(report, "retention_unreadable", &name, detail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, at: &str, etag: &str) -> ObjectVersion {
        ObjectVersion {
            key: "p/k".into(),
            version_id: id.into(),
            last_modified: format!("2026-12-03T12:{at}.000Z"),
            size: 10,
            etag: etag.into(),
            ..ObjectVersion::default()
        }
    }

    fn marker(id: &str, at: &str) -> ObjectVersion {
        ObjectVersion { delete_marker: true, etag: String::new(), size: 0, ..v(id, at, "") }
    }

    fn latest(mut v: ObjectVersion) -> ObjectVersion {
        v.is_latest = true;
        v
    }

    fn scope() -> VersionScope {
        let mut scope = VersionScope::default();
        scope.listed.insert("events/source=a/x.parquet".into(), "manifests/s/0/000000000000.json".into());
        scope.listed.insert("alerts/date=d/gone.parquet".into(), "manifests/s/0/000000000000.json".into());
        scope.disposed.insert("alerts/date=d/gone.parquet".into());
        scope
    }

    #[test]
    fn evidence_is_entries_digests_and_listed_undisposed_data() {
        let scope = scope();
        assert_eq!(evidence("manifests/s/0/000000000007.json", &scope), Some(Evidence::Entry));
        assert_eq!(evidence("manifests/s/0/pending-000000000007.json", &scope), None);
        assert_eq!(evidence("manifests/s/x/000000000007.json", &scope), None);
        assert_eq!(evidence("digests/2026-12-03.json", &scope), Some(Evidence::Digest));
        assert_eq!(
            evidence("events/source=a/x.parquet", &scope),
            Some(Evidence::Data { entry: "manifests/s/0/000000000000.json" })
        );
        assert_eq!(evidence("events/source=a/unlisted.parquet", &scope), None);
        assert_eq!(evidence("alerts/date=d/gone.parquet", &scope), None, "disposed");
        assert_eq!(evidence("state/rules.json", &scope), None);
    }

    #[test]
    fn versions_group_by_key_newest_first() {
        // moto lists versions and delete markers apart; the delete marker is the newest.
        let mut a = latest(marker("m", "00:09"));
        a.key = "root/events/x".into();
        let mut b = v("v2", "00:05", "e2");
        b.key = "root/events/x".into();
        let mut c = v("v1", "00:01", "e1");
        c.key = "root/events/x".into();
        let mut other = v("o", "00:01", "e");
        other.key = "rootless/y".into();
        let history = by_key(vec![b, c, a, other], "root/");
        assert_eq!(history.len(), 1);
        let ids: Vec<&str> = history["events/x"].iter().map(|v| v.version_id.as_str()).collect();
        assert_eq!(ids, ["m", "v2", "v1"]);
    }

    #[test]
    fn a_delete_marker_over_data_is_recoverable() {
        let versions = [latest(marker("DM1", "00:09")), v("V1", "00:01", "e1")];
        let f = deleted("events/x", "p/events/x", "b", &versions).expect("finding");
        assert_eq!((f.kind.as_str(), f.object.as_str()), ("file_deleted_recoverable", "events/x"));
        assert!(f.detail.contains("version DM1"), "{}", f.detail);
        assert!(f.detail.contains("still in version V1"), "{}", f.detail);
        assert!(f.detail.contains("`aws s3api delete-object --bucket b --key p/events/x --version-id DM1`"));
        let two = [latest(marker("DM2", "00:10")), marker("DM1", "00:09"), v("V1", "00:01", "e1")];
        let f = deleted("events/x", "p/events/x", "b", &two).expect("finding");
        assert!(f.detail.contains("2 delete markers (versions DM2, DM1"), "{}", f.detail);
        assert!(deleted("k", "k", "b", &[latest(marker("DM", "00:09"))]).is_none(), "nothing to restore");
        assert!(deleted("k", "k", "b", &[latest(v("V1", "00:01", "e1"))]).is_none());
    }

    #[test]
    fn different_content_after_vigils_version_is_overwritten() {
        let versions = [latest(v("V2", "00:05", "e2")), v("V1", "00:01", "e1")];
        let f = overwritten("alerts/x", "alerts/x", "b", &versions, None).expect("finding");
        assert_eq!(f.kind, "file_overwritten");
        let (first, second) = (f.detail.find("V1 (").expect("V1"), f.detail.find("V2 (").expect("V2"));
        assert!(first < second, "oldest first: {}", f.detail);
        assert!(f.detail.contains("2026-12-03T12:00:01.000Z"), "{}", f.detail);
        assert!(f.detail.contains("the current one is V2"), "{}", f.detail);
        // The same bytes again (a retried upload): no finding.
        let same = [latest(v("V2", "00:05", "e1")), v("V1", "00:01", "e1")];
        assert!(overwritten("k", "k", "b", &same, None).is_none());
        // Overwritten, then deleted.
        let gone = [latest(marker("DM", "00:09")), v("V2", "00:05", "e2"), v("V1", "00:01", "e1")];
        let f = overwritten("k", "k", "b", &gone, None).expect("finding");
        assert!(f.detail.contains("reads as deleted (delete marker DM)"), "{}", f.detail);
    }

    #[test]
    fn uncommitted_attempts_before_the_entry_are_not_overwrites() {
        // Written (V1), never committed, deleted on resume (DM), written again (V2), committed at 00:03.
        let committed = time_us("2026-12-03T12:00:03Z");
        let resumed = [latest(v("V2", "00:02", "e2")), marker("DM", "00:02"), v("V1", "00:01", "e1")];
        assert!(overwritten("events/x", "events/x", "b", &resumed, committed).is_none());
        let mut tampered = resumed.to_vec();
        tampered[0].is_latest = false;
        tampered.insert(0, latest(v("V3", "00:30", "e3")));
        let f = overwritten("events/x", "events/x", "b", &tampered, committed).expect("finding");
        assert!(f.detail.starts_with("2 versions") && f.detail.contains("V2 (") && !f.detail.contains("V1 ("));
        assert!(f.detail.contains("1 earlier version(s)"), "{}", f.detail);
    }

    #[test]
    fn retention_must_meet_the_bucket_default() {
        let current = latest(v("V1", "00:00", "e1"));
        let keeps = |mode: Option<&str>, until: Option<&str>| ObjectRetention {
            mode: mode.map(str::to_string),
            retain_until: until.map(str::to_string),
            legal_hold: false,
        };
        let check = |r: &ObjectRetention| retention_missing("k", "p/k", "b", &current, r, "COMPLIANCE", 400);
        // 400 days after 2026-12-03T12:00:00Z is 2028-01-07T12:00:00Z.
        assert!(check(&keeps(Some("COMPLIANCE"), Some("2028-01-07T12:00:00Z"))).is_none());
        assert!(check(&keeps(Some("COMPLIANCE"), Some("2028-01-07T00:00:00.000Z"))).is_none(), "a day of slack");
        let f = check(&keeps(None, None)).expect("no retention");
        assert_eq!(f.kind, "retention_missing");
        assert!(f.detail.contains("has no Object Lock retention"), "{}", f.detail);
        assert!(f.detail.contains("demands COMPLIANCE until 2028-01-07T12:00:00Z"), "{}", f.detail);
        assert!(f.detail.contains("--version-id V1"), "{}", f.detail);
        let f = check(&keeps(Some("COMPLIANCE"), Some("2027-12-01T00:00:00Z"))).expect("too short");
        assert!(f.detail.contains("COMPLIANCE retention until 2027-12-01T00:00:00Z"), "{}", f.detail);
        let f = check(&keeps(Some("GOVERNANCE"), Some("2029-01-01T00:00:00Z"))).expect("weaker mode");
        assert!(f.detail.contains("s3:BypassGovernanceRetention"), "{}", f.detail);
        let governance = retention_missing(
            "k",
            "p/k",
            "b",
            &current,
            &keeps(Some("COMPLIANCE"), Some("2027-01-01T00:00:00Z")),
            "GOVERNANCE",
            10,
        );
        assert!(governance.is_none(), "a stronger mode and a longer retention than demanded");
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(
            shell_word("p/events/source=a/date=2024-01-01/x-0-1.parquet"),
            "p/events/source=a/date=2024-01-01/x-0-1.parquet"
        );
        assert_eq!(shell_word("a b'c"), r"'a b'\''c'");
    }
}
