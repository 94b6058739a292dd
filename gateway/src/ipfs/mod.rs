//! The trustless gateway, `GET /ipfs/{cid}`: raw blocks and CARs of what
//! the node holds, in the shapes the IPFS trustless gateway specification
//! gives, so that any client can check every byte against the CID it
//! asked for and need not trust this node.

mod car;
mod negotiate;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cid::Cid;

use crate::GatewayState;
use crate::error::ApiError;
use crate::proofs::ProofsApi;
use crate::range::{RangeReply, parse};
use crate::segments::only_if_cached;
use crate::source::{IpfsBlock, SegmentSource};
use crate::telemetry::Upload;
use negotiate::{Ask, EntityBytes, Scope, Want};

/// DAG-PB, whose CIDv0 form (`Qm…`) the store knows by its CIDv1.
const DAG_PB: u64 = 0x70;

/// Names the peer id of a client that will sign receipts for the raw
/// blocks it takes; the answer then names the provider and its epoch.
const RECEIVER: &str = "x-swarmseed-peer";

pub async fn ipfs<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    request: Request,
) -> Result<Response, ApiError> {
    let rest = request
        .uri()
        .path()
        .strip_prefix("/ipfs/")
        .unwrap_or_default();
    let (cid_text, path) = rest.split_once('/').unwrap_or((rest, ""));
    let cid = Cid::try_from(cid_text)
        .map_err(|e| ApiError::BadRequest(format!("invalid CID {cid_text:?}: {e}")))?;
    let headers = request.headers();
    let ask = negotiate::ask(
        request.uri().query(),
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    )?;
    if ask.want == Want::Raw && !path.is_empty() {
        return Err(ApiError::BadRequest(
            "a raw block is asked for by CID alone: /ipfs/{cid}".into(),
        ));
    }
    let may_fetch = !only_if_cached(headers);
    let block = root_block(&state, &cid, may_fetch).await?;
    if !path.is_empty() {
        // Every object this node holds is a file or a raw block: nothing
        // below it has a name to resolve.
        return Err(ApiError::NotFound);
    }
    let text = cid.to_string();
    match ask.want {
        Want::Raw => raw(&state, &cid, &text, block, &ask, headers),
        Want::Car { dups } => {
            let plan = plan(&ask, block.as_ref(), dups)?;
            let etag = car_etag(&text, &plan);
            if let Some(r) = not_modified(headers, &etag) {
                return Ok(r);
            }
            let body = car::stream(
                state.source.clone(),
                state.telemetry.clone(),
                cid,
                block,
                plan,
                may_fetch,
            );
            let mut response = Response::new(Body::from_stream(body));
            let content_type = format!(
                "application/vnd.ipld.car; version=1; order=dfs; dups={}",
                if dups { "y" } else { "n" }
            );
            let h = response.headers_mut();
            common_headers(h, &text, &etag, "car", &ask, request.uri().query());
            set(h, header::CONTENT_TYPE, &content_type);
            set(h, header::ACCEPT_RANGES, "none");
            Ok(response)
        }
    }
}

/// The requested block; `None` for an identity CID, whose bytes are the
/// CID's own.
async fn root_block<S: SegmentSource>(
    state: &GatewayState<S>,
    cid: &Cid,
    may_fetch: bool,
) -> Result<Option<IpfsBlock>, ApiError> {
    if cid.hash().code() == car::IDENTITY {
        return Ok(None);
    }
    let key = if cid.version() == cid::Version::V0 {
        Cid::new_v1(DAG_PB, *cid.hash())
    } else {
        *cid
    };
    match state.source.ipfs_block(&key, may_fetch).await? {
        Some(b) => Ok(Some(b)),
        None if may_fetch => Err(ApiError::NotFound),
        None => Err(ApiError::NotHeld),
    }
}

fn raw<S: SegmentSource + ProofsApi>(
    state: &GatewayState<S>,
    cid: &Cid,
    text: &str,
    block: Option<IpfsBlock>,
    ask: &Ask,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let data = match block {
        Some(b) => b.data,
        None => bytes::Bytes::copy_from_slice(cid.hash().digest()),
    };
    let length = data.len() as u64;
    let requested = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, body, etag, content_range) = match parse(requested, length) {
        RangeReply::Full => (StatusCode::OK, data, format!("\"{text}.raw\""), None),
        RangeReply::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            data.slice(start as usize..=end as usize),
            format!("\"{text}.raw.{start}-{end}\""),
            Some(format!("bytes {start}-{end}/{length}")),
        ),
        RangeReply::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { length }),
    };
    if let Some(r) = not_modified(headers, &etag) {
        return Ok(r);
    }
    state
        .telemetry
        .counters
        .uploaded(Upload::Http, body.len() as u64);
    // A whole block to a client that signs receipts: it owes one now.
    let owed = headers
        .get(RECEIVER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| status == StatusCode::OK)
        .and_then(|peer| state.source.http_sent(peer, text, length));
    let mut response = Response::new(Body::from(body));
    if let Some((provider, epoch)) = owed {
        set(response.headers_mut(), "x-swarmseed-provider", &provider);
        set(
            response.headers_mut(),
            "x-swarmseed-epoch",
            &epoch.to_string(),
        );
    }
    *response.status_mut() = status;
    let h = response.headers_mut();
    common_headers(h, text, &etag, "bin", ask, None);
    set(h, header::CONTENT_TYPE, "application/vnd.ipld.raw");
    set(h, header::ACCEPT_RANGES, "bytes");
    if let Some(cr) = content_range {
        set(h, header::CONTENT_RANGE, &cr);
    }
    Ok(response)
}

