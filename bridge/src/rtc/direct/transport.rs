//! libp2p's `Transport` for WebRTC-direct on the engine: listeners are
//! engine sockets, and each connection is authenticated with Noise on
//! channel 0, this side initiating (the spec's reversal, which lets the
//! listener send data half a round trip sooner). Browsers dial us; this
//! transport dials nobody.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::upgrade::{OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, noise};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::cert::{DirectCert, fingerprint_multihash};
use super::conn::{DirectConn, DirectEvent};
use super::muxer::Connection;
use super::stream::Substream;
use crate::rtc::{Engine, Listening, RtcError};

/// How long a browser may take from its first STUN check to the end of
/// the Noise handshake.
const HANDSHAKE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("WebRTC: {0}")]
    Rtc(#[from] RtcError),
    #[error("Noise: {0}")]
    Noise(#[from] noise::Error),
    #[error("the connection closed during the handshake")]
    Closed,
    #[error("the handshake took longer than {0:?}")]
    Timeout(Duration),
}

enum State {
    Binding(oneshot::Receiver<Result<Listening, RtcError>>),
    Open {
        engine_id: u64,
        incoming: mpsc::Receiver<DirectConn>,
    },
}

struct Listener {
    id: ListenerId,
    addr: SocketAddr,
    state: State,
}

type Upgrade = BoxFuture<'static, Result<(PeerId, Connection), DirectError>>;

pub struct Transport {
    engine: Engine,
    key: Keypair,
    cert: DirectCert,
    listeners: Vec<Listener>,
    events: VecDeque<TransportEvent<Upgrade, DirectError>>,
    waker: Option<Waker>,
}

impl Transport {
    pub fn new(engine: Engine, key: Keypair, cert: DirectCert) -> Self {
        Self {
            engine,
            key,
            cert,
            listeners: Vec::new(),
            events: VecDeque::new(),
            waker: None,
        }
    }
}

/// The socket address of `/ip4|ip6/…/udp/N/webrtc-direct`, with or
/// without a `/certhash/` after it.
fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut it = addr.iter();
    let ip: IpAddr = match it.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Udp(port) = it.next()? else {
        return None;
    };
    let Protocol::WebRTCDirect = it.next()? else {
        return None;
    };
    match it.next() {
        None | Some(Protocol::Certhash(_)) => {}
        _ => return None,
    }
    Some(SocketAddr::new(ip, port))
}

fn multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Udp(addr.port()))
        .with(Protocol::WebRTCDirect)
}

/// The addresses a socket bound to `local` is reached at: itself, or every
/// address of its family when it is bound to all of them.
fn reachable(local: SocketAddr) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() == local.is_ipv4())
        .map(|ip| SocketAddr::new(ip, local.port()))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl libp2p::core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = DirectError;
    type ListenerUpgrade = Upgrade;
    type Dial = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(socket) = socket_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let rx = self.engine.listen_direct(socket, self.cert.dtls.clone());
        self.listeners.push(Listener {
            id,
            addr: socket,
            state: State::Binding(rx),
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.listeners.remove(i);
        if let State::Open { engine_id, .. } = l.state {
            self.engine.unlisten_direct(engine_id);
        }
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        if let Some(e) = this.events.pop_front() {
            return Poll::Ready(e);
        }
        let mut i = 0;
        while i < this.listeners.len() {
            let l = &mut this.listeners[i];
            match &mut l.state {
                State::Binding(rx) => match Pin::new(rx).poll(cx) {
                    Poll::Ready(Ok(Ok(listening))) => {
                        for a in reachable(listening.local) {
                            let listen_addr =
                                multiaddr(a).with(Protocol::Certhash(this.cert.certhash()));
                            this.events.push_back(TransportEvent::NewAddress {
                                listener_id: l.id,
                                listen_addr,
                            });
                        }
                        l.state = State::Open {
                            engine_id: listening.id,
                            incoming: listening.incoming,
                        };
                        continue;
                    }
                    Poll::Ready(result) => {
                        let error = match result {
                            Ok(Err(e)) => e,
                            _ => RtcError::Stopped,
                        };
                        debug!(addr = %l.addr, error = %error, "WebRTC-direct listener failed");
                        let id = l.id;
                        this.listeners.remove(i);
                        this.events.push_back(TransportEvent::ListenerClosed {
                            listener_id: id,
                            reason: Err(error.into()),
                        });
                        continue;
                    }
                    Poll::Pending => {}
                },
                State::Open { incoming, .. } => match incoming.poll_recv(cx) {
                    Poll::Ready(Some(conn)) => {
                        let local_addr = multiaddr(conn.local);
                        let send_back_addr = multiaddr(conn.remote);
                        let upgrade =
                            Box::pin(handshake(conn, this.key.clone(), this.cert.fingerprint));
                        return Poll::Ready(TransportEvent::Incoming {
                            listener_id: l.id,
                            upgrade,
                            local_addr,
                            send_back_addr,
                        });
                    }
                    Poll::Ready(None) => {
                        let id = l.id;
                        this.listeners.remove(i);
                        this.events.push_back(TransportEvent::ListenerClosed {
                            listener_id: id,
                            reason: Ok(()),
                        });
                        continue;
                    }
                    Poll::Pending => {}
                },
            }
            i += 1;
        }
        if let Some(e) = this.events.pop_front() {
            return Poll::Ready(e);
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Waits for DTLS, then runs Noise on channel 0 as its initiator, with
/// both certificates' digests in the prologue so that a relay of DTLS
/// cannot pass.
async fn handshake(
    mut conn: DirectConn,
    key: Keypair,
    local_fingerprint: [u8; 32],
) -> Result<(PeerId, Connection), DirectError> {
    let work = async move {
        let remote_fingerprint = loop {
            match conn.recv().await {
                Some(DirectEvent::Connected { remote_fingerprint }) => break remote_fingerprint,
                Some(DirectEvent::Inbound(_)) => continue,
                None => return Err(DirectError::Closed),
            }
        };
        let noise_channel = conn.noise.take().ok_or(DirectError::Closed)?;
        let mut prologue = b"libp2p-webrtc-noise:".to_vec();
        prologue.extend(fingerprint_multihash(&remote_fingerprint));
        prologue.extend(fingerprint_multihash(&local_fingerprint));
        let config = noise::Config::new(&key)?.with_prologue(prologue);
        let info = config.protocol_info().next().ok_or(DirectError::Closed)?;
        let (peer, channel) = config
            .upgrade_outbound(Substream::new(noise_channel), info)
            .await?;
        debug!(%peer, remote = %conn.remote, "WebRTC-direct connection");
        Ok((peer, Connection::new(conn, channel)))
    };
    tokio::time::timeout(HANDSHAKE, work)
        .await
        .map_err(|_| DirectError::Timeout(HANDSHAKE))?
}
