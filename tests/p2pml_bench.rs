//! Benchmarks of the daemon as a p2p-media-loader seeder (ignored by
//! default; `bench/run.sh` runs them with `P2PML_ONLY=1`). Each prints one
//! line, `P2PML_BENCH {json}`.
//!
//! *throughput*: a daemon seeds a VOD of 8 segments of 4 MiB random bytes.
//! Headless Chromium opens a page on the gateway's own origin and makes a
//! p2p-media-loader peer there (the raw peer of `support::p2pml_raw`:
//! plain `RTCPeerConnection`, the daemon's own tracker at `/announce`),
//! which asks the daemon for the 8 segments one after another over one
//! data channel, in the library's framing (header, 64 KiB chunks,
//! completion), as a player does. The reference is the same 8 segments
//! over HTTP from the same gateway (`/hls/seg/…`, its rewritten playlist's
//! paths), in the same page. One warm-up pass each, then 3 repetitions
//! interleaved; medians.
//!
//! *offload*: one seeder (or none) and 1, 3 and 5 unmodified players
//! (hls.js + p2p-media-loader 2.3.1) on one media playlist, through the
//! npm `bittorrent-tracker`; what the CDN sends in media segments until
//! every player holds every segment, in copies of the playlist's segments.
//!
//! ```sh
//! cargo test --release -p swarmseed --test p2pml_bench -- --ignored --nocapture
//! ```

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use bridge::p2pml::command::DEFAULT_MAX_MESSAGE_SIZE;
use bridge::p2pml::stream::{self, Generation};
use serde_json::{Value, json};
use support::browser::{Chromium, group_cpu_ticks, process_cpu_ticks};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::make_video;
use support::p2pml::{NodeTracker, PageServer, Player, PlayerConfig, PlayerState, Version};
use support::p2pml_raw::{PEER_JS, RawPeer, peer_id};

const SEGMENTS: usize = 8;
const SEGMENT_BYTES: usize = 4 * 1024 * 1024;
const REPS: usize = 3;

