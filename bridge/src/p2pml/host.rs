//! What the browser swarms ask of the daemon: the bridge knows no store,
//! no fetcher and no rate limiter, only this trait.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

/// The daemon's side of a seeded browser swarm.
pub trait Host: Send + Sync + 'static {
    /// The verified bytes of segment `id` of `stream` (the
    /// [`SwarmSpec::stream`] the swarm was joined with), from the store
    /// alone; `None` when it is not held whole and verified.
    fn segment(&self, stream: &str, id: u64) -> impl Future<Output = Option<Bytes>> + Send;

    /// Waits until `bytes` more may go out under the node's upload limit,
    /// the one every peer shares.
    fn pace(&self, bytes: usize) -> impl Future<Output = ()> + Send;

    /// `bytes` of segment data went out to a browser.
    fn uploaded(&self, bytes: u64);

    /// A browser connected or left.
    fn event(&self, event: BrowserEvent);
}

/// A browser's connection coming or going.
#[derive(Clone, Debug)]
pub enum BrowserEvent {
    /// Its data channel opened.
    Connected {
        /// The browser's tracker peer id, as text.
        peer: String,
        /// The swarm's info_hash, as its 20 characters.
        swarm: String,
        /// Where its packets come from.
        remote: SocketAddr,
    },
    /// It left, or was dropped.
    Disconnected {
        /// As in `Connected`.
        peer: String,
        /// As in `Connected`.
        swarm: String,
        /// Segment bytes sent to it over the connection's life.
        bytes: u64,
        /// Why the connection ended.
        reason: &'static str,
    },
}

/// The ids of a stream's segments held whole and verified, sorted. The
/// swarm announces them on every change.
pub type Held = Arc<Vec<u64>>;

/// One browser swarm the daemon seeds: a stream of one video, as one
/// generation of players names it.
#[derive(Clone, Debug)]
pub struct SwarmSpec {
    /// The tracker info_hash.
    pub info_hash: [u8; 20],
    /// Passed back to [`Host::segment`]; opaque to the bridge.
    pub stream: Arc<str>,
    /// What is held now, and every change to it.
    pub held: watch::Receiver<Held>,
    /// The video's own trackers (`ws:`/`wss:`), besides the configured ones.
    pub trackers: Vec<String>,
    /// For people: which video and stream this is.
    pub label: String,
    /// The protocol its browsers speak.
    pub wire: Wire,
    /// What its trackers may be sent.
    pub announce: AnnouncePolicy,
}

/// The peer protocol a swarm's browsers speak on their data channel.
#[derive(Clone, Debug)]
pub enum Wire {
    /// p2p-media-loader 2.x binary commands, segment ids from `held`.
    Binary,
    /// PeerTube's 1.0.x fork: JSON commands, and one segments map for every
    /// stream of the master.
    Fork(super::fork::ForkMaster),
}

/// What a tracker may be sent about a swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnouncePolicy {
    /// At most this many messages per window, announces and answers
    /// together: PeerTube's tracker counts them per address and
    /// info_hash, and can refuse past 15 in 5 minutes.
    pub limit: Option<(u32, Duration)>,
    /// Whether leaving sends `stopped`. A PeerTube tracker bans an address
    /// that names an info_hash it does not know, and once the instance
    /// regenerates a playlist the old info_hashes are unknown to it.
    pub stop_on_leave: bool,
}

impl Default for AnnouncePolicy {
    fn default() -> Self {
        Self {
            limit: None,
            stop_on_leave: true,
        }
    }
}

impl AnnouncePolicy {
    /// How PeerTube's tracker must be treated.
    pub fn peertube() -> Self {
        Self {
            limit: Some((15, Duration::from_secs(300))),
            stop_on_leave: false,
        }
    }
}
