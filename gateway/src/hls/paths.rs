//! The gateway's own URLs for what playlists name.
//!
//! A path carries a token that only this gateway can mint: the upstream URL
//! with an HMAC over it, its byte range and the video it belongs to. So the
//! gateway fetches nothing that a playlist it served did not name; a path
//! made up by anyone else is refused before any request leaves the node.
//! The path ends with the upstream file name, because players (ffmpeg among
//! them) judge a segment by its extension.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::ApiError;
use crate::source::ByteRange;

/// Upstream URLs longer than this are refused rather than echoed into paths.
const MAX_URL_LEN: usize = 8 * 1024;

const VERSION: u8 = 1;
/// Bytes of HMAC-SHA-256 kept: 128 bits leave forgery to brute force.
const MAC_LEN: usize = 16;
const VIDEO_LEN: usize = 8;
const HEADER_LEN: usize = 1 + MAC_LEN + VIDEO_LEN;
const MAX_TOKEN_LEN: usize = (HEADER_LEN + MAX_URL_LEN) * 4 / 3 + 4;

/// Which handler a token is for; a playlist token does not open a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Playlist,
    Segment,
}

/// The video a path belongs to: a digest of the URL that came in through
/// `/hls?url=` or the API, carried from a playlist to everything it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VideoTag(pub [u8; VIDEO_LEN]);

impl VideoTag {
    pub fn of(url: &Url) -> Self {
        let digest = Sha256::digest(url.as_str().as_bytes());
        let mut tag = [0; VIDEO_LEN];
        tag.copy_from_slice(&digest[..VIDEO_LEN]);
        Self(tag)
    }
}

/// The secret behind path tokens (`data_dir/gateway.key`). Kept across
/// restarts, so paths players already hold keep working.
#[derive(Clone)]
pub struct PathKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathKey(..)")
    }
}

impl PathKey {
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    fn tag(
        &self,
        kind: PathKind,
        range: Option<ByteRange>,
        video: VideoTag,
        url: &str,
    ) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(b"swarmseed gateway path v1\0");
        mac.update(match kind {
            PathKind::Playlist => b"p",
            PathKind::Segment => b"s",
        });
        mac.update(range_text(range).as_bytes());
        mac.update(b"\0");
        mac.update(&video.0);
        mac.update(url.as_bytes());
        mac
    }

    fn mint(&self, kind: PathKind, url: &Url, range: Option<ByteRange>, video: VideoTag) -> String {
        let mac = self
            .tag(kind, range, video, url.as_str())
            .finalize()
            .into_bytes();
        let mut raw = Vec::with_capacity(HEADER_LEN + url.as_str().len());
        raw.push(VERSION);
        raw.extend_from_slice(&mac[..MAC_LEN]);
        raw.extend_from_slice(&video.0);
        raw.extend_from_slice(url.as_str().as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The URL and video a token names, if this key minted it for `kind`
    /// and `range`. The MAC is checked in constant time.
    pub fn open(
        &self,
        kind: PathKind,
        token: &str,
        range: Option<ByteRange>,
    ) -> Result<(Url, VideoTag), ApiError> {
        let forged =
            || ApiError::Forbidden("this gateway path was not issued by this gateway".into());
        if token.len() > MAX_TOKEN_LEN {
            return Err(forged());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| forged())?;
        if raw.len() <= HEADER_LEN || raw[0] != VERSION {
            return Err(forged());
        }
        let mut video = [0; VIDEO_LEN];
        video.copy_from_slice(&raw[1 + MAC_LEN..HEADER_LEN]);
        let video = VideoTag(video);
        let text = std::str::from_utf8(&raw[HEADER_LEN..]).map_err(|_| forged())?;
        self.tag(kind, range, video, text)
            .verify_truncated_left(&raw[1..1 + MAC_LEN])
            .map_err(|_| forged())?;
        let url = Url::parse(text).map_err(|_| forged())?;
        match kind {
            PathKind::Segment if ipfs_cid(&url).is_some() => {}
            _ => check_scheme(&url)?,
        }
        Ok((url, video))
    }
}

/// Mints the paths of one video's playlists.
#[derive(Clone, Copy, Debug)]
pub struct Paths<'a> {
    pub key: &'a PathKey,
    pub video: VideoTag,
}

impl Paths<'_> {
    pub fn playlist(&self, url: &Url) -> String {
        let token = self.key.mint(PathKind::Playlist, url, None, self.video);
        format!("/hls/pl/{token}/{}", file_name(url, "index.m3u8"))
    }

    pub fn segment(&self, url: &Url, range: Option<ByteRange>) -> String {
        let token = self.key.mint(PathKind::Segment, url, range, self.video);
        format!(
            "/hls/seg/{}/{token}/{}",
            range_text(range),
            file_name(url, "segment")
        )
    }
}

fn range_text(range: Option<ByteRange>) -> String {
    match range {
        None => "all".to_owned(),
        Some(r) => format!("{}-{}", r.offset, r.length),
    }
}

/// Keeps the last path segment when it is plainly a file name.
fn file_name<'a>(url: &'a Url, fallback: &'a str) -> &'a str {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let plain = !last.is_empty()
        && last.len() <= 96
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !last.starts_with('.');
    if plain { last } else { fallback }
}

