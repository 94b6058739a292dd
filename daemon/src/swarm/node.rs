//! The task that owns the libp2p `Swarm`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use gateway::{Event as GatewayEvent, Telemetry};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::identity::Keypair;
use libp2p::kad::{self, GetProvidersOk, QueryResult, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, identify, mdns, noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::behaviour::{self, Behaviour, BehaviourEvent, MAX_GOSSIP_BYTES};
use super::bitswap_client::Wants;
use super::inbound::Acceptor;
use super::{Command, RoomEvent, Swarm, bitswap, wire};
use crate::video::{room_key, room_topic};

/// Everything the node needs from the config.
pub struct SwarmSettings {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    /// The IPFS DHT, with the nodes to start from; none stays out of it.
    pub ipfs_dht: Option<Vec<Multiaddr>>,
    pub mdns: bool,
    pub max_connections: u32,
    /// Circuit relay limits; none turns the relay off.
    pub relay: Option<bridge::relay::RelayLimits>,
}

/// How often rooms look for new members on the DHT.
const DISCOVERY_EVERY: Duration = Duration::from_secs(10);
/// A CID's key on the IPFS DHT: its multihash, so CIDv0 and CIDv1 of one
/// block, and its raw and dag-pb forms, meet at one key as in IPFS.
fn ipfs_key(cid: &cid::Cid) -> RecordKey {
    RecordKey::new(&cid.hash().to_bytes())
}

/// How long a penalized peer stays blocked.
const BLOCK_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("building the swarm: {0}")]
    Build(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
}

