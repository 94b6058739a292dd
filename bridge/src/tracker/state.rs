//! The tracker's state and what it does with each message: join and leave
//! swarms, relay offers and answers, expire silent peers.
//!
//! All state sits behind one `std` mutex, held only for map updates and
//! non-blocking channel sends, never across an `.await`. Messages for other
//! peers go into their bounded outboxes with `try_send`: a slow peer loses
//! its own messages and never delays anyone else.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::TrackerConfig;
use super::error::TrackerError;
use super::swarm::{ConnId, Member, Swarm};
use super::wire::{
    Action, AnnounceEvent, AnnounceReply, AnnounceRequest, ClientMessage, Failure, Id20,
    OfferEntry, RelayedAnswer, RelayedOffer, ScrapeCounts, ScrapeFlags, ScrapeReply, ScrapeRequest,
    TrackerMessage, decode_client_message,
};

/// A WebTorrent tracker: swarms of peers keyed by info_hash, which find
/// each other by the WebRTC offers and answers it relays.
///
/// Serve it over WebSocket with [`router`](super::router); add the daemon
/// itself to swarms with [`Tracker::connect_local`].
pub struct Tracker {
    pub(crate) config: TrackerConfig,
    state: Mutex<State>,
    next_conn: AtomicU64,
    pub(crate) shutdown: CancellationToken,
    /// Whether we already said that per-IP limits are off (no ConnectInfo).
    pub(crate) warned_no_addr: AtomicBool,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) swarms: HashMap<Id20, Swarm>,
    pub(crate) conns: HashMap<ConnId, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections that are not local.
    pub(crate) sockets: usize,
    /// Swarm memberships in total.
    pub(crate) peers: usize,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerAddr {
    pub(crate) ip: IpAddr,
    /// Unknown when the address came from `X-Forwarded-For`.
    pub(crate) port: Option<u16>,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (IpAddr::V4(ip), Some(port)) => write!(f, "{ip}:{port}"),
            (IpAddr::V6(ip), Some(port)) => write!(f, "[{ip}]:{port}"),
            (ip, None) => write!(f, "{ip}"),
        }
    }
}

pub(crate) struct Conn {
    outbox: mpsc::Sender<TrackerMessage>,
    /// Fixed by the first announce.
    pub(crate) peer_id: Option<Id20>,
    pub(crate) swarms: Vec<Id20>,
    pub(crate) remote: Option<PeerAddr>,
    /// The address counted against `max_sockets_per_ip`, if any.
    ip_counted: Option<IpAddr>,
    pub(crate) local: bool,
    /// Since when the connection is in no swarm.
    idle_since: Option<Instant>,
}

/// A connection's place in the tracker; dropping it removes the connection
/// from every swarm.
pub(crate) struct Registration {
    tracker: Arc<Tracker>,
    id: ConnId,
}

impl Registration {
    pub(crate) fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    pub(crate) fn id(&self) -> ConnId {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.unregister(self.id);
    }
}

