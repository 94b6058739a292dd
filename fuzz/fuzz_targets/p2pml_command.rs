//! p2p-media-loader peer commands and their reassembly (bridge/src/p2pml/command.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::p2pml_command(data);
});
