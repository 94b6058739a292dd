//! PeerTube's fork of p2p-media-loader: its JSON commands, data chunks and
//! swarm ids (bridge/src/p2pml/fork/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bridge::fuzz_api::fork(data);
});