/// Builds the swarm, starts listening and spawns its task. Room events go to `events`.
pub fn start(
    key: Keypair,
    webrtc: bridge::transport::WebRtcDirect,
    settings: SwarmSettings,
    telemetry: Arc<Telemetry>,
    events: mpsc::Sender<RoomEvent>,
    shutdown: CancellationToken,
) -> Result<(Swarm, tokio::task::JoinHandle<()>), SwarmError> {
    let build = |e: &dyn std::fmt::Display| SwarmError::Build(e.to_string());
    let acceptor = Acceptor::default();
    let mut swarm = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_other_transport(|key| Ok(bridge::transport::webrtc_direct(key, webrtc)))
        .map_err(|e| build(&e))?
        .with_other_transport(|key| {
            bridge::transport::websocket(key).map_err(|e| Box::new(e) as Box<_>)
        })
        .map_err(|e| build(&e))?
        .with_dns()
        .map_err(|e| build(&e))?
        .with_behaviour(|key| {
            behaviour::build(
                key,
                settings.max_connections,
                settings.ipfs_dht.is_some(),
                settings.mdns,
                settings.relay.as_ref(),
                acceptor.clone(),
            )
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    for addr in &settings.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| SwarmError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    }
    for addr in settings.ipfs_dht.iter().flatten() {
        if let Some(Protocol::P2p(peer)) = addr.iter().last()
            && let Some(kad) = swarm.behaviour_mut().ipfs_kad.as_mut()
        {
            kad.add_address(&peer, addr.clone());
        }
    }
    for addr in settings
        .bootstrap
        .iter()
        .chain(settings.ipfs_dht.iter().flatten())
    {
        if let Some(Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }
    let (tx, rx) = mpsc::channel(256);
    let peers = Arc::new(AtomicU64::new(0));
    let wants = Arc::new(Wants::default());
    let handle = Swarm {
        tx,
        peer_id: *swarm.local_peer_id(),
        control: swarm.behaviour().stream.new_control(),
        acceptor,
        peers: peers.clone(),
        wants: wants.clone(),
    };
    let node = Node {
        swarm,
        rx,
        events,
        telemetry,
        peers,
        rooms: HashMap::new(),
        listen: Vec::new(),
        blocked_until: HashMap::new(),
        bootstrapped: settings.bootstrap.is_empty(),
        ipfs_peers: HashSet::new(),
        wants,
        ipfs_bootstrapped: settings.ipfs_dht.as_ref().is_none_or(Vec::is_empty),
        ipfs_lookups: HashMap::new(),
        ipfs_unannounced: Vec::new(),
    };
    let task = tokio::spawn(node.run(shutdown));
    Ok((handle, task))
}

struct Node {
    swarm: libp2p::Swarm<Behaviour>,
    rx: mpsc::Receiver<Command>,
    events: mpsc::Sender<RoomEvent>,
    telemetry: Arc<Telemetry>,
    peers: Arc<AtomicU64>,
    /// Joined rooms, by topic hash.
    rooms: HashMap<TopicHash, String>,
    listen: Vec<Multiaddr>,
    blocked_until: HashMap<PeerId, tokio::time::Instant>,
    bootstrapped: bool,
    /// Connected peers that offer Bitswap and not the block protocol: IPFS
    /// nodes, asked for blocks over Bitswap.
    ipfs_peers: HashSet<PeerId>,
    wants: Arc<Wants>,
    ipfs_bootstrapped: bool,
    /// Provider lookups on the IPFS DHT, answered at their first providers.
    ipfs_lookups: HashMap<kad::QueryId, oneshot::Sender<Vec<PeerId>>>,
    /// CIDs to provide on the IPFS DHT once it has peers.
    ipfs_unannounced: Vec<cid::Cid>,
}

impl Node {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut discovery = tokio::time::interval(DISCOVERY_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(command) = self.rx.recv() => self.command(command),
                event = self.swarm.select_next_some() => self.event(event).await,
                _ = discovery.tick() => self.discover(),
            }
        }
        info!("swarm stopped");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Join { video } => {
                let topic = IdentTopic::new(room_topic(&video));
                if self.rooms.insert(topic.hash(), video.clone()).is_none() {
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                        warn!(video, error = %e, "cannot join room");
                    }
                    let params = quiet_room_scoring();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_topic_params(topic, params);
                    let key = RecordKey::new(&room_key(&video));
                    if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key.clone()) {
                        debug!(video, error = %e, "cannot provide the room key yet");
                    }
                    self.swarm.behaviour_mut().kad.get_providers(key);
                    info!(video, "joined room");
                }
            }
            Command::Leave { video } => {
                let topic = IdentTopic::new(room_topic(&video));
                if self.rooms.remove(&topic.hash()).is_some() {
                    self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .stop_providing(&RecordKey::new(&room_key(&video)));
                    info!(video, "left room");
                }
            }
            Command::Publish { video, data } => {
                let topic = IdentTopic::new(room_topic(&video));
                match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(gossipsub::PublishError::Duplicate) => {}
                    Err(e) => warn!(video, error = %e, "cannot publish to room"),
                }
            }
            Command::RoomPeers { video, reply } => {
                let hash = IdentTopic::new(room_topic(&video)).hash();
                let peers: Vec<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(p, _)| *p)
                    .filter(|p| self.swarm.is_connected(p))
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::IpfsPeers { reply } => {
                let _ = reply.send(self.ipfs_peers.iter().copied().collect());
            }
            Command::IpfsProvide { cids } => {
                self.ipfs_unannounced.extend(cids);
                self.announce_ipfs();
            }
            Command::IpfsUnprovide { cids } => {
                self.ipfs_unannounced.retain(|c| !cids.contains(c));
                if let Some(kad) = self.swarm.behaviour_mut().ipfs_kad.as_mut() {
                    for cid in cids {
                        kad.stop_providing(&ipfs_key(&cid));
                    }
                }
            }
            Command::IpfsFindProviders { cid, reply } => {
                match self.swarm.behaviour_mut().ipfs_kad.as_mut() {
                    Some(kad) => {
                        let id = kad.get_providers(ipfs_key(&cid));
                        self.ipfs_lookups.insert(id, reply);
                    }
                    None => {
                        let _ = reply.send(Vec::new());
                    }
                }
            }
            Command::Penalize { peer, reason } => {
                warn!(%peer, reason, "blocking peer");
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.blocked_until
                    .insert(peer, tokio::time::Instant::now() + BLOCK_FOR);
            }
            Command::Info { reply } => {
                let peer = *self.swarm.local_peer_id();
                let addrs = self
                    .listen
                    .iter()
                    .map(|a| a.clone().with(Protocol::P2p(peer)))
                    .collect();
                let _ = reply.send((peer, addrs));
            }
        }
    }

    /// Provides what waits to be provided on the IPFS DHT, once its routing
    /// table has peers: a record provided with none reaches no one until it
    /// is republished hours later.
    fn announce_ipfs(&mut self) {
        let Some(kad) = self.swarm.behaviour_mut().ipfs_kad.as_mut() else {
            self.ipfs_unannounced.clear();
            return;
        };
        if self.ipfs_unannounced.is_empty() || kad.kbuckets().all(|b| b.num_entries() == 0) {
            return;
        }
        for cid in self.ipfs_unannounced.drain(..) {
            // Fails only when the store of provided keys is full.
            if let Err(e) = kad.start_providing(ipfs_key(&cid)) {
                warn!(cid = %cid, error = %e, "cannot provide on the IPFS DHT");
                break;
            }
        }
    }

    /// Looks for room members on the DHT again, and lifts expired blocks.
    fn discover(&mut self) {
        let now = tokio::time::Instant::now();
        let expired: Vec<PeerId> = self
            .blocked_until
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.blocked_until.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        if !self.bootstrapped && self.swarm.behaviour_mut().kad.bootstrap().is_ok() {
            self.bootstrapped = true;
        }
        if !self.ipfs_bootstrapped
            && let Some(kad) = self.swarm.behaviour_mut().ipfs_kad.as_mut()
            && kad.bootstrap().is_ok()
        {
            self.ipfs_bootstrapped = true;
        }
        self.announce_ipfs();
        let videos: Vec<String> = self.rooms.values().cloned().collect();
        for video in videos {
            let key = RecordKey::new(&room_key(&video));
            let kad = &mut self.swarm.behaviour_mut().kad;
            // Providing fails while the routing table is empty; retry until it takes.
            let _ = kad.start_providing(key.clone());
            kad.get_providers(key);
        }
    }

    async fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                // Relay reservations hand out the relay's external addresses;
                // browsers can use only the ones they can dial. IPFS DHT
                // provider records carry them too, and a record without
                // addresses is dropped, so with the IPFS DHT on every
                // address is announced.
                if bridge::transport::browser_dialable(&address)
                    || self.swarm.behaviour().ipfs_kad.is_enabled()
                {
                    self.swarm.add_external_address(address.clone());
                }
                self.listen.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.swarm.remove_external_address(&address);
                self.listen.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                self.peers.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %peer_id, "peer connected");
                self.telemetry.emit(GatewayEvent::PeerConnected {
                    peer: peer_id.to_string(),
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.peers.fetch_sub(1, Ordering::Relaxed);
                self.ipfs_peers.remove(&peer_id);
                self.wants.forget(&peer_id);
                debug!(peer = %peer_id, "peer disconnected");
                self.telemetry.emit(GatewayEvent::PeerDisconnected {
                    peer: peer_id.to_string(),
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let speaks = |p: &StreamProtocol| info.protocols.contains(p);
                if speaks(&bitswap::PROTOCOL) && !speaks(&wire::PROTOCOL) {
                    self.ipfs_peers.insert(peer_id);
                }
                if speaks(&behaviour::IPFS_KAD)
                    && let Some(kad) = self.swarm.behaviour_mut().ipfs_kad.as_mut()
                {
                    for addr in info
                        .listen_addrs
                        .iter()
                        .filter(|a| !bridge::transport::browser_transport(a))
                    {
                        kad.add_address(&peer_id, addr.clone());
                    }
                }
                // WebRTC-direct is for browsers; daemons reach each other over
                // TCP and QUIC. Peers without the swarm's DHT (IPFS nodes)
                // stay out of its routing table.
                if speaks(&behaviour::SWARMSEED_KAD) {
                    for addr in info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| !bridge::transport::browser_transport(a))
                    {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(e),
            })) if !matches!(e, ping::Failure::Unsupported) => {
                // A browser tab that closed or crashed leaves a WebRTC
                // connection that nothing else notices for minutes.
                info!(%peer, error = %e, "ping failed, closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result:
                    QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders { providers, .. })),
                ..
            })) => {
                let me = *self.swarm.local_peer_id();
                let found: HashSet<PeerId> = providers.into_iter().filter(|p| *p != me).collect();
                for peer in found {
                    if !self.swarm.is_connected(&peer) {
                        debug!(%peer, "dialing room member found on the DHT");
                        let _ = self.swarm.dial(peer);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::IpfsKad(
                kad::Event::OutboundQueryProgressed {
                    id,
                    result: QueryResult::GetProviders(result),
                    ..
                },
            )) => {
                let found: Vec<PeerId> = match result {
                    Ok(GetProvidersOk::FoundProviders { providers, .. }) => {
                        let me = *self.swarm.local_peer_id();
                        let found: Vec<PeerId> =
                            providers.into_iter().filter(|p| *p != me).collect();
                        // Each DHT node's answer is a step, most of them
                        // with no provider: the query goes on.
                        if found.is_empty() {
                            return;
                        }
                        found
                    }
                    Ok(GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                        Vec::new()
                    }
                };
                // Dialled while the query runs: it holds their addresses.
                for peer in &found {
                    if !self.swarm.is_connected(peer) {
                        debug!(%peer, "dialing a provider found on the IPFS DHT");
                        let _ = self.swarm.dial(*peer);
                    }
                }
                if let Some(reply) = self.ipfs_lookups.remove(&id) {
                    let _ = reply.send(found);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let room = self.rooms.get(&message.topic).cloned();
                let acceptance = match (&room, message.source) {
                    (Some(_), Some(_)) if message.data.len() <= MAX_GOSSIP_BYTES => {
                        MessageAcceptance::Accept
                    }
                    (None, _) => MessageAcceptance::Ignore,
                    _ => MessageAcceptance::Reject,
                };
                let accepted = matches!(acceptance, MessageAcceptance::Accept);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                if let (true, Some(video), Some(source)) = (accepted, room, message.source) {
                    let _ = self.events.try_send(RoomEvent::Message {
                        video,
                        source,
                        data: message.data,
                    });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                peer_id,
                topic,
            })) => {
                if let Some(video) = self.rooms.get(&topic).cloned() {
                    let _ = self.events.try_send(RoomEvent::PeerJoined {
                        video,
                        peer: peer_id,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Rooms are quiet most of the time; default scoring would punish that.
fn quiet_room_scoring() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        ..Default::default()
    }
}
