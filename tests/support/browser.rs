//! A real browser for the bridge tests: Debian's Chromium, headless, driven
//! over the DevTools protocol, loading a test page and the client bundle
//! (`bridge/js/dist/swarmseed.js`) from a loopback HTTP server.
//!
//! The DevTools client is a WebSocket and three JSON messages
//! (`Runtime.enable`, `Runtime.evaluate`, console events), so it is written
//! here on `tokio-tungstenite` rather than taken from a full CDP crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::npm;

const HOW_TO_BUILD: &str = "run `npm ci && npm run build` in bridge/js";

/// The client bundle. Built first when its sources are newer or it is
/// missing (esbuild, under a second), after `npm ci` when the locked npm
/// packages are not installed yet, so `cargo test` on a fresh
/// clone needs only npm itself.
pub fn bundle() -> Vec<u8> {
    // Tests in one binary share the build; binaries run one at a time.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let dir = npm::dir("bridge/js");
    let dist = dir.join("dist/swarmseed.js");
    let built = std::fs::metadata(&dist)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    // The build applies `patches/` to the installed packages first.
    let sources = npm::newest(&dir.join("src"))
        .max(npm::newest(&dir.join("patches")))
        .max(npm::locked(&dir));
    if sources > built {
        npm::install(&dir, ".bin/esbuild");
        npm::run(&dir, &["run", "--silent", "build"]);
    }
    std::fs::read(&dist).unwrap_or_else(|e| {
        panic!(
            "the browser bundle {} is missing ({e}): {HOW_TO_BUILD}",
            dist.display()
        )
    })
}

