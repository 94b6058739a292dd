//! The JSON the gateway serves under `/api/v1/proofs/…` (schema in the
//! `proofs::export` types and the README).

use std::sync::Arc;

use proofs::export::{
    Bundle, BundleEpoch, EpochJson, EpochPage, ReceiptJson, ReceiptPage, ReceiptWithProof,
};
use proofs::{ClosedEpoch, Hash, SignedRoot, VERSION, parse_hash};

use super::{DbError, Proofs};

impl Proofs {
    pub async fn epochs_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<EpochPage, DbError> {
        let roots = self
            .blocking(move |db| db.roots(after, limit.saturating_add(1)))
            .await?;
        let more = roots.len() > limit;
        let epochs: Vec<EpochJson> = roots.iter().take(limit).map(EpochJson::from).collect();
        Ok(EpochPage {
            provider: self.me.to_string(),
            open_epoch: self.epoch(),
            next: if more {
                epochs.last().map(|e| e.epoch)
            } else {
                None
            },
            epochs,
        })
    }

    pub async fn epoch_root(&self, epoch: u64) -> Result<Option<EpochJson>, DbError> {
        Ok(self
            .blocking(move |db| db.root(epoch))
            .await?
            .as_ref()
            .map(EpochJson::from))
    }

    pub async fn receipts_page(
        &self,
        epoch: u64,
        after: Option<Hash>,
        limit: usize,
    ) -> Result<ReceiptPage, DbError> {
        let receipts = self
            .blocking(move |db| db.receipts(epoch, after.as_ref(), limit.saturating_add(1)))
            .await?;
        let more = receipts.len() > limit;
        let receipts: Vec<ReceiptJson> =
            receipts.iter().take(limit).map(ReceiptJson::from).collect();
        Ok(ReceiptPage {
            epoch,
            next: if more {
                receipts.last().map(|r| r.hash.clone())
            } else {
                None
            },
            receipts,
        })
    }

    /// A receipt and, once its epoch is closed, its inclusion proof.
    pub async fn receipt(&self, hash: &str) -> Result<Option<ReceiptWithProof>, DbError> {
        let Ok(hash) = parse_hash(hash) else {
            return Ok(None);
        };
        let Some(sr) = self.blocking(move |db| db.receipt(&hash)).await? else {
            return Ok(None);
        };
        let epoch = sr.receipt.epoch;
        let proof = match self.closed(epoch).await? {
            Some(closed) => closed.proof(&hash),
            None => None,
        };
        Ok(Some(ReceiptWithProof {
            receipt: ReceiptJson::from(&sr),
            proof,
        }))
    }

    /// A closed epoch's tree. The last one asked for is kept, since proofs
    /// are asked for one receipt at a time.
    async fn closed(&self, epoch: u64) -> Result<Option<Arc<ClosedEpoch>>, DbError> {
        let cached = self
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| c.root.root.epoch == epoch)
            .cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(root) = self.blocking(move |db| db.root(epoch)).await? else {
            return Ok(None);
        };
        let leaves = self.blocking(move |db| db.leaves(epoch)).await?;
        let closed = Arc::new(ClosedEpoch::new(root, leaves));
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(closed.clone());
        Ok(Some(closed))
    }

    /// Closed epochs with every receipt and proof: what `proofs verify` reads.
    pub async fn export(&self, epoch: Option<u64>) -> Result<Bundle, DbError> {
        let roots: Vec<SignedRoot> = match epoch {
            Some(e) => self
                .blocking(move |db| db.root(e))
                .await?
                .into_iter()
                .collect(),
            None => self.blocking(|db| db.roots(None, usize::MAX)).await?,
        };
        let mut epochs = Vec::with_capacity(roots.len());
        for root in roots {
            let e = root.root.epoch;
            let receipts = self
                .blocking(move |db| db.receipts(e, None, usize::MAX))
                .await?;
            let closed = ClosedEpoch::new(root, receipts.iter().map(|r| r.hash()).collect());
            let receipts = receipts
                .iter()
                .map(|r| ReceiptWithProof {
                    receipt: ReceiptJson::from(r),
                    proof: closed.proof(&r.hash()),
                })
                .collect();
            epochs.push(BundleEpoch {
                root: EpochJson::from(&closed.root),
                receipts,
            });
        }
        Ok(Bundle {
            v: VERSION,
            provider: self.me.to_string(),
            epochs,
        })
    }
}

/// A verdict as `POST /api/v1/proofs/receipts` names it.
pub fn verdict_name(v: super::Verdict) -> &'static str {
    use super::Verdict::*;
    match v {
        Accepted => "accepted",
        Malformed => "malformed",
        BadSignature => "bad_signature",
        NotForUs => "not_for_us",
        Replayed => "replayed",
        OverClaim => "over_claim",
        Late => "late",
        Unavailable => "unavailable",
    }
}
