//! The composed libp2p behaviour.

use std::time::Duration;

use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore, store::MemoryStoreConfig};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, identify, mdns, ping, relay};

/// Gossip messages stay small (STACK trap 8): announcements and map pointers only.
pub const MAX_GOSSIP_BYTES: usize = 16 * 1024;
/// The swarm's own DHT, where rooms are found.
pub const SWARMSEED_KAD: StreamProtocol = StreamProtocol::new("/swarmseed/kad/1.0.0");
/// The IPFS DHT's protocol (Amino).
pub const IPFS_KAD: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// Objects provided on the IPFS DHT at most: about 170 hours of video in
/// 6 s segments; a provided key costs its record, a few hundred bytes.
pub const MAX_PROVIDED: usize = 100_000;
/// Rooms a node may be in; the default filter's 100 would refuse a seeder's 101st video.
const MAX_ROOMS: usize = 10_000;
/// Pings find dead connections: a closed browser tab's WebRTC connection
/// sends nothing that says it has gone. libp2p-ping reports the second
/// failure in a row, and the node then closes the connection: within about
/// 30 s of the peer's going.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub blocked: allow_block_list::Behaviour<BlockedPeers>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<MemoryStore>,
    /// The IPFS DHT, when `p2p.ipfs_dht` is on.
    pub ipfs_kad: Toggle<kad::Behaviour<MemoryStore>>,
    pub gossipsub: gossipsub::Behaviour<
        gossipsub::IdentityTransform,
        gossipsub::MaxCountSubscriptionFilter<gossipsub::AllowAllSubscriptionFilter>,
    >,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Circuit relay v2 server, for browsers to meet each other.
    pub relay: Toggle<relay::Behaviour>,
    /// Outbound streams of the block, receipt and Bitswap protocols.
    pub stream: libp2p_stream::Behaviour,
    /// Inbound streams of the block, receipt and Bitswap protocols, queued.
    pub inbound: super::inbound::Behaviour,
}

pub fn build(
    key: &Keypair,
    max_connections: u32,
    ipfs_dht: bool,
    mdns_on: bool,
    relay: Option<&bridge::relay::RelayLimits>,
    acceptor: super::inbound::Acceptor,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_secs(1))
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .build()?;
    let filter = gossipsub::MaxCountSubscriptionFilter {
        filter: gossipsub::AllowAllSubscriptionFilter {},
        max_subscribed_topics: MAX_ROOMS,
        max_subscriptions_per_request: MAX_ROOMS,
    };
    let gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Signed(key.clone()),
        gossip_config,
        filter,
    )
    .map_err(|e| e.to_string())?;
    let mut kad_config = kad::Config::new(SWARMSEED_KAD);
    kad_config.set_provider_publication_interval(Some(Duration::from_secs(600)));
    let mut kad = kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_config);
    // Every daemon answers DHT queries, so daemons on one LAN or loopback
    // without public addresses still find each other's rooms.
    kad.set_mode(Some(kad::Mode::Server));
    let ipfs_kad = ipfs_dht.then(|| {
        let config = kad::Config::new(IPFS_KAD);
        // A seeder provides every object it holds: far more than the
        // store's default of 1024 keys.
        let store = MemoryStore::with_config(
            peer_id,
            MemoryStoreConfig {
                max_provided_keys: MAX_PROVIDED,
                ..MemoryStoreConfig::default()
            },
        );
        // A client of the IPFS DHT: it provides and looks up, and leaves
        // answering queries to nodes known to be reachable. Its listen
        // addresses become external ones (for provider records), which
        // would otherwise switch it to serving.
        let mut kad = kad::Behaviour::with_config(peer_id, store, config);
        kad.set_mode(Some(kad::Mode::Client));
        kad
    });
    let mdns = if mdns_on {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?)
    } else {
        None
    };
    Ok(Behaviour {
        limits: connection_limits::Behaviour::new(
            ConnectionLimits::default()
                .with_max_established(Some(max_connections))
                .with_max_established_per_peer(Some(4)),
        ),
        blocked: allow_block_list::Behaviour::default(),
        identify: identify::Behaviour::new(identify::Config::new(
            "/swarmseed/1.0.0".into(),
            key.public(),
        )),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_EVERY)
                .with_timeout(PING_TIMEOUT),
        ),
        kad,
        ipfs_kad: ipfs_kad.into(),
        gossipsub,
        mdns: mdns.into(),
        relay: relay.map(|l| bridge::relay::server(peer_id, l)).into(),
        stream: libp2p_stream::Behaviour::new(),
        inbound: super::inbound::Behaviour::new(acceptor),
    })
}
