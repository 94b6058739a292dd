//! Receipts: a receiver's signed word that a provider sent it verified bytes.

use libp2p_identity::Keypair;
use serde::{Deserialize, Serialize};

use crate::envelope::{self, Hash, ProofError, sha256};
use crate::{MAX_BLOCK_BYTES, VERSION};

const DOMAIN: &[u8] = b"swarmseed/receipt/v1\n";

/// `{v, provider, receiver, video, cid, bytes, epoch, seq, time_ms}` (DESIGN §5).
///
/// Fields are declared in DAG-CBOR key order (length, then bytes), the order
/// every encoder must produce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub v: u8,
    /// The block received, as a CID string.
    pub cid: String,
    /// Strictly increasing per receiver; a provider refuses a seq it has
    /// already passed.
    pub seq: u64,
    /// Bytes of the block the receiver verified.
    pub bytes: u64,
    /// The provider's epoch, as the provider announced it with the block.
    pub epoch: u64,
    /// The video the block belongs to; empty for content named by CID alone.
    pub video: String,
    /// The receiver's clock when it signed, in ms since the Unix epoch.
    pub time_ms: u64,
    /// Peer id of the node that sent the bytes.
    pub provider: String,
    /// Peer id of the node that received them and signed.
    pub receiver: String,
}

/// A receipt with the receiver's signature, as canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub bytes: Vec<u8>,
}

impl Receipt {
    /// Signs with the receiver's key. `receipt.receiver` must be that key's peer id.
    pub fn sign(self, key: &Keypair) -> SignedReceipt {
        let bytes = envelope::seal(key, DOMAIN, &self);
        SignedReceipt {
            receipt: self,
            bytes,
        }
    }
}

impl SignedReceipt {
    /// Decodes and checks a signed receipt: canonical encoding, version,
    /// well-formed fields, the receiver's signature and a plausible size.
    pub fn open(bytes: &[u8]) -> Result<Self, ProofError> {
        let receipt: Receipt = envelope::open(bytes, DOMAIN, |r: &Receipt| &r.receiver)?;
        if receipt.v != VERSION {
            return Err(ProofError::Version(receipt.v));
        }
        envelope::public_key(&receipt.provider)?;
        match cid::Cid::try_from(receipt.cid.as_str()) {
            Ok(c) if c.to_string() == receipt.cid => {}
            _ => return Err(ProofError::BadCid(receipt.cid.clone())),
        }
        if receipt.bytes == 0 || receipt.bytes > MAX_BLOCK_BYTES {
            return Err(ProofError::OverClaim(receipt.bytes));
        }
        Ok(Self {
            receipt,
            bytes: bytes.to_vec(),
        })
    }

    /// The receipt's name: SHA-256 of its signed bytes.
    pub fn hash(&self) -> Hash {
        sha256(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/vectors/receipt-js.json`: a receipt signed by the browser
    /// client (`bridge/js`, checked there by `npm test`). Opening it and
    /// signing the same receipt here must give the same bytes: Ed25519 is
    /// deterministic and both sides write canonical DAG-CBOR.
    #[test]
    fn receipts_signed_in_the_browser_library_open_and_match_byte_for_byte() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/receipt-js.json")).unwrap();
        let signed = hex::decode(v["signed_hex"].as_str().unwrap()).unwrap();
        let opened = SignedReceipt::open(&signed).expect("the JS receipt opens");
        let r = &v["receipt"];
        assert_eq!(opened.receipt.cid, r["cid"].as_str().unwrap());
        assert_eq!(opened.receipt.seq, r["seq"].as_u64().unwrap());
        assert_eq!(opened.receipt.bytes, r["bytes"].as_u64().unwrap());
        assert_eq!(opened.receipt.epoch, r["epoch"].as_u64().unwrap());
        assert_eq!(opened.receipt.time_ms, r["time_ms"].as_u64().unwrap());
        assert_eq!(opened.receipt.video, r["video"].as_str().unwrap());
        assert_eq!(opened.receipt.provider, r["provider"].as_str().unwrap());

        let mut seed = hex::decode(v["seed_hex"].as_str().unwrap()).unwrap();
        let key = Keypair::ed25519_from_bytes(&mut seed).unwrap();
        assert_eq!(
            key.public().to_peer_id().to_string(),
            opened.receipt.receiver
        );
        let again = opened.receipt.clone().sign(&key);
        assert_eq!(hex::encode(&again.bytes), v["signed_hex"].as_str().unwrap());

        // One flipped byte anywhere in the body breaks the signature or the
        // encoding.
        let mut bad = signed.clone();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        assert!(SignedReceipt::open(&bad).is_err());
    }
}
