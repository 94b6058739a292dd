//! The engine task: one UDP socket, every session's `Rtc`, one loop.
//!
//! str0m is sans-IO, so this loop is all the IO there is: datagrams in,
//! routed to the session they belong to (by source address once known,
//! else by the ICE username of the STUN check that opened it); timeouts;
//! requests from the [`Engine`](super::Engine) handle; and writers'
//! queued messages moved into SCTP as its buffer drains.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::host::{self, Destinations};
use super::session::{Control, Incoming, Outbox, Session, Writer};
use super::{EngineConfig, RtcError, stun};

pub(crate) enum Request {
    Answer {
        offer: SdpOffer,
        reply: oneshot::Sender<Result<(String, Session), RtcError>>,
    },
    Offer {
        reply: oneshot::Sender<Result<(String, u64, Session), RtcError>>,
    },
    Answered {
        id: u64,
        answer: SdpAnswer,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    Count {
        reply: oneshot::Sender<usize>,
    },
    /// More STUN servers (`host:port`), asked at once.
    AddStun {
        servers: Vec<String>,
    },
}

/// STUN servers the engine asks at most, configured and added together.
const MAX_STUN_SERVERS: usize = 16;

/// Messages the engine holds for a session's owner before it is deemed
/// not to read them; the peer then floods us and loses its session.
const INCOMING_QUEUE: usize = 1024;

/// How often the public address is asked of the STUN servers again.
const STUN_REFRESH: Duration = Duration::from_secs(300);

/// How long a closing session may take to send its goodbyes.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// The most a datagram can be; the receive buffer's size.
const DATAGRAM: usize = 2048;

/// Datagrams read in a row before the loop looks at anything else.
const RECV_BATCH: usize = 64;

/// Datagrams one session takes before it is polled: below the 30 records
/// its DTLS layer queues unread.
const MAX_UNPOLLED: usize = 16;

struct Peer {
    rtc: Rtc,
    channel: Option<ChannelId>,
    incoming: mpsc::Sender<Incoming>,
    outbox: Arc<Outbox>,
    pending: Option<SdpPendingOffer>,
    /// Until the channel opens: when the session gives up.
    connect_by: Option<Instant>,
    next: Instant,
    remote: Option<SocketAddr>,
    /// Datagrams handled since the last poll.
    unpolled: usize,
}

struct Loop {
    config: EngineConfig,
    socket: UdpSocket,
    local: SocketAddr,
    hosts: Vec<SocketAddr>,
    reflexive: Vec<SocketAddr>,
    destinations: Destinations,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    peers: HashMap<u64, Peer>,
    by_source: HashMap<SocketAddr, u64>,
    next_id: u64,
    control_tx: mpsc::UnboundedSender<Control>,
    /// Outstanding STUN Binding requests: transaction id → server.
    stun_pending: Vec<([u8; 12], SocketAddr)>,
    /// Sessions given input since they were last polled.
    dirty: Vec<u64>,
}

pub(crate) async fn spawn(
    config: EngineConfig,
    shutdown: CancellationToken,
) -> Result<
    (
        mpsc::Sender<Request>,
        SocketAddr,
        tokio::task::JoinHandle<()>,
    ),
    RtcError,
> {
    let socket = UdpSocket::bind(config.listen).await?;
    let local = socket.local_addr()?;
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let cert = crypto
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| RtcError::Rtc("cannot generate a DTLS certificate".into()))?;
    let (requests, requests_rx) = mpsc::channel(64);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let hosts = host::candidates(local);
    info!(%local, candidates = ?hosts, "WebRTC engine listening");
    let engine = Loop {
        destinations: Destinations::new(local),
        config,
        socket,
        local,
        hosts,
        reflexive: Vec::new(),
        crypto,
        cert,
        peers: HashMap::new(),
        by_source: HashMap::new(),
        next_id: 0,
        control_tx,
        stun_pending: Vec::new(),
        dirty: Vec::new(),
    };
    let task = tokio::spawn(engine.run(requests_rx, control_rx, shutdown));
    Ok((requests, local, task))
}

