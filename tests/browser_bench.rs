//! Benchmark (ignored by default; `bench/run.sh` runs it with
//! `BROWSER_ONLY=1`): one segment-heavy transfer from a daemon to Chromium
//! over WebRTC-direct and over WebSocket, by CID with the client library,
//! against the same bytes over plain HTTP from the same daemon's gateway,
//! in the same run.
//!
//! A daemon seeds a video of 8 segments of 4 MiB of random bytes from a
//! loopback CDN. Chromium opens a page on the gateway's own origin (so its
//! `fetch()` of `/hls/seg/…` needs no CORS), imports the client bundle, and
//! times in the page, with `performance.now()`, all 8 segments by CID over
//! WebRTC-direct, then over WebSocket, then over HTTP, then by CID again
//! from the daemon's trustless gateway (`/ipfs/`, the client's HTTP
//! source, every block checked and receipted), one segment after another
//! as a player asks for them. Three repetitions, interleaved; the median is
//! reported. It prints one line, `BROWSER_BENCH {json}`.
//!
//! ```sh
//! cargo test --release --test browser_bench -- --ignored --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Chromium, group_cpu_ticks, process_cpu_ticks};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::make_video;

const SEGMENTS: usize = 8;
const SEGMENT_BYTES: usize = 4 * 1024 * 1024;
const REPS: usize = 3;
/// The passes, in the order each repetition runs them: WebRTC-direct
/// (`p2p`), WebSocket, HTTP from the gateway, and the client over HTTP
/// from the trustless gateway (`gw`).
const HOW: [&str; 4] = ["p2p", "ws", "http", "gw"];

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

