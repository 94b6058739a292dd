//! The router driven in-process with `oneshot`, over a source that holds a
//! few fixed segments: what the HTTP layer does with what a source returns.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use gateway::{
    Access, GatewayState, NodeApi, Origin, PathKey, Paths, Playlist, Segment, SegmentKey,
    SegmentSource, SourceError, StoreUsage, Telemetry, VideoTag, WebAssets, router,
};
use http_body_util::BodyExt;
use tower::ServiceExt;
use url::Url;

struct Fixed;

const BODY: &[u8] = b"0123456789abcdefghij";

impl SegmentSource for Fixed {
    async fn playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        match url.path() {
            "/ok.m3u8" => Ok(Playlist {
                body: Bytes::from_static(
                    b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n",
                ),
                base: url.clone(),
                origin: Origin::Cdn,
            }),
            "/slow.m3u8" => Err(SourceError::UpstreamTimeout { ms: 5 }),
            _ => Ok(Playlist {
                body: Bytes::from_static(b"garbage"),
                base: url.clone(),
                origin: Origin::Cdn,
            }),
        }
    }

    async fn segment(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        match key.url.path() {
            "/a.ts" => Ok(Segment {
                bytes: Bytes::from_static(BODY),
                content_type: None,
                cid: "bafkreitest".into(),
                origin: Origin::Store,
            }),
            _ => Err(SourceError::UpstreamStatus { status: 404 }),
        }
    }

    fn store_usage(&self) -> StoreUsage {
        StoreUsage {
            segments: 1,
            bytes: BODY.len() as u64,
            ..StoreUsage::default()
        }
    }
}

impl NodeApi for Fixed {}
impl gateway::ProofsApi for Fixed {}

fn app() -> (axum::Router, Arc<Telemetry>) {
    app_with(None)
}

const KEY: [u8; 32] = [9; 32];

fn access() -> Access {
    let mut access = Access::new(PathKey::new(&KEY), "127.0.0.1:8080".parse().unwrap());
    access.api_token = Some("secret-token".into());
    access
}

fn app_with(web: Option<WebAssets>) -> (axum::Router, Arc<Telemetry>) {
    app_with_access(web, access())
}

fn app_with_access(web: Option<WebAssets>, access: Access) -> (axum::Router, Arc<Telemetry>) {
    let telemetry = Arc::new(Telemetry::new());
    let state = GatewayState {
        source: Arc::new(Fixed),
        telemetry: telemetry.clone(),
        shutdown: Default::default(),
        access: Arc::new(access),
        web: web.map(Arc::new),
    };
    (router(state), telemetry)
}

const INDEX: &[u8] = b"<!doctype html><script type=module src=/web/page.js></script>";
const PAGE: &[u8] = b"console.log('hls.js')";

fn web() -> WebAssets {
    WebAssets::new([
        ("index.html", "text/html; charset=utf-8", INDEX),
        ("page.js", "text/javascript; charset=utf-8", PAGE),
    ])
}

