//! The web page at `GET /` from a real daemon: the HTML, its script with
//! hls.js inside, and the headers a browser needs to run it safely.

mod support;

use support::daemon::Daemon;
use support::{TEST_TIMEOUT, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_serves_the_page_and_its_hls_js_bundle() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let mut daemon = Daemon::start(work.path(), "").await;
        let client = client();

        let res = client.get(daemon.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("media-src 'self' blob:"), "{csp}");
        let html = res.text().await.unwrap();
        for id in [
            "id=\"url\"",
            "id=\"video\"",
            "id=\"peers\"",
            "id=\"p2p-bytes\"",
            "id=\"cdn-bytes\"",
            "id=\"ratio\"",
            "id=\"up\"",
            "id=\"down\"",
            "id=\"videos\"",
        ] {
            assert!(html.contains(id), "the page has {id}");
        }
        assert!(html.contains("src=\"/web/page.js\""));

        let res = client.get(daemon.url("/web/page.js")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let etag = res.headers()["etag"].clone();
        let js = res.text().await.unwrap();
        // hls.js is bundled: its error names, its "hlsjs" markers and the
        // worker the page points it at.
        assert!(js.contains("manifestLoadError"), "hls.js is in page.js");
        assert!(js.contains("hlsjs"), "hls.js is in page.js");
        assert!(js.contains("/web/hls.worker.js"));
        assert!(js.contains("swarmseedPage"));
        let res = client
            .get(daemon.url("/web/page.js"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304, "unchanged assets are not sent again");

        for path in ["/web/hls.worker.js", "/web/style.css"] {
            let res = client.get(daemon.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
        }
        let res = client
            .get(daemon.url("/web/..%2f..%2fCargo.toml"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);

        assert!(daemon.terminate().success());
    })
    .await
    .expect("test timed out");
}
