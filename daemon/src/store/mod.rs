//! The content store: segments by CID (DESIGN §2), verified on write and
//! on read. Callers see this interface only; sled and the block files stay
//! behind it.

pub mod blocks;
pub mod evict;
mod full;
pub mod index;
mod pins;
#[cfg(test)]
mod tests;
pub mod unixfs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use cid::Cid;
use gateway::{FileSpan, StoreUsage, StoredFiles};
use tracing::warn;

use blocks::BlockFiles;
use index::{Index, SegmentMeta};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("store index: {0}")]
    Index(#[from] sled::Error),
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("store full: {free} bytes free on its disk, below store.min_free_bytes")]
    Full { free: u64 },
}

/// Bounds on what the store keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Memory for recently used segments.
    pub memory_cache: u64,
    /// Memory for blocks recently served to peers or written.
    pub block_cache: u64,
    /// The quota: unpinned objects are evicted above it.
    pub max_bytes: u64,
    /// Free disk space the store always leaves.
    pub min_free: u64,
}

impl Limits {
    /// No quota, no reserve: for tools and tests.
    pub fn unbounded(memory_cache: u64) -> Self {
        Self {
            memory_cache,
            block_cache: memory_cache / 4,
            max_bytes: u64::MAX,
            min_free: 0,
        }
    }
}

/// Segments of at least this many bytes (a whole block or more) go to
/// players from their block files: copying them through memory would cost
/// more than opening and mapping the files.
pub const FILES_MIN: u64 = unixfs::CHUNK as u64;

/// Large segments whose block files stay open (a few descriptors each).
const OPEN_SEGMENTS: usize = 64;

/// One block file, open, as it stood when it was checked.
struct OpenSpan {
    span: FileSpan,
    stamp: blocks::Stamp,
}

struct OpenSegment {
    root: Cid,
    spans: Vec<OpenSpan>,
    content_type: Option<String>,
    cid: String,
}

impl OpenSegment {
    /// Whether every file is as it was checked: a write by anything since
    /// changes its ctime.
    fn unchanged(&self) -> bool {
        self.spans
            .iter()
            .all(|s| blocks::Stamp::now(&s.span.file).is_ok_and(|now| now == s.stamp))
    }

    fn files(&self) -> StoredFiles {
        StoredFiles {
            spans: self.spans.iter().map(|s| s.span.clone()).collect(),
            content_type: self.content_type.clone(),
            cid: self.cid.clone(),
        }
    }
}

/// A stored segment for a player.
pub enum ForPlayer {
    Memory(StoredSegment),
    Files(StoredFiles),
}

