//! PeerTube's REST and ActivityPub answers, page URLs and versions
//! (daemon/src/peertube/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::peertube(data);
});
