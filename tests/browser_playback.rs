//! The browser bridge's hls.js loader: headless Chromium plays the `ts`
//! fixture from the CDN with hls.js, and the loader takes the segments from
//! a seeding daemon over WebRTC-direct, because the master playlist names a
//! CID map signed by that daemon, which the page trusts. The CDN's own count
//! shows it sent (almost) no segment bytes during playback. When the
//! segments come from the CDN instead, bytes that fail their trusted CID
//! never reach hls.js.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Chromium, PageServer};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::copy_dir;
use support::{TEST_TIMEOUT, fixtures};

/// The `ts` fixture on a loopback CDN whose master names a CID map that a
/// seeding daemon signed.
struct Published {
    origin: std::path::PathBuf,
    cdn: TestCdn,
    daemon: Daemon,
    master: String,
    daemon_id: String,
    addrs: Vec<String>,
}

async fn publish(work: &std::path::Path) -> Published {
    let origin = work.join("origin");
    copy_dir(&fixtures().join("ts"), &origin.join("ts"));
    let cdn = TestCdn::start(&origin).await;
    let daemon = Daemon::start_p2p(&work.join("daemon"), "", "").await;
    let master = cdn.url("ts/master.m3u8");

    // The daemon seeds the video and signs its CID map.
    let video = daemon.seed(&master).await;
    let id = video["id"].as_str().unwrap().to_owned();
    let map_bytes = reqwest::get(daemon.url(&format!("/api/v1/videos/{id}/cidmap")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let map: Value = serde_json::from_slice(&map_bytes).unwrap();
    let (daemon_id, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
    assert_eq!(map["publisher"], daemon_id.as_str(), "{map}");
    let segments: Vec<&Value> = map["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["segments"].as_array().unwrap())
        .collect();
    assert_eq!(segments.len(), 12, "{map}");

    // The origin serves the map beside the master and names it there.
    std::fs::write(origin.join("ts/cidmap.json"), &map_bytes).unwrap();
    let body = std::fs::read_to_string(origin.join("ts/master.m3u8")).unwrap();
    let body = body.replacen(
        "#EXT-X-VERSION:3\n",
        "#EXT-X-VERSION:3\n#EXT-X-SESSION-DATA:DATA-ID=\"io.swarmseed.cidmap\",URI=\"cidmap.json\"\n",
        1,
    );
    assert!(body.contains("SESSION-DATA"), "{body}");
    std::fs::write(origin.join("ts/master.m3u8"), body).unwrap();
    Published {
        origin,
        cdn,
        daemon,
        master,
        daemon_id,
        addrs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_takes_segments_from_the_daemon() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let Published {
            origin: _origin,
            cdn,
            daemon,
            master,
            daemon_id,
            addrs,
        } = publish(work.path()).await;

        // Everything the CDN sends from here on is the player's.
        let media_before = cdn.media_bytes_sent();

        let page = PageServer::start().await;
        let mut browser =
            Chromium::launch_with_args(&page.url(), &["--autoplay-policy=no-user-gesture-required"])
                .await;
        let script = format!(
            r#"(async () => {{
  const {{ default: Hls }} = await import('/hls.mjs')
  const client = await swarmseed.SwarmseedClient.create()
  const dialed = await client.connect({addrs})
  const p2p = swarmseed.swarmseedLoader(Hls, {{ client, trustedPublishers: [{daemon_id:?}] }})
  const video = document.createElement('video')
  video.muted = true
  video.autoplay = true
  document.body.appendChild(video)
  const hls = new Hls({{ loader: p2p.loader }})
  const errors = []
  hls.on(Hls.Events.ERROR, (_e, d) => errors.push({{ type: d.type, details: d.details, fatal: d.fatal, url: d.frag?.url ?? d.url }}))
  const fallbacks = []
  p2p.addEventListener('fallback-cdn', e => fallbacks.push(e.detail))
  Object.assign(window, {{ client, p2p, video, hls, errors, fallbacks }})
  hls.loadSource({master:?})
  hls.attachMedia(video)
  video.play().catch(e => errors.push({{ play: String(e) }}))
  return {{ dialed, supported: Hls.isSupported(), peer: client.peerId }}
}})()"#,
            addrs = json!(addrs),
        );
        let started = browser.eval(&script).await;
        eprintln!("started: {started}");
        assert_eq!(started["supported"], true, "{started}");
        assert_eq!(
            started["dialed"][0]["peer"],
            daemon_id.as_str(),
            "{started}"
        );
        let browser_id = started["peer"].as_str().unwrap().to_owned();

        // Poll until playback passes 10 s of the 12 s video.
        let state = "({ t: video.currentTime, ended: video.ended, ready: video.readyState, \
                     paused: video.paused, stats: p2p.stats, errors, fallbacks })";
        let mut last = Value::Null;
        loop {
            let s = browser.eval(state).await;
            if s["t"].as_f64().unwrap_or(0.0) > 10.0 {
                last = s;
                break;
            }
            let fatal = s["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["fatal"] == true);
            assert!(!fatal, "hls.js failed: {s}");
            if s["stats"] != last["stats"] || s["errors"] != last["errors"] {
                eprintln!("playing: {s}");
            }
            last = s;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!("played: {last}");
        let got = browser
            .eval("(async () => { await client.flushReceipts(); return { stats: p2p.stats, client: client.stats } })()")
            .await;
        eprintln!("{got}");
        let stats = &got["stats"];

        // The master's map was trusted because the page trusts its signer.
        assert_eq!(stats["maps"][0]["trust"], "publisher", "{stats}");
        assert_eq!(stats["maps"][0]["segments"], 12, "{stats}");
        assert_eq!(stats["refusedMaps"], json!([]), "{stats}");

        // At least 90% of the segment bytes hls.js played came from the
        // daemon, by the loader's count ...
        let p2p = stats["bytesFromP2p"].as_u64().unwrap();
        let from_cdn = stats["bytesFromCdn"].as_u64().unwrap();
        let played = p2p + from_cdn;
        assert!(played > 0, "{stats}");
        assert!(p2p * 10 >= played * 9, "{p2p} of {played} bytes from the daemon: {stats}");
        // ... and by the CDN's own.
        let media_after = cdn.media_bytes_sent() - media_before;
        assert!(
            media_after * 10 <= played,
            "the CDN sent {media_after} segment bytes during playback of {played}"
        );
        assert_eq!(got["client"]["refusedBlocks"], 0, "{got}");

        // The daemon holds the browser's receipts for what it sent (a block
        // still in flight when playback passed 10 s is receipted soon after).
        let deadline = Instant::now() + Duration::from_secs(30);
        let line = loop {
            let line = daemon.ledger_line(&browser_id).await;
            if line["bytes_sent"].as_u64().unwrap_or(0) > 0
                && line["bytes_receipted"] == line["bytes_sent"]
                || Instant::now() > deadline
            {
                break line;
            }
            browser.eval("client.flushReceipts().then(() => true)").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(line["bytes_sent"].as_u64().unwrap_or(0) >= p2p, "{line}");
        assert_eq!(line["bytes_receipted"], line["bytes_sent"], "{line}");
        assert!(line["receipts"].as_u64().unwrap() > 0, "{line}");
        assert_eq!(line["receipts_refused"], 0, "{line}");

        // A map whose CIDs were changed after signing is refused.
        let tampered = browser
            .eval(
                "(async () => { const m = await (await fetch(p2p.stats.maps[0].url)).json(); \
                 m.renditions[0].segments[0].cid = m.renditions[0].segments[1].cid; \
                 const ok = await p2p.addMap(m); return { ok, refused: p2p.stats.refusedMaps } })()",
            )
            .await;
        assert_eq!(tampered["ok"], false, "{tampered}");
        assert_eq!(tampered["refused"][0]["reason"], "bad signature", "{tampered}");
    })
    .await
    .expect("test timed out");
}

/// With no daemon to ask, every segment comes from the CDN through the
/// loader, which checks each against its trusted CID: the third segment of
/// each rendition, altered at the origin after the map was signed, is
/// refused and never handed to hls.js; the others play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_bytes_that_fail_their_trusted_cid_never_reach_the_player() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let published = publish(work.path()).await;
        let tampered = ["ts/v0/seg_002.ts", "ts/v1/seg_002.ts"];
        for path in tampered {
            let file = published.origin.join(path);
            let mut bytes = std::fs::read(&file).unwrap();
            // Same length, other bytes: only the CID tells.
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&file, bytes).unwrap();
        }

        let page = PageServer::start().await;
        let mut browser = Chromium::launch_with_args(
            &page.url(),
            &["--autoplay-policy=no-user-gesture-required"],
        )
        .await;
        let script = format!(
            r#"(async () => {{
  const {{ default: Hls }} = await import('/hls.mjs')
  const client = await swarmseed.SwarmseedClient.create()
  const p2p = swarmseed.swarmseedLoader(Hls, {{ client, trustedPublishers: [{daemon_id:?}] }})
  const video = document.createElement('video')
  video.muted = true
  document.body.appendChild(video)
  const hls = new Hls({{ loader: p2p.loader }})
  const refused = [], delivered = []
  p2p.addEventListener('refused-cdn', e => refused.push(e.detail))
  p2p.addEventListener('segment', e => delivered.push(e.detail))
  Object.assign(window, {{ p2p, video, hls, refused, delivered }})
  hls.loadSource({master:?})
  hls.attachMedia(video)
  return true
}})()"#,
            daemon_id = published.daemon_id,
            master = published.master,
        );
        browser.eval(&script).await;
        let state = "({ stats: p2p.stats, refused, delivered })";
        let deadline = Instant::now() + Duration::from_secs(60);
        let got = loop {
            let s = browser.eval(state).await;
            if s["stats"]["refusedFromCdn"].as_u64().unwrap_or(0) >= 1
                && s["stats"]["segmentsFromCdn"].as_u64().unwrap_or(0) >= 2
            {
                break s;
            }
            assert!(Instant::now() < deadline, "no refusal and no playback: {s}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        eprintln!("{got}");
        let stats = &got["stats"];
        assert_eq!(stats["maps"][0]["trust"], "publisher", "{stats}");
        assert_eq!(stats["bytesFromP2p"], 0, "{stats}");
        for r in got["refused"].as_array().unwrap() {
            let url = r["url"].as_str().unwrap();
            assert!(tampered.iter().any(|t| url.ends_with(t)), "{r}");
            assert!(
                r["reason"].as_str().unwrap().contains("do not match"),
                "{r}"
            );
        }
        // hls.js got the other segments, and none of the altered ones.
        for d in got["delivered"].as_array().unwrap() {
            let url = d["url"].as_str().unwrap();
            assert!(!tampered.iter().any(|t| url.ends_with(t)), "{d}");
        }
        assert!(
            tampered
                .iter()
                .any(|t| published.cdn.requests_for(&format!("/{t}")) > 0),
            "the altered segments were never asked for"
        );
        assert!(published.daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
