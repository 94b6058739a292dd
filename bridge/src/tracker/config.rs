//! How the tracker behaves ([`TrackerConfig`]) and how much any one peer
//! can make it hold ([`TrackerLimits`]).

use std::time::Duration;

/// Timing and policy of a [`Tracker`](super::Tracker). `Default` gives the
/// values of bittorrent-tracker's server, which browsers are tuned for.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// The `interval` announce replies carry: how often peers re-announce.
    /// bittorrent-tracker's WebSocket server sends 120 s, and p2p-media-loader
    /// adopts whatever it is told.
    pub interval: Duration,
    /// A peer that has not announced in a swarm for this long is dropped
    /// from it, even though its socket may still be open (a tab in the
    /// background, a client that stopped announcing). Twice the interval plus
    /// slack, so one lost or late announce does not evict anybody.
    pub peer_ttl: Duration,
    /// How often the sweeper looks for expired peers.
    pub sweep_interval: Duration,
    /// How often each socket is pinged. A socket that has sent nothing (not
    /// even a pong) between two pings is closed, so a vanished browser
    /// leaves its swarms within two ping intervals rather than at TTL.
    pub ping_interval: Duration,
    /// A send to a peer that takes longer than this (its TCP window stays
    /// shut) closes that peer's socket, so one stuck reader cannot pile up
    /// memory or stall its own heartbeats.
    pub send_timeout: Duration,
    /// A socket that has been in no swarm for this long is closed: an open
    /// socket costs a slot of [`TrackerLimits::max_sockets_per_ip`] even if
    /// it never announces.
    pub idle_timeout: Duration,
    /// Relay a newcomer's offers to the in-process members
    /// ([`Tracker::connect_local`](super::Tracker::connect_local), the
    /// daemon's own seeder) first, one each, and only the rest to random
    /// members. A seeding tracker exists so that browsers find the seeder;
    /// leaving it to chance would reach it with probability offers/members.
    pub offer_to_local_first: bool,
    /// Take the client address from the last entry of `X-Forwarded-For`
    /// (the one our own reverse proxy appended) instead of the TCP peer.
    /// Only for a tracker behind a reverse proxy: otherwise anyone can claim
    /// any address and dodge [`TrackerLimits::max_sockets_per_ip`].
    pub trust_forwarded_for: bool,
    /// Show peers' IP addresses in `GET /api/v1/tracker/{info_hash}`.
    /// Those are viewers' addresses: turn this off on a public gateway
    /// whose API anyone can read.
    pub show_remote_addresses: bool,
    /// What one peer may make the tracker hold.
    pub limits: TrackerLimits,
}

impl TrackerConfig {
    /// The defaults, re-timed around `interval`: TTL `2 × interval + 30 s`,
    /// a sweep every quarter TTL. The heartbeat and other timeouts are kept.
    pub fn with_interval(interval: Duration) -> Self {
        let peer_ttl = interval * 2 + Duration::from_secs(30);
        Self {
            interval,
            peer_ttl,
            sweep_interval: peer_ttl / 4,
            ..Self::default()
        }
    }

    /// The interval in whole seconds as sent on the wire (at least 1, since
    /// clients treat 0 as "keep your own").
    pub(crate) fn interval_secs(&self) -> u64 {
        self.interval.as_secs().max(1)
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(120),
            peer_ttl: Duration::from_secs(270),
            sweep_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(180),
            offer_to_local_first: true,
            trust_forwarded_for: false,
            show_remote_addresses: true,
            limits: TrackerLimits::default(),
        }
    }
}

/// Bounds on everything a remote peer can make the tracker hold. Going over
/// one costs only the peer that did it: its request gets a `failure reason`
/// (or its socket is closed with a reason), and nobody else is affected.
///
/// In-process members ([`Tracker::connect_local`](super::Tracker::connect_local))
/// are exempt from all of these: they are the daemon itself, bounded by its
/// own configuration, and must stay in every swarm they seed.
#[derive(Debug, Clone)]
pub struct TrackerLimits {
    /// Largest WebSocket message (and frame) accepted; a bigger one closes
    /// the socket with code 1009. p2p-media-loader announces carry 5 offers
    /// of ~1-3 KB of SDP each, so 64 KiB leaves ample room.
    pub max_message_bytes: usize,
    /// Offers relayed per announce; the rest are dropped with a
    /// `warning message`. bittorrent-tracker clients send at most 5, and
    /// each offer costs a message to another peer.
    pub max_offers_per_announce: usize,
    /// Swarms one socket may be a member of at once. A p2p-media-loader page
    /// joins one or two (video and audio stream) per player.
    pub max_swarms_per_socket: usize,
    /// WebSocket connections open at once from one IP address. Generous,
    /// because many viewers can share one address behind NAT.
    pub max_sockets_per_ip: usize,
    /// Do not apply [`max_sockets_per_ip`](Self::max_sockets_per_ip) to
    /// loopback clients: a reverse proxy on the same host makes every
    /// viewer look like 127.0.0.1 (unless `trust_forwarded_for` is set),
    /// and local tools and tests connect from there.
    pub exempt_loopback_from_ip_limit: bool,
    /// WebSocket connections open at once in total.
    pub max_sockets: usize,
    /// Swarms (distinct info_hashes) at once; an announce that would create
    /// one more is refused.
    pub max_swarms: usize,
    /// Members of one swarm; further newcomers are refused until some leave.
    pub max_peers_per_swarm: usize,
    /// Swarm memberships in total (a socket in three swarms counts three).
    pub max_peers: usize,
    /// Info hashes one scrape may name.
    pub max_scrape_info_hashes: usize,
    /// Sustained messages per second from one socket (token bucket refill).
    pub messages_per_second: u32,
    /// Messages one socket may send in a burst (token bucket size). Beyond
    /// it, messages are dropped and the first drop is answered with a
    /// `failure reason`.
    pub message_burst: u32,
    /// Messages queued towards one socket (relayed offers and answers,
    /// replies). A peer that does not read fast enough loses messages
    /// beyond this rather than making the tracker buffer them.
    pub outbox_messages: usize,
    /// The same queue for in-process members, which should always keep up
    /// but may be in many swarms at once.
    pub local_outbox_messages: usize,
}

impl Default for TrackerLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_offers_per_announce: 10,
            max_swarms_per_socket: 20,
            max_sockets_per_ip: 64,
            exempt_loopback_from_ip_limit: true,
            max_sockets: 8192,
            max_swarms: 10_000,
            max_peers_per_swarm: 2_000,
            max_peers: 50_000,
            max_scrape_info_hashes: 64,
            messages_per_second: 10,
            message_burst: 50,
            outbox_messages: 64,
            local_outbox_messages: 4096,
        }
    }
}
