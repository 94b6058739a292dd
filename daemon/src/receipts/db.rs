//! Receipts and epoch roots in their own sled database, apart from the
//! store index: the index can be rebuilt from block files, receipts cannot.
//!
//! Trees: `receipts` (epoch ‖ hash → signed bytes, so one epoch's keys are
//! its Merkle leaves in order), `by_hash` (hash → epoch), `roots` (epoch →
//! signed root), `seqs` (receiver → last seq), `meta` (epoch state).

use std::path::Path;

use proofs::{Hash, SignedReceipt, SignedRoot};
use sled::Transactional;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("receipt database: {0}")]
    Sled(#[from] sled::Error),
    #[error("receipt database holds a damaged record: {0}")]
    Damaged(String),
}

impl From<sled::transaction::TransactionError> for DbError {
    fn from(e: sled::transaction::TransactionError) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e)
            | sled::transaction::TransactionError::Storage(e) => DbError::Sled(e),
        }
    }
}

/// The epoch receipts are collected in, and the one waiting for its root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochState {
    pub open: u64,
    pub open_since_ms: u64,
    /// (epoch, start_ms, end_ms) of an ended epoch whose late receipts are
    /// still accepted until its root is built.
    pub closing: Option<(u64, u64, u64)>,
}

pub struct ProofDb {
    db: sled::Db,
    receipts: sled::Tree,
    by_hash: sled::Tree,
    roots: sled::Tree,
    seqs: sled::Tree,
    meta: sled::Tree,
}

fn key(epoch: u64, hash: &Hash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&epoch.to_be_bytes());
    k[8..].copy_from_slice(hash);
    k
}

fn u64_at(v: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(at..at + 8)?.try_into().ok()?))
}

impl ProofDb {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(16 << 20)
            .open()?;
        Ok(Self {
            receipts: db.open_tree("receipts")?,
            by_hash: db.open_tree("by_hash")?,
            roots: db.open_tree("roots")?,
            seqs: db.open_tree("seqs")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    pub fn epoch_state(&self) -> Result<Option<EpochState>, DbError> {
        let Some(v) = self.meta.get("epochs")? else {
            return Ok(None);
        };
        let bad = || DbError::Damaged("epoch state".into());
        let open = u64_at(&v, 0).ok_or_else(bad)?;
        let open_since_ms = u64_at(&v, 8).ok_or_else(bad)?;
        let closing = match (u64_at(&v, 16), u64_at(&v, 24), u64_at(&v, 32)) {
            (Some(e), Some(s), Some(t)) => Some((e, s, t)),
            _ => None,
        };
        Ok(Some(EpochState {
            open,
            open_since_ms,
            closing,
        }))
    }

    pub fn set_epoch_state(&self, s: &EpochState) -> Result<(), DbError> {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&s.open.to_be_bytes());
        v.extend_from_slice(&s.open_since_ms.to_be_bytes());
        if let Some((e, start, end)) = s.closing {
            for n in [e, start, end] {
                v.extend_from_slice(&n.to_be_bytes());
            }
        }
        self.meta.insert("epochs", v)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn last_seq(&self, receiver: &str) -> Result<u64, DbError> {
        Ok(self
            .seqs
            .get(receiver)?
            .and_then(|v| u64_at(&v, 0))
            .unwrap_or(0))
    }

    /// Stores accepted receipts and their receivers' seqs at once, durably.
    pub fn insert(&self, accepted: &[SignedReceipt]) -> Result<(), DbError> {
        if accepted.is_empty() {
            return Ok(());
        }
        (&self.receipts, &self.by_hash, &self.seqs).transaction(|(r, h, s)| {
            for sr in accepted {
                let hash = sr.hash();
                let rc = &sr.receipt;
                r.insert(&key(rc.epoch, &hash)[..], sr.bytes.as_slice())?;
                h.insert(&hash[..], &rc.epoch.to_be_bytes()[..])?;
                let last = s
                    .get(rc.receiver.as_bytes())?
                    .and_then(|v| u64_at(&v, 0))
                    .unwrap_or(0);
                if rc.seq > last {
                    s.insert(rc.receiver.as_bytes(), &rc.seq.to_be_bytes()[..])?;
                }
            }
            Ok(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Receipts of `epoch` in hash order, after `after`, at most `limit`.
    pub fn receipts(
        &self,
        epoch: u64,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<SignedReceipt>, DbError> {
        let start = match after {
            Some(h) => {
                let mut k = key(epoch, h).to_vec();
                k.push(0);
                k
            }
            None => epoch.to_be_bytes().to_vec(),
        };
        let end = key(epoch, &[0xff; 32]);
        let mut out = Vec::new();
        for kv in self.receipts.range(start..=end.to_vec()).take(limit) {
            let (_, v) = kv?;
            out.push(SignedReceipt::open(&v).map_err(|e| DbError::Damaged(e.to_string()))?);
        }
        Ok(out)
    }

    /// The Merkle leaves of `epoch`: its receipt hashes, ascending.
    pub fn leaves(&self, epoch: u64) -> Result<Vec<Hash>, DbError> {
        let mut out = Vec::new();
        for k in self.receipts.scan_prefix(epoch.to_be_bytes()).keys() {
            let k = k?;
            let h: Hash = k[8..]
                .try_into()
                .map_err(|_| DbError::Damaged("receipt key".into()))?;
            out.push(h);
        }
        Ok(out)
    }

    pub fn receipt(&self, hash: &Hash) -> Result<Option<SignedReceipt>, DbError> {
        let Some(epoch) = self.by_hash.get(hash)?.and_then(|v| u64_at(&v, 0)) else {
            return Ok(None);
        };
        match self.receipts.get(key(epoch, hash))? {
            Some(v) => Ok(Some(
                SignedReceipt::open(&v).map_err(|e| DbError::Damaged(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn put_root(&self, root: &SignedRoot) -> Result<(), DbError> {
        self.roots
            .insert(root.root.epoch.to_be_bytes(), root.bytes.as_slice())?;
        self.db.flush()?;
        Ok(())
    }

    pub fn root(&self, epoch: u64) -> Result<Option<SignedRoot>, DbError> {
        match self.roots.get(epoch.to_be_bytes())? {
            Some(v) => Ok(Some(
                SignedRoot::open(&v).map_err(|e| DbError::Damaged(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// Roots of epochs after `after`, ascending, at most `limit`.
    pub fn roots(&self, after: Option<u64>, limit: usize) -> Result<Vec<SignedRoot>, DbError> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for kv in self.roots.range(start.to_be_bytes()..).take(limit) {
            let (_, v) = kv?;
            out.push(SignedRoot::open(&v).map_err(|e| DbError::Damaged(e.to_string()))?);
        }
        Ok(out)
    }

    pub fn flush(&self) -> Result<(), DbError> {
        self.db.flush()?;
        Ok(())
    }
}
