//! The engine's UDP sockets: the one sessions made from SDP use, and one
//! per WebRTC-direct listener that is not bound to the same address.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use str0m::config::DtlsCert;
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::direct::DirectConn;
use super::host::{self, Destinations};

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