impl Tracker {
    /// A tracker with `config`, and its sweeper task, which drops silent
    /// peers every `sweep_interval`. Everything it runs (the sweeper, every
    /// socket) stops when `shutdown` is cancelled: sockets are closed with
    /// 1001 "going away". Must be called inside a Tokio runtime.
    pub fn new(config: TrackerConfig, shutdown: CancellationToken) -> Arc<Self> {
        let tracker = Arc::new(Self {
            config,
            state: Mutex::default(),
            next_conn: AtomicU64::new(1),
            shutdown,
            warned_no_addr: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&tracker);
        let shutdown = tracker.shutdown.clone();
        let every = tracker.config.sweep_interval.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // Holding only a weak reference lets the tracker go away
                // when its last user drops it.
                let Some(tracker) = weak.upgrade() else { break };
                tracker.sweep();
            }
        });
        tracker
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still
        // consistent enough to serve; refusing forever would be worse.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection, within the socket limits (local ones are
    /// exempt), and gives it an outbox.
    pub(crate) fn register(
        self: &Arc<Self>,
        remote: Option<PeerAddr>,
        local: bool,
    ) -> Result<(Registration, mpsc::Receiver<TrackerMessage>), TrackerError> {
        if self.shutdown.is_cancelled() {
            return Err(TrackerError::ShuttingDown);
        }
        let limits = &self.config.limits;
        let mut st = self.lock();
        let mut ip_counted = None;
        if !local {
            if st.sockets >= limits.max_sockets {
                warn!(
                    max = limits.max_sockets,
                    "tracker: connection refused, socket limit reached"
                );
                return Err(TrackerError::TooManySockets {
                    max: limits.max_sockets,
                });
            }
            if let Some(addr) = remote {
                let exempt = addr.ip.is_loopback() && limits.exempt_loopback_from_ip_limit;
                if !exempt {
                    let open = st.per_ip.get(&addr.ip).copied().unwrap_or(0);
                    if open >= limits.max_sockets_per_ip {
                        info!(
                            ip = %addr.ip,
                            max = limits.max_sockets_per_ip,
                            "tracker: connection refused, per-address limit reached"
                        );
                        return Err(TrackerError::TooManySocketsPerIp {
                            max: limits.max_sockets_per_ip,
                        });
                    }
                    *st.per_ip.entry(addr.ip).or_default() += 1;
                    ip_counted = Some(addr.ip);
                }
            }
        }
        let capacity = if local {
            limits.local_outbox_messages
        } else {
            limits.outbox_messages
        };
        if !local {
            st.sockets += 1;
        }
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        st.conns.insert(
            id,
            Conn {
                outbox: tx,
                peer_id: None,
                swarms: Vec::new(),
                remote,
                ip_counted,
                local,
                idle_since: Some(Instant::now()),
            },
        );
        drop(st);
        debug!(
            conn = id,
            remote = ?remote.map(|a| a.to_string()),
            local,
            "tracker: connection opened"
        );
        let reg = Registration {
            tracker: self.clone(),
            id,
        };
        Ok((reg, rx))
    }

    /// Forgets a connection and takes it out of all its swarms.
    fn unregister(&self, id: ConnId) {
        let mut st = self.lock();
        let Some(conn) = st.conns.remove(&id) else {
            return;
        };
        if !conn.local {
            st.sockets -= 1;
        }
        if let Some(ip) = conn.ip_counted
            && let Some(n) = st.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&ip);
            }
        }
        if let Some(peer_id) = conn.peer_id {
            for info_hash in &conn.swarms {
                remove_member(&mut st, info_hash, &peer_id, id);
            }
        }
        drop(st);
        debug!(
            conn = id,
            peer_id = ?conn.peer_id,
            swarms = conn.swarms.len(),
            "tracker: connection closed"
        );
    }

    /// How long the connection has been in no swarm, if it is in none.
    pub(crate) fn idle_for(&self, id: ConnId) -> Option<Duration> {
        let st = self.lock();
        st.conns.get(&id)?.idle_since.map(|t| t.elapsed())
    }

    /// Queues a message for a connection; dropped if its outbox is full.
    pub(crate) fn deliver(&self, id: ConnId, msg: TrackerMessage) {
        let st = self.lock();
        if let Some(conn) = st.conns.get(&id) {
            push(conn, id, msg);
        }
    }

    /// Decodes and handles one text message from a connection; the result
    /// is the reply to send back to it, if any.
    pub(crate) fn handle_text(&self, id: ConnId, text: &str) -> Option<TrackerMessage> {
        match decode_client_message(text) {
            Ok(msg) => self.handle(id, msg),
            Err(e) => {
                debug!(conn = id, reason = %e.reason, "tracker: undecodable message");
                Some(TrackerMessage::Failure(e.to_failure()))
            }
        }
    }

    /// Handles one message from a connection; the result is the reply to
    /// send back to it, if any.
    pub(crate) fn handle(&self, id: ConnId, msg: ClientMessage) -> Option<TrackerMessage> {
        match msg {
            ClientMessage::Announce(req) => {
                let info_hash = req.info_hash;
                match self.announce(id, req) {
                    Ok(reply) => reply.map(TrackerMessage::Announce),
                    Err(e) => {
                        debug!(conn = id, %info_hash, reason = %e, "tracker: announce refused");
                        Some(failure(Action::Announce, Some(info_hash), &e))
                    }
                }
            }
            ClientMessage::Scrape(req) => match self.scrape(req) {
                Ok(reply) => Some(TrackerMessage::Scrape(reply)),
                Err(e) => Some(failure(Action::Scrape, None, &e)),
            },
        }
    }

    fn announce(
        &self,
        id: ConnId,
        req: AnnounceRequest,
    ) -> Result<Option<AnnounceReply>, TrackerError> {
        let now = Instant::now();
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(conn) = st.conns.get_mut(&id) else {
            return Err(TrackerError::ShuttingDown);
        };
        let peer_id = req.peer_id;
        match conn.peer_id {
            None => conn.peer_id = Some(peer_id),
            Some(first) if first != peer_id => {
                return Err(TrackerError::PeerIdChanged {
                    first,
                    other: peer_id,
                });
            }
            Some(_) => {}
        }
        let local = conn.local;
        let info_hash = req.info_hash;

        if req.event == Some(AnnounceEvent::Stopped) {
            remove_member(st, &info_hash, &peer_id, id);
            debug!(conn = id, %info_hash, %peer_id, "tracker: peer stopped");
            return Ok(Some(self.reply(st, &info_hash, None)));
        }

        self.join(st, id, &req, now)?;
        // bittorrent-tracker sends no reply to an announce carrying an
        // answer; clients do not expect one.
        let reply_wanted = req.answer.is_none();
        if let Some(answer) = req.answer {
            let (Some(to), Some(offer_id)) = (req.to_peer_id, req.offer_id) else {
                return Err(TrackerError::AnswerWithoutTarget);
            };
            let msg = RelayedAnswer {
                info_hash,
                peer_id,
                answer,
                offer_id,
            };
            relay_answer(st, id, to, msg);
        }
        let mut warning = None;
        if let Some(mut offers) = req.offers {
            let cap = if local {
                usize::MAX
            } else {
                self.config.limits.max_offers_per_announce
            };
            if offers.len() > cap {
                warning = Some(format!(
                    "{} offers sent; only the first {cap} are relayed",
                    offers.len()
                ));
                offers.truncate(cap);
            }
            let local_first = self.config.offer_to_local_first;
            relay_offers(st, id, &info_hash, &peer_id, offers, local_first);
        }
        Ok(reply_wanted.then(|| self.reply(st, &info_hash, warning)))
    }

    /// Adds the connection's peer to the swarm, or refreshes it.
    fn join(
        &self,
        st: &mut State,
        id: ConnId,
        req: &AnnounceRequest,
        now: Instant,
    ) -> Result<(), TrackerError> {
        let limits = &self.config.limits;
        let complete = req.left == Some(0) || req.event == Some(AnnounceEvent::Completed);
        let peer_id = req.peer_id;
        let info_hash = req.info_hash;
        if let Some(swarm) = st.swarms.get_mut(&info_hash)
            && let Some(existing) = swarm.get(&peer_id)
        {
            // A peer_id belongs to the connection that brought it into the
            // swarm until that one leaves: otherwise anyone who saw an
            // offer could take over (and silence) that peer, the
            // daemon's own seeder included.
            if existing.conn != id {
                return Err(TrackerError::PeerIdInUse(peer_id));
            }
            swarm.touch(&peer_id, now, complete);
            return Ok(());
        }
        let conn = st.conns.get(&id).ok_or(TrackerError::ShuttingDown)?;
        let local = conn.local;
        if !local {
            if conn.swarms.len() >= limits.max_swarms_per_socket {
                return Err(TrackerError::TooManySwarmsPerSocket {
                    max: limits.max_swarms_per_socket,
                });
            }
            if st.peers >= limits.max_peers {
                warn!(
                    max = limits.max_peers,
                    "tracker: announce refused, peer limit reached"
                );
                return Err(TrackerError::TooManyPeers {
                    max: limits.max_peers,
                });
            }
            match st.swarms.get(&info_hash) {
                Some(swarm) if swarm.len() >= limits.max_peers_per_swarm => {
                    info!(
                        %info_hash,
                        max = limits.max_peers_per_swarm,
                        "tracker: announce refused, swarm full"
                    );
                    return Err(TrackerError::SwarmFull {
                        max: limits.max_peers_per_swarm,
                    });
                }
                None if st.swarms.len() >= limits.max_swarms => {
                    warn!(
                        max = limits.max_swarms,
                        "tracker: announce refused, swarm limit reached"
                    );
                    return Err(TrackerError::TooManySwarms {
                        max: limits.max_swarms,
                    });
                }
                _ => {}
            }
        }
        st.swarms.entry(info_hash).or_default().insert(Member {
            peer_id,
            conn: id,
            complete,
            last_seen: now,
            local,
        });
        st.peers += 1;
        if let Some(conn) = st.conns.get_mut(&id) {
            conn.swarms.push(info_hash);
            conn.idle_since = None;
        }
        debug!(conn = id, %info_hash, %peer_id, local, "tracker: peer joined");
        Ok(())
    }

    fn reply(&self, st: &State, info_hash: &Id20, warning: Option<String>) -> AnnounceReply {
        let (complete, incomplete) = st
            .swarms
            .get(info_hash)
            .map_or((0, 0), |s| (s.complete(), s.incomplete()));
        AnnounceReply {
            info_hash: *info_hash,
            complete: complete as u64,
            incomplete: incomplete as u64,
            interval: Some(self.config.interval_secs()),
            min_interval: None,
            warning,
        }
    }

    fn scrape(&self, req: ScrapeRequest) -> Result<ScrapeReply, TrackerError> {
        let max = self.config.limits.max_scrape_info_hashes;
        let info_hashes = req.info_hash.ok_or(TrackerError::ScrapeAll)?;
        if info_hashes.is_empty() {
            return Err(TrackerError::ScrapeAll);
        }
        if info_hashes.len() > max {
            return Err(TrackerError::ScrapeTooLarge { max });
        }
        let st = self.lock();
        let files = info_hashes
            .into_iter()
            .map(|ih| {
                let (complete, incomplete) = st
                    .swarms
                    .get(&ih)
                    .map_or((0, 0), |s| (s.complete() as u64, s.incomplete() as u64));
                let counts = ScrapeCounts {
                    complete,
                    incomplete,
                    downloaded: complete,
                };
                (ih, counts)
            })
            .collect();
        Ok(ScrapeReply {
            files,
            flags: Some(ScrapeFlags {
                min_request_interval: self.config.interval_secs(),
            }),
        })
    }

    /// Drops members that have not announced within `peer_ttl` (local
    /// members never expire) and swarms left empty. Returns how many
    /// memberships it dropped. The sweeper calls this.
    pub(crate) fn sweep(&self) -> usize {
        let Some(cutoff) = Instant::now().checked_sub(self.config.peer_ttl) else {
            return 0;
        };
        let mut guard = self.lock();
        let st = &mut *guard;
        let expired: Vec<(Id20, Id20, ConnId)> = st
            .swarms
            .iter()
            .flat_map(|(ih, s)| {
                s.expired(cutoff)
                    .into_iter()
                    .filter_map(|p| s.get(&p).map(|m| (*ih, p, m.conn)))
            })
            .collect();
        for (info_hash, peer_id, conn) in &expired {
            remove_member(st, info_hash, peer_id, *conn);
        }
        if !expired.is_empty() {
            debug!(
                expired = expired.len(),
                swarms = st.swarms.len(),
                peers = st.peers,
                "tracker: silent peers expired"
            );
        }
        expired.len()
    }
}

