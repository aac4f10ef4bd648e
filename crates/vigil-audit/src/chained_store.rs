//! What queries may read: the data files an archive's manifest chains list, nothing else.
//!
//! A file in `events/`, `alerts/` or `dead_letters/` that no manifest entry lists (copied there, left by a
//! writer that stopped, or of a range still being written) is not evidence, and a query that counted its
//! rows would answer for data nobody vouches for. [`chained_files`] reads every manifest entry once and
//! keeps the data files that an intact entry (one whose `entry_hash` is its own) lists and no later
//! disposal of its chain disposed of; [`ChainedStore`] is the object store DataFusion reads through: it
//! lists, and answers reads of, only those files (as they were listed when the session began) and refuses
//! every write, a second guard that queries are read-only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions,
};
use vigil_evidence::{Archive, ManifestEntry, layout};

use crate::{Error, Result};
use vigil_evidence::layout::DATA_KINDS;

/// Manifest entries read at once (each is small; on S3 the round trips dominate).
const CONCURRENCY: usize = 32;

/// The data files of an archive that its chains vouch for, and those they do not.
#[derive(Debug, Default)]
pub struct ChainedFiles {
    /// Data files present that an intact entry lists and no later disposal disposed of, by their path
    /// relative to the archive root, as listed.
    pub listed: BTreeMap<String, ObjectMeta>,
    /// Parquet files present in the data folders that no intact entry lists (relative paths, sorted).
    pub unlisted: Vec<String>,
    /// Manifest entries that could not be read as entries or whose `entry_hash` is not their own
    /// (relative paths): the files they name are not trusted.
    pub broken_entries: Vec<String>,
}

fn store_error<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(object_store::Error) -> Error + 'a {
    move |source| Error::Evidence(vigil_evidence::Error::Store { operation, path: path.to_string(), source })
}

/// Everything under `dir`, waiting out a store that does not answer as briefly as the archive does.
async fn list_all(store: &Arc<dyn ObjectStore>, dir: &Path) -> Result<Vec<ObjectMeta>> {
    vigil_evidence::retry::patiently(vigil_evidence::retry::Patience::BRIEF, "list", dir, || {
        store.list(Some(dir)).try_collect::<Vec<_>>()
    })
    .await
    .map_err(store_error("list", dir))
}

