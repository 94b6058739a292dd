//! Rewrites playlists so every child playlist, segment and init section is
//! fetched through the gateway, keeping every other tag.

use std::collections::HashMap;

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};
use url::Url;

use super::paths::Paths;
use super::syntax::{self, SyntaxError};
use crate::source::{ByteRange, SegmentKey};

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("not an HLS playlist")]
    NotAPlaylist,
    #[error("EXT-X-BYTERANGE without an offset does not follow a range of {0}")]
    DanglingByteRange(String),
    /// A range of no bytes, or one past the end of what an offset can say:
    /// no path is minted that the segment handler would refuse.
    #[error("byte range {length}@{offset} of {uri} names no bytes")]
    EmptyByteRange {
        uri: String,
        offset: u64,
        length: u64,
    },
    #[error("URI {0:?} cannot be resolved")]
    BadUri(String),
    #[error("malformed playlist: {0}")]
    Syntax(#[from] SyntaxError),
}

/// What a playlist names, resolved: the same walk the rewrite makes.
#[derive(Debug, Default)]
pub struct References {
    /// Child playlists (variants, I-frame playlists, renditions).
    pub playlists: Vec<Url>,
    /// Segments and init sections, in playlist order.
    pub segments: Vec<SegmentKey>,
    /// A media playlist's media segments alone (no init sections), in
    /// playlist order: what players number from 0 in VOD, and from
    /// `media_sequence` in live playlists. `None` holds the place of a URI
    /// the gateway does not fetch, so positions stay the players' own.
    pub media: Vec<Option<SegmentKey>>,
    /// A media playlist's `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// Whether a media playlist has `EXT-X-ENDLIST` (VOD).
    pub ended: bool,
    /// `EXT-X-SESSION-DATA` URIs by DATA-ID.
    pub session_data: Vec<(String, Url)>,
}

/// Parses `body` (an HLS playlist fetched from `base`) and rewrites it, with
/// every path minted by `paths`.
pub fn rewrite_playlist(
    body: &[u8],
    base: &Url,
    paths: Paths<'_>,
) -> Result<Vec<u8>, RewriteError> {
    rewrite_and_collect(body, base, Some(paths)).map(|(out, _)| out)
}

/// What the playlist at `base` names, without rewriting it.
pub fn references(body: &[u8], base: &Url) -> Result<References, RewriteError> {
    rewrite_and_collect(body, base, None).map(|(_, refs)| refs)
}

/// The walk both share; with no `paths`, URIs are resolved but left as written.
struct Walk<'a> {
    base: &'a Url,
    paths: Option<Paths<'a>>,
    refs: References,
}

fn rewrite_and_collect(
    body: &[u8],
    base: &Url,
    paths: Option<Paths<'_>>,
) -> Result<(Vec<u8>, References), RewriteError> {
    syntax::check_lines(body)?;
    let mut playlist = m3u8_rs::parse_playlist_res(body).map_err(|_| RewriteError::NotAPlaylist)?;
    syntax::check_parsed(&playlist)?;
    let mut walk = Walk {
        base,
        paths,
        refs: References::default(),
    };
    match &mut playlist {
        Playlist::MasterPlaylist(m) => rewrite_master(m, &mut walk)?,
        Playlist::MediaPlaylist(m) => rewrite_media(m, &mut walk)?,
    }
    let refs = walk.refs;
    let mut out = Vec::with_capacity(body.len() * 2);
    playlist
        .write_to(&mut out)
        .map_err(|_| RewriteError::NotAPlaylist)?;
    Ok((out, refs))
}