/// The CID an `ipfs://CID` URL names.
pub fn ipfs_cid(url: &Url) -> Option<&str> {
    let host = url.host_str()?;
    (url.scheme() == "ipfs" && !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(host)
}

pub fn decode_range(s: &str) -> Result<Option<ByteRange>, ApiError> {
    if s == "all" {
        return Ok(None);
    }
    let bad = || ApiError::BadRequest("malformed byte range in gateway path".into());
    let (offset, length) = s.split_once('-').ok_or_else(bad)?;
    let offset: u64 = offset.parse().map_err(|_| bad())?;
    let length: u64 = length.parse().map_err(|_| bad())?;
    if length == 0 || offset.checked_add(length).is_none() {
        return Err(bad());
    }
    Ok(Some(ByteRange { offset, length }))
}

/// Accepts only absolute http and https URLs.
pub fn parse_upstream(text: &str) -> Result<Url, ApiError> {
    if text.len() > MAX_URL_LEN {
        return Err(ApiError::BadRequest("URL too long".into()));
    }
    let url = Url::parse(text).map_err(|e| ApiError::BadRequest(format!("invalid URL: {e}")))?;
    check_scheme(&url)?;
    Ok(url)
}

pub fn check_scheme(url: &Url) -> Result<(), ApiError> {
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(()),
        "http" | "https" => Err(ApiError::BadRequest("URL has no host".into())),
        other => Err(ApiError::BadRequest(format!(
            "only http and https URLs are accepted, not {other}:"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PathKey {
        PathKey::new(&[7; 32])
    }

    fn paths(key: &PathKey) -> Paths<'_> {
        Paths {
            key,
            video: VideoTag::of(&Url::parse("https://cdn.example/master.m3u8").unwrap()),
        }
    }

    #[test]
    fn segment_paths_round_trip() {
        let key = key();
        let url = Url::parse("https://cdn.example/v/seg_001.ts?token=a%2Fb&x=1").unwrap();
        let range = Some(ByteRange {
            offset: 10,
            length: 20,
        });
        let path = paths(&key).segment(&url, range);
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts[1..3], ["hls", "seg"]);
        assert_eq!(decode_range(parts[3]).unwrap(), range);
        let (got, video) = key.open(PathKind::Segment, parts[4], range).unwrap();
        assert_eq!(got, url);
        assert_eq!(video, paths(&key).video);
        assert_eq!(parts[5], "seg_001.ts");
    }

    #[test]
    fn altered_tokens_and_other_keys_are_refused() {
        let key = key();
        let url = Url::parse("https://cdn.example/v/seg_001.ts").unwrap();
        let path = paths(&key).segment(&url, None);
        let token = path.split('/').nth(4).unwrap().to_owned();
        assert!(key.open(PathKind::Segment, &token, None).is_ok());
        // One byte changed anywhere in the token.
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            let bad = URL_SAFE_NO_PAD.encode(bad);
            assert!(
                matches!(
                    key.open(PathKind::Segment, &bad, None),
                    Err(ApiError::Forbidden(_))
                ),
                "byte {i}"
            );
        }
        // The same token for another range, kind or key.
        let r = Some(ByteRange {
            offset: 0,
            length: 5,
        });
        assert!(key.open(PathKind::Segment, &token, r).is_err());
        assert!(key.open(PathKind::Playlist, &token, None).is_err());
        assert!(
            PathKey::new(&[8; 32])
                .open(PathKind::Segment, &token, None)
                .is_err()
        );
        // The unsigned encoding of earlier versions.
        let plain = URL_SAFE_NO_PAD.encode(url.as_str());
        assert!(key.open(PathKind::Segment, &plain, None).is_err());
    }

    #[test]
    fn odd_file_names_fall_back() {
        let key = key();
        let url = Url::parse("https://cdn.example/v/%2e%2e").unwrap();
        assert!(paths(&key).playlist(&url).ends_with("/index.m3u8"));
        let url = Url::parse("https://cdn.example/").unwrap();
        assert!(paths(&key).segment(&url, None).ends_with("/segment"));
    }

    #[test]
    fn segment_keys_read_back_what_they_print() {
        use crate::source::SegmentKey;
        for key in [
            SegmentKey {
                url: Url::parse("https://cdn.example/a.ts?x=1").unwrap(),
                range: None,
            },
            SegmentKey {
                url: Url::parse("https://cdn.example/all.ts").unwrap(),
                range: Some(ByteRange {
                    offset: 5,
                    length: 9,
                }),
            },
        ] {
            assert_eq!(SegmentKey::parse(&key.to_string()), Some(key));
        }
        assert_eq!(SegmentKey::parse("not a url"), None);
    }

    #[test]
    fn non_http_urls_are_refused() {
        for u in [
            "file:///etc/passwd",
            "ftp://x/y",
            "data:text/plain,hi",
            "http://",
            "../../etc/passwd",
        ] {
            assert!(parse_upstream(u).is_err(), "{u}");
        }
        // Even a signed token opens no file: URL.
        let key = key();
        let file = Url::parse("file:///etc/passwd").unwrap();
        let token = key.mint(PathKind::Segment, &file, None, paths(&key).video);
        assert!(key.open(PathKind::Segment, &token, None).is_err());
        assert!(decode_range("5-0").is_err());
        assert!(decode_range("x").is_err());
    }
}
