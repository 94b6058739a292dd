//! Segment and init-section handler.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use tracing::warn;

use crate::GatewayState;
use crate::error::ApiError;
use crate::files::{FilesBody, StoredFiles};
use crate::hls::paths::{PathKind, decode_range};
use crate::range::{RangeReply, parse};
use crate::source::{Delivery, Origin, SegmentKey, SegmentSource, Streaming};
use crate::telemetry::Counters;

/// `GET /hls/seg/{range}/{token}/{file}`, routed as `/hls/seg/{*rest}`:
/// this is the hit path, and its parts need neither percent-decoding (a
/// range, base64url, a file name read only for its extension) nor the
/// copies that extracting them one by one would make.
pub async fn segment<S: SegmentSource>(
    State(state): State<GatewayState<S>>,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let rest = request
        .uri()
        .path()
        .strip_prefix("/hls/seg/")
        .unwrap_or_default();
    let mut parts = rest.split('/');
    let (Some(range), Some(token), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::NotFound);
    };
    if file.is_empty() {
        return Err(ApiError::NotFound);
    }
    let range = decode_range(range)?;
    let (url, _video) = state.access.open_path(PathKind::Segment, token, range)?;
    let key = SegmentKey { url, range };
    let requested = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let seg = if only_if_cached(headers) {
        // RFC 9111 §5.2.1.7: what is stored, or 504; never the network.
        state
            .source
            .stored_segment(&key)
            .await
            .ok_or(ApiError::NotCached)?
    } else if requested.is_some() {
        // A part of it: cut from the whole.
        state.source.segment(&key).await?
    } else {
        match state.source.deliver(&key).await? {
            Delivery::Whole(seg) => seg,
            Delivery::Streaming(s) => return Ok(streamed(s, file)),
            Delivery::Files(f) => return from_files(&state, f, file),
        }
    };
    let length = seg.bytes.len() as u64;
    let (status, body, content_range) = match parse(requested, length) {
        RangeReply::Full => (StatusCode::OK, seg.bytes, None),
        RangeReply::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            seg.bytes.slice(start as usize..=end as usize),
            Some(format!("bytes {start}-{end}/{length}")),
        ),
        RangeReply::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { length }),
    };
    if seg.origin == Origin::Store {
        Counters::add(
            &state.telemetry.counters.bytes_from_store,
            body.len() as u64,
        );
    }
    let content_type = seg
        .content_type
        .as_deref()
        .unwrap_or_else(|| content_type_for(file));
    let mut response = (status, Body::from(body)).into_response();
    let h = response.headers_mut();
    stored_headers(h, content_type, &seg.cid);
    if let Some(cr) = content_range {
        h.insert(header::CONTENT_RANGE, value(&cr));
    }
    Ok(response)
}

/// A stored segment sent from its block files (see `files`).
fn from_files<S: SegmentSource>(
    state: &GatewayState<S>,
    f: StoredFiles,
    file: &str,
) -> Result<Response, ApiError> {
    let body = FilesBody::new(&f.spans, None).map_err(|e| {
        warn!(cid = %f.cid, error = %e, "mapping stored block files failed");
        ApiError::from(crate::SourceError::Store)
    })?;
    Counters::add(&state.telemetry.counters.bytes_from_store, f.len());
    let content_type = f
        .content_type
        .as_deref()
        .unwrap_or_else(|| content_type_for(file));
    let mut response = Body::new(body).into_response();
    stored_headers(response.headers_mut(), content_type, &f.cid);
    Ok(response)
}

fn stored_headers(h: &mut HeaderMap, content_type: &str, cid: &str) {
    h.insert(header::CONTENT_TYPE, value(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, etag(&cid));
    // A segment URL names fixed bytes; the CID in the ETag proves it.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
}

/// A miss as it arrives: no ETag yet (its CID is known at the end), and a
/// body that breaks where the upstream's does.
fn streamed(s: Streaming, file: &str) -> Response {
    let content_type = s
        .content_type
        .as_deref()
        .unwrap_or_else(|| content_type_for(file));
    let mut response = Body::from_stream(s.body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, value(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Some(n) = s.length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    response
}

pub(crate) fn only_if_cached(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("only-if-cached"))
}

/// `"<cid>"`, built in one buffer that becomes the header's own bytes.
fn etag(cid: &impl std::fmt::Display) -> HeaderValue {
    use std::fmt::Write;
    let mut quoted = String::with_capacity(64);
    let _ = write!(quoted, "\"{cid}\"");
    HeaderValue::from_maybe_shared(bytes::Bytes::from(quoted))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// For origins that send no Content-Type.
fn content_type_for(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
    let is = |names: &[&str]| names.iter().any(|n| ext.eq_ignore_ascii_case(n));
    if is(&["ts"]) {
        "video/mp2t"
    } else if is(&["mp4", "m4s", "m4v", "cmfv"]) {
        "video/mp4"
    } else if is(&["m4a", "cmfa"]) {
        "audio/mp4"
    } else if is(&["aac"]) {
        "audio/aac"
    } else if is(&["mp3"]) {
        "audio/mpeg"
    } else if is(&["vtt", "webvtt"]) {
        "text/vtt"
    } else {
        "application/octet-stream"
    }
}
