//! Bitswap 1.2.0 wantlist streams (daemon/src/swarm/bitswap_pb.rs, bitswap.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::bitswap(data);
});
