//! The gateway end to end: a real CDN on loopback serving ffmpeg-made HLS,
//! a real `swarmseed` process, and ffmpeg as the player.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::{FIXTURES, TEST_TIMEOUT, client, fixtures, hls};

fn ffmpeg_plays(url: &str, out_dir: &Path, name: &str) {
    let out = out_dir.join(format!("{name}.mkv"));
    let result = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "error", "-y", "-i", url, "-map", "0", "-c", "copy",
        ])
        .arg(&out)
        .output()
        .expect("ffmpeg is installed");
    assert!(
        result.status.success(),
        "ffmpeg failed on {url}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        std::fs::metadata(&out).unwrap().len() > 10_000,
        "{name}: ffmpeg wrote almost nothing"
    );
}

async fn play_everything(
    daemon: &Daemon,
    cdn_url: impl Fn(&str) -> String,
    work: &Path,
) -> (u64, u64) {
    let client = client();
    let gateway = format!("http://{}", daemon.addr);
    let (mut objects, mut bytes) = (0, 0);
    for name in FIXTURES {
        let master = format!("{name}/master.m3u8");
        let list = hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn_url(&master)),
            &fixtures().join(&master),
        )
        .await;
        assert!(list.len() >= 6, "{name}: only {} objects", list.len());
        bytes += hls::assert_byte_exact(&client, &gateway, &list).await;
        objects += list.len() as u64;
        // ffmpeg's HLS demuxer leaves WebVTT renditions out; the other four carry every kind of media.
        if name != "subs" {
            ffmpeg_plays(&daemon.hls(&cdn_url(&master)), work, name);
        }
    }
    (objects, bytes)
}

/// The bytes of each distinct object in the fixtures, as the CDN holds them.
async fn distinct_media_bytes(daemon: &Daemon, cdn_url: impl Fn(&str) -> String) -> u64 {
    let client = client();
    let gateway = format!("http://{}", daemon.addr);
    let mut seen = HashSet::new();
    let mut total = 0;
    for name in FIXTURES {
        let master = format!("{name}/master.m3u8");
        for o in hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn_url(&master)),
            &fixtures().join(&master),
        )
        .await
        {
            if seen.insert(o.path) {
                total += o.expected.len() as u64;
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_plays_byte_exact_then_again_from_the_store_with_the_cdn_down() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let mut daemon = Daemon::start(work.path(), "").await;

        let (objects, bytes) = play_everything(&daemon, |p| cdn.url(p), work.path()).await;
        let distinct = distinct_media_bytes(&daemon, |p| cdn.url(p)).await;
        assert!(
            objects > 40 && bytes > 1_000_000,
            "{objects} objects, {bytes} bytes"
        );
        // Each object crossed from the CDN once; every later read came from the store.
        assert_eq!(
            cdn.media_bytes_sent(),
            distinct,
            "CDN sent each segment once"
        );
        let stats = daemon.stats().await;
        assert!(
            stats["bytes_from_cdn"].as_u64().unwrap() >= distinct,
            "{stats}"
        );
        assert!(stats["bytes_from_store"].as_u64().unwrap() > 0, "{stats}");
        assert!(
            stats["segments_stored"].as_u64().unwrap() >= objects / 2,
            "{stats}"
        );
        assert_eq!(stats["bytes_from_p2p"], 0);

        let status = daemon.terminate();
        assert!(status.success(), "SIGTERM exit: {status}");
        let cdn_addr = cdn.addr;
        cdn.stop().await;
        assert!(
            reqwest::get(format!("http://{cdn_addr}/ts/master.m3u8"))
                .await
                .is_err(),
            "CDN is down"
        );

        let daemon = Daemon::start(work.path(), "").await;
        let cdn_url = |p: &str| format!("http://{cdn_addr}/{p}");
        let (objects_again, bytes_again) = play_everything(&daemon, cdn_url, work.path()).await;
        assert_eq!((objects_again, bytes_again), (objects, bytes));
        let stats = daemon.stats().await;
        assert_eq!(stats["bytes_from_cdn"], 0, "{stats}");
        assert!(
            stats["bytes_from_store"].as_u64().unwrap() >= bytes,
            "{stats}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_hits_answer_ranges_with_206_and_416() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let client = client();
        let gateway = format!("http://{}", daemon.addr);
        let master = "ts/master.m3u8";
        let list = hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn.url(master)),
            &fixtures().join(master),
        )
        .await;
        let seg = &list[0];
        let len = seg.expected.len();
        // The first GET stores it; the rest are store hits.
        let full = client.get(daemon.url(&seg.path)).send().await.unwrap();
        assert_eq!(full.status(), 200);
        daemon.wait_stored(1).await;
        for _ in 0..2 {
            let r = client.get(daemon.url(&seg.path)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "video/mp2t");
            assert_eq!(r.headers()["content-length"], len.to_string().as_str());
            assert_eq!(r.headers()["accept-ranges"], "bytes");
            assert!(
                r.headers()["etag"]
                    .to_str()
                    .unwrap()
                    .starts_with("\"bafkrei")
            );
            assert_eq!(r.bytes().await.unwrap(), seg.expected);
        }
        let cases = [
            ("bytes=0-99".to_owned(), 0, 99),
            (format!("bytes={}-", len - 10), len - 10, len - 1),
            ("bytes=-188".to_owned(), len - 188, len - 1),
            (format!("bytes=100-{}", len * 2), 100, len - 1),
        ];
        for (range, start, end) in cases {
            let r = client
                .get(daemon.url(&seg.path))
                .header("range", &range)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206, "{range}");
            assert_eq!(
                r.headers()["content-range"],
                format!("bytes {start}-{end}/{len}").as_str()
            );
            assert_eq!(
                r.bytes().await.unwrap(),
                seg.expected.slice(start..=end),
                "{range}"
            );
        }
        let r = client
            .get(daemon.url(&seg.path))
            .header("range", format!("bytes={len}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 416);
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes */{len}").as_str()
        );
        let stats = daemon.stats().await;
        assert!(
            stats["bytes_from_store"].as_u64().unwrap() >= 2 * len as u64,
            "{stats}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_segment_make_one_cdn_fetch() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let client = client();
        let gateway = format!("http://{}", daemon.addr);
        let master = "fmp4/master.m3u8";
        let list = hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn.url(master)),
            &fixtures().join(master),
        )
        .await;
        let seg = &list[3];
        cdn.set_delay(Duration::from_millis(400));
        let fetches = (0..12).map(|_| {
            let client = client.clone();
            let url = daemon.url(&seg.path);
            tokio::spawn(async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            })
        });
        for body in futures::future::join_all(fetches).await {
            assert_eq!(body.unwrap(), seg.expected);
        }
        let rel = seg.file.strip_prefix(fixtures()).unwrap();
        let path = format!("/{}", rel.display());
        assert_eq!(cdn.requests_for(&path), 1, "CDN requests for {path}");
    })
    .await
    .expect("test timed out");
}