/// Routes an answer to `to`, but only to a current member of that very
/// swarm (and not back to the sender), so answers cannot be used to message
/// arbitrary connections.
fn relay_answer(st: &State, from_conn: ConnId, to: Id20, msg: RelayedAnswer) {
    let (info_hash, from) = (msg.info_hash, msg.peer_id);
    let target = st.swarms.get(&info_hash).and_then(|s| s.get(&to));
    match target.filter(|t| t.conn != from_conn) {
        Some(target) => {
            if let Some(c) = st.conns.get(&target.conn) {
                push(c, target.conn, TrackerMessage::Answer(msg));
            }
            debug!(conn = from_conn, %info_hash, %from, %to, "tracker: answer relayed");
        }
        None => {
            debug!(
                conn = from_conn,
                %info_hash,
                %from,
                %to,
                "tracker: answer for a peer not in the swarm dropped"
            );
        }
    }
}

/// Hands each offer to a different member other than the sender.
fn relay_offers(
    st: &State,
    from_conn: ConnId,
    info_hash: &Id20,
    from: &Id20,
    offers: Vec<OfferEntry>,
    local_first: bool,
) {
    let Some(swarm) = st.swarms.get(info_hash) else {
        return;
    };
    let chosen = swarm.choose(offers.len(), from, local_first);
    let relayed = chosen.len();
    for (member, entry) in chosen.into_iter().zip(offers) {
        if let Some(c) = st.conns.get(&member.conn) {
            let msg = TrackerMessage::Offer(RelayedOffer {
                info_hash: *info_hash,
                peer_id: *from,
                offer: entry.offer,
                offer_id: entry.offer_id,
            });
            push(c, member.conn, msg);
        }
    }
    debug!(conn = from_conn, %info_hash, %from, relayed, "tracker: offers relayed");
}

