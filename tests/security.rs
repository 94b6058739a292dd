//! No open doors: the gateway fetches only what its own playlists named, goes
//! to no private address it may not, answers only its own names, does nothing
//! for other sites' pages but those `cors_origins` names, and on a public
//! listener keeps local state behind the token. Real daemons, a real origin,
//! Chromium on other loopback origins; the tests that need addresses that are
//! not private run in a network namespace of their own.

mod support;

use std::process::Command;
use std::time::Duration;

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway::{PathKey, Paths, VideoTag};
use serde_json::Value;
use support::browser::Chromium;
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::{TEST_TIMEOUT, client, fixtures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Sends `request` as written and reads the answer to its end.
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn refused(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

fn media_paths(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| l.starts_with("/hls/"))
        .map(str::to_owned)
        .collect()
}

async fn refused_total(daemon: &Daemon, rule: &str) -> u64 {
    daemon
        .metric(&format!(
            "swarmseed_requests_refused_total{{rule=\"{rule}\"}}"
        ))
        .await as u64
}

#[tokio::test]
async fn the_gateway_fetches_only_what_its_playlists_named() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let mut daemon = Daemon::start(&work.path().join("d"), "").await;
        let client = client();
        let playlist = client
            .get(daemon.hls(&cdn.url("ts/v0/index.m3u8")))
            .send()
            .await
            .unwrap();
        let paths = media_paths(&playlist.text().await.unwrap());
        assert!(paths.len() >= 4, "{paths:?}");

        // A path for a URL no playlist named, minted with another key, and
        // the plain encoding of earlier versions.
        let unnamed = Url::parse(&cdn.url("ts/v0/seg_003.ts")).unwrap();
        let other_key = PathKey::new(&[0; 32]);
        let forged = Paths {
            key: &other_key,
            video: VideoTag::of(&unnamed),
        }
        .segment(&unnamed, None);
        let plain = format!(
            "/hls/seg/all/{}/seg_003.ts",
            URL_SAFE_NO_PAD.encode(unnamed.as_str())
        );
        let secret = Url::parse(&cdn.url("ts/v0/not-in-any-playlist.ts")).unwrap();
        let made_up = Paths {
            key: &other_key,
            video: VideoTag::of(&secret),
        }
        .segment(&secret, None);
        for path in [&forged, &plain, &made_up] {
            let reason = refused(client.get(daemon.url(path)).send().await.unwrap(), 403).await;
            assert!(reason.contains("not issued by this gateway"), "{reason}");
        }
        // A real token with one byte changed.
        let real = &paths[0];
        let parts: Vec<&str> = real.split('/').collect();
        let mut token = URL_SAFE_NO_PAD.decode(parts[4]).unwrap();
        token[10] ^= 0x40;
        let altered = format!(
            "/hls/seg/{}/{}/{}",
            parts[3],
            URL_SAFE_NO_PAD.encode(&token),
            parts[5]
        );
        refused(client.get(daemon.url(&altered)).send().await.unwrap(), 403).await;
        assert_eq!(
            cdn.requests_for("/ts/v0/seg_003.ts"),
            0,
            "a forged path reached the origin"
        );
        assert_eq!(cdn.requests_for("/ts/v0/not-in-any-playlist.ts"), 0);
        let first = format!("/ts/v0/{}", parts[5]);
        assert_eq!(
            cdn.requests_for(&first),
            0,
            "an altered path reached the origin"
        );
        assert_eq!(refused_total(&daemon, "path").await, 4);

        // The real path plays, and still does after a restart with the
        // origin gone: tokens outlive the process, and VOD plays from the store.
        let bytes = client
            .get(daemon.url(real))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes, std::fs::read(fixtures().join(&first[1..])).unwrap());
        assert_eq!(cdn.requests_for(&first), 1);
        daemon.wait_stored(1).await;
        assert!(daemon.terminate().success());
        cdn.stop().await;
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        let again = client.get(daemon.url(real)).send().await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.bytes().await.unwrap(), bytes);

        // Secrets stay out of the log and the metrics.
        let token = std::fs::read_to_string(work.path().join("d/data/api.token")).unwrap();
        let forms = |key: &[u8]| {
            [
                key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                base64::engine::general_purpose::STANDARD.encode(key),
                URL_SAFE_NO_PAD.encode(key),
                format!("{key:?}"),
            ]
        };
        let path_key = std::fs::read(work.path().join("d/data/gateway.key")).unwrap();
        // The identity file is a protobuf ending in the Ed25519 secret, then
        // the public key (32 bytes each).
        let identity = std::fs::read(work.path().join("d/data/identity.key")).unwrap();
        let seed = &identity[identity.len() - 64..identity.len() - 32];
        let key_forms: Vec<String> = forms(&path_key)
            .into_iter()
            .chain(forms(seed))
            .chain(forms(&identity))
            .collect();
        let metrics = reqwest::get(daemon.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for text in [daemon.log(), metrics] {
            assert!(!text.contains(token.trim()), "the API token leaked");
            for form in &key_forms {
                assert!(!text.contains(form.as_str()), "a key leaked");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn private_upstreams_are_refused_where_configured() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let url = cdn.url("ts/v0/index.m3u8");
        let localhost = url.replace("127.0.0.1", "localhost");
        let strict =
            Daemon::start(&work.path().join("strict"), "allow_private_origins = false").await;
        let allowed = format!("allowed_origins = [\"127.0.0.1:{}\"]", cdn.addr.port());
        let public = Daemon::start(
            &work.path().join("public"),
            &format!("public = true\n{allowed}"),
        )
        .await;
        for daemon in [&strict, &public] {
            for u in [&url, &localhost] {
                let reason = refused(reqwest::get(daemon.hls(u)).await.unwrap(), 403).await;
                assert!(reason.contains("private"), "{reason}");
            }
        }
        assert_eq!(cdn.requests_for("/ts/v0/index.m3u8"), 0);
        // The same URL where private origins are allowed: it was the rule.
        let open = Daemon::start(
            &work.path().join("open"),
            &format!("public = true\nallow_private_origins = true\n{allowed}"),
        )
        .await;
        assert_eq!(reqwest::get(open.hls(&url)).await.unwrap().status(), 200);
        assert_eq!(cdn.requests_for("/ts/v0/index.m3u8"), 1);
        let other = format!("http://127.0.0.2:{}/ts/v0/index.m3u8", cdn.addr.port());
        let reason = refused(reqwest::get(open.hls(&other)).await.unwrap(), 403).await;
        assert!(reason.contains("allowed_origins"), "{reason}");
    })
    .await
    .unwrap();
}

