//! A PeerTube-shaped origin for the tests (`shared/PEERTUBE.md` §9), built
//! by the test and served on loopback:
//!
//! - HLS made by ffmpeg with PeerTube's own flags: one fragmented MP4 per
//!   resolution addressed by byte ranges, audio muxed or split into its
//!   own rendition, a master written as PeerTube writes it, and
//!   `segments-sha256.json` computed as PeerTube computes it;
//! - the REST answers a seeder reads (`/api/v1/config`,
//!   `/api/v1/videos/{uuid}`) and the video's ActivityPub object, canned
//!   per path and changeable while the test runs;
//! - PeerTube's private tracker: the npm server PeerTube runs, behind
//!   PeerTube's filter (`tests/p2pml/peertube-tracker.mjs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::cdn::TestCdn;
use super::p2pml;

pub const UUID: &str = "9c9de5e8-0a1e-484a-b099-e80766180a6d";

/// How the instance lays out a video's audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audio {
    /// In every resolution's file (PeerTube up to 7.0).
    Muxed,
    /// In a file of its own, an `EXT-X-MEDIA` rendition (7.1 on).
    Split,
}

/// One published file: a resolution (0: audio only) and its playlist.
#[derive(Clone, Debug)]
pub struct HlsFile {
    pub resolution: u32,
    /// `<uuid>-<res>.m3u8`
    pub playlist: String,
    /// `<uuid>-<res>-fragmented.mp4`
    pub fragmented: String,
}

/// A video as the instance stores it, under `static/streaming-playlists/hls/<uuid>/`.
#[derive(Clone, Debug)]
pub struct Hls {
    pub dir: PathBuf,
    /// `<uuid4>-master.m3u8`
    pub master: String,
    /// `<uuid4>-segments-sha256.json`
    pub sha256: String,
    /// Ascending resolution, audio (resolution 0) last.
    pub files: Vec<HlsFile>,
}

/// Where the instance keeps a video's HLS, under its web root.
pub fn static_path(uuid: &str) -> String {
    format!("static/streaming-playlists/hls/{uuid}")
}

/// Encodes `seconds` of test video into the instance's layout under `root`.
pub fn make_hls(root: &Path, uuid: &str, audio: Audio, seconds: u32) -> Hls {
    let dir = root.join(static_path(uuid));
    std::fs::create_dir_all(&dir).unwrap();
    let resolutions: [(u32, u32, &str); 2] = [(144, 256, "80k"), (240, 426, "150k")];
    let mut files = Vec::new();
    for (res, width, rate) in resolutions {
        let file = HlsFile {
            resolution: res,
            playlist: format!("{uuid}-{res}.m3u8"),
            fragmented: format!("{uuid}-{res}-fragmented.mp4"),
        };
        let mut cmd = ffmpeg(&dir, seconds);
        cmd.args(["-map", "0:v"]);
        if audio == Audio::Muxed {
            cmd.args(["-map", "1:a"]).args(AAC);
        }
        cmd.args(["-vf", &format!("scale={width}:{res}")])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                "main",
            ])
            .args(["-level", "3.0", "-pix_fmt", "yuv420p", "-g", "48"])
            .args(["-keyint_min", "48", "-sc_threshold", "0", "-x264-params"])
            .args(["bframes=0", "-b:v", rate, "-threads", "1"]);
        encode(cmd, &file);
        files.push(file);
    }
    if audio == Audio::Split {
        let file = HlsFile {
            resolution: 0,
            playlist: format!("{uuid}-0.m3u8"),
            fragmented: format!("{uuid}-0-fragmented.mp4"),
        };
        let mut cmd = ffmpeg(&dir, seconds);
        cmd.args(["-map", "1:a"]).args(AAC);
        encode(cmd, &file);
        files.push(file);
    }
    let hls = Hls {
        dir: dir.clone(),
        master: "4e5d6c7b-master.m3u8".into(),
        sha256: "4e5d6c7b-segments-sha256.json".into(),
        files,
    };
    std::fs::write(dir.join(&hls.master), master(&hls, audio)).unwrap();
    std::fs::write(dir.join(&hls.sha256), sha256_json(&hls).to_string()).unwrap();
    hls
}

const AAC: [&str; 8] = ["-c:a", "aac", "-b:a", "64k", "-ac", "2", "-ar", "48000"];

fn ffmpeg(dir: &Path, seconds: u32) -> std::process::Command {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=426x240:rate=24:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:beep_factor=4:sample_rate=48000:duration={}.98",
            seconds - 1
        ));
    cmd
}

