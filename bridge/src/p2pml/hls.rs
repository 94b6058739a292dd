//! hls.js 1.6.16 reading a playlist, as far as p2p-media-loader sees it.
//!
//! p2pml's hls.js integration builds its streams in a `MANIFEST_LOADED`
//! listener registered after hls.js's own controllers, so it sees
//! `data.levels` / `data.audioTracks` as `playlist-loader.ts` and
//! `m3u8-parser.ts` made them, after `level-controller.ts` has rewritten
//! each level's `videoCodec` with `convertAVC1ToAVCOTI`. The level
//! controller's filtering (MSE support, audio-only removal) and sorting by
//! height/bitrate build a *separate* array: p2pml sees the manifest order.
//!
//! Reproduced here, quirks included, because they change the strings that
//! get hashed: the unanchored tag regexes (a tag between `EXT-X-STREAM-INF`
//! and its URI is swallowed, so is a second `EXT-X-STREAM-INF`), the
//! attribute-list regex, `EXT-X-DEFINE` variables (the default hls.js build
//! substitutes them), dropping variants with codecs hls.js does not know
//! when at least one variant has only known ones, the group codec of audio
//! renditions, and the URI-less "main" audio track hls.js prepends.
//!
//! Not reproduced: hls.js asks the browser's MediaSource about codecs
//! missing from its tables (`playlist-loader.ts` `unknownCodecs`) when every
//! variant has one; we treat them as unsupported, which is what a browser
//! without that codec does. Object-prototype names as variable names
//! (`{$constructor}`) are treated as ordinary names.

use url::Url;

use super::attrs::{Vars, attr_list};
use super::js;
use super::stream::StreamError;

/// hls.js `sampleEntryCodesISO` (`utils/codecs.ts`): a codec is of a type
/// when its first four characters (case-sensitive) are listed.
const VIDEO_CODECS: &[&str] = &[
    "avc1", "avc2", "avc3", "avc4", "avcp", "av01", "dav1", "drac", "dva1", "dvav", "dvh1", "dvhe",
    "encv", "hev1", "hvc1", "mjp2", "mp4v", "mvc1", "mvc2", "mvc3", "mvc4", "resv", "rv60", "s263",
    "svc1", "svc2", "vc-1", "vp08", "vp09",
];
const AUDIO_CODECS: &[&str] = &[
    "a3ds", "ac-3", "ac-4", "alac", "alaw", "dra1", "dts+", "dts-", "dtsc", "dtse", "dtsh", "ec-3",
    "enca", "fLaC", "flac", "FLAC", "g719", "g726", "m4ae", "mha1", "mha2", "mhm1", "mhm2", "mlpa",
    "mp4a", "raw ", "Opus", "opus", "samr", "sawb", "sawp", "sevc", "sqcp", "ssmv", "twos", "ulaw",
];
const TEXT_CODECS: &[&str] = &["stpp", "wvtt"];

/// A variant (`EXT-X-STREAM-INF`) as p2pml receives it.
pub(super) struct Level {
    pub url: Url,
    /// `BANDWIDTH || AVERAGE-BANDWIDTH` through `parseInt`: may be NaN or
    /// Infinity, and is NaN for `BANDWIDTH=0` alone.
    pub bitrate: f64,
    pub video_codec: Option<String>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub frame_rate: Option<String>,
    pub video_range: Option<String>,
    audio_codec: Option<String>,
    audio_group: Option<String>,
    has_unknown_codec: bool,
}

/// An `EXT-X-MEDIA:TYPE=AUDIO` rendition (or hls.js's synthetic one).
pub(super) struct AudioTrack {
    /// `None` for a rendition without URI: its audio is inside the variants.
    pub url: Option<Url>,
    pub audio_codec: Option<String>,
    pub lang: Option<String>,
    pub channels: Option<String>,
    pub name: String,
}

/// What the body is to hls.js.
pub(super) enum Manifest {
    /// A media playlist loaded as the manifest: one level, bitrate 0.
    Media,
    Multivariant {
        levels: Vec<Level>,
        audio: Vec<AudioTrack>,
    },
}

