//! One tracker connection of the seeder: the WebSocket to a tracker (or the
//! built-in tracker, in process), carrying every swarm announced there.
//!
//! Each swarm is announced on joining (`started`) and again within the
//! tracker's interval. Relayed offers are answered at once, well within
//! the offerer's 50 s; offers of the daemon's own go out with an announce
//! when the tracker's counts show browsers it is not connected to, at most
//! once an interval, and are dropped unanswered after 50 s. A lost
//! connection is made again with a growing, jittered delay.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

use super::host::{AnnouncePolicy, Host};
use super::swarms::{LOCAL, Shared};
use crate::rtc::PendingOffer;
use crate::tracker::LocalConnection;
use crate::tracker::wire::{
    AnnounceEvent, AnnounceRequest, ClientMessage, Id20, OfferEntry, RelayedAnswer, RelayedOffer,
    SdpType, SessionDescription, TrackerMessage,
};

/// What the seeder tells a tracker connection.
pub(crate) enum TrackerCommand {
    Join(Id20, AnnouncePolicy),
    Leave(Id20),
}

/// Until a tracker names its interval.
const FIRST_INTERVAL: Duration = Duration::from_secs(30);
/// Bounds on the interval a tracker may ask for.
const MIN_INTERVAL: Duration = Duration::from_secs(2);
const MAX_INTERVAL: Duration = Duration::from_secs(1800);
/// How long browsers keep an offer open (bittorrent-tracker's client).
const OFFER_LIFETIME: Duration = Duration::from_secs(50);
/// The largest message taken from a tracker.
const MAX_MESSAGE: usize = 256 * 1024;
/// Offers waiting for answers on one connection, all swarms together.
const MAX_PENDING_OFFERS: usize = 64;

struct Swarm {
    next: Instant,
    interval: Duration,
    started: bool,
    /// Members the tracker last counted, the daemon included.
    members: u64,
    next_offers: Instant,
    policy: AnnouncePolicy,
    /// When messages about this swarm went out, within the policy's window.
    sent: VecDeque<Instant>,
}

impl Swarm {
    /// Takes one message from the policy's budget, keeping `reserve` of it
    /// for the announces due within the window; `false` if there is none.
    fn spend(&mut self, now: Instant, reserve: u32) -> bool {
        let Some((limit, window)) = self.policy.limit else {
            return true;
        };
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.sent.pop_front();
        }
        if self.sent.len() as u32 + reserve >= limit {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// Announces the window will need: one per interval, and one more.
    fn announce_reserve(&self) -> u32 {
        match self.policy.limit {
            Some((_, window)) => {
                (window.as_secs_f64() / self.interval.as_secs_f64().max(1.0)).ceil() as u32 + 1
            }
            None => 0,
        }
    }

    /// When the oldest message leaves the window.
    fn budget_frees(&self, now: Instant) -> Instant {
        match (self.policy.limit, self.sent.front()) {
            (Some((_, window)), Some(t)) => *t + window,
            _ => now,
        }
    }
}

struct Pending {
    swarm: Id20,
    offer: PendingOffer,
    expires: Instant,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Link {
    Ws(Box<Ws>),
    Local(LocalConnection),
}

impl Link {
    async fn send(&mut self, msg: ClientMessage) -> bool {
        match self {
            Link::Local(l) => {
                l.send(msg);
                true
            }
            Link::Ws(ws) => match serde_json::to_string(&msg) {
                Ok(text) => ws.send(WsMessage::text(text)).await.is_ok(),
                Err(_) => true,
            },
        }
    }

