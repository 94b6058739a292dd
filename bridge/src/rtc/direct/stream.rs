//! One libp2p stream on one data channel: bytes framed as the libp2p
//! WebRTC spec says, with its half-close. Writing ends with FIN, which the
//! other side acknowledges with FIN_ACK; a FIN from the other side is
//! acknowledged at once, so js-libp2p's `close()` returns as soon as its
//! FIN has arrived rather than after its 10 s wait. STOP_SENDING ends our
//! writing, RESET ends both directions, and dropping a stream that was not
//! closed resets it.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{AsyncRead, AsyncWrite};
use tracing::debug;

use super::framing::{Decoder, Flag, MAX_PAYLOAD, encode};
use crate::rtc::{Closed, Incoming, Session};

/// How long a closing writer waits for the FIN_ACK before it gives up
/// waiting; the data was sent either way.
const FIN_ACK_WAIT: Duration = Duration::from_secs(5);

/// Bytes received and not yet read before the stream stops taking more;
/// the peer's sends then wait in the engine's queue.
const MAX_UNREAD: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Open,
    /// The peer sent STOP_SENDING.
    Stopped,
    /// We sent FIN and wait for its FIN_ACK.
    FinSent,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Open,
    /// The peer sent FIN.
    Finished,
}

type Sending = Pin<Box<dyn Future<Output = Result<(), Closed>> + Send>>;

pub struct Substream {
    session: Session,
    decoder: Decoder,
    unread: VecDeque<Bytes>,
    unread_bytes: usize,
    read: Read,
    write: Write,
    reset: bool,
    /// The channel is gone: the engine dropped it or the connection closed.
    gone: bool,
    /// A frame waiting for room in the outbox.
    sending: Option<Sending>,
    fin_wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Substream {
    pub fn new(session: Session) -> Self {
        Self {
            session,
            decoder: Decoder::default(),
            unread: VecDeque::new(),
            unread_bytes: 0,
            read: Read::Open,
            write: Write::Open,
            reset: false,
            gone: false,
            sending: None,
            fin_wait: None,
        }
    }

    fn flag(&self, flag: Flag) {
        let _ = self.session.writer.send_now(encode(Some(flag), &[]));
    }

    /// Takes what the channel has delivered, without waiting.
    fn pump(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.gone && self.unread_bytes < MAX_UNREAD {
            let message = match self.session.incoming.poll_recv(cx) {
                Poll::Ready(Some(Incoming::Message(m))) => m,
                Poll::Ready(Some(Incoming::Open { .. })) => continue,
                Poll::Ready(None) => {
                    self.gone = true;
                    break;
                }
                Poll::Pending => break,
            };
            let framed = self.decoder.push(&message).and_then(|_| {
                while let Some(frame) = self.decoder.next_frame()? {
                    if let Some(data) = frame.data.filter(|d| !d.is_empty())
                        && self.read == Read::Open
                        && !self.reset
                    {
                        self.unread_bytes += data.len();
                        self.unread.push_back(data);
                    }
                    match frame.flag {
                        Some(Flag::Fin) if self.read == Read::Open => {
                            self.read = Read::Finished;
                            self.flag(Flag::FinAck);
                        }
                        Some(Flag::StopSending) if self.write == Write::Open => {
                            self.write = Write::Stopped;
                        }
                        Some(Flag::Reset) => self.reset = true,
                        Some(Flag::FinAck) if self.write == Write::FinSent => {
                            self.write = Write::Done;
                        }
                        _ => {}
                    }
                }
                Ok(())
            });
            if let Err(e) = framed {
                debug!(error = %e, "bad frame; resetting the stream");
                self.flag(Flag::Reset);
                self.reset = true;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(())
    }

    fn poll_sending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(f) = self.sending.as_mut() {
            let r = std::task::ready!(f.as_mut().poll(cx));
            self.sending = None;
            r.map_err(|_| io::ErrorKind::BrokenPipe)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Substream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if let Some(front) = this.unread.front_mut() {
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                front.advance(n);
                if front.is_empty() {
                    this.unread.pop_front();
                }
                this.unread_bytes -= n;
                return Poll::Ready(Ok(n));
            }
            if this.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if this.read == Read::Finished {
                return Poll::Ready(Ok(0));
            }
            if this.gone {
                return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
            }
            let before = this.unread_bytes;
            let (read, gone) = (this.read, this.gone);
            this.pump(cx)?;
            if this.unread_bytes == before && this.read == read && this.gone == gone && !this.reset
            {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for Substream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.pump(cx)?;
        std::task::ready!(this.poll_sending(cx))?;
        if this.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if this.write != Write::Open || this.gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_PAYLOAD);
        let frame = encode(None, &buf[..n]);
        match this.session.writer.try_send(frame) {
            Ok(None) => {}
            Ok(Some(frame)) => {
                // Taken now, sent when the outbox has room; the next write
                // or flush waits for that.
                let writer = this.session.writer.clone();
                let mut f: Sending = Box::pin(async move { writer.send(frame).await });
                if f.as_mut().poll(cx).is_pending() {
                    this.sending = Some(f);
                }
            }
            Err(Closed) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_sending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_sending(cx))?;
        if this.write == Write::Open && !this.reset && !this.gone {
            this.flag(Flag::Fin);
            this.write = Write::FinSent;
            this.fin_wait = Some(Box::pin(tokio::time::sleep(FIN_ACK_WAIT)));
        }
        if this.write == Write::FinSent {
            this.pump(cx)?;
            let waited = this
                .fin_wait
                .as_mut()
                .is_none_or(|w| w.as_mut().poll(cx).is_ready());
            if this.write == Write::FinSent && !this.reset && !this.gone && !waited {
                return Poll::Pending;
            }
            this.write = Write::Done;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Substream {
    fn drop(&mut self) {
        if self.gone || self.reset {
            return;
        }
        // Unfinished on our side: the peer must not take what it got as
        // whole. Finished, but theirs still open: they may stop sending.
        if self.write == Write::Open {
            self.flag(Flag::Reset);
        } else if self.read == Read::Open {
            self.flag(Flag::StopSending);
        }
    }
}