/// hls.js `IS_MEDIA_PLAYLIST`: `/^#EXT(?:INF|-X-TARGETDURATION):/m`.
fn is_media_playlist(text: &str) -> bool {
    let at = |i: usize| {
        let rest = &text[i..];
        rest.starts_with("#EXTINF:") || rest.starts_with("#EXT-X-TARGETDURATION:")
    };
    at(0)
        || text
            .char_indices()
            .any(|(i, c)| js::is_line_terminator(c) && at(i + c.len_utf8()))
}

/// Reads `text` (the decoded body) the way hls.js does; `base` is the URL
/// it came from.
pub(super) fn parse(text: &str, base: &Url) -> Result<Manifest, StreamError> {
    if is_media_playlist(text) {
        return Ok(Manifest::Media);
    }
    if !text.starts_with("#EXTM3U") {
        return Err(StreamError::NotAPlaylist);
    }
    let mut vars = Vars::new(text);
    let mut levels = Vec::new();
    // `MASTER_PLAYLIST_REGEX`, global and unanchored: matches may start
    // anywhere, and each resumes the search where the previous one ended.
    let mut pos = 0;
    while let Some(off) = text[pos..].find("#EXT-X-") {
        let at = pos + off;
        let rest = &text[at..];
        const STREAM_INF: &str = "#EXT-X-STREAM-INF:";
        if let Some(after) = rest.strip_prefix(STREAM_INF) {
            if let Some((attrs, uri, end)) = stream_inf(after) {
                levels.push(level(attrs, uri, base, &vars)?);
                pos = at + STREAM_INF.len() + end;
                continue;
            }
        } else if let Some((tag, attrs, end)) = other_tag(rest) {
            match tag {
                "DEFINE" => vars.define(attrs, base)?,
                // hls.js parses these with substitution too: a bad
                // reference there fails the whole manifest.
                "SESSION-DATA" | "SESSION-KEY" | "CONTENT-STEERING" => {
                    attr_list(attrs, &vars, true)?;
                }
                _ => {}
            }
            pos = at + end;
            continue;
        }
        pos = at + 1;
    }
    let known = levels.iter().filter(|l| !l.has_unknown_codec).count();
    if known > 0 && known < levels.len() {
        levels.retain(|l| !l.has_unknown_codec);
    }
    if levels.is_empty() {
        return Err(StreamError::NoVariants);
    }
    let audio = audio_tracks(text, base, &vars, &levels)?;
    Ok(Manifest::Multivariant { levels, audio })
}

/// The rest of `#EXT-X-STREAM-INF:([^\r\n]*)(?:[\r\n](?:#[^\r\n]*)?)*([^\r\n]+)`
/// after the tag: (attributes, URI, end offset in `after`).
fn stream_inf(after: &str) -> Option<(&str, &str, usize)> {
    let b = after.as_bytes();
    let line_end = |from: usize| {
        after[from..]
            .find(['\r', '\n'])
            .map_or(after.len(), |i| from + i)
    };
    let attrs_end = line_end(0);
    let mut q = attrs_end;
    let mut last_comment = None;
    while matches!(b.get(q), Some(b'\r' | b'\n')) {
        q += 1;
        if b.get(q) == Some(&b'#') {
            let end = line_end(q);
            last_comment = Some((q, end));
            q = end;
        }
    }
    if q < after.len() {
        let end = line_end(q);
        return Some((&after[..attrs_end], &after[q..end], end));
    }
    // No URI line before the end: the regex backtracks and takes the last
    // character of the last `#` line, or of the tag's own line, as the URI.
    let last_char = |s: usize, e: usize| after[s..e].char_indices().last().map(|(i, _)| s + i);
    match last_comment {
        Some((s, e)) => last_char(s, e).map(|c| (&after[..attrs_end], &after[c..e], e)),
        None => last_char(0, attrs_end).map(|c| (&after[..c], &after[c..attrs_end], attrs_end)),
    }
}

