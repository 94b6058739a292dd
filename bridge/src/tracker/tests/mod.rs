//! The tracker served by `axum::serve` on 127.0.0.1, spoken to by real
//! WebSocket clients.

mod api;
mod bounds;
mod lifecycle;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::wire::{
    AnnounceEvent, AnnounceReply, AnnounceRequest, ClientMessage, Failure, Id20, OfferEntry,
    SdpType, SessionDescription, TrackerMessage,
};
use super::{Tracker, TrackerConfig, router};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(5);

pub(super) struct Harness {
    pub(super) addr: SocketAddr,
    pub(super) tracker: Arc<Tracker>,
    pub(super) shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves a tracker with `config` the way the daemon should: with
/// `ConnectInfo<SocketAddr>`.
pub(super) async fn start(config: TrackerConfig) -> Harness {
    start_with(config, true).await
}

pub(super) async fn start_with(config: TrackerConfig, connect_info: bool) -> Harness {
    let shutdown = CancellationToken::new();
    let tracker = Tracker::new(config, shutdown.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(tracker.clone());
    let stop = shutdown.clone().cancelled_owned();
    if connect_info {
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(
            axum::serve(listener, make)
                .with_graceful_shutdown(stop)
                .into_future(),
        );
    } else {
        tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .into_future(),
        );
    }
    Harness {
        addr,
        tracker,
        shutdown,
    }
}

pub(super) fn id(s: &str) -> Id20 {
    Id20::from_binary_str(s).unwrap()
}

/// A p2p-media-loader-style peer_id: ASCII, client prefix.
pub(super) fn peer_id(n: u32) -> Id20 {
    id(&format!("-PM0203-{n:012}"))
}

pub(super) const SWARM: &str = "SwVvb8BOagSGmrfnl/B4";

pub(super) fn offers(from: Id20, count: usize) -> Vec<OfferEntry> {
    (0..count)
        .map(|i| {
            let mut offer_id = [0xf0u8; 20];
            offer_id[..4].copy_from_slice(&from.0[16..20]);
            offer_id[19] = i as u8;
            OfferEntry {
                offer: SessionDescription {
                    kind: SdpType::Offer,
                    sdp: format!("v=0\r\no=- {i} 2 IN IP4 127.0.0.1\r\n"),
                },
                offer_id: Id20(offer_id),
            }
        })
        .collect()
}

pub(super) struct Peer {
    pub(super) ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub(super) peer_id: Id20,
}

impl Peer {
    pub(super) async fn connect(h: &Harness, n: u32) -> Peer {
        let url = format!("ws://{}/announce", h.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Peer {
            ws,
            peer_id: peer_id(n),
        }
    }

    pub(super) async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    pub(super) async fn send(&mut self, msg: impl Into<ClientMessage>) {
        let text = serde_json::to_string(&msg.into()).unwrap();
        self.send_text(text).await;
    }

    /// The next text message, raw.
    pub(super) async fn recv_text(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a tracker message")
                .expect("socket closed")
                .expect("socket failed");
            match msg {
                Message::Text(t) => return t.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    pub(super) async fn recv(&mut self) -> TrackerMessage {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    pub(super) async fn recv_reply(&mut self) -> AnnounceReply {
        match self.recv().await {
            TrackerMessage::Announce(r) => r,
            other => panic!("expected an announce reply, got {other:?}"),
        }
    }

    pub(super) async fn recv_failure(&mut self) -> Failure {
        match self.recv().await {
            TrackerMessage::Failure(f) => f,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// Nothing but pings arrives for `d`.
    pub(super) async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Waits for the tracker to close the socket; returns the close code
    /// and reason if it sent a close frame.
    pub(super) async fn expect_closed(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for the tracker to close")
            {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    pub(super) async fn announce(&mut self, info_hash: Id20, event: Option<AnnounceEvent>) {
        let req = AnnounceRequest::new(info_hash, self.peer_id, event);
        self.send(req).await;
    }

    /// Announces `count` offers, as a browser does.
    pub(super) async fn announce_offers(&mut self, info_hash: Id20, count: usize) {
        let req = AnnounceRequest::with_offers(
            info_hash,
            self.peer_id,
            Some(AnnounceEvent::Started),
            offers(self.peer_id, count),
        );
        self.send(req).await;
    }

    /// Joins a swarm and reads the reply.
    pub(super) async fn join(&mut self, info_hash: Id20) -> AnnounceReply {
        self.announce(info_hash, Some(AnnounceEvent::Started)).await;
        self.recv_reply().await
    }
}

/// Polls until `f` holds (state changes behind the tracker's back: closes,
/// expiry).
pub(super) async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `peer` is in swarm `info_hash`, by the tracker's own account.
pub(super) fn is_member(h: &Harness, info_hash: &Id20, peer: &Id20) -> bool {
    h.tracker
        .swarm_info(info_hash)
        .is_some_and(|s| s.peers.iter().any(|p| p.peer_id == peer.to_hex()))
}

/// A well-behaved pair can still meet: `a`'s offer reaches `b`.
pub(super) async fn still_serves(h: &Harness) {
    let ih = id("still-serving-swarm!");
    let mut a = Peer::connect(h, 900_001).await;
    let mut b = Peer::connect(h, 900_002).await;
    b.join(ih).await;
    a.announce_offers(ih, 1).await;
    a.recv_reply().await;
    match b.recv().await {
        TrackerMessage::Offer(o) => assert_eq!(o.peer_id, a.peer_id),
        other => panic!("expected an offer, got {other:?}"),
    }
}

/// A minimal HTTP/1.1 GET: status and body.
pub(super) async fn http_get(h: &Harness, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Percent-encodes everything but unreserved characters.
pub(super) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
