//! Node and video endpoints: `/api/v1/node`, `/api/v1/videos`.

use std::future::Future;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::GatewayState;
use crate::error::ApiError;
use crate::hls::paths::parse_upstream;
use crate::source::SegmentSource;

/// `GET /api/v1/node`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    pub peer_id: String,
    /// Every listen address with `/p2p/<peer id>`, the browser-dialable
    /// `/webrtc-direct/certhash/…` among them.
    pub addrs: Vec<String>,
    /// The addresses a browser can dial: WebRTC-direct with certhash, on a
    /// concrete IP, with `/p2p/<peer id>`.
    #[serde(default)]
    pub browser_addrs: Vec<String>,
    /// The node's peer id in p2p-media-loader swarms (WebTorrent trackers),
    /// when it seeds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webtorrent_peer_id: Option<String>,
}

/// One seeded video in `GET /api/v1/videos`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VideoStatus {
    pub id: String,
    pub url: String,
    pub segments_total: u64,
    pub segments_stored: u64,
    /// `fetching`, `complete` or `failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The PeerTube page the video was read from, for a PeerTube video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peertube: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRequest {
    pub url: String,
    #[serde(default)]
    pub id: Option<String>,
    /// The `swarmId` the video's p2p-media-loader pages set.
    #[serde(default)]
    pub swarm_id: Option<String>,
    /// The WebTorrent trackers (`ws://`, `wss://`) the video's pages use.
    #[serde(default)]
    pub trackers: Vec<String>,
    /// With a PeerTube channel or account URL: seed its this many latest videos.
    #[serde(default)]
    pub latest: Option<u32>,
    /// A SHA-256 list of the video's segments in PeerTube's
    /// `segments-sha256.json` shape, trusted as the origin's word.
    #[serde(default)]
    pub segments_sha256: Option<String>,
}

/// How a video is seeded, besides its URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedOptions {
    /// The video's id; by default derived from its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Takes the manifest URL's place in p2p-media-loader swarm ids, as a
    /// page's `swarmId` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_id: Option<String>,
    /// The video's own WebTorrent trackers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trackers: Vec<String>,
    /// The PeerTube page (watch or API URL) the video is read from again
    /// to follow its regenerated playlists; set by the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peertube: Option<String>,
    /// A SHA-256 list of the video's segments (PeerTube's
    /// `segments-sha256.json` shape), trusted as the origin's word: every
    /// byte is checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_sha256: Option<String>,
}

/// The longest `swarm_id` accepted; pages use a URL or a short name.
const MAX_SWARM_ID: usize = 2048;
/// The most trackers one video may name.
const MAX_TRACKERS: usize = 16;
/// The most videos one `latest` request seeds (PeerTube's largest page).
const MAX_LATEST: u32 = 100;

/// What the daemon offers beyond bytes. The defaults describe a node with no swarm.
pub trait NodeApi: Send + Sync + 'static {
    fn node_info(&self) -> impl Future<Output = Option<NodeInfo>> + Send {
        async { None }
    }
    fn videos(&self) -> Vec<VideoStatus> {
        Vec::new()
    }
    /// Starts seeding; the error is shown to the client.
    fn seed(
        &self,
        url: Url,
        options: SeedOptions,
    ) -> impl Future<Output = Result<VideoStatus, String>> + Send {
        let _ = (url, options);
        async { Err("this node does not seed".to_owned()) }
    }
    /// Seeds the `n` latest videos of a PeerTube channel or account.
    fn seed_latest(
        &self,
        url: Url,
        n: u32,
        options: SeedOptions,
    ) -> impl Future<Output = Result<Vec<VideoStatus>, String>> + Send {
        let _ = (url, n, options);
        async { Err("this node does not seed".to_owned()) }
    }
    /// The video's CID map as JSON, if this node has one.
    fn cidmap(&self, id: &str) -> impl Future<Output = Option<Bytes>> + Send {
        let _ = id;
        async { None }
    }
    /// Pinned videos.
    fn pins(&self) -> impl Future<Output = Vec<crate::PinStatus>> + Send {
        async { Vec::new() }
    }
    /// Pins and seeds a video; the error is shown to the client.
    fn pin(
        &self,
        url: Url,
        options: SeedOptions,
    ) -> impl Future<Output = Result<crate::PinStatus, String>> + Send {
        let _ = (url, options);
        async { Err("this node does not pin".to_owned()) }
    }
    /// Unpins a video; `Ok(false)` if no such pin.
    fn unpin(&self, id: &str) -> impl Future<Output = Result<bool, String>> + Send {
        let _ = id;
        async { Ok(false) }
    }
}

