//! Signed CID maps: `CidMap::from_json`, `verify`, the trust index (daemon/src/cidmap.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::cidmap(data);
});