/// PeerTube's HLS flags: 4 s segments in one fragmented MP4.
fn encode(mut cmd: std::process::Command, file: &HlsFile) {
    let out = cmd
        .args(["-f", "hls", "-hls_time", "4", "-hls_list_size", "0"])
        .args(["-hls_playlist_type", "vod", "-hls_segment_type", "fmp4"])
        .args(["-hls_flags", "single_file", "-hls_segment_filename"])
        .arg(&file.fragmented)
        .arg(&file.playlist)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): apt-get install -y ffmpeg"));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The master as PeerTube writes it: version 3, the audio rendition first
/// when split, then the resolutions ascending.
fn master(hls: &Hls, audio: Audio) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    if let Some(a) = hls.files.iter().find(|f| f.resolution == 0) {
        m.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",AUTOSELECT=YES,DEFAULT=YES,URI=\"{}\"\n",
            a.playlist
        ));
    }
    for f in hls.files.iter().filter(|f| f.resolution > 0) {
        let width = if f.resolution == 144 { 256 } else { 426 };
        let (codecs, group) = match audio {
            Audio::Muxed => ("avc1.4d401e,mp4a.40.2", ""),
            Audio::Split => ("avc1.4d401e", ",AUDIO=\"audio\""),
        };
        m.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={width}x{},CODECS=\"{codecs}\"{group}\n{}\n",
            f.resolution * 1000,
            f.resolution,
            f.playlist
        ));
    }
    m
}

/// `updateSha256VODSegments`: per file, each `#EXT-X-BYTERANGE:len@off` →
/// `"off-(off+len-1)"` → SHA-256 hex. Init sections are not hashed.
fn sha256_json(hls: &Hls) -> Value {
    let mut out = serde_json::Map::new();
    for f in &hls.files {
        let data = std::fs::read(hls.dir.join(&f.fragmented)).unwrap();
        let mut ranges = serde_json::Map::new();
        for (offset, length) in byte_ranges(&hls.dir.join(&f.playlist)) {
            let bytes = &data[offset as usize..(offset + length) as usize];
            let hex: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            ranges.insert(format!("{offset}-{}", offset + length - 1), hex.into());
        }
        out.insert(f.fragmented.clone(), Value::Object(ranges));
    }
    Value::Object(out)
}

/// A playlist's media byte ranges, `(offset, length)`, in order.
pub fn byte_ranges(playlist: &Path) -> Vec<(u64, u64)> {
    std::fs::read_to_string(playlist)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .map(|r| {
            let (len, off) = r.split_once('@').expect("PeerTube writes every offset");
            (off.parse().unwrap(), len.parse().unwrap())
        })
        .collect()
}

/// The canned answers of the instance's API, by path.
#[derive(Clone, Default)]
pub struct Api {
    answers: Arc<Mutex<HashMap<String, (u16, Value)>>>,
}

impl Api {
    pub fn set(&self, path: &str, status: u16, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(path.to_owned(), (status, body));
    }

    pub fn router(&self) -> axum::Router {
        let answers = self.answers.clone();
        let handler = move |request: Request| {
            let answers = answers.clone();
            async move {
                let path = request.uri().path().to_owned();
                let found = answers.lock().unwrap().get(&path).cloned();
                match found {
                    Some((status, body)) => {
                        let kind = if status >= 400 {
                            "application/problem+json"
                        } else {
                            "application/json"
                        };
                        (
                            StatusCode::from_u16(status).unwrap(),
                            [
                                (header::CONTENT_TYPE, kind),
                                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                            ],
                            body.to_string(),
                        )
                            .into_response()
                    }
                    None => not_found(),
                }
            }
        };
        axum::Router::new()
            .route("/api/{*rest}", axum::routing::get(handler.clone()))
            .route("/videos/{*rest}", axum::routing::get(handler))
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not found"})
            .to_string(),
    )
        .into_response()
}

/// An instance: files and API on one port.
pub struct Instance {
    pub cdn: TestCdn,
    pub api: Api,
    pub root: PathBuf,
}

