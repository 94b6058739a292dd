//! Playlist handlers.

pub mod paths;
pub mod rewrite;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use url::Url;

use crate::GatewayState;
use crate::error::ApiError;
use crate::source::{Origin, SegmentSource};
use crate::telemetry::Counters;

#[derive(Deserialize)]
pub struct TopQuery {
    url: Option<String>,
}

/// `GET /hls?url=URL`
pub async fn top_playlist<S: SegmentSource>(
    State(state): State<GatewayState<S>>,
    Query(q): Query<TopQuery>,
) -> Result<Response, ApiError> {
    let url = q
        .url
        .ok_or_else(|| ApiError::BadRequest("missing url parameter".into()))?;
    let url = paths::parse_upstream(&url)?;
    serve_playlist(&state, &url).await
}

/// `GET /hls/pl/{token}/{file}`
pub async fn child_playlist<S: SegmentSource>(
    State(state): State<GatewayState<S>>,
    Path((token, _file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let url = paths::decode_token(&token)?;
    serve_playlist(&state, &url).await
}

async fn serve_playlist<S: SegmentSource>(
    state: &GatewayState<S>,
    url: &Url,
) -> Result<Response, ApiError> {
    let playlist = state.source.playlist(url).await?;
    let body = rewrite::rewrite_playlist(&playlist.body, &playlist.base).map_err(|e| {
        tracing::warn!(url = %url, error = %e, "playlist does not parse");
        ApiError::BadPlaylist(e.to_string())
    })?;
    if playlist.origin == Origin::Store {
        Counters::add(
            &state.telemetry.counters.bytes_from_store,
            playlist.body.len() as u64,
        );
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}
