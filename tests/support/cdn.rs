//! A real HTTP origin on loopback: serves a directory with Range support and
//! counts what it sends. Paths under `/stall/` never answer; under `/cut/`,
//! playlists are served whole and every other file breaks off halfway,
//! its connection cut after the head promised the whole length; under
//! `/gate/`, playlists are whole and other files send their first half,
//! then the rest once the test opens the gate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Counts {
    /// Body bytes sent, by request path.
    bytes: Mutex<HashMap<String, u64>>,
    /// Requests, by request path.
    requests: Mutex<HashMap<String, u64>>,
    /// Answers with a body, by request path and byte range (`a-b`, or
    /// `all`).
    ranges: Mutex<HashMap<(String, String), u64>>,
    delay_ms: AtomicU64,
    /// Answer 404 to every range that does not start at byte 0: the media
    /// segments of a single-file fMP4, whose init section starts at 0.
    refuse_media_ranges: std::sync::atomic::AtomicBool,
    /// Holds the second halves of `/gate/` files until it reads true.
    gate: GateFlag,
}

struct GateFlag(tokio::sync::watch::Sender<bool>);

impl Default for GateFlag {
    fn default() -> Self {
        GateFlag(tokio::sync::watch::channel(false).0)
    }
}

#[derive(Clone)]
struct Origin {
    root: PathBuf,
    counts: Arc<Counts>,
}

pub struct TestCdn {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl TestCdn {
    pub async fn start(root: &Path) -> Self {
        Self::start_with(root, axum::Router::new()).await
    }

    /// Serves `routes` as well, files for every other path.
    pub async fn start_with(root: &Path, routes: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind cdn");
        Self::serve_with(listener, root, routes)
    }

    /// Serves again on the port of a stopped CDN.
    pub async fn restart_on(addr: SocketAddr, root: &Path) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("rebind cdn");
        Self::serve(listener, root)
    }

    fn serve(listener: tokio::net::TcpListener, root: &Path) -> Self {
        Self::serve_with(listener, root, axum::Router::new())
    }

    fn serve_with(listener: tokio::net::TcpListener, root: &Path, routes: axum::Router) -> Self {
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let origin = Origin {
            root: root.to_path_buf(),
            counts: counts.clone(),
        };
        let app =
            routes.fallback_service(axum::Router::new().fallback(serve_file).with_state(origin));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, counts, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Makes every answer wait, so concurrent requests overlap.
    pub fn set_delay(&self, d: Duration) {
        self.counts
            .delay_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Lets the second halves of `/gate/` files go.
    pub fn open_gate(&self) {
        let _ = self.counts.gate.0.send(true);
    }

    /// From now on, ranges past byte 0 get 404: the media of single-file
    /// fMP4 no longer comes over HTTP, its init sections still do.
    pub fn refuse_media_ranges(&self) {
        self.counts
            .refuse_media_ranges
            .store(true, Ordering::Relaxed);
    }

    /// Answers with a body for `path` and `range` (`a-b` inclusive, or
    /// `all` for the whole file).
    pub fn range_answers(&self, path: &str, range: &str) -> u64 {
        self.counts
            .ranges
            .lock()
            .unwrap()
            .get(&(path.to_owned(), range.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Body bytes sent for segments and init sections: every path but
    /// playlists (`.m3u8`) and CID maps (`.json`).
    pub fn media_bytes_sent(&self) -> u64 {
        let bytes = self.counts.bytes.lock().unwrap();
        bytes
            .iter()
            .filter(|(p, _)| !p.ends_with(".m3u8") && !p.ends_with(".json"))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.counts.bytes.lock().unwrap().values().sum()
    }

    /// Body bytes answered for one path, over all its requests: what each
    /// response body held (a range's part), counted whole even when the
    /// client cut the response off.
    pub fn bytes_for(&self, path: &str) -> u64 {
        self.counts
            .bytes
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn requests_for(&self, path: &str) -> u64 {
        self.counts
            .requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Stops answering; the port refuses connections afterwards.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn add(map: &Mutex<HashMap<String, u64>>, path: &str, n: u64) {
    *map.lock().unwrap().entry(path.to_owned()).or_default() += n;
}

async fn serve_file(State(origin): State<Origin>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    add(&origin.counts.requests, &path, 1);
    let delay = origin.counts.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if path.starts_with("/stall/") {
        std::future::pending::<()>().await;
    }
    let media = !path.ends_with(".m3u8");
    let cut = path.starts_with("/cut/") && media;
    let gated = path.starts_with("/gate/") && media;
    let local = path
        .strip_prefix("/cut")
        .or_else(|| path.strip_prefix("/gate"))
        .unwrap_or(&path);
    let Some(file) = safe_join(&origin.root, local) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(data) = tokio::fs::read(&file).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let asked = byte_range(request.headers(), data.len() as u64);
    if asked.is_some_and(|(start, _)| start > 0)
        && origin.counts.refuse_media_ranges.load(Ordering::Relaxed)
    {
        let mut refused = StatusCode::NOT_FOUND.into_response();
        refused.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
        return refused;
    }
    let range_name = asked.map_or("all".to_owned(), |(a, b)| format!("{a}-{b}"));
    *origin
        .counts
        .ranges
        .lock()
        .unwrap()
        .entry((path.clone(), range_name))
        .or_default() += 1;
    let (status, body, range) = match asked {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            data[start as usize..=end as usize].to_vec(),
            Some(format!("bytes {start}-{end}/{}", data.len())),
        ),
        None => (StatusCode::OK, data, None),
    };
    add(&origin.counts.bytes, &path, body.len() as u64);
    if gated {
        let len = body.len();
        let body = bytes::Bytes::from(body);
        let (first, rest) = (body.slice(..len / 2), body.slice(len / 2..));
        let mut gate = origin.counts.gate.0.subscribe();
        let second = async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok::<_, std::io::Error>(rest)
        };
        let stream = futures::stream::iter([Ok(first)]).chain(futures::stream::once(second));
        let mut response = (status, Body::from_stream(stream)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
        return response;
    }
    if cut {
        let len = body.len();
        let half = bytes::Bytes::from(body).slice(..len / 2);
        // The half goes out before the break, as from an origin that
        // failed mid-transfer.
        let broken = futures::stream::iter([Ok(half)]).chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(std::io::Error::other("the origin broke off"))
        }));
        let mut response = (status, Body::from_stream(broken)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
        return response;
    }
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4" | "m4s") => "video/mp4",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    };
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    if let Some(r) = range {
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, r.parse().unwrap());
    }
    // Pages on other origins (hls.js, the browser bridge) read segments
    // too, as from any CDN that serves players.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

fn safe_join(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

/// `bytes=a-b` and `bytes=a-` only; that is all the daemon sends.
fn byte_range(headers: &HeaderMap, len: u64) -> Option<(u64, u64)> {
    let spec = headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        len - 1
    } else {
        b.parse::<u64>().ok()?.min(len - 1)
    };
    (start <= end && start < len).then_some((start, end))
}