/// A stored segment, whole and verified.
#[derive(Clone, Debug)]
pub struct StoredSegment {
    pub cid: Cid,
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<String, StoredSegment> for ByteWeight {
    fn weight(&self, key: &String, val: &StoredSegment) -> u64 {
        (key.len() + val.bytes.len()) as u64
    }
}

#[derive(Clone)]
struct BlockWeight;

impl quick_cache::Weighter<Cid, Bytes> for BlockWeight {
    fn weight(&self, _: &Cid, val: &Bytes) -> u64 {
        val.len() as u64 + 64
    }
}

struct Inner {
    dir: PathBuf,
    index: Index,
    blocks: BlockFiles,
    /// Verified segments recently read or written, by segment key.
    hot: quick_cache::sync::Cache<String, StoredSegment, ByteWeight>,
    /// Verified blocks recently served or written, by CID: a peer's request
    /// for one is answered with no disk read and no hash, since this
    /// process checked it when it last came off the disk.
    hot_blocks: quick_cache::sync::Cache<Cid, Bytes, BlockWeight>,
    /// Large segments recently sent from their block files, the files
    /// kept open with the stamps they had when checked: a hit then needs
    /// one `fstat` per file, and no trip to the blocking pool.
    open: quick_cache::sync::Cache<String, Arc<OpenSegment>>,
    objects: AtomicU64,
    bytes: AtomicU64,
    max_bytes: u64,
    min_free: u64,
    access: evict::Access,
    /// Held by every change to objects and blocks, so an eviction never
    /// deletes a block file that a concurrent write is about to reference.
    writes: Mutex<()>,
    /// Segment key → pins waiting for it, recorded in the write's own
    /// transaction so a pinned object is never evictable, even for a moment.
    pending_pins: Mutex<HashMap<String, Vec<String>>>,
    full_errors: AtomicU64,
    full_warned: Mutex<Option<Instant>>,
    quota_warned: Mutex<Option<Instant>>,
    /// Segment keys evicted since [`Store::take_evicted`] last ran.
    evicted_keys: Mutex<Vec<String>>,
}

/// Cheap to clone; every blocking call runs on tokio's blocking pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens or creates the store under `dir`. Blocking.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let index = Index::open(&dir.join("index"))?;
        let blocks = BlockFiles::open(&dir.join("blocks"))?;
        let (objects, bytes) = index.usage();
        let hot =
            quick_cache::sync::Cache::with_weighter(1024, limits.memory_cache.max(1), ByteWeight);
        let hot_blocks =
            quick_cache::sync::Cache::with_weighter(1024, limits.block_cache.max(1), BlockWeight);
        let access = evict::Access::new(index.last_access());
        let store = Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                index,
                blocks,
                hot,
                hot_blocks,
                open: quick_cache::sync::Cache::new(OPEN_SEGMENTS),
                objects: AtomicU64::new(objects),
                bytes: AtomicU64::new(bytes),
                max_bytes: limits.max_bytes,
                min_free: limits.min_free,
                access,
                writes: Mutex::default(),
                pending_pins: Mutex::default(),
                full_errors: AtomicU64::new(0),
                full_warned: Mutex::default(),
                quota_warned: Mutex::default(),
                evicted_keys: Mutex::default(),
            }),
        };
        // A quota lowered since the last run applies at once.
        store.inner.locked(|inner| inner.enforce_quota())?;
        Ok(store)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }

    /// The segment stored under `key`, if every block is present and intact.
    pub async fn get_segment(&self, key: &str) -> Result<Option<StoredSegment>, StoreError> {
        if let Some(hit) = self.inner.hot.get(key) {
            self.inner.access.touch_hit(&hit.cid);
            return Ok(Some(hit));
        }
        let key = key.to_owned();
        self.blocking(move |inner| inner.read_segment(&key)).await
    }

    /// The segment under `key` as a player gets it: a large one as its
    /// block files, which the gateway hands to the kernel to send (see
    /// [`FILES_MIN`]); a smaller one from memory, or read and verified.
    pub async fn for_player(&self, key: &str) -> Result<Option<ForPlayer>, StoreError> {
        if let Some(open) = self.inner.open.get(key) {
            if open.unchanged() {
                self.inner.access.touch_hit(&open.root);
                return Ok(Some(ForPlayer::Files(open.files())));
            }
            // Checked again, the slow way, below.
            self.inner.open.remove(key);
        }
        if let Some(hit) = self.inner.hot.get(key)
            && (hit.bytes.len() as u64) < FILES_MIN
        {
            self.inner.access.touch_hit(&hit.cid);
            return Ok(Some(ForPlayer::Memory(hit)));
        }
        if !self.inner.index.may_name(key) {
            return Ok(None);
        }
        let key = key.to_owned();
        self.blocking(move |inner| {
            let Some(meta) = inner.index.segment(&key)? else {
                return Ok(None);
            };
            if meta.size < FILES_MIN {
                return Ok(inner.read_segment(&key)?.map(ForPlayer::Memory));
            }
            Ok(inner.segment_files(&key, meta)?.map(ForPlayer::Files))
        })
        .await
    }

    /// Which of `keys` the index names a segment for: one lookup each, no
    /// block read (reading the segment checks its blocks).
    pub async fn has_segments(&self, keys: Vec<String>) -> Result<Vec<bool>, StoreError> {
        if keys.iter().all(|k| self.inner.hot.contains_key(k.as_str())) {
            return Ok(vec![true; keys.len()]);
        }
        self.blocking(move |inner| {
            keys.iter()
                .map(
                    |k| Ok(inner.hot.contains_key(k.as_str()) || inner.index.segment(k)?.is_some()),
                )
                .collect()
        })
        .await
    }

    /// Stores a segment under `key`, given its DAG from `unixfs::import`.
    pub async fn put_imported(
        &self,
        key: String,
        dag: Arc<unixfs::Dag>,
        bytes: Bytes,
        content_type: Option<String>,
    ) -> Result<Cid, StoreError> {
        self.blocking(move |inner| inner.write_segment(key, &dag, bytes, content_type))
            .await
    }

    /// One verified block, for peers that ask by CID. Serving an object's
    /// root counts as a use of the object.
    pub async fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, StoreError> {
        if let Some(block) = self.inner.hot_blocks.get(cid) {
            // Only objects' roots are kept as uses; other CIDs drop out.
            self.inner.access.touch_hit(cid);
            return Ok(Some(block));
        }
        let cid = *cid;
        self.blocking(move |inner| {
            let block = inner.blocks.get(&cid)?;
            let name = cid.to_string();
            if let Some(b) = &block {
                inner.hot_blocks.insert(cid, b.clone());
                if inner.index.has_object(&name)? {
                    inner.access.touch(&name);
                }
            }
            Ok(block)
        })
        .await
    }

    /// A stored playlist: (base URL, body).
    pub async fn get_playlist(&self, url: &str) -> Result<Option<(String, Bytes)>, StoreError> {
        let url = url.to_owned();
        self.blocking(move |inner| {
            Ok(inner
                .index
                .playlist(&url)?
                .map(|(b, body)| (b, body.into())))
        })
        .await
    }

    pub async fn put_playlist(
        &self,
        url: String,
        base: String,
        body: Bytes,
    ) -> Result<(), StoreError> {
        self.blocking(move |inner| Ok(inner.index.put_playlist(&url, &base, &body)?))
            .await
    }

    /// The segment keys evicted since the last call, so that what this
    /// node announces it holds stops naming them.
    pub fn take_evicted(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .inner
                .evicted_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The root CID of every object held.
    pub async fn object_cids(&self) -> Result<Vec<Cid>, StoreError> {
        self.blocking(|inner| {
            Ok(inner
                .index
                .objects()
                .into_iter()
                .filter_map(|(cid, _)| Cid::try_from(cid.as_str()).ok())
                .collect())
        })
        .await
    }

    pub fn usage(&self) -> StoreUsage {
        StoreUsage {
            segments: self.inner.objects.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            full_errors: self.inner.full_errors.load(Ordering::Relaxed),
            memory_cache_bytes: self.inner.hot.weight(),
            block_cache_bytes: self.inner.hot_blocks.weight(),
        }
    }

    /// Makes every index write durable, access times included. Blocking.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.persist_access()?;
        Ok(self.inner.index.flush()?)
    }
}