/// Runs `test` on a thread in a network namespace of its own, where
/// 198.51.100.7 (an address that is not private) is on the loopback device.
fn in_network_namespace<F: Future<Output = ()>>(test: impl FnOnce() -> F + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare changes only this thread's namespaces.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            r,
            0,
            "unshare(CLONE_NEWNET) needs root: {}",
            std::io::Error::last_os_error()
        );
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "198.51.100.7/32", "dev", "lo"],
        ] {
            let status = Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2) is installed");
            assert!(status.success(), "ip {args:?}");
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move { tokio::time::timeout(TEST_TIMEOUT, test()).await.unwrap() });
    })
    .join()
    .unwrap();
}

/// An origin that answers every path with `answer(path)` and logs paths.
async fn origin(
    bind: &str,
    answer: impl Fn(&str) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (answer, seen) = (answer.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(uri.path().to_owned());
            answer(uri.path())
        }
    });
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

const PLAYLIST: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n";

#[test]
fn redirects_and_names_that_lead_inside_are_refused() {
    in_network_namespace(|| async {
        let work = support::workdir();
        let (inside, inside_log) = origin("127.0.0.1:0", |_| PLAYLIST.into_response()).await;
        let inside_port = inside.port();
        let (outside, outside_log) = origin("198.51.100.7:0", move |path| match path {
            "/to-metadata.m3u8" => redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-inside-name.m3u8" => redirect(&format!("http://inside.test:{inside_port}/x.m3u8")),
            "/to-inside-ip.m3u8" => redirect(&format!("http://127.0.0.1:{inside_port}/x.m3u8")),
            _ => PLAYLIST.into_response(),
        })
        .await;
        let hosts = "127.0.0.1 localhost\n198.51.100.7 origin.test\n127.0.0.1 inside.test\n::1 inside6.test\n";
        let allowed = "allowed_origins = [\"origin.test\", \"inside.test\", \"inside6.test\", \"127.0.0.1\", \"169.254.169.254\"]";
        let strict = Daemon::start_with_hosts(
            &work.path().join("strict"),
            &format!("allow_private_origins = false\n{allowed}"),
            hosts,
        )
        .await;
        let public = Daemon::start_with_hosts(
            &work.path().join("public"),
            &format!("public = true\n{allowed}"),
            hosts,
        )
        .await;
        let port = outside.port();
        for daemon in [&strict, &public] {
            // An allowed origin whose name resolves to an address that is not private.
            let ok = reqwest::get(daemon.hls(&format!("http://origin.test:{port}/ok.m3u8")))
                .await
                .unwrap();
            assert_eq!(ok.status(), 200);
            let reason = refused(
                reqwest::get(daemon.hls(&format!("http://origin.test:{port}/to-metadata.m3u8")))
                    .await
                    .unwrap(),
                403,
            )
            .await;
            assert!(reason.contains("169.254.169.254"), "{reason}");
            for path in ["to-inside-name", "to-inside-ip"] {
                let url = format!("http://origin.test:{port}/{path}.m3u8");
                let reason = refused(reqwest::get(daemon.hls(&url)).await.unwrap(), 403).await;
                assert!(reason.contains("private"), "{path}: {reason}");
            }
            // Names that resolve inside, and addresses written as such.
            for url in [
                format!("http://inside.test:{inside_port}/x.m3u8"),
                format!("http://inside6.test:{inside_port}/x.m3u8"),
                format!("http://127.0.0.1:{inside_port}/x.m3u8"),
                format!("http://[::ffff:127.0.0.1]:{inside_port}/x.m3u8"),
            ] {
                let reason = refused(reqwest::get(daemon.hls(&url)).await.unwrap(), 403).await;
                assert!(reason.contains("private"), "{url}: {reason}");
            }
        }
        assert!(
            inside_log.lock().unwrap().is_empty(),
            "a private address was fetched"
        );
        let outside_log = outside_log.lock().unwrap().clone();
        assert_eq!(
            outside_log
                .iter()
                .filter(|p| *p == "/to-metadata.m3u8")
                .count(),
            2,
            "{outside_log:?}"
        );
    });
}

