//! The digest half of `vigil verify` ([`crate::verify`]): signatures, the digest chain, and whether every
//! manifest entry is covered by a signed head.
//!
//! What each finding proves, for someone who holds the public key but trusts nothing in the bucket:
//! - `digest_signature_invalid`, `digest_unknown_key`: a digest was not signed by a key given (forged or
//!   edited; or signed by a retired key whose public half was not passed);
//! - `digest_missing`, `digest_chain_broken`, `digest_unreadable`: a digest was removed, replaced or
//!   edited (each names the SHA-256 of the one before it);
//! - `chain_missing`, `chain_truncated`, `chain_rewritten`: a chain a signed digest names is gone, ends
//!   before the signed head, or its entry there has another hash (history re-hashed);
//! - `entry_unsigned`: entries in no signed digest although their writer promised one within its
//!   interval (added after the fact, or their writer stopped without signing: a crash);
//! - `digest_overdue`: the newest digest is not a writer's shutdown digest and nothing followed within its
//!   interval (newer digests were removed, or the writer crashed);
//! - `archive_unsigned`: a key was given but the archive holds no digest at all.
//!
//! What it cannot prove: that nothing was written after the newest digest when the whole tail (digests
//! and entries together) is removed and the newest remaining digest is a shutdown digest. Keep the newest
//! digest a report prints and pass the report back with `--since`, or keep the archive under Object Lock.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::digest::{DEFAULT_DIGEST_INTERVAL, Digest};
use crate::keys::PublicKey;
use crate::verify::{DigestRef, VerifyReport};

/// Time past a writer's promised interval before a missing digest is a finding: a slow store, a long
/// batch, a clock a little off.
pub const GRACE_US: i64 = 15 * 60 * 1_000_000;

/// One manifest entry as the digest check needs it.
#[derive(Debug, Clone)]
pub(crate) struct EntryView {
    pub entry_hash: String,
    /// When the store says it was written (Last-Modified), else its own `written_at`.
    pub stored_us: i64,
    /// Whether its files fall in the `--from/--to` range being verified.
    pub in_scope: bool,
}

/// Every chain's entries by seq, as read.
pub(crate) type ChainViews = BTreeMap<(String, i32), BTreeMap<u64, EntryView>>;

fn parse_us(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
}

fn age(now_us: i64, then_us: i64) -> String {
    let secs = (now_us - then_us).max(0) / 1_000_000;
    match secs {
        s if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        s if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{s} s"),
    }
}

/// Checks `digests` (seq -> (object path, bytes, Last-Modified)) against `chains`.
pub(crate) fn check(
    digests: &BTreeMap<u64, (String, bytes::Bytes, i64)>,
    chains: &ChainViews,
    keys: &[PublicKey],
    now_us: i64,
    report: &mut VerifyReport,
) {
    report.digests = digests.len();
    if digests.is_empty() {
        check_no_digest(chains, keys, report);
        return;
    }
    check_numbering(digests, report);
    let (trusted, signature_problems) = trusted_digests(digests, keys, report);
    report.authenticated = !keys.is_empty() && signature_problems == 0;
    check_newest(digests, &trusted, now_us, report);
    let signed = check_signed_heads(&trusted, chains, report);
    check_unsigned_entries(chains, &signed, &trusted, now_us, report);
}

/// An archive with chains but no digest: a warning without keys, a finding with them.
fn check_no_digest(chains: &ChainViews, keys: &[PublicKey], report: &mut VerifyReport) {
    if chains.is_empty() {
        return;
    }
    if keys.is_empty() {
        report.warn(
            "archive_unsigned",
            "digests/",
            "the archive holds no signed digest: its writers had no signing key, so nothing here can prove \
             who wrote it (configure [evidence] signing_key_file; see `vigil keys generate`)",
        );
    } else {
        report.find(
            "archive_unsigned",
            "digests/",
            "a public key was given but the archive holds no signed digest: its digests were removed, or \
             its writers never had the signing key",
        );
    }
}

/// Holes in the digests' numbering: removed digests.
fn check_numbering(digests: &BTreeMap<u64, (String, bytes::Bytes, i64)>, report: &mut VerifyReport) {
    let max = digests.keys().next_back().copied().unwrap_or(0);
    for seq in 0..=max {
        if !digests.contains_key(&seq) {
            report.find(
                "digest_missing",
                format!("digests/{seq:012}.json"),
                format!("digest {seq} of {} is missing (removed)", max + 1),
            );
        }
    }
}