impl Loop {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut control: mpsc::UnboundedReceiver<Control>,
        shutdown: CancellationToken,
    ) {
        let mut buf = vec![0u8; DATAGRAM];
        let mut stun_refresh = tokio::time::interval(STUN_REFRESH);
        loop {
            let next = self
                .peers
                .values()
                .map(|p| p.next)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(c) = control.recv() => {
                    self.control(c);
                    // Writers queue in bursts; take them all before polling.
                    while let Ok(c) = control.try_recv() {
                        self.control(c);
                    }
                    self.drive_dirty().await;
                }
                r = self.socket.recv_from(&mut buf) => {
                    match r {
                        Ok((n, source)) => {
                            self.datagram(source, &buf[..n]).await;
                            // A burst of SACKs is handled whole before the
                            // session is polled once: each poll walks SCTP's
                            // whole in-flight queue.
                            for _ in 1..RECV_BATCH {
                                match self.socket.try_recv_from(&mut buf) {
                                    Ok((n, source)) => self.datagram(source, &buf[..n]).await,
                                    Err(_) => break,
                                }
                            }
                            self.drive_dirty().await;
                        }
                        Err(e) => debug!(error = %e, "UDP receive failed"),
                    }
                }
                Some(r) = requests.recv() => self.request(r).await,
                _ = tokio::time::sleep_until(next.into()) => self.timeouts().await,
                _ = stun_refresh.tick(), if !self.config.stun_servers.is_empty() => self.ask_stun().await,
            }
        }
        for (_, p) in self.peers.drain() {
            p.outbox.close();
        }
        info!("WebRTC engine stopped");
    }

    fn new_rtc(&self) -> Result<Rtc, RtcError> {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_sctp_max_buffered_amount(self.config.sctp_buffered)
            .set_sctp_max_message_size(self.config.max_message as u32)
            .build(Instant::now());
        for addr in &self.hosts {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => debug!(%addr, error = %e, "host candidate refused"),
            }
        }
        for addr in &self.reflexive {
            let base = self
                .hosts
                .iter()
                .find(|h| h.is_ipv4() == addr.is_ipv4())
                .copied()
                .unwrap_or(self.local);
            if let Ok(c) = Candidate::server_reflexive(*addr, base, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        Ok(rtc)
    }

    /// A new session entry, and the handle its owner gets.
    fn admit(&mut self, rtc: Rtc, pending: Option<SdpPendingOffer>) -> (u64, Session) {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let outbox = Arc::new(Outbox::new(self.config.send_queue));
        let writer = Writer {
            id,
            outbox: outbox.clone(),
            control: self.control_tx.clone(),
        };
        self.peers.insert(
            id,
            Peer {
                rtc,
                channel: None,
                incoming: tx,
                outbox,
                pending,
                connect_by: Some(Instant::now() + self.config.connect_timeout),
                next: Instant::now(),
                remote: None,
                unpolled: 0,
            },
        );
        (
            id,
            Session {
                id,
                incoming: rx,
                writer,
            },
        )
    }

    async fn request(&mut self, r: Request) {
        match r {
            Request::Answer { offer, reply } => {
                let result = self.answer(offer).await;
                let _ = reply.send(result);
            }
            Request::Offer { reply } => {
                let result = self.offer().await;
                let _ = reply.send(result);
            }
            Request::Answered { id, answer, reply } => {
                let result = self.answered(id, answer).await;
                let _ = reply.send(result);
            }
            Request::Count { reply } => {
                let _ = reply.send(self.peers.len());
            }
            Request::AddStun { servers } => {
                let before = self.config.stun_servers.len();
                for s in servers {
                    if self.config.stun_servers.len() < MAX_STUN_SERVERS
                        && !self.config.stun_servers.contains(&s)
                    {
                        self.config.stun_servers.push(s);
                    }
                }
                if self.config.stun_servers.len() > before {
                    self.ask_stun().await;
                }
            }
        }
    }

    fn room(&self) -> Result<(), RtcError> {
        if self.peers.len() >= self.config.max_sessions {
            return Err(RtcError::Full(self.peers.len()));
        }
        Ok(())
    }

    async fn answer(&mut self, offer: SdpOffer) -> Result<(String, Session), RtcError> {
        self.room()?;
        let mut rtc = self.new_rtc()?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| RtcError::BadSdp(e.to_string()))?;
        let (id, session) = self.admit(rtc, None);
        self.drive(id).await;
        debug!(session = id, "answered an offer");
        Ok((answer.to_sdp_string(), session))
    }

    async fn offer(&mut self) -> Result<(String, u64, Session), RtcError> {
        self.room()?;
        let mut rtc = self.new_rtc()?;
        let mut api = rtc.sdp_api();
        // Any label; p2p-media-loader peers accept whichever channel comes.
        let label: [u8; 20] = rand::random();
        api.add_channel(label.iter().map(|b| format!("{b:02x}")).collect());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| RtcError::Rtc("no offer to make".into()))?;
        let (id, session) = self.admit(rtc, Some(pending));
        self.drive(id).await;
        Ok((offer.to_sdp_string(), id, session))
    }

    async fn answered(&mut self, id: u64, answer: SdpAnswer) -> Result<(), RtcError> {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Err(RtcError::NoOffer);
        };
        let Some(pending) = peer.pending.take() else {
            return Err(RtcError::NoOffer);
        };
        let result = peer.rtc.sdp_api().accept_answer(pending, answer);
        if let Err(e) = result {
            self.close(id, "bad answer");
            return Err(RtcError::BadSdp(e.to_string()));
        }
        self.drive(id).await;
        Ok(())
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Flush(id) => {
                self.flush(id);
                self.mark(id);
            }
            Control::Close(id) => {
                // A clean close (SCTP shutdown, DTLS close_notify) tells the
                // peer at once; the deadline ends it if that never drains.
                if let Some(p) = self.peers.get_mut(&id) {
                    p.outbox.close();
                    if p.rtc.close().is_err() {
                        p.rtc.disconnect();
                    }
                    p.connect_by = Some(Instant::now() + CLOSE_DRAIN);
                }
                self.mark(id);
            }
        }
    }

    async fn datagram(&mut self, source: SocketAddr, data: &[u8]) {
        if stun::is_stun(data) && self.stun_reply(source, data) {
            return;
        }
        let destination = self.destinations.of(source);
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let id = match self.by_source.get(&source) {
            Some(id) if self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)) => *id,
            _ => {
                let Some(id) = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.rtc.accepts(&input))
                    .map(|(id, _)| *id)
                else {
                    return;
                };
                self.by_source.insert(source, id);
                id
            }
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            debug!(session = id, error = %e, "datagram refused");
            self.close(id, "input failed");
            return;
        }
        // DTLS holds at most 30 records between polls, and the handshake's
        // flights are best taken as they come; an open channel's SACKs are
        // batched within that bound.
        peer.unpolled += 1;
        if peer.channel.is_none() || peer.unpolled >= MAX_UNPOLLED {
            self.drive(id).await;
        } else {
            self.mark(id);
        }
    }

    fn mark(&mut self, id: u64) {
        if !self.dirty.contains(&id) {
            self.dirty.push(id);
        }
    }

    async fn drive_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            self.drive(id).await;
        }
    }

    async fn timeouts(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if peer.connect_by.is_some_and(|t| t <= now) {
                self.close(id, "did not connect or close in time");
                continue;
            }
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                debug!(session = id, error = %e, "timeout failed");
                self.close(id, "timeout failed");
                continue;
            }
            self.drive(id).await;
        }
    }

    /// Moves queued messages into SCTP while it has room.
    fn flush(&mut self, id: u64) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(ch) = peer.channel else {
            return;
        };
        let Some(mut channel) = peer.rtc.channel(ch) else {
            return;
        };
        let mut moved = false;
        {
            let mut queue = peer.outbox.lock();
            while let Some(front) = queue.front() {
                match channel.write(true, front) {
                    Ok(true) => {
                        let len = front.len();
                        queue.pop_front();
                        peer.outbox.queued.fetch_sub(len, Ordering::AcqRel);
                        moved = true;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        debug!(session = id, error = %e, "channel write failed");
                        break;
                    }
                }
            }
        }
        if moved {
            peer.outbox.room.notify_waiters();
        }
    }

    /// Polls one session until it only waits: sends what it wants sent and
    /// handles what it reports.
    async fn drive(&mut self, id: u64) {
        loop {
            let Some(peer) = self.peers.get_mut(&id) else {
                return;
            };
            peer.unpolled = 0;
            if !peer.rtc.is_alive() {
                self.close(id, "closed");
                return;
            }
            let out = match peer.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = id, error = %e, "session failed");
                    self.close(id, "failed");
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    peer.next = match peer.connect_by {
                        Some(by) => t.min(by),
                        None => t,
                    };
                    return;
                }
                Output::Transmit(t) => {
                    if let Err(e) = self.send(&t.contents, t.destination).await {
                        debug!(destination = %t.destination, error = %e, "UDP send failed");
                    }
                }
                Output::Event(e) => self.event(id, e),
            }
        }
    }

    async fn send(&self, data: &[u8], to: SocketAddr) -> std::io::Result<()> {
        loop {
            match self.socket.try_send_to(data, to) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.socket.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn event(&mut self, id: u64, e: Event) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        match e {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                peer.rtc.disconnect();
            }
            Event::ChannelOpen(ch, _label) => {
                if peer.channel.is_some() {
                    // One channel a session; a second one is not ours to serve.
                    return;
                }
                peer.channel = Some(ch);
                peer.connect_by = None;
                if let Some(mut c) = peer.rtc.channel(ch) {
                    c.set_buffered_amount_low_threshold(self.config.sctp_buffered / 2);
                }
                let remote = peer.remote.unwrap_or(self.local);
                if peer.incoming.try_send(Incoming::Open { remote }).is_err() {
                    peer.rtc.disconnect();
                }
                self.flush(id);
            }
            Event::ChannelData(d) => {
                if Some(d.id) != peer.channel {
                    return;
                }
                if peer.incoming.try_send(Incoming::Message(d.data)).is_err() {
                    // The owner reads no more, or the peer floods us.
                    warn!(session = id, "incoming messages not read; closing");
                    peer.rtc.disconnect();
                }
            }
            Event::ChannelClose(ch) if Some(ch) == peer.channel => peer.rtc.disconnect(),
            Event::ChannelBufferedAmountLow(ch) if Some(ch) == peer.channel => self.flush(id),
            Event::Connected => {
                peer.remote = self
                    .by_source
                    .iter()
                    .find(|(_, v)| **v == id)
                    .map(|(k, _)| *k);
            }
            _ => {}
        }
    }

    fn close(&mut self, id: u64, why: &str) {
        if let Some(p) = self.peers.remove(&id) {
            debug!(session = id, why, "session closed");
            p.outbox.close();
            self.by_source.retain(|_, v| *v != id);
        }
    }

    async fn ask_stun(&mut self) {
        self.stun_pending.clear();
        for server in self.config.stun_servers.clone() {
            let Ok(mut addrs) = tokio::net::lookup_host(&server).await else {
                debug!(%server, "STUN server does not resolve");
                continue;
            };
            let Some(addr) = addrs.find(|a| a.is_ipv4() == self.local.is_ipv4()) else {
                continue;
            };
            let (msg, tid) = stun::binding_request();
            if self.send(&msg, addr).await.is_ok() {
                self.stun_pending.push((tid, addr));
            }
        }
    }

    /// Takes a STUN server's answer to our Binding request, if it is one.
    fn stun_reply(&mut self, source: SocketAddr, data: &[u8]) -> bool {
        let Some(i) = self.stun_pending.iter().position(|(tid, server)| {
            *server == source && stun::mapped_address(data, tid).is_some()
        }) else {
            return false;
        };
        let (tid, _) = self.stun_pending.swap_remove(i);
        if let Some(mapped) = stun::mapped_address(data, &tid)
            && !self.hosts.contains(&mapped)
            && !self.reflexive.contains(&mapped)
        {
            info!(%mapped, server = %source, "public address from STUN");
            self.reflexive.push(mapped);
        }
        true
    }
}