/// Runs ffmpeg as a live encoder writing a sliding-window playlist.
fn start_live_encoder(dir: &Path) -> std::process::Child {
    Command::new("ffmpeg")
        .current_dir(dir)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x90:rate=24",
        ])
        .args([
            "-t",
            "30",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "24",
            "-sc_threshold",
            "0",
        ])
        .args([
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "3",
            "live.m3u8",
        ])
        .spawn()
        .expect("ffmpeg is installed")
}

fn media_sequence(body: &[u8]) -> u64 {
    match m3u8_rs::parse_playlist_res(body).expect("live playlist parses") {
        m3u8_rs::Playlist::MediaPlaylist(m) => {
            assert!(!m.end_list, "still live");
            m.media_sequence
        }
        _ => panic!("not a media playlist"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_playlists_are_never_staler_than_half_their_target_duration() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        let mut encoder = start_live_encoder(&origin);
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("node"), "").await;
        let client = client();
        let live = origin.join("live.m3u8");
        while !live.exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = daemon.hls(&cdn.url("live.m3u8"));
        let mut sequences = Vec::new();
        let mut segments_checked = 0;
        for _ in 0..12 {
            // What the origin held before this wait; target duration is 1 s,
            // so after 0.5 s (plus slack for a loaded machine) the gateway must show at least this.
            let before = media_sequence(&std::fs::read(&live).unwrap());
            tokio::time::sleep(Duration::from_millis(800)).await;
            let body = client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let served = media_sequence(&body);
            assert!(
                served >= before,
                "gateway served sequence {served}, origin had {before} 800 ms earlier"
            );
            sequences.push(served);
            // The newest segment is byte-exact with the encoder's file.
            let text = String::from_utf8(body.to_vec()).unwrap();
            let last = text.lines().rfind(|l| l.starts_with("/hls/seg/")).unwrap();
            let got = client
                .get(daemon.url(last))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let name = last.rsplit('/').next().unwrap();
            assert_eq!(got, std::fs::read(origin.join(name)).unwrap(), "{name}");
            segments_checked += 1;
        }
        let _ = encoder.kill();
        let _ = encoder.wait();
        assert!(
            sequences.last() > sequences.first(),
            "the window slid: {sequences:?}"
        );
        assert!(
            cdn.requests_for("/live.m3u8") >= 5,
            "live playlist was fetched again"
        );
        assert_eq!(segments_checked, 12);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_metrics_report_what_came_from_the_cdn() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let client = client();
        let mut events = client
            .get(daemon.url("/api/v1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(events.headers()["content-type"], "text/event-stream");

        let gateway = format!("http://{}", daemon.addr);
        let master = "audio/master.m3u8";
        let list = hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn.url(master)),
            &fixtures().join(master),
        )
        .await;
        let bytes = hls::assert_byte_exact(&client, &gateway, &list).await;

        let mut seen = String::new();
        let mut fallbacks = 0;
        let mut last_stats = None;
        while fallbacks < list.len() || last_stats.is_none() {
            let chunk = events.chunk().await.unwrap().expect("stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
            // Complete events end with a blank line.
            while let Some(end) = seen.find("\n\n") {
                let event: String = seen.drain(..end + 2).collect();
                let name = event
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("");
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("{}");
                let data: serde_json::Value = serde_json::from_str(data).unwrap();
                match name {
                    "fallback-cdn" => {
                        assert!(
                            data["url"]
                                .as_str()
                                .unwrap()
                                .starts_with(&cdn.url("audio/")),
                            "{data}"
                        );
                        assert!(data["bytes"].as_u64().unwrap() > 0);
                        fallbacks += 1;
                    }
                    // Segments are stored just after they are served.
                    "stats-update"
                        if data["bytes_from_cdn"].as_u64().unwrap() >= bytes
                            && data["segments_stored"] == list.len() as u64 =>
                    {
                        last_stats = Some(data)
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(fallbacks, list.len(), "one fallback-cdn per segment");
        let stats = last_stats.unwrap();
        assert_eq!(stats["segments_stored"], list.len() as u64, "{stats}");

        let metrics = client
            .get(daemon.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> f64 {
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name}:\n{metrics}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(metrics.contains("# TYPE swarmseed_bytes_from_cdn_total counter"));
        assert!(value("swarmseed_bytes_from_cdn_total") >= bytes as f64);
        assert_eq!(value("swarmseed_segments_stored"), list.len() as f64);
        assert_eq!(value("swarmseed_bytes_from_p2p_total"), 0.0);
        // What was just stored is held in memory too, and the gauges say how
        // much, within their bounds.
        for cache in ["memory_cache_bytes", "block_cache_bytes"] {
            let held = value(&format!("swarmseed_{cache}"));
            assert!(held > 0.0 && held <= 320.0 * 1048576.0, "{cache}: {held}");
        }
    })
    .await
    .expect("test timed out");
}

/// The first segment path of the media playlist at `upstream`, through the gateway.
async fn first_segment_path(daemon: &Daemon, upstream: &str) -> String {
    let playlist = client()
        .get(daemon.hls(upstream))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    playlist
        .lines()
        .find(|l| l.starts_with("/hls/seg/"))
        .unwrap_or_else(|| panic!("no segment in {playlist}"))
        .to_owned()
}

/// A miss with no trusted CID reaches the player as the CDN sends it: the
/// player holds the first half while the origin still holds back the
/// rest. The whole arrives byte-exact and is then served from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_reaches_the_player_as_the_cdn_sends_it() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let path = first_segment_path(&daemon, &cdn.url("gate/ts/v0/index.m3u8")).await;
        let expected = std::fs::read(fixtures().join("ts/v0/seg_000.ts")).unwrap();
        let mut response = client().get(daemon.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length(), Some(expected.len() as u64));
        let mut got = Vec::new();
        while got.len() < expected.len() / 2 {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the first half arrives");
            got.extend_from_slice(&chunk);
        }
        assert_eq!(
            got,
            expected[..got.len()],
            "the first half, as the origin sent it"
        );
        assert_eq!(
            daemon.stats().await["segments_stored"],
            0,
            "stored before it was whole"
        );
        cdn.open_gate();
        while let Some(chunk) = response.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert!(
            got == expected,
            "the streamed miss is not the origin's bytes"
        );
        daemon.wait_stored(1).await;
        let again = client().get(daemon.url(&path)).send().await.unwrap();
        assert!(again.headers().contains_key("etag"), "a hit names its CID");
        assert!(again.bytes().await.unwrap() == expected);
        assert_eq!(cdn.requests_for("/gate/ts/v0/seg_000.ts"), 1);
    })
    .await
    .expect("test timed out");
}

/// An origin that breaks off mid-body breaks the player's response at
/// the same byte, as a proxy would, and nothing is stored; the daemon
/// stays up and serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_breaks_mid_body_leaves_nothing_stored() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(work.path(), "").await;
        let path = first_segment_path(&daemon, &cdn.url("cut/ts/v0/index.m3u8")).await;
        let full = std::fs::metadata(fixtures().join("ts/v0/seg_000.ts"))
            .unwrap()
            .len();
        let response = client().get(daemon.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // Cut off (what a player behind a proxy sees), or short.
        if let Ok(body) = response.bytes().await {
            assert!((body.len() as u64) < full, "a broken body came whole");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cached = client()
            .get(daemon.url(&path))
            .header("Cache-Control", "only-if-cached")
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 504, "a broken body was stored");
        assert_eq!(daemon.stats().await["segments_stored"], 0);
        assert!(daemon.healthy().await);
        // The same segment from a whole origin.
        let whole = first_segment_path(&daemon, &cdn.url("ts/v0/index.m3u8")).await;
        let got = client().get(daemon.url(&whole)).send().await.unwrap();
        assert!(
            got.bytes().await.unwrap()
                == std::fs::read(fixtures().join("ts/v0/seg_000.ts")).unwrap()
        );
    })
    .await
    .expect("test timed out");
}

