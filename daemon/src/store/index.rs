//! The sled index: which segment key names which CID, object sizes, and
//! stored playlists. Block bytes live in files (see `blocks`), so the index
//! stays small. Writes are flushed before they are acknowledged; if sled
//! itself is lost, the blocks are fetched again.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::warn;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub cid: String,
    pub size: u64,
    pub content_type: Option<String>,
}

pub struct Index {
    db: sled::Db,
    segments: sled::Tree,
    objects: sled::Tree,
    playlists: sled::Tree,
    videos: sled::Tree,
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
        Ok(Self {
            segments: db.open_tree("segments")?,
            objects: db.open_tree("objects")?,
            playlists: db.open_tree("playlists")?,
            videos: db.open_tree("videos")?,
            db,
        })
    }

    pub fn segment(&self, key: &str) -> sled::Result<Option<SegmentMeta>> {
        Ok(self
            .segments
            .get(key)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Records a segment. Returns whether its object is new to the store.
    pub fn put_segment(&self, key: &str, meta: &SegmentMeta) -> sled::Result<bool> {
        let value = serde_json::to_vec(meta).unwrap_or_default();
        let fresh = self
            .objects
            .insert(meta.cid.as_bytes(), &meta.size.to_be_bytes())?
            .is_none();
        self.segments.insert(key, value)?;
        // A segment counts as stored once it survives kill -9.
        self.db.flush()?;
        Ok(fresh)
    }

    /// Forgets a segment whose blocks are gone. Returns the object's size if
    /// the object was known.
    pub fn forget_segment(&self, key: &str, cid: &str) -> sled::Result<Option<u64>> {
        self.segments.remove(key)?;
        Ok(self.objects.remove(cid.as_bytes())?.map(|v| size_of(&v)))
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

    /// Seeded videos: id → master playlist URL.
    pub fn put_video(&self, id: &str, url: &str) -> sled::Result<()> {
        self.videos.insert(id, url.as_bytes())?;
        self.db.flush().map(|_| ())
    }

    pub fn videos(&self) -> Vec<(String, String)> {
        self.videos
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                Some((
                    String::from_utf8(k.to_vec()).ok()?,
                    String::from_utf8(v.to_vec()).ok()?,
                ))
            })
            .collect()
    }

    pub fn flush(&self) -> sled::Result<()> {
        self.db.flush().map(|_| ())
    }
}

fn size_of(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