fn ticks_per_second() -> f64 {
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// One timed pass in the page: `{ms, bytes}`, every length checked.
async fn pass(browser: &mut Chromium, how: &str) -> (f64, u64) {
    let got = browser
        .eval(&format!(
            r#"(async () => {{
  let bytes = 0
  const t0 = performance.now()
  for (const s of window.benchSegments) {{
    let b
    if ({how:?} !== 'http') {{
      const client = {{ ws: window.wsClient, gw: window.gwClient }}[{how:?}] ?? window.client
      // Streams the daemon resets now and then make a segment fail
      // (README); it is asked again, in the clock, and counted.
      for (let attempt = 0; ; attempt++) {{
        try {{
          b = await client.fetchFile(s.cid, {{ size: s.size, video: s.video }})
          break
        }} catch (e) {{
          if (attempt >= 3) throw new Error(`${{e}}; last stream errors: ${{JSON.stringify(window.blockErrors.slice(-4))}}`)
          window.segmentRetries = (window.segmentRetries ?? 0) + 1
        }}
      }}
    }} else {{
      const res = await fetch(s.path, {{ cache: 'no-store' }})
      if (!res.ok) throw new Error(`${{s.path}}: ${{res.status}}`)
      b = new Uint8Array(await res.arrayBuffer())
    }}
    if (!b) throw new Error('no bytes')
    if (b.length !== s.size) throw new Error(`${{s.cid}}: ${{b.length}} bytes, not ${{s.size}}`)
    bytes += b.length
  }}
  return {{ ms: performance.now() - t0, bytes }}
}})()"#
        ))
        .await;
    (got["ms"].as_f64().unwrap(), got["bytes"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/run.sh runs it (BROWSER_ONLY=1)"]
async fn webrtc_direct_against_http_from_the_gateway() {
    let segments = env_usize("BENCH_SEGMENTS", SEGMENTS);
    let segment_bytes = env_usize("BENCH_SEGMENT_BYTES", SEGMENT_BYTES);
    let reps = env_usize("BENCH_REPS", REPS);
    // Blocks in flight per client (the client's default is 4).
    let parallel = env_usize("BENCH_PARALLEL", 4);
    tokio::time::timeout(Duration::from_secs(900), async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_video(&origin.join("big"), segments, segment_bytes);
        let cdn = TestCdn::start(&origin).await;
        // The daemon's default limits, as a browser meets them.
        let daemon = Daemon::start_for_browsers(&work.path().join("daemon")).await;
        let master = cdn.url("big/master.m3u8");
        let video = daemon.seed(&master).await;
        let id = video["id"].as_str().unwrap().to_owned();

        // By CID, from the video's CID map.
        let map = daemon.get_json(&format!("/api/v1/videos/{id}/cidmap")).await;
        let mut by_key = std::collections::HashMap::new();
        for r in map["renditions"].as_array().unwrap() {
            for s in r["segments"].as_array().unwrap() {
                by_key.insert(s["key"].as_str().unwrap().to_owned(), s.clone());
            }
        }
        // Over HTTP, at the paths the gateway's rewritten playlist names.
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
        let list: Vec<Value> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let s = &by_key[&cdn.url(&format!("big/seg_{i:03}.ts"))];
                assert!(path.ends_with(&format!("seg_{i:03}.ts")), "{path}");
                json!({ "cid": s["cid"], "size": s["size"], "video": id, "path": path })
            })
            .collect();

        let (daemon_id, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        let (_, ws_addrs) = daemon.browser_addrs("/ws/").await;

        // A page on the gateway's origin without a CSP of its own (the JSON
        // health answer), with the client bundle imported into it.
        // Ready once the health answer itself has loaded: the blank page
        // Chromium starts with is complete too, and the navigation that
        // follows it would destroy whatever was imported there.
        let health = daemon.url("/api/v1/health");
        let mut browser = Chromium::launch_with(
            &health,
            &[],
            &format!("location.href === {health:?} && document.readyState === 'complete'"),
        )
        .await;
        browser.inject_bundle().await;
        let dialed = browser
            .eval(&format!(
                r#"(async () => {{
  window.client = await swarmseed.SwarmseedClient.create({{ parallel: {parallel} }})
  // A second client dials the same daemon over WebSocket only.
  window.wsClient = await swarmseed.SwarmseedClient.create({{ parallel: {parallel} }})
  // A third takes blocks over HTTP from the trustless gateway: this origin.
  window.gwClient = await swarmseed.SwarmseedClient.create({{ parallel: {parallel}, gateways: [location.origin] }})
  window.blockErrors = []
  for (const c of [window.client, window.wsClient, window.gwClient]) {{
    c.addEventListener('block-error', e => window.blockErrors.push(e.detail))
  }}
  window.benchSegments = {list}
  return [...await window.client.connect({addrs}), ...await window.wsClient.connect({ws_addrs})]
}})()"#,
                list = Value::Array(list),
                addrs = json!(addrs),
                ws_addrs = json!(ws_addrs),
            ))
            .await;
        assert_eq!(dialed[0]["peer"], daemon_id.as_str(), "{dialed}");
        assert_eq!(dialed[1]["peer"], daemon_id.as_str(), "{dialed}");

        // One warm-up pass each: the connection, the gateway's cache and the
        // page's JIT are not what is measured.
        for how in HOW {
            pass(&mut browser, how).await;
        }

        let hz = ticks_per_second();
        let daemon_pid = daemon.pid() as u32;
        let browser_pid = browser.pid();
        let mut runs: Vec<Value> = Vec::new();
        let mut mbits: [Vec<f64>; 4] = Default::default();
        for rep in 0..reps {
            for (i, how) in HOW.into_iter().enumerate() {
                let d0 = process_cpu_ticks(daemon_pid);
                let b0 = group_cpu_ticks(browser_pid);
                let w0 = Instant::now();
                let (ms, bytes) = pass(&mut browser, how).await;
                let wall = w0.elapsed().as_secs_f64();
                let d1 = process_cpu_ticks(daemon_pid);
                let b1 = group_cpu_ticks(browser_pid);
                let mbit = bytes as f64 * 8.0 / 1e3 / ms;
                let run = json!({
                    "rep": rep, "how": how, "bytes": bytes, "ms": (ms * 10.0).round() / 10.0,
                    "mbit_s": (mbit * 10.0).round() / 10.0,
                    "daemon_cores": ((d1 - d0) as f64 / hz / wall * 100.0).round() / 100.0,
                    "browser_cores": ((b1 - b0) as f64 / hz / wall * 100.0).round() / 100.0,
                });
                eprintln!("{run}");
                runs.push(run);
                mbits[i].push(mbit);
            }
        }
        browser
            .eval("Promise.all([window.client.flushReceipts(), window.wsClient.flushReceipts(), window.gwClient.flushReceipts()])")
            .await;
        let stats = browser.eval("window.client.stats").await;
        let ws_stats = browser.eval("window.wsClient.stats").await;
        let gw_stats = browser.eval("window.gwClient.stats").await;
        for s in [&stats, &ws_stats, &gw_stats] {
            assert_eq!(s["refusedBlocks"], 0, "{s}");
            assert_eq!(s["bytesFromCdn"], 0, "{s}");
        }
        // Every pass went to the daemon, none to the browser's HTTP cache.
        assert_eq!(
            gw_stats["receiptsAccepted"], gw_stats["blocksFromP2p"],
            "{gw_stats}"
        );

        let cpu = |how: &str, key: &str| {
            median(
                runs.iter()
                    .filter(|r| r["how"] == how)
                    .map(|r| r[key].as_f64().unwrap())
                    .collect(),
            )
        };
        let [p2p, ws, http, gw] = mbits;
        let (p2p_median, ws_median, http_median, gw_median) = (
            median(p2p.clone()),
            median(ws.clone()),
            median(http.clone()),
            median(gw.clone()),
        );
        let round = |v: f64| (v * 10.0).round() / 10.0;
        let report = json!({
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "segments": segments,
            "segment_bytes": segment_bytes,
            "bytes_per_pass": segments * segment_bytes,
            "reps": reps,
            "parallel": parallel,
            "p2p_mbit_s": p2p.iter().copied().map(round).collect::<Vec<_>>(),
            "ws_mbit_s": ws.iter().copied().map(round).collect::<Vec<_>>(),
            "http_mbit_s": http.iter().copied().map(round).collect::<Vec<_>>(),
            "gw_mbit_s": gw.iter().copied().map(round).collect::<Vec<_>>(),
            "p2p_median_mbit_s": round(p2p_median),
            "ws_median_mbit_s": round(ws_median),
            "http_median_mbit_s": round(http_median),
            "gw_median_mbit_s": round(gw_median),
            "ratio_gw_http": (gw_median / http_median * 1000.0).round() / 1000.0,
            "ratio_gw_p2p": (gw_median / p2p_median * 1000.0).round() / 1000.0,
            "ratio_p2p_http": (p2p_median / http_median * 1000.0).round() / 1000.0,
            "ratio_ws_http": (ws_median / http_median * 1000.0).round() / 1000.0,
            "p2p_daemon_cores": cpu("p2p", "daemon_cores"),
            "p2p_browser_cores": cpu("p2p", "browser_cores"),
            "ws_daemon_cores": cpu("ws", "daemon_cores"),
            "ws_browser_cores": cpu("ws", "browser_cores"),
            "http_daemon_cores": cpu("http", "daemon_cores"),
            "http_browser_cores": cpu("http", "browser_cores"),
            "gw_daemon_cores": cpu("gw", "daemon_cores"),
            "gw_browser_cores": cpu("gw", "browser_cores"),
            "gw_receipts_accepted": gw_stats["receiptsAccepted"],
            "gw_blocks": gw_stats["blocksFromP2p"],
            "blocks_from_p2p": stats["blocksFromP2p"],
            "segment_retries": browser.eval("window.segmentRetries ?? 0").await,
            "stream_errors": browser.eval("window.blockErrors.length").await,
            "stream_error_kinds": browser
                .eval("Object.entries(window.blockErrors.reduce((m, e) => { const k = String(e.error).slice(0, 80); m[k] = (m[k] ?? 0) + 1; return m }, {}))")
                .await,
            "receipts_accepted": stats["receiptsAccepted"],
            "ws_receipts_accepted": ws_stats["receiptsAccepted"],
            "chromium": std::process::Command::new(
                std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
            )
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
            "runs": runs,
        });
        println!("BROWSER_BENCH {report}");
    })
    .await
    .expect("benchmark timed out");
}
