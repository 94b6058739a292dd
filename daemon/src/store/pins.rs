//! Pins in the index: a pin is a seeded video (id → master playlist URL,
//! the `videos` tree) and the objects recorded under it. Pinned objects are
//! never evicted.

use std::collections::HashSet;

use super::index::{Index, pair};
use super::{Store, StoreError};

impl Index {
    /// Records a pin; flushed, so an acknowledged pin survives kill -9.
    pub fn put_video(&self, id: &str, url: &str) -> sled::Result<()> {
        self.videos.insert(id, url.as_bytes())?;
        self.db.flush().map(|_| ())
    }

    /// Pins: (id, master playlist URL).
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

    /// Records `cid` under pin `id`. Not flushed: a record lost to a crash
    /// is made again when the seed resumes and finds the object stored.
    pub fn pin_object(&self, id: &str, cid: &str) -> sled::Result<()> {
        self.pin_objects.insert(pair(id, cid), &[])?;
        Ok(())
    }

    /// Removes pin `id` and its records; returns whether it existed.
    pub fn unpin(&self, id: &str) -> sled::Result<bool> {
        let existed = self.videos.remove(id)?.is_some();
        let mut batch = sled::Batch::default();
        for k in self.pin_objects.scan_prefix(pair(id, "")).keys() {
            batch.remove(k?);
        }
        self.pin_objects.apply_batch(batch)?;
        self.db.flush()?;
        Ok(existed)
    }

    /// Root CIDs recorded under pin `id`.
    pub fn pinned_by(&self, id: &str) -> Vec<String> {
        let prefix = pair(id, "");
        self.pin_objects
            .scan_prefix(&prefix)
            .keys()
            .filter_map(Result::ok)
            .filter_map(|k| String::from_utf8(k[prefix.len()..].to_vec()).ok())
            .collect()
    }

    /// Root CIDs recorded under any pin.
    pub fn pinned(&self) -> HashSet<String> {
        self.pin_objects
            .iter()
            .keys()
            .filter_map(Result::ok)
            .filter_map(|k| {
                let k = std::str::from_utf8(&k).ok()?;
                Some(k.split_once('\n')?.1.to_owned())
            })
            .collect()
    }
}

/// Segments a seed is fetching: when one is written, it is pinned in the
/// same transaction. Dropping the guard forgets the wish.
pub struct PendingPin {
    store: Store,
    key: String,
    id: String,
}

impl Drop for PendingPin {
    fn drop(&mut self) {
        let mut pending = self
            .store
            .inner
            .pending_pins
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = pending.get_mut(&self.key) {
            if let Some(i) = ids.iter().position(|x| *x == self.id) {
                ids.swap_remove(i);
            }
            if ids.is_empty() {
                pending.remove(&self.key);
            }
        }
    }
}

/// What a pin holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PinUsage {
    pub objects: u64,
    pub bytes: u64,
}

impl Store {
    /// Records a pin so it is seeded again after a restart.
    pub async fn put_video(&self, id: String, url: String) -> Result<(), StoreError> {
        self.blocking(move |inner| Ok(inner.index.put_video(&id, &url)?))
            .await
    }

    /// Pins: (id, master playlist URL).
    pub async fn videos(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.blocking(|inner| Ok(inner.index.videos())).await
    }

    /// Pins the segment under `key` to `id` when it is written.
    pub fn expect_pin(&self, key: &str, id: &str) -> PendingPin {
        self.inner
            .pending_pins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_owned())
            .or_default()
            .push(id.to_owned());
        PendingPin {
            store: self.clone(),
            key: key.to_owned(),
            id: id.to_owned(),
        }
    }

    /// Records an object found already stored under pin `id`.
    pub async fn pin_object(&self, id: String, cid: String) -> Result<(), StoreError> {
        self.blocking(move |inner| Ok(inner.index.pin_object(&id, &cid)?))
            .await
    }

    /// Removes pin `id`: its objects become cache, evicted if over the quota.
    pub async fn unpin(&self, id: String) -> Result<bool, StoreError> {
        self.blocking(move |inner| {
            let existed = inner.index.unpin(&id)?;
            inner.locked(|inner| inner.enforce_quota())?;
            Ok(existed)
        })
        .await
    }

    /// The objects recorded under pin `id` that are in the store.
    pub async fn pin_usage(&self, id: String) -> Result<PinUsage, StoreError> {
        // Under `writes`, so a write that replaces an object is seen whole.
        self.blocking(move |inner| {
            let _held = inner.writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut usage = PinUsage::default();
            for cid in inner.index.pinned_by(&id) {
                if let Some(size) = inner.index.object_size(&cid)? {
                    usage.objects += 1;
                    usage.bytes += size;
                }
            }
            Ok(usage)
        })
        .await
    }
}
