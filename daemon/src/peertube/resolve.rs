//! Reading a PeerTube video from its instance: the server's version (which
//! player generation its viewers run), the HLS master playlist, the
//! trackers, the SHA-256 list, the mirrors, and the info_hashes the origin
//! published. Videos that cannot be seeded are refused with the reason.

use std::sync::Arc;

use tracing::{debug, warn};
use url::Url;

use super::api::{self, ApVideo, Problem, ServerConfig, VideoDetails, VideoList};
use crate::cdn::Cdn;
use crate::sha256_list::Sha256List;

/// Bounds on what an instance may send.
const MAX_API_BYTES: u64 = 4 << 20;
const MAX_SHA_LIST_BYTES: u64 = 64 << 20;
/// The most videos `--latest` takes from a channel or account (the API's page).
pub const MAX_LATEST: u32 = 100;

/// Which P2P protocol an instance's players speak (`shared/PEERTUBE.md` §0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Generation {
    /// Up to 7.0: PeerTube's fork of p2p-media-loader 1.0.x (SHA-1 of
    /// `"2" + playlistUrl + "+V" + i`, JSON commands).
    Fork,
    /// 7.1 to 8.x: p2p-media-loader 2.2 (MD5, streams by playlist order).
    P2pml22,
    /// Later: swarms named from the video's UUID and each stream's
    /// resolution (`pt-v2-…`, SHA-1), binary commands.
    Uuid,
}

impl Generation {
    /// The generation of a `serverVersion` such as `7.0.1` or `8.1.3-rc.1`.
    pub fn of_version(version: &str) -> Option<Generation> {
        let mut parts = version.trim().split(['.', '-', '+']);
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next().unwrap_or("0").parse().ok()?;
        Some(match (major, minor) {
            (0..=6, _) | (7, 0) => Generation::Fork,
            (7, _) | (8, _) => Generation::P2pml22,
            _ => Generation::Uuid,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Fork => "PeerTube p2p-media-loader 1.0 fork",
            Generation::P2pml22 => "p2p-media-loader 2.2",
            Generation::Uuid => "PeerTube pt-v2 swarm ids",
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PeerTubeError {
    #[error("{instance} did not answer: {reason}")]
    Unreachable { instance: String, reason: String },
    #[error("{instance} is not a PeerTube instance: {reason}")]
    NotPeerTube { instance: String, reason: String },
    #[error("no video {id} on {instance}")]
    NoSuchVideo { instance: String, id: String },
    #[error("the video is private, internal or blocked: only its instance's users may watch it")]
    Private,
    #[error("the video is password-protected")]
    PasswordProtected,
    #[error("the video is {0}: only public and unlisted videos are seeded")]
    NotPublic(String),
    #[error("the video has no HLS streaming playlist, so PeerTube's players share no part of it")]
    NoHls,
    #[error(
        "the video has no SHA-256 list (segmentsSha256Url is null): its segments cannot be checked, and PeerTube's players do not share it over P2P"
    )]
    NoSha256List,
    #[error("the SHA-256 list at {url} is unusable: {reason}")]
    BadSha256List { url: String, reason: String },
    #[error("the instance's answer names {0:?}, which is not an http(s) URL")]
    BadUrl(String),
    #[error("a playlist of videos, not a video: seed its videos one by one")]
    Playlist,
    #[error("a channel or account: give --latest N to seed its N latest videos")]
    NeedsLatest,
    #[error("the instance's serverVersion {0:?} is not a version")]
    BadVersion(String),
}

/// A video as its origin describes it.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub uuid: String,
    pub name: String,
    /// The instance the video was published on, where its tracker is.
    pub origin: Url,
    pub server_version: String,
    pub generation: Generation,
    /// The HLS master playlist (`playlistUrl`): the players' swarm id.
    pub master: Url,
    /// Its WebSocket trackers.
    pub trackers: Vec<String>,
    pub sha256_url: Url,
    pub sha256: Arc<Sha256List>,
    pub mirrors: Vec<Url>,
    pub stun_servers: Vec<String>,
    /// The info_hashes the origin's tracker allows, as its ActivityPub
    /// object publishes them; `None` when it could not be read.
    pub allowlist: Option<Vec<[u8; 20]>>,
    /// Each resolution playlist with its resolution (0: audio only).
    pub resolutions: Vec<(Url, u32)>,
    pub live: bool,
}

impl Resolved {
    /// What a re-read must notice: a change here means new swarms.
    pub fn swarm_facts(&self) -> (&Url, &[String], Generation, &Option<Vec<[u8; 20]>>) {
        (
            &self.master,
            &self.trackers,
            self.generation,
            &self.allowlist,
        )
    }
}

fn http_url(s: &str) -> Result<Url, PeerTubeError> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| PeerTubeError::BadUrl(s.to_owned()))
}

fn api_url(instance: &Url, path: &str) -> Url {
    let mut u = instance.clone();
    u.set_path(path);
    u
}

