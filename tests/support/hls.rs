//! Walks a fixture's playlists on disk and through the gateway side by side,
//! so every segment fetched through the gateway can be compared with the
//! bytes the CDN holds for it.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use m3u8_rs::Playlist;

/// One segment or init section: the gateway path that serves it, and the
/// bytes the CDN holds for it.
pub struct Object {
    pub path: String,
    pub expected: Bytes,
    /// The file the CDN serves it from.
    pub file: PathBuf,
}

fn parse(body: &[u8], what: &str) -> Playlist {
    m3u8_rs::parse_playlist_res(body).unwrap_or_else(|e| panic!("{what} does not parse: {e:?}"))
}

fn read_range(file: &Path, offset: u64, length: Option<u64>) -> Bytes {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let end = length.map(|l| offset + l).unwrap_or(data.len() as u64);
    Bytes::copy_from_slice(&data[offset as usize..end as usize])
}

async fn get(client: &reqwest::Client, url: &str) -> Bytes {
    let r = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.bytes().await.unwrap()
}

/// Every object of the playlist at `local` (a file under the CDN root), as
/// rewritten by the gateway at `gateway_url`.
pub async fn objects(
    client: &reqwest::Client,
    gateway: &str,
    gateway_url: &str,
    local: &Path,
) -> Vec<Object> {
    let mut out = Vec::new();
    let mut todo: Vec<(String, PathBuf)> = vec![(gateway_url.to_owned(), local.to_path_buf())];
    while let Some((gw, file)) = todo.pop() {
        let dir = file.parent().unwrap().to_path_buf();
        let original = parse(&std::fs::read(&file).unwrap(), &file.display().to_string());
        let rewritten = parse(&get(client, &gw).await, &gw);
        match (original, rewritten) {
            (Playlist::MasterPlaylist(o), Playlist::MasterPlaylist(r)) => {
                assert_eq!(o.variants.len(), r.variants.len());
                for (ov, rv) in o.variants.iter().zip(&r.variants) {
                    todo.push((format!("{gateway}{}", rv.uri), dir.join(&ov.uri)));
                }
                assert_eq!(o.alternatives.len(), r.alternatives.len());
                for (oa, ra) in o.alternatives.iter().zip(&r.alternatives) {
                    if let (Some(ou), Some(ru)) = (&oa.uri, &ra.uri) {
                        todo.push((format!("{gateway}{ru}"), dir.join(ou)));
                    }
                }
            }
            (Playlist::MediaPlaylist(o), Playlist::MediaPlaylist(r)) => {
                assert_eq!(o.segments.len(), r.segments.len(), "{gw}");
                let mut next_offset = 0;
                for (os, rs) in o.segments.iter().zip(&r.segments) {
                    assert!(
                        rs.byte_range.is_none(),
                        "ranges are resolved by the gateway"
                    );
                    if let (Some(om), Some(rm)) = (&os.map, &rs.map) {
                        let (offset, length) = match &om.byte_range {
                            Some(b) => (b.offset.unwrap_or(0), Some(b.length)),
                            None => (0, None),
                        };
                        out.push(Object {
                            path: rm.uri.clone(),
                            expected: read_range(&dir.join(&om.uri), offset, length),
                            file: dir.join(&om.uri),
                        });
                    }
                    let (offset, length) = match &os.byte_range {
                        Some(b) => (b.offset.unwrap_or(next_offset), Some(b.length)),
                        None => (0, None),
                    };
                    next_offset = offset + length.unwrap_or(0);
                    out.push(Object {
                        path: rs.uri.clone(),
                        expected: read_range(&dir.join(&os.uri), offset, length),
                        file: dir.join(&os.uri),
                    });
                }
            }
            _ => panic!("{gw}: the gateway changed the playlist's kind"),
        }
    }
    out
}

/// Fetches every object through the gateway and compares it with the CDN's
/// bytes. Returns the bytes compared.
pub async fn assert_byte_exact(client: &reqwest::Client, gateway: &str, objects: &[Object]) -> u64 {
    let mut total = 0;
    for o in objects {
        let got = get(client, &format!("{gateway}{}", o.path)).await;
        assert!(
            got == o.expected,
            "{}: {} bytes differ from the CDN's {}",
            o.path,
            got.len(),
            o.expected.len()
        );
        total += got.len() as u64;
    }
    total
}
