//! The one place errors become HTTP responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// Refused by policy: a path this gateway did not mint, an upstream it
    /// may not fetch from.
    #[error("{0}")]
    Forbidden(String),
    #[error("playlist does not parse: {0}")]
    BadPlaylist(String),
    #[error("not in the store (only-if-cached)")]
    NotCached,
    /// `/ipfs/` with `only-if-cached`: the block is not held (412, as the
    /// trustless gateway specification asks).
    #[error("block not held by this node (only-if-cached)")]
    NotHeld,
    /// None of the response types asked for is one served here.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("range not satisfiable")]
    RangeNotSatisfiable { length: u64 },
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A failure inside the node; the detail goes to the log, not the client.
    #[error("the node could not answer; see its log")]
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Source(SourceError::Refused(_)) => StatusCode::FORBIDDEN,
            ApiError::NotCached => StatusCode::GATEWAY_TIMEOUT,
            ApiError::NotHeld => StatusCode::PRECONDITION_FAILED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::BadPlaylist(_) => StatusCode::BAD_GATEWAY,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Source(SourceError::UpstreamTimeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Source(SourceError::Store) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Source(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = json!({ "error": self.to_string() });
        if let ApiError::Source(SourceError::UpstreamStatus { status }) = &self {
            body["upstream_status"] = json!(status);
        }
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RangeNotSatisfiable { length } = self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        response
    }
}
