//! Unmodified p2p-media-loader players for the tests: headless Chromium
//! playing HLS with stock hls.js + p2p-media-loader from npm
//! (`tests/p2pml`), and the npm `bittorrent-tracker` server as their
//! WebTorrent tracker, all on loopback.
//!
//! The page (`tests/p2pml/player.html` + `player.js`) only configures the
//! libraries, from its query string, and records their public events in
//! `window.p2pmlTest`; [`Player`] opens it and reads that back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::browser::Chromium;
use super::npm;

/// The harness's npm folder.
pub fn dir() -> PathBuf {
    npm::dir("tests/p2pml")
}

/// Installs the locked packages (`npm ci`) unless they already are.
pub fn install() {
    // Tests in one binary may start at once; one npm ci is enough.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = dir();
    npm::install(&dir, "p2pml-hlsjs-22/dist/p2p-media-loader-hlsjs.es.js");
    for (_, file) in FILES {
        assert!(
            dir.join(file).is_file(),
            "{} is missing after npm ci in {}",
            file,
            dir.display()
        );
    }
}

/// Which p2p-media-loader the page runs. The two never share a swarm
/// (2.3 changed the info_hash and stream ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `p2p-media-loader-core`/`-hlsjs` 2.3.1.
    V2_3,
    /// 2.2.2 of both, installed as `p2pml-core-22`/`p2pml-hlsjs-22`.
    V2_2,
}

impl Version {
    pub fn query(self) -> &'static str {
        match self {
            Version::V2_3 => "2.3",
            Version::V2_2 => "2.2",
        }
    }

    /// The npm version the page loads.
    pub fn npm(self) -> &'static str {
        match self {
            Version::V2_3 => "2.3.1",
            Version::V2_2 => "2.2.2",
        }
    }
}

/// What the page server serves, and nothing else: URL path → file under
/// `tests/p2pml`. The import map in `player.html` names these URLs.
const FILES: [(&str, &str); 12] = [
    ("/player.html", "player.html"),
    ("/player.js", "player.js"),
    ("/peertube70.html", "peertube70.html"),
    ("/peertube70.js", "peertube70.js"),
    ("/npm/hls15/hls.mjs", "node_modules/hls15/dist/hls.mjs"),
    (
        "/npm/pt-fork/core.js",
        "node_modules/@peertube/p2p-media-loader-core/dist/index.js",
    ),
    (
        "/npm/pt-fork/hlsjs.js",
        "node_modules/@peertube/p2p-media-loader-hlsjs/dist/index.js",
    ),
    ("/npm/hls.js/hls.mjs", "node_modules/hls.js/dist/hls.mjs"),
    (
        "/npm/p2pml-2.3/p2p-media-loader-core.es.js",
        "node_modules/p2p-media-loader-core/dist/p2p-media-loader-core.es.js",
    ),
    (
        "/npm/p2pml-2.3/p2p-media-loader-hlsjs.es.js",
        "node_modules/p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.js",
    ),
    (
        "/npm/p2pml-2.2/p2p-media-loader-core.es.js",
        "node_modules/p2pml-core-22/dist/p2p-media-loader-core.es.js",
    ),
    (
        "/npm/p2pml-2.2/p2p-media-loader-hlsjs.es.js",
        "node_modules/p2pml-hlsjs-22/dist/p2p-media-loader-hlsjs.es.js",
    ),
];

