//! One manifest chain, entry by entry: its numbering, hashes and links, offsets and counts, disposals,
//! and the files each entry lists (queued to be hashed).

use std::collections::{BTreeMap, BTreeSet};

use super::{FileCheck, Head, Listed, VerifyOptions, VerifyReport, parse_time};
use crate::Result;
use crate::manifest::ManifestEntry;

/// Each disposal must list files of earlier data entries, with their recorded hashes, that were past the
/// retention it names when it was written; a disposed file still present is a warning (deletion pending).
fn check_disposals(
    read: &[(u64, String, ManifestEntry)],
    listed: &BTreeMap<String, Listed>,
    report: &mut VerifyReport,
) {
    let by_seq: BTreeMap<u64, (&String, &ManifestEntry)> = read.iter().map(|(_, p, e)| (e.seq, (p, e))).collect();
    let stored = |path: &String| listed.get(path).map(|l| l.stored_us);
    for (_, path, entry) in read {
        let Some(disposal) = &entry.disposal else { continue };
        let written = parse_time(&Some(entry.written_at.clone()));
        let retention_us = i64::from(disposal.retention_days) * 86_400_000_000;
        let floor = disposal.min_retention_days.unwrap_or(crate::expire::DEFAULT_MIN_RETENTION_DAYS);
        if disposal.retention_days < floor.max(crate::expire::DEFAULT_MIN_RETENTION_DAYS) {
            report.find(
                "disposal_below_floor",
                path,
                format!(
                    "disposed of evidence after {} days, below the {} days an audit period needs{}",
                    disposal.retention_days,
                    floor.max(crate::expire::DEFAULT_MIN_RETENTION_DAYS),
                    if disposal.floor_overridden {
                        " (`vigil evidence expire --allow-short-retention` was given)"
                    } else {
                        " (and no override is recorded: the entry was edited, or written by another tool)"
                    }
                ),
            );
        }
        for seq in &disposal.entries {
            let Some((disposed_path, disposed)) = by_seq.get(seq).filter(|(_, d)| d.has_data() && d.seq < entry.seq)
            else {
                report.find("disposal_invalid", path, format!("names entry {seq}, which is no earlier data entry"));
                continue;
            };
            let due = parse_time(&Some(disposed.written_at.clone())).map(|w| w + retention_us);
            if !matches!((due, written), (Some(due), Some(written)) if due <= written) {
                report.find(
                    "disposal_early",
                    path,
                    format!(
                        "disposes of entry {seq} (written {}) before its {} days of retention ended",
                        disposed.written_at, disposal.retention_days
                    ),
                );
            } else if let (Some(then), Some(now)) = (stored(disposed_path), stored(path))
                && then + retention_us > now
            {
                // The writers' clocks agree it was due; the store's own clock says it was not.
                report.find(
                    "disposal_early",
                    path,
                    format!(
                        "disposes of entry {seq} before its {} days of retention ended by the store's clock (stored \
                         {} and {}): the clock of the writer that disposed of it was set ahead",
                        disposal.retention_days,
                        vigil_schema::format_time_us(then),
                        vigil_schema::format_time_us(now)
                    ),
                );
            }
        }
        for file in &disposal.files {
            let known = disposal.entries.iter().filter_map(|s| by_seq.get(s)).flat_map(|(_, e)| e.files.iter());
            if !known.clone().any(|f| f.path == file.path && f.sha256 == file.sha256) {
                report.find(
                    "disposal_invalid",
                    &file.path,
                    format!("listed by disposal {path} but not a file (with that hash) of the entries it names"),
                );
            }
            if listed.contains_key(&file.path) {
                report.warn(
                    "disposal_incomplete",
                    &file.path,
                    "its disposal is recorded but the file is still there; run `vigil evidence expire` again",
                );
            }
        }
    }
}

pub(super) struct ChainOutcome {
    pub(super) referenced: Vec<String>,
    pub(super) to_check: Vec<FileCheck>,
    /// Each readable entry as the digest check needs it.
    pub(super) views: BTreeMap<u64, crate::digest_check::EntryView>,
    /// The last offset of the newest readable entry.
    pub(super) last_offset: Option<i64>,
    /// `entry_hash` of each readable entry, by the sequence number of its object name.
    pub(super) hashes: BTreeMap<u64, String>,
}

