//! The engine task: its UDP sockets, every session's `Rtc`, one loop.
//!
//! str0m is sans-IO, so this loop is all the IO there is: datagrams in,
//! routed to the session they belong to (by source address once known,
//! else by the ICE username of the STUN check that opened it, which also
//! opens WebRTC-direct sessions); timeouts; requests from the
//! [`Engine`](super::Engine) handle; and writers' queued messages moved
//! into SCTP as its buffer drains.
//!
//! Every data channel is a pipe: a queue in, an outbox out. A session made
//! from SDP has one; a WebRTC-direct connection has one per libp2p stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, info, warn};

use super::direct::{DirectConn, DirectEvent, ice};
use super::session::{Control, Incoming, Outbox, Session, Writer};
use super::sockets::{DirectListener, Sock, Sockets};
use super::{Engine, EngineConfig, Listening, RtcError, stun};

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
    /// A channel to the browser of a WebRTC-direct connection.
    OpenChannel {
        id: u64,
        reply: oneshot::Sender<Result<Session, RtcError>>,
    },
}

/// STUN servers the engine asks at most, configured and added together.
const MAX_STUN_SERVERS: usize = 16;

/// Messages the engine holds for a channel's owner before it is deemed
/// not to read them; the peer then floods us and loses its session.
const INCOMING_QUEUE: usize = 1024;

/// Channels one WebRTC-direct connection may hold at once, its streams.
const MAX_CHANNELS: usize = 512;

/// WebRTC-direct connections a listener holds before its owner takes them,
/// and handshakes under way at once, all listeners together.
const DIRECT_BACKLOG: usize = 64;

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

enum Kind {
    /// Made from SDP: one channel, whichever opens first.
    Sdp {
        pipe: u64,
        pending: Option<SdpPendingOffer>,
    },
    /// WebRTC-direct: channel 0 for Noise, then one per stream.
    Direct {
        events: mpsc::Sender<DirectEvent>,
        noise: ChannelId,
        connected: bool,
    },
}

struct Peer {
    rtc: Rtc,
    sock: u64,
    kind: Kind,
    /// Open (or opening) channels and their pipes.
    channels: HashMap<ChannelId, u64>,
    /// Until the first channel opens: when the session gives up.
    connect_by: Option<Instant>,
    next: Instant,
    remote: Option<SocketAddr>,
    /// Datagrams handled since the last poll.
    unpolled: usize,
    /// Pipes with messages SCTP had no room for. Its room is shared by
    /// all of a session's channels, so one channel's acks can free room
    /// for another that never crossed its own low-water mark.
    blocked: Vec<u64>,
    /// Channels let go of, waiting for the peer to close them: when both
    /// sides reset a stream at once, SCTP's one-at-a-time reconfiguration
    /// stalls a second, long enough for the peer to reuse the id before our
    /// reset completes, and that channel dies. So the browser, which closes
    /// every stream it has finished, closes; we do only when it does not.
    lingering: Vec<(ChannelId, Instant)>,
}

/// How long a channel let go of waits for the peer to close it.
const LINGER: Duration = Duration::from_secs(5);

struct Pipe {
    session: u64,
    channel: Option<ChannelId>,
    incoming: mpsc::Sender<Incoming>,
    outbox: Arc<Outbox>,
    /// The owner let go: close the channel once the outbox is empty.
    closing: bool,
}

