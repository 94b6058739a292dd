//! dag-pb / UnixFS nodes and block verification (daemon/src/store/unixfs.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    swarmseed::fuzz_api::dag_pb(data);
});