impl Instance {
    pub async fn start(root: &Path, version: &str) -> Instance {
        let api = Api::default();
        api.set(
            "/api/v1/config",
            200,
            json!({
                "serverVersion": version,
                "serverCommit": "",
                "tracker": {"enabled": true},
                "webrtc": {"stunServers": []},
            }),
        );
        let cdn = TestCdn::start_with(root, api.router()).await;
        Instance {
            cdn,
            api,
            root: root.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.cdn.url(path)
    }

    /// The watch page URL of `uuid`.
    pub fn watch(&self, uuid: &str) -> String {
        self.url(&format!("w/{uuid}"))
    }

    pub fn playlist_url(&self, uuid: &str, hls: &Hls) -> String {
        self.url(&format!("{}/{}", static_path(uuid), hls.master))
    }

    pub fn sha256_url(&self, uuid: &str, hls: &Hls) -> String {
        self.url(&format!("{}/{}", static_path(uuid), hls.sha256))
    }

    /// Publishes `uuid` as a public video with these trackers and mirrors,
    /// and its ActivityPub object with `infohashes` (hex) when given.
    pub fn publish(
        &self,
        uuid: &str,
        hls: &Hls,
        trackers: &[String],
        mirrors: &[String],
        infohashes: Option<&[String]>,
    ) {
        let master = self.playlist_url(uuid, hls);
        let files: Vec<Value> = hls
            .files
            .iter()
            .rev()
            .map(|f| {
                json!({
                    "resolution": {"id": f.resolution, "label": format!("{}p", f.resolution)},
                    "size": std::fs::metadata(hls.dir.join(&f.fragmented)).map(|m| m.len()).unwrap_or(0),
                    "fps": 24,
                    "fileUrl": self.url(&format!("{}/{}", static_path(uuid), f.fragmented)),
                    "playlistUrl": self.url(&format!("{}/{}", static_path(uuid), f.playlist)),
                    "hasAudio": true,
                    "hasVideo": f.resolution > 0,
                })
            })
            .collect();
        let mut tracker_urls = vec![self.url("tracker/announce")];
        tracker_urls.extend(trackers.iter().cloned());
        self.api.set(
            &format!("/api/v1/videos/{uuid}"),
            200,
            json!({
                "id": 7,
                "uuid": uuid,
                "shortUUID": "kkGMgK9ZtnKfYAgnEtQxbv",
                "name": "A test video",
                "privacy": {"id": 1, "label": "Public"},
                "isLive": false,
                "isLocal": true,
                "state": {"id": 1, "label": "Published"},
                "account": {"name": "alice", "host": self.cdn.addr.to_string()},
                "trackerUrls": tracker_urls,
                "files": [],
                "streamingPlaylists": [{
                    "id": 1,
                    "type": 1,
                    "playlistUrl": master,
                    "segmentsSha256Url": self.sha256_url(uuid, hls),
                    "redundancies": mirrors.iter().map(|m| json!({"baseUrl": m})).collect::<Vec<_>>(),
                    "files": files,
                }],
            }),
        );
        if let Some(hashes) = infohashes {
            let mut tags: Vec<Value> = hashes
                .iter()
                .map(|h| json!({"type": "Infohash", "name": h}))
                .collect();
            tags.push(json!({"type": "Link", "name": "sha256", "mediaType": "application/json", "href": self.sha256_url(uuid, hls)}));
            self.api.set(
                &format!("/videos/watch/{uuid}"),
                200,
                json!({
                    "type": "Video",
                    "id": self.url(&format!("videos/watch/{uuid}")),
                    "url": [
                        {"type": "Link", "mediaType": "text/html", "href": self.watch(uuid)},
                        {"type": "Link", "mediaType": "application/x-mpegURL", "href": master, "tag": tags},
                    ],
                }),
            );
        }
    }
}

/// Which players an instance's tracker lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerGeneration {
    /// PeerTube up to 7.0.
    Fork,
    /// 7.1 to 8.x.
    V22,
}

/// PeerTube's private tracker (`tests/p2pml/peertube-tracker.mjs`) for one
/// video. Killed on drop.
pub struct Tracker {
    pub port: u16,
    log: Arc<Mutex<Vec<Value>>>,
    /// The info_hashes it lets in, hex, and how many times they were set.
    allowed: Arc<Mutex<(Vec<String>, u32)>>,
    child: Child,
}

/// One video as the tracker's instance publishes it.
pub fn tracker_video(
    playlist_url: &str,
    files: usize,
    audio_only: bool,
    generation: TrackerGeneration,
) -> Value {
    json!({
        "playlistUrl": playlist_url,
        "files": files,
        "audioOnly": audio_only,
        "generation": match generation {
            TrackerGeneration::Fork => "fork",
            TrackerGeneration::V22 => "2.2",
        },
    })
}