/// The test page: loads the bundle and exposes it as `window.swarmseed`.
/// `DEBUG_NAMESPACES` is replaced by `BROWSER_DEBUG` (js-libp2p's debug
/// namespaces, such as `libp2p:webrtc*`), which must be set before the
/// bundle loads.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>swarmseed bridge test</title>
<script type="module">
const debug = DEBUG_NAMESPACES
if (debug) localStorage.setItem('debug', debug)
else localStorage.removeItem('debug')
const swarmseed = await import('/swarmseed.js')
window.swarmseed = swarmseed
window.sha256hex = async (bytes) =>
  [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
    .map(b => b.toString(16).padStart(2, '0')).join('')
window.bridgeReady = true
</script>
"#;

/// Serves the page at `/` and the bundle at `/swarmseed.js` on loopback,
/// which browsers treat as a secure context (WebCrypto, WebRTC).
pub struct PageServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    pub async fn start() -> PageServer {
        let js = bundle();
        let debug = std::env::var("BROWSER_DEBUG").unwrap_or_default();
        let page = PAGE.replace("DEBUG_NAMESPACES", &Value::from(debug).to_string());
        let app = axum::Router::new()
            .route("/", get(move || async move { Html(page) }))
            .route("/hls.mjs", get(hls_js))
            .route(
                "/swarmseed.js",
                get(move || {
                    let js = js.clone();
                    async move { ([(header::CONTENT_TYPE, "text/javascript")], js).into_response() }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PageServer { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// hls.js's ESM build from `bridge/js/node_modules` (pinned in
/// `package.json`), for pages that play video with the loader.
pub async fn hls_js() -> axum::response::Response {
    match tokio::fs::read(npm::dir("bridge/js").join("node_modules/hls.js/dist/hls.mjs")).await {
        Ok(js) => ([(header::CONTENT_TYPE, "text/javascript")], js).into_response(),
        Err(e) => (
            axum::http::StatusCode::NOT_FOUND,
            format!("hls.js is not installed ({e}): {HOW_TO_BUILD}"),
        )
            .into_response(),
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headless Chromium with a fresh profile, one page, and a DevTools
/// connection to that page.
pub struct Chromium {
    child: Child,
    page: DevTools,
    /// The browser's DevTools WebSocket (`Target.*` commands).
    browser_ws: String,
    /// The DevTools HTTP endpoint, `host:port`.
    http: String,
    _profile: tempfile::TempDir,
}

/// A DevTools connection to one page.
pub struct DevTools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// Another tab of the same browser, opened with `Chromium::open_tab`.
pub struct Tab {
    pub target_id: String,
    page: DevTools,
}

impl Tab {
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.page.eval(expression).await
    }
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

impl Chromium {
    /// Starts the browser on `url` and waits until the page has set
    /// `window.bridgeReady`.
    pub async fn launch(url: &str) -> Chromium {
        Self::launch_with_args(url, &[]).await
    }

    /// As `launch`, with more command-line flags (such as
    /// `--autoplay-policy=no-user-gesture-required`).
    pub async fn launch_with_args(url: &str, extra: &[&str]) -> Chromium {
        Self::start(url, extra, "window.bridgeReady === true").await
    }

    /// Starts Chromium on `url` and waits until `ready`, a JavaScript
    /// expression, is `true` in the page.
    async fn start(url: &str, extra: &[&str], ready: &str) -> Chromium {
        Self::start_mdns(url, extra, ready, false).await
    }

    /// As `launch_with`; with `hide_ips_with_mdns` Chromium keeps its own
    /// default of naming its host candidates `<uuid>.local` in SDP instead
    /// of giving their addresses, as browsers on the Internet do.
    pub async fn launch_with_mdns(
        url: &str,
        extra: &[&str],
        ready: &str,
        hide_ips_with_mdns: bool,
    ) -> Chromium {
        Self::start_mdns(url, extra, ready, hide_ips_with_mdns).await
    }

    async fn start_mdns(
        url: &str,
        extra: &[&str],
        ready: &str,
        hide_ips_with_mdns: bool,
    ) -> Chromium {
        let profile = tempfile::Builder::new()
            .prefix("swarmseed-chromium")
            .tempdir()
            .unwrap();
        let mut command = Command::new(chromium_binary());
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            // Real host candidates rather than mDNS names, which only
            // another Chromium resolves (by multicast); browser-to-browser
            // `/webrtc` needs them.
            .args((!hide_ips_with_mdns).then_some("--disable-features=WebRtcHideLocalIpsWithMdns"))
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so Drop ends the renderers too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); install it with `apt-get install -y chromium` or set CHROMIUM",
                chromium_binary()
            )
        });
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(ws) = line.strip_prefix("DevTools listening on ") {
                    return ws.trim().to_owned();
                }
            }
            panic!("chromium exited before it listened for DevTools");
        })
        .await
        .expect("chromium never listened for DevTools");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        let verbose = std::env::var_os("BROWSER_LOG").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if verbose {
                    eprintln!("chromium: {line}");
                }
            }
        });
        let http = endpoint
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("DevTools endpoint")
            .to_owned();
        let page_ws = find_page(&http, url).await;
        let page = DevTools::page(&page_ws, ready).await;
        Chromium {
            child,
            page,
            browser_ws: endpoint,
            http,
            _profile: profile,
        }
    }

    /// Sends one DevTools command to the page; see `DevTools::call`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.page.call(method, params).await
    }

    /// Evaluates `expression` in the page; see `DevTools::eval`.
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.page.eval(expression).await
    }

    /// Opens `url` in a new tab of this browser and waits for its page.
    pub async fn open_tab(&mut self, url: &str) -> Tab {
        let r = self
            .browser_call("Target.createTarget", json!({ "url": url }))
            .await;
        let target_id = r["targetId"].as_str().expect("targetId").to_owned();
        let page_ws = format!("ws://{}/devtools/page/{target_id}", self.http);
        Tab {
            target_id,
            page: DevTools::page(&page_ws, "window.bridgeReady === true").await,
        }
    }

    /// Closes a tab as a user would (`Target.closeTarget`).
    pub async fn close_tab(&mut self, tab: Tab) {
        let r = self
            .browser_call("Target.closeTarget", json!({ "targetId": tab.target_id }))
            .await;
        drop(tab);
        assert_eq!(r["success"], json!(true), "{r}");
    }

    /// One command on the browser's own DevTools connection.
    async fn browser_call(&mut self, method: &str, params: Value) -> Value {
        let (ws, _) = tokio_tungstenite::connect_async(self.browser_ws.as_str())
            .await
            .expect("connect to the browser's DevTools");
        let mut browser = DevTools { ws, next_id: 0 };
        browser.call(method, params).await
    }

    /// Kills the whole browser, every process of it, with SIGKILL: it gets
    /// no chance to close anything.
    pub async fn kill(mut self) {
        if let Some(pid) = self.child.id() {
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = self.child.wait().await;
    }
}

