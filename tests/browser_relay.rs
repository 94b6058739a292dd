//! The browser bridge, second part: browsers reach each other through the
//! daemon's circuit relay v2 and fetch blocks from one another over
//! private-to-private `/webrtc`; and browsers that vanish mid-transfer
//! (a closed tab, a killed browser) leave the daemon up, with no
//! connection left behind.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{Chromium, PageServer};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{Segment, copy_dir, make_big_video, seed, sha256_hex};
use support::{TEST_TIMEOUT, fixtures};

/// The tests here each run several browsers; one at a time keeps the
/// two cores free enough for WebRTC.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_to_browser() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        copy_dir(&fixtures().join("ts"), &origin.join("ts"));
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start_p2p(&work.path().join("daemon"), "", "").await;
        // One small raw segment and the dag-pb one.
        let mut segments = seed(&daemon, &cdn, &origin, "ts").await;
        segments.truncate(1);
        segments.extend(seed(&daemon, &cdn, &origin, "big").await);
        assert!(segments[1].cid.starts_with("bafybei"), "a dag-pb tree");
        let (daemon_id, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        let segs: Vec<Value> = segments
            .iter()
            .map(|s| json!({ "cid": s.cid, "size": s.size, "video": s.video }))
            .collect();

        let page = PageServer::start().await;
        let mut a = Chromium::launch(&page.url()).await;
        let mut b = a.open_tab(&page.url()).await;

        // A: fetches the segments from the daemon, then listens via its relay.
        let got_a = a
            .eval(&format!(
                r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create({{ relay: true, iceServers: [] }})
  window.client = client
  const dialed = await client.connect({addrs})
  for (const s of {segs}) await client.fetchFile(s.cid, {{ size: s.size, video: s.video }})
  await client.flushReceipts()
  const listen = await client.listen({addrs})
  return {{ peer: client.peerId, dialed, listen, stats: client.stats, held: client.held.count }}
}})()"#,
                addrs = json!(addrs),
                segs = Value::Array(segs.clone()),
            ))
            .await;
        eprintln!("A: {got_a}");
        assert_eq!(got_a["dialed"][0]["peer"], daemon_id.as_str());
        let a_id = got_a["peer"].as_str().unwrap().to_owned();
        let a_addrs = got_a["listen"].as_array().unwrap().clone();
        assert!(!a_addrs.is_empty());
        for addr in &a_addrs {
            let addr = addr.as_str().unwrap();
            assert!(
                addr.contains(&format!("/p2p/{daemon_id}/p2p-circuit/webrtc/p2p/{a_id}")),
                "{addr}"
            );
        }
        let uploaded = daemon.stats().await["bytes_uploaded"].as_u64().unwrap();

        // B: dials A through the relay and asks A alone for the segments.
        let t = Instant::now();
        let got_b = b
            .eval(&format!(
                r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create({{ relay: true, iceServers: [] }})
  window.client = client
  const errors = []
  client.addEventListener('block-error', e => errors.push(e.detail))
  const dialed = await client.connect({a_addrs})
  const files = []
  for (const s of {segs}) {{
    const bytes = await client.fetchFile(s.cid, {{ size: s.size, video: s.video }})
      .catch(e => {{ throw new Error(`${{e}}; dialed ${{JSON.stringify(dialed)}}; block errors ${{JSON.stringify(errors)}}`) }})
    files.push({{ cid: s.cid, len: bytes.length, sha256: await sha256hex(bytes) }})
  }}
  await client.flushReceipts()
  const conns = client.node.getConnections().map(c => ({{
    peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), limited: c.limits != null
  }}))
  return {{ peer: client.peerId, dialed, files, conns, daemons: client.daemons, stats: client.stats }}
}})()"#,
                a_addrs = Value::Array(a_addrs.clone()),
                segs = Value::Array(segs.clone()),
            ))
            .await;
        eprintln!("B (in {:?}): {got_b}", t.elapsed());
        let stats = &got_b["stats"];
        assert_eq!(got_b["dialed"][0]["peer"], a_id.as_str(), "{}", got_b["dialed"]);
        assert_eq!(got_b["daemons"], json!([a_id]), "B asks A only");
        // B reached A over a direct /webrtc connection, not the relay.
        let conns = got_b["conns"].as_array().unwrap();
        assert!(
            conns.iter().any(|c| c["peer"] == a_id.as_str()
                && c["limited"] == false
                && c["addr"].as_str().unwrap().contains("/p2p-circuit/webrtc")),
            "{conns:?}"
        );
        // Every byte as the fixture has it, and every one from A.
        let files = got_b["files"].as_array().unwrap();
        assert_eq!(files.len(), segments.len());
        for (s, f) in segments.iter().zip(files) {
            let want = std::fs::read(&s.file).unwrap();
            assert_eq!(f["cid"], s.cid.as_str());
            assert_eq!(f["len"].as_u64().unwrap(), want.len() as u64);
            assert_eq!(f["sha256"], sha256_hex(&want).as_str(), "{}", s.file.display());
        }
        // The same blocks A took from the daemon (the leaves and the root).
        let total = got_a["stats"]["bytesFromP2p"].as_u64().unwrap();
        assert_eq!(stats["bytesFromP2p"].as_u64().unwrap(), total, "{stats}");
        assert_eq!(stats["peers"][&a_id]["bytes"].as_u64().unwrap(), total, "{stats}");
        assert_eq!(stats["bytesFromCdn"], 0, "{stats}");
        assert_eq!(stats["refusedBlocks"], 0, "{stats}");
        // Browsers keep no ledger: B signed no receipt for A's blocks.
        assert_eq!(stats["receiptsSent"], 0, "{stats}");
        // A served them all, and the daemon sent nothing more.
        let served = a.eval("window.client.stats").await;
        assert_eq!(served["blocksServed"], stats["blocksFromP2p"], "{served}");
        assert_eq!(served["bytesServed"].as_u64().unwrap(), total, "{served}");
        assert_eq!(
            daemon.stats().await["bytes_uploaded"].as_u64().unwrap(),
            uploaded,
            "the daemon sent no block to B"
        );
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// Starts a page fetching `seg` from the daemon over and over, and returns
/// once the daemon has sent it at least `bytes` more: the page is then in
/// the middle of a transfer.
async fn start_fetching(
    eval: impl AsyncFnOnce(String) -> Value,
    daemon: &Daemon,
    addrs: &[String],
    seg: &Segment,
) {
    let before = daemon.stats().await["bytes_uploaded"].as_u64().unwrap();
    let started = eval(format!(
        r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  const dialed = await client.connect({addrs})
  window.rounds = 0
  window.loop = (async () => {{
    for (;;) {{
      try {{ await client.fetchFile({cid:?}, {{ size: {size} }}); window.rounds++ }} catch (e) {{
        window.lastError = String(e)
        await new Promise(r => setTimeout(r, 100))
      }}
    }}
  }})()
  return dialed
}})()"#,
        addrs = json!(addrs),
        cid = seg.cid,
        size = seg.size,
    ))
    .await;
    assert!(started[0]["peer"].is_string(), "{started}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while daemon.stats().await["bytes_uploaded"].as_u64().unwrap() < before + seg.size {
        assert!(
            Instant::now() < deadline,
            "the page never fetched:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits, without a time limit of its own, until the daemon's
/// `peers_connected` is back to `baseline`; returns how long that took.
async fn peers_back_to(daemon: &Daemon, baseline: u64, what: &str) -> Duration {
    let t = Instant::now();
    loop {
        let stats = daemon.stats().await;
        let now = stats["peers_connected"].as_u64().unwrap();
        if now == baseline {
            let took = t.elapsed();
            eprintln!("{what}: peers_connected back to {baseline} after {took:?}");
            return took;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survival() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The daemon pings every 5 s and closes a connection after two failed
    // pings, so a vanished browser's connection goes within about 30 s.
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start_for_browsers(&work.path().join("daemon")).await;
        let seg = seed(&daemon, &cdn, &origin, "big").await.remove(0);
        let (_, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        let (_, ws_addrs) = daemon.browser_addrs("/ws/").await;
        let baseline = daemon.stats().await["peers_connected"].as_u64().unwrap();
        let page = PageServer::start().await;

        // A tab closed in the middle of a transfer.
        let mut browser = Chromium::launch(&page.url()).await;
        let mut tab = browser.open_tab(&page.url()).await;
        start_fetching(async |s| tab.eval(&s).await, &daemon, &addrs, &seg).await;
        assert!(daemon.stats().await["peers_connected"].as_u64().unwrap() > baseline);
        browser.close_tab(tab).await;
        peers_back_to(&daemon, baseline, "tab closed").await;
        assert!(daemon.healthy().await);

        // A whole browser killed (SIGKILL) in the middle of a transfer.
        let mut doomed = Chromium::launch(&page.url()).await;
        start_fetching(async |s| doomed.eval(&s).await, &daemon, &addrs, &seg).await;
        assert!(daemon.stats().await["peers_connected"].as_u64().unwrap() > baseline);
        doomed.kill().await;
        peers_back_to(&daemon, baseline, "browser killed").await;
        assert!(daemon.healthy().await);

        // A tab on WebSocket closed in the middle of a transfer.
        let mut tab = browser.open_tab(&page.url()).await;
        start_fetching(async |s| tab.eval(&s).await, &daemon, &ws_addrs, &seg).await;
        assert!(daemon.stats().await["peers_connected"].as_u64().unwrap() > baseline);
        browser.close_tab(tab).await;
        peers_back_to(&daemon, baseline, "websocket tab closed").await;
        assert!(daemon.healthy().await);

        // The daemon still serves a fresh browser.
        let got = browser
            .eval(&format!(
                r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  const dialed = await client.connect({addrs})
  const bytes = await client.fetchFile({cid:?}, {{ size: {size} }})
  await client.flushReceipts()
  return {{ dialed, len: bytes.length, sha256: await sha256hex(bytes), stats: client.stats }}
}})()"#,
                addrs = json!(addrs),
                cid = seg.cid,
                size = seg.size,
            ))
            .await;
        let want = std::fs::read(&seg.file).unwrap();
        assert_eq!(got["len"].as_u64().unwrap(), want.len() as u64, "{got}");
        assert_eq!(got["sha256"], sha256_hex(&want).as_str());
        assert_eq!(got["stats"]["receiptsRefused"], 0, "{}", got["stats"]);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
