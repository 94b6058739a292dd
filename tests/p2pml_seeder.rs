//! The daemon as the always-there peer of unmodified p2p-media-loader
//! players: stock hls.js with p2p-media-loader from npm, in headless
//! Chromium, play a video the daemon seeds, taking their segments from
//! it over WebRTC data channels, through the npm `bittorrent-tracker` or
//! the daemon's own tracker at `/announce`. The CDN's own counts show
//! what the pages did not take from the daemon.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bridge::p2pml::stream::{self, Generation};
use serde_json::Value;
use support::browser::Chromium;
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::p2pml::{NodeTracker, PageServer, Player, PlayerConfig, PlayerState, Version};
use support::p2pml_raw::{RawPage, RawPeer, peer_id};
use support::{TEST_TIMEOUT, p2pml};

/// Past p2p-media-loader's 15 s high-demand window, so that with default
/// settings some of it is P2P's to take.
const VIDEO_SECONDS: u32 = 40;

/// Each test runs browsers and a daemon; one at a time keeps the two
/// cores free enough for playback.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A daemon that seeds browser swarms: its engine on loopback, announcing
/// to `trackers`, and its own tracker on or off.
async fn seeder(home: &Path, trackers: &[String], own_tracker: bool) -> Daemon {
    let trackers: Vec<String> = trackers.iter().map(|t| format!("{t:?}")).collect();
    let p2p = format!(
        "listen = []\n[webtorrent]\nlisten = \"127.0.0.1:0\"\ntrackers = [{}]\ntracker = {own_tracker}\n",
        trackers.join(", ")
    );
    Daemon::start_full(home, "", &p2p, &[]).await
}

/// The daemon's peer id in browser swarms.
async fn daemon_peer_id(daemon: &Daemon) -> String {
    daemon.get_json("/api/v1/node").await["webtorrent_peer_id"]
        .as_str()
        .expect("the node names its webtorrent peer id")
        .to_owned()
}

/// Waits until the page has loaded `n` distinct segments and played past
/// `played` seconds, failing on any fatal player error.
async fn play(player: &mut Player, n: usize, played: f64) -> PlayerState {
    player
        .wait_until("playback", Duration::from_secs(90), |s| {
            assert!(s.fatal_errors().is_empty(), "player failed: {}", s.raw);
            let distinct: BTreeSet<(String, Option<u64>)> = s
                .segments
                .iter()
                .map(|x| (x.url.clone(), x.byte_range.map(|r| r.start)))
                .collect();
            distinct.len() >= n && s.current_time > played
        })
        .await
}

fn segments_in(dir: &Path) -> usize {
    extinfs(&dir.join("index.m3u8"))
}

fn extinfs(playlist: &Path) -> usize {
    std::fs::read_to_string(playlist)
        .unwrap()
        .matches("#EXTINF")
        .count()
}

/// Every segment the page loaded came from the daemon.
fn all_from(s: &PlayerState, daemon: &str) {
    assert!(!s.segments.is_empty());
    for seg in &s.segments {
        assert_eq!(seg.source, "p2p", "{seg:?} not from a peer\n{}", s.raw);
        assert_eq!(seg.peer_id.as_deref(), Some(daemon), "{seg:?}\n{}", s.raw);
    }
    assert_eq!(s.bytes_from_http, 0, "{}", s.raw);
}

/// A P2P-first player (`simultaneousHttpDownloads: 0`): with the daemon
/// the only peer, every segment must come from it. `level` pins one
/// rendition, so that one swarm holds all the page takes.
fn p2p_first(
    version: Version,
    manifest: &str,
    tracker: &str,
    level: Option<usize>,
) -> PlayerConfig {
    let mut config = PlayerConfig::new(version, manifest, tracker);
    config.simultaneous_http_downloads = Some(0);
    config.level = level;
    config
}

async fn stats(daemon: &Daemon) -> Value {
    daemon.stats().await
}