impl Inner {
    fn read_segment(&self, key: &str) -> Result<Option<StoredSegment>, StoreError> {
        let Some(meta) = self.index.segment(key)? else {
            return Ok(None);
        };
        let assembled = match Cid::try_from(meta.cid.as_str()) {
            Ok(cid) => self.assemble(&cid, meta.size)?.map(|bytes| (cid, bytes)),
            Err(_) => None,
        };
        let Some((cid, bytes)) = assembled else {
            return self.drop_damaged(key, &meta.cid).map(|()| None);
        };
        self.access.touch(&meta.cid);
        let seg = StoredSegment {
            cid,
            bytes,
            content_type: meta.content_type,
        };
        self.hot.insert(key.to_owned(), seg.clone());
        Ok(Some(seg))
    }

    /// Reads the file under `root`, every block verified; `None` if any block
    /// is missing or damaged.
    fn assemble(&self, root: &Cid, size: u64) -> Result<Option<Bytes>, StoreError> {
        if root.codec() == unixfs::RAW {
            let block = self.blocks.get(root)?;
            return Ok(block.filter(|b| b.len() as u64 == size));
        }
        let mut out = BytesMut::with_capacity(size as usize);
        let whole = self.walk_leaves(root, |leaf| {
            let Some(b) = self.blocks.get(leaf)? else {
                return Ok(false);
            };
            if (out.len() + b.len()) as u64 > size {
                return Ok(false);
            }
            out.extend_from_slice(&b);
            Ok(true)
        })?;
        Ok((whole && out.len() as u64 == size).then(|| out.freeze()))
    }

    /// The file under `root` as its leaves' block files, each checked as
    /// `BlockFiles::open_checked` does; `None` if any is missing or damaged.
    fn leaf_files(&self, root: &Cid, size: u64) -> Result<Option<Vec<OpenSpan>>, StoreError> {
        let mut spans = Vec::new();
        let mut total = 0u64;
        let mut open = |leaf: &Cid| -> Result<bool, StoreError> {
            let Some((file, stamp)) = self.blocks.open_checked(leaf)? else {
                return Ok(false);
            };
            total += stamp.size();
            spans.push(OpenSpan {
                span: FileSpan {
                    file: Arc::new(file),
                    len: stamp.size(),
                },
                stamp,
            });
            Ok(total <= size)
        };
        let whole = if root.codec() == unixfs::RAW {
            open(root)?
        } else {
            self.walk_leaves(root, open)?
        };
        Ok((whole && total == size).then_some(spans))
    }

