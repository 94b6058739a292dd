//! Who may use the gateway: its own names only (no DNS rebinding), no
//! cross-site requests but from `gateway.cors_origins`, and on a public
//! gateway a token for what reveals local state.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::hls::paths::PathKey;
use crate::upstream::UpstreamPolicy;

/// The gateway's access settings, shared by every request.
#[derive(Clone, Debug)]
pub struct Access {
    /// Mints and checks the gateway's own paths.
    pub paths: PathKey,
    /// Where upstream URLs may go.
    pub upstream: UpstreamPolicy,
    /// The address the gateway listens on.
    pub listen: SocketAddr,
    /// Host names accepted besides `localhost`, `127.0.0.1`, `[::1]` and
    /// the listen address (lower case, no port).
    pub hostnames: Vec<String>,
    /// Web origins (`https://player.example`) that may use the HLS and
    /// read-only API paths from a page.
    pub cors_origins: Vec<String>,
    /// A public gateway: what reveals local state needs the API token.
    pub public: bool,
    /// The bearer token; none refuses every request that needs it.
    pub api_token: Option<Arc<str>>,
    /// Requests refused, by rule, for `/metrics`.
    pub refused: Arc<Refused>,
}

/// Counts of refused requests (`swarmseed_requests_refused_total`).
#[derive(Debug, Default)]
pub struct Refused {
    /// A `Host` that is not the gateway's (DNS rebinding).
    pub host: AtomicU64,
    /// Cross-site, from an origin not in `cors_origins`.
    pub cross_site: AtomicU64,
    /// A gateway path this gateway did not mint.
    pub path: AtomicU64,
    /// An upstream URL the policy does not allow.
    pub upstream: AtomicU64,
}

impl Refused {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Access {
    /// A loopback gateway's defaults: no CORS, no extra names.
    pub fn new(paths: PathKey, listen: SocketAddr) -> Self {
        Self {
            paths,
            upstream: UpstreamPolicy {
                allow_private: true,
                ..UpstreamPolicy::default()
            },
            listen,
            hostnames: Vec::new(),
            cors_origins: Vec::new(),
            public: false,
            api_token: None,
            refused: Arc::default(),
        }
    }

    /// Opens a gateway path token, counting forgeries.
    pub fn open_path(
        &self,
        kind: crate::hls::paths::PathKind,
        token: &str,
        range: Option<crate::source::ByteRange>,
    ) -> Result<(url::Url, crate::hls::paths::VideoTag), ApiError> {
        self.paths
            .open(kind, token, range)
            .inspect_err(|_| Refused::count(&self.refused.path))
    }

    /// Checks an upstream URL a client gave, counting refusals. `with_token`:
    /// the API, whose caller holds the token, may name any upstream the
    /// policy allows even on a public gateway with no `allowed_origins`.
    pub fn check_upstream(&self, url: &url::Url, with_token: bool) -> Result<(), ApiError> {
        let checked = match with_token {
            true => self.upstream.check_url(url),
            false => self.upstream.check_client_url(url),
        };
        checked.map_err(|r| {
            Refused::count(&self.refused.upstream);
            ApiError::Forbidden(r.to_string())
        })
    }

    /// A `Host` header value (port and all) names this gateway. An address
    /// written as such cannot be a rebound name; only names are checked.
    fn own_host(&self, host: &str) -> bool {
        let name = strip_port(host);
        if name.eq_ignore_ascii_case("localhost")
            || self.hostnames.iter().any(|h| h.eq_ignore_ascii_case(name))
        {
            return true;
        }
        match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => {
                ip.is_loopback() || ip == self.listen.ip() || self.listen.ip().is_unspecified()
            }
            Err(_) => false,
        }
    }

    /// The bearer token matches, compared in constant time.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        use subtle::ConstantTimeEq;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match (&self.api_token, given) {
            (Some(token), Some(given)) => bool::from(token.as_bytes().ct_eq(given.as_bytes())),
            _ => false,
        }
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// What a path is, for the cross-site and token rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Area {
    /// The web page and its files: loading them does nothing.
    Page,
    /// The WebTorrent tracker: open to pages of any origin by design.
    Tracker,
    /// Playlists, segments and read-only APIs.
    Read { secret: bool },
    /// The trustless gateway, `/ipfs/`, and receipts for its blocks: its
    /// bytes are checked by whoever reads them, and receipts by their
    /// signatures, so a public gateway takes them from pages of any origin.
    Ipfs,
    /// Requests that change the node.
    Mutate,
}

fn area(method: &Method, path: &str) -> Area {
    if path == "/" || path.starts_with("/web/") {
        return Area::Page;
    }
    if path == "/announce" {
        return Area::Tracker;
    }
    // Receipts are signed by whoever sends them, for blocks of `/ipfs/`:
    // they follow its rules.
    if path == "/api/v1/proofs/receipts" && matches!(*method, Method::POST | Method::OPTIONS) {
        return Area::Ipfs;
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Area::Mutate;
    }
    if path.starts_with("/ipfs/") {
        return Area::Ipfs;
    }
    // Listings of what this node holds, does and talks to.
    let secret = [
        "/api/v1/pins",
        "/api/v1/videos",
        "/api/v1/events",
        "/api/v1/tracker",
        "/api/v1/proofs/export",
        "/api/v1/proofs/peers",
    ]
    .iter()
    .any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    Area::Read { secret }
}