fn resolve(base: &Url, uri: &str) -> Result<Url, RewriteError> {
    base.join(uri)
        .map_err(|_| RewriteError::BadUri(uri.to_owned()))
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// Segments may also be named by CID (`ipfs://CID`), served from peers.
fn is_fetchable(url: &Url) -> bool {
    is_http(url) || super::paths::ipfs_cid(url).is_some()
}

/// URIs the gateway does not proxy (keys, session data) still have to work
/// from the gateway's origin, so relative ones become absolute.
fn absolute(base: &Url, uri: &mut String) -> Result<(), RewriteError> {
    *uri = resolve(base, uri)?.to_string();
    Ok(())
}

/// Only http(s) playlists are proxied; any other scheme is left as written.
fn via_gateway_playlist(w: &mut Walk<'_>, uri: &mut String) -> Result<(), RewriteError> {
    let url = resolve(w.base, uri)?;
    if is_http(&url) {
        if let Some(paths) = w.paths {
            *uri = paths.playlist(&url);
        }
        w.refs.playlists.push(url);
    }
    Ok(())
}

/// A byte range the segment path can carry: at least one byte, its end
/// within u64.
fn checked(uri: &str, offset: u64, length: u64) -> Result<ByteRange, RewriteError> {
    match length > 0 && offset.checked_add(length).is_some() {
        true => Ok(ByteRange { offset, length }),
        false => Err(RewriteError::EmptyByteRange {
            uri: uri.to_owned(),
            offset,
            length,
        }),
    }
}

fn via_gateway_segment(w: &Walk<'_>, uri: &mut String, url: &Url, range: Option<ByteRange>) {
    if let Some(paths) = w.paths {
        *uri = paths.segment(url, range);
    }
}

fn rewrite_master(m: &mut MasterPlaylist, w: &mut Walk<'_>) -> Result<(), RewriteError> {
    for v in &mut m.variants {
        via_gateway_playlist(w, &mut v.uri)?;
    }
    for a in &mut m.alternatives {
        if let Some(uri) = &mut a.uri {
            via_gateway_playlist(w, uri)?;
        }
    }
    for d in &mut m.session_data {
        if let m3u8_rs::SessionDataField::Uri(uri) = &mut d.field {
            absolute(w.base, uri)?;
            if let Ok(url) = Url::parse(uri) {
                w.refs.session_data.push((d.data_id.clone(), url));
            }
        }
    }
    for k in &mut m.session_key {
        if let Some(uri) = &mut k.0.uri {
            absolute(w.base, uri)?;
        }
    }
    Ok(())
}

fn rewrite_media(m: &mut MediaPlaylist, w: &mut Walk<'_>) -> Result<(), RewriteError> {
    // Where the previous range of each resource ended, for ranges with no offset.
    let mut range_end: HashMap<Url, u64> = HashMap::new();
    w.refs.media_sequence = m.media_sequence;
    w.refs.ended = m.end_list;
    for seg in &mut m.segments {
        if let Some(key) = &mut seg.key
            && let Some(uri) = &mut key.uri
        {
            // Keys stay with the origin and never enter the store.
            absolute(w.base, uri)?;
        }
        if let Some(map) = &mut seg.map {
            let url = resolve(w.base, &map.uri)?;
            if is_fetchable(&url) {
                let range = match map.byte_range.take() {
                    Some(r) => Some(checked(&map.uri, r.offset.unwrap_or(0), r.length)?),
                    None => None,
                };
                via_gateway_segment(w, &mut map.uri, &url, range);
                let key = SegmentKey { url, range };
                if !w.refs.segments.contains(&key) {
                    w.refs.segments.push(key);
                }
            }
        }
        let url = resolve(w.base, &seg.uri)?;
        if !is_fetchable(&url) {
            w.refs.media.push(None);
            continue;
        }
        let range = match seg.byte_range.take() {
            None => None,
            Some(r) => {
                let offset = match r.offset {
                    Some(o) => o,
                    None => *range_end
                        .get(&url)
                        .ok_or_else(|| RewriteError::DanglingByteRange(seg.uri.clone()))?,
                };
                let range = checked(&seg.uri, offset, r.length)?;
                range_end.insert(url.clone(), range.offset + range.length);
                Some(range)
            }
        };
        via_gateway_segment(w, &mut seg.uri, &url, range);
        let key = SegmentKey { url, range };
        w.refs.media.push(Some(key.clone()));
        w.refs.segments.push(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::paths::{PathKey, PathKind, VideoTag, decode_range};

    fn key() -> PathKey {
        PathKey::new(&[3; 32])
    }

    fn rewrite(text: &str, base: &str) -> String {
        let base = Url::parse(base).unwrap();
        let key = key();
        let paths = Paths {
            key: &key,
            video: VideoTag::of(&base),
        };
        String::from_utf8(rewrite_playlist(text.as_bytes(), &base, paths).unwrap()).unwrap()
    }

    /// Opens a gateway segment path back to (url, range).
    fn seg_of(path: &str) -> (String, Option<ByteRange>) {
        let p: Vec<&str> = path.split('/').collect();
        assert_eq!(p[2], "seg", "{path}");
        let range = decode_range(p[3]).unwrap();
        let (url, _) = key().open(PathKind::Segment, p[4], range).unwrap();
        (url.to_string(), range)
    }

    fn pl_of(path: &str) -> String {
        let p: Vec<&str> = path.split('/').collect();
        assert_eq!(p[2], "pl", "{path}");
        key()
            .open(PathKind::Playlist, p[3], None)
            .unwrap()
            .0
            .to_string()
    }

    fn attr<'a>(line: &'a str, name: &str) -> &'a str {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let end = line[start..].find('"').unwrap() + start;
        &line[start..end]
    }

    const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="meta/title.json"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="audio/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Muxed",DEFAULT=NO
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="https://subs.example/en.m3u8?sig=1"
#EXT-X-VENDOR-TAG:keep=me
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud",SUBTITLES="subs"
low/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,AUDIO="aud",SUBTITLES="subs"
/abs/high.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI="low/iframes.m3u8"
"#;

    #[test]
    fn master_playlists_route_every_child_through_the_gateway() {
        let out = rewrite(MASTER, "https://cdn.example/v/master.m3u8?sig=xyz");
        let lines: Vec<&str> = out.lines().collect();
        let after = |tag: &str| {
            let i = lines.iter().position(|l| l.starts_with(tag)).unwrap();
            lines[i + 1]
        };
        assert_eq!(
            pl_of(after("#EXT-X-STREAM-INF:BANDWIDTH=800000")),
            "https://cdn.example/v/low/index.m3u8?token=abc"
        );
        assert_eq!(
            pl_of(after("#EXT-X-STREAM-INF:BANDWIDTH=2000000")),
            "https://cdn.example/abs/high.m3u8"
        );
        let iframe = lines
            .iter()
            .find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF"))
            .unwrap();
        assert_eq!(
            pl_of(attr(iframe, "URI")),
            "https://cdn.example/v/low/iframes.m3u8"
        );
        let media: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("#EXT-X-MEDIA"))
            .collect();
        assert_eq!(media.len(), 3);
        assert_eq!(
            pl_of(attr(media[0], "URI")),
            "https://cdn.example/v/audio/en.m3u8"
        );
        assert!(!media[1].contains("URI="), "muxed rendition has no URI");
        assert_eq!(
            pl_of(attr(media[2], "URI")),
            "https://subs.example/en.m3u8?sig=1"
        );
        let data = lines
            .iter()
            .find(|l| l.starts_with("#EXT-X-SESSION-DATA"))
            .unwrap();
        assert_eq!(attr(data, "URI"), "https://cdn.example/v/meta/title.json");
        assert!(lines.contains(&"#EXT-X-VENDOR-TAG:keep=me"));
        assert!(lines.contains(&"#EXT-X-INDEPENDENT-SEGMENTS"));
    }

    const MEDIA: &str = r#"#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-CUSTOM-HEADER:1
#EXT-X-KEY:METHOD=AES-128,URI="keys/k1.bin",IV=0x00000000000000000000000000000001
#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000@720
all.mp4
#EXTINF:4.0,
#EXT-X-BYTERANGE:2000
all.mp4
#EXT-X-DISCONTINUITY
#EXT-X-AD-MARKER:yes
#EXTINF:3.5,
seg3.m4s?exp=99&sig=abc
#EXT-X-ENDLIST
"#;

    #[test]
    fn media_playlists_route_segments_and_maps_and_keep_keys_at_the_origin() {
        let out = rewrite(MEDIA, "https://cdn.example/v/low/index.m3u8");
        assert!(
            !out.contains("#EXT-X-BYTERANGE"),
            "ranges become their own objects:\n{out}"
        );
        let segs: Vec<&str> = out.lines().filter(|l| l.starts_with("/hls/seg/")).collect();
        assert_eq!(segs.len(), 3);
        let base = "https://cdn.example/v/low/";
        assert_eq!(
            seg_of(segs[0]),
            (
                format!("{base}all.mp4"),
                Some(ByteRange {
                    offset: 720,
                    length: 1000
                })
            )
        );
        assert_eq!(
            seg_of(segs[1]),
            (
                format!("{base}all.mp4"),
                Some(ByteRange {
                    offset: 1720,
                    length: 2000
                })
            )
        );
        assert_eq!(
            seg_of(segs[2]),
            (format!("{base}seg3.m4s?exp=99&sig=abc"), None)
        );
        assert!(segs[2].ends_with("/seg3.m4s"));
        let map = out.lines().find(|l| l.starts_with("#EXT-X-MAP")).unwrap();
        assert_eq!(
            seg_of(attr(map, "URI")),
            (
                format!("{base}init.mp4"),
                Some(ByteRange {
                    offset: 0,
                    length: 720
                })
            )
        );
        let key = out.lines().find(|l| l.starts_with("#EXT-X-KEY")).unwrap();
        assert_eq!(attr(key, "URI"), format!("{base}keys/k1.bin"));
        for kept in [
            "#EXT-X-CUSTOM-HEADER:1",
            "#EXT-X-AD-MARKER:yes",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-ENDLIST",
            "#EXT-X-MEDIA-SEQUENCE:10",
        ] {
            assert!(out.contains(kept), "{kept} missing:\n{out}");
        }
    }

    #[test]
    fn media_segments_are_listed_without_init_sections_in_player_order() {
        let base = Url::parse("https://cdn.example/v/low/index.m3u8").unwrap();
        let refs = references(MEDIA.as_bytes(), &base).unwrap();
        assert_eq!(refs.media_sequence, 10);
        assert!(refs.ended);
        let media: Vec<_> = refs.media.iter().map(|k| k.clone().unwrap()).collect();
        // The init section is among `segments`, never among `media`.
        assert_eq!(refs.segments.len(), media.len() + 1);
        assert_eq!(media[..], refs.segments[1..]);
        let live = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
            #EXTINF:2,\ndata:,x\n#EXTINF:2,\nb.ts\n";
        let refs = references(live.as_bytes(), &base).unwrap();
        assert!(!refs.ended);
        assert_eq!(refs.media_sequence, 7);
        // A URI the gateway does not fetch still holds its place.
        assert_eq!(refs.media.len(), 2);
        assert!(refs.media[0].is_none());
        assert_eq!(
            refs.media[1].as_ref().unwrap().url.as_str(),
            "https://cdn.example/v/low/b.ts"
        );
    }

    #[test]
    fn garbage_is_refused() {
        let base = Url::parse("https://cdn.example/x.m3u8").unwrap();
        let key = key();
        let paths = Paths {
            key: &key,
            video: VideoTag::of(&base),
        };
        for body in [
            "",
            "hello world",
            "<html>not found</html>",
            "\u{0}\u{1}binary",
        ] {
            assert!(
                rewrite_playlist(body.as_bytes(), &base, paths).is_err(),
                "{body:?}"
            );
        }
        let dangling = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:100\na.ts\n";
        assert!(matches!(
            rewrite_playlist(dangling.as_bytes(), &base, paths),
            Err(RewriteError::DanglingByteRange(_))
        ));
        for range in ["0@5", "10@18446744073709551610"] {
            let body = format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:{range}\na.ts\n"
            );
            assert!(
                matches!(
                    rewrite_playlist(body.as_bytes(), &base, paths),
                    Err(RewriteError::EmptyByteRange { .. })
                ),
                "{range}"
            );
        }
        let map = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"0@0\"\n#EXTINF:2,\na.ts\n";
        assert!(rewrite_playlist(map.as_bytes(), &base, paths).is_err());
    }
}
