//! Counters and events shared by the gateway and the daemon.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::source::StoreUsage;

/// Monotonic byte counters. The daemon adds what it fetches; the gateway
/// adds what it serves from the store.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_from_p2p: AtomicU64,
    pub bytes_from_cdn: AtomicU64,
    pub bytes_from_store: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    /// Receipts peers signed for blocks this node sent, accepted and kept.
    pub receipts_accepted: AtomicU64,
    /// Receipts refused: forged, tampered, replayed, over-claiming or late.
    pub receipts_refused: AtomicU64,
    /// Bytes the accepted receipts cover.
    pub bytes_receipted: AtomicU64,
    /// Peers now served last because they owe receipts (a gauge).
    pub peers_deprioritized: AtomicU64,
    /// Of `bytes_uploaded`: blocks over `/swarmseed/blocks/1.0.0`, to
    /// daemons and js-libp2p browsers.
    pub bytes_uploaded_blocks: AtomicU64,
    /// Of `bytes_uploaded`: blocks over Bitswap, to IPFS peers.
    pub bytes_uploaded_bitswap: AtomicU64,
    /// Of `bytes_uploaded`: segments to p2p-media-loader browsers.
    pub bytes_uploaded_p2pml: AtomicU64,
    /// Of `bytes_uploaded`: blocks and CARs from the trustless gateway
    /// (`/ipfs/`), to HTTP clients.
    pub bytes_uploaded_http: AtomicU64,
    /// p2p-media-loader browsers connected now (a gauge).
    pub browsers_connected: AtomicU64,
}

/// The protocols bytes are uploaded over, each with its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    Blocks,
    Bitswap,
    P2pml,
    Http,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` uploaded bytes in the total and in their protocol's counter.
    pub fn uploaded(&self, protocol: Upload, n: u64) {
        Self::add(&self.bytes_uploaded, n);
        Self::add(
            match protocol {
                Upload::Blocks => &self.bytes_uploaded_blocks,
                Upload::Bitswap => &self.bytes_uploaded_bitswap,
                Upload::P2pml => &self.bytes_uploaded_p2pml,
                Upload::Http => &self.bytes_uploaded_http,
            },
            n,
        );
    }
}

/// `GET /api/v1/stats` (DESIGN §6).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub peers_connected: u64,
    pub bytes_from_p2p: u64,
    pub bytes_from_cdn: u64,
    pub bytes_from_store: u64,
    pub bytes_uploaded: u64,
    /// Share of fetched media bytes that came from peers rather than the CDN.
    pub p2p_ratio: f64,
    pub segments_stored: u64,
    pub store_bytes: u64,
    /// Receipts peers signed for this node's uploads, accepted and kept.
    pub receipts_accepted: u64,
    /// Receipts refused as forged, tampered, replayed, over-claiming or late.
    pub receipts_refused: u64,
    /// Bytes covered by accepted receipts.
    pub bytes_receipted: u64,
    /// Peers served last because they take blocks without signing receipts.
    pub peers_deprioritized: u64,
    /// Segment writes refused because the store's disk is full.
    pub store_full_errors: u64,
    /// Memory held by the cache of segments for players (`store.memory_cache` bounds it).
    pub memory_cache_bytes: u64,
    /// Memory held by the cache of blocks for peers (`store.block_cache` bounds it).
    pub block_cache_bytes: u64,
    /// Of `bytes_uploaded`: to daemons and js-libp2p browsers, by the block protocol.
    pub bytes_uploaded_blocks: u64,
    /// Of `bytes_uploaded`: to IPFS peers, by Bitswap.
    pub bytes_uploaded_bitswap: u64,
    /// Of `bytes_uploaded`: to p2p-media-loader browsers.
    pub bytes_uploaded_p2pml: u64,
    /// Of `bytes_uploaded`: to HTTP clients of the trustless gateway (`/ipfs/`).
    pub bytes_uploaded_http: u64,
    /// p2p-media-loader browsers connected now.
    pub browsers_connected: u64,
}

/// Server-sent events of `GET /api/v1/events`.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// A segment came from the CDN; `reason` says why peers were not used.
    FallbackCdn {
        url: String,
        bytes: u64,
        reason: &'static str,
    },
    PeerConnected {
        peer: String,
    },
    PeerDisconnected {
        peer: String,
    },
    /// A p2p-media-loader browser's data channel opened.
    BrowserConnected {
        peer: String,
        swarm: String,
        remote: String,
    },
    /// A p2p-media-loader browser left; `bytes` were sent to it.
    BrowserDisconnected {
        peer: String,
        swarm: String,
        bytes: u64,
        reason: &'static str,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::FallbackCdn { .. } => "fallback-cdn",
            Event::PeerConnected { .. } => "peer-connected",
            Event::PeerDisconnected { .. } => "peer-disconnected",
            Event::BrowserConnected { .. } => "browser-connected",
            Event::BrowserDisconnected { .. } => "browser-disconnected",
        }
    }
}

pub struct Telemetry {
    pub counters: Counters,
    events: broadcast::Sender<Event>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        // Slow SSE clients lag and skip events rather than hold memory.
        let (events, _) = broadcast::channel(256);
        Self {
            counters: Counters::default(),
            events,
        }
    }

    pub fn emit(&self, event: Event) {
        // No subscribers is the normal case.
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn stats(&self, usage: StoreUsage, peers_connected: u64) -> Stats {
        let c = &self.counters;
        let p2p = c.bytes_from_p2p.load(Ordering::Relaxed);
        let cdn = c.bytes_from_cdn.load(Ordering::Relaxed);
        let fetched = p2p + cdn;
        Stats {
            peers_connected,
            bytes_from_p2p: p2p,
            bytes_from_cdn: cdn,
            bytes_from_store: c.bytes_from_store.load(Ordering::Relaxed),
            bytes_uploaded: c.bytes_uploaded.load(Ordering::Relaxed),
            p2p_ratio: if fetched == 0 {
                0.0
            } else {
                p2p as f64 / fetched as f64
            },
            segments_stored: usage.segments,
            store_bytes: usage.bytes,
            receipts_accepted: c.receipts_accepted.load(Ordering::Relaxed),
            receipts_refused: c.receipts_refused.load(Ordering::Relaxed),
            bytes_receipted: c.bytes_receipted.load(Ordering::Relaxed),
            peers_deprioritized: c.peers_deprioritized.load(Ordering::Relaxed),
            store_full_errors: usage.full_errors,
            memory_cache_bytes: usage.memory_cache_bytes,
            block_cache_bytes: usage.block_cache_bytes,
            bytes_uploaded_blocks: c.bytes_uploaded_blocks.load(Ordering::Relaxed),
            bytes_uploaded_bitswap: c.bytes_uploaded_bitswap.load(Ordering::Relaxed),
            bytes_uploaded_p2pml: c.bytes_uploaded_p2pml.load(Ordering::Relaxed),
            bytes_uploaded_http: c.bytes_uploaded_http.load(Ordering::Relaxed),
            browsers_connected: c.browsers_connected.load(Ordering::Relaxed),
        }
    }
}
