//! The swarmseed HTTP gateway: the HLS proxy players point at, the JSON
//! APIs, server-sent events and Prometheus metrics.
//!
//! The gateway knows nothing of stores, peers or CDNs. It asks a
//! [`SegmentSource`] for playlists and segments, and the daemon supplies one.

mod access;
mod api;
mod error;
mod events;
mod files;
#[doc(hidden)]
pub mod fuzz_api;
mod hls;
mod ipfs;
mod metrics;
mod node;
mod pins;
mod proofs;
mod range;
mod segments;
mod serve;
mod source;
mod telemetry;
mod upstream;
mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

pub use access::{Access, Refused};
pub use error::ApiError;
pub use files::{FileSpan, StoredFiles, sent_from_files};
pub use hls::paths::{PathKey, PathKind, Paths, VideoTag, ipfs_cid};
pub use hls::rewrite::{References, RewriteError, references, rewrite_playlist};
pub use node::{NodeApi, NodeInfo, SeedOptions, SeedRequest, VideoStatus};
pub use pins::PinStatus;
pub use proofs::ProofsApi;
pub use serve::{PerIp, ServeLimits, serve};
pub use source::{
    ByteRange, Delivery, FileLayout, IpfsBlock, Origin, Playlist, Segment, SegmentKey,
    SegmentSource, SourceError, StoreUsage, Streaming,
};
pub use telemetry::{Counters, Event, Stats, Telemetry, Upload};
pub use upstream::{AllowedOrigin, Refusal, UpstreamPolicy, is_private};
pub use web::{CONTENT_SECURITY_POLICY, WebAsset, WebAssets};

/// API request bodies are small JSON documents; anything larger is refused.
const MAX_REQUEST_BODY: usize = 64 * 1024;

/// Everything the handlers share.
pub struct GatewayState<S> {
    pub source: Arc<S>,
    pub telemetry: Arc<Telemetry>,
    /// Cancelled when the daemon shuts down, so long-lived responses (SSE) end.
    /// Behind an `Arc` because the state is cloned for every request, and
    /// cloning a token takes its lock, which every request would contend on.
    pub shutdown: Arc<CancellationToken>,
    /// Names, origins, tokens and the path key: who may ask for what.
    pub access: Arc<Access>,
    /// The web page's files; none answers `GET /` with 404.
    pub web: Option<Arc<WebAssets>>,
}

impl<S> Clone for GatewayState<S> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            telemetry: self.telemetry.clone(),
            shutdown: self.shutdown.clone(),
            access: self.access.clone(),
            web: self.web.clone(),
        }
    }
}

/// Builds the gateway's router.
pub fn router<S: SegmentSource + NodeApi + ProofsApi>(state: GatewayState<S>) -> Router {
    router_with(state, Router::new())
}

/// The gateway's router with `extra` routes (the tracker) served on the same
/// listener, under the same access rules.
pub fn router_with<S: SegmentSource + NodeApi + ProofsApi>(
    state: GatewayState<S>,
    extra: Router,
) -> Router {
    let access = state.access.clone();
    // On the two handlers that read a body only: a router-wide layer would
    // cost every request, the hit path's too, a layer of its own.
    let limit = DefaultBodyLimit::max(MAX_REQUEST_BODY);
    Router::new()
        .route("/", get(web::index::<S>))
        .route("/web/{file}", get(web::file::<S>))
        .route("/hls", get(hls::top_playlist::<S>))
        .route("/hls/pl/{token}/{file}", get(hls::child_playlist::<S>))
        .route("/hls/seg/{*rest}", get(segments::segment::<S>))
        .route("/ipfs/{*rest}", get(ipfs::ipfs::<S>))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/stats", get(api::stats::<S>))
        .route("/api/v1/events", get(events::events::<S>))
        .route("/api/v1/node", get(node::node::<S>))
        .route(
            "/api/v1/videos",
            get(node::videos::<S>).post(node::seed::<S>.layer(limit)),
        )
        .route("/api/v1/videos/{id}/cidmap", get(node::cidmap::<S>))
        .route("/api/v1/proofs/epochs", get(proofs::epochs::<S>))
        .route("/api/v1/proofs/epochs/{n}", get(proofs::epoch::<S>))
        .route(
            "/api/v1/proofs/receipts",
            get(proofs::receipts::<S>).post(proofs::submit::<S>.layer(limit)),
        )
        .route("/api/v1/proofs/receipts/{hash}", get(proofs::receipt::<S>))
        .route("/api/v1/proofs/export", get(proofs::export::<S>))
        .route("/api/v1/proofs/peers", get(proofs::peers::<S>))
        .route(
            "/api/v1/pins",
            get(pins::list::<S>).post(pins::add::<S>.layer(limit)),
        )
        .route(
            "/api/v1/pins/{id}",
            axum::routing::delete(pins::remove::<S>),
        )
        .route("/metrics", get(metrics::metrics::<S>))
        .fallback(api::not_found)
        .with_state(state)
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(access, access::guard))
}

/// The stats snapshot served by `/api/v1/stats`, SSE and `/metrics`.
pub(crate) fn snapshot<S: SegmentSource>(state: &GatewayState<S>) -> Stats {
    state
        .telemetry
        .stats(state.source.store_usage(), state.source.peers_connected())
}