pub(super) fn check_chain(
    source: &str,
    partition: i32,
    entries: &BTreeMap<u64, String>,
    contents: &BTreeMap<String, bytes::Bytes>,
    options: &VerifyOptions,
    listed: &BTreeMap<String, Listed>,
    report: &mut VerifyReport,
) -> Result<ChainOutcome> {
    let name = |seq: u64| format!("{source}/{partition}#{seq}");
    let mut read: Vec<(u64, String, ManifestEntry)> = Vec::with_capacity(entries.len());
    for (seq, path) in entries {
        report.entries += 1;
        let bytes = contents.get(path).map(|b| b.as_ref()).unwrap_or_default();
        match serde_json::from_slice::<ManifestEntry>(bytes) {
            Ok(entry) => read.push((*seq, path.clone(), entry)),
            Err(e) => report.find("entry_unreadable", path, format!("not a manifest entry: {e}")),
        }
    }
    // Holes in the numbering: removed entries.
    let max = entries.keys().next_back().copied().unwrap_or(0);
    for seq in 0..=max {
        if !entries.contains_key(&seq) {
            report.find("entry_missing", name(seq), format!("entry {seq} of {} is missing (removed)", max + 1));
        }
    }
    let disposed: BTreeSet<String> = read
        .iter()
        .filter_map(|(_, _, e)| e.disposal.as_ref())
        .flat_map(|d| d.files.iter().map(|f| f.path.clone()))
        .collect();
    check_disposals(&read, listed, report);
    let hashes = read.iter().map(|(seq, _, e)| (*seq, e.entry_hash.clone())).collect();
    let mut out = ChainOutcome {
        referenced: Vec::new(),
        to_check: Vec::new(),
        hashes,
        views: BTreeMap::new(),
        last_offset: read.last().map(|(_, _, e)| e.last_offset),
    };
    let mut prev: Option<&ManifestEntry> = None;
    let mut prev_data_last: Option<i64> = None;
    for (seq, path, entry) in &read {
        check_links(entry, *seq, path, prev, (source, partition), report);
        if entry.disposal.is_none() {
            check_data_entry(entry, path, prev_data_last, report);
            prev_data_last = Some(entry.last_offset);
        }
        let overlaps = |f: &crate::FileEntry| {
            let (min, max) = (parse_time(&f.time_min), parse_time(&f.time_max));
            options.from_us.is_none_or(|from| max.is_none_or(|m| m >= from))
                && options.to_us.is_none_or(|to| min.is_none_or(|m| m < to))
        };
        out.views.insert(
            *seq,
            crate::digest_check::EntryView {
                entry_hash: entry.entry_hash.clone(),
                stored_us: listed
                    .get(path)
                    .map(|l| l.stored_us)
                    .or_else(|| parse_time(&Some(entry.written_at.clone())))
                    .unwrap_or(0),
                in_scope: entry.files.is_empty() || entry.files.iter().any(overlaps),
            },
        );
        check_entry_files(entry, &name(*seq), listed, &disposed, &overlaps, &mut out, report);
        prev = Some(entry);
    }
    if let Some((_, _, last)) = read.last() {
        report.heads.push(Head {
            ingest_source: source.to_string(),
            partition,
            seq: last.seq,
            entry_hash: last.entry_hash.clone(),
            last_offset: last.last_offset,
        });
    }
    Ok(out)
}

/// An entry's own hash, its place in the chain and its link to the previous entry.
fn check_links(
    entry: &ManifestEntry,
    seq: u64,
    path: &str,
    prev: Option<&ManifestEntry>,
    (source, partition): (&str, i32),
    report: &mut VerifyReport,
) {
    if entry.compute_hash() != entry.entry_hash {
        report.find("entry_edited", path, "its content does not match its entry_hash (edited after it was written)");
    }
    if entry.seq != seq || entry.ingest_source != source || entry.partition != partition {
        report.find(
            "entry_out_of_order",
            path,
            format!("it says it is {}/{}#{} (moved or renamed)", entry.ingest_source, entry.partition, entry.seq),
        );
    }
    let expected_prev = prev.map(|p| p.entry_hash.as_str()).unwrap_or("");
    let prev_is_adjacent = prev.is_some_and(|p| p.seq + 1 == entry.seq) || (prev.is_none() && entry.seq == 0);
    if entry.prev_hash != expected_prev && prev_is_adjacent {
        report.find(
            "entry_out_of_order",
            path,
            "its prev_hash is not the previous entry's hash (reordered or replaced)",
        );
    }
}

