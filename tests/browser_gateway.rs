//! Browsers over HTTP: headless Chromium runs the client library with a
//! daemon's trustless gateway (`/ipfs/`) as its only source, on a page of
//! another origin the daemon allows. It takes every segment of two seeded
//! videos block by block, checks each block, and signs receipts the daemon
//! accepts. A gateway that sends wrong bytes is refused and never asked
//! again.

mod support;

use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use support::TEST_TIMEOUT;
use support::browser::{Chromium, PageServer};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{seed, sha256_hex, ts_and_big_origin};

/// A gateway that answers every block with bytes no CID has, to pages of
/// any origin.
async fn lying_gateway() -> String {
    let cors = |mut r: axum::response::Response| {
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("accept, x-swarmseed-peer"),
        );
        r
    };
    let app = axum::Router::new().route(
        "/ipfs/{*rest}",
        axum::routing::get(move || async move { cors(vec![0x47u8; 1000].into_response()) })
            .options(move || async move { cors(().into_response()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_takes_every_segment_from_a_trustless_gateway_and_pays_in_receipts() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = ts_and_big_origin(work.path());
        let cdn = TestCdn::start(&origin).await;
        let page = PageServer::start().await;
        let daemon = Daemon::start(
            &work.path().join("daemon"),
            &format!("cors_origins = [\"http://{}\"]", page.addr),
        )
        .await;
        let mut segments = seed(&daemon, &cdn, &origin, "ts").await;
        segments.extend(seed(&daemon, &cdn, &origin, "big").await);
        assert!(segments.iter().any(|s| s.cid.starts_with("bafybei")));
        let liar = lying_gateway().await;

        let mut browser = Chromium::launch(&page.url()).await;
        let segs: Vec<Value> = segments
            .iter()
            .map(|s| json!({ "cid": s.cid, "size": s.size, "video": s.video }))
            .collect();
        // The liar comes first: not measured yet, it is asked first, once.
        let script = format!(
            r#"(async () => {{
  const client = await swarmseed.SwarmseedClient.create({{ gateways: [{liar}, {honest}] }})
  const refused = []
  client.addEventListener('refused', e => refused.push(e.detail))
  const files = []
  for (const s of {segs}) {{
    const bytes = await client.fetchFile(s.cid, {{ size: s.size, video: s.video }})
    files.push({{ cid: s.cid, len: bytes.length, sha256: await sha256hex(bytes) }})
  }}
  await client.flushReceipts()
  return {{ peer: client.peerId, files, refused, stats: client.stats }}
}})()"#,
            liar = json!(liar),
            honest = json!(daemon.url("")),
            segs = Value::Array(segs),
        );
        let got = browser.eval(&script).await;
        browser.kill().await;
        let stats = &got["stats"];
        let files = got["files"].as_array().expect("the page's answer");
        assert_eq!(files.len(), segments.len(), "{got}");
        for (s, f) in segments.iter().zip(files) {
            let want = std::fs::read(&s.file).unwrap();
            assert_eq!(f["len"].as_u64(), Some(want.len() as u64), "{}", s.cid);
            assert_eq!(f["sha256"], sha256_hex(&want).as_str(), "{}", s.cid);
        }
        // The liar was asked once, refused, and dropped.
        assert_eq!(stats["refusedBlocks"], 1, "{stats}");
        assert_eq!(got["refused"][0]["gateway"], liar.as_str());
        assert_eq!(stats["bytesFromCdn"], 0);
        // A receipt for every block, every one accepted by the daemon.
        let blocks = stats["blocksFromP2p"].as_u64().unwrap();
        let bytes = stats["bytesFromP2p"].as_u64().unwrap();
        assert_eq!(stats["receiptsAccepted"].as_u64(), Some(blocks), "{stats}");
        assert_eq!(stats["receiptsRefused"], 0, "{stats}");
        let d = daemon.stats().await;
        assert_eq!(d["receipts_accepted"].as_u64(), Some(blocks), "{d}");
        assert_eq!(d["bytes_receipted"].as_u64(), Some(bytes), "{d}");
        assert!(d["bytes_uploaded_http"].as_u64().unwrap() >= bytes);
        let line = daemon.ledger_line(got["peer"].as_str().unwrap()).await;
        assert_eq!(line["bytes_unreceipted"], 0, "{line}");
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
