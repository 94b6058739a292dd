//! `GET/POST /api/v1/pins`, `DELETE /api/v1/pins/{id}`: pinned videos,
//! which the store never evicts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::GatewayState;
use crate::error::ApiError;
use crate::node::{NodeApi, authorize, authorized_video};
use crate::source::SegmentSource;

/// One pin in `GET /api/v1/pins`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PinStatus {
    pub id: String,
    pub url: String,
    /// Objects (segments, init sections) stored under the pin.
    pub objects: u64,
    pub bytes: u64,
    /// The pin's seed job: `fetching`, `complete` or `failed` (with `reason`).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub async fn list<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
) -> Json<Vec<PinStatus>> {
    Json(state.source.pins().await)
}

pub async fn add<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (url, options) = authorized_video(&state, &headers, &body)?;
    let pin = state
        .source
        .pin(url, options)
        .await
        .map_err(ApiError::BadRequest)?;
    Ok((StatusCode::ACCEPTED, Json(pin)).into_response())
}

pub async fn remove<S: SegmentSource + NodeApi>(
    State(state): State<GatewayState<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    match state.source.unpin(&id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::NotFound),
        Err(e) => Err(ApiError::BadRequest(e)),
    }
}
