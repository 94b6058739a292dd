//! WebTorrent tracker messages, both directions (bridge/src/tracker/wire).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::tracker_wire(data);
});
