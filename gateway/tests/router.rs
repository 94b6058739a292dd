//! The router driven in-process with `oneshot`, over a source that holds a
//! few fixed segments: what the HTTP layer does with what a source returns.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use gateway::{
    GatewayState, NodeApi, Origin, Playlist, Segment, SegmentKey, SegmentSource, SourceError,
    StoreUsage, Telemetry, WebAssets, router, segment_path,
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

fn app_with(web: Option<WebAssets>) -> (axum::Router, Arc<Telemetry>) {
    let telemetry = Arc::new(Telemetry::new());
    let state = GatewayState {
        source: Arc::new(Fixed),
        telemetry: telemetry.clone(),
        shutdown: Default::default(),
        api_token: Some("secret-token".into()),
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
    segment_path(
        &Url::parse(&format!("http://origin.test{path}")).unwrap(),
        None,
    )
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
    let (status, _, body) = get(app, "/hls?url=http://origin.test/ok.m3u8", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains(&seg("/a.ts")));
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