/// The block files of the stored segment whose leaves are `leaf_len` long.
fn leaf_files(data_dir: &Path, leaf_len: u64) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![data_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.len() == leaf_len
                && path.ancestors().any(|a| a.ends_with("blocks"))
                && !path
                    .ancestors()
                    .any(|a| a.file_name() == Some(".tmp".as_ref()))
            {
                found.push(path);
            }
        }
    }
    found
}

/// A stored segment of several blocks goes from its block files with
/// sendfile(2): byte-exact, every byte counted as sent from the files.
/// A block file changed on disk behind the store's back is caught before
/// it is sent again, dropped, and the segment fetched again, so the
/// player still gets exactly the origin's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_hits_go_from_their_block_files_and_a_corrupted_one_is_fetched_again() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        support::media::make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        let path = first_segment_path(&daemon, &cdn.url("big/index.m3u8")).await;
        let expected = std::fs::read(origin.join("big/seg_000.ts")).unwrap();
        let get = || async {
            let r = client().get(daemon.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let etag = r
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_owned());
            (etag, r.bytes().await.unwrap())
        };
        const SENT: &str = "swarmseed_bytes_sent_from_files_total";

        assert!(
            get().await.1 == expected,
            "the miss is not the origin's bytes"
        );
        daemon.wait_stored(1).await;
        let before = daemon.metric(SENT).await;
        let (etag, hit) = get().await;
        assert!(hit == expected, "the hit is not the origin's bytes");
        assert!(etag.is_some(), "a hit names its CID");
        assert_eq!(
            daemon.metric(SENT).await - before,
            expected.len() as f64,
            "the hit did not go from the block files"
        );
        assert_eq!(cdn.requests_for("/big/seg_000.ts"), 1);

        // One byte changed in place in one leaf's file.
        let leaves = leaf_files(&work.path().join("d/data"), 1 << 20);
        assert_eq!(leaves.len(), 3, "three whole 1 MiB leaves: {leaves:?}");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&leaves[1])
            .unwrap();
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(1234)).unwrap();
        file.read_exact(&mut byte).unwrap();
        file.seek(SeekFrom::Start(1234)).unwrap();
        file.write_all(&[byte[0] ^ 0x40]).unwrap();
        file.sync_all().unwrap();
        drop(file);

        let before = daemon.metric(SENT).await;
        assert!(
            get().await.1 == expected,
            "a corrupted block reached the player"
        );
        assert!(
            daemon.log().contains("block fails its CID"),
            "the corrupted block went unnoticed:\n{}",
            daemon.log()
        );
        assert_eq!(
            cdn.requests_for("/big/seg_000.ts"),
            2,
            "the damaged segment was not fetched again"
        );
        daemon.wait_stored(1).await;
        assert!(get().await.1 == expected, "the refetched segment differs");
        assert!(
            daemon.metric(SENT).await - before >= expected.len() as f64,
            "the refetched segment did not go from its block files"
        );
        // A range of it, cut from the same verified bytes.
        let part = client()
            .get(daemon.url(&path))
            .header("Range", "bytes=1048000-2097300")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert!(part.bytes().await.unwrap() == expected[1048000..=2097300]);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
