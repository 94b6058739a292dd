//! The built-in WebTorrent tracker: the WebSocket rendezvous through which
//! p2p-media-loader (and PeerTube) players find each other, and the daemon's
//! seeder finds them.
//!
//! It behaves like bittorrent-tracker 11's server, which those players are
//! written against: swarms keyed by info_hash; an announce's offers go to
//! distinct random other members, one each, never back to the sender; an
//! answer goes to its `to_peer_id` if that peer is in the swarm; announces
//! without an answer get `{complete, incomplete, interval}`; a socket's
//! peer_id is fixed by its first announce, and closing the socket removes
//! it from all its swarms. On top of that it bounds everything a peer can
//! make it hold ([`TrackerLimits`]), drops silent peers after a TTL and
//! dead sockets by heartbeat, and never lets a peer's misbehaviour reach
//! another peer.
//!
//! - [`wire`]: the protocol's messages, both directions (usable by a
//!   tracker client too).
//! - [`Tracker`]: the state; [`router`] serves it over HTTP.
//! - [`LocalConnection`]: how the daemon itself is a member of the swarms
//!   it seeds, in process, exempt from limits and expiry.
//!
//! To run one: `let tracker = Tracker::new(TrackerConfig::default(),
//! shutdown.child_token());`, merge `router(tracker.clone())` into the
//! gateway's router, and serve with
//! `into_make_service_with_connect_info::<SocketAddr>()` so per-address
//! limits apply.

mod api;
mod config;
mod error;
mod local;
mod socket;
mod state;
mod swarm;
pub mod wire;

#[cfg(test)]
mod tests;

pub use api::{PeerInfo, SwarmInfo, SwarmSummary, TrackerOverview, router};
pub use config::{TrackerConfig, TrackerLimits};
pub use error::TrackerError;
pub use local::LocalConnection;
pub use state::Tracker;