fn host_of(instance: &Url) -> String {
    instance[url::Position::BeforeHost..url::Position::AfterPort].to_owned()
}

/// GETs `path` on `instance`; any answer below 500 comes back with its status.
async fn get(
    cdn: &Cdn,
    instance: &Url,
    url: &Url,
    accept: &str,
    limit: u64,
) -> Result<(u16, bytes::Bytes), PeerTubeError> {
    cdn.get_api(url, accept, limit)
        .await
        .map(|(status, f)| (status, f.body))
        .map_err(|e| PeerTubeError::Unreachable {
            instance: host_of(instance),
            reason: e.to_string(),
        })
}

/// The instance's `/api/v1/config`, which every PeerTube answers openly.
async fn config(cdn: &Cdn, instance: &Url) -> Result<ServerConfig, PeerTubeError> {
    let url = api_url(instance, "/api/v1/config");
    let not = |reason: String| PeerTubeError::NotPeerTube {
        instance: host_of(instance),
        reason,
    };
    match get(cdn, instance, &url, "application/json", MAX_API_BYTES).await? {
        (200, body) => serde_json::from_slice(&body)
            .map_err(|e| not(format!("/api/v1/config is not PeerTube's: {e}"))),
        (status, _) => Err(not(format!("/api/v1/config answered HTTP {status}"))),
    }
}

