//! The offline check of a [`Bundle`]: every signature, every inclusion
//! proof and every root, with keys taken from the peer ids alone. The first
//! failure ends the check and names the item.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::envelope::{Hash, ProofError, hash_hex, parse_hash};
use crate::export::{Bundle, EpochJson, ReceiptJson, ReceiptWithProof};
use crate::{EpochRoot, SignedReceipt, SignedRoot, VERSION, merkle};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("bundle version {0} is not supported")]
    Version(u8),
    #[error("epoch {epoch} root: {problem}")]
    Root { epoch: u64, problem: String },
    #[error("epoch {epoch}, receipt {hash}: {problem}")]
    Receipt {
        epoch: u64,
        hash: String,
        problem: String,
    },
}

/// What a bundle that passes holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub provider: String,
    pub epochs: u64,
    pub receipts: u64,
    pub bytes: u64,
}

/// Checks a bundle. A receipt without a proof fails: a bundle is for closed epochs.
pub fn verify_bundle(bundle: &Bundle) -> Result<Summary, VerifyError> {
    if bundle.v != VERSION {
        return Err(VerifyError::Version(bundle.v));
    }
    let mut summary = Summary {
        provider: bundle.provider.clone(),
        ..Summary::default()
    };
    // A receiver's seq is used once, in any epoch.
    let mut seqs = HashSet::new();
    let mut epochs = HashSet::new();
    for e in &bundle.epochs {
        let epoch = e.root.epoch;
        let root_err = |problem: String| VerifyError::Root { epoch, problem };
        if !epochs.insert(epoch) {
            return Err(root_err("appears twice".into()));
        }
        let root = open_root(&e.root).map_err(root_err)?;
        if root.root.provider != bundle.provider {
            return Err(root_err(format!(
                "signed by {}, not the bundle's provider",
                root.root.provider
            )));
        }
        let mut leaves: Vec<Hash> = Vec::with_capacity(e.receipts.len());
        let mut bytes = 0u64;
        for r in &e.receipts {
            let receipt_err = |problem: String| VerifyError::Receipt {
                epoch,
                hash: r.receipt.hash.clone(),
                problem,
            };
            let (signed, hash) = open_receipt(&r.receipt).map_err(receipt_err)?;
            let rc = &signed.receipt;
            if rc.provider != bundle.provider {
                return Err(receipt_err(format!("names provider {}", rc.provider)));
            }
            if rc.epoch != epoch {
                return Err(receipt_err(format!("belongs to epoch {}", rc.epoch)));
            }
            if !seqs.insert((rc.receiver.clone(), rc.seq)) {
                return Err(receipt_err(format!(
                    "replays seq {} of receiver {}",
                    rc.seq, rc.receiver
                )));
            }
            check_proof(r, &hash, &root.root).map_err(receipt_err)?;
            leaves.push(hash);
            bytes += rc.bytes;
        }
        leaves.sort_unstable();
        if leaves.windows(2).any(|w| w[0] == w[1]) {
            return Err(root_err("lists a receipt twice".into()));
        }
        if leaves.len() as u64 != root.root.count {
            return Err(root_err(format!(
                "signs {} receipts, the bundle holds {}",
                root.root.count,
                leaves.len()
            )));
        }
        if bytes != root.root.bytes {
            return Err(root_err(format!(
                "signs {} bytes, the receipts add up to {bytes}",
                root.root.bytes
            )));
        }
        if merkle::root(&leaves).as_slice() != root.root.root.as_slice() {
            return Err(root_err(
                "the Merkle root over the receipts differs from the signed root".into(),
            ));
        }
        summary.epochs += 1;
        summary.receipts += leaves.len() as u64;
        summary.bytes += bytes;
    }
    Ok(summary)
}

fn open_root(j: &EpochJson) -> Result<SignedRoot, String> {
    let raw = STANDARD
        .decode(&j.signed)
        .map_err(|_| "signed bytes are not base64".to_owned())?;
    let root = SignedRoot::open(&raw).map_err(|e| e.to_string())?;
    if EpochJson::from(&root) != *j {
        return Err("fields differ from the signed bytes".into());
    }
    Ok(root)
}

/// Opens a receipt's signed bytes and checks its fields match them.
pub fn open_receipt(j: &ReceiptJson) -> Result<(SignedReceipt, Hash), String> {
    let raw = STANDARD
        .decode(&j.signed)
        .map_err(|_| "signed bytes are not base64".to_owned())?;
    let signed = SignedReceipt::open(&raw).map_err(|e: ProofError| e.to_string())?;
    let hash = signed.hash();
    if ReceiptJson::from(&signed) != *j {
        return Err("fields differ from the signed bytes".into());
    }
    Ok((signed, hash))
}

fn check_proof(r: &ReceiptWithProof, hash: &Hash, epoch: &EpochRoot) -> Result<(), String> {
    let Some(p) = &r.proof else {
        return Err("has no inclusion proof".into());
    };
    if p.epoch != epoch.epoch || p.size != epoch.count {
        return Err(format!(
            "proof is for epoch {} of {} receipts, not epoch {} of {}",
            p.epoch, p.size, epoch.epoch, epoch.count
        ));
    }
    let root = epoch.root.as_slice();
    if p.root != hex::encode(root) {
        return Err(format!("proof leads to root {}, not the epoch's", p.root));
    }
    let path = p
        .path
        .iter()
        .map(|h| parse_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let root: Hash = root.try_into().map_err(|_| "bad root".to_owned())?;
    if !merkle::verify(hash, p.index, p.size, &path, &root) {
        return Err(format!(
            "inclusion proof fails (leaf {} of {}, leaf hash {})",
            p.index,
            p.size,
            hash_hex(hash)
        ));
    }
    Ok(())
}