struct Loop {
    /// Handed to WebRTC-direct connections, which open channels with it.
    handle: Engine,
    config: EngineConfig,
    sockets: Sockets,
    reflexive: Vec<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    peers: HashMap<u64, Peer>,
    pipes: HashMap<u64, Pipe>,
    by_source: HashMap<(u64, SocketAddr), u64>,
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
) -> Result<(Engine, tokio::task::JoinHandle<()>), RtcError> {
    let mut sockets = Sockets::default();
    let mut local = None;
    if let Some(listen) = config.listen {
        let sock = Sock::new(0, super::sockets::bind(listen).await?, true)?;
        info!(local = %sock.local, candidates = ?sock.hosts, "WebRTC engine listening");
        local = Some(sock.local);
        sockets.all.push(sock);
    }
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let cert = crypto
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| RtcError::Rtc("cannot generate a DTLS certificate".into()))?;
    let (requests, requests_rx) = mpsc::channel(64);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let handle = Engine {
        requests,
        control: control_tx.clone(),
        local,
    };
    let engine = Loop {
        handle: handle.clone(),
        config,
        sockets,
        reflexive: Vec::new(),
        crypto,
        cert,
        peers: HashMap::new(),
        pipes: HashMap::new(),
        by_source: HashMap::new(),
        next_id: 0,
        control_tx: control_tx.clone(),
        stun_pending: Vec::new(),
        dirty: Vec::new(),
    };
    let task = tokio::spawn(engine.run(requests_rx, control_rx, shutdown));
    Ok((handle, task))
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
                    self.control(c).await;
                    // Writers queue in bursts; take them all before polling.
                    while let Ok(c) = control.try_recv() {
                        self.control(c).await;
                    }
                    self.drive_dirty().await;
                }
                (sock, r) = std::future::poll_fn(|cx| self.sockets.poll_recv(cx, &mut buf)) => {
                    match r {
                        Ok((n, source)) => {
                            self.datagram(sock, source, &buf[..n]).await;
                            // A burst of SACKs is handled whole before the
                            // session is polled once: each poll walks SCTP's
                            // whole in-flight queue.
                            for _ in 1..RECV_BATCH {
                                let Some(s) = self.sockets.get(sock) else { break };
                                match s.socket.try_recv_from(&mut buf) {
                                    Ok((n, source)) => self.datagram(sock, source, &buf[..n]).await,
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
        for (_, p) in self.pipes.drain() {
            p.outbox.close();
        }
        info!("WebRTC engine stopped");
    }

    fn new_rtc(&self, sock: &Sock) -> Rtc {
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_sctp_max_buffered_amount(self.config.sctp_buffered)
            .set_sctp_max_message_size(self.config.max_message as u32)
            .build(Instant::now());
        for addr in &sock.hosts {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => debug!(%addr, error = %e, "host candidate refused"),
            }
        }
        for addr in &self.reflexive {
            let base = sock
                .hosts
                .iter()
                .find(|h| h.is_ipv4() == addr.is_ipv4())
                .copied()
                .unwrap_or(sock.local);
            if let Ok(c) = Candidate::server_reflexive(*addr, base, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        rtc
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new pipe for `session`, and the handle its owner gets.
    fn pipe(&mut self, session: u64, channel: Option<ChannelId>) -> (u64, Session) {
        let id = self.new_id();
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let outbox = Arc::new(Outbox::new(self.config.send_queue));
        let writer = Writer {
            id,
            outbox: outbox.clone(),
            control: self.control_tx.clone(),
        };
        self.pipes.insert(
            id,
            Pipe {
                session,
                channel,
                incoming: tx,
                outbox,
                closing: false,
            },
        );
        if let (Some(ch), Some(p)) = (channel, self.peers.get_mut(&session)) {
            p.channels.insert(ch, id);
        }
        (
            id,
            Session {
                id,
                incoming: rx,
                writer,
            },
        )
    }

    /// A new session made from SDP on the primary socket.
    fn admit(&mut self, rtc: Rtc, sock: u64, pending: Option<SdpPendingOffer>) -> (u64, Session) {
        let id = self.new_id();
        self.peers.insert(
            id,
            Peer {
                rtc,
                sock,
                kind: Kind::Sdp { pipe: 0, pending },
                channels: HashMap::new(),
                connect_by: Some(Instant::now() + self.config.connect_timeout),
                next: Instant::now(),
                remote: None,
                unpolled: 0,
                blocked: Vec::new(),
                lingering: Vec::new(),
            },
        );
        let (pipe, session) = self.pipe(id, None);
        if let Some(Peer {
            kind: Kind::Sdp { pipe: p, .. },
            ..
        }) = self.peers.get_mut(&id)
        {
            *p = pipe;
        }
        (id, session)
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
            Request::OpenChannel { id, reply } => {
                let result = self.open_channel(id);
                let _ = reply.send(result);
                self.drive(id).await;
            }
        }
    }

    fn room(&self) -> Result<(), RtcError> {
        if self.peers.len() >= self.config.max_sessions {
            return Err(RtcError::Full(self.peers.len()));
        }
        Ok(())
    }

    fn primary(&self) -> Result<&Sock, RtcError> {
        self.sockets
            .primary()
            .ok_or_else(|| RtcError::Rtc("no socket for sessions made from SDP".into()))
    }

    async fn answer(&mut self, offer: SdpOffer) -> Result<(String, Session), RtcError> {
        self.room()?;
        let sock = self.primary()?;
        let (mut rtc, sock) = (self.new_rtc(sock), sock.id);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| RtcError::BadSdp(e.to_string()))?;
        let (id, session) = self.admit(rtc, sock, None);
        self.drive(id).await;
        debug!(session = id, "answered an offer");
        Ok((answer.to_sdp_string(), session))
    }

    async fn offer(&mut self) -> Result<(String, u64, Session), RtcError> {
        self.room()?;
        let sock = self.primary()?;
        let (mut rtc, sock) = (self.new_rtc(sock), sock.id);
        let mut api = rtc.sdp_api();
        // Any label; p2p-media-loader peers accept whichever channel comes.
        let label: [u8; 20] = rand::random();
        api.add_channel(label.iter().map(|b| format!("{b:02x}")).collect());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| RtcError::Rtc("no offer to make".into()))?;
        let (id, session) = self.admit(rtc, sock, Some(pending));
        self.drive(id).await;
        Ok((offer.to_sdp_string(), id, session))
    }

    async fn answered(&mut self, id: u64, answer: SdpAnswer) -> Result<(), RtcError> {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Err(RtcError::NoOffer);
        };
        let Kind::Sdp { pending, .. } = &mut peer.kind else {
            return Err(RtcError::NoOffer);
        };
        let Some(pending) = pending.take() else {
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

    fn open_channel(&mut self, id: u64) -> Result<Session, RtcError> {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Err(RtcError::Stopped);
        };
        if !matches!(peer.kind, Kind::Direct { .. }) {
            return Err(RtcError::Rtc("not a WebRTC-direct connection".into()));
        }
        if peer.channels.len() >= MAX_CHANNELS {
            return Err(RtcError::Full(peer.channels.len()));
        }
        let ch = peer
            .rtc
            .direct_api()
            .create_data_channel(ChannelConfig::default());
        Ok(self.pipe(id, Some(ch)).1)
    }

    async fn control(&mut self, c: Control) {
        match c {
            Control::Flush(pipe) => {
                if let Some(session) = self.flush(pipe) {
                    self.mark(session);
                }
            }
            Control::Close(pipe) => self.close_pipe(pipe),
            Control::CloseSession(id) => self.close_gently(id),
            Control::Listen { addr, cert, reply } => {
                let result = self.listen(addr, cert).await;
                let _ = reply.send(result);
            }
            Control::Unlisten(listener) => {
                let Some(sock) = self
                    .sockets
                    .all
                    .iter_mut()
                    .find(|s| s.direct.as_ref().is_some_and(|d| d.id == listener))
                else {
                    return;
                };
                sock.direct = None;
                if !sock.primary {
                    let id = sock.id;
                    self.sockets.all.retain(|s| s.id != id);
                    let gone: Vec<u64> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.sock == id)
                        .map(|(k, _)| *k)
                        .collect();
                    for id in gone {
                        self.close(id, "listener removed");
                    }
                }
            }
        }
    }

    /// Starts a clean close (SCTP shutdown, DTLS close_notify), which tells
    /// the peer at once; the deadline ends it if that never drains.
    fn close_gently(&mut self, id: u64) {
        if let Some(p) = self.peers.get_mut(&id) {
            if p.rtc.close().is_err() {
                p.rtc.disconnect();
            }
            p.connect_by = Some(Instant::now() + CLOSE_DRAIN);
            for pipe in p.channels.values() {
                if let Some(pipe) = self.pipes.get(pipe) {
                    pipe.outbox.close();
                }
            }
        }
        self.mark(id);
    }

    fn close_pipe(&mut self, pipe: u64) {
        let Some(p) = self.pipes.get_mut(&pipe) else {
            return;
        };
        let session = p.session;
        let direct = self
            .peers
            .get(&session)
            .is_some_and(|s| matches!(s.kind, Kind::Direct { .. }));
        if !direct {
            p.outbox.close();
            self.close_gently(session);
            return;
        }
        p.closing = true;
        if self.flush(pipe).is_some() {
            self.mark(session);
        }
    }

    async fn listen(&mut self, addr: SocketAddr, cert: DtlsCert) -> Result<Listening, RtcError> {
        // The socket bound to that address; for port 0, "any port", the
        // socket of SDP sessions when it is on that IP and free.
        let existing = self.sockets.all.iter().position(|s| {
            s.local == addr || (addr.port() == 0 && s.primary && s.local.ip() == addr.ip())
        });
        let index = match existing {
            Some(i) if self.sockets.all[i].direct.is_none() => i,
            Some(_) if addr.port() != 0 => {
                return Err(RtcError::Rtc(format!(
                    "WebRTC-direct is already served on {addr}"
                )));
            }
            _ => {
                let id = self.new_id();
                let sock = Sock::new(id, super::sockets::bind(addr).await?, false)?;
                self.sockets.all.push(sock);
                self.sockets.all.len() - 1
            }
        };
        let id = self.new_id();
        let (tx, rx) = mpsc::channel(DIRECT_BACKLOG);
        let sock = &mut self.sockets.all[index];
        sock.direct = Some(DirectListener {
            id,
            cert,
            incoming: tx,
        });
        info!(local = %sock.local, "WebRTC-direct listening");
        Ok(Listening {
            id,
            local: sock.local,
            incoming: rx,
        })
    }

    async fn datagram(&mut self, sock: u64, source: SocketAddr, data: &[u8]) {
        if stun::is_stun(data) && self.stun_reply(source, data) {
            return;
        }
        let Some(s) = self.sockets.get_mut(sock) else {
            return;
        };
        let destination = s.destinations.of(source);
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
        let id = match self.by_source.get(&(sock, source)) {
            Some(id) if self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)) => *id,
            _ => {
                let found = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.sock == sock && p.rtc.accepts(&input))
                    .map(|(id, _)| *id);
                let id = match found {
                    Some(id) => id,
                    None => match self.direct_session(sock, source, destination, data) {
                        Some(id) => id,
                        None => return,
                    },
                };
                self.by_source.insert((sock, source), id);
                id
            }
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        // The engine's own logs (str0m, SCTP) name their session this way.
        if let Err(e) = debug_span!("rtc", session = id).in_scope(|| peer.rtc.handle_input(input)) {
            debug!(session = id, error = %e, "datagram refused");
            self.close(id, "input failed");
            return;
        }
        // DTLS holds at most 30 records between polls, and the handshake's
        // flights are best taken as they come; an open channel's SACKs are
        // batched within that bound.
        peer.unpolled += 1;
        if peer.connect_by.is_some() || peer.unpolled >= MAX_UNPOLLED {
            self.drive(id).await;
        } else {
            self.mark(id);
        }
    }

    /// A WebRTC-direct session for a browser's first STUN check on a
    /// socket that serves it.
    fn direct_session(
        &mut self,
        sock: u64,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<u64> {
        let listener = self.sockets.get(sock)?.direct.as_ref()?;
        let ufrag = ice::ufrag_of(data)?;
        if let Err(e) = self.room() {
            debug!(%source, error = %e, "WebRTC-direct dial refused");
            return None;
        }
        // Anyone can open one with a single datagram, so those not yet
        // through their handshake have a bound of their own, under which
        // they cannot crowd out the sessions of p2p-media-loader peers.
        let connecting = self
            .peers
            .values()
            .filter(|p| matches!(p.kind, Kind::Direct { .. }) && p.connect_by.is_some())
            .count();
        if connecting >= DIRECT_BACKLOG {
            debug!(%source, connecting, "WebRTC-direct dial refused: too many handshakes");
            return None;
        }
        let settings = ice::Settings {
            crypto: self.crypto.clone(),
            cert: &listener.cert,
            sctp_buffered: self.config.sctp_buffered,
            max_message: self.config.max_message,
        };
        let (rtc, noise) = match ice::session(settings, &ufrag, destination, source) {
            Ok(r) => r,
            Err(e) => {
                debug!(%source, error = %e, "WebRTC-direct session not made");
                return None;
            }
        };
        let incoming = listener.incoming.clone();
        let id = self.new_id();
        let (events_tx, events) = mpsc::channel(INCOMING_QUEUE);
        self.peers.insert(
            id,
            Peer {
                rtc,
                sock,
                kind: Kind::Direct {
                    events: events_tx,
                    noise,
                    connected: false,
                },
                channels: HashMap::new(),
                connect_by: Some(Instant::now() + self.config.connect_timeout),
                next: Instant::now(),
                remote: Some(source),
                unpolled: 0,
                blocked: Vec::new(),
                lingering: Vec::new(),
            },
        );
        let (_, noise) = self.pipe(id, Some(noise));
        let conn = DirectConn {
            id,
            remote: source,
            local: destination,
            noise: Some(noise),
            events,
            engine: self.handle.clone(),
        };
        if let Err(e) = incoming.try_send(conn) {
            // Its drop asks for the close this does now.
            debug!(%source, "WebRTC-direct dial refused: listener backlog full");
            drop(e);
            self.close(id, "listener backlog full");
            return None;
        }
        debug!(session = id, %source, "WebRTC-direct dial");
        Some(id)
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
            if peer.lingering.iter().any(|(_, t)| *t <= now) {
                let (due, keep) = std::mem::take(&mut peer.lingering)
                    .into_iter()
                    .partition(|(_, t)| *t <= now);
                peer.lingering = keep;
                let due: Vec<(ChannelId, Instant)> = due;
                for (ch, _) in due {
                    peer.rtc.direct_api().close_data_channel(ch);
                }
            }
            if let Err(e) = debug_span!("rtc", session = id)
                .in_scope(|| peer.rtc.handle_input(Input::Timeout(now)))
            {
                debug!(session = id, error = %e, "timeout failed");
                self.close(id, "timeout failed");
                continue;
            }
            self.drive(id).await;
        }
    }

    /// Moves a pipe's queued messages into SCTP while it has room; closes
    /// the channel of a pipe let go once its queue is empty. The session to
    /// poll, if anything moved.
    fn flush(&mut self, pipe: u64) -> Option<u64> {
        let p = self.pipes.get(&pipe)?;
        let session = p.session;
        let peer = self.peers.get_mut(&session)?;
        let ch = p.channel?;
        let mut moved = false;
        let mut empty = true;
        if let Some(mut channel) = peer.rtc.channel(ch) {
            let mut queue = p.outbox.lock();
            while let Some(front) = queue.front() {
                match channel.write(true, front) {
                    Ok(true) => {
                        let len = front.len();
                        queue.pop_front();
                        p.outbox.queued.fetch_sub(len, Ordering::AcqRel);
                        moved = true;
                    }
                    Ok(false) => {
                        if !peer.blocked.contains(&pipe) {
                            peer.blocked.push(pipe);
                        }
                        break;
                    }
                    Err(e) => {
                        debug!(session, error = %e, "channel write failed");
                        break;
                    }
                }
            }
            empty = queue.is_empty();
        }
        if moved {
            p.outbox.room.notify_waiters();
        }
        if p.closing && (empty || peer.rtc.channel(ch).is_none()) {
            if peer.rtc.channel(ch).is_some() {
                peer.lingering.push((ch, Instant::now() + LINGER));
                peer.next = peer.next.min(Instant::now() + LINGER);
            } else {
                peer.rtc.direct_api().close_data_channel(ch);
            }
            peer.channels.remove(&ch);
            if let Some(p) = self.pipes.remove(&pipe) {
                p.outbox.close();
            }
            moved = true;
        }
        moved.then_some(session)
    }

    /// Polls one session until it only waits: sends what it wants sent and
    /// handles what it reports.
    async fn drive(&mut self, id: u64) {
        if let Some(peer) = self.peers.get_mut(&id)
            && !peer.blocked.is_empty()
        {
            for pipe in std::mem::take(&mut peer.blocked) {
                self.flush(pipe);
            }
        }
        loop {
            let Some(peer) = self.peers.get_mut(&id) else {
                return;
            };
            peer.unpolled = 0;
            if !peer.rtc.is_alive() {
                self.close(id, "closed");
                return;
            }
            let out = match debug_span!("rtc", session = id).in_scope(|| peer.rtc.poll_output()) {
                Ok(o) => o,
                Err(e) => {
                    debug!(session = id, error = %e, "session failed");
                    self.close(id, "failed");
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    let linger = peer.lingering.iter().map(|(_, t)| *t).min();
                    peer.next = [Some(t), peer.connect_by, linger]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(t);
                    return;
                }
                Output::Transmit(t) => {
                    let sock = peer.sock;
                    if let Err(e) = self.sockets.send(sock, &t.contents, t.destination).await {
                        debug!(destination = %t.destination, error = %e, "UDP send failed");
                    }
                }
                Output::Event(e) => self.event(id, e),
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
            Event::ChannelOpen(ch, _label) => self.channel_open(id, ch),
            Event::ChannelData(d) => {
                let Some(pipe) = peer.channels.get(&d.id).and_then(|p| self.pipes.get(p)) else {
                    return;
                };
                if pipe.incoming.try_send(Incoming::Message(d.data)).is_err() {
                    // The owner reads no more, or the peer floods us.
                    warn!(session = id, "incoming messages not read; closing");
                    peer.rtc.disconnect();
                }
            }
            Event::ChannelClose(ch) => {
                peer.lingering.retain(|(c, _)| *c != ch);
                let Some(pipe) = peer.channels.remove(&ch) else {
                    return;
                };
                match peer.kind {
                    Kind::Sdp { .. } => peer.rtc.disconnect(),
                    Kind::Direct { .. } => {
                        if let Some(p) = self.pipes.remove(&pipe) {
                            p.outbox.close();
                        }
                    }
                }
            }
            Event::ChannelBufferedAmountLow(ch) => {
                if let Some(pipe) = peer.channels.get(&ch).copied() {
                    self.flush(pipe);
                }
            }
            Event::Connected => {
                if let Kind::Direct {
                    events, connected, ..
                } = &mut peer.kind
                {
                    let Some(remote_fingerprint) = ice::remote_fingerprint(&mut peer.rtc) else {
                        peer.rtc.disconnect();
                        return;
                    };
                    *connected = true;
                    if events
                        .try_send(DirectEvent::Connected { remote_fingerprint })
                        .is_err()
                    {
                        peer.rtc.disconnect();
                    }
                }
                let sock = peer.sock;
                if peer.remote.is_none() {
                    peer.remote = self
                        .by_source
                        .iter()
                        .find(|((s, _), v)| *s == sock && **v == id)
                        .map(|((_, k), _)| *k);
                }
            }
            _ => {}
        }
    }

    fn channel_open(&mut self, id: u64, ch: ChannelId) {
        enum Open {
            Ours(u64),
            Theirs(mpsc::Sender<DirectEvent>),
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let open = match &peer.kind {
            Kind::Sdp { pipe, .. } => {
                if !peer.channels.is_empty() {
                    // One channel a session; a second one is not ours to serve.
                    return;
                }
                Open::Ours(*pipe)
            }
            Kind::Direct {
                events,
                noise,
                connected,
            } => match peer.channels.get(&ch) {
                // The Noise channel, or one we opened.
                Some(pipe) => {
                    if ch == *noise {
                        peer.connect_by = None;
                    }
                    Open::Ours(*pipe)
                }
                None if *connected && peer.channels.len() < MAX_CHANNELS => {
                    Open::Theirs(events.clone())
                }
                None => {
                    debug!(session = id, "channel refused");
                    peer.rtc.direct_api().close_data_channel(ch);
                    return;
                }
            },
        };
        let pipe = match open {
            Open::Ours(pipe) => {
                if matches!(peer.kind, Kind::Sdp { .. }) {
                    peer.channels.insert(ch, pipe);
                    peer.connect_by = None;
                    if let Some(p) = self.pipes.get_mut(&pipe) {
                        p.channel = Some(ch);
                    }
                }
                pipe
            }
            Open::Theirs(events) => {
                let (pipe, session) = self.pipe(id, Some(ch));
                if events.try_send(DirectEvent::Inbound(session)).is_err() {
                    // Dropping the session closes the channel again.
                    return;
                }
                pipe
            }
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(mut c) = peer.rtc.channel(ch) {
            c.set_buffered_amount_low_threshold(self.config.sctp_buffered / 2);
        }
        let remote = peer
            .remote
            .or(self.sockets.get(peer.sock).map(|s| s.local))
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let Some(p) = self.pipes.get(&pipe) else {
            return;
        };
        if p.incoming.try_send(Incoming::Open { remote }).is_err()
            && matches!(peer.kind, Kind::Sdp { .. })
        {
            peer.rtc.disconnect();
        }
        self.flush(pipe);
    }

    fn close(&mut self, id: u64, why: &str) {
        if let Some(p) = self.peers.remove(&id) {
            debug!(session = id, why, "session closed");
            for pipe in p.channels.values() {
                if let Some(pipe) = self.pipes.remove(pipe) {
                    pipe.outbox.close();
                }
            }
            if let Kind::Sdp { pipe, .. } = p.kind
                && let Some(pipe) = self.pipes.remove(&pipe)
            {
                pipe.outbox.close();
            }
            self.by_source.retain(|_, v| *v != id);
        }
    }

    async fn ask_stun(&mut self) {
        self.stun_pending.clear();
        let Some(primary) = self.sockets.primary() else {
            return;
        };
        let (sock, local) = (primary.id, primary.local);
        for server in self.config.stun_servers.clone() {
            let Ok(mut addrs) = tokio::net::lookup_host(&server).await else {
                debug!(%server, "STUN server does not resolve");
                continue;
            };
            let Some(addr) = addrs.find(|a| a.is_ipv4() == local.is_ipv4()) else {
                continue;
            };
            let (msg, tid) = stun::binding_request();
            if self.sockets.send(sock, &msg, addr).await.is_ok() {
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
        let hosts = self.sockets.primary().map(|s| s.hosts.clone());
        if let Some(mapped) = stun::mapped_address(data, &tid)
            && !hosts.is_some_and(|h| h.contains(&mapped))
            && !self.reflexive.contains(&mapped)
        {
            info!(%mapped, server = %source, "public address from STUN");
            self.reflexive.push(mapped);
        }
        true
    }
}
