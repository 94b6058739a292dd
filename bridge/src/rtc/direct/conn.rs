//! A WebRTC-direct connection as the engine hands it out: the Noise
//! channel, the channels the browser opens, and a way to open more.

use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot};

use super::super::engine::Request;
use super::super::session::{Control, Session};
use super::super::{Engine, RtcError};

/// What a WebRTC-direct connection reports after it is handed out.
pub enum DirectEvent {
    /// DTLS is up: the SHA-256 digest of the browser's certificate, which
    /// the Noise handshake binds to.
    Connected { remote_fingerprint: [u8; 32] },
    /// The browser opened a channel: one libp2p stream.
    Inbound(Session),
}

/// One browser's WebRTC-direct connection, from its first STUN check.
/// Dropping it closes it.
pub struct DirectConn {
    pub(crate) id: u64,
    /// Where the browser's datagrams come from.
    pub remote: SocketAddr,
    /// The local address they reached.
    pub local: SocketAddr,
    /// Channel 0, negotiated out of band, where Noise runs.
    pub noise: Option<Session>,
    pub(crate) events: mpsc::Receiver<DirectEvent>,
    pub(crate) engine: Engine,
}

impl DirectConn {
    /// The next event; `None` once the connection has closed.
    pub async fn recv(&mut self) -> Option<DirectEvent> {
        self.events.recv().await
    }

    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<DirectEvent>> {
        self.events.poll_recv(cx)
    }

    /// An opener for channels to the browser, usable apart from `self`.
    pub fn opener(&self) -> Opener {
        Opener {
            id: self.id,
            engine: self.engine.clone(),
        }
    }

    /// Starts a clean close: SCTP's shutdown, DTLS's close_notify.
    pub fn close(&self) {
        let _ = self.engine.control.send(Control::CloseSession(self.id));
    }

    /// Engine-wide id, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for DirectConn {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens channels on one WebRTC-direct connection.
#[derive(Clone)]
pub struct Opener {
    id: u64,
    engine: Engine,
}

impl Opener {
    /// A new channel to the browser; it delivers `Incoming::Open` once
    /// the browser has taken it.
    pub async fn open(&self) -> Result<Session, RtcError> {
        let (reply, rx) = oneshot::channel();
        self.engine
            .requests
            .send(Request::OpenChannel { id: self.id, reply })
            .await
            .map_err(|_| RtcError::Stopped)?;
        rx.await.map_err(|_| RtcError::Stopped)?
    }
}
