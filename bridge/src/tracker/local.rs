//! In-process members: the daemon's own seeder joins the swarms of its
//! tracker without a WebSocket.
//!
//! A [`LocalConnection`] behaves exactly like a socket, minus JSON: the
//! daemon sends the same [`ClientMessage`]s a browser would and receives the
//! same [`TrackerMessage`]s (replies, relayed offers, relayed answers) in
//! order, so one tracker-client state machine can drive both this and the
//! WebSocket connections to foreign trackers. Unlike a socket it is exempt
//! from every [`TrackerLimits`](super::TrackerLimits) bound, never expires
//! for silence, and (with
//! [`offer_to_local_first`](super::TrackerConfig::offer_to_local_first))
//! gets one offer from every newcomer.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::error::TrackerError;
use super::state::{Registration, Tracker};
use super::wire::{ClientMessage, TrackerMessage};

/// An in-process connection to a [`Tracker`]. Dropping it leaves every
/// swarm it joined, like a closed socket.
pub struct LocalConnection {
    reg: Registration,
    inbox: mpsc::Receiver<TrackerMessage>,
}

impl std::fmt::Debug for LocalConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConnection")
            .field("conn", &self.reg.id())
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Opens an in-process connection, for the daemon's own seeder. Fails
    /// only once the tracker is shutting down.
    pub fn connect_local(self: &Arc<Self>) -> Result<LocalConnection, TrackerError> {
        let (reg, inbox) = self.register(None, true)?;
        Ok(LocalConnection { reg, inbox })
    }
}

impl LocalConnection {
    /// Sends a message as a peer would. Its reply (if the protocol has one:
    /// announces without an answer, scrapes, refusals) arrives through
    /// [`recv`](Self::recv) like everything else.
    pub fn send(&self, msg: impl Into<ClientMessage>) {
        let tracker = self.reg.tracker();
        if let Some(reply) = tracker.handle(self.reg.id(), msg.into()) {
            tracker.deliver(self.reg.id(), reply);
        }
    }

    /// The next message for this member: replies, and offers and answers
    /// other members sent it. Messages beyond
    /// [`local_outbox_messages`](super::TrackerLimits::local_outbox_messages)
    /// unread are dropped, so keep reading.
    pub async fn recv(&mut self) -> Option<TrackerMessage> {
        self.inbox.recv().await
    }

    /// [`recv`](Self::recv) without waiting.
    pub fn try_recv(&mut self) -> Option<TrackerMessage> {
        self.inbox.try_recv().ok()
    }
}
