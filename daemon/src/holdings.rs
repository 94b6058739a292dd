//! What this node holds of each video it plays, published as its own
//! signed CID map, so room members learn what they can fetch from it. Peers
//! that trust this node's key take segments from it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use gateway::SegmentKey;
use libp2p::identity::Keypair;
use url::Url;

use crate::cidmap::{CidMap, Entry, Rendition};

#[derive(Default)]
struct Inner {
    /// Media playlist URL → video id, learnt from master playlists.
    playlist_video: HashMap<String, String>,
    masters: HashMap<String, String>,
    /// Per video, each rendition's keys in playlist order.
    renditions: HashMap<String, Vec<(String, Vec<String>)>>,
    key_video: HashMap<String, String>,
    held: HashMap<String, (String, u64)>,
    dirty: HashSet<String>,
}

pub struct Holdings {
    key: Keypair,
    inner: Mutex<Inner>,
}

impl Holdings {
    pub fn new(key: Keypair) -> Self {
        Self {
            key,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A master playlist of `video` was served, naming these playlists.
    pub fn master(&self, video: &str, url: &Url, children: &[Url]) {
        let mut inner = self.lock();
        inner.masters.insert(video.to_owned(), url.to_string());
        for c in children {
            inner.playlist_video.insert(c.to_string(), video.to_owned());
        }
    }

    /// Whether `url` is a playlist of a video this node has seen.
    pub fn knows_playlist(&self, url: &Url) -> bool {
        self.lock().playlist_video.contains_key(url.as_str())
    }

    /// A media playlist was served; if its video is known, its segments are tracked.
    pub fn media(&self, url: &Url, segments: &[SegmentKey]) {
        let mut inner = self.lock();
        let Some(video) = inner.playlist_video.get(url.as_str()).cloned() else {
            return;
        };
        let keys: Vec<String> = segments.iter().map(|k| k.to_string()).collect();
        for k in &keys {
            inner.key_video.insert(k.clone(), video.clone());
        }
        let renditions = inner.renditions.entry(video.clone()).or_default();
        match renditions.iter_mut().find(|(p, _)| p == url.as_str()) {
            Some(r) => r.1 = keys,
            None => renditions.push((url.to_string(), keys)),
        }
        inner.dirty.insert(video);
    }

    /// A segment is now in the store.
    pub fn stored(&self, key: &str, cid: &str, size: u64) {
        let mut inner = self.lock();
        if let Some(video) = inner.key_video.get(key).cloned() {
            inner.held.insert(key.to_owned(), (cid.to_owned(), size));
            inner.dirty.insert(video);
        }
    }

    /// Segments are no longer in the store (evicted).
    pub fn forget(&self, keys: &[String]) {
        let mut inner = self.lock();
        for key in keys {
            if inner.held.remove(key).is_some()
                && let Some(video) = inner.key_video.get(key).cloned()
            {
                inner.dirty.insert(video);
            }
        }
    }

    /// Signed maps of what changed since the last call, skipping `except`.
    pub fn changed_maps(&self, except: &HashSet<String>) -> Vec<CidMap> {
        let mut inner = self.lock();
        let dirty: Vec<String> = inner
            .dirty
            .drain()
            .filter(|v| !except.contains(v))
            .collect();
        let mut maps = Vec::new();
        for video in dirty {
            let (Some(url), Some(renditions)) =
                (inner.masters.get(&video), inner.renditions.get(&video))
            else {
                continue;
            };
            let renditions: Vec<Rendition> = renditions
                .iter()
                .map(|(playlist, keys)| Rendition {
                    playlist: playlist.clone(),
                    segments: keys
                        .iter()
                        .filter_map(|k| {
                            let (cid, size) = inner.held.get(k)?;
                            Some(Entry {
                                key: k.clone(),
                                cid: cid.clone(),
                                size: *size,
                            })
                        })
                        .collect(),
                })
                .filter(|r| !r.segments.is_empty())
                .collect();
            if !renditions.is_empty() {
                maps.push(CidMap::new(video.clone(), url.clone(), renditions).sign(&self.key));
            }
        }
        maps
    }
}
