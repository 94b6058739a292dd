//! `GET /` and `GET /web/{file}`: the web page, from files the daemon built
//! into its binary. The gateway only serves them; it names none of them but
//! `index.html`, the page at `/`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::GatewayState;
use crate::error::ApiError;

/// The file served at `/`.
pub const INDEX: &str = "index.html";

/// Scripts, styles and workers only from the gateway itself; media and
/// workers also from `blob:`, which MSE players (hls.js) use. Fetches may go
/// to any http(s) origin because `EXT-X-KEY` URIs keep naming the origin:
/// keys never pass through the gateway.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     worker-src 'self' blob:; connect-src 'self' http: https:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One file of the page.
#[derive(Debug)]
pub struct WebAsset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    content_type_value: HeaderValue,
    etag: HeaderValue,
}

/// The page's files, looked up by exact name: a request can name nothing else.
#[derive(Debug, Default)]
pub struct WebAssets {
    files: Vec<WebAsset>,
}

impl WebAssets {
    /// `(name, content type, bytes)` for each file; `index.html` is served at `/`.
    ///
    /// Panics if a content type is not a valid header value.
    pub fn new(
        files: impl IntoIterator<Item = (&'static str, &'static str, &'static [u8])>,
    ) -> Self {
        let files = files
            .into_iter()
            .map(|(name, content_type, bytes)| WebAsset {
                name,
                content_type,
                bytes,
                content_type_value: HeaderValue::from_static(content_type),
                etag: HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(bytes)))
                    .expect("hex is a valid header value"),
            })
            .collect();
        Self { files }
    }

    pub fn get(&self, name: &str) -> Option<&WebAsset> {
        self.files.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.files.iter().map(|f| f.name)
    }
}

/// A content hash for ETags: the files are fixed for the life of the binary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `GET /`
pub async fn index<S>(State(state): State<GatewayState<S>>, headers: HeaderMap) -> Response {
    serve(&state, INDEX, &headers)
}

/// `GET /web/{file}`
pub async fn file<S>(
    State(state): State<GatewayState<S>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &name, &headers)
}

fn serve<S>(state: &GatewayState<S>, name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = state.web.as_ref().and_then(|w| w.get(name)) else {
        return ApiError::NotFound.into_response();
    };
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == "*" || t.trim() == asset.etag)
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, asset.content_type_value.clone());
    h.insert(header::ETAG, asset.etag.clone());
    // The names do not change between versions, so a browser asks again
    // each time; the ETag makes that a 304.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
