//! Epoch roots: a provider's signed Merkle root over one epoch's receipts.

use libp2p_identity::Keypair;
use serde::{Deserialize, Serialize};

use crate::VERSION;
use crate::envelope::{self, ProofError};

const DOMAIN: &[u8] = b"swarmseed/epoch-root/v1\n";

/// Fields in DAG-CBOR key order (length, then bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRoot {
    pub v: u8,
    /// Merkle root (RFC 9162 §2.1) over the epoch's receipt hashes in
    /// ascending order.
    #[serde(with = "serde_bytes")]
    pub root: Vec<u8>,
    /// Sum of `bytes` over the receipts.
    pub bytes: u64,
    /// Number of receipts.
    pub count: u64,
    pub epoch: u64,
    pub end_ms: u64,
    pub provider: String,
    pub start_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoot {
    pub root: EpochRoot,
    pub bytes: Vec<u8>,
}

impl EpochRoot {
    /// Signs with the provider's key. `provider` must be that key's peer id.
    pub fn sign(self, key: &Keypair) -> SignedRoot {
        let bytes = envelope::seal(key, DOMAIN, &self);
        SignedRoot { root: self, bytes }
    }
}

impl SignedRoot {
    /// Decodes and checks the provider's signature.
    pub fn open(bytes: &[u8]) -> Result<Self, ProofError> {
        let root: EpochRoot = envelope::open(bytes, DOMAIN, |r: &EpochRoot| &r.provider)?;
        if root.v != VERSION {
            return Err(ProofError::Version(root.v));
        }
        if root.root.len() != 32 {
            return Err(ProofError::Malformed);
        }
        Ok(Self {
            root,
            bytes: bytes.to_vec(),
        })
    }
}

/// One closed epoch: its signed root and the receipts in leaf order.
pub struct ClosedEpoch {
    pub root: SignedRoot,
    /// Receipt hashes, ascending: the tree's leaves.
    pub leaves: Vec<crate::Hash>,
    tree: crate::merkle::Tree,
}

/// Builds and signs the root over `receipts`.
pub fn close_epoch(
    key: &Keypair,
    epoch: u64,
    start_ms: u64,
    end_ms: u64,
    receipts: &[crate::SignedReceipt],
) -> ClosedEpoch {
    let mut leaves: Vec<crate::Hash> = receipts.iter().map(|r| r.hash()).collect();
    leaves.sort_unstable();
    leaves.dedup();
    let root = EpochRoot {
        v: VERSION,
        root: crate::merkle::root(&leaves).to_vec(),
        bytes: receipts.iter().map(|r| r.receipt.bytes).sum(),
        count: leaves.len() as u64,
        epoch,
        end_ms,
        provider: key.public().to_peer_id().to_string(),
        start_ms,
    }
    .sign(key);
    ClosedEpoch::new(root, leaves)
}

impl ClosedEpoch {
    /// `leaves` must be the receipt hashes in ascending order.
    pub fn new(root: SignedRoot, leaves: Vec<crate::Hash>) -> Self {
        let tree = crate::merkle::Tree::new(&leaves);
        Self { root, leaves, tree }
    }

    /// The inclusion proof of the receipt named `hash`, if it is a leaf.
    pub fn proof(&self, hash: &crate::Hash) -> Option<crate::export::InclusionProof> {
        let index = self.leaves.binary_search(hash).ok()?;
        let path = self.tree.proof(index);
        let root: crate::Hash = self.root.root.root.as_slice().try_into().ok()?;
        Some(crate::export::InclusionProof::new(
            self.root.root.epoch,
            index as u64,
            self.leaves.len() as u64,
            &path,
            &root,
        ))
    }
}