    /// The next message; `None` once the connection is gone.
    async fn recv(&mut self) -> Option<TrackerMessage> {
        match self {
            Link::Local(l) => l.recv().await,
            Link::Ws(ws) => loop {
                match ws.next().await? {
                    Ok(WsMessage::Text(text)) => match serde_json::from_str(&text) {
                        Ok(m) => return Some(m),
                        Err(e) => debug!(error = %e, "tracker message not understood"),
                    },
                    Ok(WsMessage::Close(_)) | Err(_) => return None,
                    Ok(_) => {}
                }
            },
        }
    }
}

/// Runs one tracker connection until the seeder shuts down.
pub(crate) async fn run<H: Host>(
    shared: Arc<Shared<H>>,
    url: String,
    mut commands: mpsc::UnboundedReceiver<TrackerCommand>,
) {
    let mut conn = Conn {
        shared: shared.clone(),
        url,
        swarms: HashMap::new(),
        pending: HashMap::new(),
    };
    let mut failures = 0u32;
    loop {
        let link = tokio::select! {
            _ = shared.shutdown().cancelled() => return,
            l = conn.connect() => l,
        };
        match link {
            Some(link) => {
                failures = 0;
                if conn.session(link, &mut commands).await {
                    return;
                }
            }
            None => failures += 1,
        }
        // Joins and leaves still count while disconnected.
        while let Ok(c) = commands.try_recv() {
            conn.command(c, None).await;
        }
        let delay = backoff(failures);
        debug!(url = %conn.url, ?delay, "tracker connection lost; retrying");
        tokio::select! {
            _ = shared.shutdown().cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// 1 s, doubling to 5 minutes, plus up to a quarter of it at random, so
/// many daemons do not come back at once.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1 << failures.min(8)).min(Duration::from_secs(300));
    base + base.mul_f64(rand::random::<f64>() / 4.0)
}

struct Conn<H> {
    shared: Arc<Shared<H>>,
    url: String,
    swarms: HashMap<Id20, Swarm>,
    pending: HashMap<Id20, Pending>,
}

impl<H: Host> Conn<H> {
    async fn connect(&self) -> Option<Link> {
        if self.url == LOCAL {
            return self
                .shared
                .local()
                .and_then(|t| t.connect_local().ok())
                .map(Link::Local);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connecting =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config), false);
        match tokio::time::timeout(Duration::from_secs(15), connecting).await {
            Ok(Ok((ws, _))) => {
                info!(url = %self.url, "tracker connected");
                Some(Link::Ws(Box::new(ws)))
            }
            Ok(Err(e)) => {
                debug!(url = %self.url, error = %e, "tracker unreachable");
                None
            }
            Err(_) => None,
        }
    }

    /// One connection's life; `true` when the seeder shut down.
    async fn session(
        &mut self,
        mut link: Link,
        commands: &mut mpsc::UnboundedReceiver<TrackerCommand>,
    ) -> bool {
        let now = Instant::now();
        for s in self.swarms.values_mut() {
            s.started = false;
            s.next = now;
        }
        loop {
            if !self.announce_due(&mut link).await {
                return false;
            }
            let next = self
                .swarms
                .values()
                .map(|s| s.next)
                .chain(self.pending.values().map(|p| p.expires))
                .min()
                .unwrap_or_else(|| Instant::now() + MAX_INTERVAL);
            tokio::select! {
                _ = self.shared.shutdown().cancelled() => return true,
                c = commands.recv() => match c {
                    Some(c) => self.command(c, Some(&mut link)).await,
                    None => return true,
                },
                m = link.recv() => match m {
                    Some(m) => {
                        if !self.message(m, &mut link).await {
                            return false;
                        }
                    }
                    None => return false,
                },
                _ = tokio::time::sleep_until(next) => {
                    let now = Instant::now();
                    self.pending.retain(|_, p| p.expires > now);
                }
            }
        }
    }

    async fn command(&mut self, c: TrackerCommand, link: Option<&mut Link>) {
        match c {
            TrackerCommand::Join(id, policy) => {
                let now = Instant::now();
                self.swarms.entry(id).or_insert(Swarm {
                    next: now,
                    interval: FIRST_INTERVAL,
                    started: false,
                    members: 0,
                    next_offers: now,
                    policy,
                    sent: VecDeque::new(),
                });
            }
            TrackerCommand::Leave(id) => {
                self.pending.retain(|_, p| p.swarm != id);
                if let Some(s) = self.swarms.remove(&id)
                    && s.policy.stop_on_leave
                    && let Some(link) = link
                {
                    let bye =
                        AnnounceRequest::new(id, self.shared.peer_id, Some(AnnounceEvent::Stopped));
                    link.send(bye.into()).await;
                }
            }
        }
    }

    /// Announces every swarm whose time has come; `false` if the link broke.
    async fn announce_due(&mut self, link: &mut Link) -> bool {
        let now = Instant::now();
        let due: Vec<Id20> = self
            .swarms
            .iter()
            .filter(|(_, s)| s.next <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(s) = self.swarms.get_mut(&id) else {
                continue;
            };
            if !s.spend(now, 0) {
                // Over the tracker's budget: announce once it frees.
                s.next = s.budget_frees(now).max(now + MIN_INTERVAL);
                continue;
            }
            let offers = self.offers_for(id, now).await;
            let Some(s) = self.swarms.get_mut(&id) else {
                continue;
            };
            let event = (!s.started).then_some(AnnounceEvent::Started);
            s.started = true;
            s.next = now + s.interval;
            let mut msg = AnnounceRequest::with_offers(id, self.shared.peer_id, event, offers);
            // A seeder holds what it serves; trackers count it as complete.
            msg.left = Some(0);
            if !link.send(msg.into()).await {
                return false;
            }
        }
        true
    }

    /// Fresh offers for one announce of `swarm`: as many as the tracker's
    /// last count shows browsers not yet connected, within the caps.
    async fn offers_for(&mut self, swarm: Id20, now: Instant) -> Vec<OfferEntry> {
        // At most one round an interval, whether or not offers can be made.
        let members = match self.swarms.get_mut(&swarm) {
            Some(s) if s.next_offers <= now && s.members > 1 => {
                s.next_offers = now + s.interval;
                s.members as usize
            }
            _ => return Vec::new(),
        };
        let (here, room) = self.shared.occupancy(&swarm);
        let strangers = members.saturating_sub(1 + here);
        let want = strangers
            .min(room)
            .min(self.shared.config.offers_per_announce)
            .min(MAX_PENDING_OFFERS.saturating_sub(self.pending.len()));
        let mut out = Vec::with_capacity(want);
        for _ in 0..want {
            match self.shared.engine.create_offer().await {
                Ok((sdp, offer)) => {
                    let offer_id = Id20(rand::random());
                    self.pending.insert(
                        offer_id,
                        Pending {
                            swarm,
                            offer,
                            expires: now + OFFER_LIFETIME,
                        },
                    );
                    out.push(OfferEntry {
                        offer: SessionDescription {
                            kind: SdpType::Offer,
                            sdp,
                        },
                        offer_id,
                    });
                }
                Err(e) => {
                    debug!(error = %e, "no offer made");
                    break;
                }
            }
        }
        out
    }

    /// Takes one message from the tracker; `false` if the link broke.
    async fn message(&mut self, m: TrackerMessage, link: &mut Link) -> bool {
        match m {
            TrackerMessage::Announce(reply) => {
                let Some(s) = self.swarms.get_mut(&reply.info_hash) else {
                    return true;
                };
                if let Some(secs) = reply.interval.or(reply.min_interval) {
                    s.interval = Duration::from_secs(secs).clamp(MIN_INTERVAL, MAX_INTERVAL);
                    s.next = s.next.min(Instant::now() + s.interval);
                }
                s.members = reply.complete + reply.incomplete;
                // Browsers already there hear from us now, not an interval on.
                let (here, _) = self.shared.occupancy(&reply.info_hash);
                if s.members as usize > 1 + here && s.next_offers <= Instant::now() {
                    s.next = Instant::now();
                }
                true
            }
            TrackerMessage::Offer(offer) => self.answer(offer, link).await,
            TrackerMessage::Answer(answer) => {
                self.answered(answer).await;
                true
            }
            TrackerMessage::Failure(f) => {
                warn!(url = %self.url, reason = %f.reason, "tracker refused a request");
                true
            }
            TrackerMessage::Scrape(_) => true,
        }
    }

    /// A browser's offer, relayed: answered unless that browser is already
    /// connected in this swarm or there is no room.
    async fn answer(&mut self, offer: RelayedOffer, link: &mut Link) -> bool {
        if offer.offer.kind != SdpType::Offer || offer.peer_id == self.shared.peer_id {
            return true;
        }
        // An answer counts against the tracker's budget like an announce;
        // the browser's other offers find other peers.
        let budget = match self.swarms.get_mut(&offer.info_hash) {
            Some(s) => {
                let reserve = s.announce_reserve();
                s.spend(Instant::now(), reserve)
            }
            None => false,
        };
        if !budget {
            return true;
        }
        let Some(seat) = self.shared.seat(offer.info_hash, offer.peer_id) else {
            return true;
        };
        let (sdp, session) = match self.shared.engine.accept_offer(&offer.offer.sdp).await {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "relayed offer refused");
                return true;
            }
        };
        let reply = AnnounceRequest::answer(
            offer.info_hash,
            self.shared.peer_id,
            offer.peer_id,
            offer.offer_id,
            sdp,
        );
        if !link.send(reply.into()).await {
            return false;
        }
        self.shared.serve(seat, session);
        true
    }

