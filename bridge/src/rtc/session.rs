//! A session as its owner sees it: the channel's messages in, a writer out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

/// What a session's channel delivers.
#[derive(Debug)]
pub enum Incoming {
    /// The data channel is open; the first event of every session.
    Open { remote: SocketAddr },
    /// One message from the peer.
    Message(Vec<u8>),
}

/// The session has closed: the peer left, ICE failed, or the engine stopped.
#[derive(Debug, thiserror::Error)]
#[error("the WebRTC session has closed")]
pub struct Closed;

/// Messages waiting for room in the SCTP send buffer. The engine drains
/// it; writers wait on `room` once it holds `limit` bytes.
pub(crate) struct Outbox {
    pub queue: Mutex<VecDeque<Bytes>>,
    pub queued: AtomicUsize,
    pub room: Notify,
    pub closed: AtomicBool,
    pub limit: usize,
}

impl Outbox {
    pub fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::default(),
            queued: AtomicUsize::new(0),
            room: Notify::new(),
            closed: AtomicBool::new(false),
            limit,
        }
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Bytes>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What writers, sessions and listeners tell the engine; sent without
/// waiting, so `Drop` and libp2p's synchronous calls can send them.
pub(crate) enum Control {
    /// Messages were queued on a channel.
    Flush(u64),
    /// A channel's owner let go or asked to close it: a session made from
    /// SDP closes whole; a WebRTC-direct channel closes alone, once what
    /// was queued on it has gone.
    Close(u64),
    /// A WebRTC-direct connection's owner let go of it.
    CloseSession(u64),
    /// Serve WebRTC-direct on a socket bound to `addr`, the engine's own
    /// when it is bound there already.
    Listen {
        addr: SocketAddr,
        cert: str0m::config::DtlsCert,
        reply: tokio::sync::oneshot::Sender<Result<super::Listening, super::RtcError>>,
    },
    /// Stop serving WebRTC-direct on the listener of this id.
    Unlisten(u64),
}

/// One data channel: a session's one channel, or one of a WebRTC-direct
/// connection's. Dropping it closes it.
pub struct Session {
    pub(crate) id: u64,
    pub(crate) incoming: mpsc::Receiver<Incoming>,
    pub(crate) writer: Writer,
}

impl Session {
    /// The next event; `None` once the session has closed.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// A handle that sends on this session's channel.
    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }

    /// Engine-wide id of this session, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.writer.close();
    }
}

/// Sends binary messages on one session's channel, in order.
#[derive(Clone)]
pub struct Writer {
    pub(crate) id: u64,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

impl Writer {
    /// Queues one message, waiting while the queue is full: this is where
    /// a slow reader slows its writer down. A message of any size up to the
    /// peer's maximum is accepted into an empty queue.
    pub async fn send(&self, message: Bytes) -> Result<(), Closed> {
        let len = message.len();
        loop {
            let room = self.outbox.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.outbox.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            {
                let mut queue = self.outbox.lock();
                let queued = self.outbox.queued.load(Ordering::Acquire);
                if queued == 0 || queued + len <= self.outbox.limit {
                    queue.push_back(message);
                    self.outbox.queued.fetch_add(len, Ordering::AcqRel);
                    break;
                }
            }
            room.await;
        }
        self.control
            .send(Control::Flush(self.id))
            .map_err(|_| Closed)
    }

    /// Queues one message if the queue has room for it, else gives it back.
    pub fn try_send(&self, message: Bytes) -> Result<Option<Bytes>, Closed> {
        if self.outbox.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        {
            let mut queue = self.outbox.lock();
            let queued = self.outbox.queued.load(Ordering::Acquire);
            if queued != 0 && queued + message.len() > self.outbox.limit {
                return Ok(Some(message));
            }
            self.outbox
                .queued
                .fetch_add(message.len(), Ordering::AcqRel);
            queue.push_back(message);
        }
        self.control
            .send(Control::Flush(self.id))
            .map(|_| None)
            .map_err(|_| Closed)
    }

    /// Queues a control message of a few bytes whatever the queue holds:
    /// an acknowledgement must not wait behind data.
    pub fn send_now(&self, message: Bytes) -> Result<(), Closed> {
        if self.outbox.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        self.outbox
            .queued
            .fetch_add(message.len(), Ordering::AcqRel);
        self.outbox.lock().push_back(message);
        self.control
            .send(Control::Flush(self.id))
            .map_err(|_| Closed)
    }

    /// Bytes queued and not yet handed to SCTP.
    pub fn queued(&self) -> usize {
        self.outbox.queued.load(Ordering::Acquire)
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.outbox.closed.load(Ordering::Acquire)
    }

    /// Closes the session.
    pub fn close(&self) {
        if !self.outbox.closed.swap(true, Ordering::AcqRel) {
            self.outbox.room.notify_waiters();
            let _ = self.control.send(Control::Close(self.id));
        }
    }
}
