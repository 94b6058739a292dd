//! The JSON forms of receipts, roots and proofs: what `GET /api/v1/proofs/…`
//! returns and what `swarmseed proofs verify` reads. Each carries its signed
//! bytes (`signed`, base64) beside the decoded fields for people to read;
//! checks trust the signed bytes alone and require the fields to match.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::envelope::{Hash, hash_hex};
use crate::{SignedReceipt, SignedRoot};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptJson {
    /// Hex SHA-256 of the signed bytes.
    pub hash: String,
    pub provider: String,
    pub receiver: String,
    pub video: String,
    pub cid: String,
    pub bytes: u64,
    pub epoch: u64,
    pub seq: u64,
    pub time_ms: u64,
    /// Base64 of the signed DAG-CBOR envelope.
    pub signed: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochJson {
    pub epoch: u64,
    pub provider: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub count: u64,
    pub bytes: u64,
    /// Hex Merkle root.
    pub root: String,
    /// Base64 of the signed DAG-CBOR envelope.
    pub signed: String,
}

/// An inclusion proof: `path` leads from the receipt's leaf at `index` to `root`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub epoch: u64,
    pub index: u64,
    /// Leaves in the tree: the epoch's receipt count.
    pub size: u64,
    /// Hex sibling hashes, bottom up.
    pub path: Vec<String>,
    pub root: String,
}

/// `GET /api/v1/proofs/receipts/{hash}`, and one receipt in a bundle. The
/// proof is absent while the receipt's epoch is still open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptWithProof {
    pub receipt: ReceiptJson,
    pub proof: Option<InclusionProof>,
}

/// `GET /api/v1/proofs/epochs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochPage {
    pub provider: String,
    /// The epoch receipts are collected in now; it has no root yet.
    pub open_epoch: u64,
    pub epochs: Vec<EpochJson>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<u64>,
}

/// `GET /api/v1/proofs/receipts?epoch=N`, in hash order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPage {
    pub epoch: u64,
    pub receipts: Vec<ReceiptJson>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
}

/// Everything needed to check a provider's closed epochs offline:
/// `GET /api/v1/proofs/export`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub v: u8,
    pub provider: String,
    pub epochs: Vec<BundleEpoch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEpoch {
    pub root: EpochJson,
    pub receipts: Vec<ReceiptWithProof>,
}

impl From<&SignedReceipt> for ReceiptJson {
    fn from(s: &SignedReceipt) -> Self {
        let r = &s.receipt;
        Self {
            hash: hash_hex(&s.hash()),
            provider: r.provider.clone(),
            receiver: r.receiver.clone(),
            video: r.video.clone(),
            cid: r.cid.clone(),
            bytes: r.bytes,
            epoch: r.epoch,
            seq: r.seq,
            time_ms: r.time_ms,
            signed: STANDARD.encode(&s.bytes),
        }
    }
}

impl From<&SignedRoot> for EpochJson {
    fn from(s: &SignedRoot) -> Self {
        let r = &s.root;
        Self {
            epoch: r.epoch,
            provider: r.provider.clone(),
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            count: r.count,
            bytes: r.bytes,
            root: hex::encode(&r.root),
            signed: STANDARD.encode(&s.bytes),
        }
    }
}

impl InclusionProof {
    pub fn new(epoch: u64, index: u64, size: u64, path: &[Hash], root: &Hash) -> Self {
        Self {
            epoch,
            index,
            size,
            path: path.iter().map(hash_hex).collect(),
            root: hash_hex(root),
        }
    }
}
