//! The browser bridge, first part: headless Chromium runs the client
//! library (`bridge/js`), dials a real daemon over WebRTC-direct or
//! WebSocket, fetches segments by CID with every block checked, and signs
//! receipts the daemon accepts. A peer that lies is refused and the CDN
//! serves instead.

mod support;

use serde_json::{Value, json};
use support::browser::{Chromium, PageServer};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{make_big_video, seed, sha256_hex, ts_and_big_origin};
use support::peer::{Misbehaviour, TestPeer};
use support::{TEST_TIMEOUT, fixtures};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_the_daemon_over_webrtc_direct() {
    fetch_every_segment("/webrtc-direct/").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_the_daemon_over_websocket() {
    fetch_every_segment("/ws/").await
}

/// The browser dials the daemon's `browser_addrs` of one transport only,
/// fetches every segment of two seeded videos byte-exact, and the daemon
/// takes a receipt for every byte it sent.
async fn fetch_every_segment(transport: &str) {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = ts_and_big_origin(work.path());
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start_for_browsers(&work.path().join("daemon")).await;

        let mut segments = seed(&daemon, &cdn, &origin, "ts").await;
        segments.extend(seed(&daemon, &cdn, &origin, "big").await);
        assert!(segments.len() >= 13, "{} segments", segments.len());
        assert!(
            segments.iter().any(|s| s.cid.starts_with("bafybei")),
            "one segment is a dag-pb tree"
        );
        let (daemon_id, addrs) = daemon.browser_addrs(transport).await;

        let page = PageServer::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        let segs: Vec<Value> = segments
            .iter()
            .map(|s| json!({ "cid": s.cid, "size": s.size, "video": s.video }))
            .collect();
        let script = format!(
            r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  window.client = client
  const dialed = await client.connect({addrs})
  const files = []
  const t0 = performance.now()
  for (const s of {segs}) {{
    const t = performance.now()
    const bytes = await client.fetchFile(s.cid, {{ size: s.size, video: s.video }})
    const ms = performance.now() - t
    files.push({{ cid: s.cid, len: bytes.length, ms, sha256: await sha256hex(bytes) }})
  }}
  const ms = performance.now() - t0
  await client.flushReceipts()
  return {{ peer: client.peerId, dialed, files, ms, stats: client.stats }}
}})()"#,
            addrs = json!(addrs),
            segs = Value::Array(segs),
        );
        let got = browser.eval(&script).await;
        let stats = &got["stats"];
        eprintln!(
            "browser fetched {} bytes over {transport} in {:.0} ms ({:.1} Mbit/s); stats {stats}",
            stats["bytesFromP2p"],
            got["ms"].as_f64().unwrap(),
            stats["bytesFromP2p"].as_f64().unwrap() * 8.0 / 1000.0 / got["ms"].as_f64().unwrap()
        );
        assert_eq!(
            got["dialed"][0]["peer"],
            daemon_id.as_str(),
            "{}",
            got["dialed"]
        );

        for f in got["files"].as_array().unwrap() {
            let (len, ms) = (f["len"].as_f64().unwrap(), f["ms"].as_f64().unwrap());
            if len > 1e6 {
                eprintln!(
                    "one {len} byte segment (dag-pb, 4 leaves) in {ms:.0} ms: {:.1} Mbit/s",
                    len * 8.0 / 1000.0 / ms
                );
            }
        }

        // Byte-exact: every segment as the fixture has it.
        let files = got["files"].as_array().unwrap();
        assert_eq!(files.len(), segments.len());
        for (s, f) in segments.iter().zip(files) {
            let want = std::fs::read(&s.file).unwrap();
            assert_eq!(f["cid"], s.cid.as_str());
            assert_eq!(
                f["len"].as_u64().unwrap(),
                want.len() as u64,
                "{}",
                s.file.display()
            );
            assert_eq!(
                f["sha256"],
                sha256_hex(&want).as_str(),
                "{}",
                s.file.display()
            );
        }
        assert_eq!(stats["refusedBlocks"], 0);
        assert_eq!(stats["bytesFromCdn"], 0);
        let blocks = stats["blocksFromP2p"].as_u64().unwrap();
        let p2p_bytes = stats["bytesFromP2p"].as_u64().unwrap();
        assert_eq!(
            stats["receiptsAccepted"].as_u64().unwrap(),
            blocks,
            "{stats}"
        );
        assert_eq!(stats["receiptsRefused"], 0, "{stats}");

        // The daemon took every receipt the browser signed, for every byte
        // it sent, and counted the upload.
        let browser_id = got["peer"].as_str().unwrap();
        let line = daemon.ledger_line(browser_id).await;
        assert!(!line.is_null(), "browser {browser_id} not in the ledger");
        assert_eq!(line["bytes_sent"].as_u64().unwrap(), p2p_bytes, "{line}");
        assert_eq!(line["bytes_receipted"], line["bytes_sent"], "{line}");
        assert_eq!(line["bytes_unreceipted"], 0, "{line}");
        assert_eq!(line["receipts"].as_u64().unwrap(), blocks, "{line}");
        assert_eq!(line["receipts_refused"], 0, "{line}");
        let stats = daemon.stats().await;
        assert_eq!(
            stats["bytes_uploaded"].as_u64().unwrap(),
            p2p_bytes,
            "{stats}"
        );
        assert_eq!(
            stats["bytes_receipted"].as_u64().unwrap(),
            p2p_bytes,
            "{stats}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_daemon() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let cdn = TestCdn::start(&fixtures()).await;
        let liar = TestPeer::start_webrtc(Misbehaviour::Liar).await;
        let addr = liar.webrtc_addr().await;
        let liar_id = liar.swarm.peer_id.to_string();
        let path = "ts/v0/seg_000.ts";
        let want = std::fs::read(fixtures().join(path)).unwrap();
        let cid = swarmseed::store::unixfs::cid_of_reader(&want[..])
            .unwrap()
            .to_string();

        let page = PageServer::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        let script = format!(
            r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  const events = []
  for (const type of ['refused', 'fallback-cdn']) {{
    client.addEventListener(type, e => events.push({{ type, ...e.detail }}))
  }}
  const dialed = await client.connect([{addr:?}])
  const r = await client.fetchSegment({cid:?}, {url:?}, {{ size: {size} }})
  await client.flushReceipts()
  // A CDN answer that is not the segment the CID names is refused as well.
  const wrong = await client.fetchSegment({cid:?}, {other:?}).then(() => 'accepted', e => String(e))
  return {{ dialed, source: r.source, len: r.bytes.length, sha256: await sha256hex(r.bytes),
           stats: client.stats, daemons: client.daemons, events, wrong }}
}})()"#,
            url = cdn.url(path),
            other = cdn.url("ts/v0/seg_001.ts"),
            size = want.len(),
        );
        let got = browser.eval(&script).await;
        eprintln!("{got}");
        assert_eq!(
            got["dialed"][0]["peer"],
            liar_id.as_str(),
            "{}",
            got["dialed"]
        );
        let stats = &got["stats"];
        // The liar's bytes failed the CID: refused, counted, and the liar
        // is asked no more.
        assert_eq!(stats["refusedBlocks"], 1, "{stats}");
        assert_eq!(stats["refusedBytes"], 1000, "{stats}");
        assert_eq!(stats["peers"][&liar_id]["refused"], 1, "{stats}");
        assert_eq!(stats["peers"][&liar_id]["bytes"], 0, "{stats}");
        assert_eq!(got["daemons"], json!([]));
        assert_eq!(got["events"][0]["type"], "refused");
        assert_eq!(got["events"][1]["type"], "fallback-cdn");
        // No receipt for bytes that were refused.
        assert_eq!(stats["receiptsSent"], 0, "{stats}");
        // The segment came from the CDN, byte-exact.
        assert_eq!(got["source"], "cdn");
        assert_eq!(got["len"].as_u64().unwrap(), want.len() as u64);
        assert_eq!(got["sha256"], sha256_hex(&want).as_str());
        assert_eq!(stats["bytesFromCdn"].as_u64().unwrap(), want.len() as u64);
        assert_eq!(stats["bytesFromP2p"], 0);
        assert_eq!(cdn.requests_for(&format!("/{path}")), 1);
        let wrong = got["wrong"].as_str().unwrap();
        assert!(wrong.contains("do not match"), "{wrong}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_among_daemons_is_dropped_and_the_next_daemon_serves() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(&work.path().join("daemon"), "", "").await;
        let video = daemon.seed(&cdn.url("ts/master.m3u8")).await;
        let id = video["id"].as_str().unwrap().to_owned();
        let map = daemon.get_json(&format!("/api/v1/videos/{id}/cidmap")).await;
        let segments: Vec<Value> = map["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["segments"].as_array().unwrap().clone())
            .collect();
        let (daemon_id, mut addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        let liar = TestPeer::start_webrtc(Misbehaviour::Liar).await;
        let liar_id = liar.swarm.peer_id.to_string();
        addrs.push(liar.webrtc_addr().await);
        let cdn_before = cdn.media_bytes_sent();

        let page = PageServer::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        let script = format!(
            r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  const dialed = await client.connect({addrs})
  const files = []
  for (const s of {segments}) {{
    const r = await client.fetchSegment(s.cid, s.key, {{ size: s.size, video: {id:?} }})
    files.push({{ key: s.key, source: r.source, len: r.bytes.length, sha256: await sha256hex(r.bytes) }})
  }}
  await client.flushReceipts()
  return {{ peer: client.peerId, dialed, files, stats: client.stats, daemons: client.daemons }}
}})()"#,
            addrs = json!(addrs),
            segments = Value::Array(segments.clone()),
        );
        let got = browser.eval(&script).await;
        let stats = &got["stats"];
        assert!(
            got["dialed"].as_array().unwrap().iter().all(|d| d["peer"].is_string()),
            "{}",
            got["dialed"]
        );
        // The liar lied once, was dropped, and the daemon served every segment.
        assert_eq!(stats["refusedBlocks"], 1, "{stats}");
        assert_eq!(stats["peers"][&liar_id]["refused"], 1, "{stats}");
        assert_eq!(got["daemons"], json!([daemon_id]));
        for (s, f) in segments.iter().zip(got["files"].as_array().unwrap()) {
            let path = s["key"].as_str().unwrap().strip_prefix(&cdn.url("")).unwrap();
            let want = std::fs::read(fixtures().join(path)).unwrap();
            assert_eq!(f["source"], "p2p", "{f}");
            assert_eq!(f["len"].as_u64().unwrap(), want.len() as u64, "{path}");
            assert_eq!(f["sha256"], sha256_hex(&want).as_str(), "{path}");
        }
        assert_eq!(stats["bytesFromCdn"], 0, "{stats}");
        assert_eq!(cdn.media_bytes_sent(), cdn_before, "the CDN sent no segment to the browser");
        // Receipts went to the daemon only, and it took them all.
        assert_eq!(stats["receiptsAccepted"], stats["blocksFromP2p"], "{stats}");
        assert_eq!(stats["receiptsRefused"], 0, "{stats}");
        let browser_id = got["peer"].as_str().unwrap();
        let line = daemon.ledger_line(browser_id).await;
        assert!(!line.is_null(), "browser {browser_id} not in the ledger");
        assert_eq!(line["bytes_sent"], stats["bytesFromP2p"], "{line}");
        assert_eq!(line["bytes_receipted"], line["bytes_sent"], "{line}");
        assert_eq!(line["receipts_refused"], 0, "{line}");
    })
    .await
    .expect("test timed out");
}

