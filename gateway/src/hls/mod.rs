//! Playlist handlers.

pub mod paths;
pub mod rewrite;
mod syntax;

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
    state.access.check_upstream(&url, false)?;
    let video = paths::VideoTag::of(&url);
    serve_playlist(&state, &url, video).await
}

/// `GET /hls/pl/{token}/{file}`
pub async fn child_playlist<S: SegmentSource>(
    State(state): State<GatewayState<S>>,
    Path((token, _file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (url, video) = state
        .access
        .open_path(paths::PathKind::Playlist, &token, None)?;
    serve_playlist(&state, &url, video).await
}

async fn serve_playlist<S: SegmentSource>(
    state: &GatewayState<S>,
    url: &Url,
    video: paths::VideoTag,
) -> Result<Response, ApiError> {
    let playlist = state.source.playlist(url).await?;
    let paths = paths::Paths {
        key: &state.access.paths,
        video,
    };
    let body = rewrite::rewrite_playlist(&playlist.body, &playlist.base, paths).map_err(|e| {
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