/// The digests that read, link to the one before and (with keys) carry a good signature, with when
/// each was stored; and how many failed on the signature (or could not be read).
fn trusted_digests(
    digests: &BTreeMap<u64, (String, bytes::Bytes, i64)>,
    keys: &[PublicKey],
    report: &mut VerifyReport,
) -> (Vec<(Digest, i64)>, usize) {
    let mut trusted: Vec<(Digest, i64)> = Vec::new();
    let mut signature_problems = 0usize;
    for (seq, (path, bytes, stored_us)) in digests {
        let digest: Digest = match serde_json::from_slice(bytes) {
            Ok(d) => d,
            Err(e) => {
                report.find("digest_unreadable", path, format!("not a digest: {e}"));
                signature_problems += 1;
                continue;
            }
        };
        if digest.seq != *seq {
            report.find("digest_chain_broken", path, format!("it says it is digest {} (moved or renamed)", digest.seq));
        }
        let expected_prev = match seq.checked_sub(1).and_then(|p| digests.get(&p)) {
            Some((_, prev, _)) => Some(hex::encode(Sha256::digest(prev))),
            None if *seq == 0 => Some(String::new()),
            None => None, // the previous one is missing: reported above
        };
        if let Some(expected) = expected_prev
            && digest.prev_sha256 != expected
        {
            report.find(
                "digest_chain_broken",
                path,
                "its prev_sha256 is not the SHA-256 of the digest before it (that one was replaced or edited)",
            );
        }
        if !keys.is_empty() {
            match keys.iter().find(|k| k.id() == digest.key_id) {
                None => {
                    signature_problems += 1;
                    report.find(
                        "digest_unknown_key",
                        path,
                        format!(
                            "signed with key id {}, which none of the public keys given has (after a rotation, \
                             pass the retired public key too)",
                            digest.key_id
                        ),
                    );
                    continue;
                }
                Some(key) if !key.verifies(&digest.signed_bytes(), &digest.signature) => {
                    signature_problems += 1;
                    report.find(
                        "digest_signature_invalid",
                        path,
                        format!("its signature is not key {}'s over its content (forged or edited)", digest.key_id),
                    );
                    continue;
                }
                Some(_) => {}
            }
        }
        if let Some(written) = parse_us(&digest.written_at)
            && (written - stored_us).abs() > 3600 * 1_000_000
        {
            report.warn(
                "clock_skew",
                path,
                format!(
                    "signed at {} by its writer's clock but stored at {} by the store's: the writer's clock is off",
                    digest.written_at,
                    vigil_schema::format_time_us(*stored_us)
                ),
            );
        }
        trusted.push((digest, *stored_us));
    }
    (trusted, signature_problems)
}

/// The newest trusted digest: reported, and overdue when no shutdown digest and none followed in time.
fn check_newest(
    digests: &BTreeMap<u64, (String, bytes::Bytes, i64)>,
    trusted: &[(Digest, i64)],
    now_us: i64,
    report: &mut VerifyReport,
) {
    if let Some((newest, _)) = trusted.last()
        && let Some((path, bytes, _)) = digests.get(&newest.seq)
    {
        report.newest_digest = Some(DigestRef {
            seq: newest.seq,
            sha256: hex::encode(Sha256::digest(bytes)),
            written_at: newest.written_at.clone(),
            key_id: newest.key_id.clone(),
        });
        let interval_us = i64::try_from(newest.interval_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000);
        let written = parse_us(&newest.written_at).unwrap_or(i64::MIN);
        if !newest.closing && now_us.saturating_sub(written) > interval_us.saturating_add(GRACE_US) {
            report.find(
                "digest_overdue",
                path,
                format!(
                    "the newest digest ({}, writer {}) is no shutdown digest, and none followed within its {} s \
                     interval ({} ago): newer digests were removed, or the writer stopped without signing (a crash); \
                     what it wrote after this digest cannot be proven",
                    newest.written_at,
                    newest.writer,
                    newest.interval_secs,
                    age(now_us, written)
                ),
            );
        }
    }
}