async fn video(cdn: &Cdn, instance: &Url, id: &str) -> Result<VideoDetails, PeerTubeError> {
    let url = api_url(instance, &format!("/api/v1/videos/{id}"));
    let (status, body) = get(cdn, instance, &url, "application/json", MAX_API_BYTES).await?;
    let problem = || serde_json::from_slice::<Problem>(&body).unwrap_or_default();
    match status {
        200 => serde_json::from_slice(&body).map_err(|e| PeerTubeError::NotPeerTube {
            instance: host_of(instance),
            reason: format!("its video answer does not read as PeerTube's: {e}"),
        }),
        404 => Err(PeerTubeError::NoSuchVideo {
            instance: host_of(instance),
            id: id.to_owned(),
        }),
        401 | 403 => match problem().code.as_deref() {
            Some("video_requires_password" | "incorrect_video_password") => {
                Err(PeerTubeError::PasswordProtected)
            }
            _ => Err(PeerTubeError::Private),
        },
        s => Err(PeerTubeError::Unreachable {
            instance: host_of(instance),
            reason: format!(
                "the video API answered HTTP {s}{}",
                problem()
                    .detail
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        }),
    }
}

/// Reads video `id` on `instance`, following it to its origin when it was
/// federated there.
pub async fn resolve(cdn: &Cdn, instance: &Url, id: &str) -> Result<Resolved, PeerTubeError> {
    config(cdn, instance).await?;
    let mut details = video(cdn, instance, id).await?;
    let mut origin = instance.clone();
    if !details.is_local
        && let Some(host) = details.account.host.clone()
        && host != host_of(instance)
    {
        // The swarm lives on the origin's tracker, under its generation.
        origin = http_url(&format!("{}://{host}/", instance.scheme()))?;
        details = video(cdn, &origin, &details.uuid).await?;
    }
    let config = config(cdn, &origin).await?;
    let generation = Generation::of_version(&config.server_version)
        .ok_or_else(|| PeerTubeError::BadVersion(config.server_version.clone()))?;
    match details.privacy.id {
        api::PUBLIC | api::UNLISTED => {}
        api::PRIVATE | api::INTERNAL => return Err(PeerTubeError::Private),
        api::PASSWORD_PROTECTED => return Err(PeerTubeError::PasswordProtected),
        _ => return Err(PeerTubeError::NotPublic(details.privacy.label.clone())),
    }
    let playlist = details
        .streaming_playlists
        .iter()
        .find(|p| p.kind == api::HLS)
        .ok_or(PeerTubeError::NoHls)?;
    let master = http_url(&playlist.playlist_url)?;
    let sha256_url = http_url(
        playlist
            .segments_sha256_url
            .as_deref()
            .ok_or(PeerTubeError::NoSha256List)?,
    )?;
    let sha256 = sha256_list(cdn, &sha256_url).await?;
    let trackers = details
        .tracker_urls
        .iter()
        .filter(|t| t.starts_with("ws://") || t.starts_with("wss://"))
        .cloned()
        .collect();
    let mirrors = playlist
        .redundancies
        .iter()
        .filter_map(|r| http_url(&r.base_url).ok())
        .collect();
    let resolutions = playlist
        .files
        .iter()
        .filter_map(|f| {
            let url = http_url(f.playlist_url.as_deref()?).ok()?;
            Some((url, u32::try_from(f.resolution.id).ok()?))
        })
        .collect();
    let allowlist = allowlist(cdn, &origin, &details.uuid, &master).await;
    Ok(Resolved {
        uuid: details.uuid,
        name: details.name,
        origin,
        server_version: config.server_version,
        generation,
        master,
        trackers,
        sha256_url,
        sha256: Arc::new(sha256),
        mirrors,
        stun_servers: config.webrtc.unwrap_or_default().stun_servers,
        allowlist,
        resolutions,
        live: details.is_live,
    })
}

/// A SHA-256 list from `url`.
pub async fn sha256_list(cdn: &Cdn, url: &Url) -> Result<Sha256List, PeerTubeError> {
    let bad_list = |reason: String| PeerTubeError::BadSha256List {
        url: url.to_string(),
        reason,
    };
    match cdn.get(url, None, MAX_SHA_LIST_BYTES).await {
        Ok(f) => Sha256List::parse(&f.body).map_err(|e| bad_list(e.to_string())),
        Err(e) => Err(bad_list(e.to_string())),
    }
}

/// The info_hashes the video's ActivityPub object tags on its HLS playlist.
async fn allowlist(cdn: &Cdn, origin: &Url, uuid: &str, master: &Url) -> Option<Vec<[u8; 20]>> {
    let url = api_url(origin, &format!("/videos/watch/{uuid}"));
    let answer = get(
        cdn,
        origin,
        &url,
        "application/activity+json",
        MAX_API_BYTES,
    )
    .await;
    let body = match answer {
        Ok((200, body)) => body,
        Ok((status, _)) => {
            debug!(%url, status, "no ActivityPub object; info_hashes follow from the server version alone");
            return None;
        }
        Err(e) => {
            debug!(%url, error = %e, "no ActivityPub object; info_hashes follow from the server version alone");
            return None;
        }
    };
    let ap: ApVideo = match serde_json::from_slice(&body) {
        Ok(ap) => ap,
        Err(e) => {
            warn!(%url, error = %e, "the video's ActivityPub object does not read");
            return None;
        }
    };
    let hashes: Vec<[u8; 20]> = ap
        .infohashes(master.as_str())
        .iter()
        .filter_map(|h| hex20(h))
        .collect();
    (!hashes.is_empty()).then_some(hashes)
}

fn hex20(s: &str) -> Option<[u8; 20]> {
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The UUIDs of the `n` latest videos of a channel (`channel` true) or an
/// account, newest first.
pub async fn latest(
    cdn: &Cdn,
    instance: &Url,
    handle: &str,
    channel: bool,
    n: u32,
) -> Result<Vec<String>, PeerTubeError> {
    config(cdn, instance).await?;
    let kind = if channel {
        "video-channels"
    } else {
        "accounts"
    };
    let mut url = api_url(instance, &format!("/api/v1/{kind}/{handle}/videos"));
    url.query_pairs_mut()
        .append_pair("sort", "-publishedAt")
        .append_pair("count", &n.clamp(1, MAX_LATEST).to_string());
    let (status, body) = get(cdn, instance, &url, "application/json", MAX_API_BYTES).await?;
    match status {
        200 => serde_json::from_slice::<VideoList>(&body)
            .map(|l| l.data.into_iter().map(|v| v.uuid).collect())
            .map_err(|e| PeerTubeError::NotPeerTube {
                instance: host_of(instance),
                reason: format!("its video list does not read as PeerTube's: {e}"),
            }),
        404 => Err(PeerTubeError::NoSuchVideo {
            instance: host_of(instance),
            id: format!("{kind}/{handle}"),
        }),
        s => Err(PeerTubeError::Unreachable {
            instance: host_of(instance),
            reason: format!("the {kind} API answered HTTP {s}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_follow_the_server_version() {
        for (v, g) in [
            ("6.3.0", Generation::Fork),
            ("7.0.1", Generation::Fork),
            ("7.1.0", Generation::P2pml22),
            ("8.0.1", Generation::P2pml22),
            ("8.2.3-rc.1", Generation::P2pml22),
            ("9.0.0", Generation::Uuid),
        ] {
            assert_eq!(Generation::of_version(v), Some(g), "{v}");
        }
        assert_eq!(Generation::of_version("x"), None);
    }

    #[test]
    fn published_info_hashes_are_read_from_the_playlist_link() {
        let master = "https://pt.example/static/streaming-playlists/hls/u/abc-master.m3u8";
        let ap = format!(
            r#"{{"url":[{{"type":"Link","mediaType":"text/html","href":"x"}},
               {{"type":"Link","mediaType":"application/x-mpegURL","href":"{master}",
                 "tag":[{{"type":"Infohash","name":"423b4b2f444eedcd25e2e9dc968b9bcad098095a"}},
                        {{"type":"Link","name":"sha256","href":"y"}},
                        {{"type":"Infohash","name":"not hex"}}]}}]}}"#
        );
        let ap: ApVideo = serde_json::from_str(&ap).unwrap();
        let hashes: Vec<_> = ap
            .infohashes(master)
            .iter()
            .filter_map(|h| hex20(h))
            .collect();
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[0][0], 0x42);
        assert!(ap.infohashes("https://other/").is_empty());
    }
}