/// A data entry (not a disposal): its offsets continue the previous data entry's (`prev_last`), its
/// counts add up to its offsets and to its files' rows; a recorded loss is a completeness break.
fn check_data_entry(entry: &ManifestEntry, path: &str, prev_last: Option<i64>, report: &mut VerifyReport) {
    if let Some(last) = prev_last {
        if entry.first_offset > last + 1 {
            report.find(
                "offset_gap",
                path,
                format!("offsets {}..={} are in no entry and not recorded as lost", last + 1, entry.first_offset - 1),
            );
        } else if entry.first_offset <= last {
            report.find(
                "offset_overlap",
                path,
                format!(
                    "starts at offset {} but offsets up to {last} are already in earlier entries",
                    entry.first_offset
                ),
            );
        }
    }
    let span = (entry.last_offset - entry.first_offset + 1).max(0) as u64;
    let c = &entry.counts;
    if c.events + c.dead_letters + c.skipped + c.lost + c.records != span {
        report.find(
            "counts_mismatch",
            path,
            format!(
                "events {} + dead letters {} + skipped {} + lost {} + records {} != {span} offsets",
                c.events, c.dead_letters, c.skipped, c.lost, c.records
            ),
        );
    }
    let rows_of = |kind: &str| entry.files.iter().filter(|f| f.kind == kind).map(|f| f.rows).sum::<u64>();
    if rows_of("events") != c.events
        || rows_of("dead_letters") != c.dead_letters
        || rows_of("alerts") != c.alerts
        || rows_of(crate::records::RULES_KIND) + rows_of(crate::records::TRIAGE_KIND) != c.records
    {
        report.find("counts_mismatch", path, "the files' rows do not add up to the entry's counts");
    }
    if let Some(reason) = &entry.lost_reason {
        report.lost_offsets += c.lost;
        report.warn(
            "completeness_break",
            path,
            format!("offsets {}..={} were never read: {reason}", entry.first_offset, entry.last_offset),
        );
    }
}

/// An entry's files: each blob names a dead letter of its range; each file is in the archive (unless
/// disposed of) with its size; those in the period (`overlaps`) are queued to be hashed.
fn check_entry_files(
    entry: &ManifestEntry,
    name: &str,
    listed: &BTreeMap<String, Listed>,
    disposed: &BTreeSet<String>,
    overlaps: &dyn Fn(&crate::FileEntry) -> bool,
    out: &mut ChainOutcome,
    report: &mut VerifyReport,
) {
    for file in entry.files.iter().filter(|f| f.kind == crate::BLOB_KIND) {
        match file.offset {
            Some(o) if (entry.first_offset..=entry.last_offset).contains(&o) && entry.counts.dead_letters > 0 => {}
            _ => report.find(
                "blob_invalid",
                &file.path,
                format!(
                    "a dead-letter blob of {} that names no dead letter of its range {}..={}",
                    name, entry.first_offset, entry.last_offset
                ),
            ),
        }
    }
    for file in &entry.files {
        out.referenced.push(file.path.clone());
        match listed.get(&file.path) {
            None if disposed.contains(&file.path) => {}
            None => report.find("file_missing", &file.path, format!("listed by {} but not in the archive", name)),
            Some(l) if l.size != file.size => report.find(
                "file_size_mismatch",
                &file.path,
                format!("{} bytes, the manifest says {}", l.size, file.size),
            ),
            Some(_) if overlaps(file) => out.to_check.push(FileCheck {
                path: file.path.clone(),
                sha256: file.sha256.clone(),
                size: file.size,
                rows: file.rows,
                blob: file.kind == crate::BLOB_KIND,
            }),
            Some(_) => {}
        }
    }
}