async fn get(
    app: axum::Router,
    uri: &str,
    range: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let mut req = Request::get(uri);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn seg(path: &str) -> String {
    let key = PathKey::new(&KEY);
    let url = Url::parse(&format!("http://origin.test{path}")).unwrap();
    Paths {
        key: &key,
        video: VideoTag::of(&url),
    }
    .segment(&url, None)
}

#[tokio::test]
async fn segments_ranges_and_store_accounting() {
    let (app, telemetry) = app();
    let (status, headers, body) = get(app.clone(), &seg("/a.ts"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, BODY);
    assert_eq!(headers["content-type"], "video/mp2t");
    assert_eq!(headers["etag"], "\"bafkreitest\"");
    let (status, headers, body) = get(app.clone(), &seg("/a.ts"), Some("bytes=5-9")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers["content-range"], "bytes 5-9/20");
    assert_eq!(body, &BODY[5..10]);
    let (status, headers, _) = get(app.clone(), &seg("/a.ts"), Some("bytes=20-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], "bytes */20");
    let stats = telemetry.stats(StoreUsage::default(), 0);
    assert_eq!(
        stats.bytes_from_store, 25,
        "20 + 5 bytes served from the store"
    );
}

#[tokio::test]
async fn source_errors_map_to_statuses_with_json_bodies() {
    let (app, _) = app();
    let (status, _, body) = get(app.clone(), &seg("/gone.ts"), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["upstream_status"], 404);
    let (status, _, body) = get(app.clone(), "/hls?url=http://origin.test/junk.m3u8", None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("does not parse"));
    let (status, _, _) = get(app.clone(), "/hls?url=http://origin.test/slow.m3u8", None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let (status, _, body) = get(app.clone(), "/hls?url=file:///etc/passwd", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("only http and https"));
    let (status, _, _) = get(app.clone(), "/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let seed = |auth: Option<&str>| {
        let mut req = Request::post("/api/v1/videos");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        app.clone().oneshot(
            req.body(Body::from(r#"{"url":"http://origin.test/m.m3u8"}"#))
                .unwrap(),
        )
    };
    assert_eq!(seed(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        seed(Some("Bearer wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The right token gets through to the node, which here does not seed.
    assert_eq!(
        seed(Some("Bearer secret-token")).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let (status, _, _) = get(app.clone(), "/api/v1/node", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = get(app.clone(), "/hls?url=http://origin.test/ok.m3u8", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body).into_owned();
    let path = text.lines().find(|l| l.starts_with("/hls/seg/")).unwrap();
    assert!(path.ends_with("/a.ts"), "{path}");
    let (status, _, body) = get(app, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, BODY);
}

#[tokio::test]
async fn the_web_page_is_served_with_its_types_and_a_content_security_policy() {
    let (app, _) = app_with(Some(web()));
    let (status, headers, body) = get(app.clone(), "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, INDEX);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }

    let (status, headers, body) = get(app.clone(), "/web/page.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, PAGE);
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].clone();
    assert!(etag.to_str().unwrap().starts_with('"'));

    // A browser that holds the file gets a 304 with no body.
    let res = app
        .clone()
        .oneshot(
            Request::get("/web/page.js")
                .header("if-none-match", etag.clone())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"], etag);
    assert!(
        res.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
}

#[tokio::test]
async fn only_the_named_web_files_are_served() {
    let (app, _) = app_with(Some(web()));
    for path in [
        "/web/..%2f..%2fCargo.toml",
        "/web/..%2F..%2Fgateway%2Fsrc%2Flib.rs",
        "/web/%2e%2e%2fCargo.toml",
        "/web/../Cargo.toml",
        "/web/nothing.js",
        "/web/",
        "/web/page.js/x",
        "/index.html",
    ] {
        let (status, headers, body) = get(app.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("not found"),
            "{path}"
        );
    }

    // A gateway with no page answers / like any unknown path.
    let (app, _) = self::app();
    for path in ["/", "/web/page.js"] {
        let (status, _, body) = get(app.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "not found");
    }
}

#[tokio::test]
async fn metrics_count_uploads_by_protocol_in_the_exposition_format() {
    let (app, telemetry) = app();
    let c = &telemetry.counters;
    c.uploaded(gateway::Upload::Blocks, 100);
    c.uploaded(gateway::Upload::Bitswap, 20);
    c.uploaded(gateway::Upload::P2pml, 3);
    gateway::Counters::add(&c.browsers_connected, 2);
    let (status, headers, body) = get(app.clone(), "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(value("swarmseed_bytes_uploaded_total"), 123.0);
    assert_eq!(
        value("swarmseed_bytes_uploaded_by_protocol_total{protocol=\"blocks\"}"),
        100.0
    );
    assert_eq!(
        value("swarmseed_bytes_uploaded_by_protocol_total{protocol=\"bitswap\"}"),
        20.0
    );
    assert_eq!(
        value("swarmseed_bytes_uploaded_by_protocol_total{protocol=\"p2pml\"}"),
        3.0
    );
    assert_eq!(value("swarmseed_browsers_connected"), 2.0);
    // Every sample line is `name[{labels}] value`, after its HELP and TYPE.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{line}");
        let base = name.split('{').next().unwrap();
        assert!(text.contains(&format!("# TYPE {base} ")), "{line}");
        assert!(text.contains(&format!("# HELP {base} ")), "{line}");
    }
    let stats = telemetry.stats(StoreUsage::default(), 0);
    assert_eq!(
        (
            stats.bytes_uploaded_blocks,
            stats.bytes_uploaded_bitswap,
            stats.bytes_uploaded_p2pml
        ),
        (100, 20, 3)
    );
}

async fn send(
    app: &axum::Router,
    req: axum::http::request::Builder,
) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn reason(body: &Bytes) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn paths_from_other_keys_or_altered_are_refused_with_a_reason() {
    let (app, _) = app();
    let other = PathKey::new(&[1; 32]);
    let url = Url::parse("http://origin.test/a.ts").unwrap();
    let forged = Paths {
        key: &other,
        video: VideoTag::of(&url),
    }
    .segment(&url, None);
    let (status, _, body) = get(app.clone(), &forged, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).contains("not issued by this gateway"));
    // The range is part of what the token names.
    let good = seg("/a.ts");
    let ranged = good.replacen("/all/", "/0-5/", 1);
    assert_eq!(
        get(app.clone(), &ranged, None).await.0,
        StatusCode::FORBIDDEN
    );
    // A segment token does not open a playlist.
    let token = good.split('/').nth(4).unwrap();
    let (status, _, _) = get(app.clone(), &format!("/hls/pl/{token}/a.m3u8"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(get(app, &good, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn segment_paths_of_another_shape_are_not_found() {
    let (app, _) = app();
    let good = seg("/a.ts");
    let (range_token, _file) = good.rsplit_once('/').unwrap();
    for path in [
        format!("{good}/extra"),
        range_token.to_owned(),
        format!("{range_token}/"),
        "/hls/seg/all".to_owned(),
    ] {
        let (status, _, body) = get(app.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reason(&body).is_empty(), "{path}");
    }
    assert_eq!(get(app, &good, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn foreign_hosts_and_cross_site_requests_are_refused() {
    let (app, _) = app_with(Some(web()));
    let ok = "/hls?url=http://origin.test/ok.m3u8";
    let (status, _, body) = send(&app, Request::get(ok).header("host", "evil.example:8080")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert!(reason(&body).contains("gateway.hostnames"));
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        assert_eq!(
            send(&app, Request::get(ok).header("host", host)).await.0,
            StatusCode::OK,
            "{host}"
        );
    }
    let cross = || {
        Request::get(ok)
            .header("host", "127.0.0.1:8080")
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
    };
    let (status, headers, _) = send(&app, cross()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("access-control-allow-origin").is_none());
    // An <img> sends Sec-Fetch-Site and no Origin; a same-site page counts too.
    let img = Request::get(seg("/a.ts")).header("sec-fetch-site", "same-site");
    assert_eq!(send(&app, img).await.0, StatusCode::FORBIDDEN);
    // The page itself, its own fetches and players that send neither header.
    assert_eq!(
        send(
            &app,
            Request::get("/").header("sec-fetch-site", "cross-site")
        )
        .await
        .0,
        StatusCode::OK
    );
    let own = Request::get("/api/v1/stats")
        .header("host", "127.0.0.1:8080")
        .header("origin", "http://127.0.0.1:8080")
        .header("sec-fetch-site", "same-origin");
    assert_eq!(send(&app, own).await.0, StatusCode::OK);
    assert_eq!(
        send(&app, Request::get("/api/v1/stats")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cors_is_for_named_origins_and_reads_only() {
    let mut a = access();
    a.cors_origins = vec!["http://127.0.0.1:9000".into()];
    let (app, _) = app_with_access(None, a);
    let from = |origin: &str, req: axum::http::request::Builder| {
        req.header("host", "127.0.0.1:8080")
            .header("origin", origin)
            .header("sec-fetch-site", "same-site")
    };
    let (status, headers, body) = send(
        &app,
        from(
            "http://127.0.0.1:9000",
            Request::get(seg("/a.ts")).header("range", "bytes=0-3"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &BODY[..4]);
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://127.0.0.1:9000"
    );
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("content-range")
    );
    let preflight = from("http://127.0.0.1:9000", Request::options(seg("/a.ts")))
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range");
    let (status, headers, _) = send(&app, preflight).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("range")
    );
    // Other origins, and anything that changes the node, get nothing.
    let (status, headers, _) = send(
        &app,
        from("http://127.0.0.1:9001", Request::get(seg("/a.ts"))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("access-control-allow-origin").is_none());
    let preflight = from("http://127.0.0.1:9000", Request::options("/api/v1/pins"))
        .header("access-control-request-method", "POST");
    let (status, headers, _) = send(&app, preflight).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("access-control-allow-origin").is_none());
    let post = from("http://127.0.0.1:9000", Request::post("/api/v1/pins"))
        .header("authorization", "Bearer secret-token");
    assert_eq!(send(&app, post).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_public_gateway_hides_local_state_and_takes_only_allowed_origins() {
    let mut a = access();
    a.public = true;
    a.upstream.require_allowed = true;
    a.upstream.allow_private = false;
    let (app, _) = app_with_access(None, a.clone());
    for path in [
        "/api/v1/pins",
        "/api/v1/videos",
        "/api/v1/events",
        "/api/v1/proofs/export",
    ] {
        assert_eq!(
            get(app.clone(), path, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let authed = Request::get("/api/v1/videos").header("authorization", "Bearer secret-token");
    assert_eq!(send(&app, authed).await.0, StatusCode::OK);
    assert_eq!(
        get(app.clone(), "/api/v1/stats", None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = get(app.clone(), "/hls?url=http://origin.test/ok.m3u8", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(reason(&body).contains("allowed_origins"));
    // Minted paths still play: the playlist that named them was allowed.
    assert_eq!(get(app, &seg("/a.ts"), None).await.0, StatusCode::OK);
    a.upstream.allowed_origins = vec![gateway::AllowedOrigin::parse("origin.test").unwrap()];
    let (app, _) = app_with_access(None, a);
    assert_eq!(
        get(app.clone(), "/hls?url=http://origin.test/ok.m3u8", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(app.clone(), "/hls?url=http://other.test/ok.m3u8", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(app, "/hls?url=http://127.0.0.1:1/ok.m3u8", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