/// The request's `Origin`, when it is another site's.
enum Site {
    Same,
    /// Cross-site, with the `Origin` it named, if any.
    Cross(Option<String>),
}

fn site(headers: &HeaderMap, host: Option<&str>) -> Site {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let foreign_origin = origin.as_deref().is_some_and(|o| {
        // Scheme aside: behind a TLS proxy the page is https, the request http.
        let authority = o.split_once("://").map_or(o, |(_, a)| a);
        host.is_none_or(|h| !authority.eq_ignore_ascii_case(h))
    });
    if foreign_origin || matches!(fetch_site, "cross-site" | "same-site") {
        Site::Cross(origin)
    } else {
        Site::Same
    }
}

fn host_of(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// The access rules, before any handler runs.
pub async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let host = host_of(&req);
    if let Some(h) = host
        && !access.own_host(h)
    {
        Refused::count(&access.refused.host);
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "the Host header names no host this gateway serves; add it to gateway.hostnames",
        );
    }
    let area = area(req.method(), req.uri().path());
    let cors_origin = match (area, site(req.headers(), host)) {
        (Area::Page | Area::Tracker, _) | (_, Site::Same) => None,
        (Area::Read { .. }, Site::Cross(Some(o))) if access.cors_origins.contains(&o) => Some(o),
        (Area::Ipfs, Site::Cross(Some(o))) if access.public || access.cors_origins.contains(&o) => {
            Some(o)
        }
        (Area::Mutate, Site::Cross(_)) => {
            Refused::count(&access.refused.cross_site);
            return refuse(
                StatusCode::FORBIDDEN,
                "cross-site requests may not change this node",
            );
        }
        (Area::Read { .. } | Area::Ipfs, Site::Cross(_)) => {
            Refused::count(&access.refused.cross_site);
            return refuse(
                StatusCode::FORBIDDEN,
                "cross-site request refused; the page's origin is not in gateway.cors_origins",
            );
        }
    };
    if req.method() == Method::OPTIONS {
        return preflight(&req, cors_origin, area);
    }
    if let Area::Read { secret: true } = area
        && access.public
        && !access.authorized(req.headers())
    {
        return ApiError::Unauthorized.into_response();
    }
    let mut response = next.run(req).await;
    if let Some(origin) = cors_origin {
        cors_headers(response.headers_mut(), &origin);
    }
    response
}

/// Only reads are ever allowed from another origin, and receipts posted
/// for blocks of `/ipfs/`.
fn preflight(req: &Request, origin: Option<String>, area: Area) -> Response {
    let method = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    let receipts = area == Area::Ipfs && req.uri().path() == "/api/v1/proofs/receipts";
    let allowed = match method {
        Some("GET" | "HEAD") => true,
        Some("POST") => receipts,
        _ => false,
    };
    let Some(origin) = origin.filter(|_| allowed) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "no cross-origin requests of that kind",
        );
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    cors_headers(h, &origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(if receipts { "POST" } else { "GET, HEAD" }),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(if receipts {
            "content-type"
        } else {
            "range, cache-control, if-none-match, x-swarmseed-peer"
        }),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

fn cors_headers(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "content-range, content-length, accept-ranges, etag, x-ipfs-path, x-ipfs-roots, \
             x-swarmseed-provider, x-swarmseed-epoch",
        ),
    );
}

fn refuse(status: StatusCode, reason: &'static str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": reason }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let mut a = Access::new(PathKey::new(&[1; 32]), "127.0.0.1:8080".parse().unwrap());
        a.hostnames = vec!["seed.example".into()];
        a
    }

    #[test]
    fn own_names() {
        let a = access();
        for h in [
            "localhost:8080",
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "seed.example",
            "SEED.example:443",
            "127.0.0.2:1",
        ] {
            assert!(a.own_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "seed.example.evil",
            "10.0.0.1:8080",
            "localhost.evil",
        ] {
            assert!(!a.own_host(h), "{h}");
        }
    }

    #[test]
    fn areas() {
        assert_eq!(area(&Method::GET, "/"), Area::Page);
        assert_eq!(area(&Method::GET, "/announce"), Area::Tracker);
        assert_eq!(area(&Method::POST, "/api/v1/pins"), Area::Mutate);
        assert_eq!(
            area(&Method::GET, "/api/v1/pins"),
            Area::Read { secret: true }
        );
        assert_eq!(
            area(&Method::GET, "/api/v1/proofs/export"),
            Area::Read { secret: true }
        );
        assert_eq!(
            area(&Method::GET, "/api/v1/pinsx"),
            Area::Read { secret: false }
        );
        assert_eq!(area(&Method::GET, "/hls"), Area::Read { secret: false });
        assert_eq!(area(&Method::GET, "/ipfs/bafkqaaa"), Area::Ipfs);
        assert_eq!(area(&Method::POST, "/ipfs/bafkqaaa"), Area::Mutate);
        assert_eq!(area(&Method::POST, "/api/v1/proofs/receipts"), Area::Ipfs);
        assert_eq!(
            area(&Method::OPTIONS, "/api/v1/proofs/receipts"),
            Area::Ipfs
        );
        assert_eq!(area(&Method::POST, "/api/v1/pins"), Area::Mutate);
    }
}
