//! The tracker's HTTP face: `GET /announce` (the WebSocket), and JSON views
//! of its swarms at `GET /api/v1/tracker` and `GET /api/v1/tracker/{info_hash}`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::rejection::{ExtensionRejection, PathRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tracing::warn;

use super::socket;
use super::state::{PeerAddr, Tracker};
use super::wire::Id20;

/// The tracker's routes, to merge into the gateway's router:
/// `GET /announce` (WebSocket upgrade; a plain GET gets 426),
/// `GET /api/v1/tracker` ([`TrackerOverview`]) and
/// `GET /api/v1/tracker/{info_hash}` ([`SwarmInfo`]; the info_hash as 40
/// hex digits or as the url-encoded 20-character string). Errors are JSON
/// `{"error": "…"}`.
///
/// The peer's address comes from `ConnectInfo<SocketAddr>`: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`. Without it the
/// tracker still works, but cannot apply per-address limits or show
/// addresses.
pub fn router(tracker: Arc<Tracker>) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/api/v1/tracker", get(overview))
        .route("/api/v1/tracker/{info_hash}", get(swarm))
        .with_state(tracker)
}

/// `{"error": "…"}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> impl IntoResponse {
    #[derive(Serialize)]
    struct Error {
        error: String,
    }
    (
        status,
        Json(Error {
            error: message.into(),
        }),
    )
}

async fn announce(
    State(tracker): State<Arc<Tracker>>,
    connect: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return json_error(
                StatusCode::UPGRADE_REQUIRED,
                format!("this is a WebTorrent tracker: connect with a WebSocket ({e})"),
            )
            .into_response();
        }
    };
    let mut remote = connect.ok().map(|ConnectInfo(addr)| PeerAddr {
        ip: addr.ip().to_canonical(),
        port: Some(addr.port()),
    });
    if tracker.config.trust_forwarded_for
        && let Some(ip) = forwarded_for(&headers)
    {
        remote = Some(PeerAddr { ip, port: None });
    }
    if remote.is_none() && !tracker.warned_no_addr.swap(true, Ordering::Relaxed) {
        warn!(
            "tracker: the server gives no ConnectInfo<SocketAddr>, so per-address limits are off; serve with into_make_service_with_connect_info"
        );
    }
    socket::accept(&tracker, ws, remote)
}

/// The address our reverse proxy saw: the last `X-Forwarded-For` entry
/// (earlier ones are whatever the client claimed).
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()?
        .trim();
    last.parse::<IpAddr>()
        .or_else(|_| last.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

async fn overview(State(tracker): State<Arc<Tracker>>) -> Json<TrackerOverview> {
    Json(tracker.overview())
}

async fn swarm(
    State(tracker): State<Arc<Tracker>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let raw = match path {
        Ok(Path(raw)) => raw,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let info_hash = match parse_info_hash(&raw) {
        Some(ih) => ih,
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "info_hash must be 40 hex digits or the 20-character info_hash string, url-encoded",
            )
            .into_response();
        }
    };
    match tracker.swarm_info(&info_hash) {
        Some(info) => Json(info).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            format!("no swarm with info_hash {info_hash}"),
        )
        .into_response(),
    }
}

/// 40 hex digits, or the 20-character binary string. The two cannot be
/// confused: they differ in length.
fn parse_info_hash(raw: &str) -> Option<Id20> {
    Id20::from_hex(raw)
        .or_else(|_| Id20::from_binary_str(raw))
        .ok()
}

/// `GET /api/v1/tracker`: every swarm with its counts.
#[derive(Debug, Clone, Serialize)]
pub struct TrackerOverview {
    /// The announce interval the tracker tells peers, in seconds.
    pub interval_secs: u64,
    /// WebSockets open.
    pub sockets: usize,
    /// Swarm memberships in total.
    pub peers: usize,
    /// The swarms, by info_hash.
    pub swarms: Vec<SwarmSummary>,
}