/// With `simultaneousHttpDownloads: 0` every segment must come from a
/// peer, and the daemon is the only one: playback passes 20 s, every
/// segment is the daemon's, and the CDN sends the page no segment byte.
async fn plays_from_the_daemon(version: Version, own_tracker: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        p2pml::make_ts_video(&origin.join("long"), VIDEO_SECONDS);
        let cdn = TestCdn::start(&origin).await;
        let npm_tracker = if own_tracker {
            None
        } else {
            Some(NodeTracker::start(Duration::from_secs(10)).await)
        };
        let external: Vec<String> = npm_tracker.iter().map(|t| t.ws_url()).collect();
        let daemon = seeder(&work.path().join("seeder"), &external, own_tracker).await;
        let master = cdn.url("long/master.m3u8");
        daemon.seed(&master).await;
        let seeded_bytes = cdn.media_bytes_sent();
        let me = daemon_peer_id(&daemon).await;

        let tracker_url = match &npm_tracker {
            Some(t) => t.ws_url(),
            None => format!("ws://{}/announce", daemon.addr),
        };
        let page = PageServer::start().await;
        let config = p2p_first(version, &master, &tracker_url, None);
        let mut player = Player::open(&page, &config).await;
        let s = play(&mut player, 10, 20.0).await;
        all_from(&s, &me);
        assert_eq!(
            cdn.media_bytes_sent(),
            seeded_bytes,
            "the CDN sent segment bytes after seeding"
        );

        // The daemon counted what the page received, in its own counters.
        let st = stats(&daemon).await;
        let sent = st["bytes_uploaded_p2pml"].as_u64().unwrap();
        assert!(sent >= s.bytes_from_p2p, "{st} vs {}", s.raw);
        assert!(st["browsers_connected"].as_u64().unwrap() >= 1, "{st}");
        assert_eq!(
            st["bytes_uploaded"].as_u64().unwrap(),
            sent + st["bytes_uploaded_blocks"].as_u64().unwrap()
                + st["bytes_uploaded_bitswap"].as_u64().unwrap(),
            "{st}"
        );
        // … and in the proofs ledger, as one line no receipt covers.
        let ledger = daemon.get_json("/api/v1/proofs/peers").await;
        let line = ledger
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == "p2pml")
            .unwrap_or_else(|| panic!("no p2pml line: {ledger}"));
        assert_eq!(line["bytes_sent"], line["bytes_unreceipted"], "{line}");
        assert_eq!(line["bytes_receipted"], 0, "{line}");
        assert!(line["bytes_sent"].as_u64().unwrap() >= s.bytes_from_p2p);

        if own_tracker {
            // The built-in tracker lists the swarm with the page and the daemon in it.
            let overview = daemon.get_json("/api/v1/tracker").await;
            let swarms = overview["swarms"].as_array().unwrap();
            assert!(
                swarms
                    .iter()
                    .any(|w| w["total"].as_u64().unwrap_or(0) >= 2 && w["local"] == 1),
                "{overview}"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_3_player_plays_every_segment_from_the_daemon() {
    plays_from_the_daemon(Version::V2_3, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_3_player_plays_from_the_daemon_through_its_own_tracker() {
    plays_from_the_daemon(Version::V2_3, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_2_player_plays_every_segment_from_the_daemon() {
    plays_from_the_daemon(Version::V2_2, false).await;
}

/// With the player's default settings it takes what lies in its 15 s
/// high-demand window over HTTP; every segment past it comes from the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_default_settings_segments_past_the_high_demand_window_come_from_the_daemon() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        p2pml::make_ts_video(&origin.join("long"), VIDEO_SECONDS);
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let daemon = seeder(&work.path().join("seeder"), &[tracker.ws_url()], false).await;
        let master = cdn.url("long/master.m3u8");
        daemon.seed(&master).await;
        let me = daemon_peer_id(&daemon).await;
        let page = PageServer::start().await;
        let mut config = PlayerConfig::new(Version::V2_3, &master, &tracker.ws_url());
        // One rendition, so "every segment" is one list.
        config.level = Some(0);
        let total = segments_in(&origin.join("long/v1"));
        let mut player = Player::open(&page, &config).await;
        let s = play(&mut player, total, 5.0).await;
        // 2 s segments: the high-demand window is the first 15 s.
        let window = 15 / 2 + 1;
        let mut from_daemon = 0;
        for seg in &s.segments {
            let id = seg.external_id.expect("VOD segments have ids");
            if id >= window as u64 {
                assert_eq!(seg.source, "p2p", "{seg:?}\n{}", s.raw);
                assert_eq!(seg.peer_id.as_deref(), Some(me.as_str()), "{seg:?}");
                from_daemon += 1;
            }
        }
        assert!(from_daemon >= total - window, "{}", s.raw);
    })
    .await
    .expect("test timed out");
}

/// Requests the CDN answered for each media segment (not init sections,
/// which p2p-media-loader always takes over HTTP), by path.
fn segment_requests(cdn: &TestCdn, origin: &Path, dir: &str, ext: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(origin.join(dir)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(ext) && !name.starts_with("init") {
            let path = format!("/{dir}/{name}");
            out.push((path.clone(), cdn.requests_for(&path)));
        }
    }
    out.sort();
    out
}

/// fMP4 with `EXT-X-MAP` and single-file TS with byte ranges, P2P-first:
/// every media segment, each byte range its own, comes from the daemon;
/// the CDN answers no segment request after seeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_and_byte_range_segments_come_from_the_daemon() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = support::fixtures();
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let daemon = seeder(&work.path().join("seeder"), &[tracker.ws_url()], false).await;
        let me = daemon_peer_id(&daemon).await;
        let page = PageServer::start().await;
        for (name, dirs, ext) in [
            ("fmp4", &["fmp4/v0", "fmp4/v1"][..], ".m4s"),
            ("byterange", &["byterange"][..], ".ts"),
        ] {
            let master = cdn.url(&format!("{name}/master.m3u8"));
            daemon.seed(&master).await;
            let before: Vec<_> = dirs
                .iter()
                .flat_map(|d| segment_requests(&cdn, &origin, d, ext))
                .collect();
            let config = p2p_first(Version::V2_3, &master, &tracker.ws_url(), Some(0));
            let mut player = Player::open(&page, &config).await;
            let total = match name {
                "byterange" => extinfs(&origin.join("byterange/stream.m3u8")),
                _ => segments_in(&origin.join("fmp4/v1")),
            };
            let s = play(&mut player, total, 4.0).await;
            all_from(&s, &me);
            if name == "byterange" {
                let ranges: BTreeSet<u64> = s
                    .segments
                    .iter()
                    .map(|x| x.byte_range.expect("a byte range").start)
                    .collect();
                assert_eq!(ranges.len(), total, "{}", s.raw);
            }
            let after: Vec<_> = dirs
                .iter()
                .flat_map(|d| segment_requests(&cdn, &origin, d, ext))
                .collect();
            assert_eq!(before, after, "{name}: the CDN answered segment requests");
            player.browser.kill().await;
        }
    })
    .await
    .expect("test timed out");
}

