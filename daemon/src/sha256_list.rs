//! Segment SHA-256 lists in PeerTube's `segments-sha256.json` shape
//! (DESIGN §3, fifth case): file name → hex digest, or file name →
//! `"start-end"` (end inclusive) → hex digest for byte ranges of one file.
//! A segment named in the list is trusted: whatever source its bytes come
//! from, they are checked against the digest before they are stored,
//! served or uploaded. PeerTube's own players look segments up the same
//! way, by the last path segment of the URL without its query.

use std::collections::HashMap;

use cid::Cid;
use gateway::ByteRange;
use serde_json::Value;
use url::Url;

use crate::store::unixfs::{self, CHUNK, RAW};

/// Entries one list may hold, all files together: a day of 2 s segments in
/// eight renditions is about 350,000.
const MAX_ENTRIES: usize = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Sha256ListError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object of file names")]
    NotAnObject,
    #[error("file {0:?}: neither a hex digest nor an object of byte ranges")]
    BadFile(String),
    #[error("file {file:?}: range {range:?} is not start-end with start <= end")]
    BadRange { file: String, range: String },
    #[error("file {0:?}: a digest is not 64 hex digits")]
    BadDigest(String),
    #[error("more than {MAX_ENTRIES} digests")]
    TooLarge,
}

#[derive(Debug, Clone)]
enum File {
    Whole([u8; 32]),
    /// By (first byte, last byte).
    Ranges(HashMap<(u64, u64), [u8; 32]>),
}

/// A parsed list.
#[derive(Debug, Clone, Default)]
pub struct Sha256List {
    files: HashMap<String, File>,
}

