//! The sled index: which segment key names which CID, object sizes, and
//! stored playlists. Block bytes live in files (see `blocks`), so the index
//! stays small. Writes are flushed before they are acknowledged; if sled
//! itself is lost, the blocks are fetched again.
//!
//! Objects (segments by root CID) hold references on their blocks in
//! `refs`, updated in the same transaction as `objects`, so a block shared
//! by several objects outlives all but the last of them.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Mutex;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use serde::{Deserialize, Serialize};
use tracing::warn;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub cid: String,
    pub size: u64,
    pub content_type: Option<String>,
}

pub struct Index {
    pub(super) db: sled::Db,
    segments: sled::Tree,
    /// Hashes of the keys in `segments`, so a miss is known without a
    /// sled read on a blocking thread (that round trip is most of what a
    /// lookup costs a player's first byte). It may name keys that are gone,
    /// never the other way round but for a race with removal, which costs
    /// only a fetch again.
    named: KeyFilter,
    /// Root CID → object size.
    objects: sled::Tree,
    playlists: sled::Tree,
    /// Pins: video id → master playlist URL.
    pub(super) videos: sled::Tree,
    /// Block CID → how many objects hold it.
    refs: sled::Tree,
    /// Root CID → the object's distinct block CIDs, as JSON.
    object_blocks: sled::Tree,
    /// `root CID \n segment key` → (): which keys name an object.
    keys: sled::Tree,
    /// Root CID → last access tick, written lazily.
    pub(super) access: sled::Tree,
    /// `video id \n root CID` → (): what each pin holds.
    pub(super) pin_objects: sled::Tree,
}

/// What removing an object freed.
#[derive(Debug, Default)]
pub struct Removed {
    pub size: u64,
    /// Blocks no other object holds: their files can go.
    pub dead_blocks: Vec<String>,
    /// Segment keys that named the object.
    pub keys: Vec<String>,
}

fn open_db(path: &Path) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .flush_every_ms(Some(500))
        .open()
}

impl Index {
    pub fn open(path: &Path) -> sled::Result<Self> {
        let db = match open_db(path) {
            Ok(db) => db,
            Err(e) => {
                // sled 0.34 can fail to reopen after a crash. The index only
                // points at self-verifying block files, so start a fresh one
                // and keep the old for inspection.
                let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
                warn!(error = %e, aside = %aside.display(), "index does not open; starting a new one");
                std::fs::rename(path, &aside)?;
                open_db(path)?
            }
        };
        let segments = db.open_tree("segments")?;
        let named = KeyFilter::default();
        for key in segments.iter().keys() {
            named.insert(&key?);
        }
        Ok(Self {
            segments,
            named,
            objects: db.open_tree("objects")?,
            playlists: db.open_tree("playlists")?,
            videos: db.open_tree("videos")?,
            refs: db.open_tree("refs")?,
            object_blocks: db.open_tree("object_blocks")?,
            keys: db.open_tree("keys")?,
            access: db.open_tree("access")?,
            pin_objects: db.open_tree("pin_objects")?,
            db,
        })
    }

    /// False when no segment is stored under `key`; true when one may be.
    /// Never blocks.
    pub fn may_name(&self, key: &str) -> bool {
        self.named.contains(key.as_bytes())
    }

    pub fn segment(&self, key: &str) -> sled::Result<Option<SegmentMeta>> {
        if !self.may_name(key) {
            return Ok(None);
        }
        self.segment_in_sled(key)
    }

