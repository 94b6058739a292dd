//! Swarm identity: the swarms a p2p-media-loader page joins for a playlist
//! (`shared/P2PML.md` §2), for both generations of the library.
//!
//! Every stream (a variant, or an audio rendition with its own playlist) is
//! one swarm, named `"v2-" + swarm base + "-" + kind + "-" + index`; its
//! tracker info_hash is 20 ASCII characters, Base64 of 15 bytes of a hash of
//! that name. The generations differ in the index and the hash, so their
//! peers never meet:
//!
//! - **2.3.x** (`generateStreamShortId`, `utils/stream.ts`): the index is
//!   standard Base64 of SHA-1 over the stream's normalised metadata; the
//!   info_hash takes SHA-1 bytes 0..15 (`utils/peer.ts`).
//! - **2.2.x** (2.2.2 `utils/stream.ts`, `utils/peer.ts`, hlsjs
//!   `segment-mananger.ts`): the index is the decimal position of the level
//!   in hls.js's `MANIFEST_LOADED` `levels`, or of the track in
//!   `audioTracks`; the info_hash takes **MD5** bytes 1..16 (nano-md5's
//!   binary string with its first byte sliced off).
//!
//! For 2.2 the positions are those of the manifest as written, not hls.js's
//! sorted level list: hls.js only drops variants whose codecs it does not
//! know (when another variant has only known ones) before `MANIFEST_LOADED`;
//! its level controller sorts and filters into a separate array. Audio
//! positions count renditions without URI, and the URI-less "main" track
//! hls.js prepends when the first variant carries audio but names no group.
//! In both generations p2pml keys streams by playlist URL: a second stream
//! with an already-seen URL is ignored. In 2.3, two variants with the same
//! metadata but different URLs get the same swarm.
//!
//! The playlist is read as hls.js 1.6.16 reads it (`hls.rs`, `attrs.rs`);
//! checked against vectors made by the libraries' own code
//! (`tests/vectors/p2pml-streams.json`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use url::Url;

use super::hls::{self, Manifest};
use super::js;

/// Which of a page's two loaders a stream belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// A variant (`EXT-X-STREAM-INF`), or the media playlist itself.
    Main,
    /// An `EXT-X-MEDIA:TYPE=AUDIO` rendition with its own playlist.
    Secondary,
}

impl StreamKind {
    /// The word in the swarm id.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Main => "main",
            StreamKind::Secondary => "secondary",
        }
    }
}

/// A p2p-media-loader generation with its own swarm ids. The command
/// protocol on the data channel is the same for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generation {
    /// 2.2.x: positional index, MD5.
    V22,
    /// 2.3.x: metadata index, SHA-1.
    V23,
}

impl Generation {
    /// Both generations, oldest first.
    pub const ALL: [Generation; 2] = [Generation::V22, Generation::V23];

    /// The default `trackerClientVersionPrefix` of the generation's peers
    /// (2.2.2 and 2.3.1 format `-PM{major:02}{minor:02}-`).
    pub fn peer_id_prefix(self) -> &'static str {
        match self {
            Generation::V22 => "-PM0202-",
            Generation::V23 => "-PM0203-",
        }
    }

    fn slot(self) -> usize {
        match self {
            Generation::V22 => 0,
            Generation::V23 => 1,
        }
    }
}

/// Why a playlist yields no streams.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Neither a media playlist nor starting with `#EXTM3U`.
    #[error("not an HLS playlist: no #EXTM3U at the start and no #EXTINF line")]
    NotAPlaylist,
    /// A multivariant playlist without a variant hls.js keeps.
    #[error("the multivariant playlist has no usable EXT-X-STREAM-INF")]
    NoVariants,
    /// `{$name}` without a preceding `EXT-X-DEFINE`: hls.js rejects the manifest.
    #[error("variable {{${0}}} is used before any EXT-X-DEFINE of it")]
    UndefinedVariable(String),
    /// Two `EXT-X-DEFINE`s of one name: hls.js rejects the manifest.
    #[error("EXT-X-DEFINE declares {0:?} twice")]
    DuplicateVariable(String),
    /// `EXT-X-DEFINE:QUERYPARAM` naming a parameter the URL lacks.
    #[error("EXT-X-DEFINE QUERYPARAM {0:?} is not in the playlist URL")]
    MissingQueryParam(String),
    /// A variant or rendition URI that cannot be made absolute.
    #[error("playlist URI {uri:?} does not resolve against the playlist URL")]
    BadUri {
        /// The URI as written (after variable substitution).
        uri: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SwarmName {
    swarm_id: String,
    info_hash: [u8; 20],
}

/// One swarm to seed: a playlist and its swarm name in each generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Main (variant) or secondary (audio rendition).
    pub kind: StreamKind,
    /// The media playlist this stream plays, absolute (resolved against the master's URL).
    pub playlist: Url,
    names: [SwarmName; 2],
}

