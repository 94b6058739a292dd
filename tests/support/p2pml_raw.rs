//! A hand-made p2p-media-loader peer in a browser, for the tests that must
//! say what no library peer says: plain `RTCPeerConnection`s and
//! WebSockets in headless Chromium, speaking the tracker protocol and the
//! data-channel commands byte by byte, as the test writes them.
//!
//! `rawPeers.connect(tracker, infoHash, peerId)` announces one offer in the
//! swarm and resolves with the peer's index once the data channel the
//! seeder answered is open; `send(i, base64)` sends one message on it;
//! `messages(i)` returns what came back, base64; `ws(tracker)` opens a
//! bare WebSocket for sending tracker messages by hand;
//! `fetchSegments(i, ids)` times a run of requests (the benchmark's).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bridge::p2pml::command::{self, Command, Message, Reassembler};
use serde_json::{Value, json};

use super::browser::Chromium;

/// The raw peer as a script of its own (`window.rawPeers`), for pages
/// served by others (the gateway's origin, as `tests/p2pml_bench.rs` uses
/// it): evaluate it once, wrapped in a function so its names stay local.
pub const PEER_JS: &str = include_str!("../../bridge/js/tools/p2pml_peer.js");

/// The page: the raw peer and nothing else.
fn page() -> String {
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>raw p2p-media-loader peer</title>\n<script type=\"module\">{PEER_JS}</script>\n"
    )
}

/// Serves the page on loopback.
pub struct RawPage {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RawPage {
    pub async fn start() -> RawPage {
        let app = axum::Router::new().route("/", get(|| async { Html(page()) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RawPage { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for RawPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A 20-character ASCII peer id, as p2p-media-loader makes them.
pub fn peer_id(tag: &str) -> String {
    format!("{:-<20}", format!("-RAW01-{tag}"))[..20].to_owned()
}

/// How a request was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The header's size of bytes, then the completion marker.
    Bytes(Vec<u8>),
    /// `SegmentAbsent`.
    Absent,
}

/// One raw peer's data channel, in a browser.
pub struct RawPeer {
    pub index: u64,
    /// Every message taken from the page so far.
    seen: Vec<Vec<u8>>,
}

impl RawPeer {
    pub async fn connect(
        browser: &mut Chromium,
        tracker: &str,
        info_hash: &str,
        peer_id: &str,
    ) -> RawPeer {
        let index = browser
            .eval(&format!(
                "rawPeers.connect({}, {}, {})",
                json!(tracker),
                json!(info_hash),
                json!(peer_id)
            ))
            .await;
        RawPeer {
            index: index.as_u64().expect("peer index"),
            seen: Vec::new(),
        }
    }

    /// A peer that makes no offer and answers the first relayed to it.
    pub async fn accept(
        browser: &mut Chromium,
        tracker: &str,
        info_hash: &str,
        peer_id: &str,
    ) -> RawPeer {
        let index = browser
            .eval(&format!(
                "rawPeers.accept({}, {}, {})",
                json!(tracker),
                json!(info_hash),
                json!(peer_id)
            ))
            .await;
        RawPeer {
            index: index.as_u64().expect("peer index"),
            seen: Vec::new(),
        }
    }

    /// Whose offer an accepting peer answered.
    pub async fn offered_by(&self, browser: &mut Chromium) -> String {
        browser
            .eval(&format!("rawPeers.from({})", self.index))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn send(&self, browser: &mut Chromium, message: &[u8]) {
        let m = STANDARD.encode(message);
        browser
            .eval(&format!("rawPeers.send({}, {})", self.index, json!(m)))
            .await;
    }

    /// Every message received so far.
    pub async fn messages(&mut self, browser: &mut Chromium) -> &[Vec<u8>] {
        loop {
            let v: Value = browser
                .eval(&format!(
                    "rawPeers.messagesFrom({}, {})",
                    self.index,
                    self.seen.len()
                ))
                .await;
            let batch = v.as_array().unwrap();
            if batch.is_empty() {
                return &self.seen;
            }
            self.seen.extend(
                batch
                    .iter()
                    .map(|m| STANDARD.decode(m.as_str().unwrap()).unwrap()),
            );
        }
    }

    pub async fn bytes(&self, browser: &mut Chromium) -> u64 {
        browser
            .eval(&format!("rawPeers.bytes({})", self.index))
            .await
            .as_u64()
            .unwrap()
    }

    pub async fn closed(&self, browser: &mut Chromium) -> bool {
        browser
            .eval(&format!("rawPeers.closed({})", self.index))
            .await
            .as_bool()
            .unwrap()
    }

    /// Sends `Request {id, request_id, offset}`; returns how many messages
    /// had arrived before it, so its answer is read from there on.
    pub async fn request(
        &mut self,
        browser: &mut Chromium,
        id: u64,
        request_id: u64,
        offset: u64,
    ) -> usize {
        let skip = self.messages(browser).await.len();
        let request = Command::Request {
            id,
            request_id,
            offset,
        };
        for part in command::encode(&request, command::DEFAULT_MAX_MESSAGE_SIZE) {
            self.send(browser, &part).await;
        }
        skip
    }

    /// The answer to request `(id, request_id)`, read from the messages
    /// after the first `skip`: its header, its chunks and the completion
    /// marker (the bytes checked against the header's size), or absent.
    pub async fn answer(
        &mut self,
        browser: &mut Chromium,
        skip: usize,
        id: u64,
        request_id: u64,
    ) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut r = Reassembler::new();
            let mut size = None;
            let mut data = Vec::new();
            for m in &self.messages(browser).await[skip..] {
                match r.push(m) {
                    Ok(Message::Command(Command::Data {
                        id: i,
                        size: s,
                        request_id: q,
                    })) if (i, q) == (id, request_id) => size = Some(s),
                    Ok(Message::Data(d)) if size.is_some() => data.extend_from_slice(d),
                    Ok(Message::Command(Command::Completed {
                        id: i,
                        request_id: q,
                    })) if (i, q) == (id, request_id) => {
                        assert_eq!(Some(data.len() as u64), size, "size in the header");
                        return Answer::Bytes(data);
                    }
                    Ok(Message::Command(Command::Absent {
                        id: i,
                        request_id: q,
                    })) if (i, q) == (id, request_id) => return Answer::Absent,
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "request {id}/{request_id} never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Segment `id`, whole.
    pub async fn fetch(&mut self, browser: &mut Chromium, id: u64, request_id: u64) -> Vec<u8> {
        let skip = self.request(browser, id, request_id, 0).await;
        match self.answer(browser, skip, id, request_id).await {
            Answer::Bytes(b) => b,
            Answer::Absent => panic!("segment {id} absent"),
        }
    }
}
