//! `/swarmseed/blocks/1.0.0` requests and responses (bridge/src/blocks_wire.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::blocks_wire(data);
});