/// The offload video: past p2p-media-loader's 15 s high-demand window
/// several times over, so that the window's share of it is small.
const OFFLOAD_SECONDS: u32 = 60;
/// The rendition the players play: `make_ts_video`'s lower one, alone, as
/// a media playlist, so "one copy" is one rendition's segments and the
/// seeder fetches just that one.
const OFFLOAD_PLAYLIST: &str = "long/v1/index.m3u8";
const VIEWERS: [usize; 3] = [1, 3, 5];
/// Between one player's start and the next's.
const STAGGER: Duration = Duration::from_secs(2);
/// How long a run may take from the first player's start.
const BOUND: Duration = Duration::from_secs(150);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn round(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

fn ticks_per_second() -> f64 {
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// CPU time of process `pid` in seconds, summed over its threads' run
/// time (`/proc/pid/task/*/schedstat`, in ns): an HTTP pass lasts a
/// fifth of a second, a few of `/proc/pid/stat`'s 10 ms ticks.
fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// Busy CPU ticks of the whole machine (user, nice, system, irq, softirq,
/// steal), from `/proc/stat`: what else ran during a pass is this less
/// the processes measured.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .sum()
}

/// The kernel's UDP counters (`/proc/net/snmp`), machine-wide:
/// (datagrams sent, datagrams dropped at a full receive buffer). On
/// loopback every drop is a datagram one side sent and the other never got.
fn udp_counters() -> (u64, u64) {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut rows = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return (0, 0);
    };
    let get = |name: &str| {
        names
            .split_whitespace()
            .position(|n| n == name)
            .and_then(|i| values.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("OutDatagrams"), get("RcvbufErrors"))
}

fn chromium_version() -> String {
    std::process::Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A daemon that seeds browser swarms on loopback, announcing to
/// `trackers` and serving its own tracker at `/announce`.
async fn seeder(home: &Path, trackers: &[String]) -> Daemon {
    let trackers: Vec<String> = trackers.iter().map(|t| format!("{t:?}")).collect();
    let p2p = format!(
        "listen = []\n[webtorrent]\nlisten = \"127.0.0.1:0\"\ntrackers = [{}]\ntracker = true\n",
        trackers.join(", ")
    );
    Daemon::start_full(home, "", &p2p, &[]).await
}

/// The info_hash (its 20 characters) a 2.3 page announces for the first
/// stream of the playlist at `url`, whose body is the file `file`.
fn info_hash(url: &str, file: &Path) -> String {
    let url = url::Url::parse(url).unwrap();
    let body = std::fs::read(file).unwrap();
    let streams = stream::streams(&stream::swarm_base(&url), &url, &body).unwrap();
    String::from_utf8(streams[0].info_hash(Generation::V23).to_vec()).unwrap()
}

/// One timed pass in the page over `how` (`p2p` or `http`): milliseconds
/// and the size of each segment received.
async fn pass(
    browser: &mut Chromium,
    peer: &RawPeer,
    how: &str,
    first_request: u64,
) -> (f64, Vec<u64>) {
    let got = if how == "p2p" {
        browser
            .eval(&format!(
                "rawPeers.fetchSegments({}, window.benchSegments.map(s => s.id), {first_request})",
                peer.index
            ))
            .await
    } else {
        browser
            .eval(
                r#"(async () => {
  const sizes = []
  const t0 = performance.now()
  for (const s of window.benchSegments) {
    const res = await fetch(s.path, { cache: 'no-store' })
    if (!res.ok) throw new Error(`${s.path}: ${res.status}`)
    sizes.push((await res.arrayBuffer()).byteLength)
  }
  return { ms: performance.now() - t0, sizes, stray: 0 }
})()"#,
            )
            .await
    };
    assert_eq!(got["stray"], 0, "data before a header: {got}");
    let sizes = got["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    (got["ms"].as_f64().unwrap(), sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/run.sh runs it (P2PML_ONLY=1)"]
async fn throughput() {
    let segments = env_usize("BENCH_SEGMENTS", SEGMENTS);
    let segment_bytes = env_usize("BENCH_SEGMENT_BYTES", SEGMENT_BYTES);
    let reps = env_usize("BENCH_REPS", REPS);
    tokio::time::timeout(Duration::from_secs(900), async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_video(&origin.join("big"), segments, segment_bytes);
        let cdn = TestCdn::start(&origin).await;
        let daemon = seeder(&work.path().join("seeder"), &[]).await;
        let master = cdn.url("big/master.m3u8");
        daemon.seed(&master).await;
        let hash = info_hash(&master, &origin.join("big/master.m3u8"));

        // Over HTTP, at the paths the gateway's rewritten playlist names;
        // over the data channel, by the segment's position (a VOD's id).
        let playlist = reqwest::get(daemon.hls(&cdn.url("big/index.m3u8")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let paths: Vec<&str> = playlist
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(paths.len(), segments, "{playlist}");
        let mut expected = Vec::new();
        let list: Vec<Value> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                assert!(path.ends_with(&format!("seg_{i:03}.ts")), "{path}");
                let size = std::fs::metadata(origin.join(format!("big/seg_{i:03}.ts")))
                    .unwrap()
                    .len();
                expected.push(size);
                json!({ "id": i, "path": path, "size": size })
            })
            .collect();
        let bytes_per_pass: u64 = expected.iter().sum();

        // A page on the gateway's origin without a CSP of its own (the
        // JSON health answer): same-origin `fetch()` of `/hls/seg/…` and
        // WebSocket to `/announce`. Ready once that answer itself has
        // loaded, not the blank page before it.
        let health = daemon.url("/api/v1/health");
        let mut browser = Chromium::launch_with(
            &health,
            &[],
            &format!("location.href === {health:?} && document.readyState === 'complete'"),
        )
        .await;
        assert_eq!(
            browser
                .eval(&format!(
                    "(() => {{ {PEER_JS}\n window.benchSegments = {}; return true }})()",
                    Value::Array(list)
                ))
                .await,
            json!(true)
        );
        let tracker = format!("ws://{}/announce", daemon.addr);
        let peer = RawPeer::connect(&mut browser, &tracker, &hash, &peer_id("bench")).await;
        let sent_before = daemon.stats().await["bytes_uploaded_p2pml"]
            .as_u64()
            .unwrap();

        const HOW: [&str; 2] = ["p2p", "http"];
        let mut request = 0u64;
        // One warm-up pass each: the channel's congestion window, the
        // gateway's memory cache and the page's JIT are not what is measured.
        for how in HOW {
            let (_, sizes) = pass(&mut browser, &peer, how, request).await;
            assert_eq!(sizes, expected, "{how}: segment sizes");
            request += segments as u64;
        }

        let hz = ticks_per_second();
        let daemon_pid = daemon.pid() as u32;
        let browser_pid = browser.pid();
        let me = std::process::id();
        let mut runs: Vec<Value> = Vec::new();
        for rep in 0..reps {
            for how in HOW {
                let d0 = process_cpu_seconds(daemon_pid);
                let b0 = group_cpu_ticks(browser_pid);
                let t0 = process_cpu_ticks(me);
                let m0 = machine_busy_ticks();
                let u0 = udp_counters();
                let w0 = Instant::now();
                let (ms, sizes) = pass(&mut browser, &peer, how, request).await;
                let wall = w0.elapsed().as_secs_f64();
                let (d1, b1, t1, m1) = (
                    process_cpu_seconds(daemon_pid),
                    group_cpu_ticks(browser_pid),
                    process_cpu_ticks(me),
                    machine_busy_ticks(),
                );
                let u1 = udp_counters();
                request += segments as u64;
                assert_eq!(sizes, expected, "{how}: segment sizes");
                let bytes: u64 = sizes.iter().sum();
                let mbit = bytes as f64 * 8.0 / 1e3 / ms;
                let daemon_cpu = d1 - d0;
                let other = (m1 - m0) as f64 / hz - daemon_cpu - (b1 - b0 + t1 - t0) as f64 / hz;
                let run = json!({
                    "rep": rep, "how": how, "bytes": bytes, "ms": round(ms, 1),
                    "mbit_s": round(mbit, 1),
                    "daemon_cores": round(daemon_cpu / wall, 3),
                    "browser_cores": round((b1 - b0) as f64 / hz / wall, 3),
                    "other_cores": round(other.max(0.0) / wall, 3),
                    // CPU seconds to send 100 Mbit: also the cores needed
                    // to sustain 100 Mbit/s.
                    "daemon_cpu_s_per_100mbit": round(daemon_cpu / (bytes as f64 * 8.0 / 1e8), 4),
                    "udp_sent": u1.0 - u0.0,
                    "udp_rcvbuf_drops": u1.1 - u0.1,
                });
                eprintln!("{run}");
                runs.push(run);
            }
        }
        // The daemon's own counter saw every byte the page counted, and no
        // more: one peer, whole segments, none cut off.
        let sent = daemon.stats().await["bytes_uploaded_p2pml"]
            .as_u64()
            .unwrap()
            - sent_before;
        assert_eq!(
            sent,
            (reps as u64 + 1) * bytes_per_pass,
            "bytes_uploaded_p2pml"
        );

        let of = |how: &str, key: &str| {
            median(
                runs.iter()
                    .filter(|r| r["how"] == how)
                    .map(|r| r[key].as_f64().unwrap())
                    .collect(),
            )
        };
        let series = |how: &str| -> Vec<f64> {
            runs.iter()
                .filter(|r| r["how"] == how)
                .map(|r| r["mbit_s"].as_f64().unwrap())
                .collect()
        };
        let (p2p, http) = (of("p2p", "mbit_s"), of("http", "mbit_s"));
        let total = |how: &str, key: &str| -> u64 {
            runs.iter()
                .filter(|r| r["how"] == how)
                .map(|r| r[key].as_u64().unwrap())
                .sum()
        };
        let report = json!({
            "test": "throughput",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "segments": segments,
            "segment_bytes": segment_bytes,
            "bytes_per_pass": bytes_per_pass,
            "reps": reps,
            "chunk_bytes": DEFAULT_MAX_MESSAGE_SIZE,
            "p2p_mbit_s": series("p2p"),
            "http_mbit_s": series("http"),
            "p2p_median_mbit_s": p2p,
            "http_median_mbit_s": http,
            "ratio_p2p_http": round(p2p / http, 4),
            "p2p_daemon_cores": of("p2p", "daemon_cores"),
            "p2p_browser_cores": of("p2p", "browser_cores"),
            "p2p_other_cores": of("p2p", "other_cores"),
            "http_daemon_cores": of("http", "daemon_cores"),
            "http_browser_cores": of("http", "browser_cores"),
            "http_other_cores": of("http", "other_cores"),
            "p2p_daemon_cpu_s_per_100mbit": of("p2p", "daemon_cpu_s_per_100mbit"),
            "http_daemon_cpu_s_per_100mbit": of("http", "daemon_cpu_s_per_100mbit"),
            "daemon_counted_bytes": sent,
            "p2p_udp_sent": total("p2p", "udp_sent"),
            "p2p_udp_rcvbuf_drops": total("p2p", "udp_rcvbuf_drops"),
            "chromium": chromium_version(),
            "runs": runs,
        });
        println!("P2PML_BENCH {report}");
        browser.kill().await;
    })
    .await
    .expect("benchmark timed out");
}

