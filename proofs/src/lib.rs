//! Contribution proofs (DESIGN §5).
//!
//! A receiver that has verified blocks from a provider signs a [`Receipt`]
//! with its libp2p identity key. The provider keeps the receipts of each
//! epoch, closes the epoch with a Merkle root it signs ([`EpochRoot`]), and
//! hands out inclusion proofs. Anyone can check all of it offline with the
//! public keys inside the peer ids ([`verify`]).
//!
//! Everything signed is DAG-CBOR, whose encoding is canonical: decoders
//! re-encode and refuse bytes that differ, so one value has one signature
//! and one hash.

mod envelope;
pub mod export;
#[doc(hidden)]
pub mod fuzz_api;
pub mod merkle;
mod receipt;
mod root;
pub mod verify;

pub use envelope::{Hash, ProofError, hash_hex, parse_hash};
pub use receipt::{Receipt, SignedReceipt};
pub use root::{ClosedEpoch, EpochRoot, SignedRoot, close_epoch};

/// Version of the receipt and root formats.
pub const VERSION: u8 = 1;

/// The largest block a receipt may claim: the block protocol refuses bigger.
pub const MAX_BLOCK_BYTES: u64 = 4 << 20;