impl Stream {
    fn new(kind: StreamKind, playlist: Url, swarm_base: &str, v22: &str, v23: &str) -> Stream {
        let name = |index: &str, hash: fn(&[u8]) -> [u8; 15]| {
            let swarm_id = format!("v2-{swarm_base}-{}-{index}", kind.as_str());
            let mut info_hash = [0u8; 20];
            // 15 bytes are exactly 20 Base64 characters, no padding.
            let written = BASE64.encode_slice(hash(swarm_id.as_bytes()), &mut info_hash);
            debug_assert_eq!(written.ok(), Some(20));
            SwarmName {
                swarm_id,
                info_hash,
            }
        };
        let md5_1_16 = |b: &[u8]| -> [u8; 15] {
            let d = Md5::digest(b);
            let mut out = [0; 15];
            out.copy_from_slice(&d[1..16]);
            out
        };
        let sha1_0_15 = |b: &[u8]| -> [u8; 15] {
            let d = Sha1::digest(b);
            let mut out = [0; 15];
            out.copy_from_slice(&d[..15]);
            out
        };
        Stream {
            kind,
            playlist,
            names: [name(v22, md5_1_16), name(v23, sha1_0_15)],
        }
    }

    /// The tracker info_hash: 20 ASCII Base64 characters, sent as they are.
    pub fn info_hash(&self, g: Generation) -> [u8; 20] {
        self.names[g.slot()].info_hash
    }

    /// The stream swarm id the info_hash is made from (`v2-…`).
    pub fn swarm_id(&self, g: Generation) -> &str {
        &self.names[g.slot()].swarm_id
    }
}

/// A swarm of PeerTube's UUID-named generation (its develop branch,
/// `generateSwarmId` and `generateP2PMediaLoaderHash`, `shared/PEERTUBE.md`
/// §4): `pt-v2-{uuid}-{main|secondary}-default-{resolution}`, an audio-only
/// stream's resolution being `default`, hashed as 2.3 hashes (SHA-1 bytes
/// 0..15, Base64). Its peers speak the binary commands.
pub fn peertube_uuid_swarm(
    uuid: &str,
    kind: StreamKind,
    resolution: Option<u32>,
) -> (String, [u8; 20]) {
    let resolution = match resolution {
        Some(r) if r > 0 => r.to_string(),
        _ => "default".to_owned(),
    };
    let swarm_id = format!("pt-v2-{uuid}-{}-default-{resolution}", kind.as_str());
    let mut info_hash = [0u8; 20];
    let written = BASE64.encode_slice(&Sha1::digest(swarm_id.as_bytes())[..15], &mut info_hash);
    debug_assert_eq!(written.ok(), Some(20));
    (swarm_id, info_hash)
}

/// The swarm base when the page sets no `swarmId`: the manifest's final URL
/// (after redirects) up to its first `?`. Browsers report that URL without
/// its fragment (`XMLHttpRequest.responseURL`, `Response.url`), so neither
/// does this.
pub fn swarm_base(manifest_url: &Url) -> String {
    let mut url = manifest_url.clone();
    url.set_fragment(None);
    let s = url.as_str();
    s.split('?').next().unwrap_or(s).to_owned()
}

