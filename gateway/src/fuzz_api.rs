//! Entry points for fuzzing and regression tests: the body of the
//! `gateway_paths` fuzz target, which `tests/fuzz_regressions.rs` also runs
//! over the committed corpus and crash inputs. Nothing else calls it.

use url::Url;

use crate::hls::paths::{PathKey, PathKind, Paths, VideoTag, decode_range};
use crate::hls::rewrite::{references, rewrite_playlist};

/// Bytes as a request path's range and token, then as a playlist from the
/// origin. A token nobody minted never opens; a playlist that rewrites names
/// only paths that open, with this key, to what the playlist named. True if
/// the playlist was rewritten.
pub fn paths(data: &[u8]) -> bool {
    let key = PathKey::new(&[7; 32]);
    if let Ok(text) = std::str::from_utf8(data) {
        let (range, token) = text.split_once('/').unwrap_or(("all", text));
        if let Ok(range) = decode_range(range) {
            for kind in [PathKind::Playlist, PathKind::Segment] {
                assert!(
                    key.open(kind, token, range).is_err(),
                    "a token no one minted opened"
                );
            }
        }
    }
    let base = Url::parse("https://cdn.example/v/master.m3u8").expect("a valid base");
    let paths = Paths {
        key: &key,
        video: VideoTag::of(&base),
    };
    let Ok(out) = rewrite_playlist(data, &base, paths) else {
        return false;
    };
    let refs = references(data, &base).expect("the same walk as the rewrite");
    // Every URI the rewritten playlist gives a player, read as a player would.
    let mut uris: Vec<String> = Vec::new();
    match m3u8_rs::parse_playlist_res(&out) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => {
            uris.extend(m.variants.iter().map(|v| v.uri.clone()));
            uris.extend(m.alternatives.iter().filter_map(|a| a.uri.clone()));
        }
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => {
            for seg in &m.segments {
                uris.push(seg.uri.clone());
                uris.extend(seg.map.as_ref().map(|map| map.uri.clone()));
            }
        }
        Err(_) => {}
    }
    // What the origin wrote that only looks like a gateway path (in a title,
    // say) is passed on as written; the gateway mints none of it.
    let verbatim = |u: &str| data.windows(u.len().max(1)).any(|w| w == u.as_bytes());
    for uri in uris
        .iter()
        .filter(|u| u.starts_with("/hls/") && !verbatim(u))
    {
        let parts: Vec<&str> = uri.split('/').collect();
        match parts.get(2) {
            Some(&"pl") => {
                let (url, _) = key
                    .open(PathKind::Playlist, parts[3], None)
                    .expect("a minted playlist path opens");
                assert!(refs.playlists.contains(&url), "{url} was not named");
            }
            Some(&"seg") => {
                let range = decode_range(parts[3]).expect("a minted range reads back");
                let (url, _) = key
                    .open(PathKind::Segment, parts[4], range)
                    .expect("a minted segment path opens");
                assert!(
                    refs.segments
                        .iter()
                        .any(|s| s.url == url && s.range == range),
                    "{url} was not named"
                );
            }
            _ => {}
        }
    }
    true
}