impl Sha256List {
    pub fn parse(body: &[u8]) -> Result<Self, Sha256ListError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| Sha256ListError::NotJson(e.to_string()))?;
        let Value::Object(files) = value else {
            return Err(Sha256ListError::NotAnObject);
        };
        let mut out = HashMap::with_capacity(files.len());
        let mut entries = 0usize;
        for (name, v) in files {
            let file = match v {
                Value::String(hex) => File::Whole(digest(&name, &hex)?),
                Value::Object(ranges) => {
                    let mut by_range = HashMap::with_capacity(ranges.len());
                    for (range, hex) in ranges {
                        let Value::String(hex) = hex else {
                            return Err(Sha256ListError::BadFile(name));
                        };
                        let bad = || Sha256ListError::BadRange {
                            file: name.clone(),
                            range: range.clone(),
                        };
                        let (a, b) = range.split_once('-').ok_or_else(bad)?;
                        let (a, b): (u64, u64) =
                            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                        if a > b {
                            return Err(bad());
                        }
                        by_range.insert((a, b), digest(&name, &hex)?);
                    }
                    entries += by_range.len();
                    File::Ranges(by_range)
                }
                _ => return Err(Sha256ListError::BadFile(name)),
            };
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(Sha256ListError::TooLarge);
            }
            out.insert(name, file);
        }
        Ok(Self { files: out })
    }

    /// The digest of `range` of the file at `url`, or of the whole file.
    /// A file listed by one digest is checked whole whatever the range, as
    /// PeerTube's players check it.
    pub fn lookup(&self, url: &Url, range: Option<ByteRange>) -> Option<[u8; 32]> {
        let name = url.path().rsplit('/').next()?;
        match (self.files.get(name)?, range) {
            (File::Whole(d), _) => Some(*d),
            (File::Ranges(r), Some(range)) => {
                let last = range.offset.checked_add(range.length)?.checked_sub(1)?;
                r.get(&(range.offset, last)).copied()
            }
            (File::Ranges(_), None) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn digest(file: &str, hex: &str) -> Result<[u8; 32], Sha256ListError> {
    let bad = || Sha256ListError::BadDigest(file.to_owned());
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The CID of a segment of `size` bytes whose SHA-256 is `digest`, when it
/// follows from the digest alone: a segment of one raw block (DESIGN §2).
pub fn raw_cid(digest: &[u8; 32], size: Option<u64>) -> Option<Cid> {
    if size.is_some_and(|s| s == 0 || s > CHUNK as u64) {
        return None;
    }
    let mh = multihash::Multihash::<64>::wrap(0x12, digest).ok()?;
    Some(Cid::new_v1(RAW, mh))
}

/// Whether `bytes` hash to `digest`.
pub fn matches(digest: &[u8; 32], bytes: &[u8]) -> bool {
    unixfs::block_cid(RAW, bytes).hash().digest() == digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        let mut d = [0; 32];
        d.copy_from_slice(unixfs::block_cid(RAW, data).hash().digest());
        d
    }

    #[test]
    fn both_shapes_are_read_as_players_read_them() {
        let (a, b, c) = (sha(b"first"), sha(b"second"), sha(b"live"));
        let json = format!(
            r#"{{"uuid-720-fragmented.mp4": {{"1355-64355": "{}", "64356-120000": "{}"}},
                "live-3.ts": "{}"}}"#,
            hex(&a),
            hex(&b),
            hex(&c)
        );
        let list = Sha256List::parse(json.as_bytes()).unwrap();
        let vod = Url::parse("https://pt.example/static/x/uuid-720-fragmented.mp4?k=1").unwrap();
        let r = |offset, length| Some(ByteRange { offset, length });
        assert_eq!(list.lookup(&vod, r(1355, 63001)), Some(a));
        assert_eq!(list.lookup(&vod, r(64356, 55645)), Some(b));
        assert_eq!(list.lookup(&vod, r(1355, 63000)), None);
        assert_eq!(list.lookup(&vod, None), None);
        let live = Url::parse("https://pt.example/live/live-3.ts").unwrap();
        assert_eq!(list.lookup(&live, None), Some(c));
        let other = Url::parse("https://pt.example/live/live-4.ts").unwrap();
        assert_eq!(list.lookup(&other, None), None);
        assert!(matches(&c, b"live") && !matches(&c, b"lie"));
    }

    #[test]
    fn raw_cids_follow_from_digests_of_single_blocks() {
        let data = b"segment bytes";
        let d = sha(data);
        let cid = raw_cid(&d, Some(data.len() as u64)).unwrap();
        assert_eq!(cid, unixfs::import(&bytes::Bytes::from_static(data)).root);
        assert_eq!(raw_cid(&d, None), Some(cid));
        assert_eq!(raw_cid(&d, Some(CHUNK as u64 + 1)), None);
    }

    #[test]
    fn malformed_lists_are_refused_with_a_reason() {
        let good = "a".repeat(64);
        for (body, want) in [
            ("[1]".to_owned(), Sha256ListError::NotAnObject),
            (
                r#"{"f": 3}"#.to_owned(),
                Sha256ListError::BadFile("f".into()),
            ),
            (
                r#"{"f": "abc"}"#.to_owned(),
                Sha256ListError::BadDigest("f".into()),
            ),
            (
                format!(r#"{{"f": {{"9-3": "{good}"}}}}"#),
                Sha256ListError::BadRange {
                    file: "f".into(),
                    range: "9-3".into(),
                },
            ),
            (
                format!(r#"{{"f": {{"x": "{good}"}}}}"#),
                Sha256ListError::BadRange {
                    file: "f".into(),
                    range: "x".into(),
                },
            ),
            (
                format!(r#"{{"f": "{}"}}"#, "g".repeat(64)),
                Sha256ListError::BadDigest("f".into()),
            ),
        ] {
            assert_eq!(
                Sha256List::parse(body.as_bytes()).unwrap_err(),
                want,
                "{body}"
            );
        }
        assert!(matches!(
            Sha256List::parse(b"{"),
            Err(Sha256ListError::NotJson(_))
        ));
    }
}
