//! Inbound streams of the daemon's own protocols (blocks, receipts,
//! Bitswap), handed to their servers through a queue.
//!
//! libp2p-stream passes inbound streams over a channel with room for one:
//! when a peer opens several streams at once (four blocks in flight is the
//! norm) all but the first that arrive in one poll of the swarm are reset.
//! The peer then retries, and a busy peer can run out of retries and go to
//! the CDN. Here each protocol has a queue of [`QUEUE`] streams; only a full
//! queue, a real overload, drops one. Outbound streams still go through
//! libp2p-stream's `Control`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamProtocol, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

/// Streams of one protocol waiting for their server.
pub const QUEUE: usize = 256;

/// Inbound streams of one protocol, with the peer that opened each.
pub type Incoming = ReceiverStream<(PeerId, Stream)>;

type Queues = Arc<Mutex<HashMap<StreamProtocol, mpsc::Sender<(PeerId, Stream)>>>>;

fn lock(
    queues: &Queues,
) -> MutexGuard<'_, HashMap<StreamProtocol, mpsc::Sender<(PeerId, Stream)>>> {
    queues.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cloneable handle that registers protocols and takes their streams.
#[derive(Clone, Default)]
pub struct Acceptor {
    queues: Queues,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} is already accepted")]
pub struct AlreadyAccepted(pub StreamProtocol);

impl Acceptor {
    /// Accepts `protocol` from now on; its streams come out of the result.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<Incoming, AlreadyAccepted> {
        let mut queues = lock(&self.queues);
        if queues.get(&protocol).is_some_and(|q| !q.is_closed()) {
            return Err(AlreadyAccepted(protocol));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        queues.insert(protocol, tx);
        Ok(ReceiverStream::new(rx))
    }
}

/// The behaviour: one [`Handler`] per connection, all sharing the queues.
pub struct Behaviour {
    acceptor: Acceptor,
}

impl Behaviour {
    pub fn new(acceptor: Acceptor) -> Self {
        Self { acceptor }
    }

    fn handler(&self, peer: PeerId) -> Handler {
        Handler {
            peer,
            queues: self.acceptor.queues.clone(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

pub struct Handler {
    peer: PeerId,
    queues: Queues,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Protocols;
    type OutboundProtocol = Protocols;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Protocols> {
        let protocols = lock(&self.queues)
            .iter()
            .filter(|(_, q)| !q.is_closed())
            .map(|(p, _)| p.clone())
            .collect();
        SubstreamProtocol::new(Protocols(protocols), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Protocols, Infallible, Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Infallible>,
    ) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: (stream, protocol),
            ..
        }) = event
        {
            let Some(queue) = lock(&self.queues).get(&protocol).cloned() else {
                return debug!(peer = %self.peer, %protocol, "no server, dropping stream");
            };
            // Dropping the stream resets it: the peer sees its request fail.
            match queue.try_send((self.peer, stream)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!(peer = %self.peer, %protocol, "inbound queue full, dropping stream")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!(peer = %self.peer, %protocol, "server gone, dropping stream")
                }
            }
        }
    }
}

/// The protocols accepted now; the negotiated one comes with the stream.
pub struct Protocols(Vec<StreamProtocol>);

impl UpgradeInfo for Protocols {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}

impl OutboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