/// Signed heads against the chains; returns each chain's newest signed entry.
fn check_signed_heads(
    trusted: &[(Digest, i64)],
    chains: &ChainViews,
    report: &mut VerifyReport,
) -> BTreeMap<(String, i32), u64> {
    let mut signed: BTreeMap<(String, i32), u64> = BTreeMap::new();
    let mut reported: std::collections::BTreeSet<(String, i32, u64)> = std::collections::BTreeSet::new();
    for (digest, _) in trusted {
        for head in &digest.heads {
            let key = (head.ingest_source.clone(), head.partition);
            let object = format!("{}/{}#{}", head.ingest_source, head.partition, head.seq);
            let latest = signed.entry(key.clone()).or_insert(head.seq);
            *latest = (*latest).max(head.seq);
            if !reported.insert((head.ingest_source.clone(), head.partition, head.seq)) {
                continue;
            }
            let Some(chain) = chains.get(&key) else {
                report.find(
                    "chain_missing",
                    object,
                    format!(
                        "digest {} signed this chain's head (entry {}, offsets up to {}), but the chain is gone",
                        digest.seq, head.seq, head.last_offset
                    ),
                );
                continue;
            };
            match chain.get(&head.seq) {
                Some(entry) if entry.entry_hash != head.entry_hash => report.find(
                    "chain_rewritten",
                    object,
                    format!(
                        "digest {} signed entry {} with hash {}, the archive's has {}: the chain was rewritten",
                        digest.seq, head.seq, head.entry_hash, entry.entry_hash
                    ),
                ),
                Some(_) => {}
                None if chain.keys().next_back().is_none_or(|last| *last < head.seq) => report.find(
                    "chain_truncated",
                    object,
                    format!(
                        "digest {} signed entry {} (offsets up to {}), but the chain ends at entry {}: its tail was cut off",
                        digest.seq,
                        head.seq,
                        head.last_offset,
                        chain.keys().next_back().map_or("-".to_string(), ToString::to_string)
                    ),
                ),
                None => {} // a hole in the chain: entry_missing names it
            }
        }
    }
    signed
}