/// Takes `peer_id` out of a swarm if `conn` is what put it there, and the
/// swarm out of the connection's list; drops the swarm if it is empty.
fn remove_member(st: &mut State, info_hash: &Id20, peer_id: &Id20, conn: ConnId) {
    if let Some(swarm) = st.swarms.get_mut(info_hash)
        && swarm.get(peer_id).is_some_and(|m| m.conn == conn)
    {
        swarm.remove(peer_id);
        st.peers -= 1;
        if swarm.is_empty() {
            st.swarms.remove(info_hash);
        }
    }
    if let Some(c) = st.conns.get_mut(&conn) {
        c.swarms.retain(|ih| ih != info_hash);
        if c.swarms.is_empty() && c.idle_since.is_none() {
            c.idle_since = Some(Instant::now());
        }
    }
}

fn push(conn: &Conn, id: ConnId, msg: TrackerMessage) {
    match conn.outbox.try_send(msg) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            debug!(
                conn = id,
                "tracker: outbox full, message for a slow peer dropped"
            );
        }
        // It is closing; its registration is about to go.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

fn failure(action: Action, info_hash: Option<Id20>, e: &TrackerError) -> TrackerMessage {
    TrackerMessage::Failure(Failure {
        reason: e.to_string(),
        action: Some(action),
        info_hash,
    })
}
