//! Which segment keys have a CID we trust, from which maps (DESIGN §3).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cid::Cid;

use crate::cidmap::CidMap;

/// A segment whose CID is known from a trusted source.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub cid: Cid,
    pub size: u64,
    pub video: Arc<str>,
    /// Its media playlist's keys, in order, and its place among them.
    pub rendition: Arc<[String]>,
    pub index: usize,
}

#[derive(Default)]
struct Index {
    by_key: HashMap<String, Trusted>,
    maps: HashMap<String, Arc<CidMap>>,
}

#[derive(Default)]
pub struct Trust {
    index: RwLock<Index>,
}

impl Trust {
    /// Adds a map whose source has been checked. A newer map for the same
    /// video replaces an older one; returns whether this one was taken.
    pub fn add_map(&self, map: CidMap) -> bool {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if index
            .maps
            .get(&map.video)
            .is_some_and(|m| m.created_ms > map.created_ms)
        {
            return false;
        }
        let video: Arc<str> = map.video.as_str().into();
        for r in &map.renditions {
            let keys: Arc<[String]> = r.segments.iter().map(|e| e.key.clone()).collect();
            for (i, e) in r.segments.iter().enumerate() {
                let Ok(cid) = Cid::try_from(e.cid.as_str()) else {
                    continue;
                };
                index.by_key.insert(
                    e.key.clone(),
                    Trusted {
                        cid,
                        size: e.size,
                        video: video.clone(),
                        rendition: keys.clone(),
                        index: i,
                    },
                );
            }
        }
        index.maps.insert(map.video.clone(), Arc::new(map));
        true
    }

    pub fn lookup(&self, key: &str) -> Option<Trusted> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .get(key)
            .cloned()
    }

    pub fn map(&self, video: &str) -> Option<Arc<CidMap>> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .maps
            .get(video)
            .cloned()
    }

    /// The `k` segments after `t` in its rendition.
    pub fn following(&self, t: &Trusted, k: usize) -> Vec<(String, Trusted)> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        t.rendition
            .iter()
            .skip(t.index + 1)
            .take(k)
            .filter_map(|key| index.by_key.get(key).map(|t| (key.clone(), t.clone())))
            .collect()
    }
}
