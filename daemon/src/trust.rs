//! What a segment is known to be before its bytes arrive (DESIGN §3): its
//! CID from a trusted CID map, or its SHA-256 from a list the origin
//! published. Also kept here: untrusted hints (a CID that a room member
//! announced for a segment known only by its SHA-256, checked whole once
//! fetched) and the origin's mirrors.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cid::Cid;
use gateway::SegmentKey;

use crate::cidmap::CidMap;
use crate::sha256_list::{Sha256List, raw_cid};

/// A segment whose content is known from a trusted source.
#[derive(Clone, Debug)]
pub struct Trusted {
    /// The CID peers serve it under: from a CID map, or following from the
    /// SHA-256 of a single-block segment.
    pub cid: Option<Cid>,
    pub size: Option<u64>,
    /// The SHA-256 of the whole segment, when the origin published it:
    /// bytes from any source are checked against it.
    pub sha256: Option<[u8; 32]>,
    pub video: Arc<str>,
    /// Its media playlist's keys, in order, and its place among them.
    pub rendition: Arc<[String]>,
    pub index: usize,
}

/// A CID a room member announced for a segment whose SHA-256 is trusted
/// but whose CID does not follow from it (more than one block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    pub cid: Cid,
    pub size: u64,
    /// Who announced it, to blame if the bytes do not match.
    pub publisher: String,
}

/// Hints kept for one segment: a few publishers are enough to find an
/// honest one, and a flood of maps cannot grow memory.
const HINTS_PER_SEGMENT: usize = 4;

#[derive(Default)]
struct Index {
    by_key: HashMap<String, Trusted>,
    maps: HashMap<String, Arc<CidMap>>,
    sha_lists: HashMap<String, Arc<Sha256List>>,
    hints: HashMap<String, Vec<Hint>>,
}

#[derive(Default)]
pub struct Trust {
    index: RwLock<Index>,
    /// Where else the origin serves its files.
    pub mirrors: crate::mirrors::Mirrors,
}

