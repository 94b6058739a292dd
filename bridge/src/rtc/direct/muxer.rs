//! A WebRTC-direct connection as the swarm's `StreamMuxer`: every data
//! channel the browser opens is an inbound stream, every one we open an
//! outbound one; SCTP does the multiplexing.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};

use super::conn::{DirectConn, DirectEvent, Opener};
use super::stream::Substream;
use crate::rtc::{RtcError, Session};

type Opening = Pin<Box<dyn Future<Output = Result<Session, RtcError>> + Send>>;

pub struct Connection {
    conn: DirectConn,
    /// Kept open for the connection's life: a browser may not expect its
    /// handshake channel to close under it.
    _noise: Option<libp2p::noise::Output<Substream>>,
    opener: Opener,
    inbound: VecDeque<Session>,
    inbound_waker: Option<Waker>,
    opening: Option<Opening>,
    closed: bool,
}

impl Connection {
    pub(crate) fn new(conn: DirectConn, noise: libp2p::noise::Output<Substream>) -> Self {
        Self {
            opener: conn.opener(),
            conn,
            _noise: Some(noise),
            inbound: VecDeque::new(),
            inbound_waker: None,
            opening: None,
            closed: false,
        }
    }

    /// Takes the engine's events; streams wait for `poll_inbound`.
    fn pump(&mut self, cx: &mut Context<'_>) {
        while !self.closed {
            match self.conn.poll_recv(cx) {
                Poll::Ready(Some(DirectEvent::Inbound(s))) => {
                    self.inbound.push_back(s);
                    if let Some(w) = self.inbound_waker.take() {
                        w.wake();
                    }
                }
                Poll::Ready(Some(DirectEvent::Connected { .. })) => {}
                Poll::Ready(None) => {
                    self.closed = true;
                    if let Some(w) = self.inbound_waker.take() {
                        w.wake();
                    }
                }
                Poll::Pending => break,
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "WebRTC-direct connection closed",
    )
}

impl StreamMuxer for Connection {
    type Substream = Substream;
    type Error = io::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Substream, io::Error>> {
        let this = self.get_mut();
        this.pump(cx);
        if let Some(s) = this.inbound.pop_front() {
            return Poll::Ready(Ok(Substream::new(s)));
        }
        if this.closed {
            return Poll::Ready(Err(gone()));
        }
        this.inbound_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Substream, io::Error>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(gone()));
        }
        let opener = this.opener.clone();
        let opening = this
            .opening
            .get_or_insert_with(|| Box::pin(async move { opener.open().await }));
        let result = std::task::ready!(opening.as_mut().poll(cx));
        this.opening = None;
        Poll::Ready(
            result
                .map(Substream::new)
                .map_err(|e| io::Error::other(e.to_string())),
        )
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let this = self.get_mut();
        this.closed = true;
        this.conn.close();
        Poll::Ready(Ok(()))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, io::Error>> {
        let this = self.get_mut();
        this.pump(cx);
        if this.closed && this.inbound.is_empty() {
            return Poll::Ready(Err(gone()));
        }
        Poll::Pending
    }
}