/// The streams browsers make of the playlist `body` fetched from
/// `playlist_url` (its final URL): one [`StreamKind::Main`] per variant
/// hls.js keeps, in manifest order, then one [`StreamKind::Secondary`] per
/// audio rendition with a URI; for a media playlist, one main stream for
/// `playlist_url` itself.
///
/// `swarm_base` is the page's `swarmId` or [`swarm_base`] of the manifest
/// URL (a page may set one per kind: then call once per kind). Streams whose
/// playlist URL came earlier are left out, as p2pml does. Two streams can
/// share a 2.3 swarm (same metadata); the caller seeds such a swarm once.
pub fn streams(
    swarm_base: &str,
    playlist_url: &Url,
    body: &[u8],
) -> Result<Vec<Stream>, StreamError> {
    // What `responseText` holds: UTF-8 (pages cannot choose the charset
    // hls.js decodes with; servers rarely send another), BOM dropped.
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let text = String::from_utf8_lossy(body);
    let (levels, audio) = match hls::parse(&text, playlist_url)? {
        Manifest::Media => {
            let index = short_id(&ShortIdProps::bitrate_only(0.0));
            let main = Stream::new(
                StreamKind::Main,
                playlist_url.clone(),
                swarm_base,
                "0",
                &index,
            );
            return Ok(vec![main]);
        }
        Manifest::Multivariant { levels, audio } => (levels, audio),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (position, level) in levels.iter().enumerate() {
        if !seen.insert(level.url.as_str().to_owned()) {
            continue;
        }
        // hlsjs `segment-manager.ts`: a level of bitrate 0 hashes that
        // alone. (`BANDWIDTH=0` by itself is not one: `0 || NaN` is NaN.)
        let props = if level.bitrate == 0.0 {
            ShortIdProps::bitrate_only(level.bitrate)
        } else {
            ShortIdProps {
                bitrate: level.bitrate,
                codecs: level.video_codec.as_deref(),
                width: level.width,
                height: level.height,
                frame_rate: level.frame_rate.as_deref(),
                video_range: level.video_range.as_deref(),
                ..ShortIdProps::bitrate_only(level.bitrate)
            }
        };
        let v22 = position.to_string();
        let v23 = short_id(&props);
        out.push(Stream::new(
            StreamKind::Main,
            level.url.clone(),
            swarm_base,
            &v22,
            &v23,
        ));
    }
    for (position, track) in audio.iter().enumerate() {
        // A rendition without URI plays inside the variants: p2pml makes a
        // stream of it, but no playlist ever fills it.
        let Some(url) = &track.url else { continue };
        if !seen.insert(url.as_str().to_owned()) {
            continue;
        }
        let props = ShortIdProps {
            codecs: track.audio_codec.as_deref(),
            language: track.lang.as_deref(),
            channels: track.channels.as_deref(),
            name: Some(track.name.as_str()),
            ..ShortIdProps::bitrate_only(0.0)
        };
        let v22 = position.to_string();
        let v23 = short_id(&props);
        out.push(Stream::new(
            StreamKind::Secondary,
            url.clone(),
            swarm_base,
            &v22,
            &v23,
        ));
    }
    Ok(out)
}

/// The arguments of 2.3's `generateStreamShortId`; `None` is `undefined`.
#[derive(Clone, Copy, Debug, Default)]
struct ShortIdProps<'a> {
    bitrate: f64,
    codecs: Option<&'a str>,
    width: Option<f64>,
    height: Option<f64>,
    language: Option<&'a str>,
    channels: Option<&'a str>,
    name: Option<&'a str>,
    frame_rate: Option<&'a str>,
    video_range: Option<&'a str>,
}

impl ShortIdProps<'_> {
    fn bitrate_only(bitrate: f64) -> Self {
        ShortIdProps {
            bitrate,
            ..Default::default()
        }
    }
}

/// `avc1.P.L` / `avc.P.L` with canonical decimal P and L → `avc1.PP00LL`.
fn normalise_codec(codec: &str) -> String {
    let c = js::trim(codec).to_lowercase();
    let parts: Vec<&str> = c.split('.').collect();
    if parts.len() == 3 && (parts[0] == "avc1" || parts[0] == "avc") {
        let profile = js::parse_int(parts[1], true);
        let level = js::parse_int(parts[2], true);
        if !profile.is_nan()
            && !level.is_nan()
            && parts[1] == js::number_to_string(profile)
            && parts[2] == js::number_to_string(level)
        {
            return format!(
                "{}.{:0>2}00{:0>2}",
                parts[0],
                js::integer_to_hex(profile),
                js::integer_to_hex(level)
            );
        }
    }
    c
}

/// 2.3's `generateStreamShortId`: Base64 of SHA-1 of the normalised
/// `bitrate-codecs-width-height-lang-channels-name-frameRate-videoRange`.
fn short_id(p: &ShortIdProps) -> String {
    // JavaScript truthiness of a string: `undefined` and "" are falsy.
    fn non_empty(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    let codecs = non_empty(p.codecs).map_or(String::new(), |c| {
        let mut list: Vec<String> = c.split(',').map(normalise_codec).collect();
        js::sort_utf16(&mut list);
        list.join(",")
    });
    let number = |n: Option<f64>| n.map_or(String::new(), js::number_to_string);
    let lang = non_empty(p.language)
        .filter(|l| *l != "und")
        .map_or(String::new(), |l| js::slice_utf16(l, 2).to_lowercase());
    let channels = non_empty(p.channels).map_or("", |c| c.split('/').next().unwrap_or(c));
    let name = non_empty(p.name).map_or(String::new(), |n| js::trim(&n.to_lowercase()).to_owned());
    let frame_rate = non_empty(p.frame_rate)
        .map(js::string_to_number)
        .filter(|f| !f.is_nan())
        .map_or(String::new(), js::number_to_string);
    let video_range =
        non_empty(p.video_range).map_or(String::new(), |v| js::trim(&v.to_uppercase()).to_owned());
    let pre_image = format!(
        "{}-{codecs}-{}-{}-{lang}-{channels}-{name}-{frame_rate}-{video_range}",
        js::number_to_string(p.bitrate),
        number(p.width),
        number(p.height),
    );
    BASE64.encode(Sha1::digest(pre_image.as_bytes()))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
