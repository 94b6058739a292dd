//! Bad input gets a clear error, and the daemon stays up.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::{TEST_TIMEOUT, client, fixtures, hls};

const LIMIT: usize = 256 * 1024;

/// An origin holding the bad cases next to one good fixture.
fn origin(dir: &std::path::Path) {
    std::fs::write(
        dir.join("garbage.m3u8"),
        b"<html><body>this is not a playlist</body></html>\n\x00\xff",
    )
    .unwrap();
    let playlist = |seg: &str| {
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{seg}\n#EXT-X-ENDLIST\n")
    };
    std::fs::write(dir.join("missing.m3u8"), playlist("missing.ts")).unwrap();
    std::fs::write(dir.join("big.m3u8"), playlist("big.ts")).unwrap();
    std::fs::write(dir.join("big.ts"), vec![0x47u8; LIMIT + 1]).unwrap();
    std::fs::write(dir.join("stalling.m3u8"), playlist("stall/seg.ts")).unwrap();
    let mut huge = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n".to_vec();
    while huge.len() <= LIMIT {
        huge.extend_from_slice(b"#EXTINF:2,\nseg.ts\n");
    }
    std::fs::write(dir.join("huge.m3u8"), huge).unwrap();
}

async fn json_error(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "{:?}",
        response.url().as_str()
    );
    let body: serde_json::Value = response.json().await.expect("errors are JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    body
}

/// The one gateway path the origin's single-segment playlist names.
async fn only_segment(client: &reqwest::Client, daemon: &Daemon, playlist_url: &str) -> String {
    let text = client
        .get(daemon.hls(playlist_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = text
        .lines()
        .find(|l| l.starts_with("/hls/seg/"))
        .expect("segment line")
        .to_owned();
    daemon.url(&path)
}

fn raw_get(daemon: &Daemon, path: &str) -> String {
    let mut s = TcpStream::connect(daemon.addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_an_error_and_the_daemon_stays_up() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let root = work.path().join("origin");
        std::fs::create_dir_all(&root).unwrap();
        origin(&root);
        let cdn = TestCdn::start(&root).await;
        let limits = format!(
            "cdn_timeout_ms = 800\ncdn_retries = 1\nmax_segment_bytes = {LIMIT}\nmax_playlist_bytes = {LIMIT}\n"
        );
        let daemon = Daemon::start(&work.path().join("node"), &limits).await;
        let client = client();

        // A playlist that does not parse.
        let e = json_error(client.get(daemon.hls(&cdn.url("garbage.m3u8"))).send().await.unwrap(), 502).await;
        assert!(e["error"].as_str().unwrap().contains("does not parse"), "{e}");
        assert!(daemon.healthy().await);

        // A segment the CDN does not have.
        let seg = only_segment(&client, &daemon, &cdn.url("missing.m3u8")).await;
        let e = json_error(client.get(&seg).send().await.unwrap(), 502).await;
        assert_eq!(e["upstream_status"], 404, "{e}");
        assert!(daemon.healthy().await);

        // Schemes other than http and https.
        for url in ["file:///etc/passwd", "ftp://127.0.0.1/x.m3u8", "gopher://127.0.0.1/", "/etc/passwd"] {
            let e = json_error(client.get(daemon.hls(url)).send().await.unwrap(), 400).await;
            assert!(!e.to_string().contains("root:"), "{e}");
        }
        let e = json_error(client.get(daemon.url("/hls")).send().await.unwrap(), 400).await;
        assert!(e["error"].as_str().unwrap().contains("url"), "{e}");
        assert!(daemon.healthy().await);

        // Path traversal, in the gateway's own paths and raw on the wire.
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        // Paths the gateway did not mint are refused before anything is read.
        for path in [
            format!("/hls/seg/all/{}/passwd", b64("file:///etc/passwd")),
            format!("/hls/pl/{}/passwd", b64("../../../../etc/passwd")),
            "/hls/seg/all/..%2F..%2F..%2Fetc%2Fpasswd/passwd".to_owned(),
        ] {
            let e = json_error(client.get(daemon.url(&path)).send().await.unwrap(), 403).await;
            assert!(e["error"].as_str().unwrap().contains("not issued by this gateway"), "{e}");
        }
        json_error(client.get(daemon.url("/hls/seg/0-0/x/y")).send().await.unwrap(), 400).await;
        for path in ["/../../../../etc/passwd", "/hls/seg/all/../../../../etc/passwd", "/hls/pl/%2e%2e/%2e%2e/etc/passwd"] {
            let reply = raw_get(&daemon, path);
            assert!(reply.starts_with("HTTP/1.1 4"), "{path}: {reply}");
            assert!(!reply.contains("root:"), "{path}: {reply}");
        }
        assert!(daemon.healthy().await);

        // Bodies over the bound: a segment and a playlist.
        let seg = only_segment(&client, &daemon, &cdn.url("big.m3u8")).await;
        let e = json_error(client.get(&seg).send().await.unwrap(), 502).await;
        assert!(e["error"].as_str().unwrap().contains("exceeds the limit"), "{e}");
        let e = json_error(client.get(daemon.hls(&cdn.url("huge.m3u8"))).send().await.unwrap(), 502).await;
        assert!(e["error"].as_str().unwrap().contains("exceeds the limit"), "{e}");
        // And a request body over the gateway's own bound.
        let r = client.post(daemon.url("/api/v1/stats")).body(vec![b'x'; 1 << 20]).send().await;
        assert!(r.map(|r| r.status().is_client_error()).unwrap_or(true));
        assert!(daemon.healthy().await);

        // An origin that never answers.
        let seg = only_segment(&client, &daemon, &cdn.url("stalling.m3u8")).await;
        let e = json_error(client.get(&seg).send().await.unwrap(), 504).await;
        assert!(e["error"].as_str().unwrap().contains("did not answer"), "{e}");
        let e = json_error(client.get(daemon.hls(&cdn.url("stall/x.m3u8"))).send().await.unwrap(), 504).await;
        assert!(e["error"].as_str().unwrap().contains("did not answer"), "{e}");
        assert!(daemon.healthy().await);

        // None of it was stored, and good content still plays.
        assert_eq!(daemon.stats().await["segments_stored"], 0);
        let good = TestCdn::start(&fixtures()).await;
        let gateway = format!("http://{}", daemon.addr);
        let list = hls::objects(&client, &gateway, &daemon.hls(&good.url("ts/master.m3u8")), &fixtures().join("ts/master.m3u8")).await;
        hls::assert_byte_exact(&client, &gateway, &list).await;
    })
    .await
    .expect("test timed out");
}