/// Runs ffmpeg as a live encoder: a sliding window of 2 s segments,
/// `live<N>.ts` with media sequence N.
fn live_encoder(dir: &Path) -> std::process::Child {
    std::process::Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-nostdin", "-v", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "90", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", "48", "-keyint_min", "48", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "6"])
        .arg("live.m3u8")
        .spawn()
        .expect("ffmpeg is installed")
}

/// A live stream ffmpeg writes during the test: the page's segment ids are
/// media sequence numbers, and segments that appear after the page joined
/// reach it from the daemon, announced as they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_is_served_by_media_sequence_as_it_grows() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        let mut encoder = live_encoder(&origin);
        let live = origin.join("live.m3u8");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&live).map_or(0, |s| s.matches("#EXTINF").count()) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "ffmpeg wrote no playlist"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let daemon = seeder(&work.path().join("seeder"), &[tracker.ws_url()], false).await;
        let url = cdn.url("live.m3u8");
        daemon.seed(&url).await;
        let me = daemon_peer_id(&daemon).await;
        let page = PageServer::start().await;
        let config = p2p_first(Version::V2_3, &url, &tracker.ws_url(), None);
        let mut player = Player::open(&page, &config).await;
        let first = player
            .wait_until("live playback", Duration::from_secs(60), |s| {
                s.current_time > 1.0 && !s.segments.is_empty()
            })
            .await;
        let newest_at_join = first
            .segments
            .iter()
            .filter_map(|x| x.external_id)
            .max()
            .unwrap();
        let s = player
            .wait_until("later live segments", Duration::from_secs(60), |s| {
                s.segments
                    .iter()
                    .filter_map(|x| x.external_id)
                    .any(|id| id >= newest_at_join + 3)
                    && s.current_time > 8.0
            })
            .await;
        all_from(&s, &me);
        for seg in &s.segments {
            let n: u64 = seg
                .url
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix("live"))
                .and_then(|f| f.strip_suffix(".ts"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{seg:?}"));
            assert_eq!(seg.external_id, Some(n), "ids are media sequence numbers");
        }
        let _ = encoder.kill();
        let _ = encoder.wait();
    })
    .await
    .expect("test timed out");
}

