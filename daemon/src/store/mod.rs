//! The content store: segments by CID (DESIGN §2), verified on write and
//! on read. Callers see this interface only; sled and the block files stay
//! behind it.

pub mod blocks;
pub mod index;
pub mod unixfs;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use cid::Cid;
use gateway::StoreUsage;
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

struct Inner {
    index: Index,
    blocks: BlockFiles,
    /// Verified segments recently read or written, by segment key.
    hot: quick_cache::sync::Cache<String, StoredSegment, ByteWeight>,
    objects: AtomicU64,
    bytes: AtomicU64,
}

/// Cheap to clone; every blocking call runs on tokio's blocking pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens or creates the store under `dir`. Blocking.
    pub fn open(dir: &Path, memory_cache: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let index = Index::open(&dir.join("index"))?;
        let blocks = BlockFiles::open(&dir.join("blocks"))?;
        let (objects, bytes) = index.usage();
        let hot = quick_cache::sync::Cache::with_weighter(1024, memory_cache.max(1), ByteWeight);
        Ok(Self {
            inner: Arc::new(Inner {
                index,
                blocks,
                hot,
                objects: AtomicU64::new(objects),
                bytes: AtomicU64::new(bytes),
            }),
        })
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
            return Ok(Some(hit));
        }
        let key = key.to_owned();
        self.blocking(move |inner| inner.read_segment(&key)).await
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

    /// One verified block, for peers that ask by CID.
    pub async fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, StoreError> {
        let cid = *cid;
        self.blocking(move |inner| Ok(inner.blocks.get(&cid)?))
            .await
    }

    /// Records a seeded video so it is seeded again after a restart.
    pub async fn put_video(&self, id: String, url: String) -> Result<(), StoreError> {
        self.blocking(move |inner| Ok(inner.index.put_video(&id, &url)?))
            .await
    }

    /// Seeded videos: (id, master playlist URL).
    pub async fn videos(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.blocking(|inner| Ok(inner.index.videos())).await
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

    pub fn usage(&self) -> StoreUsage {
        StoreUsage {
            segments: self.inner.objects.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
        }
    }

    /// Makes every index write durable. Blocking.
    pub fn flush(&self) -> Result<(), StoreError> {
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
            warn!(key, cid = %meta.cid, "stored segment incomplete or damaged; will fetch again");
            if let Some(size) = self.index.forget_segment(key, &meta.cid)? {
                self.objects.fetch_sub(1, Ordering::Relaxed);
                self.bytes.fetch_sub(size, Ordering::Relaxed);
            }
            return Ok(None);
        };
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
        let Some(block) = self.blocks.get(root)? else {
            return Ok(None);
        };
        if root.codec() == unixfs::RAW {
            return Ok((block.len() as u64 == size).then_some(block));
        }
        let mut out = BytesMut::with_capacity(size as usize);
        let mut stack = vec![block];
        // Depth-first over dag-pb nodes; leaves are appended in file order.
        let mut pending: Vec<Cid> = Vec::new();
        while let Some(node) = stack.pop() {
            let Ok(mut kids) = unixfs::links(&node) else {
                return Ok(None);
            };
            kids.reverse();
            pending.extend(kids);
            while let Some(next) = pending.pop() {
                let Some(b) = self.blocks.get(&next)? else {
                    return Ok(None);
                };
                if next.codec() == unixfs::RAW {
                    if (out.len() + b.len()) as u64 > size {
                        return Ok(None);
                    }
                    out.extend_from_slice(&b);
                } else if next.codec() == unixfs::DAG_PB {
                    stack.push(b);
                    break;
                } else {
                    return Ok(None);
                }
            }
        }
        Ok((out.len() as u64 == size).then(|| out.freeze()))
    }

    fn write_segment(
        &self,
        key: String,
        dag: &unixfs::Dag,
        bytes: Bytes,
        content_type: Option<String>,
    ) -> Result<Cid, StoreError> {
        for block in &dag.blocks {
            self.blocks.put(block)?;
        }
        let meta = SegmentMeta {
            cid: dag.root.to_string(),
            size: bytes.len() as u64,
            content_type,
        };
        if self.index.put_segment(&key, &meta)? {
            self.objects.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(meta.size, Ordering::Relaxed);
        }
        self.hot.insert(
            key,
            StoredSegment {
                cid: dag.root,
                bytes,
                content_type: meta.content_type,
            },
        );
        Ok(dag.root)
    }
}
