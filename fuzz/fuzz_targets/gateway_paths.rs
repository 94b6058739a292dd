//! The gateway's path tokens and playlist rewrite (gateway/src/hls/): bytes
//! as a request's range and token, then as a playlist from the origin.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gateway::fuzz_api::paths(data);
});
