//! `/swarmseed/receipts/1.0.0` batches and verdicts (bridge/src/receipts_wire.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::receipts_wire(data);
});
