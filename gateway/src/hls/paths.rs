//! The gateway's own URLs for what playlists name.
//!
//! A path carries the upstream URL, base64url-encoded, and ends with the
//! upstream file name, because players (ffmpeg among them) judge a segment
//! by its extension.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::error::ApiError;
use crate::source::ByteRange;

/// Upstream URLs longer than this are refused rather than echoed into paths.
const MAX_URL_LEN: usize = 8 * 1024;

pub fn playlist_path(url: &Url) -> String {
    format!("/hls/pl/{}/{}", encode(url), file_name(url, "index.m3u8"))
}

pub fn segment_path(url: &Url, range: Option<ByteRange>) -> String {
    let range = match range {
        None => "all".to_owned(),
        Some(r) => format!("{}-{}", r.offset, r.length),
    };
    format!(
        "/hls/seg/{range}/{}/{}",
        encode(url),
        file_name(url, "segment")
    )
}

fn encode(url: &Url) -> String {
    URL_SAFE_NO_PAD.encode(url.as_str())
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

/// A segment path may also carry `ipfs://CID`, which only peers can serve.
pub fn decode_segment_token(token: &str) -> Result<Url, ApiError> {
    let url = decode_url(token)?;
    if url.scheme() == "ipfs" && ipfs_cid(&url).is_some() {
        return Ok(url);
    }
    check_scheme(&url)?;
    Ok(url)
}

/// The CID an `ipfs://CID` URL names.
pub fn ipfs_cid(url: &Url) -> Option<&str> {
    let host = url.host_str()?;
    (url.scheme() == "ipfs" && !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(host)
}

fn decode_url(token: &str) -> Result<Url, ApiError> {
    let bad = || ApiError::BadRequest("malformed gateway path".into());
    if token.len() > MAX_URL_LEN * 4 / 3 + 4 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    Url::parse(&text).map_err(|_| bad())
}

pub fn decode_token(token: &str) -> Result<Url, ApiError> {
    let bad = || ApiError::BadRequest("malformed gateway path".into());
    if token.len() > MAX_URL_LEN * 4 / 3 + 4 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    parse_upstream(&text)
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

    #[test]
    fn segment_paths_round_trip() {
        let url = Url::parse("https://cdn.example/v/seg_001.ts?token=a%2Fb&x=1").unwrap();
        let range = Some(ByteRange {
            offset: 10,
            length: 20,
        });
        let path = segment_path(&url, range);
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts[1..3], ["hls", "seg"]);
        assert_eq!(decode_range(parts[3]).unwrap(), range);
        assert_eq!(decode_token(parts[4]).unwrap(), url);
        assert_eq!(parts[5], "seg_001.ts");
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
    fn odd_file_names_fall_back() {
        let url = Url::parse("https://cdn.example/v/%2e%2e").unwrap();
        assert!(playlist_path(&url).ends_with("/index.m3u8"));
        let url = Url::parse("https://cdn.example/").unwrap();
        assert!(segment_path(&url, None).ends_with("/segment"));
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
        assert!(decode_token("Li4vLi4vZXRjL3Bhc3N3ZA").is_err()); // "../../etc/passwd"
        assert!(decode_range("5-0").is_err());
        assert!(decode_range("x").is_err());
    }
}