/// Entries no signed head covers: not yet signed (within the interval), or unsigned.
fn check_unsigned_entries(
    chains: &ChainViews,
    signed: &BTreeMap<(String, i32), u64>,
    trusted: &[(Digest, i64)],
    now_us: i64,
    report: &mut VerifyReport,
) {
    let interval_us = trusted
        .last()
        .map(|(d, _)| i64::try_from(d.interval_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000))
        .unwrap_or(DEFAULT_DIGEST_INTERVAL.as_micros() as i64);
    for ((source, partition), entries) in chains {
        let covered = signed.get(&(source.clone(), *partition)).copied();
        let unsigned: Vec<(&u64, &EntryView)> =
            entries.iter().filter(|(seq, e)| e.in_scope && covered.is_none_or(|c| **seq > c)).collect();
        let (Some((first, _)), Some((last, _))) = (unsigned.first(), unsigned.last()) else { continue };
        let oldest = unsigned.iter().map(|(_, e)| e.stored_us).min().unwrap_or(now_us);
        let newest = unsigned.iter().map(|(_, e)| e.stored_us).max().unwrap_or(now_us);
        let what = if first == last { format!("entry {first}") } else { format!("entries {first}..={last}") };
        let object = format!("{source}/{partition}#{first}");
        if newest > now_us.saturating_add(GRACE_US) {
            // Stored "in the future": a modification time set by hand (a local disk) to look unsigned-yet.
            report.find(
                "entry_unsigned",
                object,
                format!(
                    "{what} of this chain are in no signed digest and dated {} ahead of now by the store: their \
                     time was set by hand",
                    age(newest, now_us)
                ),
            );
        } else if now_us.saturating_sub(oldest) > interval_us.saturating_add(GRACE_US) {
            report.find(
                "entry_unsigned",
                object,
                format!(
                    "{what} of this chain are in no signed digest, the oldest stored {} ago: added after the writer's \
                     last digest (planted?), or the writer stopped without signing (a crash; the next run over the \
                     same input signs them)",
                    age(now_us, oldest)
                ),
            );
        } else {
            report.warn(
                "entry_not_yet_signed",
                object,
                format!("{what} are newer than the last digest; their writer signs them within its interval"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::SignedHead;
    use crate::keys::PrivateKey;

    const HOUR: i64 = 3600 * 1_000_000;

    fn digest(key: &PrivateKey, seq: u64, prev: &[u8], closing: bool, heads: Vec<SignedHead>, at: i64) -> bytes::Bytes {
        let mut d = Digest {
            version: 1,
            seq,
            prev_sha256: if prev.is_empty() { String::new() } else { hex::encode(Sha256::digest(prev)) },
            key_id: key.id().into(),
            writer: "w".into(),
            writer_started_at: vigil_schema::format_time_us(at),
            period_start: vigil_schema::format_time_us(at),
            written_at: vigil_schema::format_time_us(at),
            interval_secs: 3600,
            closing,
            heads,
            signature: String::new(),
        };
        d.signature = key.sign(&d.signed_bytes());
        bytes::Bytes::from(serde_json::to_vec(&d).unwrap())
    }

    fn head(seq: u64, hash: &str) -> SignedHead {
        SignedHead {
            ingest_source: "t".into(),
            partition: 0,
            seq,
            entry_hash: hash.into(),
            first_offset: 1,
            last_offset: 10,
            written_at: String::new(),
        }
    }

    fn chain(hashes: &[&str], stored_us: i64) -> ChainViews {
        let entries = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| (i as u64, EntryView { entry_hash: h.to_string(), stored_us, in_scope: true }))
            .collect();
        [(("t".to_string(), 0), entries)].into_iter().collect()
    }

    fn kinds(report: &VerifyReport) -> Vec<&str> {
        report.findings.iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn signed_heads_catch_truncation_rewrites_and_unsigned_tails() {
        let key = PrivateKey::generate().unwrap();
        let now = 100 * HOUR;
        let d0 = digest(&key, 0, &[], true, vec![head(1, "h1")], now - 3 * HOUR);
        let digests: BTreeMap<_, _> =
            [(0, ("digests/000000000000.json".to_string(), d0.clone(), now - 3 * HOUR))].into();
        let keys = [key.public()];
        let mut ok = VerifyReport::default();
        check(&digests, &chain(&["h0", "h1"], now - 4 * HOUR), &keys, now, &mut ok);
        assert!(ok.findings.is_empty() && ok.authenticated, "{:?}", ok.findings);
        let mut cut = VerifyReport::default();
        check(&digests, &chain(&["h0"], now - 4 * HOUR), &keys, now, &mut cut);
        assert_eq!(kinds(&cut), ["chain_truncated"]);
        let mut rewritten = VerifyReport::default();
        check(&digests, &chain(&["h0", "x1"], now - 4 * HOUR), &keys, now, &mut rewritten);
        assert_eq!(kinds(&rewritten), ["chain_rewritten"]);
        let mut gone = VerifyReport::default();
        check(&digests, &ChainViews::new(), &keys, now, &mut gone);
        assert_eq!(kinds(&gone), ["chain_missing"]);
        let mut planted = VerifyReport::default();
        check(&digests, &chain(&["h0", "h1", "h2"], now - 2 * HOUR), &keys, now, &mut planted);
        assert_eq!(kinds(&planted), ["entry_unsigned"]);
        let mut fresh = VerifyReport::default();
        check(&digests, &chain(&["h0", "h1", "h2"], now - HOUR / 2), &keys, now, &mut fresh);
        assert!(fresh.findings.is_empty() && fresh.warnings[0].kind == "entry_not_yet_signed");
    }

    #[test]
    fn forged_missing_and_overdue_digests_are_named() {
        let key = PrivateKey::generate().unwrap();
        let forger = PrivateKey::generate().unwrap();
        let now = 100 * HOUR;
        let d0 = digest(&key, 0, &[], false, vec![head(0, "h0")], now - 5 * HOUR);
        let d1 = digest(&key, 1, &d0, false, vec![], now - 4 * HOUR);
        let entries = chain(&["h0"], now - 6 * HOUR);
        let keys = [key.public()];
        let path = |s: u64| format!("digests/{s:012}.json");
        // The writer's newest digest is 4 h old and no shutdown digest.
        let both: BTreeMap<_, _> = [(0, (path(0), d0.clone(), 0)), (1, (path(1), d1.clone(), 0))].into();
        let mut overdue = VerifyReport::default();
        check(&both, &entries, &keys, now, &mut overdue);
        assert_eq!(kinds(&overdue), ["digest_overdue"]);
        // Digest 0 removed.
        let hole: BTreeMap<_, _> = [(1, (path(1), d1.clone(), 0))].into();
        let mut missing = VerifyReport::default();
        check(&hole, &entries, &keys, now - 4 * HOUR, &mut missing);
        assert!(kinds(&missing).contains(&"digest_missing"), "{:?}", missing.findings);
        // Digest 0 replaced by one the forger signed.
        let forged = digest(&forger, 0, &[], false, vec![head(0, "h0")], now - 5 * HOUR);
        let replaced: BTreeMap<_, _> = [(0, (path(0), forged, 0)), (1, (path(1), d1, 0))].into();
        let mut report = VerifyReport::default();
        check(&replaced, &entries, &keys, now - 4 * HOUR, &mut report);
        let found = kinds(&report);
        assert!(found.contains(&"digest_unknown_key") && found.contains(&"digest_chain_broken"), "{found:?}");
        assert!(!report.authenticated);
        // Without a key, the chain is still checked but nothing is authenticated.
        let mut unkeyed = VerifyReport::default();
        check(&both, &entries, &[], now - 4 * HOUR, &mut unkeyed);
        assert!(unkeyed.findings.is_empty() && !unkeyed.authenticated, "{:?}", unkeyed.findings);
    }
}
