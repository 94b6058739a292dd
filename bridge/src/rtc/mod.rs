//! The WebRTC engine for plain data channels, on str0m.
//!
//! One task owns one UDP socket and every session on it: it answers SDP
//! offers and makes its own, runs ICE (host candidates, server-reflexive
//! ones from configured STUN servers, and the peer-reflexive ones Chromium
//! makes us learn, since it hides its host addresses behind `.local`
//! names), carries one ordered, reliable data channel per session and
//! applies back-pressure to writers. No trickle: every SDP carries all of
//! its candidates, because the WebTorrent tracker protocol has no
//! candidate messages.
//!
//! Callers see [`Engine`] (a cloneable handle), [`Session`] (one data
//! channel: its messages in, a [`Writer`] out) and [`PendingOffer`] (an
//! offer waiting for its answer).
//!
//! The same engine, on the same socket when both are bound to one
//! address, serves libp2p's WebRTC-direct: see [`direct`].

pub mod direct;
mod engine;
mod host;
mod sdp;
mod session;
mod sockets;
mod stun;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use session::{Closed, Incoming, Session, Writer};

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The UDP socket of sessions made from SDP (p2p-media-loader and
    /// PeerTube peers), shared with a WebRTC-direct listener bound to the
    /// same address. Port 0 picks a free port; `None` binds none, for an
    /// engine that serves WebRTC-direct alone.
    pub listen: Option<SocketAddr>,
    /// STUN servers (`host:port`) asked for this socket's public address,
    /// offered as a server-reflexive candidate. None by default.
    pub stun_servers: Vec<String>,
    /// Sessions at once, connecting or open; offers beyond are refused.
    pub max_sessions: usize,
    /// Bytes a writer may queue before `send` waits for the channel.
    pub send_queue: usize,
    /// SCTP bytes in flight per session before writes wait. One session
    /// moves at most this much per round trip (512 KiB at 50 ms: 80 Mbit/s);
    /// more costs CPU, since SCTP walks its in-flight queue on every ack.
    pub sctp_buffered: usize,
    /// How long a session may take from SDP to an open channel.
    pub connect_timeout: Duration,
    /// The largest message accepted from a peer.
    pub max_message: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 4002))),
            stun_servers: Vec::new(),
            max_sessions: 256,
            send_queue: 256 << 10,
            sctp_buffered: 512 << 10,
            connect_timeout: Duration::from_secs(30),
            max_message: 256 * 1024,
        }
    }
}

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    #[error("bad SDP: {0}")]
    BadSdp(String),
    #[error("WebRTC: {0}")]
    Rtc(String),
    #[error("{0} sessions already; no room for another")]
    Full(usize),
    #[error("the offer was withdrawn or has expired")]
    NoOffer,
    #[error("the WebRTC engine has stopped")]
    Stopped,
    #[error("UDP socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A cloneable handle to the engine task.
#[derive(Clone)]
pub struct Engine {
    requests: mpsc::Sender<engine::Request>,
    control: mpsc::UnboundedSender<session::Control>,
    local: Option<SocketAddr>,
}

/// A WebRTC-direct listener: its socket's address and the connections
/// browsers open on it.
pub struct Listening {
    pub id: u64,
    pub local: SocketAddr,
    pub incoming: mpsc::Receiver<direct::DirectConn>,
}

impl Engine {
    /// Binds the socket and starts the engine task, which ends with
    /// `shutdown`.
    pub async fn start(
        config: EngineConfig,
        shutdown: CancellationToken,
    ) -> Result<(Engine, tokio::task::JoinHandle<()>), RtcError> {
        engine::spawn(config, shutdown).await
    }

    /// The bound address of the socket of sessions made from SDP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Serves WebRTC-direct on `addr` with this certificate, on the
    /// engine's socket when it is bound there, else on a new one. Sent
    /// without waiting, for libp2p's synchronous `listen_on`.
    pub fn listen_direct(
        &self,
        addr: SocketAddr,
        cert: str0m::config::DtlsCert,
    ) -> oneshot::Receiver<Result<Listening, RtcError>> {
        let (reply, rx) = oneshot::channel();
        let _ = self
            .control
            .send(session::Control::Listen { addr, cert, reply });
        rx
    }

    /// Stops a WebRTC-direct listener; a socket bound for it alone closes.
    pub fn unlisten_direct(&self, id: u64) {
        let _ = self.control.send(session::Control::Unlisten(id));
    }

    /// Answers a remote offer. The answer carries all of this engine's
    /// candidates; the session opens when the offerer's data channel does.
    pub async fn accept_offer(&self, offer_sdp: &str) -> Result<(String, Session), RtcError> {
        let offer = sdp::parse_offer(offer_sdp)?;
        self.ask(|reply| engine::Request::Answer { offer, reply })
            .await?
    }

    /// Makes an offer with one data channel. Give the answer to
    /// [`PendingOffer::accept_answer`]; dropping it withdraws the offer.
    pub async fn create_offer(&self) -> Result<(String, PendingOffer), RtcError> {
        let (sdp, id, session) = self.ask(|reply| engine::Request::Offer { reply }).await??;
        Ok((
            sdp,
            PendingOffer {
                id,
                engine: self.clone(),
                session: Some(session),
            },
        ))
    }

    /// Asks these STUN servers (`host:port`, or `stun:host[:port]` as
    /// WebRTC configurations name them) too, from now on: those a video's
    /// own players use, say. Unreadable names are skipped.
    pub async fn add_stun_servers(&self, servers: &[String]) {
        let servers: Vec<String> = servers.iter().filter_map(|s| stun_host_port(s)).collect();
        if !servers.is_empty() {
            let _ = self
                .requests
                .send(engine::Request::AddStun { servers })
                .await;
        }
    }

    /// Number of sessions the engine holds now.
    pub async fn sessions(&self) -> usize {
        self.ask(|reply| engine::Request::Count { reply })
            .await
            .unwrap_or(0)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> engine::Request,
    ) -> Result<T, RtcError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(make(tx))
            .await
            .map_err(|_| RtcError::Stopped)?;
        rx.await.map_err(|_| RtcError::Stopped)
    }
}

/// `host:port` of a STUN URL (`stun:host`, `stun:host:port`, RFC 7064) or
/// of a plain `host:port`; TURN and secure STUN are not asked.
pub fn stun_host_port(s: &str) -> Option<String> {
    let rest = match s.split_once(':') {
        Some(("stun", rest)) => rest,
        Some(("stuns" | "turn" | "turns", _)) => return None,
        _ => s,
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', ' ']) {
        return None;
    }
    // `[v6]:port`, `host:port`, or a host alone: 3478 is STUN's port.
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && port.parse::<u16>().is_ok()
                && (!host.contains(':') || host.starts_with('['))
        }
        None => false,
    };
    match (has_port, rest.contains(':') && !rest.starts_with('[')) {
        (true, _) => Some(rest.to_owned()),
        (false, true) => None,
        (false, false) => Some(format!("{rest}:3478")),
    }
}

/// An offer this engine made, waiting for its answer.
pub struct PendingOffer {
    id: u64,
    engine: Engine,
    session: Option<Session>,
}

impl PendingOffer {
    /// Applies the remote answer; the session opens with the channel.
    pub async fn accept_answer(mut self, answer_sdp: &str) -> Result<Session, RtcError> {
        let answer = sdp::parse_answer(answer_sdp)?;
        let id = self.id;
        self.engine
            .ask(|reply| engine::Request::Answered { id, answer, reply })
            .await??;
        self.session.take().ok_or(RtcError::NoOffer)
    }
}

#[cfg(test)]
mod tests;
