//! The engine's UDP sockets: the one sessions made from SDP use, and one
//! per WebRTC-direct listener that is not bound to the same address.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, Socket, Type};
use str0m::config::DtlsCert;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::direct::DirectConn;
use super::host::{self, Destinations};

/// Kernel buffer asked for each way of an engine socket. One socket carries
/// every session, and while the engine sends a burst the SCTP
/// acknowledgements of dozens of peers queue up behind it: at Linux's
/// default (208 KiB) a seeder feeding 24 WebRTC-direct viewers lost about
/// a third of what they sent it, DTLS flights and SCTP INITs among it, so
/// dials stalled and blocks were resent. The kernel caps this at
/// `net.core.rmem_max` and `net.core.wmem_max`.
pub(crate) const BUFFER: usize = 4 << 20;

/// A UDP socket bound to `addr`, with buffers as large as the kernel allows
/// up to [`BUFFER`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Linux reports twice what it grants (the other half is its overhead).
    if let Err(e) = socket.set_recv_buffer_size(BUFFER) {
        debug!(error = %e, "UDP receive buffer not set");
    }
    if let Err(e) = socket.set_send_buffer_size(BUFFER) {
        debug!(error = %e, "UDP send buffer not set");
    }
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if cfg!(target_os = "linux") && granted < BUFFER * 2 {
        warn!(
            granted,
            asked = BUFFER,
            "the WebRTC socket's receive buffer is smaller than asked; under load datagrams will \
             be dropped: raise net.core.rmem_max (and wmem_max) to at least the asked size"
        );
    }
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Serving WebRTC-direct on a socket.
pub struct DirectListener {
    pub id: u64,
    pub cert: DtlsCert,
    pub incoming: mpsc::Sender<DirectConn>,
}

pub struct Sock {
    pub id: u64,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub hosts: Vec<SocketAddr>,
    pub destinations: Destinations,
    pub direct: Option<DirectListener>,
    /// Whether sessions made from SDP use it.
    pub primary: bool,
}

impl Sock {
    pub fn new(id: u64, socket: UdpSocket, primary: bool) -> std::io::Result<Sock> {
        let local = socket.local_addr()?;
        Ok(Sock {
            id,
            socket,
            local,
            hosts: host::candidates(local),
            destinations: Destinations::new(local),
            direct: None,
            primary,
        })
    }
}

#[derive(Default)]
pub struct Sockets {
    pub all: Vec<Sock>,
    /// Where the next receive poll starts, so that no socket starves another.
    next: usize,
}

impl Sockets {
    pub fn get(&self, id: u64) -> Option<&Sock> {
        self.all.iter().find(|s| s.id == id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Sock> {
        self.all.iter_mut().find(|s| s.id == id)
    }

    pub fn primary(&self) -> Option<&Sock> {
        self.all.iter().find(|s| s.primary)
    }

    /// A datagram from any socket: (socket id, length, source).
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<(u64, std::io::Result<(usize, SocketAddr)>)> {
        let n = self.all.len();
        for i in 0..n {
            let s = &self.all[(self.next + i) % n];
            let mut rb = ReadBuf::new(buf);
            match s.socket.poll_recv_from(cx, &mut rb) {
                Poll::Ready(r) => {
                    self.next = (self.next + i + 1) % n;
                    return Poll::Ready((s.id, r.map(|from| (rb.filled().len(), from))));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    pub async fn send(&self, id: u64, data: &[u8], to: SocketAddr) -> std::io::Result<()> {
        let Some(s) = self.get(id) else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        loop {
            match s.socket.try_send_to(data, to) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    s.socket.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
