//! The daemon's TOML config, parsed and validated (daemon/src/config.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::config(data);
});
