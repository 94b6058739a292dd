//! Contribution proofs over HTTP: `/api/v1/proofs/…`. The daemon builds
//! the JSON (schema in the README); the gateway parses queries and pages.

use std::future::Future;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::GatewayState;
use crate::error::ApiError;
use crate::source::SegmentSource;

/// Default and largest page sizes.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Receipts, epoch roots and proofs. The defaults describe a node that keeps none.
pub trait ProofsApi: Send + Sync + 'static {
    /// Closed epochs after `after`, ascending.
    fn proof_epochs(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let _ = (after, limit);
        async { Err(ApiError::NotFound) }
    }
    fn proof_epoch(&self, epoch: u64) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let _ = epoch;
        async { Err(ApiError::NotFound) }
    }
    /// One epoch's receipts in hash order, after the hash `after`.
    fn proof_receipts(
        &self,
        epoch: u64,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let _ = (epoch, after, limit);
        async { Err(ApiError::NotFound) }
    }
    /// A receipt by hash, with its inclusion proof once its epoch is closed.
    fn proof_receipt(&self, hash: String) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let _ = hash;
        async { Err(ApiError::NotFound) }
    }
    /// Closed epochs (one, or all) with every receipt and proof.
    fn proof_export(
        &self,
        epoch: Option<u64>,
    ) -> impl Future<Output = Result<Value, ApiError>> + Send {
        let _ = epoch;
        async { Err(ApiError::NotFound) }
    }
    /// What each peer was sent and has signed for.
    fn proof_peers(&self) -> Value {
        Value::Array(Vec::new())
    }
    /// A block sent over HTTP (`/ipfs/`) to `receiver`, a peer id the
    /// request named, which now owes a receipt for it. The provider's peer
    /// id and open epoch, which the receipt must carry; `None` when
    /// `receiver` is no peer id.
    fn http_sent(&self, receiver: &str, cid: &str, bytes: u64) -> Option<(String, u64)> {
        let _ = (receiver, cid, bytes);
        None
    }
    /// Signed receipts for blocks taken over HTTP, each checked as one that
    /// came over the receipt protocol: a verdict for each, in order.
    fn accept_receipts(
        &self,
        receipts: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<Vec<&'static str>, ApiError>> + Send {
        let _ = receipts;
        async { Err(ApiError::NotFound) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochsQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsQuery {
    epoch: u64,
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    epoch: Option<u64>,
}

fn page(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(PAGE) {
        0 => Err(ApiError::BadRequest("limit must be at least 1".into())),
        n => Ok(n.min(MAX_PAGE)),
    }
}

fn hex_hash(s: &str) -> Result<String, ApiError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest(
            "a receipt hash is 64 hex digits".into(),
        ))
    }
}

type Q<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: Q<T>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// Receipts one POST may carry; a client sends more in several.
const MAX_RECEIPTS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBatch {
    /// Base64 of each signed DAG-CBOR receipt.
    receipts: Vec<String>,
}

/// `POST /api/v1/proofs/receipts`: receipts from a client of `/ipfs/`.
pub async fn submit<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    body: Result<Json<ReceiptBatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(batch) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if batch.receipts.is_empty() || batch.receipts.len() > MAX_RECEIPTS {
        return Err(ApiError::BadRequest(format!(
            "send between 1 and {MAX_RECEIPTS} receipts"
        )));
    }
    let receipts = batch
        .receipts
        .iter()
        .map(|r| base64::engine::general_purpose::STANDARD.decode(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::BadRequest("a receipt is not base64".into()))?;
    let verdicts = state.source.accept_receipts(receipts).await?;
    Ok(Json(serde_json::json!({ "verdicts": verdicts })))
}

pub async fn epochs<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    q: Q<EpochsQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = page(q.limit)?;
    state.source.proof_epochs(q.after, limit).await.map(Json)
}

pub async fn epoch<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    Path(n): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n: u64 = n
        .parse()
        .map_err(|_| ApiError::BadRequest("an epoch is a number".into()))?;
    state.source.proof_epoch(n).await.map(Json)
}

pub async fn receipts<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    q: Q<ReceiptsQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = page(q.limit)?;
    let after = q.after.as_deref().map(hex_hash).transpose()?;
    state
        .source
        .proof_receipts(q.epoch, after, limit)
        .await
        .map(Json)
}

pub async fn receipt<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hash = hex_hash(&hash)?;
    state.source.proof_receipt(hash).await.map(Json)
}

pub async fn export<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
    q: Q<ExportQuery>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    state.source.proof_export(q.epoch).await.map(Json)
}

pub async fn peers<S: SegmentSource + ProofsApi>(
    State(state): State<GatewayState<S>>,
) -> Json<Value> {
    Json(state.source.proof_peers())
}