    /// A browser's answer to one of our offers.
    async fn answered(&mut self, answer: RelayedAnswer) {
        if answer.answer.kind != SdpType::Answer {
            return;
        }
        let Some(p) = self.pending.remove(&answer.offer_id) else {
            return;
        };
        if p.swarm != answer.info_hash {
            return;
        }
        let Some(seat) = self.shared.seat(answer.info_hash, answer.peer_id) else {
            return;
        };
        match p.offer.accept_answer(&answer.answer.sdp).await {
            Ok(session) => self.shared.serve(seat, session),
            Err(e) => debug!(error = %e, "answer refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swarm(policy: AnnouncePolicy, interval: Duration) -> Swarm {
        let now = Instant::now();
        Swarm {
            next: now,
            interval,
            started: false,
            members: 0,
            next_offers: now,
            policy,
            sent: VecDeque::new(),
        }
    }

    #[test]
    fn a_peertube_tracker_hears_at_most_15_messages_a_swarm_in_5_minutes() {
        let mut s = swarm(AnnouncePolicy::peertube(), Duration::from_secs(120));
        let start = Instant::now();
        // Answers leave room for the window's announces: 300 s / 120 s, and one more.
        let reserve = s.announce_reserve();
        assert_eq!(reserve, 4);
        let answers = (0..40).filter(|_| s.spend(start, reserve)).count();
        assert_eq!(answers, 15 - 4);
        // Announces take what answers left.
        let announces = (0..40).filter(|_| s.spend(start, 0)).count();
        assert_eq!(answers + announces, 15);
        assert_eq!(s.budget_frees(start), start + Duration::from_secs(300));
        // Once the window has passed, the budget is whole again.
        let later = start + Duration::from_secs(300);
        assert!(s.spend(later, 0));
        // Other trackers are not limited.
        let mut free = swarm(AnnouncePolicy::default(), Duration::from_secs(120));
        assert!((0..1000).all(|_| free.spend(start, 0)));
    }
}
