//! A plain WebRTC page and its signalling server, for testing the
//! daemon's WebRTC engine (`bridge::rtc`) against Chromium's own
//! `RTCPeerConnection` with no library in between.
//!
//! The page either offers (`rtcTest.offer(total)`: it POSTs its complete
//! SDP to `/offer` and takes the answer) or answers (`rtcTest.answer(total)`:
//! it GETs the engine's offer from `/server-offer` and POSTs its answer to
//! `/answer`), then receives `total` bytes on the one data channel and
//! resolves to `{bytes, ms, sha256}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use bridge::rtc::{Engine, PendingOffer, Session};
use tokio::sync::{Mutex, mpsc};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>WebRTC engine test</title>
<script type="module">
function gathered(pc) {
  return new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve()
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve()
    })
  })
}
function receive(dc, total, hash) {
  return new Promise((resolve, reject) => {
    const parts = []
    let bytes = 0
    let t0 = null
    const start = () => { t0 = performance.now() }
    if (dc.readyState === 'open') start(); else dc.onopen = start
    dc.onclose = () => reject(new Error(`channel closed after ${bytes} bytes`))
    dc.onmessage = async (e) => {
      if (t0 === null) start()
      const chunk = new Uint8Array(e.data)
      bytes += chunk.length
      if (hash) parts.push(chunk)
      if (bytes >= total) {
        const ms = performance.now() - t0
        let sha256 = null
        if (hash) {
          const all = new Uint8Array(bytes)
          let at = 0
          for (const p of parts) { all.set(p, at); at += p.length }
          sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', all))]
            .map(b => b.toString(16).padStart(2, '0')).join('')
        }
        dc.onclose = null
        resolve({ bytes, ms, sha256 })
      }
    }
  })
}
window.rtcTest = {
  sdps: [],
  async offer(total, hash = true) {
    const pc = new RTCPeerConnection({ iceServers: [] })
    const dc = pc.createDataChannel('test')
    dc.binaryType = 'arraybuffer'
    await pc.setLocalDescription(await pc.createOffer())
    await gathered(pc)
    this.sdps.push(pc.localDescription.sdp)
    const r = await fetch('/offer', { method: 'POST', body: pc.localDescription.sdp })
    if (!r.ok) throw new Error(`offer refused: ${r.status} ${await r.text()}`)
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() })
    const got = await receive(dc, total, hash)
    pc.close()
    return got
  },
  async answer(total, hash = true) {
    const pc = new RTCPeerConnection({ iceServers: [] })
    const channel = new Promise(resolve => { pc.ondatachannel = e => resolve(e.channel) })
    const r = await fetch('/server-offer')
    if (!r.ok) throw new Error(`no offer: ${r.status} ${await r.text()}`)
    await pc.setRemoteDescription({ type: 'offer', sdp: await r.text() })
    await pc.setLocalDescription(await pc.createAnswer())
    await gathered(pc)
    this.sdps.push(pc.localDescription.sdp)
    const a = await fetch('/answer', { method: 'POST', body: pc.localDescription.sdp })
    if (!a.ok) throw new Error(`answer refused: ${a.status} ${await a.text()}`)
    const dc = await channel
    dc.binaryType = 'arraybuffer'
    const got = await receive(dc, total, hash)
    pc.close()
    return got
  },
}
// Chromium to itself over loopback: the reference a server's figure is read against.
window.rtcTest.loopback = async (total) => {
  const a = new RTCPeerConnection({ iceServers: [] })
  const b = new RTCPeerConnection({ iceServers: [] })
  a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate)
  b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate)
  const dc = a.createDataChannel('loop')
  dc.binaryType = 'arraybuffer'
  const incoming = new Promise(resolve => { b.ondatachannel = e => resolve(e.channel) })
  await a.setLocalDescription(await a.createOffer())
  await b.setRemoteDescription(a.localDescription)
  await b.setLocalDescription(await b.createAnswer())
  await a.setRemoteDescription(b.localDescription)
  const rx = await incoming
  rx.binaryType = 'arraybuffer'
  if (dc.readyState !== 'open') await new Promise(r => { dc.onopen = r })
  const got = receive(rx, total, false)
  const chunk = new Uint8Array(65536)
  dc.bufferedAmountLowThreshold = 1 << 20
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (dc.bufferedAmount > 4 << 20) await new Promise(r => { dc.onbufferedamountlow = r })
    dc.send(chunk)
  }
  const r = await got
  a.close(); b.close()
  return r
}
window.bridgeReady = true
</script>
"#;

#[derive(Clone)]
struct PageState {
    engine: Engine,
    pending: Arc<Mutex<Option<PendingOffer>>>,
    sessions: mpsc::Sender<Session>,
}

/// The page and its signalling, on loopback; every session the engine
/// makes comes out of `sessions`.
pub struct RtcPage {
    pub addr: SocketAddr,
    pub sessions: mpsc::Receiver<Session>,
    task: tokio::task::JoinHandle<()>,
}

impl RtcPage {
    pub async fn start(engine: Engine) -> RtcPage {
        let (tx, sessions) = mpsc::channel(16);
        let state = PageState {
            engine,
            pending: Arc::default(),
            sessions: tx,
        };
        let app = axum::Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/offer", post(offer))
            .route("/server-offer", get(server_offer))
            .route("/answer", post(answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RtcPage {
            addr,
            sessions,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for RtcPage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn offer(State(s): State<PageState>, sdp: String) -> impl IntoResponse {
    match s.engine.accept_offer(&sdp).await {
        Ok((answer, session)) => {
            let _ = s.sessions.send(session).await;
            (StatusCode::OK, answer)
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn server_offer(State(s): State<PageState>) -> impl IntoResponse {
    match s.engine.create_offer().await {
        Ok((sdp, pending)) => {
            *s.pending.lock().await = Some(pending);
            (StatusCode::OK, sdp)
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn answer(State(s): State<PageState>, sdp: String) -> impl IntoResponse {
    let Some(pending) = s.pending.lock().await.take() else {
        return (StatusCode::CONFLICT, "no offer waiting".to_owned());
    };
    match pending.accept_answer(&sdp).await {
        Ok(session) => {
            let _ = s.sessions.send(session).await;
            (StatusCode::OK, String::new())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}