/// A browser that signs no receipts takes the same penalty as any peer:
/// past `max_unreceipted_bytes` the daemon's ledger marks it, and it is
/// served one request at a time, after peers that sign, with its other
/// requests turned away busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_signs_no_receipts_is_served_last() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        // A slow uplink, so requests sent together are still in flight
        // together.
        let p2p = r#"listen = ["/ip4/127.0.0.1/udp/0/webrtc-direct"]
upload_bytes_per_sec = "4MiB"
[proofs]
max_unreceipted_bytes = "256KiB"
"#;
        let daemon = Daemon::start_full(&work.path().join("daemon"), "", p2p, &[]).await;
        let big = seed(&daemon, &cdn, &origin, "big").await.remove(0);
        let (daemon_id, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        assert_eq!(daemon.stats().await["peers_deprioritized"], 0);

        let page = PageServer::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        // The root and its leaves one at a time, without receipts: about
        // 3.5 MiB owed, far past the limit.
        let got = browser
            .eval(&format!(
                r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create({{ receipts: false }})
  window.client = client
  const dialed = await client.connect({addrs})
  const root = await client.fetchBlock({cid:?})
  window.leaves = swarmseed.links(root).map(String)
  for (const leaf of window.leaves) await client.fetchBlock(leaf)
  return {{ peer: client.peerId, dialed, leaves: window.leaves.length, stats: client.stats }}
}})()"#,
                addrs = json!(addrs),
                cid = big.cid,
            ))
            .await;
        assert_eq!(got["dialed"][0]["peer"], daemon_id.as_str(), "{got}");
        assert_eq!(got["leaves"], 4, "{got}");
        let stats = &got["stats"];
        assert_eq!(stats["receiptsSent"], 0, "{stats}");
        let taken = stats["bytesFromP2p"].as_u64().unwrap();
        assert!(taken > big.size, "{stats}");

        let browser_id = got["peer"].as_str().unwrap();
        let line = daemon.ledger_line(browser_id).await;
        assert!(!line.is_null(), "browser {browser_id} not in the ledger");
        assert_eq!(line["deprioritized"], true, "{line}");
        assert_eq!(line["bytes_sent"].as_u64().unwrap(), taken, "{line}");
        assert_eq!(line["bytes_unreceipted"].as_u64().unwrap(), taken, "{line}");
        assert_eq!(daemon.stats().await["peers_deprioritized"], 1);

        // Four leaves asked for at once: one is served, the others are
        // turned away busy (the client retries them a few times, then
        // gives up on this daemon).
        let round = browser
            .eval(
                r#"(async () => {
  const before = client.stats.busyAnswers
  const results = await Promise.allSettled(window.leaves.map(l => client.fetchBlock(l)))
  return { busy: client.stats.busyAnswers - before,
           served: results.filter(r => r.status === 'fulfilled').length }
})()"#,
            )
            .await;
        eprintln!("four at once from a browser that owes receipts: {round}");
        assert!(round["served"].as_u64().unwrap() >= 1, "{round}");
        assert!(round["busy"].as_u64().unwrap() >= 1, "{round}");
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// Identify tells a browser every protocol the daemon serves, whichever
/// transport it came over, so js-libp2p topologies (Helia's Bitswap among
/// them) can choose the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_lists_every_protocol_the_daemon_serves_on_every_browser_transport() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start_for_browsers(&work.path().join("daemon")).await;
        let page = PageServer::start().await;
        for transport in ["/webrtc-direct/", "/ws/"] {
            let (_, addrs) = daemon.browser_addrs(transport).await;
            let mut browser = Chromium::launch(&page.url()).await;
            let script = format!(
                r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create({{ relay: true }})
  const identified = new Promise(resolve =>
    client.node.addEventListener('peer:identify', e => resolve(e.detail.protocols)))
  await client.connect({addrs})
  return await Promise.race([identified, new Promise(r => setTimeout(() => r(null), 20000))])
}})()"#,
                addrs = json!(addrs),
            );
            let protocols = browser.eval(&script).await;
            browser.kill().await;
            let protocols: Vec<String> = serde_json::from_value(protocols.clone())
                .unwrap_or_else(|_| panic!("{transport}: no identify answer: {protocols}"));
            eprintln!("identify over {transport}: {protocols:?}");
            for p in [
                "/swarmseed/blocks/1.0.0",
                "/swarmseed/receipts/1.0.0",
                "/ipfs/bitswap/1.2.0",
                "/ipfs/id/1.0.0",
                "/ipfs/ping/1.0.0",
                "/swarmseed/kad/1.0.0",
                "/libp2p/circuit/relay/0.2.0/hop",
            ] {
                assert!(
                    protocols.iter().any(|x| x == p),
                    "{transport}: identify lists {protocols:?}, not {p}"
                );
            }
        }
    })
    .await
    .expect("test timed out");
}