/// Lists the archive's manifests and data folders (in parallel), reads every manifest entry, and sorts
/// the data files present into those its chains vouch for and the rest.
pub async fn chained_files(archive: &Archive) -> Result<ChainedFiles> {
    let store = archive.object_store();
    let root = archive.root().clone();
    let folders: Vec<Path> = ["manifests"].iter().chain(DATA_KINDS.iter()).map(|f| root.clone().join(*f)).collect();
    let listings =
        futures::future::try_join_all(folders.iter().map(|dir| list_all(&store, dir))).await?.into_iter().flatten();
    // Entries by chain, in order; data files present by relative path.
    let mut chains: BTreeMap<(String, String), BTreeMap<u64, String>> = BTreeMap::new();
    let mut present: BTreeMap<String, ObjectMeta> = BTreeMap::new();
    for meta in listings {
        let relative = layout::relative(&root, &meta.location);
        if let Some(rest) = relative.strip_prefix("manifests/") {
            if let [source, partition, name] = rest.split('/').collect::<Vec<_>>().as_slice()
                && let Some(seq) = layout::entry_seq(name)
            {
                chains.entry((source.to_string(), partition.to_string())).or_default().insert(seq, relative.clone());
            }
        } else {
            present.insert(relative, meta);
        }
    }
    let paths: Vec<String> = chains.values().flat_map(|c| c.values().cloned()).collect();
    let contents: HashMap<String, Option<Bytes>> = futures::stream::iter(paths.into_iter().map(|path| async move {
        let bytes = archive.get_object(&path).await?;
        Ok::<_, Error>((path, bytes))
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await?;
    let mut trusted: BTreeSet<String> = BTreeSet::new();
    let mut broken_entries = Vec::new();
    for entries in chains.values() {
        // Walked in order: a disposal removes what earlier entries listed.
        let mut files: BTreeSet<String> = BTreeSet::new();
        for path in entries.values() {
            // An entry removed between the listing and the read no longer lists anything.
            let Some(Some(bytes)) = contents.get(path) else { continue };
            let entry = match serde_json::from_slice::<ManifestEntry>(bytes) {
                Ok(entry) if entry.compute_hash() == entry.entry_hash => entry,
                _ => {
                    broken_entries.push(path.clone());
                    continue;
                }
            };
            match &entry.disposal {
                Some(disposal) => disposal.files.iter().for_each(|f| {
                    files.remove(&f.path);
                }),
                None => files.extend(entry.files.into_iter().map(|f| f.path)),
            }
        }
        trusted.extend(files);
    }
    let mut out = ChainedFiles { broken_entries, ..ChainedFiles::default() };
    for (relative, meta) in present {
        if trusted.contains(&relative) {
            out.listed.insert(relative, meta);
        } else if relative.ends_with(".parquet") {
            out.unlisted.push(relative);
        }
    }
    Ok(out)
}

/// A read-only object store over `inner` holding only the listed data files, at `base` + their relative
/// path (`base` is where the archive root is in `inner`).
#[derive(Debug)]
pub struct ChainedStore {
    inner: Arc<dyn ObjectStore>,
    /// Full path in `inner` -> what the listing said of it.
    files: BTreeMap<Path, ObjectMeta>,
}

impl ChainedStore {
    /// The store over `inner`, where the archive root is `base`, holding `files` (see [`chained_files`]).
    pub fn new(inner: Arc<dyn ObjectStore>, base: &Path, files: &ChainedFiles) -> Self {
        let files = files
            .listed
            .iter()
            .map(|(relative, meta)| {
                let location = Path::from_iter(base.parts().chain(Path::from(relative.as_str()).parts()));
                (location.clone(), ObjectMeta { location, ..meta.clone() })
            })
            .collect();
        ChainedStore { inner, files }
    }

    /// The listed files below `prefix` (every one when `None`).
    fn below<'a>(&'a self, prefix: Option<&'a Path>) -> impl Iterator<Item = &'a ObjectMeta> + 'a {
        let prefix = prefix.filter(|p| !Path::as_ref(p).is_empty());
        let start = prefix.cloned().unwrap_or_default();
        // Paths sort as text: every path below `prefix` starts with its text, and those that do are adjacent.
        self.files
            .range(start..)
            .take_while(move |(path, _)| prefix.is_none_or(|pre| Path::as_ref(path).starts_with(Path::as_ref(pre))))
            .filter(move |(path, _)| prefix.is_none_or(|pre| path.prefix_matches(pre) && *path != pre))
            .map(|(_, meta)| meta)
    }

    fn not_found(location: &Path) -> object_store::Error {
        object_store::Error::NotFound {
            path: location.to_string(),
            source: "not a data file of the archive's manifest chains".into(),
        }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        if self.files.contains_key(location) { Ok(()) } else { Err(Self::not_found(location)) }
    }

    fn refused(what: &str) -> object_store::Error {
        object_store::Error::NotSupported { source: format!("{what}: queries over an archive are read-only").into() }
    }
}

impl fmt::Display for ChainedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainedStore({} files of {})", self.files.len(), self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for ChainedStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
        Err(Self::refused("put"))
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(Self::refused("multipart put"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(Self::refused("delete"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let metas: Vec<ObjectMeta> = self.below(prefix).cloned().collect();
        futures::stream::iter(metas.into_iter().map(Ok)).boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let metas: Vec<ObjectMeta> = self.below(prefix).filter(|m| &m.location > offset).cloned().collect();
        futures::stream::iter(metas.into_iter().map(Ok)).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let depth = prefix.map_or(0, |p| p.parts().count());
        let mut objects = Vec::new();
        let mut common_prefixes = BTreeSet::new();
        for meta in self.below(prefix) {
            let parts: Vec<_> = meta.location.parts().collect();
            if parts.len() == depth + 1 {
                objects.push(meta.clone());
            } else {
                common_prefixes.insert(Path::from_iter(parts.into_iter().take(depth + 1)));
            }
        }
        Ok(ListResult { common_prefixes: common_prefixes.into_iter().collect(), objects })
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(Self::refused("copy"))
    }

    async fn rename_opts(&self, _: &Path, _: &Path, _: RenameOptions) -> object_store::Result<()> {
        Err(Self::refused("rename"))
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    fn meta(relative: &str) -> (String, ObjectMeta) {
        let meta = ObjectMeta {
            location: Path::from(relative),
            last_modified: Default::default(),
            size: 3,
            e_tag: None,
            version: None,
        };
        (relative.to_string(), meta)
    }

    fn entry(seq: u64, files: &[&str], disposed: Option<&[&str]>) -> ManifestEntry {
        let file = |p: &&str| {
            serde_json::json!({"kind": "events", "path": p, "sha256": "", "size": 3, "rows": 1,
            "time_min": null, "time_max": null})
        };
        let disposal = disposed.map(|d| {
            let files: Vec<_> = d.iter().map(|p| serde_json::json!({"path": p, "sha256": ""})).collect();
            serde_json::json!({"retention_days": 0, "entries": [0], "files": files})
        });
        let entry = serde_json::json!({
            "version": 1, "seq": seq, "ingest_source": "s", "partition": 0, "first_offset": 0, "last_offset": 9,
            "format": "json", "input": "-", "files": files.iter().map(file).collect::<Vec<_>>(),
            "counts": {"events": 1, "dead_letters": 0, "alerts": 0, "skipped": 0}, "schema_version": 1,
            "rule_pack_hash": "", "disposal": disposal, "written_at": "2024-08-02T08:00:00Z", "prev_hash": "",
            "entry_hash": "",
        });
        serde_json::from_value::<ManifestEntry>(entry).expect("an entry").seal()
    }

    #[tokio::test]
    async fn only_files_of_intact_entries_not_disposed_of_are_chained() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let archive = Archive::with_store(inner.clone(), Path::from("root"), "memory://");
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| format!("events/source=s/date=2024-08-02/hour=08/{n}.parquet"));
        // Entry 0 lists a and b; entry 1 disposes of a; entry 2 (edited after sealing) lists c; nothing lists d.
        let mut edited = entry(2, &[&c], None);
        edited.counts.events = 2;
        let entries = [entry(0, &[&a, &b], None), entry(1, &[], Some(&[&a])), edited];
        for e in &entries {
            let path = format!("manifests/s/0/{:012}.json", e.seq);
            archive.put_object(&path, serde_json::to_vec(e).unwrap()).await.unwrap();
        }
        for file in [&a, &b, &c, &d] {
            archive.put_object(file, b"abc".to_vec()).await.unwrap();
        }
        let files = chained_files(&archive).await.unwrap();
        assert_eq!(files.listed.keys().collect::<Vec<_>>(), vec![&b]);
        assert_eq!(files.listed[&b].location, Path::from(format!("root/{b}")));
        assert_eq!(files.unlisted, vec![a, c, d]);
        assert_eq!(files.broken_entries, vec!["manifests/s/0/000000000002.json".to_string()]);
    }

    #[tokio::test]
    async fn lists_and_reads_only_listed_files_and_refuses_writes() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let base = Path::from("bucket-prefix/archive");
        let kept = "events/source=a/date=2024-08-02/hour=08/a-0-1-10.parquet";
        let planted = "events/source=a/date=2024-08-02/hour=08/copy.parquet";
        let alone = "events/source=b/date=2024-08-02/hour=09/planted.parquet";
        for relative in [kept, planted, alone] {
            let at = Path::from_iter(base.parts().chain(Path::from(relative).parts()));
            inner.put(&at, PutPayload::from_static(b"abc")).await.unwrap();
        }
        let files = ChainedFiles { listed: [meta(kept)].into_iter().collect(), ..ChainedFiles::default() };
        let store = ChainedStore::new(inner, &base, &files);
        let full = |r: &str| Path::from_iter(base.parts().chain(Path::from(r).parts()));
        let events = full("events");
        let listed: Vec<Path> = store.list(Some(&events)).map_ok(|m| m.location).try_collect().await.unwrap();
        assert_eq!(listed, vec![full(kept)]);
        assert_eq!(store.list(None).count().await, 1);
        assert_eq!(store.list(Some(&full("alerts"))).count().await, 0);
        // A folder holding only unlisted files is not there.
        let top = store.list_with_delimiter(Some(&events)).await.unwrap();
        assert_eq!(top.common_prefixes, vec![full("events/source=a")]);
        assert!(top.objects.is_empty());
        let hour = store.list_with_delimiter(Some(&full("events/source=a/date=2024-08-02/hour=08"))).await.unwrap();
        assert_eq!(hour.objects.iter().map(|m| m.location.clone()).collect::<Vec<_>>(), vec![full(kept)]);
        assert!(hour.common_prefixes.is_empty());
        // Reads.
        assert_eq!(store.get(&full(kept)).await.unwrap().bytes().await.unwrap().as_ref(), b"abc");
        assert_eq!(store.head(&full(kept)).await.unwrap().size, 3);
        assert_eq!(store.get_ranges(&full(kept), &[0..1, 2..3]).await.unwrap().len(), 2);
        for hidden in [planted, alone] {
            assert!(matches!(store.get(&full(hidden)).await, Err(object_store::Error::NotFound { .. })));
            assert!(matches!(store.head(&full(hidden)).await, Err(object_store::Error::NotFound { .. })));
            assert!(store.get_ranges(&full(hidden), &[0..1, 1..2]).await.is_err());
        }
        // Writes.
        let refused = |r: object_store::Result<()>| matches!(r, Err(object_store::Error::NotSupported { .. }));
        assert!(refused(store.put(&full("x.parquet"), PutPayload::from_static(b"x")).await.map(|_| ())));
        assert!(refused(store.put_multipart(&full("x.parquet")).await.map(|_| ())));
        assert!(refused(store.delete(&full(kept)).await));
        assert!(refused(store.copy(&full(kept), &full("y.parquet")).await));
        assert!(refused(store.rename(&full(kept), &full("y.parquet")).await));
        assert!(store.get(&full(kept)).await.is_ok(), "still there");
    }
}
