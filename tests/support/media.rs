//! What the browser tests share: an origin tree to serve, a video whose one
//! segment is a dag-pb tree, and the segments a daemon seeded with their CIDs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cdn::TestCdn;
use super::daemon::Daemon;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies a fixture tree into a test's own origin directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A video of one 3.5 MiB segment: its CID is a dag-pb root over four raw
/// leaves, so the browser walks a UnixFS tree as well as single blocks.
pub fn make_big_video(dir: &Path) {
    make_video(dir, 1, 3 * 1024 * 1024 + 512 * 1024);
}

/// A VOD playlist of `n` segments of `size` random-looking bytes behind a
/// one-line master, no two blocks alike (so each is fetched, not found by
/// CID elsewhere).
pub fn make_video(dir: &Path, n: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=8000000\nindex.m3u8\n",
    )
    .unwrap();
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n",
    );
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..n {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(dir.join(format!("seg_{i:03}.ts")), data).unwrap();
        playlist.push_str(&format!("#EXTINF:4.0,\nseg_{i:03}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.join("index.m3u8"), playlist).unwrap();
}

/// One seeded segment: its video id, CID and size, and the origin file.
pub struct Segment {
    pub video: String,
    pub cid: String,
    pub size: u64,
    pub file: PathBuf,
}

/// Seeds `name/master.m3u8` from the CDN and lists its segments from the
/// video's CID map.
pub async fn seed(daemon: &Daemon, cdn: &TestCdn, origin: &Path, name: &str) -> Vec<Segment> {
    let video = daemon.seed(&cdn.url(&format!("{name}/master.m3u8"))).await;
    let id = video["id"].as_str().unwrap().to_owned();
    let map = daemon
        .get_json(&format!("/api/v1/videos/{id}/cidmap"))
        .await;
    let mut out = Vec::new();
    for rendition in map["renditions"].as_array().unwrap() {
        for s in rendition["segments"].as_array().unwrap() {
            let key = s["key"].as_str().unwrap();
            let path = key.strip_prefix(&cdn.url("")).expect("segment on the CDN");
            out.push(Segment {
                video: id.clone(),
                cid: s["cid"].as_str().unwrap().to_owned(),
                size: s["size"].as_u64().unwrap(),
                file: origin.join(path),
            });
        }
    }
    out
}

/// `work/origin` holding the `ts` fixture and a one-segment 3.5 MiB video
/// (`big`, a dag-pb tree of four leaves): the CDN of most swarm tests.
pub fn ts_and_big_origin(work: &Path) -> PathBuf {
    let origin = work.join("origin");
    copy_dir(&crate::support::fixtures().join("ts"), &origin.join("ts"));
    make_big_video(&origin.join("big"));
    origin
}