/// Serves the player page and the npm dist files it imports on loopback
/// (a secure context, which WebRTC and MSE want), from a fixed list.
pub struct PageServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    pub async fn start() -> PageServer {
        install();
        let root = dir();
        let app = axum::Router::new().fallback(move |request: Request| {
            let root = root.clone();
            async move { serve(&root, request.uri().path()).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PageServer { addr, task }
    }

    /// The page for `config`.
    pub fn url(&self, config: &PlayerConfig) -> String {
        format!("http://{}/player.html?{}", self.addr, config.query())
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(root: &Path, path: &str) -> Response {
    let path = if path == "/" { "/player.html" } else { path };
    let Some((_, file)) = FILES.iter().find(|(p, _)| *p == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Read per request, so an edited page needs no rebuild.
    match tokio::fs::read(root.join(file)).await {
        Ok(body) => {
            let kind = if file.ends_with(".html") {
                "text/html; charset=utf-8"
            } else {
                "text/javascript"
            };
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!("{file}: {e} (run `npm ci` in tests/p2pml)"),
        )
            .into_response(),
    }
}

/// The npm `bittorrent-tracker` server (`tests/p2pml/tracker.mjs`) on
/// 127.0.0.1, WebSocket only. Every message peers send it is kept, in
/// order (see [`NodeTracker::messages`]). Killed on drop.
pub struct NodeTracker {
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<Value>>>,
}

impl NodeTracker {
    /// Starts a tracker that tells WebSocket peers to re-announce every
    /// `interval / 5` (bittorrent-tracker's rule: 10 s → every 2 s).
    pub async fn start(interval: Duration) -> NodeTracker {
        install();
        let mut child = Command::new("node")
            .arg(dir().join("tracker.mjs"))
            .args(["--interval", &interval.as_millis().to_string(), "--log"])
            // Closed when this process goes away: the tracker then exits.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): apt-get install -y nodejs"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(port) = line.strip_prefix("listening ") {
                    return port.trim().parse::<u16>().expect("tracker port");
                }
            }
            panic!("the tracker exited before it listened");
        })
        .await
        .expect("the tracker never listened");
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => keep.lock().unwrap().push(v),
                    Err(_) => eprintln!("tracker: {line}"),
                }
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("tracker: {line}");
            }
        });
        NodeTracker { port, child, log }
    }

    /// The announce URL for the pages.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// What the tracker saw so far, one entry per event:
    /// `{"conn": n, "event": "open" | "close"}` for each WebSocket, and
    /// `{"conn": n, "event": "message", "msg": {…}}` for each message a peer
    /// sent (announces with their offers, answers), as parsed JSON.
    pub fn messages(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }

    /// The peer ids that announced so far, in order of first announce.
    pub fn peer_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for m in self.messages() {
            if let Some(id) = m["msg"]["peer_id"].as_str()
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        }
        ids
    }

    /// Every SDP that went through the tracker so far, offers and answers,
    /// with the peer id that sent it: `(peer_id, "offer" | "answer", sdp)`.
    pub fn sdps(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for m in self.messages() {
            let msg = &m["msg"];
            let from = msg["peer_id"].as_str().unwrap_or("").to_owned();
            for offer in msg["offers"].as_array().into_iter().flatten() {
                if let Some(sdp) = offer["offer"]["sdp"].as_str() {
                    out.push((from.clone(), "offer".to_owned(), sdp.to_owned()));
                }
            }
            if let Some(sdp) = msg["answer"]["sdp"].as_str() {
                out.push((from.clone(), "answer".to_owned(), sdp.to_owned()));
            }
        }
        out
    }

    /// Stops the tracker; peers see their sockets close.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// How one player page is configured. [`PlayerConfig::new`] gives the
/// library defaults except for the tracker and `rtcConfig` (no STUN).
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    pub version: Version,
    /// The multivariant (or media) playlist.
    pub manifest: String,
    /// Core `announceTrackers`; empty means none (never the public ones).
    pub trackers: Vec<String>,
    /// Core `simultaneousHttpDownloads`; `None` keeps the default (2).
    pub simultaneous_http_downloads: Option<u32>,
    /// Core `swarmId`; `None` means the manifest URL, as in the library.
    pub swarm_id: Option<String>,
    /// Pins hls.js to this level (index into its levels, which hls.js
    /// sorts by bitrate): otherwise ABR may put players in other swarms.
    pub level: Option<usize>,
    /// More core config, merged over the above (any p2p-media-loader core
    /// key, such as `highDemandTimeWindow` or `trackerClientVersionPrefix`).
    pub core: serde_json::Map<String, Value>,
    /// More hls.js config.
    pub hls: serde_json::Map<String, Value>,
    /// `debug` namespaces for the page, e.g. `p2pml-core:*`; the output
    /// shows as `page console:` lines while a test talks to the page.
    pub debug: Option<String>,
    /// Chromium's default of naming host candidates `<uuid>.local`; off
    /// (real loopback addresses in SDP) unless set.
    pub hide_ips_with_mdns: bool,
    /// A PeerTube `segments-sha256.json`: the page validates every segment
    /// with PeerTube 8.x's validator, as PeerTube's player does.
    pub peertube_sha256: Option<String>,
}