fn redirect(to: &str) -> axum::response::Response {
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, to.to_owned())],
    )
        .into_response()
}

#[test]
fn a_public_listener_needs_saying_so_and_keeps_local_state_behind_the_token() {
    let work = support::workdir();
    let (status, text) = Daemon::refused(&work.path().join("a"), "listen = \"0.0.0.0:0\"");
    assert!(!status.success());
    assert!(
        text.contains("gateway.public") && text.contains("0.0.0.0"),
        "{text}"
    );
    // The same listen address with public = true, in a namespace of its own so
    // the unspecified address reaches no real network.
    in_network_namespace(move || async move {
        let daemon = Daemon::start(
            &work.path().join("b"),
            "listen = \"0.0.0.0:0\"\npublic = true",
        )
        .await;
        let client = client();
        for path in [
            "/api/v1/pins",
            "/api/v1/videos",
            "/api/v1/events",
            "/api/v1/proofs/export",
            "/api/v1/proofs/peers",
        ] {
            let r = client.get(daemon.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
        }
        let authed = client
            .get(daemon.url("/api/v1/pins"))
            .bearer_auth(daemon.token())
            .send()
            .await
            .unwrap();
        assert_eq!(authed.status(), 200);
        let post = client
            .post(daemon.url("/api/v1/pins"))
            .body("{\"url\":\"http://198.51.100.7/x.m3u8\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 401);
        // Health, stats and metrics stay open for monitoring.
        for path in ["/api/v1/health", "/api/v1/stats", "/metrics"] {
            assert_eq!(
                client.get(daemon.url(path)).send().await.unwrap().status(),
                200,
                "{path}"
            );
        }
        // The CLI sends the token with its reads too.
        let ls = Command::new(support::daemon::BIN)
            .args(["pin", "ls", "--config"])
            .arg(daemon.home.join("config.toml"))
            .output()
            .unwrap();
        assert!(
            ls.status.success(),
            "{}",
            String::from_utf8_lossy(&ls.stderr)
        );
        assert!(String::from_utf8_lossy(&ls.stdout).starts_with("ID\tSTATE"));
        // A public gateway with no allowed_origins takes no URL from clients,
        // but the operator, who holds the token, may still seed.
        let (origin, log) = origin("198.51.100.7:0", |_| PLAYLIST.into_response()).await;
        let video = format!("http://{origin}/v/index.m3u8");
        let reason = refused(client.get(daemon.hls(&video)).send().await.unwrap(), 403).await;
        assert!(reason.contains("allowed_origins"), "{reason}");
        assert!(log.lock().unwrap().is_empty());
        let seeded = client
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .body(format!("{{\"url\":{video:?}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(seeded.status(), 202, "{}", seeded.text().await.unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !log.lock().unwrap().iter().any(|p| p == "/v/index.m3u8") {
            assert!(
                std::time::Instant::now() < deadline,
                "the seeded video was never fetched"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[tokio::test]
async fn requests_naming_another_host_are_refused() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(&work.path().join("d"), "hostnames = [\"seed.example\"]").await;
        let path = format!("/hls?url={}", cdn.url("ts/v0/index.m3u8"));
        let request = |host: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        };
        for host in [
            "evil.example",
            &format!("evil.example:{}", daemon.addr.port()),
            "seed.example.evil.example",
        ] {
            let reply = raw(daemon.addr, &request(host)).await;
            assert!(reply.starts_with("HTTP/1.1 421"), "{host}: {reply}");
        }
        assert_eq!(cdn.requests_for("/ts/v0/index.m3u8"), 0);
        for host in [
            format!("127.0.0.1:{}", daemon.addr.port()),
            "localhost".into(),
            "seed.example:443".into(),
        ] {
            let reply = raw(daemon.addr, &request(&host)).await;
            assert!(reply.starts_with("HTTP/1.1 200"), "{host}: {reply}");
        }
        assert_eq!(refused_total(&daemon, "host").await, 3);
    })
    .await
    .unwrap();
}

/// A page on `page_addr`'s origin, served by a tiny server of the test.
async fn page_server(html: String) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(html) }))
        .route("/hls.mjs", get(support::browser::hls_js));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (
        origin,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test]
async fn other_sites_pages_cannot_make_the_daemon_fetch() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        let client = client();
        let hls = |p: &str| daemon.hls(&cdn.url(p));
        let r = client
            .get(hls("fmp4/master.m3u8"))
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        let reason = refused(r, 403).await;
        assert!(reason.contains("cors_origins"), "{reason}");
        assert_eq!(cdn.requests_for("/fmp4/master.m3u8"), 0);

        // Child paths the daemon minted, which a page could have learnt.
        let master = client.get(hls("ts/master.m3u8")).send().await.unwrap().text().await.unwrap();
        let children = media_paths(&master);
        assert_eq!(children.len(), 2, "{master}");
        let gw = format!("http://{}", daemon.addr);
        let html = format!(
            r#"<!doctype html><body><script>
const probes = [];
const img = (src) => probes.push(new Promise((done) => {{ const i = new Image(); i.onload = i.onerror = done; i.src = src; }}));
img({a:?}); img({b:?});
probes.push(fetch({c:?}, {{ mode: 'no-cors' }}).catch(() => null));
probes.push(fetch({d:?}, {{ mode: 'no-cors' }}).catch(() => null));
probes.push(fetch({e:?}, {{ mode: 'no-cors', method: 'POST', body: '{{"url":"x"}}' }}).catch(() => null));
Promise.all(probes).then(() => {{ window.probed = true }});
</script></body>"#,
            a = format!("{gw}{}", children[0]),
            b = hls("audio/master.m3u8"),
            c = format!("{gw}{}", children[1]),
            d = hls("byterange/master.m3u8"),
            e = format!("{gw}/api/v1/pins"),
        );
        let before = refused_total(&daemon, "cross_site").await;
        let (page, _server) = page_server(html).await;
        let browser = Chromium::launch_with(&format!("{page}/"), &[], "window.probed === true").await;
        browser.kill().await;
        assert_eq!(refused_total(&daemon, "cross_site").await - before, 5, "every probe reached the daemon and was refused");
        for path in ["/ts/v0/index.m3u8", "/ts/v1/index.m3u8", "/audio/master.m3u8", "/byterange/master.m3u8"] {
            assert_eq!(cdn.requests_for(path), 0, "{path} was fetched for another site's page");
        }
        assert!(daemon.get_json("/api/v1/pins").await.as_array().unwrap().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_page_on_a_named_origin_plays_through_the_gateway_and_others_cannot() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let page_html = |src: String| {
            format!(
                r#"<!doctype html><body><video id=v muted autoplay></video><script type=module>
import Hls from '/hls.mjs';
const hls = new Hls();
hls.on(Hls.Events.ERROR, (_, d) => {{ if (d.fatal) window.fatal = d.type + ':' + d.details }});
hls.loadSource({src:?});
hls.attachMedia(document.getElementById('v'));
</script></body>"#
            )
        };
        // The page's origin is known only once its server is bound, so it
        // serves the player after the daemon starts.
        let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let served = html.clone();
        let app = axum::Router::new()
            .route(
                "/",
                get(move || {
                    let h = served.lock().unwrap().clone();
                    async move { Html(h) }
                }),
            )
            .route("/hls.mjs", get(support::browser::hls_js));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let page = format!("http://{}", listener.local_addr().unwrap());
        let _server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let named = Daemon::start(
            &work.path().join("named"),
            &format!("cors_origins = [{page:?}]"),
        )
        .await;
        let unnamed = Daemon::start(&work.path().join("unnamed"), "").await;
        let state =
            "({ t: document.getElementById('v').currentTime, fatal: window.fatal || null })";
        for (daemon, plays) in [(&named, true), (&unnamed, false)] {
            *html.lock().unwrap() = page_html(daemon.hls(&cdn.url("ts/master.m3u8")));
            let ready = "(document.getElementById('v')?.currentTime ?? 0) > 2 || !!window.fatal";
            let mut browser = Chromium::launch_with(
                &format!("{page}/"),
                &["--autoplay-policy=no-user-gesture-required"],
                ready,
            )
            .await;
            let seen = browser.eval(state).await;
            browser.kill().await;
            if plays {
                assert!(
                    seen["t"].as_f64().unwrap() > 2.0 && seen["fatal"].is_null(),
                    "{seen}"
                );
                assert!(daemon.stats().await["bytes_from_cdn"].as_u64().unwrap() > 0);
            } else {
                assert!(
                    seen["fatal"].as_str().unwrap().contains("networkError"),
                    "{seen}"
                );
                assert_eq!(daemon.stats().await["bytes_from_cdn"].as_u64().unwrap(), 0);
            }
        }
    })
    .await
    .unwrap();
}