/// One swarm in a [`TrackerOverview`].
#[derive(Debug, Clone, Serialize)]
pub struct SwarmSummary {
    /// 40 hex digits.
    pub info_hash: String,
    /// The info_hash as the 20-character string peers send (readable for
    /// p2p-media-loader, whose info_hashes are ASCII).
    pub info_hash_str: String,
    /// Members with `left: 0`.
    pub complete: usize,
    /// The other members.
    pub incomplete: usize,
    /// All members.
    pub total: usize,
    /// In-process members (the daemon).
    pub local: usize,
}

/// `GET /api/v1/tracker/{info_hash}`: one swarm and its members.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmInfo {
    /// Counts, as in the overview.
    #[serde(flatten)]
    pub summary: SwarmSummary,
    /// The members, most recently seen first.
    pub peers: Vec<PeerInfo>,
}

/// One member in a [`SwarmInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// 40 hex digits.
    pub peer_id: String,
    /// The peer_id as text, if it is printable ASCII (p2p-media-loader's
    /// are, with a `-PM0203-`-style client prefix).
    pub peer_id_ascii: Option<String>,
    /// Where its socket comes from; `null` for local members, when the
    /// server gives no address, or when
    /// [`show_remote_addresses`](super::TrackerConfig::show_remote_addresses)
    /// is off.
    pub remote: Option<String>,
    /// An in-process member (the daemon's own seeder).
    pub local: bool,
    /// Announced `left: 0`.
    pub complete: bool,
    /// Last announce, milliseconds since the Unix epoch.
    pub last_seen_unix_ms: u64,
    /// Seconds since its last announce.
    pub last_seen_secs_ago: u64,
}

impl Tracker {
    /// Every swarm with its counts (what `GET /api/v1/tracker` shows).
    pub fn overview(&self) -> TrackerOverview {
        let st = self.lock();
        let mut swarms: Vec<SwarmSummary> =
            st.swarms.iter().map(|(ih, s)| summary(ih, s)).collect();
        swarms.sort_by(|a, b| a.info_hash.cmp(&b.info_hash));
        TrackerOverview {
            interval_secs: self.config.interval_secs(),
            sockets: st.sockets,
            peers: st.peers,
            swarms,
        }
    }

    /// One swarm and its members (what `GET /api/v1/tracker/{info_hash}`
    /// shows); `None` if nobody is in it.
    pub fn swarm_info(&self, info_hash: &Id20) -> Option<SwarmInfo> {
        let st = self.lock();
        let swarm = st.swarms.get(info_hash)?;
        let now = Instant::now();
        let wall_now = SystemTime::now();
        let mut peers: Vec<PeerInfo> = swarm
            .members()
            .iter()
            .map(|m| {
                let ago = now.saturating_duration_since(m.last_seen);
                let remote = st
                    .conns
                    .get(&m.conn)
                    .and_then(|c| c.remote)
                    .filter(|_| self.config.show_remote_addresses)
                    .map(|a| a.to_string());
                let seen = wall_now
                    .checked_sub(ago)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .unwrap_or_default();
                PeerInfo {
                    peer_id: m.peer_id.to_hex(),
                    peer_id_ascii: m.peer_id.as_ascii().map(str::to_owned),
                    remote,
                    local: m.local,
                    complete: m.complete,
                    last_seen_unix_ms: u64::try_from(seen.as_millis()).unwrap_or(u64::MAX),
                    last_seen_secs_ago: ago.as_secs(),
                }
            })
            .collect();
        peers.sort_by_key(|p| std::cmp::Reverse(p.last_seen_unix_ms));
        Some(SwarmInfo {
            summary: summary(info_hash, swarm),
            peers,
        })
    }
}

fn summary(info_hash: &Id20, s: &super::swarm::Swarm) -> SwarmSummary {
    SwarmSummary {
        info_hash: info_hash.to_hex(),
        info_hash_str: info_hash.to_binary_string(),
        complete: s.complete(),
        incomplete: s.incomplete(),
        total: s.len(),
        local: s.locals(),
    }
}