impl Trust {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a map whose source has been checked. A newer map for the same
    /// video replaces an older one; returns whether this one was taken.
    /// A published SHA-256 outranks a map: where they disagree, the map's
    /// CID is not used.
    pub fn add_map(&self, map: CidMap) -> bool {
        let mut index = self.write();
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
                let sha256 = index.by_key.get(&e.key).and_then(|t| t.sha256);
                let agrees =
                    sha256.is_none_or(|d| raw_cid(&d, Some(e.size)).is_none_or(|raw| raw == cid));
                let entry = Trusted {
                    cid: Some(cid),
                    size: Some(e.size),
                    sha256,
                    video: video.clone(),
                    rendition: keys.clone(),
                    index: i,
                };
                if agrees {
                    index.by_key.insert(e.key.clone(), entry);
                }
            }
        }
        index.maps.insert(map.video.clone(), Arc::new(map));
        true
    }

    /// Takes up the origin's SHA-256 list for `video`.
    pub fn add_sha_list(&self, video: &str, list: Arc<Sha256List>) {
        self.write().sha_lists.insert(video.to_owned(), list);
    }

    /// Whether `video` has a SHA-256 list.
    pub fn has_sha_list(&self, video: &str) -> bool {
        self.read().sha_lists.contains_key(video)
    }

    /// Trusts every segment of these renditions of `video` that its SHA-256
    /// list names; returns how many it named.
    pub fn add_sha_renditions(
        &self,
        video: &str,
        renditions: &[(String, Vec<SegmentKey>)],
    ) -> usize {
        let mut index = self.write();
        let Some(list) = index.sha_lists.get(video).cloned() else {
            return 0;
        };
        let video: Arc<str> = video.into();
        let mut named = 0;
        for (_, segments) in renditions {
            let keys: Arc<[String]> = segments.iter().map(SegmentKey::to_string).collect();
            for (i, key) in segments.iter().enumerate() {
                let Some(digest) = list.lookup(&key.url, key.range) else {
                    continue;
                };
                named += 1;
                let size = key.range.map(|r| r.length);
                let raw = raw_cid(&digest, size);
                let entry = match index.by_key.remove(&keys[i]) {
                    // A map's CID stays when the digest cannot contradict it.
                    Some(t) if raw.is_none() || t.cid == raw => Trusted {
                        sha256: Some(digest),
                        ..t
                    },
                    _ => Trusted {
                        cid: raw,
                        size,
                        sha256: Some(digest),
                        video: video.clone(),
                        rendition: keys.clone(),
                        index: i,
                    },
                };
                index.by_key.insert(keys[i].clone(), entry);
            }
        }
        named
    }

    /// Keeps the CIDs an untrusted map gives for segments known only by
    /// their SHA-256; returns how many were kept.
    pub fn add_hints(&self, map: &CidMap) -> usize {
        let Some(publisher) = map.publisher.clone() else {
            return 0;
        };
        let mut index = self.write();
        let Index { by_key, hints, .. } = &mut *index;
        let mut kept = 0;
        for e in map.renditions.iter().flat_map(|r| &r.segments) {
            let Some(t) = by_key.get(&e.key) else {
                continue;
            };
            let Ok(cid) = Cid::try_from(e.cid.as_str()) else {
                continue;
            };
            if t.cid.is_some() || t.sha256.is_none() || t.size.is_some_and(|s| s != e.size) {
                continue;
            }
            let list = hints.entry(e.key.clone()).or_default();
            list.retain(|h| h.publisher != publisher);
            if list.len() < HINTS_PER_SEGMENT {
                list.push(Hint {
                    cid,
                    size: e.size,
                    publisher: publisher.clone(),
                });
                kept += 1;
            }
        }
        kept
    }

    /// The hints for `key`.
    pub fn hints(&self, key: &str) -> Vec<Hint> {
        self.read().hints.get(key).cloned().unwrap_or_default()
    }

    /// Forgets every hint `publisher` gave: one was a lie.
    pub fn drop_hints_from(&self, publisher: &str) {
        let mut index = self.write();
        index.hints.retain(|_, list| {
            list.retain(|h| h.publisher != publisher);
            !list.is_empty()
        });
    }

    pub fn lookup(&self, key: &str) -> Option<Trusted> {
        self.read().by_key.get(key).cloned()
    }

    pub fn map(&self, video: &str) -> Option<Arc<CidMap>> {
        self.read().maps.get(video).cloned()
    }

    /// The `k` segments after `t` in its rendition.
    pub fn following(&self, t: &Trusted, k: usize) -> Vec<(String, Trusted)> {
        let index = self.read();
        t.rendition
            .iter()
            .skip(t.index + 1)
            .take(k)
            .filter_map(|key| index.by_key.get(key).map(|t| (key.clone(), t.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cidmap::{Entry, Rendition};
    use crate::store::unixfs;
    use bytes::Bytes;
    use gateway::ByteRange;
    use url::Url;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha_lists_trust_small_segments_by_cid_and_large_ones_by_digest() {
        let small = Bytes::from(vec![1u8; 1000]);
        let large = Bytes::from(vec![2u8; unixfs::CHUNK + 10]);
        let d = |b: &Bytes| {
            let mut out = [0u8; 32];
            out.copy_from_slice(unixfs::block_cid(unixfs::RAW, b).hash().digest());
            out
        };
        let json = format!(
            r#"{{"v.mp4": {{"0-999": "{}", "1000-{}": "{}"}}}}"#,
            hex(&d(&small)),
            1000 + large.len() - 1,
            hex(&d(&large))
        );
        let trust = Trust::default();
        trust.add_sha_list("vid", Arc::new(Sha256List::parse(json.as_bytes()).unwrap()));
        let url = Url::parse("https://pt.example/v.mp4").unwrap();
        let keys = vec![
            SegmentKey {
                url: url.clone(),
                range: Some(ByteRange {
                    offset: 0,
                    length: 1000,
                }),
            },
            SegmentKey {
                url: url.clone(),
                range: Some(ByteRange {
                    offset: 1000,
                    length: large.len() as u64,
                }),
            },
        ];
        let named = trust.add_sha_renditions("vid", &[("p".into(), keys.clone())]);
        assert_eq!(named, 2);
        let s = trust.lookup(&keys[0].to_string()).unwrap();
        assert_eq!(s.cid, Some(unixfs::import(&small).root));
        let l = trust.lookup(&keys[1].to_string()).unwrap();
        assert_eq!((l.cid, l.sha256), (None, Some(d(&large))));
        // An untrusted map may hint at the large one's CID, not the small one's.
        let root = unixfs::import(&large).root;
        let map = CidMap {
            publisher: Some("someone".into()),
            ..CidMap::new(
                "vid".into(),
                "https://pt.example/m.m3u8".into(),
                vec![Rendition {
                    playlist: "p".into(),
                    segments: keys
                        .iter()
                        .map(|k| Entry {
                            key: k.to_string(),
                            cid: root.to_string(),
                            size: k.range.unwrap().length,
                        })
                        .collect(),
                }],
            )
        };
        assert_eq!(trust.add_hints(&map), 1);
        assert_eq!(trust.hints(&keys[1].to_string())[0].cid, root);
        trust.drop_hints_from("someone");
        assert!(trust.hints(&keys[1].to_string()).is_empty());
    }
}