impl PlayerConfig {
    pub fn new(version: Version, manifest: &str, tracker: &str) -> PlayerConfig {
        PlayerConfig {
            version,
            manifest: manifest.to_owned(),
            trackers: vec![tracker.to_owned()],
            simultaneous_http_downloads: None,
            swarm_id: None,
            level: None,
            core: serde_json::Map::new(),
            hls: serde_json::Map::new(),
            debug: std::env::var("P2PML_DEBUG").ok(),
            hide_ips_with_mdns: false,
            peertube_sha256: None,
        }
    }

    /// The page's query string.
    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("p2pml", self.version.query());
        q.append_pair("manifest", &self.manifest);
        for t in &self.trackers {
            q.append_pair("tracker", t);
        }
        if let Some(n) = self.simultaneous_http_downloads {
            q.append_pair("http", &n.to_string());
        }
        if let Some(id) = &self.swarm_id {
            q.append_pair("swarmId", id);
        }
        if let Some(level) = self.level {
            q.append_pair("level", &level.to_string());
        }
        if !self.core.is_empty() {
            q.append_pair("core", &Value::Object(self.core.clone()).to_string());
        }
        if !self.hls.is_empty() {
            q.append_pair("hls", &Value::Object(self.hls.clone()).to_string());
        }
        if let Some(d) = &self.debug {
            q.append_pair("debug", d);
        }
        if let Some(s) = &self.peertube_sha256 {
            q.append_pair("peertubeSha256", s);
        }
        q.finish()
    }
}

/// One segment as `onSegmentLoaded` reported it. `source` and `peer_id`
/// are those of the attempt that completed it; `bytes` is the whole
/// segment's length even when an earlier attempt from another source had
/// loaded part of it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentLoad {
    pub url: String,
    /// Inclusive, as p2p-media-loader has it; from the matching
    /// `onSegmentStart` (the loaded event has the URL only).
    pub byte_range: Option<ByteRange>,
    /// The peer-protocol segment id (`externalId`).
    pub external_id: Option<u64>,
    #[serde(rename = "downloadSource")]
    pub source: String,
    pub peer_id: Option<String>,
    pub bytes: u64,
    pub stream_type: String,
    /// Milliseconds since the page's script started.
    pub at: u64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// `window.p2pmlTest.snapshot()`, typed; `raw` has all of it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayerState {
    pub current_time: f64,
    pub paused: bool,
    pub ended: bool,
    pub ready_state: u32,
    pub level: Option<i64>,
    pub segments: Vec<SegmentLoad>,
    /// HTTP download attempts started (`onSegmentStart`, source http):
    /// the segment requests the CDN should have seen from this page.
    pub http_requests: u64,
    pub p2p_requests: u64,
    /// Segment bytes received, from `onChunkDownloaded`, by source.
    pub bytes_from_http: u64,
    #[serde(rename = "bytesFromP2P")]
    pub bytes_from_p2p: u64,
    pub bytes_from_peer: std::collections::BTreeMap<String, u64>,
    pub bytes_uploaded: u64,
    pub peers_connected: Vec<String>,
    pub errors: Vec<Value>,
    pub tracker_errors: Vec<Value>,
    pub tracker_warnings: Vec<Value>,
    pub aborts: Vec<Value>,
    #[serde(skip)]
    pub raw: Value,
}

impl PlayerState {
    pub fn p2p_segments(&self) -> impl Iterator<Item = &SegmentLoad> {
        self.segments.iter().filter(|s| s.source == "p2p")
    }

    pub fn http_segments(&self) -> impl Iterator<Item = &SegmentLoad> {
        self.segments.iter().filter(|s| s.source == "http")
    }

    /// hls.js errors it could not recover from, and setup failures.
    pub fn fatal_errors(&self) -> Vec<&Value> {
        self.errors
            .iter()
            .filter(|e| e["fatal"] == json!(true))
            .collect()
    }
}

/// The page is ready when the player is set up, or failed to be.
const READY: &str =
    "!!(window.p2pmlTest && (window.p2pmlTest.ready || window.p2pmlTest.setupError))";