/// `#EXT-X-(SESSION-DATA|SESSION-KEY|DEFINE|CONTENT-STEERING|START):([^\r\n]*)[\r\n]+`
/// at the start of `rest`: (tag, attributes, end offset).
fn other_tag(rest: &str) -> Option<(&str, &str, usize)> {
    const TAGS: [&str; 5] = [
        "SESSION-DATA",
        "SESSION-KEY",
        "DEFINE",
        "CONTENT-STEERING",
        "START",
    ];
    let after_prefix = &rest["#EXT-X-".len()..];
    let tag = TAGS.into_iter().find(|t| {
        after_prefix
            .strip_prefix(t)
            .is_some_and(|r| r.starts_with(':'))
    })?;
    let start = "#EXT-X-".len() + tag.len() + 1;
    let attrs_end = start + rest[start..].find(['\r', '\n'])?;
    let newlines = rest[attrs_end..]
        .bytes()
        .take_while(|c| matches!(c, b'\r' | b'\n'))
        .count();
    Some((tag, &rest[start..attrs_end], attrs_end + newlines))
}

fn resolve(base: &Url, uri: &str) -> Result<Url, StreamError> {
    base.join(uri).map_err(|source| StreamError::BadUri {
        uri: uri.to_owned(),
        source,
    })
}

