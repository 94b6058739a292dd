//! SHA-256 lists in PeerTube's `segments-sha256.json` shape
//! (daemon/src/sha256_list.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::sha256_list(data);
});