/// A stream closed by js-libp2p gets its FIN_ACK, so `close()` resolves
/// rather than rejecting after its timeout; the daemon's own FIN ends the
/// browser's reads. The daemon here keeps a certificate file written by an
/// earlier release, whose certhash stays in its address and still dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_close_cleanly_and_an_earlier_certificate_keeps_its_address() {
    use base64::Engine as _;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let home = work.path().join("daemon");
        let data = home.join("data");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .unwrap();
        let cert = data.join("webrtc-cert.pem");
        std::fs::copy(support::fixtures().join("keys/webrtc-cert-v1.pem"), &cert).unwrap();
        std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o600)).unwrap();
        let daemon = Daemon::start_for_browsers(&home).await;
        let (_, addrs) = daemon.browser_addrs("/webrtc-direct/").await;
        let digest: Vec<u8> = [0x12, 0x20]
            .into_iter()
            .chain((0..32).map(|i| {
                u8::from_str_radix(
                    &"e176acff77843b77380739b4a250876857cf99d6ff425d75437ff87def3b0bc0"
                        [2 * i..2 * i + 2],
                    16,
                )
                .unwrap()
            }))
            .collect();
        let certhash = format!(
            "/certhash/u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert!(
            addrs.iter().all(|a| a.contains(&certhash)),
            "{addrs:?} lack {certhash}"
        );

        let page = PageServer::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        let script = format!(
            r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create()
  await client.connect({addrs})
  const conn = client.node.getConnections()[0]
  const results = []
  for (let i = 0; i < 3; i++) {{
    const s = await conn.newStream('/ipfs/ping/1.0.0')
    const payload = crypto.getRandomValues(new Uint8Array(32))
    s.send(payload)
    const it = s[Symbol.asyncIterator]()
    let got = new Uint8Array(0)
    while (got.length < 32) {{
      const next = await it.next()
      if (next.done) break
      const chunk = next.value.subarray()
      const joined = new Uint8Array(got.length + chunk.length)
      joined.set(got); joined.set(chunk, got.length)
      got = joined
    }}
    const echoed = got.length === 32 && got.every((b, j) => b === payload[j])
    const t0 = performance.now()
    let closed = 'resolved'
    try {{ await s.close() }} catch (e) {{ closed = String(e) }}
    results.push({{ echoed, closed, closeMs: Math.round(performance.now() - t0) }})
  }}
  return results
}})()"#,
            addrs = json!(addrs),
        );
        let results = browser.eval(&script).await;
        browser.kill().await;
        eprintln!("ping streams: {results}");
        let results = results.as_array().expect("an array of results");
        assert_eq!(results.len(), 3);
        for r in results {
            assert_eq!(r["echoed"], true, "{r}");
            assert_eq!(r["closed"], "resolved", "{r}");
        }
    })
    .await
    .expect("test timed out");
}