    /// Visits the raw leaves under the dag-pb node `root` in file order,
    /// reading the nodes on the way verified; `false` if a node is missing
    /// or damaged or `visit` says stop.
    fn walk_leaves(
        &self,
        root: &Cid,
        mut visit: impl FnMut(&Cid) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let Some(block) = self.blocks.get(root)? else {
            return Ok(false);
        };
        let mut stack = vec![block];
        // Depth-first over dag-pb nodes.
        let mut pending: Vec<Cid> = Vec::new();
        while let Some(node) = stack.pop() {
            let Ok(mut kids) = unixfs::links(&node) else {
                return Ok(false);
            };
            kids.reverse();
            pending.extend(kids);
            while let Some(next) = pending.pop() {
                if next.codec() == unixfs::RAW {
                    if !visit(&next)? {
                        return Ok(false);
                    }
                } else if next.codec() == unixfs::DAG_PB {
                    let Some(b) = self.blocks.get(&next)? else {
                        return Ok(false);
                    };
                    stack.push(b);
                    break;
                } else {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// A large segment as its block files, for the kernel to send.
    fn segment_files(
        &self,
        key: &str,
        meta: SegmentMeta,
    ) -> Result<Option<StoredFiles>, StoreError> {
        let opened = match Cid::try_from(meta.cid.as_str()) {
            Ok(root) => self
                .leaf_files(&root, meta.size)?
                .map(|spans| (root, spans)),
            Err(_) => None,
        };
        let Some((root, spans)) = opened else {
            return self.drop_damaged(key, &meta.cid).map(|()| None);
        };
        self.access.touch(&meta.cid);
        let open = Arc::new(OpenSegment {
            root,
            spans,
            content_type: meta.content_type,
            cid: meta.cid,
        });
        self.open.insert(key.to_owned(), open.clone());
        Ok(Some(open.files()))
    }

    /// Removes a stored segment found incomplete or damaged, so it is fetched again.
    fn drop_damaged(&self, key: &str, cid: &str) -> Result<(), StoreError> {
        warn!(
            key,
            cid, "stored segment incomplete or damaged; will fetch again"
        );
        self.locked(|inner| inner.remove(cid))
    }

    fn locked<T>(&self, f: impl FnOnce(&Self) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _held = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        f(self)
    }

    /// Removes one object and the blocks only it held. Runs with `writes` held.
    fn remove(&self, cid: &str) -> Result<(), StoreError> {
        if let Some(removed) = self.index.remove_object(cid)? {
            self.forgotten(removed.size, &removed.keys);
            // The index must stop naming blocks before their files go.
            self.index.flush()?;
            for block in &removed.dead_blocks {
                if let Ok(cid) = Cid::try_from(block.as_str()) {
                    self.hot_blocks.remove(&cid);
                }
                self.blocks.remove(block)?;
            }
        }
        Ok(())
    }

    /// Accounts for an object gone from the index and drops its keys from memory.
    fn forgotten(&self, size: u64, keys: &[String]) {
        self.objects.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        for k in keys {
            self.hot.remove(k);
            self.open.remove(k);
        }
    }

    fn write_segment(
        &self,
        key: String,
        dag: &unixfs::Dag,
        bytes: Bytes,
        content_type: Option<String>,
    ) -> Result<Cid, StoreError> {
        let meta = SegmentMeta {
            cid: dag.root.to_string(),
            size: bytes.len() as u64,
            content_type,
        };
        let pins = self
            .pending_pins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
            .unwrap_or_default();
        let kept = self.locked(|inner| {
            let dag_bytes: u64 = dag.blocks.iter().map(|b| b.data.len() as u64).sum();
            if !inner.index.has_object(&meta.cid)? {
                inner.check_room(dag_bytes)?;
            }
            for block in &dag.blocks {
                inner.blocks.put(block).map_err(|e| match e {
                    e if full::is_enospc(&e) => inner.full(0),
                    e => e.into(),
                })?;
            }
            let names: Vec<String> = dag.blocks.iter().map(|b| b.cid.to_string()).collect();
            let (fresh, previous) = inner.index.put_segment(&key, &meta, &names, &pins)?;
            if fresh {
                inner.objects.fetch_add(1, Ordering::Relaxed);
                inner.bytes.fetch_add(meta.size, Ordering::Relaxed);
            }
            // A key given new bytes (a newer CID map) leaves the old object
            // unreachable by key: it goes now rather than by the quota.
            if let Some(old) = previous
                && !inner.index.named(&old)?
            {
                inner.remove(&old)?;
            }
            // The object just written is the most recently used.
            inner.access.touch(&meta.cid);
            inner.enforce_quota()?;
            // Pins alone may fill the quota, and then new cache goes at once.
            Ok(inner.index.has_object(&meta.cid)?)
        })?;
        if !kept {
            return Ok(dag.root);
        }
        // Just checked by the import that made them; peers ask for new
        // segments first.
        for block in &dag.blocks {
            self.hot_blocks.insert(block.cid, block.data.clone());
        }
        // A large segment goes to players from its block files and to
        // peers from the block cache just filled; in the segment cache too,
        // it would hold its memory past the block cache's own bound.
        if (bytes.len() as u64) < FILES_MIN {
            self.hot.insert(
                key,
                StoredSegment {
                    cid: dag.root,
                    bytes,
                    content_type: meta.content_type,
                },
            );
        }
        Ok(dag.root)
    }
}