impl Tracker {
    pub async fn start(
        playlist_url: &str,
        files: usize,
        audio_only: bool,
        generation: TrackerGeneration,
    ) -> Tracker {
        p2pml::install();
        let video = tracker_video(playlist_url, files, audio_only, generation);
        let mut child = Command::new("node")
            .arg(p2pml::dir().join("peertube-tracker.mjs"))
            .args(["--video", &video.to_string(), "--reject-too-many"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): apt-get install -y nodejs"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut allowed = Vec::new();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(h) = line.strip_prefix("allowed ") {
                    allowed.push(h.trim().to_owned());
                } else if let Some(port) = line.strip_prefix("listening ") {
                    return port.trim().parse::<u16>().expect("tracker port");
                }
            }
            panic!("the tracker exited before it listened");
        })
        .await
        .expect("the tracker never listened");
        let log = Arc::new(Mutex::new(Vec::new()));
        let allowed = Arc::new(Mutex::new((allowed, 1)));
        let (keep, published) = (log.clone(), allowed.clone());
        tokio::spawn(async move {
            let mut next = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(h) = line.strip_prefix("allowed ") {
                    next.push(h.trim().to_owned());
                } else if line == "allowed-end" {
                    let mut a = published.lock().unwrap();
                    a.0 = std::mem::take(&mut next);
                    a.1 += 1;
                } else {
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => keep.lock().unwrap().push(v),
                        Err(_) => eprintln!("peertube tracker: {line}"),
                    }
                }
            }
        });
        Tracker {
            port,
            log,
            allowed,
            child,
        }
    }

    /// The info_hashes it lets in, hex, as the instance publishes them.
    pub fn allowed(&self) -> Vec<String> {
        self.allowed.lock().unwrap().0.clone()
    }

    /// The instance regenerated its playlists: only `videos`' info_hashes
    /// are let in from now on.
    pub async fn republish(&mut self, videos: &[Value]) {
        use tokio::io::AsyncWriteExt;
        let before = self.allowed.lock().unwrap().1;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("videos {}\n", Value::from(videos.to_vec())).as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        for _ in 0..200 {
            if self.allowed.lock().unwrap().1 > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the tracker did not take the new info_hashes");
    }

    /// The WebSocket URL, with its explicit port, as PeerTube lists it.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/tracker/socket", self.port)
    }

    /// Every announce (answers included) the filter saw.
    pub fn announces(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }

    /// The announces it refused.
    pub fn refused(&self) -> Vec<Value> {
        self.announces()
            .into_iter()
            .filter(|a| a["accepted"] == json!(false))
            .collect()
    }

    /// The accepted announces of peers whose id starts with `prefix`.
    pub fn accepted_from(&self, prefix: &str) -> Vec<Value> {
        self.announces()
            .into_iter()
            .filter(|a| {
                a["accepted"] == json!(true)
                    && a["peer_id"].as_str().is_some_and(|p| p.starts_with(prefix))
            })
            .collect()
    }
}

/// A mirror that lies: it serves the files of `dir` (a video's directory)
/// at `/<file name>`, as PeerTube's redundancies do, with one byte of every
/// answer changed. Counts what it was asked.
pub struct LyingMirror {
    pub base: String,
    requests: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl LyingMirror {
    pub async fn start(dir: &Path) -> LyingMirror {
        let dir = dir.to_path_buf();
        let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = requests.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let (dir, count) = (dir.clone(), count.clone());
            async move {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = request.uri().path().trim_start_matches('/').to_owned();
                if name.contains('/') || name.starts_with('.') {
                    return StatusCode::BAD_REQUEST.into_response();
                }
                let Ok(data) = std::fs::read(dir.join(&name)) else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                let range = request
                    .headers()
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes="))
                    .and_then(|v| v.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
                let (status, mut body) = match range {
                    Some((a, b)) if a <= b && b < data.len() => {
                        (StatusCode::PARTIAL_CONTENT, data[a..=b].to_vec())
                    }
                    _ => (StatusCode::OK, data),
                };
                let middle = body.len() / 2;
                if let Some(byte) = body.get_mut(middle) {
                    *byte ^= 0x5a;
                }
                (status, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], body).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LyingMirror {
            base,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for LyingMirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A PeerTube-shaped video of random bytes, no player needed: one file of
/// byte ranges of `sizes` after a 1,000-byte init section, so segments
/// over 1 MiB (several blocks) are in it too.
pub fn make_synthetic(root: &Path, uuid: &str, sizes: &[usize]) -> Hls {
    let dir = root.join(static_path(uuid));
    std::fs::create_dir_all(&dir).unwrap();
    let file = HlsFile {
        resolution: 720,
        playlist: format!("{uuid}-720.m3u8"),
        fragmented: format!("{uuid}-720-fragmented.mp4"),
    };
    let total = 1000 + sizes.iter().sum::<usize>();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..total)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(dir.join(&file.fragmented), &data).unwrap();
    let mut playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"{f}\",BYTERANGE=\"1000@0\"\n",
        f = file.fragmented
    );
    let mut offset = 1000;
    for size in sizes {
        playlist.push_str(&format!(
            "#EXTINF:4.000000,\n#EXT-X-BYTERANGE:{size}@{offset}\n{}\n",
            file.fragmented
        ));
        offset += size;
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.join(&file.playlist), playlist).unwrap();
    let hls = Hls {
        dir: dir.clone(),
        master: "5a6b7c8d-master.m3u8".into(),
        sha256: "5a6b7c8d-segments-sha256.json".into(),
        files: vec![file],
    };
    std::fs::write(
        dir.join(&hls.master),
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=4000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\"\n{}\n",
            hls.files[0].playlist
        ),
    )
    .unwrap();
    std::fs::write(dir.join(&hls.sha256), sha256_json(&hls).to_string()).unwrap();
    hls
}