fn level(attrs: &str, uri: &str, base: &Url, vars: &Vars) -> Result<Level, StreamError> {
    let attrs = attr_list(attrs, vars, true)?;
    let uri = vars.substitute(uri, true)?;
    let get = |name: &str| attrs.get(name).map(String::as_str);
    let decimal_integer = |name: &str| {
        let v = js::parse_int(get(name).unwrap_or("undefined"), true);
        if v > 9_007_199_254_740_991.0 {
            f64::INFINITY
        } else {
            v
        }
    };
    let mut bitrate = decimal_integer("BANDWIDTH");
    if bitrate == 0.0 || bitrate.is_nan() {
        bitrate = decimal_integer("AVERAGE-BANDWIDTH");
    }
    let (width, height) = get("RESOLUTION")
        .and_then(|r| r.split_once('x'))
        .filter(|(w, h)| {
            [w, h]
                .iter()
                .all(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        })
        .map_or((None, None), |(w, h)| {
            (Some(js::parse_int(w, true)), Some(js::parse_int(h, true)))
        });
    let codecs = Codecs::split(get("CODECS").unwrap_or(""));
    Ok(Level {
        url: resolve(base, &uri)?,
        bitrate,
        video_codec: codecs.video.map(|v| convert_avc1_to_avcoti(&v)),
        audio_codec: codecs.audio,
        width,
        height,
        frame_rate: attrs.get("FRAME-RATE").cloned(),
        video_range: attrs.get("VIDEO-RANGE").cloned(),
        audio_group: attrs.get("AUDIO").cloned(),
        has_unknown_codec: codecs.unknown,
    })
}

/// hls.js `setCodecs`.
struct Codecs {
    video: Option<String>,
    audio: Option<String>,
    unknown: bool,
}

impl Codecs {
    fn split(value: &str) -> Codecs {
        let mut left: Vec<&str> = value.split([' ', ',']).filter(|c| !c.is_empty()).collect();
        let mut take = |table: &[&str]| {
            let is_type = |c: &&str| c.get(..4).is_some_and(|p| table.contains(&p));
            let found: Vec<&str> = left.iter().copied().filter(is_type).collect();
            left.retain(|c| !is_type(c));
            (!found.is_empty()).then(|| {
                let names: Vec<&str> = found
                    .iter()
                    .map(|c| c.split('/').next().unwrap_or(c))
                    .collect();
                names.join(",")
            })
        };
        let video = take(VIDEO_CODECS);
        let audio = take(AUDIO_CODECS);
        let _text = take(TEXT_CODECS);
        Codecs {
            video,
            audio,
            unknown: !left.is_empty(),
        }
    }
}

/// hls.js `convertAVC1ToAVCOTI`, which rewrites every `avc1.X.Y` (with no
/// zero padding of X, and `parseInt` reading `0x` prefixes).
fn convert_avc1_to_avcoti(codecs: &str) -> String {
    let converted: Vec<String> = codecs
        .split(',')
        .map(|codec| {
            let parts: Vec<&str> = codec.split('.').collect();
            if parts.len() > 2 && parts[0] == "avc1" {
                let profile = js::integer_to_hex(js::parse_int(parts[1], false));
                let level = format!("000{}", js::integer_to_hex(js::parse_int(parts[2], false)));
                format!("avc1.{profile}{}", &level[level.len() - 4..])
            } else {
                codec.to_owned()
            }
        })
        .collect();
    converted.join(",")
}

/// `MASTER_PLAYLIST_MEDIA_REGEX` (`/#EXT-X-MEDIA:(.*)/g`) over the whole
/// body, then the synthetic main track of `playlist-loader.ts`.
fn audio_tracks(
    text: &str,
    base: &Url,
    vars: &Vars,
    levels: &[Level],
) -> Result<Vec<AudioTrack>, StreamError> {
    const MEDIA: &str = "#EXT-X-MEDIA:";
    let mut tracks = Vec::new();
    let mut pos = 0;
    while let Some(off) = text[pos..].find(MEDIA) {
        let start = pos + off + MEDIA.len();
        let end = text[start..]
            .find(js::is_line_terminator)
            .map_or(text.len(), |i| start + i);
        pos = end;
        // A bad reference here only sets an error nobody checks any more.
        let attrs = attr_list(&text[start..end], vars, false)?;
        if attrs.get("TYPE").map(String::as_str) != Some("AUDIO") {
            continue;
        }
        let non_empty = |name: &str| attrs.get(name).filter(|v| !v.is_empty()).cloned();
        let group_id = non_empty("GROUP-ID").unwrap_or_default();
        let lang = attrs.get("LANGUAGE").cloned();
        let name = non_empty("NAME")
            .or_else(|| lang.clone().filter(|l| !l.is_empty()))
            .unwrap_or_default();
        let url = non_empty("URI").map(|u| resolve(base, &u)).transpose()?;
        // The first level naming this group, else the first level.
        let group = levels
            .iter()
            .find(|l| l.audio_group.as_deref() == Some(group_id.as_str()))
            .or(levels.first());
        tracks.push(AudioTrack {
            url,
            audio_codec: group.and_then(|l| l.audio_codec.clone()),
            lang,
            channels: non_empty("CHANNELS"),
            name,
        });
    }
    let first = levels.first();
    if !tracks.is_empty()
        && tracks.iter().all(|t| t.url.is_some())
        && first.is_some_and(|l| l.audio_codec.is_some())
        && first.is_some_and(|l| l.audio_group.as_deref().unwrap_or("").is_empty())
    {
        tracks.insert(
            0,
            AudioTrack {
                url: None,
                audio_codec: None,
                lang: None,
                channels: None,
                name: "main".into(),
            },
        );
    }
    Ok(tracks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_like_hls_js() {
        let c = Codecs::split("avc1.4d401e, mp4a.40.2 stpp.ttml,hvc1.1/x");
        assert_eq!(c.video.as_deref(), Some("avc1.4d401e,hvc1.1"));
        assert_eq!(c.audio.as_deref(), Some("mp4a.40.2"));
        assert!(!c.unknown);
        assert!(Codecs::split("AVC1.4D401F").unknown);
        assert_eq!(
            convert_avc1_to_avcoti("avc1.66.30,avc1.8.9,avc1.x.y,avc1.0x1f.070000.5,hvc1.1.2.3"),
            "avc1.42001e,avc1.80009,avc1.NaN0NaN,avc1.1f1170,hvc1.1.2.3"
        );
    }

    #[test]
    fn stream_inf_uri_rules() {
        assert_eq!(
            stream_inf("A=1\r\n# c\r\n\r\nuri.m3u8\r\nrest"),
            Some(("A=1", "uri.m3u8", 20))
        );
        assert_eq!(stream_inf("A=1\n#EXT-X-ENDLIST"), Some(("A=1", "T", 18)));
        assert_eq!(stream_inf("BANDWIDTH=100"), Some(("BANDWIDTH=10", "0", 13)));
        assert_eq!(stream_inf(""), None);
    }
}