impl DevTools {
    /// Connects to a page and waits until `ready` holds there.
    async fn page(page_ws: &str, ready: &str) -> DevTools {
        let (ws, _) = tokio_tungstenite::connect_async(page_ws)
            .await
            .expect("connect to the page's DevTools");
        let mut page = DevTools { ws, next_id: 0 };
        page.call("Runtime.enable", json!({})).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while page.eval(ready).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "the page never became ready: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        page
    }

    /// Sends one DevTools command and returns its result; console output
    /// and uncaught exceptions seen meanwhile are printed.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("DevTools send");
        loop {
            let msg = self
                .ws
                .next()
                .await
                .expect("DevTools connection closed")
                .expect("DevTools read");
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("DevTools {method} failed: {e}");
                }
                return v["result"].clone();
            }
            match v["method"].as_str() {
                Some("Runtime.consoleAPICalled") => {
                    let args: Vec<String> = v["params"]["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| match &a["value"] {
                            Value::String(s) => s.clone(),
                            Value::Null => a["description"].as_str().unwrap_or("").to_owned(),
                            other => other.to_string(),
                        })
                        .collect();
                    eprintln!("page console: {}", args.join(" "));
                }
                Some("Runtime.exceptionThrown") => {
                    eprintln!("page exception: {}", v["params"]["exceptionDetails"]);
                }
                _ => {}
            }
        }
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns
    /// its value as JSON. A thrown error fails the test with its message.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                }),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!(
                "page threw: {}\n{e}",
                r["result"]["description"].as_str().unwrap_or("")
            );
        }
        r["result"]["value"].clone()
    }
}

/// The DevTools WebSocket of the page showing `url`.
async fn find_page(http: &str, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("http://{http}/json/list")).await
            && let Ok(targets) = r.json::<Vec<Value>>().await
            && let Some(t) = targets
                .iter()
                .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
        {
            return t["webSocketDebuggerUrl"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "chromium never opened {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The group holds the browser and every renderer it started.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = self.child.start_kill();
    }
}

impl Chromium {
    /// As `launch`, for any page: `extra_args` go on Chromium's command line
    /// and `ready` is a JavaScript expression polled until it is `true`.
    pub async fn launch_with(url: &str, extra_args: &[&str], ready: &str) -> Chromium {
        Self::start(url, extra_args, ready).await
    }

    /// A PNG of the page as it shows now (`Page.captureScreenshot`).
    pub async fn screenshot_png(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64")
    }

    /// Makes the client bundle importable in the current page, whatever its
    /// origin: it is handed over as text and imported from a `blob:` URL, and
    /// set as `window.swarmseed`. For pages served by others (the gateway),
    /// which the test page server's origin cannot reach without CORS.
    pub async fn inject_bundle(&mut self) {
        let js = String::from_utf8(bundle()).expect("bundle is UTF-8");
        let script = format!(
            r#"(async () => {{
  const url = URL.createObjectURL(new Blob([{js}], {{ type: 'text/javascript' }}))
  window.swarmseed = await import(url)
  return true
}})()"#,
            js = serde_json::to_string(&js).unwrap()
        );
        assert_eq!(self.eval(&script).await, json!(true));
    }
}

/// `target/test-artifacts/<name>`, its directory created: where browser
/// tests leave screenshots for CI to keep.
pub fn artifact_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

impl Chromium {
    /// The browser's process id, which is also its process group's: every
    /// renderer and utility process it starts is in that group.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("chromium is running")
    }
}

/// CPU time (user + system, in clock ticks) used so far by the live
/// processes of process group `pgid`, from `/proc/*/stat`.
pub fn group_cpu_ticks(pgid: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which may hold spaces: state,
        // ppid, pgrp, …, utime (14th overall) and stime (15th).
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        if f.len() > 12 && f[2].parse::<u32>().ok() == Some(pgid) {
            total += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    total
}

/// CPU time (user + system, in clock ticks) used so far by process `pid`.
pub fn process_cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0;
    };
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}
