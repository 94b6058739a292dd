//! JSON API handlers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::source::SegmentSource;
use crate::telemetry::Stats;
use crate::{GatewayState, snapshot};

/// `GET /api/v1/health`: the router is only served once the daemon is ready.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/stats`
pub async fn stats<S: SegmentSource>(State(state): State<GatewayState<S>>) -> Json<Stats> {
    Json(snapshot(&state))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
