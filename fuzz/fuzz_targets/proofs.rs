//! Signed receipts and epoch roots (DAG-CBOR), proof bundles (JSON) (proofs/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proofs::fuzz_api::proofs(data);
});
