//! The seeder of p2p-media-loader swarms: which swarms the daemon is in,
//! which trackers it announces them to, and which browsers it serves.
//!
//! One tracker connection per tracker URL carries every swarm announced
//! there, under one peer id for the daemon's whole life (trackers fix a
//! socket's peer id at its first announce; Aquatic drops a socket whose
//! peer id changes). The built-in tracker, when there is one, is joined in
//! process. Browsers are reached both ways: relayed offers are answered,
//! and the daemon sends offers of its own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::client::{self, TrackerCommand};
use super::fork;
use super::host::{AnnouncePolicy, Host, SwarmSpec, Wire};
use super::peer::{self, PeerLimits, PeerName};
use crate::rtc::{Engine, Session};
use crate::tracker::Tracker;
use crate::tracker::wire::Id20;

/// How the seeder behaves.
#[derive(Clone, Debug)]
pub struct SwarmsConfig {
    /// Trackers every swarm is announced to, besides each video's own.
    pub trackers: Vec<String>,
    /// Browsers connected at once, all swarms together.
    pub max_peers: usize,
    /// Browsers connected at once in one swarm.
    pub max_peers_per_swarm: usize,
    /// Offers sent with one announce, at most.
    pub offers_per_announce: usize,
    /// Per-connection bounds.
    pub peer: PeerLimits,
    /// The first 8 characters of the daemon's tracker peer id.
    pub peer_id_prefix: String,
}

impl Default for SwarmsConfig {
    fn default() -> Self {
        Self {
            trackers: Vec::new(),
            max_peers: 200,
            max_peers_per_swarm: 50,
            offers_per_announce: 5,
            peer: PeerLimits::default(),
            peer_id_prefix: "-SW0100-".into(),
        }
    }
}

/// One swarm, for the API.
#[derive(Clone, Debug, Serialize)]
pub struct SwarmStatus {
    /// The info_hash as its 20 characters.
    pub info_hash: String,
    /// Which video and stream.
    pub label: String,
    /// Segment ids announced.
    pub segments: usize,
    /// Browsers connected now.
    pub peers: usize,
    /// Where it is announced.
    pub trackers: Vec<String>,
}

struct Joined {
    spec: SwarmSpec,
    trackers: Vec<String>,
    stop: CancellationToken,
}

pub(crate) struct Shared<H> {
    pub engine: Engine,
    pub host: Arc<H>,
    pub config: SwarmsConfig,
    pub peer_id: Id20,
    local: Option<Arc<Tracker>>,
    shutdown: CancellationToken,
    swarms: Mutex<HashMap<Id20, Joined>>,
    connected: Mutex<Connected>,
    trackers: Mutex<HashMap<String, mpsc::UnboundedSender<TrackerCommand>>>,
}

#[derive(Default)]
struct Connected {
    by_swarm: HashMap<Id20, HashSet<Id20>>,
    total: usize,
}

/// A browser's place among those connected; given back on drop.
pub(crate) struct Seat<H> {
    shared: Arc<Shared<H>>,
    swarm: Id20,
    peer: Id20,
}

impl<H> Drop for Seat<H> {
    fn drop(&mut self) {
        let mut guard = self
            .shared
            .connected
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let c = &mut *guard;
        if let Some(set) = c.by_swarm.get_mut(&self.swarm)
            && set.remove(&self.peer)
        {
            c.total -= 1;
            if set.is_empty() {
                c.by_swarm.remove(&self.swarm);
            }
        }
    }
}

/// The key under which the built-in tracker's connection is kept.
pub(crate) const LOCAL: &str = "local";

impl<H: Host> Shared<H> {
    /// Takes a seat for `peer` in `swarm`, unless it has one (p2p-media-loader
    /// keeps one connection a peer a stream and destroys the rest) or the
    /// caps are reached.
    pub fn seat(self: &Arc<Self>, swarm: Id20, peer: Id20) -> Option<Seat<H>> {
        if !self.is_joined(&swarm) {
            return None;
        }
        let mut c = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.config.max_peers {
            return None;
        }
        let set = c.by_swarm.entry(swarm).or_default();
        if set.len() >= self.config.max_peers_per_swarm || !set.insert(peer) {
            return None;
        }
        c.total += 1;
        Some(Seat {
            shared: self.clone(),
            swarm,
            peer,
        })
    }

    /// Browsers connected in `swarm`, and room for more there.
    pub fn occupancy(&self, swarm: &Id20) -> (usize, usize) {
        let c = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        let here = c.by_swarm.get(swarm).map_or(0, HashSet::len);
        let room = (self.config.max_peers.saturating_sub(c.total))
            .min(self.config.max_peers_per_swarm.saturating_sub(here));
        (here, room)
    }

    pub fn is_joined(&self, swarm: &Id20) -> bool {
        self.swarms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(swarm)
    }

    /// Serves a browser whose session the tracker connection set up.
    pub fn serve(self: &Arc<Self>, seat: Seat<H>, session: Session) {
        let Some((stream, held, wire, stop)) = self
            .swarms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&seat.swarm)
            .map(|j| {
                (
                    j.spec.stream.clone(),
                    j.spec.held.clone(),
                    j.spec.wire.clone(),
                    j.stop.clone(),
                )
            })
        else {
            return;
        };
        let name = PeerName {
            peer: printable(&seat.peer),
            swarm: printable(&seat.swarm),
        };
        let host = self.host.clone();
        let limits = self.config.peer;
        tokio::spawn(async move {
            let sent = match wire {
                Wire::Binary => peer::serve(session, name, stream, held, host, limits, stop).await,
                Wire::Fork(master) => {
                    fork::peer::serve(session, name, master, host, limits, stop).await
                }
            };
            debug!(bytes = sent, "browser connection ended");
            drop(seat);
        });
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn local(&self) -> Option<&Arc<Tracker>> {
        self.local.as_ref()
    }
}

