//! Mirrors of an origin's files (PeerTube's redundancies): other base URLs
//! that serve the same file names. A mirror is asked only for segments whose
//! SHA-256 the origin published, so what it sends is checked; one that
//! sends other bytes is dropped for the rest of the daemon's life.

use std::collections::HashMap;
use std::sync::RwLock;

use tracing::warn;
use url::Url;

#[derive(Default)]
pub struct Mirrors {
    /// Origin directory (URL up to its last `/`) → mirror base URLs.
    by_dir: RwLock<HashMap<String, Vec<Url>>>,
}

/// The directory part of `url`, query and fragment dropped.
fn dir(url: &Url) -> String {
    let path = url.path();
    let end = path.rfind('/').map_or(0, |i| i + 1);
    format!("{}{}", &url[..url::Position::BeforePath], &path[..end])
}

impl Mirrors {
    /// The mirrors of the files beside `origin` (a playlist or file URL).
    pub fn set(&self, origin: &Url, bases: Vec<Url>) {
        let mut by_dir = self.by_dir.write().unwrap_or_else(|p| p.into_inner());
        if bases.is_empty() {
            by_dir.remove(&dir(origin));
        } else {
            by_dir.insert(dir(origin), bases);
        }
    }

    /// Where else `url` is served: each mirror's base with the file name
    /// (and query) of `url`, as PeerTube's players build them.
    pub fn alternatives(&self, url: &Url) -> Vec<(Url, Url)> {
        let by_dir = self.by_dir.read().unwrap_or_else(|p| p.into_inner());
        let Some(bases) = by_dir.get(&dir(url)) else {
            return Vec::new();
        };
        let tail = url.as_str().rsplit('/').next().unwrap_or_default();
        bases
            .iter()
            .filter_map(|base| {
                let sep = if base.as_str().ends_with('/') {
                    ""
                } else {
                    "/"
                };
                let alt = Url::parse(&format!("{base}{sep}{tail}")).ok()?;
                Some((base.clone(), alt))
            })
            .collect()
    }

    /// Stops using `base` for the files beside `origin`.
    pub fn drop(&self, origin: &Url, base: &Url) {
        let mut by_dir = self.by_dir.write().unwrap_or_else(|p| p.into_inner());
        if let Some(bases) = by_dir.get_mut(&dir(origin)) {
            let before = bases.len();
            bases.retain(|b| b != base);
            if bases.len() < before {
                warn!(mirror = %base, "mirror sent bytes that do not match the origin's SHA-256; no longer used");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_serve_the_same_file_names() {
        let m = Mirrors::default();
        let master = Url::parse("https://pt.example/static/hls/u/abc-master.m3u8").unwrap();
        let mirror = Url::parse("https://mirror.example/static/redundancy/hls/u").unwrap();
        m.set(&master, vec![mirror.clone()]);
        let seg = Url::parse("https://pt.example/static/hls/u/u-720-fragmented.mp4?x=1").unwrap();
        let alts = m.alternatives(&seg);
        assert_eq!(
            alts[0].1.as_str(),
            "https://mirror.example/static/redundancy/hls/u/u-720-fragmented.mp4?x=1"
        );
        let elsewhere = Url::parse("https://pt.example/static/hls/other/a.mp4").unwrap();
        assert!(m.alternatives(&elsewhere).is_empty());
        m.drop(&seg, &mirror);
        assert!(m.alternatives(&seg).is_empty());
    }
}
