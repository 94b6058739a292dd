//! The store policy: the quota and LRU eviction around pins, pins over the
//! API and the CLI, a real full disk, and kill -9 while seeding.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cdn::TestCdn;
use support::daemon::{BIN, Daemon};
use support::store::{add_pin, cdn_path, pin, pins, stat, stored, wait_pin_settled};
use support::{TEST_TIMEOUT, client, fixtures, hls};

const KIB: u64 = 1024;

/// Polls until `store_bytes` is at most `max`: the write that follows a
/// served segment finishes shortly after the answer.
async fn wait_under(daemon: &Daemon, max: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stat(daemon, "store_bytes").await > max {
        assert!(
            Instant::now() < deadline,
            "store stays over {max}:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the store holds `o` (its write follows the answer).
async fn wait_stored(client: &reqwest::Client, daemon: &Daemon, o: &hls::Object) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(client, daemon, o).await.is_none() {
        assert!(Instant::now() < deadline, "{} never stored", o.path);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_evicts_cache_least_recently_used_first_and_keeps_pins() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let client = client();
        let max = 600 * KIB;
        let store = "max_bytes = \"600KiB\"\nmin_free_bytes = \"0B\"";
        let mut daemon = Daemon::start_store(work.path(), store).await;

        // ts/v0 and byterange share bytes (so CIDs); audio shares none with ts.
        let pin_url = cdn.url("audio/master.m3u8");
        assert_eq!(add_pin(&daemon, &pin_url, "av").await, 202);
        let p = wait_pin_settled(&daemon, "av").await;
        assert_eq!(p["state"], "complete", "{p}");
        let gw = daemon.url("");
        let pinned = hls::objects(
            &client,
            &gw,
            &daemon.hls(&pin_url),
            &fixtures().join("audio/master.m3u8"),
        )
        .await;
        let pinned_bytes: u64 = pinned.iter().map(|o| o.expected.len() as u64).sum();
        // Every segment, and the CID map the seeder publishes.
        assert_eq!(p["objects"], pinned.len() as u64 + 1, "{p}");
        let pin_bytes = p["bytes"].as_u64().unwrap();
        assert!(pin_bytes > pinned_bytes, "{p}");

        // Unpinned cache: the ts fixture, played in order, is more than
        // the quota leaves beside the pin.
        let ts_url = cdn.url("ts/master.m3u8");
        let cache = hls::objects(
            &client,
            &gw,
            &daemon.hls(&ts_url),
            &fixtures().join("ts/master.m3u8"),
        )
        .await;
        let cache_bytes: u64 = cache.iter().map(|o| o.expected.len() as u64).sum();
        assert!(pin_bytes + cache_bytes > max + 100 * KIB);
        for o in &cache {
            hls::assert_byte_exact(&client, &gw, std::slice::from_ref(o)).await;
            wait_stored(&client, &daemon, o).await;
            wait_under(&daemon, max).await;
        }
        wait_under(&daemon, max).await;
        assert!(
            daemon.log().contains("evicted least recently used objects"),
            "{}",
            daemon.log()
        );

        // The pin is whole: every object from the store, the CDN not asked.
        let pin_requests: Vec<u64> = pinned
            .iter()
            .map(|o| cdn.requests_for(&cdn_path(o)))
            .collect();
        for o in &pinned {
            assert_eq!(
                stored(&client, &daemon, o).await.as_ref(),
                Some(&o.expected)
            );
        }
        hls::assert_byte_exact(&client, &gw, &pinned).await;
        let after: Vec<u64> = pinned
            .iter()
            .map(|o| cdn.requests_for(&cdn_path(o)))
            .collect();
        assert_eq!(pin_requests, after);
        assert!(after.iter().all(|n| *n == 1));
        let p = pin(&daemon, "av").await.unwrap();
        assert_eq!(
            (p["objects"].as_u64(), p["bytes"].as_u64()),
            (Some(pinned.len() as u64 + 1), Some(pin_bytes))
        );

        // Least recently used went first: the first played is gone, the
        // last is kept; the evicted one comes from the CDN again on demand.
        let (first, last) = (&cache[0], &cache[cache.len() - 1]);
        assert_eq!(
            stored(&client, &daemon, last).await.as_ref(),
            Some(&last.expected)
        );
        assert!(stored(&client, &daemon, first).await.is_none());
        assert_eq!(cdn.requests_for(&cdn_path(first)), 1);
        hls::assert_byte_exact(&client, &gw, std::slice::from_ref(first)).await;
        assert_eq!(cdn.requests_for(&cdn_path(first)), 2);
        wait_stored(&client, &daemon, first).await;
        wait_under(&daemon, max).await;

        // The counters match the index after eviction: a restart recounts.
        let before = (
            stat(&daemon, "segments_stored").await,
            stat(&daemon, "store_bytes").await,
        );
        assert!(daemon.terminate().success());
        let daemon = Daemon::start_store(work.path(), store).await;
        let after = (
            stat(&daemon, "segments_stored").await,
            stat(&daemon, "store_bytes").await,
        );
        assert_eq!(before, after);
        assert_eq!(
            pin(&daemon, "av").await.unwrap()["objects"],
            pinned.len() as u64 + 1
        );
        let held =
            futures::future::join_all(cache.iter().map(|o| stored(&client, &daemon, o))).await;
        let held_bytes: u64 = held.iter().flatten().map(|b| b.len() as u64).sum();
        assert!(held_bytes > 0 && held_bytes + pin_bytes <= after.1);
    })
    .await
    .expect("test timed out");
}

/// The segment paths the daemon's own map of `video` lists, once it lists
/// exactly `want` (the map follows the store within a few seconds).
async fn announced_until(daemon: &Daemon, cdn: &TestCdn, video: &str, want: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = reqwest::get(daemon.url(&format!("/api/v1/videos/{video}/cidmap")))
            .await
            .unwrap();
        let mut listed: Vec<String> = Vec::new();
        if r.status() == 200 {
            let map: serde_json::Value = r.json().await.unwrap();
            for rendition in map["renditions"].as_array().unwrap() {
                for e in rendition["segments"].as_array().unwrap() {
                    let key = e["key"].as_str().unwrap();
                    listed.push(key.strip_prefix(&cdn.url("")).unwrap().to_owned());
                }
            }
        }
        listed.sort();
        if listed == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "announced {listed:?}, holds {want:?}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_stops_announcing_what_the_quota_evicted() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let client = client();
        let max = 400 * KIB;
        let store = format!("max_bytes = \"{}KiB\"\nmin_free_bytes = \"0B\"", max / KIB);
        let daemon = Daemon::start_store(work.path(), &store).await;
        let ts_url = cdn.url("ts/master.m3u8");
        let video = swarmseed::video::video_id(&ts_url.parse().unwrap());
        let gw = daemon.url("");
        let objects = hls::objects(
            &client,
            &gw,
            &daemon.hls(&ts_url),
            &fixtures().join("ts/master.m3u8"),
        )
        .await;
        let total: u64 = objects.iter().map(|o| o.expected.len() as u64).sum();
        assert!(total > max + 100 * KIB, "the video outgrows the quota");
        for o in &objects {
            hls::assert_byte_exact(&client, &gw, std::slice::from_ref(o)).await;
            wait_stored(&client, &daemon, o).await;
            wait_under(&daemon, max).await;
        }
        // What the store still holds is exactly what the map names.
        let mut held = Vec::new();
        for o in &objects {
            if stored(&client, &daemon, o).await.is_some() {
                held.push(cdn_path(o).trim_start_matches('/').to_owned());
            }
        }
        held.sort();
        assert!(!held.is_empty() && held.len() < objects.len(), "{held:?}");
        announced_until(&daemon, &cdn, &video, &held).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_over_the_quota_are_kept_until_unpinned() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let client = client();
        let max = 200 * KIB;
        let daemon = Daemon::start_store(
            work.path(),
            "max_bytes = \"200KiB\"\nmin_free_bytes = \"0B\"",
        )
        .await;
        let url = cdn.url("byterange/master.m3u8");
        assert_eq!(add_pin(&daemon, &url, "big").await, 202);
        let p = wait_pin_settled(&daemon, "big").await;
        assert_eq!(p["state"], "complete", "{p}");
        let objects = hls::objects(
            &client,
            &daemon.url(""),
            &daemon.hls(&url),
            &fixtures().join("byterange/master.m3u8"),
        )
        .await;
        let total: u64 = objects.iter().map(|o| o.expected.len() as u64).sum();
        assert!(total > max);
        assert!(p["bytes"].as_u64().unwrap() > total, "segments and the map");
        assert_eq!(p["objects"], objects.len() as u64 + 1);
        assert_eq!(
            stat(&daemon, "store_bytes").await,
            p["bytes"],
            "pins are kept"
        );
        assert!(
            daemon
                .log()
                .contains("pinned content alone exceeds store.max_bytes"),
            "{}",
            daemon.log()
        );

        let r = reqwest::Client::new()
            .delete(daemon.url("/api/v1/pins/big"))
            .bearer_auth(daemon.token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(pins(&daemon).await.is_empty());
        // Unpinning evicts at once.
        assert!(stat(&daemon, "store_bytes").await <= max);
        let still: Vec<_> =
            futures::future::join_all(objects.iter().map(|o| stored(&client, &daemon, o))).await;
        let gone: Vec<hls::Object> = objects
            .into_iter()
            .zip(&still)
            .filter(|(_, s)| s.is_none())
            .map(|(o, _)| o)
            .collect();
        assert!(!gone.is_empty());
        let requests = cdn.requests_for("/byterange/stream.ts");
        hls::assert_byte_exact(&client, &daemon.url(""), &gone).await;
        assert_eq!(
            cdn.requests_for("/byterange/stream.ts"),
            requests + gone.len() as u64,
            "exactly the evicted objects are fetched again"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_from_the_cli_and_the_api_need_the_token_and_survive_restarts() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let mut daemon = Daemon::start_store(work.path(), "").await;
        let config = work.path().join("config.toml");
        let url = cdn.url("audio/master.m3u8");
        let http = reqwest::Client::new();

        for token in [None, Some("wrong")] {
            let mut post = http
                .post(daemon.url("/api/v1/pins"))
                .json(&serde_json::json!({ "url": url }));
            let mut delete = http.delete(daemon.url("/api/v1/pins/x"));
            if let Some(t) = token {
                post = post.bearer_auth(t);
                delete = delete.bearer_auth(t);
            }
            assert_eq!(post.send().await.unwrap().status(), 401);
            assert_eq!(delete.send().await.unwrap().status(), 401);
        }
        assert!(pins(&daemon).await.is_empty());

        let (ok, out) = tokio::task::spawn_blocking({
            let (config, url) = (config.clone(), url.clone());
            move || cli(&config, &["pin", "add", &url, "--id", "talk"])
        })
        .await
        .unwrap();
        assert!(ok, "{out}");
        assert!(out.contains("pinned talk"), "{out}");
        let p = wait_pin_settled(&daemon, "talk").await;
        assert_eq!(p["state"], "complete", "{p}");
        assert_eq!(p["url"], url);
        assert_eq!(p["objects"], 13, "12 segments and the CID map: {p}");
        let bytes = p["bytes"].as_u64().unwrap();
        assert_eq!(bytes, stat(&daemon, "store_bytes").await);

        let (ok, out) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || cli(&config, &["pin", "ls"])
        })
        .await
        .unwrap();
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("talk\tcomplete\t13\t{bytes}\t{url}")),
            "{out}"
        );

        // kill -9 keeps the pin and what it holds.
        daemon.kill9();
        let mut daemon = Daemon::start_store(work.path(), "").await;
        let p = pin(&daemon, "talk").await.expect("pin survives kill -9");
        assert_eq!(p["objects"], 13, "{p}");

        let (ok, out) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || cli(&config, &["pin", "rm", "talk"])
        })
        .await
        .unwrap();
        assert!(ok, "{out}");
        assert!(out.contains("unpinned talk"), "{out}");
        assert!(pins(&daemon).await.is_empty());
        let (ok, out) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || cli(&config, &["pin", "rm", "talk"])
        })
        .await
        .unwrap();
        assert!(!ok && out.contains("no pin talk"), "{out}");

        // An unpinned video is not seeded again at the next start.
        assert!(daemon.terminate().success());
        let daemon = Daemon::start_store(work.path(), "").await;
        assert!(pins(&daemon).await.is_empty());
        let videos: serde_json::Value = daemon.get_json("/api/v1/videos").await;
        assert_eq!(videos, serde_json::json!([]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_while_the_gateway_serves_on() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let client = client();
        let mut daemon =
            Daemon::start_store_on_tmpfs(work.path(), "min_free_bytes = \"64KiB\"", "512k").await;
        let gw = daemon.url("");
        let url = cdn.url("ts/master.m3u8");
        let objects = hls::objects(
            &client,
            &gw,
            &daemon.hls(&url),
            &fixtures().join("ts/master.m3u8"),
        )
        .await;
        let total: u64 = objects.iter().map(|o| o.expected.len() as u64).sum();
        // The player gets every byte, twice, stored or not.
        assert_eq!(hls::assert_byte_exact(&client, &gw, &objects).await, total);
        assert_eq!(hls::assert_byte_exact(&client, &gw, &objects).await, total);
        assert!(daemon.running() && daemon.healthy().await);

        let mut kept = 0;
        for o in &objects {
            match stored(&client, &daemon, o).await {
                Some(b) => {
                    assert_eq!(b, o.expected, "{}", o.path);
                    assert_eq!(
                        cdn.requests_for(&cdn_path(o)),
                        1,
                        "stored: served from the store"
                    );
                    kept += 1;
                }
                None => assert!(
                    cdn.requests_for(&cdn_path(o)) >= 2,
                    "not stored: from the CDN"
                ),
            }
        }
        assert!(
            kept > 0 && kept < objects.len(),
            "{kept} of {} stored",
            objects.len()
        );
        let refused = stat(&daemon, "store_full_errors").await;
        assert!(refused > 0);
        let log = daemon.log();
        assert_eq!(
            log.matches("store disk full").count(),
            1,
            "logged once a while, not per write:\n{log}"
        );
        let metrics = reqwest::get(daemon.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains(&format!("swarmseed_store_full_errors_total {refused}")));

        // A pin that cannot be stored fails, and says why.
        assert_eq!(
            add_pin(&daemon, &cdn.url("fmp4/master.m3u8"), "nospace").await,
            202
        );
        let p = wait_pin_settled(&daemon, "nospace").await;
        assert_eq!(p["state"], "failed", "{p}");
        assert!(p["reason"].as_str().unwrap().contains("store full"), "{p}");
        assert!(daemon.running() && daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_seeding_loses_no_pin_and_serves_no_wrong_byte() {
    const CYCLES: u32 = 20;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        // Slow enough that seeding spans several cycles.
        cdn.set_delay(Duration::from_millis(400));
        let client = client();
        let url = cdn.url("ts/master.m3u8");
        let config = work.path().join("config.toml");
        let mut objects = Vec::new();
        let mut held_before = 0;
        let mut acknowledged = false;
        for cycle in 0..=CYCLES {
            let mut daemon = Daemon::start_store(work.path(), "").await;
            assert!(daemon.healthy().await, "cycle {cycle}: the store opens");
            if acknowledged {
                assert!(
                    pin(&daemon, "crash").await.is_some(),
                    "cycle {cycle}: pin lost\n{}",
                    daemon.log()
                );
            }
            if objects.is_empty() {
                objects = hls::objects(
                    &client,
                    &daemon.url(""),
                    &daemon.hls(&url),
                    &fixtures().join("ts/master.m3u8"),
                )
                .await;
            }
            // Every stored object is byte-exact; the store only grows.
            let mut held = 0;
            for o in &objects {
                if let Some(b) = stored(&client, &daemon, o).await {
                    assert!(b == o.expected, "cycle {cycle}: {} wrong bytes", o.path);
                    held += 1;
                }
            }
            assert!(held >= held_before, "cycle {cycle}: {held} < {held_before}");
            held_before = held;
            if cycle == CYCLES {
                // One kill -9 ended each cycle before this one.
                finish(&daemon, &client, &objects, &cdn, u64::from(cycle)).await;
                break;
            }
            let mut seed = Command::new(BIN)
                .args(["seed", &url, "--id", "crash", "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            while pin(&daemon, "crash").await.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            acknowledged = true;
            let wait = rand::random_range(50..500);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            daemon.kill9();
            let _ = seed.kill();
            let _ = seed.wait();
        }
    })
    .await
    .expect("test timed out");
}

/// The seed completes, and fetched again from the CDN at most what the
/// kills interrupted.
async fn finish(
    daemon: &Daemon,
    client: &reqwest::Client,
    objects: &[hls::Object],
    cdn: &TestCdn,
    kills: u64,
) {
    const SEED_CONCURRENCY: u64 = 4;
    let v = daemon.wait_seeded("crash").await;
    assert_eq!(v["segments_stored"], objects.len() as u64);
    for o in objects {
        assert_eq!(stored(client, daemon, o).await.as_ref(), Some(&o.expected));
    }
    let extra: u64 = objects
        .iter()
        .map(|o| {
            let n = cdn.requests_for(&cdn_path(o));
            assert!(n >= 1, "{}", o.path);
            n - 1
        })
        .sum();
    assert!(
        extra <= kills * SEED_CONCURRENCY,
        "{extra} repeated CDN fetches over {kills} kills"
    );
    let p = pin(daemon, "crash").await.unwrap();
    assert_eq!(
        p["objects"],
        objects.len() as u64 + 1,
        "segments and the map: {p}"
    );
}