/// An id as people read it: its characters when they are printable ASCII,
/// as p2p-media-loader's are, else hex.
pub(crate) fn printable(id: &Id20) -> String {
    id.as_ascii()
        .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| id.to_hex(), str::to_owned)
}

/// The seeder. Cheap to clone.
pub struct Swarms<H> {
    shared: Arc<Shared<H>>,
}

impl<H> Clone for Swarms<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H: Host> Swarms<H> {
    /// A seeder on `engine`; `local` is the built-in tracker, joined in
    /// process for every swarm.
    pub fn new(
        engine: Engine,
        host: Arc<H>,
        config: SwarmsConfig,
        local: Option<Arc<Tracker>>,
        shutdown: CancellationToken,
    ) -> Self {
        let peer_id = make_peer_id(&config.peer_id_prefix);
        info!(peer_id = %printable(&peer_id), "browser swarm seeder ready");
        Self {
            shared: Arc::new(Shared {
                engine,
                host,
                config,
                peer_id,
                local,
                shutdown,
                swarms: Mutex::default(),
                connected: Mutex::default(),
                trackers: Mutex::default(),
            }),
        }
    }

    /// The daemon's tracker peer id, as text.
    pub fn peer_id(&self) -> String {
        printable(&self.shared.peer_id)
    }

    /// Joins a swarm, or takes up its new spec (holdings, trackers).
    pub fn join(&self, spec: SwarmSpec) {
        let id = Id20(spec.info_hash);
        let policy: AnnouncePolicy = spec.announce;
        let mut trackers: Vec<String> = Vec::new();
        if self.shared.local.is_some() {
            trackers.push(LOCAL.into());
        }
        for t in self.shared.config.trackers.iter().chain(&spec.trackers) {
            if !trackers.contains(t) && (t.starts_with("ws://") || t.starts_with("wss://")) {
                trackers.push(t.clone());
            }
        }
        let previous = {
            let mut swarms = self.shared.swarms.lock().unwrap_or_else(|p| p.into_inner());
            let stop = swarms
                .get(&id)
                .map(|j| j.stop.clone())
                .unwrap_or_else(|| self.shared.shutdown.child_token());
            swarms.insert(
                id,
                Joined {
                    spec,
                    trackers: trackers.clone(),
                    stop,
                },
            )
        };
        let before: Vec<String> = previous.map(|p| p.trackers).unwrap_or_default();
        for t in before.iter().filter(|t| !trackers.contains(t)) {
            self.command(t, TrackerCommand::Leave(id));
        }
        for t in trackers.iter().filter(|t| !before.contains(t)) {
            self.command(t, TrackerCommand::Join(id, policy));
        }
    }

    /// Leaves a swarm: its trackers hear `stopped`, its browsers are let go.
    pub fn leave(&self, info_hash: &[u8; 20]) {
        let id = Id20(*info_hash);
        let Some(joined) = self
            .shared
            .swarms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
        else {
            return;
        };
        joined.stop.cancel();
        for t in &joined.trackers {
            self.command(t, TrackerCommand::Leave(id));
        }
    }

    /// Every swarm joined, sorted by label.
    pub fn status(&self) -> Vec<SwarmStatus> {
        let swarms = self.shared.swarms.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<SwarmStatus> = swarms
            .iter()
            .map(|(id, j)| SwarmStatus {
                info_hash: printable(id),
                label: j.spec.label.clone(),
                segments: j.spec.held.borrow().len(),
                peers: self.shared.occupancy(id).0,
                trackers: j.trackers.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.label.cmp(&b.label).then(a.info_hash.cmp(&b.info_hash)));
        out
    }

    /// Browsers connected now, all swarms together.
    pub fn browsers(&self) -> usize {
        self.shared
            .connected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .total
    }

    fn command(&self, tracker: &str, command: TrackerCommand) {
        let mut trackers = self
            .shared
            .trackers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let tx = trackers.entry(tracker.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(client::run(self.shared.clone(), tracker.to_owned(), rx));
            tx
        });
        let _ = tx.send(command);
    }
}

/// `prefix` (cut or padded to 8) and 12 random letters and digits: ASCII,
/// as p2p-media-loader keys peers by their id read as text.
fn make_peer_id(prefix: &str) -> Id20 {
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = [b'-'; 20];
    for (i, b) in prefix
        .bytes()
        .filter(u8::is_ascii_graphic)
        .take(8)
        .enumerate()
    {
        id[i] = b;
    }
    for b in &mut id[8..] {
        *b = ALNUM[rand::random_range(0..ALNUM.len())];
    }
    Id20(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_printable_ascii_with_the_prefix() {
        let id = make_peer_id("-SW0100-");
        let text = printable(&id);
        assert_eq!(text.len(), 20);
        assert!(text.starts_with("-SW0100-"));
        assert_ne!(make_peer_id("-SW0100-"), id);
        assert!(
            printable(&Id20([0xff; 20]))
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
    }
}
