//! PeerTube's fork of p2p-media-loader (`@peertube/p2p-media-loader-*`
//! 1.0.x), which PeerTube's players run up to release 7.0
//! (`shared/PEERTUBE.md` §2): its swarm ids, its JSON commands
//! ([`command`]) and the seeder's half of its peer protocol (`peer`).
//!
//! The page's master swarm id is the `swarmId` PeerTube passes (the video's
//! `playlistUrl`, verbatim). Each variant (`EXT-X-STREAM-INF`, counted in
//! text order as m3u8-parser lists them) is a stream `{master}+V{i}`; audio
//! renditions never go over P2P. A stream's tracker info_hash is the raw
//! SHA-1 of `"2" + stream id`, and its segments are `{stream}+{sequence}`
//! with sequence = `EXT-X-MEDIA-SEQUENCE` + position, byte ranges of one
//! file included.

pub mod command;
pub(crate) mod peer;

use std::sync::Arc;

use sha1::{Digest as _, Sha1};
use tokio::sync::watch;
use url::Url;

use super::host::Held;
use super::stream::StreamError;

/// The library's `PEER_PROTOCOL_VERSION`, prefixed to the hashed id.
const PEER_PROTOCOL_VERSION: &str = "2";

/// One variant's swarm as the fork names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkStream {
    /// The variant's media playlist, absolute.
    pub playlist: Url,
    /// `{master}+V{i}`.
    pub swarm_id: String,
    /// Raw SHA-1 of `"2" + swarm_id`.
    pub info_hash: [u8; 20],
}

/// The info_hash of a fork stream id.
pub fn info_hash(swarm_id: &str) -> [u8; 20] {
    Sha1::digest(format!("{PEER_PROTOCOL_VERSION}{swarm_id}").as_bytes()).into()
}

/// The streams of the master playlist `body`, fetched from `master_url`,
/// under the page's master swarm id `master_swarm_id`: one per
/// `EXT-X-STREAM-INF` with a URI line, in text order, as m3u8-parser reads
/// them. A media playlist on its own is one stream named by the master
/// swarm id alone.
pub fn streams(
    master_swarm_id: &str,
    master_url: &Url,
    body: &[u8],
) -> Result<Vec<ForkStream>, StreamError> {
    let text = String::from_utf8_lossy(body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if !lines.first().is_some_and(|l| l.starts_with("#EXTM3U")) {
        return Err(StreamError::NotAPlaylist);
    }
    if lines.iter().any(|l| l.starts_with("#EXTINF")) {
        return Ok(vec![ForkStream {
            playlist: master_url.clone(),
            swarm_id: master_swarm_id.to_owned(),
            info_hash: info_hash(master_swarm_id),
        }]);
    }
    let mut out = Vec::new();
    let mut pending = false;
    for line in lines {
        if line.starts_with("#EXT-X-STREAM-INF") {
            pending = true;
        } else if pending && !line.is_empty() && !line.starts_with('#') {
            pending = false;
            let playlist = master_url
                .join(line)
                .map_err(|source| StreamError::BadUri {
                    uri: line.to_owned(),
                    source,
                })?;
            let swarm_id = format!("{master_swarm_id}+V{}", out.len());
            out.push(ForkStream {
                playlist,
                info_hash: info_hash(&swarm_id),
                swarm_id,
            });
        }
    }
    if out.is_empty() {
        return Err(StreamError::NoVariants);
    }
    Ok(out)
}

/// A segment id: `{stream swarm id}+{sequence}`.
pub fn segment_id(swarm_id: &str, sequence: u64) -> String {
    format!("{swarm_id}+{sequence}")
}

/// Every stream of one master, as one fork connection serves them: the
/// fork announces and fetches segments of every variant on one
/// connection, whichever variant's swarm it met the seeder in.
#[derive(Clone, Debug)]
pub struct ForkMaster {
    pub streams: Vec<ForkMember>,
}

/// One stream of a [`ForkMaster`].
#[derive(Clone, Debug)]
pub struct ForkMember {
    /// `{master}+V{i}`.
    pub swarm_id: String,
    /// Passed to [`super::Host::segment`] with the sequence.
    pub stream: Arc<str>,
    /// Its held sequences.
    pub held: watch::Receiver<Held>,
}

impl ForkMaster {
    /// The stream and sequence a segment id names.
    pub fn find(&self, id: &str) -> Option<(&ForkMember, u64)> {
        let (swarm, sequence) = id.rsplit_once('+')?;
        if sequence.is_empty()
            || sequence.len() > 15
            || !sequence.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let member = self.streams.iter().find(|m| m.swarm_id == swarm)?;
        Some((member, sequence.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "https://peertube.example/static/streaming-playlists/hls/11111111-2222-3333-4444-555555555555/abcd-master.m3u8";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn info_hashes_match_the_libraries_and_peertubes_own() {
        // shared/PEERTUBE.md §10, checked with the fork's own code.
        assert_eq!(
            hex(&info_hash(&format!("{U}+V0"))),
            "423b4b2f444eedcd25e2e9dc968b9bcad098095a"
        );
        assert_eq!(
            hex(&info_hash(&format!("{U}+V1"))),
            "3508b9054e9373f6e4c8c8b84dd55b6af7b5f8d0"
        );
    }

    #[test]
    fn variants_are_counted_in_text_order_and_renditions_are_not() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",URI=\"u-0.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=426x240,AUDIO=\"audio\"\n\
            u-240.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"iframes.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=1280x720,AUDIO=\"audio\"\n\
            \n/other/u-720.m3u8\n";
        let url = Url::parse(U).unwrap();
        let s = streams(U, &url, master.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].swarm_id, format!("{U}+V0"));
        assert_eq!(
            s[0].playlist.as_str(),
            "https://peertube.example/static/streaming-playlists/hls/11111111-2222-3333-4444-555555555555/u-240.m3u8"
        );
        assert_eq!(
            s[1].playlist.as_str(),
            "https://peertube.example/other/u-720.m3u8"
        );
        assert_eq!(
            hex(&s[0].info_hash),
            "423b4b2f444eedcd25e2e9dc968b9bcad098095a"
        );
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n";
        let alone = streams(U, &url, media.as_bytes()).unwrap();
        assert_eq!(alone[0].swarm_id, U);
        assert!(streams(U, &url, b"not a playlist").is_err());
    }

    #[test]
    fn segment_ids_name_a_stream_and_a_sequence() {
        let (_tx, held) = watch::channel(Arc::new(Vec::new()));
        let master = ForkMaster {
            streams: vec![ForkMember {
                swarm_id: format!("{U}+V1"),
                stream: "s".into(),
                held,
            }],
        };
        let (m, seq) = master.find(&segment_id(&format!("{U}+V1"), 17)).unwrap();
        assert_eq!((&*m.stream, seq), ("s", 17));
        for bad in [
            format!("{U}+V2+3"),
            format!("{U}+V1+"),
            format!("{U}+V1+-1"),
            format!("{U}+V1+99999999999999999999"),
            "17".to_owned(),
        ] {
            assert!(master.find(&bad).is_none(), "{bad}");
        }
    }
}