/// Which blocks the CAR carries. entity-bytes is resolved against the
/// file's length, which the root block gives.
fn plan(ask: &Ask, block: Option<&IpfsBlock>, dups: bool) -> Result<car::Plan, ApiError> {
    let mut plan = car::Plan {
        scope: ask.scope,
        range: None,
        dups,
    };
    let size = block.and_then(|b| match &b.file {
        Some(f) => Some(f.size()),
        None if b.links.is_empty() => Some(b.data.len() as u64),
        None => None,
    });
    if let (Some(bytes), Some(size)) = (ask.bytes, size) {
        match resolve(bytes, size) {
            Some(range) => plan.range = Some(range),
            None if bytes.from >= 0 && bytes.from as u64 >= size => {
                return Err(ApiError::BadRequest(format!(
                    "entity-bytes starts at {} but the entity has {size} bytes",
                    bytes.from
                )));
            }
            // A range that resolves to nothing: the root block alone, from
            // which a client can learn the entity's length.
            None => plan.scope = Scope::Block,
        }
    }
    Ok(plan)
}

/// `entity-bytes` as inclusive offsets into an entity of `size` bytes;
/// `None` when no byte of it is selected.
fn resolve(bytes: EntityBytes, size: u64) -> Option<(u64, u64)> {
    let at = |n: i64| {
        if n < 0 {
            size.saturating_sub(n.unsigned_abs())
        } else {
            n as u64
        }
    };
    let from = at(bytes.from);
    let to = match bytes.to {
        None => size.checked_sub(1)?,
        Some(t) if t < 0 => size.checked_sub(t.unsigned_abs())?,
        Some(t) => (t as u64).min(size.checked_sub(1)?),
    };
    (from <= to && from < size).then_some((from, to))
}

fn car_etag(text: &str, plan: &car::Plan) -> String {
    let scope = match plan.scope {
        Scope::Block => "block",
        Scope::Entity => "entity",
        Scope::All => "all",
    };
    let range = plan
        .range
        .map(|(from, to)| format!(".{from}-{to}"))
        .unwrap_or_default();
    let dups = if plan.dups { "y" } else { "n" };
    // The walk is deterministic, so the same request gets the same bytes.
    format!("\"{text}.car.{scope}{range}.dfs.{dups}\"")
}

fn common_headers(
    h: &mut HeaderMap,
    text: &str,
    etag: &str,
    extension: &str,
    ask: &Ask,
    query: Option<&str>,
) {
    set(h, header::ETAG, etag);
    set(
        h,
        header::CACHE_CONTROL,
        "public, max-age=29030400, immutable",
    );
    set(
        h,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"{text}.{extension}\""),
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::VARY, "Accept");
    set(h, "x-ipfs-path", &format!("/ipfs/{text}"));
    set(h, "x-ipfs-roots", text);
    if !ask.by_format {
        // Where the same response lives under a URL that names its type,
        // for caches that ignore Vary.
        let format = if extension == "car" { "car" } else { "raw" };
        let mut location = format!("/ipfs/{text}?format={format}");
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            location.push('&');
            location.push_str(q);
        }
        set(h, header::CONTENT_LOCATION, &location);
    }
}

fn set(h: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// 304 when `If-None-Match` names the response's ETag (weak comparison).
fn not_modified(headers: &HeaderMap, etag: &str) -> Option<Response> {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = bare(etag);
    let hit = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == ours);
    hit.then(|| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        set(r.headers_mut(), header::ETAG, etag);
        set(
            r.headers_mut(),
            header::CACHE_CONTROL,
            "public, max-age=29030400, immutable",
        );
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_bytes_resolve_against_the_length() {
        let r = |from, to| resolve(EntityBytes { from, to }, 1000);
        assert_eq!(r(0, None), Some((0, 999)));
        assert_eq!(r(-24, None), Some((976, 999)));
        assert_eq!(r(10, Some(20)), Some((10, 20)));
        assert_eq!(r(10, Some(5000)), Some((10, 999)));
        assert_eq!(r(499, Some(-100)), Some((499, 900)));
        assert_eq!(r(-5000, Some(9)), Some((0, 9)));
        assert_eq!(r(1000, None), None);
        assert_eq!(r(900, Some(-200)), None);
        assert_eq!(resolve(EntityBytes { from: 0, to: None }, 0), None);
    }
}
