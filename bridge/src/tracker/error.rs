//! Why the tracker refuses something. Each message is written for the
//! peer: it becomes the `failure reason` of the reply, or the JSON `error`
//! of an HTTP refusal.

use super::wire::Id20;

/// A refusal of a connection or request. None of these affects any other
/// peer or the socket's other swarms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// The message was not a valid announce or scrape.
    #[error("{0}")]
    Decode(String),
    /// A socket tried to announce under a second peer_id.
    #[error(
        "this connection announced as peer_id {first}; announces as {other} are refused (use one peer_id per connection)"
    )]
    PeerIdChanged {
        /// The peer_id the connection's first announce fixed.
        first: Id20,
        /// The one it tried next.
        other: Id20,
    },
    /// Another connection is in the swarm under this peer_id.
    #[error("peer_id {0} is already in this swarm on another connection")]
    PeerIdInUse(Id20),
    /// The socket is already in as many swarms as it may be.
    #[error("this connection is already in {max} swarms, the most allowed")]
    TooManySwarmsPerSocket {
        /// [`TrackerLimits::max_swarms_per_socket`](super::TrackerLimits::max_swarms_per_socket)
        max: usize,
    },
    /// The swarm is full.
    #[error("this swarm has {max} peers, the most allowed; try again later")]
    SwarmFull {
        /// [`TrackerLimits::max_peers_per_swarm`](super::TrackerLimits::max_peers_per_swarm)
        max: usize,
    },
    /// No room for another swarm.
    #[error("the tracker holds {max} swarms, the most allowed; try again later")]
    TooManySwarms {
        /// [`TrackerLimits::max_swarms`](super::TrackerLimits::max_swarms)
        max: usize,
    },
    /// No room for another swarm member.
    #[error("the tracker holds {max} peers, the most allowed; try again later")]
    TooManyPeers {
        /// [`TrackerLimits::max_peers`](super::TrackerLimits::max_peers)
        max: usize,
    },
    /// The address already has as many sockets open as it may.
    #[error("{max} connections from this address are open, the most allowed")]
    TooManySocketsPerIp {
        /// [`TrackerLimits::max_sockets_per_ip`](super::TrackerLimits::max_sockets_per_ip)
        max: usize,
    },
    /// The tracker has as many sockets open as it may.
    #[error("the tracker has {max} connections open, the most allowed; try again later")]
    TooManySockets {
        /// [`TrackerLimits::max_sockets`](super::TrackerLimits::max_sockets)
        max: usize,
    },
    /// An answer without the fields that say where it goes.
    #[error("an answer needs to_peer_id and offer_id")]
    AnswerWithoutTarget,
    /// A scrape of every swarm.
    #[error("scraping every swarm is not supported; name the info_hash(es)")]
    ScrapeAll,
    /// A scrape of too many swarms.
    #[error("a scrape may name at most {max} info_hashes")]
    ScrapeTooLarge {
        /// [`TrackerLimits::max_scrape_info_hashes`](super::TrackerLimits::max_scrape_info_hashes)
        max: usize,
    },
    /// The socket sends faster than its rate limit.
    #[error(
        "too many messages: at most {per_second} per second (burst {burst}); messages are dropped until you slow down"
    )]
    RateLimited {
        /// [`TrackerLimits::messages_per_second`](super::TrackerLimits::messages_per_second)
        per_second: u32,
        /// [`TrackerLimits::message_burst`](super::TrackerLimits::message_burst)
        burst: u32,
    },
    /// The tracker is shutting down.
    #[error("the tracker is shutting down")]
    ShuttingDown,
}
