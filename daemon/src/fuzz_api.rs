//! Entry points for fuzzing and regression tests: the bodies of the fuzz
//! targets in `fuzz/fuzz_targets/`, which `tests/fuzz_regressions.rs` also
//! runs over the committed corpora and crash inputs, so both call the same
//! code. They exist for fuzzing and regression tests only; nothing else in
//! the daemon calls them.
//!
//! Each takes bytes as they arrive from outside, reads them the way the
//! daemon does, panics where a reader breaks one of its promises and tells
//! whether the input was accepted.

use cid::Cid;
use futures::executor::block_on;
use futures::io::Cursor;

use crate::cidmap::CidMap;
use crate::config::Config;
use crate::store::unixfs;
use crate::swarm::bitswap_pb as pb;
use crate::trust::Trust;

/// Wantlist entries the Bitswap server answers from one message.
const MAX_ENTRIES: usize = 1024;

/// A Bitswap wantlist stream: framed messages one after another until one
/// fails to read, each read as the server reads it (`swarm/bitswap.rs`:
/// its entries' CIDs and the prefixes and presences it answers with), and
/// each encoded again, which must read back the same. True if a message
/// was read.
pub fn bitswap(data: &[u8]) -> bool {
    block_on(async {
        let mut stream = Cursor::new(data);
        let mut accepted = false;
        while let Ok(Some(message)) = pb::read(&mut stream).await {
            accepted = true;
            if let Some(wantlist) = &message.wantlist {
                for entry in wantlist.entries.iter().take(MAX_ENTRIES) {
                    if entry.cancel {
                        continue;
                    }
                    let Ok(cid) = Cid::try_from(entry.block.as_slice()) else {
                        continue;
                    };
                    let bytes = cid.to_bytes();
                    assert_eq!(Cid::try_from(bytes.as_slice()).ok(), Some(cid));
                    // Version, codec, hash code and digest length.
                    assert!(pb::prefix(&cid).len() >= 4);
                }
            }
            let mut out = Cursor::new(Vec::new());
            pb::write(&mut out, &message)
                .await
                .expect("writes to memory");
            let out = out.into_inner();
            // Re-encoding can lengthen negative ints; only what fits the
            // wire limit must read back.
            if out.len() as u64 <= pb::MAX_MESSAGE {
                let again = pb::read(&mut Cursor::new(out))
                    .await
                    .expect("a written message reads back");
                assert_eq!(again.as_ref(), Some(&message));
            }
        }
        accepted
    })
}

/// A block as it arrives from a peer or the disk: as a dag-pb node, the
/// links the store and the peer fetcher walk (`unixfs::links`), each link's
/// CID surviving its own bytes; and, split into a CID and the rest, the
/// check every block gets (`unixfs::verify`). True if the node decoded.
pub fn dag_pb(data: &[u8]) -> bool {
    let mut cursor = std::io::Cursor::new(data);
    if let Ok(cid) = Cid::read_bytes(&mut cursor) {
        let rest = &data[cursor.position() as usize..];
        std::hint::black_box(unixfs::verify(&cid, rest));
    }
    let own = unixfs::block_cid(unixfs::DAG_PB, data);
    assert!(unixfs::verify(&own, data));
    let Ok(links) = unixfs::links(data) else {
        return false;
    };
    for cid in &links {
        let bytes = cid.to_bytes();
        assert_eq!(Cid::try_from(bytes.as_slice()).ok(), Some(*cid));
    }
    true
}

/// A CID map as fetched from a peer or the origin: `CidMap::from_json`,
/// `verify`, then taken into a [`Trust`] and looked up key by key, as the
/// rooms and the playlists do. The map's own JSON must read back the same
/// and verify alike. True if the map parsed.
pub fn cidmap(data: &[u8]) -> bool {
    let Ok(map) = CidMap::from_json(data) else {
        return false;
    };
    let verified = map.verify().ok();
    let again = CidMap::from_json(&map.to_json()).expect("a map's JSON reads back");
    assert_eq!(again, map);
    assert_eq!(again.verify().ok(), verified);
    let segments = map.segment_count();
    let trust = Trust::default();
    assert!(trust.add_map(map.clone()));
    for entry in map.renditions.iter().flat_map(|r| &r.segments) {
        if let Some(t) = trust.lookup(&entry.key) {
            assert!(t.index < t.rendition.len());
            assert!(trust.following(&t, 4).len() <= 4);
        }
    }
    assert!(
        trust
            .map(&map.video)
            .is_some_and(|m| m.segment_count() == segments)
    );
    true
}

/// The daemon's config as TOML text, parsed and validated as at start
/// (`Config::parse`, which `Config::load` calls on the file's text). True
/// if it is a valid config.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    Config::parse(text).is_ok()
}

/// A SHA-256 list (`segments-sha256.json` in PeerTube's shape) as the
/// daemon reads it from an origin. Every file and range the list names
/// is found again by the lookup the fetcher makes, and a digest of a
/// single-block segment gives the raw CID of that digest. True if the
/// list was read.
pub fn sha256_list(data: &[u8]) -> bool {
    use crate::sha256_list::{Sha256List, raw_cid};
    let Ok(list) = Sha256List::parse(data) else {
        return false;
    };
    let Ok(serde_json::Value::Object(files)) = serde_json::from_slice(data) else {
        panic!("a list that reads is a JSON object");
    };
    let base = url::Url::parse("https://pt.example/static/hls/u/").expect("a URL");
    for (name, value) in files.iter().take(64) {
        // Names that are one plain path segment, as players look them up.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            || name.starts_with('.')
        {
            continue;
        }
        let Ok(url) = base.join(name) else { continue };
        match value {
            serde_json::Value::String(_) => {
                let d = list.lookup(&url, None).expect("a listed file is found");
                let cid = raw_cid(&d, Some(1)).expect("a small segment has a raw CID");
                assert_eq!(cid.hash().digest(), d);
            }
            serde_json::Value::Object(ranges) => {
                for range in ranges.keys().take(64) {
                    let (a, b) = range.split_once('-').expect("a read range has a dash");
                    let (a, b): (u64, u64) =
                        (a.parse().expect("a start"), b.parse().expect("an end"));
                    let Some(length) = (b - a).checked_add(1) else {
                        continue;
                    };
                    let r = gateway::ByteRange { offset: a, length };
                    assert!(
                        list.lookup(&url, Some(r)).is_some(),
                        "{name} {range} not found"
                    );
                }
            }
            _ => panic!("a list that reads holds digests and ranges only"),
        }
    }
    true
}

/// PeerTube's REST and ActivityPub answers, and the URLs and versions a
/// seeder reads (`peertube/`): none of them panics a reader. True if any
/// answer was read.
pub fn peertube(data: &[u8]) -> bool {
    crate::peertube::fuzz_answers(data)
}