/// The media segments of the offload playlist, as CDN paths with sizes.
fn offload_segments(origin: &Path) -> Vec<(String, u64)> {
    let dir = Path::new(OFFLOAD_PLAYLIST).parent().unwrap();
    let text = std::fs::read_to_string(origin.join(OFFLOAD_PLAYLIST)).unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|name| {
            let rel = dir.join(name);
            let size = std::fs::metadata(origin.join(&rel)).unwrap().len();
            (format!("/{}", rel.display()), size)
        })
        .collect()
}

/// What the CDN answered for those segments so far (`.ts` only: a TS
/// playlist has no init sections; playlists are not counted).
fn segment_bytes(cdn: &TestCdn, segments: &[(String, u64)]) -> u64 {
    segments.iter().map(|(p, _)| cdn.bytes_for(p)).sum()
}

/// Distinct media segments a player has loaded (and holds: VOD segments
/// stay in p2p-media-loader's storage, well under its memory limit).
fn held(s: &PlayerState) -> usize {
    s.segments
        .iter()
        .filter(|x| x.stream_type == "main")
        .map(|x| x.url.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

/// One offload run: `n` players (P2P-first or the library's defaults),
/// with a seeding daemon or none, on a fresh CDN, tracker and daemon.
async fn offload_run(
    work: &Path,
    origin: &Path,
    page: &PageServer,
    n: usize,
    p2p_first: bool,
    with_seeder: bool,
) -> Value {
    let segments = offload_segments(origin);
    let total = segments.len();
    let one_copy: u64 = segments.iter().map(|(_, s)| s).sum();
    let cdn = TestCdn::start(origin).await;
    let tracker = NodeTracker::start(Duration::from_secs(10)).await;
    let url = cdn.url(OFFLOAD_PLAYLIST);
    let tag = format!(
        "n{n}-{}-{}",
        if p2p_first { "p2p" } else { "default" },
        if with_seeder { "seeder" } else { "alone" }
    );
    let daemon = match with_seeder {
        true => Some(seeder(&work.join(&tag), &[tracker.ws_url()]).await),
        false => None,
    };
    let mut seeder_id = None;
    if let Some(d) = &daemon {
        d.seed(&url).await;
        let id = d.get_json("/api/v1/node").await["webtorrent_peer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // In the swarm before the first player asks the tracker for peers
        // (the only peer yet: no page is open).
        let deadline = Instant::now() + Duration::from_secs(30);
        while tracker.peer_ids().is_empty() {
            assert!(Instant::now() < deadline, "the seeder never announced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seeder_id = Some(id);
    }
    let seeded = segment_bytes(&cdn, &segments);

    let mut config = PlayerConfig::new(Version::V2_3, &url, &tracker.ws_url());
    if p2p_first {
        config.simultaneous_http_downloads = Some(0);
    }
    let start = Instant::now();
    let mut players = Vec::new();
    for k in 0..n {
        if k > 0 {
            tokio::time::sleep_until((start + STAGGER * k as u32).into()).await;
        }
        players.push(Player::open(page, &config).await);
    }
    let (states, complete) = loop {
        let mut states = Vec::new();
        for p in players.iter_mut() {
            states.push(p.state().await);
        }
        let complete = states.iter().all(|s| held(s) >= total);
        if complete || start.elapsed() > BOUND {
            break (states, complete);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let seconds = start.elapsed().as_secs_f64();
    let after = segment_bytes(&cdn, &segments);
    let viewing = after - seeded;
    let viewers: Vec<Value> = states
        .iter()
        .map(|s| {
            let from_seeder = seeder_id
                .as_ref()
                .and_then(|id| s.bytes_from_peer.get(id).copied())
                .unwrap_or(0);
            json!({
                "held": held(s),
                "current_time": round(s.current_time, 1),
                "http_requests": s.http_requests,
                "bytes_from_http": s.bytes_from_http,
                "bytes_from_p2p": s.bytes_from_p2p,
                "bytes_from_seeder": from_seeder,
                "bytes_from_viewers": s.bytes_from_p2p.saturating_sub(from_seeder),
                "bytes_uploaded": s.bytes_uploaded,
                "fatal_errors": s.fatal_errors().len(),
                "aborts": s.aborts.len(),
            })
        })
        .collect();
    let copies = |b: u64| round(b as f64 / one_copy as f64, 3);
    let run = json!({
        "n": n,
        "settings": if p2p_first { "p2p-first" } else { "default" },
        "seeder": with_seeder,
        "complete": complete,
        "seconds": round(seconds, 1),
        "segments": total,
        "one_copy_bytes": one_copy,
        "cdn_bytes_seeder": seeded,
        "cdn_bytes_viewing": viewing,
        "cdn_copies_total": copies(after),
        "cdn_copies_viewing": copies(viewing),
        "offload_total": round(1.0 - after as f64 / (n as u64 * one_copy) as f64, 3),
        "offload_viewing": round(1.0 - viewing as f64 / (n as u64 * one_copy) as f64, 3),
        "bound_alone": round((n as f64 - 1.0) / n as f64, 3),
        "seeder_sent": match &daemon {
            Some(d) => d.stats().await["bytes_uploaded_p2pml"].clone(),
            None => Value::Null,
        },
        "viewers": viewers,
    });
    eprintln!("{run}");
    for p in players {
        p.browser.kill().await;
    }
    drop(daemon);
    tracker.stop().await;
    cdn.stop().await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/run.sh runs it (P2PML_ONLY=1)"]
async fn offload() {
    tokio::time::timeout(Duration::from_secs(2700), async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        support::p2pml::make_ts_video(&origin.join("long"), OFFLOAD_SECONDS);
        let page = PageServer::start().await;
        let segments = offload_segments(&origin);
        let mut runs = Vec::new();
        // P2P-first with no seeder is not run: no page may fetch over HTTP
        // and none holds anything, so playback cannot start.
        // `BENCH_VIEWERS=1,3` runs fewer, for exploring.
        let viewers: Vec<usize> = std::env::var("BENCH_VIEWERS")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| VIEWERS.to_vec());
        for (p2p_first, with_seeder) in [(false, true), (true, true), (false, false)] {
            for &n in &viewers {
                runs.push(
                    offload_run(work.path(), &origin, &page, n, p2p_first, with_seeder).await,
                );
            }
        }
        let report = json!({
            "test": "offload",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "p2pml": Version::V2_3.npm(),
            "video_seconds": OFFLOAD_SECONDS,
            "playlist": OFFLOAD_PLAYLIST,
            "segments": segments.len(),
            "one_copy_bytes": segments.iter().map(|(_, s)| s).sum::<u64>(),
            "stagger_s": STAGGER.as_secs_f64(),
            "bound_s": BOUND.as_secs_f64(),
            "tracker_interval_s": 10,
            "chromium": chromium_version(),
            "runs": runs,
        });
        println!("P2PML_BENCH {report}");
    })
    .await
    .expect("benchmark timed out");
}
