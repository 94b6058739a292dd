//! Pins and the store seen through a daemon's API.

use std::path::Path;
use std::time::{Duration, Instant};

use super::daemon::Daemon;
use super::fixtures;
use super::hls::Object;

/// `GET /api/v1/pins`.
pub async fn pins(daemon: &Daemon) -> Vec<serde_json::Value> {
    reqwest::get(daemon.url("/api/v1/pins"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub async fn pin(daemon: &Daemon, id: &str) -> Option<serde_json::Value> {
    pins(daemon).await.into_iter().find(|p| p["id"] == id)
}

/// `POST /api/v1/pins` with the token; returns the status code.
pub async fn add_pin(daemon: &Daemon, url: &str, id: &str) -> u16 {
    reqwest::Client::new()
        .post(daemon.url("/api/v1/pins"))
        .bearer_auth(daemon.token())
        .json(&serde_json::json!({ "url": url, "id": id }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until pin `id` leaves `fetching`; returns it.
pub async fn wait_pin_settled(daemon: &Daemon, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(p) = pin(daemon, id).await
            && p["state"] != "fetching"
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "pin {id} never settled:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The object from the store alone (`Cache-Control: only-if-cached`):
/// `None` if the store does not hold it.
pub async fn stored(client: &reqwest::Client, daemon: &Daemon, o: &Object) -> Option<bytes::Bytes> {
    let r = client
        .get(daemon.url(&o.path))
        .header("cache-control", "only-if-cached")
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(r.bytes().await.unwrap()),
        504 => None,
        s => panic!("{}: HTTP {s}", o.path),
    }
}

/// The path the CDN serves an object's file under.
pub fn cdn_path(o: &Object) -> String {
    cdn_path_of(&o.file)
}

pub fn cdn_path_of(file: &Path) -> String {
    let root = fixtures().canonicalize().unwrap();
    let rel = file.canonicalize().unwrap();
    format!("/{}", rel.strip_prefix(&root).unwrap().display())
}

pub async fn stat(daemon: &Daemon, name: &str) -> u64 {
    daemon.stats().await[name].as_u64().unwrap()
}
