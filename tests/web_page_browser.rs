//! The web page in a real browser: headless Chromium opens `GET /?url=…`
//! on a running daemon, plays a fixture video through the gateway with the
//! page's hls.js, and the swarm stats beside the video follow the daemon's
//! counters while it plays. A screenshot is left in
//! `target/test-artifacts/web-page.png`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::{Chromium, artifact_path};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::{TEST_TIMEOUT, fixtures};

/// `application/x-www-form-urlencoded`, as `URLSearchParams` writes it, so
/// the address stays the same when the page rewrites its own query.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the page shows now, and where the video is.
const SAMPLE: &str = r#"(() => {
  const v = document.getElementById('video')
  const text = id => document.getElementById(id).textContent
  const p = window.swarmseedPage
  return {
    time: v.currentTime, readyState: v.readyState, paused: v.paused,
    playing: p.playing, updates: p.updates, error: p.error,
    cdnBytes: p.stats ? p.stats.bytes_from_cdn : null,
    cdnText: text('cdn-bytes'), p2pText: text('p2p-bytes'), ratio: text('ratio'),
    down: text('down'), peers: text('peers'), videos: text('videos'),
  }
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plays_a_video_through_the_gateway_and_its_stats_follow() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let master = cdn.url("ts/master.m3u8");
        let url = daemon.url(&format!("/?url={}", form_encode(&master)));

        let mut browser = Chromium::launch_with(
            &url,
            &[
                "--autoplay-policy=no-user-gesture-required",
                "--mute-audio",
                // Wide enough for the stats beside the video in the screenshot.
                "--window-size=1280,900",
            ],
            "document.readyState === 'complete' && window.swarmseedPage !== undefined",
        )
        .await;

        // Poll until the video has played past 5 s of its 12, keeping what
        // the page showed on the way.
        let mut samples: Vec<Value> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let s = browser.eval(SAMPLE).await;
            assert_eq!(s["error"], "", "the page shows an error: {s}");
            let done = s["time"].as_f64().unwrap() > 5.0;
            samples.push(s);
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the video did not play past 5 s; the page showed:\n{}\ndaemon log:\n{}",
                samples
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Then until the stats have moved on while it plays: one more
        // stats-update after the one showing the bytes of the first segments.
        let first_playing = samples
            .iter()
            .find(|s| s["time"].as_f64().unwrap() > 0.0)
            .unwrap()
            .clone();
        let last = loop {
            let s = browser.eval(SAMPLE).await;
            assert_eq!(s["error"], "", "the page shows an error: {s}");
            if s["updates"].as_u64().unwrap() > first_playing["updates"].as_u64().unwrap() + 1
                && s["cdnBytes"].as_u64().unwrap_or(0) > 0
            {
                break s;
            }
            assert!(Instant::now() < deadline, "the stats never moved: {s}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for s in &samples {
            eprintln!("page: {s}");
        }
        eprintln!("page: {last}");
        // Still playing: not paused, and on past the first sample's time.
        assert_eq!(last["paused"], false, "{last}");
        assert!(last["time"].as_f64().unwrap() > first_playing["time"].as_f64().unwrap());

        // The numbers on the page changed while the video played, and they
        // are the daemon's: bytes from the CDN, as /api/v1/stats counts them.
        let before = &samples[0];
        assert_ne!(last["cdnText"], before["cdnText"], "{before} {last}");
        let daemon_stats = daemon.stats().await;
        let daemon_cdn = daemon_stats["bytes_from_cdn"].as_u64().unwrap();
        let page_cdn = last["cdnBytes"].as_u64().unwrap();
        assert!(
            page_cdn <= daemon_cdn && page_cdn * 2 >= daemon_cdn,
            "page {page_cdn} B, daemon {daemon_stats}"
        );
        // At least the first 5 s of the video went through the gateway.
        let first_segment = std::fs::metadata(fixtures().join("ts/v1/seg_000.ts"))
            .unwrap()
            .len();
        assert!(page_cdn >= first_segment, "{page_cdn} B");
        let text = last["cdnText"].as_str().unwrap();
        assert!(text.ends_with(" kB") || text.ends_with(" MB"), "{text}");
        let shown: f64 = text.split(' ').next().unwrap().parse().unwrap();
        let unit = if text.ends_with(" MB") { 1e6 } else { 1e3 };
        assert!(
            (shown * unit - page_cdn as f64).abs() <= 0.01 * page_cdn as f64,
            "{text} shown for {page_cdn} B"
        );
        assert_eq!(last["p2pText"], "0 B", "{last}");
        assert_eq!(last["peers"], "0", "{last}");

        let png = browser.screenshot_png().await;
        let path = artifact_path("web-page.png");
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        assert!(png.len() > 1000, "{} bytes", png.len());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    })
    .await
    .expect("test timed out");
}