/// Two players and a seeder, P2P-first: both play, the CDN sends one copy
/// of the segments in all (the seeder's), and what the daemon counts as
/// sent to browsers is what the pages count as received from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_and_a_seeder_take_one_copy_from_the_cdn() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        p2pml::make_ts_video(&origin.join("long"), VIDEO_SECONDS);
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let daemon = seeder(&work.path().join("seeder"), &[tracker.ws_url()], false).await;
        let master = cdn.url("long/master.m3u8");
        daemon.seed(&master).await;
        let one_copy = cdn.media_bytes_sent();
        let me = daemon_peer_id(&daemon).await;
        let page = PageServer::start().await;
        let config = p2p_first(Version::V2_3, &master, &tracker.ws_url(), Some(0));
        let total = segments_in(&origin.join("long/v1"));
        let mut a = Player::open(&page, &config).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut b = Player::open(&page, &config).await;
        let sa = play(&mut a, total, 10.0).await;
        let sb = play(&mut b, total, 10.0).await;
        assert_eq!(
            cdn.media_bytes_sent(),
            one_copy,
            "the CDN sent more than one copy"
        );
        for s in [&sa, &sb] {
            assert_eq!(s.bytes_from_http, 0, "{}", s.raw);
            assert!(s.segments.iter().all(|x| x.source == "p2p"), "{}", s.raw);
        }
        // Settled: every segment of the level is in both pages.
        let from_daemon = |s: &PlayerState| s.bytes_from_peer.get(&me).copied().unwrap_or(0);
        let st = stats(&daemon).await;
        let sent = st["bytes_uploaded_p2pml"].as_u64().unwrap();
        let received = from_daemon(&sa) + from_daemon(&sb);
        let clean = |s: &PlayerState| {
            s.aborts.is_empty() && s.errors.iter().all(|e| e["kind"] != "segment")
        };
        if clean(&sa) && clean(&sb) {
            assert_eq!(sent, received, "daemon {st}\nA {}\nB {}", sa.raw, sb.raw);
        } else {
            // A load cancelled on a busy machine leaves bytes in flight that
            // the page drops: the daemon counted them, the page did not.
            assert!(sent >= received, "daemon {st}");
        }
        assert!(received > 0);
        let mut events = daemon.events().await;
        a.browser.kill().await;
        events
            .wait("browser-disconnected", Duration::from_secs(90), |_| true)
            .await;
        drop(b);
    })
    .await
    .expect("test timed out");
}

/// `serve_played`: a video this daemon plays through its gateway is seeded
/// to browsers from what the store holds, with no seed job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_serve_played_a_video_played_here_is_served_to_browsers() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = support::fixtures();
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let p2p = format!(
            "listen = []\n[webtorrent]\nlisten = \"127.0.0.1:0\"\ntrackers = [{:?}]\nserve_played = true\n",
            tracker.ws_url()
        );
        let daemon = Daemon::start_full(&work.path().join("viewer"), "", &p2p, &[]).await;
        let master = cdn.url("ts/master.m3u8");
        // Played through the gateway, every segment of both renditions.
        let client = support::client();
        let gateway = daemon.url("");
        let gateway = gateway.trim_end_matches('/');
        let objects =
            support::hls::objects(&client, gateway, &daemon.hls(&master), &origin.join("ts/master.m3u8"))
                .await;
        support::hls::assert_byte_exact(&client, gateway, &objects).await;
        assert!(daemon.get_json("/api/v1/videos").await.as_array().unwrap().is_empty());
        let me = daemon_peer_id(&daemon).await;
        let before = cdn.media_bytes_sent();
        let page = PageServer::start().await;
        let config = p2p_first(Version::V2_3, &master, &tracker.ws_url(), Some(0));
        let mut player = Player::open(&page, &config).await;
        let s = play(&mut player, segments_in(&origin.join("ts/v1")), 4.0).await;
        all_from(&s, &me);
        assert_eq!(cdn.media_bytes_sent(), before);
    })
    .await
    .expect("test timed out");
}

