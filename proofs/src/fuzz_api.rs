//! Entry points for fuzzing and regression tests: the body of the `proofs`
//! fuzz target in `fuzz/fuzz_targets/`, which `tests/fuzz_regressions.rs`
//! also runs over the committed corpus and crash inputs, so both call the
//! same code. It exists for fuzzing and regression tests only; nothing else
//! calls it.

use crate::export::{Bundle, EpochJson, ReceiptJson, ReceiptWithProof};
use crate::verify::{open_receipt, verify_bundle};
use crate::{SignedReceipt, SignedRoot};

/// Bytes as a peer or a proofs API could hand them over: opened as a signed
/// receipt (what `/swarmseed/receipts/1.0.0` carries) and as a signed epoch
/// root (DAG-CBOR), and parsed as JSON the way `swarmseed proofs verify`
/// reads it: a bundle, checked with `verify_bundle`, or one receipt with
/// its proof. What opens must open again from its own JSON form. True if
/// anything opened or a bundle verified.
pub fn proofs(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(signed) = SignedReceipt::open(data) {
        assert_eq!(signed.bytes, data);
        let (again, hash) =
            open_receipt(&ReceiptJson::from(&signed)).expect("an opened receipt opens from JSON");
        assert_eq!(again, signed);
        assert_eq!(hash, signed.hash());
        accepted = true;
    }
    if let Ok(root) = SignedRoot::open(data) {
        assert_eq!(root.bytes, data);
        let json = EpochJson::from(&root);
        let text = serde_json::to_vec(&json).expect("epoch JSON encodes");
        let back: EpochJson = serde_json::from_slice(&text).expect("epoch JSON decodes");
        assert_eq!(back, json);
        accepted = true;
    }
    if let Ok(bundle) = serde_json::from_slice::<Bundle>(data)
        && let Ok(summary) = verify_bundle(&bundle)
    {
        assert_eq!(summary.provider, bundle.provider);
        assert_eq!(summary.epochs, bundle.epochs.len() as u64);
        let receipts: usize = bundle.epochs.iter().map(|e| e.receipts.len()).sum();
        assert_eq!(summary.receipts, receipts as u64);
        accepted = true;
    }
    if let Ok(r) = serde_json::from_slice::<ReceiptWithProof>(data)
        && open_receipt(&r.receipt).is_ok()
    {
        accepted = true;
    }
    accepted
}
