//! Test helpers: a real HTTP CDN on loopback and real `swarmseed` processes.
#![allow(dead_code)]

pub mod browser;
pub mod car;
pub mod cdn;
pub mod daemon;
pub mod hls;
pub mod media;
pub mod npm;
pub mod p2pml;
pub mod p2pml_raw;
pub mod peer;
pub mod peertube;
pub mod rtc_page;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

/// `tests/fixtures` in the repository.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The ffmpeg-made fixtures, each with a `master.m3u8`.
pub const FIXTURES: [&str; 5] = ["ts", "fmp4", "byterange", "audio", "subs"];

/// Every multi-process test runs under this bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(240);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// `GET url` as JSON; panics on any failure, as a test should.
pub async fn json_at(url: String) -> serde_json::Value {
    reqwest::get(&url).await.unwrap().json().await.unwrap()
}

/// A temp dir for one test; kept for inspection when `KEEP_TEST_DIRS` is set.
pub fn workdir() -> tempfile::TempDir {
    let keep = std::env::var_os("KEEP_TEST_DIRS").is_some();
    let dir = tempfile::Builder::new()
        .prefix("swarmseed-test")
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("test dir {}", dir.path().display());
    }
    dir
}