/// A page with its own `swarmId`, on a tracker only that video names: the
/// daemon seeds it under the same `swarm_id` and `trackers` given over the
/// API, and still does after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_id_and_trackers_given_over_the_api_survive_a_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = support::fixtures();
        let cdn = TestCdn::start(&origin).await;
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let home = work.path().join("seeder");
        let mut daemon = seeder(&home, &[], false).await;
        let master = cdn.url("ts/master.m3u8");
        let client = support::client();
        let refused = client
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .json(&serde_json::json!({"url": master, "trackers": ["http://not-a-tracker"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        let r = client
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .json(&serde_json::json!({
                "url": master,
                "swarm_id": "my-video",
                "trackers": [tracker.ws_url()],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        daemon.wait_seeded(&id).await;
        assert!(daemon.terminate().success());
        let daemon = seeder(&home, &[], false).await;
        daemon.wait_seeded(&id).await;
        let me = daemon_peer_id(&daemon).await;
        let page = PageServer::start().await;
        let mut config = p2p_first(Version::V2_3, &master, &tracker.ws_url(), Some(0));
        config.swarm_id = Some("my-video".into());
        let mut player = Player::open(&page, &config).await;
        let s = play(&mut player, segments_in(&origin.join("ts/v1")), 4.0).await;
        all_from(&s, &me);
    })
    .await
    .expect("test timed out");
}

/// A browser that makes no offers (it announces with none) is reached by
/// the daemon's own: the tracker's counts show it a member the daemon is
/// not connected to, the daemon's next announce carries an offer, the
/// browser answers it, and it is served over that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_offers_to_browsers_that_make_no_offers() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = support::fixtures();
        let cdn = TestCdn::start(&origin).await;
        // Members re-announce every 2 s, the daemon among them.
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let daemon = seeder(&work.path().join("seeder"), &[tracker.ws_url()], false).await;
        let master = cdn.url("ts/master.m3u8");
        daemon.seed(&master).await;
        let me = daemon_peer_id(&daemon).await;
        let url = url::Url::parse(&master).unwrap();
        let body = std::fs::read(origin.join("ts/master.m3u8")).unwrap();
        let streams = stream::streams(&stream::swarm_base(&url), &url, &body).unwrap();
        let info_hash = String::from_utf8(streams[0].info_hash(Generation::V23).to_vec()).unwrap();
        let page = RawPage::start().await;
        let mut browser = Chromium::launch(&page.url()).await;
        let mut peer = RawPeer::accept(
            &mut browser,
            &tracker.ws_url(),
            &info_hash,
            &peer_id("quiet"),
        )
        .await;
        assert_eq!(peer.offered_by(&mut browser).await, me);
        let first = std::fs::read(origin.join("ts/v0/seg_000.ts")).unwrap();
        assert!(peer.fetch(&mut browser, 0, 1).await == first, "wrong bytes");
    })
    .await
    .expect("test timed out");
}

/// Unpinning a video leaves its browser swarms: the daemon is no longer a
/// member of any swarm on its own tracker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpinned_video_leaves_its_swarms() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&support::fixtures()).await;
        let daemon = seeder(&work.path().join("seeder"), &[], true).await;
        let video = daemon.seed(&cdn.url("audio/master.m3u8")).await;
        let id = video["id"].as_str().unwrap().to_owned();
        let members = |overview: &Value| -> u64 {
            overview["swarms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["local"].as_u64().unwrap_or(0))
                .sum()
        };
        // Two streams (the video and its audio rendition), each under the
        // 2.2 and the 2.3 info_hash.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while members(&daemon.get_json("/api/v1/tracker").await) < 4 {
            assert!(std::time::Instant::now() < deadline, "swarms never joined");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = support::client()
            .delete(daemon.url(&format!("/api/v1/pins/{id}")))
            .bearer_auth(daemon.token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let overview = daemon.get_json("/api/v1/tracker").await;
            if members(&overview) == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still a member: {overview}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("test timed out");
}
