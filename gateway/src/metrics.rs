//! `GET /metrics` in the Prometheus text format.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::source::SegmentSource;
use crate::{GatewayState, snapshot};

pub async fn metrics<S: SegmentSource>(State(state): State<GatewayState<S>>) -> impl IntoResponse {
    let s = snapshot(&state);
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP swarmseed_{name} {help}");
        let _ = writeln!(out, "# TYPE swarmseed_{name} {kind}");
        let _ = writeln!(out, "swarmseed_{name} {value}");
    };
    metric(
        "peers_connected",
        "gauge",
        "Peers currently connected.",
        s.peers_connected as f64,
    );
    metric(
        "bytes_from_p2p_total",
        "counter",
        "Media bytes received from peers.",
        s.bytes_from_p2p as f64,
    );
    metric(
        "bytes_from_cdn_total",
        "counter",
        "Bytes received from the CDN.",
        s.bytes_from_cdn as f64,
    );
    metric(
        "bytes_from_store_total",
        "counter",
        "Bytes served from the local store.",
        s.bytes_from_store as f64,
    );
    metric(
        "bytes_sent_from_files_total",
        "counter",
        "Stored bytes the gateway sent from block files with sendfile(2), without copying them through the daemon.",
        crate::files::sent_from_files() as f64,
    );
    metric(
        "bytes_uploaded_total",
        "counter",
        "Bytes uploaded to peers.",
        s.bytes_uploaded as f64,
    );
    let _ = writeln!(
        out,
        "# HELP swarmseed_bytes_uploaded_by_protocol_total Bytes uploaded, by protocol: \
         blocks (daemons, js-libp2p browsers), bitswap (IPFS peers), p2pml (p2p-media-loader browsers), http (trustless gateway clients).\n\
         # TYPE swarmseed_bytes_uploaded_by_protocol_total counter"
    );
    for (protocol, n) in [
        ("blocks", s.bytes_uploaded_blocks),
        ("bitswap", s.bytes_uploaded_bitswap),
        ("p2pml", s.bytes_uploaded_p2pml),
        ("http", s.bytes_uploaded_http),
    ] {
        let _ = writeln!(
            out,
            "swarmseed_bytes_uploaded_by_protocol_total{{protocol=\"{protocol}\"}} {n}"
        );
    }
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP swarmseed_{name} {help}");
        let _ = writeln!(out, "# TYPE swarmseed_{name} {kind}");
        let _ = writeln!(out, "swarmseed_{name} {value}");
    };
    metric(
        "browsers_connected",
        "gauge",
        "p2p-media-loader browsers connected now.",
        s.browsers_connected as f64,
    );
    metric(
        "receipts_accepted_total",
        "counter",
        "Receipts peers signed for this node's uploads, accepted.",
        s.receipts_accepted as f64,
    );
    metric(
        "receipts_refused_total",
        "counter",
        "Receipts refused as forged, tampered, replayed, over-claiming or late.",
        s.receipts_refused as f64,
    );
    metric(
        "bytes_receipted_total",
        "counter",
        "Uploaded bytes covered by accepted receipts.",
        s.bytes_receipted as f64,
    );
    metric(
        "peers_deprioritized",
        "gauge",
        "Peers served last because they owe receipts.",
        s.peers_deprioritized as f64,
    );
    metric(
        "p2p_ratio",
        "gauge",
        "Share of fetched media bytes that came from peers.",
        s.p2p_ratio,
    );
    metric(
        "segments_stored",
        "gauge",
        "Segments in the store.",
        s.segments_stored as f64,
    );
    metric(
        "store_bytes",
        "gauge",
        "Bytes of segments in the store.",
        s.store_bytes as f64,
    );
    metric(
        "memory_cache_bytes",
        "gauge",
        "Bytes held by the memory cache of segments for players.",
        s.memory_cache_bytes as f64,
    );
    metric(
        "block_cache_bytes",
        "gauge",
        "Bytes held by the memory cache of blocks for peers.",
        s.block_cache_bytes as f64,
    );
    metric(
        "store_full_errors_total",
        "counter",
        "Segment writes refused because the store's disk is full.",
        s.store_full_errors as f64,
    );
    let r = &state.access.refused;
    let _ = writeln!(
        out,
        "# HELP swarmseed_requests_refused_total Requests refused, by rule: host (not one of the \
         gateway's names), cross_site (an origin not in gateway.cors_origins), path (a gateway \
         path this gateway did not mint), upstream (a URL gateway.allowed_origins or the \
         private-address rule refuses).\n\
         # TYPE swarmseed_requests_refused_total counter"
    );
    for (rule, n) in [
        ("host", &r.host),
        ("cross_site", &r.cross_site),
        ("path", &r.path),
        ("upstream", &r.upstream),
    ] {
        let n = n.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "swarmseed_requests_refused_total{{rule=\"{rule}\"}} {n}"
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
