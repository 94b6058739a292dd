//! libp2p WebRTC-direct stream frames (bridge/src/rtc/direct/framing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::webrtc_framing(data);
});
