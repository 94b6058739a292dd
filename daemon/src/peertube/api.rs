//! The parts of PeerTube's REST and ActivityPub answers a seeder reads
//! (`shared/PEERTUBE.md` §6). Unknown fields are ignored, missing optional
//! ones default, so every release from 6.x on reads the same.

use serde::Deserialize;

/// `GET /api/v1/config`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerConfig {
    pub server_version: String,
    #[serde(default)]
    pub webrtc: Option<Webrtc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webrtc {
    #[serde(default)]
    pub stun_servers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub id: i64,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Actor {
    #[serde(default)]
    pub host: Option<String>,
}

/// `GET /api/v1/videos/{id}` (VideoDetails).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoDetails {
    pub uuid: String,
    #[serde(default)]
    pub name: String,
    pub privacy: Labelled,
    #[serde(default)]
    pub is_live: bool,
    #[serde(default = "yes")]
    pub is_local: bool,
    #[serde(default)]
    pub account: Actor,
    #[serde(default)]
    pub tracker_urls: Vec<String>,
    #[serde(default)]
    pub streaming_playlists: Vec<StreamingPlaylist>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingPlaylist {
    #[serde(rename = "type")]
    pub kind: i64,
    pub playlist_url: String,
    #[serde(default)]
    pub segments_sha256_url: Option<String>,
    #[serde(default)]
    pub redundancies: Vec<Redundancy>,
    #[serde(default)]
    pub files: Vec<VideoFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redundancy {
    pub base_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoFile {
    pub resolution: Labelled,
    #[serde(default)]
    pub playlist_url: Option<String>,
}

/// `GET /api/v1/{video-channels,accounts}/{handle}/videos`.
#[derive(Debug, Deserialize)]
pub struct VideoList {
    pub data: Vec<VideoListItem>,
}

#[derive(Debug, Deserialize)]
pub struct VideoListItem {
    pub uuid: String,
}

/// An API error (`application/problem+json`).
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The streaming playlist link of a video's ActivityPub object, whose tags
/// are the exact info_hashes the origin's private tracker lets in.
#[derive(Debug, Deserialize)]
pub struct ApVideo {
    #[serde(default)]
    pub url: Vec<ApLink>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApLink {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default)]
    pub tag: Vec<ApTag>,
}

#[derive(Debug, Deserialize)]
pub struct ApTag {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// Privacy ids (`VideoPrivacy`).
pub const PUBLIC: i64 = 1;
pub const UNLISTED: i64 = 2;
pub const PRIVATE: i64 = 3;
pub const INTERNAL: i64 = 4;
pub const PASSWORD_PROTECTED: i64 = 5;

/// `VideoStreamingPlaylistType.HLS`.
pub const HLS: i64 = 1;

impl ApVideo {
    /// The info_hashes (hex, as published) tagged on the HLS playlist link
    /// whose `href` is `master`.
    pub fn infohashes(&self, master: &str) -> Vec<String> {
        self.url
            .iter()
            .filter(|l| {
                l.media_type.as_deref() == Some("application/x-mpegURL")
                    && l.href.as_deref() == Some(master)
            })
            .flat_map(|l| &l.tag)
            .filter(|t| t.kind == "Infohash")
            .filter_map(|t| t.name.clone())
            .collect()
    }
}
