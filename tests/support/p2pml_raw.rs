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
pub const PEER_JS: &str = r#"
const peers = []
const sockets = []
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
const unb64 = (s) => Uint8Array.from(atob(s), c => c.charCodeAt(0))
const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), b => String.fromCharCode(b)).join('')
function gathered(pc) {
  return new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve()
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve()
    })
  })
}
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.onopen = () => resolve(ws)
    ws.onerror = () => reject(new Error(`cannot open ${url}`))
  })
}
window.rawPeers = {
  async connect(tracker, infoHash, peerId, timeoutMs = 20000) {
    const ws = await open(tracker)
    const pc = new RTCPeerConnection({ iceServers: [] })
    const dc = pc.createDataChannel(randomId().slice(0, 8))
    dc.binaryType = 'arraybuffer'
    const peer = { ws, pc, dc, messages: [], bytes: 0, closed: false, tracker: [] }
    dc.onmessage = (e) => { peer.messages.push(b64(e.data)); peer.bytes += e.data.byteLength }
    dc.onclose = () => { peer.closed = true }
    await pc.setLocalDescription(await pc.createOffer())
    await gathered(pc)
    const offerId = randomId()
    const answered = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer from the seeder')), timeoutMs)
      ws.onmessage = async (m) => {
        const msg = JSON.parse(m.data)
        peer.tracker.push(msg)
        if (msg.answer && msg.offer_id === offerId) {
          clearTimeout(t)
          await pc.setRemoteDescription(msg.answer)
          resolve()
        }
      }
    })
    ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId, numwant: 1,
      uploaded: 0, downloaded: 0, event: 'started',
      offers: [{ offer: { type: 'offer', sdp: pc.localDescription.sdp }, offer_id: offerId }],
    }))
    await answered
    if (dc.readyState !== 'open') {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('channel never opened')), timeoutMs)
        dc.onopen = () => { clearTimeout(t); resolve() }
      })
    }
    peers.push(peer)
    return peers.length - 1
  },
  // Announces with no offers of its own and answers the first offer
  // relayed to it: a peer that only the seeder's own offers can reach.
  async accept(tracker, infoHash, peerId, timeoutMs = 30000) {
    const ws = await open(tracker)
    const pc = new RTCPeerConnection({ iceServers: [] })
    const peer = { ws, pc, dc: null, messages: [], bytes: 0, closed: false, tracker: [], from: null }
    const channel = new Promise(resolve => { pc.ondatachannel = e => resolve(e.channel) })
    const offered = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no offer relayed')), timeoutMs)
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data)
        peer.tracker.push(msg)
        if (msg.offer && !peer.from) { clearTimeout(t); peer.from = msg.peer_id; resolve(msg) }
      }
    })
    const announce = () => ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId, numwant: 0,
      uploaded: 0, downloaded: 0, event: 'started', offers: [],
    }))
    announce()
    const offer = await offered
    await pc.setRemoteDescription(offer.offer)
    await pc.setLocalDescription(await pc.createAnswer())
    await gathered(pc)
    ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId,
      to_peer_id: offer.peer_id, offer_id: offer.offer_id,
      answer: { type: 'answer', sdp: pc.localDescription.sdp },
    }))
    const dc = await channel
    dc.binaryType = 'arraybuffer'
    peer.dc = dc
    dc.onmessage = (e) => { peer.messages.push(b64(e.data)); peer.bytes += e.data.byteLength }
    dc.onclose = () => { peer.closed = true }
    if (dc.readyState !== 'open') await new Promise(r => { dc.onopen = r })
    peers.push(peer)
    return peers.length - 1
  },
  from(i) { return peers[i].from },
  send(i, message) { peers[i].dc.send(unb64(message)) },
  // A slice at a time: DevTools messages are bounded (16 MiB).
  messagesFrom(i, start, max = 64) { return peers[i].messages.slice(start, start + max) },
  count(i) { return peers[i].messages.length },
  bytes(i) { return peers[i].bytes },
  closed(i) { return peers[i].closed },
  close(i) { peers[i].pc.close(); peers[i].ws.close() },
  async ws(tracker) { sockets.push(await open(tracker)); return sockets.length - 1 },
  wsSend(i, text) { sockets[i].send(text) },
  wsState(i) { return sockets[i].readyState },
  // Requests `ids` one after another on peer i's channel, as a player
  // does (one request in flight per peer), and times them in the page
  // from the first request to the last SegmentDataSendingCompleted:
  // `{ms, bytes, sizes, stray}`, bytes being the data bytes received after
  // each header. The messages are counted, not kept (the `messages` log is
  // paused meanwhile), so the figure is the transfer's, not base64's.
  fetchSegments(i, ids, firstRequestId = 0, timeoutMs = 60000) {
    const peer = peers[i]
    const dc = peer.dc
    const saved = dc.onmessage
    const tag = (b, at) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3])
    // Fields of a command payload (after the code byte): ints only, which
    // is all SegmentData, SegmentDataSendingCompleted and SegmentAbsent hold.
    const ints = (p) => {
      const out = {}
      for (let at = 1; at < p.length;) {
        const name = String.fromCharCode(p[at]); const n = p[at + 1] & 0x0f
        if (p[at + 1] >> 4 !== 0) throw new Error(`field ${name}: not an int`)
        let v = p[at + 2] & 0x7f
        for (let k = 1; k < n; k++) v = v * 256 + p[at + 2 + k]
        out[name] = p[at + 2] & 0x80 ? -v : v
        at += 2 + n
      }
      return out
    }
    const int = (v) => {
      const b = []
      do { b.unshift(v % 256); v = Math.floor(v / 256) } while (v > 0)
      if (b[0] & 0x80) b.unshift(0)
      return [b.length, ...b]
    }
    const enc = (s) => [...s].map(c => c.charCodeAt(0))
    const request = (id, r) => new Uint8Array([
      ...enc('cstr'), 1, ...enc('i'), ...int(id), ...enc('r'), ...int(r), ...enc('cend'),
    ])
    return new Promise((resolve, reject) => {
      const sizes = []
      let bytes = 0
      let stray = 0
      let k = -1
      let cur = null
      let timer = null
      const t0 = performance.now()
      const fail = (e) => { clearTimeout(timer); dc.onmessage = saved; reject(e) }
      const next = () => {
        clearTimeout(timer)
        k++
        if (k === ids.length) {
          const ms = performance.now() - t0
          dc.onmessage = saved
          return resolve({ ms, bytes, sizes, stray })
        }
        cur = { id: ids[k], r: (firstRequestId + k) % 1000, size: null, got: 0 }
        timer = setTimeout(() => fail(new Error(`segment ${cur.id}: no completion in ${timeoutMs} ms (${cur.got} bytes)`)), timeoutMs)
        dc.send(request(cur.id, cur.r))
      }
      dc.onmessage = (e) => {
        const b = new Uint8Array(e.data)
        const n = b.length
        const head = n >= 8 ? tag(b, 0) : ''
        const tail = n >= 8 ? tag(b, n - 4) : ''
        const frame = (head === 'cstr' || head === 'dstr') && (tail === 'cend' || tail === 'dend')
        if (!frame) {
          if (cur && cur.size !== null) cur.got += n; else stray += n
          return
        }
        // Split commands are announcements only (ids lists): not ours.
        if (head !== 'cstr' || tail !== 'cend') return
        const p = b.subarray(4, n - 4)
        const code = p[0]
        if (code !== 2 && code !== 3 && code !== 4) return
        let f
        try { f = ints(p) } catch (err) { return fail(err) }
        if (!cur || f.i !== cur.id || f.r !== cur.r) return fail(new Error(`unexpected command ${code} ${JSON.stringify(f)}`))
        if (code === 4) return fail(new Error(`segment ${cur.id} absent`))
        if (code === 2) { cur.size = f.s; return }
        if (cur.size === null || cur.got !== cur.size) return fail(new Error(`segment ${cur.id}: ${cur.got} bytes, header said ${cur.size}`))
        sizes.push(cur.got)
        bytes += cur.got
        next()
      }
      next()
    })
  },
}
window.bridgeReady = true
"#;

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