    /// The record itself, whatever the filter says: writes go by this.
    fn segment_in_sled(&self, key: &str) -> sled::Result<Option<SegmentMeta>> {
        Ok(self
            .segments
            .get(key)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records a segment whose blocks (`blocks`, every CID of its DAG) are
    /// on disk, and pins it under `pins`. Returns whether its object is new
    /// to the store, and the object the key named before, if another.
    pub fn put_segment(
        &self,
        key: &str,
        meta: &SegmentMeta,
        blocks: &[String],
        pins: &[String],
    ) -> sled::Result<(bool, Option<String>)> {
        let value = serde_json::to_vec(meta).unwrap_or_default();
        let distinct: BTreeSet<&String> = blocks.iter().collect();
        let block_list = serde_json::to_vec(&distinct).unwrap_or_default();
        let cid = meta.cid.as_bytes();
        let previous = self.segment_in_sled(key)?.filter(|old| old.cid != meta.cid);
        // Before the write, so no reader sees the key stored but unnamed.
        self.named.insert(key.as_bytes());
        let fresh = (
            &self.objects,
            &self.segments,
            &self.refs,
            &self.object_blocks,
            &self.keys,
            &self.pin_objects,
        )
            .transaction(|(objects, segments, refs, object_blocks, keys, pinned)| {
                let fresh = objects.get(cid)?.is_none();
                if fresh {
                    objects.insert(cid, &meta.size.to_be_bytes())?;
                    object_blocks.insert(cid, block_list.as_slice())?;
                    for b in &distinct {
                        let n = refs.get(b.as_bytes())?.map_or(0, |v| size_of(&v));
                        refs.insert(b.as_bytes(), &(n + 1).to_be_bytes())?;
                    }
                }
                segments.insert(key.as_bytes(), value.as_slice())?;
                if let Some(old) = &previous {
                    keys.remove(pair(&old.cid, key))?;
                }
                keys.insert(pair(&meta.cid, key), &[])?;
                for id in pins {
                    pinned.insert(pair(id, &meta.cid), &[])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(fresh)
            })
            .map_err(storage)?;
        // A segment counts as stored once it survives kill -9.
        self.db.flush()?;
        Ok((fresh, previous.map(|p| p.cid)))
    }

    /// Whether any segment key names the object.
    pub fn named(&self, cid: &str) -> sled::Result<bool> {
        Ok(self
            .keys
            .scan_prefix(pair(cid, ""))
            .next()
            .transpose()?
            .is_some())
    }

    /// Removes an object, the keys that name it and its references on its
    /// blocks. `None` if the object was not in the store. Not flushed: the
    /// caller flushes once before deleting the dead blocks' files.
    pub fn remove_object(&self, cid: &str) -> sled::Result<Option<Removed>> {
        let names: Vec<String> = self
            .keys
            .scan_prefix(pair(cid, ""))
            .keys()
            .filter_map(Result::ok)
            .filter_map(|k| Some(std::str::from_utf8(&k).ok()?[cid.len() + 1..].to_owned()))
            .collect();
        let blocks: Vec<String> = self
            .object_blocks
            .get(cid)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            // Objects recorded before block lists were kept: the root alone.
            .unwrap_or_else(|| vec![cid.to_owned()]);
        let removed = (
            &self.objects,
            &self.segments,
            &self.refs,
            &self.object_blocks,
            &self.keys,
            &self.access,
        )
            .transaction(|(objects, segments, refs, object_blocks, keys, access)| {
                let Some(size) = objects.remove(cid.as_bytes())? else {
                    return Ok(None);
                };
                object_blocks.remove(cid.as_bytes())?;
                access.remove(cid.as_bytes())?;
                let mut removed = Removed {
                    size: size_of(&size),
                    ..Removed::default()
                };
                for b in &blocks {
                    let n = refs.get(b.as_bytes())?.map_or(0, |v| size_of(&v));
                    if n <= 1 {
                        refs.remove(b.as_bytes())?;
                        removed.dead_blocks.push(b.clone());
                    } else {
                        refs.insert(b.as_bytes(), &(n - 1).to_be_bytes())?;
                    }
                }
                for name in &names {
                    let names_this = segments
                        .get(name.as_bytes())?
                        .and_then(|v| serde_json::from_slice::<SegmentMeta>(&v).ok())
                        .is_some_and(|m| m.cid == cid);
                    if names_this {
                        segments.remove(name.as_bytes())?;
                    }
                    keys.remove(pair(cid, name))?;
                    removed.keys.push(name.clone());
                }
                Ok::<_, ConflictableTransactionError<()>>(Some(removed))
            })
            .map_err(storage)?;
        if let Some(removed) = &removed {
            for name in &removed.keys {
                // Another object may have taken the key meanwhile.
                self.named
                    .remove_unless(name.as_bytes(), || self.segments.contains_key(name))?;
            }
        }
        Ok(removed)
    }

    /// How many objects hold `block`.
    pub fn refs(&self, block: &str) -> sled::Result<u64> {
        Ok(self.refs.get(block)?.map_or(0, |v| size_of(&v)))
    }

    pub fn has_object(&self, cid: &str) -> sled::Result<bool> {
        self.objects.contains_key(cid)
    }

    pub fn object_size(&self, cid: &str) -> sled::Result<Option<u64>> {
        Ok(self.objects.get(cid)?.map(|v| size_of(&v)))
    }

    /// Every object: (root CID, size).
    pub fn objects(&self) -> Vec<(String, u64)> {
        self.objects
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((String::from_utf8(k.to_vec()).ok()?, size_of(&v))))
            .collect()
    }

    /// (objects, bytes) in the store.
    pub fn usage(&self) -> (u64, u64) {
        self.objects
            .iter()
            .values()
            .filter_map(Result::ok)
            .fold((0, 0), |(n, b), v| (n + 1, b + size_of(&v)))
    }

    pub fn playlist(&self, url: &str) -> sled::Result<Option<(String, Vec<u8>)>> {
        Ok(self.playlists.get(url)?.and_then(|v| {
            let (len, rest) = v.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            let base = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
            Some((base, rest[len..].to_vec()))
        }))
    }

    pub fn put_playlist(&self, url: &str, base: &str, body: &[u8]) -> sled::Result<()> {
        let mut v = Vec::with_capacity(4 + base.len() + body.len());
        v.extend_from_slice(&(base.len() as u32).to_be_bytes());
        v.extend_from_slice(base.as_bytes());
        v.extend_from_slice(body);
        self.playlists.insert(url, v)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn flush(&self) -> sled::Result<()> {
        self.db.flush().map(|_| ())
    }
}

/// A set of key hashes; 8 bytes a segment.
#[derive(Default)]
struct KeyFilter {
    state: RandomState,
    hashes: Mutex<HashSet<u64>>,
}

impl KeyFilter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, key: &[u8]) {
        let h = self.state.hash_one(key);
        self.lock().insert(h);
    }

    fn contains(&self, key: &[u8]) -> bool {
        let h = self.state.hash_one(key);
        self.lock().contains(&h)
    }

    /// Forgets `key` unless `still` says it is stored again. A put of the
    /// same key between its `insert` and its write can lose its hash here;
    /// the next request for it then fetches again, and the put restores it.
    fn remove_unless(
        &self,
        key: &[u8],
        still: impl FnOnce() -> sled::Result<bool>,
    ) -> sled::Result<()> {
        let h = self.state.hash_one(key);
        let mut hashes = self.lock();
        if !still()? {
            hashes.remove(&h);
        }
        Ok(())
    }
}

/// `a \n b`: keys of trees that map one thing to many. Neither video ids,
/// CIDs nor URLs hold a newline.
pub(super) fn pair(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(b'\n');
    k.extend_from_slice(b.as_bytes());
    k
}

fn storage(e: TransactionError<()>) -> sled::Error {
    match e {
        TransactionError::Storage(e) => e,
        TransactionError::Abort(()) => sled::Error::Unsupported("transaction aborted".into()),
    }
}

pub(super) fn size_of(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
