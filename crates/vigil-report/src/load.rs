//! What is read from the archive once, beside the SQL tables: rule pack spans and signed digests.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use vigil_evidence::Archive;
use vigil_evidence::digest::Digest;

use crate::Result;

/// For each rule pack, the event time span of the ranges archived while it ran (from the manifests).
pub(crate) async fn pack_ranges(archive: &Archive) -> Result<BTreeMap<String, (i64, i64)>> {
    let parse = |t: &Option<String>| {
        t.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp_micros())
    };
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for id in archive.chains().await? {
        if id.source().starts_with('@') {
            continue;
        }
        for entry in archive.chain(&id).await? {
            if !entry.has_data() || entry.rule_pack_hash.is_empty() {
                continue;
            }
            for file in entry.files.iter().filter(|f| f.kind == "events") {
                if let (Some(min), Some(max)) = (parse(&file.time_min), parse(&file.time_max)) {
                    let span = out.entry(entry.rule_pack_hash.clone()).or_insert((min, max));
                    *span = (span.0.min(min), span.1.max(max));
                }
            }
        }
    }
    Ok(out)
}

/// Every readable digest of the archive, by seq.
pub(crate) async fn read_digests(archive: &Archive) -> Result<Vec<Digest>> {
    let dir = archive.root().clone().join("digests");
    let metas: Vec<object_store::ObjectMeta> = archive
        .object_store()
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| vigil_evidence::Error::Store { operation: "list", path: dir.to_string(), source })?;
    let mut out = Vec::new();
    for meta in metas {
        let relative = vigil_evidence::layout::relative(archive.root(), &meta.location);
        if let Some(bytes) = archive.get_object(&relative).await?
            && let Ok(digest) = serde_json::from_slice::<Digest>(&bytes)
        {
            out.push(digest);
        }
    }
    out.sort_by_key(|d| d.seq);
    Ok(out)
}