/// Mutating requests carry `Authorization: Bearer <data_dir/api.token>`.
pub(crate) fn authorize<S>(state: &GatewayState<S>, headers: &HeaderMap) -> Result<(), ApiError> {
    match state.access.authorized(headers) {
        true => Ok(()),
        false => Err(ApiError::Unauthorized),
    }
}

/// The authorized body of `POST /api/v1/videos` and `/api/v1/pins`:
/// `{"url": …, "id"?: …, "swarm_id"?: …, "trackers"?: […], "latest"?: N}`,
/// with the URL checked as any upstream is.
pub(crate) fn authorized_video<S>(
    state: &GatewayState<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Url, SeedOptions), ApiError> {
    authorized_request(state, headers, body).map(|(url, options, _)| (url, options))
}

fn authorized_request<S>(
    state: &GatewayState<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Url, SeedOptions, Option<u32>), ApiError> {
    authorize(state, headers)?;
    let req: SeedRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"url\": …, \"id\"?: …, \"swarm_id\"?: …, \"trackers\"?: […], \"latest\"?: N, \"segments_sha256\"?: …}}: {e}"
        ))
    })?;
    if req
        .swarm_id
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > MAX_SWARM_ID)
    {
        return Err(ApiError::BadRequest(format!(
            "swarm_id must be 1 to {MAX_SWARM_ID} bytes"
        )));
    }
    if req.trackers.len() > MAX_TRACKERS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_TRACKERS} trackers"
        )));
    }
    for t in &req.trackers {
        match Url::parse(t) {
            Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => {}
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "tracker {t:?} is not a ws:// or wss:// URL"
                )));
            }
        }
    }
    let url = parse_upstream(&req.url)?;
    state.access.check_upstream(&url, true)?;
    if let Some(list) = &req.segments_sha256 {
        let list = parse_upstream(list)?;
        state.access.check_upstream(&list, true)?;
    }
    if req.latest.is_some_and(|n| n == 0 || n > MAX_LATEST) {
        return Err(ApiError::BadRequest(format!(
            "latest must be 1 to {MAX_LATEST}"
        )));
    }
    Ok((
        url,
        SeedOptions {
            id: req.id,
            swarm_id: req.swarm_id,
            trackers: req.trackers,
            peertube: None,
            segments_sha256: req.segments_sha256,
        },
        req.latest,
    ))
}

pub async fn node<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
) -> Result<Json<NodeInfo>, ApiError> {
    state
        .source
        .node_info()
        .await
        .map(Json)
        .ok_or(ApiError::NotFound)
}

pub async fn videos<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
) -> Json<Vec<VideoStatus>> {
    Json(state.source.videos())
}

pub async fn seed<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (url, options, latest) = authorized_request(&state, &headers, &body)?;
    if let Some(n) = latest {
        let statuses = state
            .source
            .seed_latest(url, n, options)
            .await
            .map_err(ApiError::BadRequest)?;
        return Ok((StatusCode::ACCEPTED, Json(statuses)).into_response());
    }
    let status = state
        .source
        .seed(url, options)
        .await
        .map_err(ApiError::BadRequest)?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

pub async fn cidmap<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let map = state.source.cidmap(&id).await.ok_or(ApiError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], map).into_response())
}
