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

/// What writers and sessions tell the engine.
pub(crate) enum Control {
    /// Messages were queued.
    Flush(u64),
    /// The owner let go or asked to close.
    Close(u64),
}

/// One peer connection with one data channel. Dropping it closes it.
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
