//! The quota: when writes push the store over `max_bytes`, unpinned objects
//! go, least recently used first, until the store is a little under it, so
//! that not every write pays for a pass.
//!
//! Last access is kept in memory and written to sled lazily (at each pass
//! and at flush), so reads never write the index.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cid::Cid;
use tracing::{info, warn};

use super::index::{Index, size_of};
use super::{Inner, StoreError};

/// A pass ends this far under the quota (1/20 of it).
const HYSTERESIS_DIVISOR: u64 = 20;

/// How often "pins alone exceed the quota" is logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Last-access ticks: milliseconds since the epoch, but strictly increasing
/// within a run and across restarts, so ordering never depends on the wall
/// clock's resolution or on it going back.
pub(super) struct Access {
    clock: AtomicU64,
    dirty: Mutex<HashMap<String, u64>>,
    /// Hits from the memory cache, keyed by CID so that a hit formats no
    /// string; named at persist time.
    hits: Mutex<HashMap<Cid, u64>>,
}

impl Access {
    pub(super) fn new(last_persisted: u64) -> Self {
        Self {
            clock: AtomicU64::new(last_persisted),
            dirty: Mutex::default(),
            hits: Mutex::default(),
        }
    }

    fn tick(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let prev = self
            .clock
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(now.max(c + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }

    pub(super) fn touch(&self, cid: &str) {
        let t = self.tick();
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cid.to_owned(), t);
    }

    pub(super) fn touch_hit(&self, cid: &Cid) {
        let t = self.tick();
        self.hits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*cid, t);
    }

    fn take(&self) -> HashMap<String, u64> {
        let hits = std::mem::take(&mut *self.hits.lock().unwrap_or_else(|p| p.into_inner()));
        let mut ticks = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        for (cid, t) in hits {
            let t0 = ticks.entry(cid.to_string()).or_default();
            *t0 = (*t0).max(t);
        }
        ticks
    }
}

impl Index {
    /// The highest access tick written, so the clock never runs backwards.
    pub(super) fn last_access(&self) -> u64 {
        self.access
            .iter()
            .values()
            .filter_map(Result::ok)
            .map(|v| size_of(&v))
            .max()
            .unwrap_or(0)
    }

    fn access_ticks(&self) -> HashMap<String, u64> {
        self.access
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((String::from_utf8(k.to_vec()).ok()?, size_of(&v))))
            .collect()
    }

    /// Writes ticks of objects still in the store.
    fn persist_access(&self, ticks: &HashMap<String, u64>) -> sled::Result<()> {
        let mut batch = sled::Batch::default();
        for (cid, t) in ticks {
            if self.has_object(cid)? {
                batch.insert(cid.as_bytes(), &t.to_be_bytes());
            }
        }
        self.access.apply_batch(batch)
    }
}

/// An object the quota may take.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub cid: String,
    pub size: u64,
    /// Last access tick; 0 if never recorded.
    pub last_access: u64,
}

/// The objects to evict, oldest first, to bring `used` bytes under the
/// quota with hysteresis; and the bytes left after them.
pub fn victims(
    mut objects: Vec<Candidate>,
    pinned: &HashSet<String>,
    used: u64,
    max: u64,
) -> (Vec<String>, u64) {
    if used <= max {
        return (Vec::new(), used);
    }
    let target = max - max / HYSTERESIS_DIVISOR;
    objects.retain(|o| !pinned.contains(&o.cid));
    objects.sort_by(|a, b| (a.last_access, &a.cid).cmp(&(b.last_access, &b.cid)));
    let mut left = used;
    let mut out = Vec::new();
    for o in objects {
        if left <= target {
            break;
        }
        left = left.saturating_sub(o.size);
        out.push(o.cid);
    }
    (out, left)
}

impl Inner {
    /// Writes the access ticks gathered in memory. Blocking.
    pub(super) fn persist_access(&self) -> Result<(), StoreError> {
        let ticks = self.access.take();
        if !ticks.is_empty() {
            self.index.persist_access(&ticks)?;
        }
        Ok(())
    }

    /// Evicts until the store is under its quota. Runs with `writes` held.
    pub(super) fn enforce_quota(&self) -> Result<(), StoreError> {
        let used = self.bytes.load(Ordering::Relaxed);
        if used <= self.max_bytes {
            return Ok(());
        }
        self.persist_access()?;
        let ticks = self.index.access_ticks();
        let pinned = self.index.pinned();
        let objects = self
            .index
            .objects()
            .into_iter()
            .map(|(cid, size)| Candidate {
                last_access: ticks.get(&cid).copied().unwrap_or(0),
                cid,
                size,
            })
            .collect();
        let (doomed, left) = victims(objects, &pinned, used, self.max_bytes);
        let (mut evicted, mut freed, mut dead) = (0u64, 0u64, Vec::new());
        for cid in &doomed {
            if let Some(removed) = self.index.remove_object(cid)? {
                self.forgotten(removed.size, &removed.keys);
                self.evicted_keys
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(removed.keys.iter().cloned());
                evicted += 1;
                freed += removed.size;
                dead.extend(removed.dead_blocks);
            }
        }
        // The index must stop naming blocks before their files go.
        self.index.flush()?;
        for block in &dead {
            self.blocks.remove(block)?;
        }
        if evicted > 0 {
            info!(
                evicted,
                freed,
                blocks_deleted = dead.len(),
                max_bytes = self.max_bytes,
                "store over its quota; evicted least recently used objects"
            );
        }
        if left > self.max_bytes {
            self.warn_pins_over_quota(left);
        }
        Ok(())
    }

    fn warn_pins_over_quota(&self, left: u64) {
        let mut last = self.quota_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            warn!(
                store_bytes = left,
                max_bytes = self.max_bytes,
                "pinned content alone exceeds store.max_bytes; keeping it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(cid: &str, size: u64, last_access: u64) -> Candidate {
        Candidate {
            cid: cid.into(),
            size,
            last_access,
        }
    }

    #[test]
    fn nothing_goes_under_the_quota() {
        let (v, left) = victims(vec![c("a", 10, 1)], &HashSet::new(), 10, 10);
        assert!(v.is_empty());
        assert_eq!(left, 10);
    }

    #[test]
    fn least_recently_used_go_first_until_under_with_hysteresis() {
        let objects = vec![
            c("new", 30, 9),
            c("old", 30, 1),
            c("mid", 30, 5),
            c("x", 30, 7),
        ];
        // 120 used, quota 100: the pass ends at or under 95.
        let (v, left) = victims(objects, &HashSet::new(), 120, 100);
        assert_eq!(v, ["old"]);
        assert_eq!(left, 90);
    }

    #[test]
    fn pinned_objects_are_never_chosen() {
        let pinned: HashSet<String> = ["old".to_owned()].into();
        let objects = vec![c("old", 50, 1), c("new", 60, 2), c("newer", 40, 3)];
        let (v, left) = victims(objects, &pinned, 150, 100);
        assert_eq!(v, ["new"]);
        assert_eq!(left, 90);
    }

    #[test]
    fn pins_over_the_quota_leave_the_store_over_it() {
        let pinned: HashSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let objects = vec![c("a", 80, 1), c("b", 80, 2), c("c", 10, 3)];
        let (v, left) = victims(objects, &pinned, 170, 100);
        assert_eq!(v, ["c"]);
        assert_eq!(left, 160);
    }

    #[test]
    fn access_ticks_only_grow() {
        let a = Access::new(u64::MAX / 2);
        let first = a.tick();
        let second = a.tick();
        assert!(first > u64::MAX / 2 && second > first);
    }
}
