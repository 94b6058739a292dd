//! The libp2p node. One task owns the `Swarm` (see `node`); everything else
//! holds a cloneable [`Swarm`] handle that sends commands over a bounded
//! channel and gets replies on oneshots.

mod behaviour;
pub mod bitswap;
pub mod bitswap_client;
pub mod bitswap_pb;
pub mod blocks;
pub mod inbound;
pub mod keys;
mod node;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

pub use bridge::blocks_wire as wire;
pub use node::{SwarmSettings, start};

/// What the swarm tells the rest of the daemon.
#[derive(Debug)]
pub enum RoomEvent {
    /// A validated gossip message in a room, from `source` (checked by gossipsub).
    Message {
        video: String,
        source: PeerId,
        data: Vec<u8>,
    },
    /// A peer subscribed to a room we are in.
    PeerJoined { video: String, peer: PeerId },
}

#[derive(Debug)]
pub(crate) enum Command {
    Join {
        video: String,
    },
    Leave {
        video: String,
    },
    Publish {
        video: String,
        data: Vec<u8>,
    },
    RoomPeers {
        video: String,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    IpfsPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    IpfsProvide {
        cids: Vec<cid::Cid>,
    },
    IpfsUnprovide {
        cids: Vec<cid::Cid>,
    },
    IpfsFindProviders {
        cid: cid::Cid,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Penalize {
        peer: PeerId,
        reason: &'static str,
    },
    Info {
        reply: oneshot::Sender<(PeerId, Vec<Multiaddr>)>,
    },
}

#[derive(Clone)]
pub struct Swarm {
    tx: mpsc::Sender<Command>,
    pub peer_id: PeerId,
    pub(crate) control: libp2p_stream::Control,
    acceptor: inbound::Acceptor,
    peers: Arc<AtomicU64>,
    /// The Bitswap client's wants, which the Bitswap server feeds.
    pub(crate) wants: Arc<bitswap_client::Wants>,
}

impl Swarm {
    async fn send(&self, c: Command) {
        // Fails only once the node has stopped, at shutdown.
        let _ = self.tx.send(c).await;
    }

    /// Subscribes to the video's room and looks for its members on the DHT.
    pub async fn join(&self, video: &str) {
        self.send(Command::Join {
            video: video.to_owned(),
        })
        .await
    }

    pub async fn leave(&self, video: &str) {
        self.send(Command::Leave {
            video: video.to_owned(),
        })
        .await
    }

    pub async fn publish(&self, video: &str, data: Vec<u8>) {
        self.send(Command::Publish {
            video: video.to_owned(),
            data,
        })
        .await
    }

    /// Connected peers in the video's room.
    pub async fn room_peers(&self, video: &str) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RoomPeers {
            video: video.to_owned(),
            reply,
        })
        .await;
        rx.await.unwrap_or_default()
    }

    /// Every connected peer, for content named by CID alone.
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ConnectedPeers { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Connected IPFS peers: they offer Bitswap, not the block protocol.
    pub async fn ipfs_peers(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::IpfsPeers { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Provides these CIDs on the IPFS DHT (when it is on), and keeps
    /// republishing them before their records expire.
    pub async fn ipfs_provide(&self, cids: Vec<cid::Cid>) {
        self.send(Command::IpfsProvide { cids }).await
    }

    pub async fn ipfs_unprovide(&self, cids: Vec<cid::Cid>) {
        self.send(Command::IpfsUnprovide { cids }).await
    }

    /// Providers of `cid` on the IPFS DHT, which the node dials; empty when
    /// none was found or the DHT is off.
    pub async fn ipfs_find_providers(&self, cid: cid::Cid) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::IpfsFindProviders { cid, reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Disconnects and blocks a peer that broke the protocol or lied.
    pub async fn penalize(&self, peer: PeerId, reason: &'static str) {
        self.send(Command::Penalize { peer, reason }).await
    }

    /// Our peer id and listen addresses.
    pub async fn info(&self) -> (PeerId, Vec<Multiaddr>) {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Info { reply }).await;
        rx.await.unwrap_or((self.peer_id, Vec::new()))
    }

    /// Opens streams of custom protocols (blocks, receipts, Bitswap).
    pub fn control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// Accepts inbound streams of a custom protocol (blocks, receipts, Bitswap).
    pub fn accept(
        &self,
        protocol: libp2p::StreamProtocol,
    ) -> Result<inbound::Incoming, inbound::AlreadyAccepted> {
        self.acceptor.accept(protocol)
    }

    pub fn peers_connected(&self) -> u64 {
        self.peers.load(Ordering::Relaxed)
    }
}