/// One player: its own Chromium (own profile, own WebRTC stack) on the
/// player page.
pub struct Player {
    pub browser: Chromium,
    pub config: PlayerConfig,
    pub url: String,
}

impl Player {
    /// Launches headless Chromium on the page for `config`, with autoplay
    /// allowed, and waits until the player is set up (playback and P2P then
    /// start on their own). Panics if the page could not set it up.
    pub async fn open(page: &PageServer, config: &PlayerConfig) -> Player {
        let url = page.url(config);
        let browser = Chromium::launch_with_mdns(
            &url,
            &["--autoplay-policy=no-user-gesture-required"],
            READY,
            config.hide_ips_with_mdns,
        )
        .await;
        let mut player = Player {
            browser,
            config: config.clone(),
            url,
        };
        let error = player.browser.eval("window.p2pmlTest.setupError").await;
        assert!(error.is_null(), "the player page failed: {error}");
        player
    }

    /// Evaluates `expression` in the page (promises awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.browser.eval(expression).await
    }

    /// All of `window.p2pmlTest`, as JSON.
    pub async fn snapshot(&mut self) -> Value {
        self.eval("window.p2pmlTest.snapshot()").await
    }

    pub async fn state(&mut self) -> PlayerState {
        let raw = self.snapshot().await;
        let mut state: PlayerState = serde_json::from_value(raw.clone())
            .unwrap_or_else(|e| panic!("window.p2pmlTest: {e}\n{raw}"));
        state.raw = raw;
        state
    }

    pub async fn current_time(&mut self) -> f64 {
        self.eval("document.getElementById('video').currentTime")
            .await
            .as_f64()
            .unwrap_or(0.0)
    }

    pub async fn segments(&mut self) -> Vec<SegmentLoad> {
        self.state().await.segments
    }

    pub async fn peers_connected(&mut self) -> Vec<String> {
        self.state().await.peers_connected
    }

    /// Polls the page's state every 250 ms until `done` holds, and returns
    /// that state. Panics on a fatal hls.js error or after `timeout`.
    pub async fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&PlayerState) -> bool,
    ) -> PlayerState {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state().await;
            if done(&state) {
                return state;
            }
            assert!(
                state.fatal_errors().is_empty(),
                "{what}: hls.js failed: {}",
                state.raw
            );
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}: {}",
                state.raw
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A two-rendition MPEG-TS VOD like the `ts` fixture (`master.m3u8`,
/// `v0/`, `v1/`, 2 s segments) but `seconds` long, made with ffmpeg into
/// `dir`: the `ts` fixture's 12 s fit in p2p-media-loader's 15 s
/// high-demand window, which it loads over HTTP, so P2P needs more.
pub fn make_ts_video(dir: &Path, seconds: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let d = seconds.to_string();
    // Audio a hair shorter than video, as in `tests/fixtures/make.sh`: a
    // full-length track can make the encoder emit one more AAC frame and
    // the playlists a stray tiny last segment.
    let audio = format!("{}.98", seconds - 1);
    let out = std::process::Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x180:rate=24:duration={d}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:beep_factor=4:sample_rate=48000:duration={audio}"
        ))
        .args([
            "-filter_complex",
            "[0:v]split=2[va][vb];[vb]scale=160:90[vb90]",
        ])
        .args([
            "-map", "[va]", "-map", "1:a", "-map", "[vb90]", "-map", "1:a",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "main",
        ])
        .args(["-pix_fmt", "yuv420p", "-g", "24", "-keyint_min", "24"])
        .args(["-sc_threshold", "0", "-x264-params", "bframes=0"])
        .args([
            "-b:v:0",
            "150k",
            "-maxrate:v:0",
            "180k",
            "-bufsize:v:0",
            "300k",
        ])
        .args([
            "-b:v:1",
            "80k",
            "-maxrate:v:1",
            "100k",
            "-bufsize:v:1",
            "160k",
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
        .args([
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            "v%v/seg_%03d.ts",
        ])
        .args(["-master_pl_name", "master.m3u8"])
        .args(["-var_stream_map", "v:0,a:0 v:1,a:1", "v%v/index.m3u8"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): apt-get install -y ffmpeg"));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("master.m3u8").is_file());
}
