//! Seeding PeerTube videos (`shared/PEERTUBE.md`): against a PeerTube-shaped
//! instance built by the test (REST answers with each generation's
//! version, HLS made with PeerTube's own ffmpeg flags, its
//! `segments-sha256.json`, and PeerTube's private tracker with its filter),
//! `swarmseed seed https://instance/w/<uuid>` joins exactly the swarms the
//! instance's players join and serves them: a PeerTube 7.0 page (the
//! p2p-media-loader fork) plays from the daemon alone, an 8.x page
//! (p2p-media-loader 2.2) takes everything past its high-demand window from
//! it, every segment passes PeerTube's validator, and the tracker refuses
//! nothing. Liars' bytes never get through, two daemons share one copy
//! from the origin, a regenerated playlist moves the daemon to the new
//! swarms, and videos that cannot be seeded are refused with the reason.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::browser::Chromium;
use support::daemon::Daemon;
use support::p2pml::{PageServer, Player, PlayerConfig, Version};
use support::peer::{Misbehaviour, TestPeer};
use support::peertube::{
    Audio, Hls, Instance, LyingMirror, Tracker, TrackerGeneration, UUID, make_hls, make_synthetic,
    static_path, tracker_video,
};
use support::{TEST_TIMEOUT, client};

/// Browser tests take the machine; one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Past PeerTube 8.x's 15 s high-demand window, and long enough to play
/// past 20 s.
const VIDEO_SECONDS: u32 = 40;

/// The daemon's id prefix in browser swarms.
const DAEMON: &str = "-SW";

/// A seeder: browser swarms on loopback, no tracker of its own, reading
/// seeded PeerTube videos again every second.
async fn seeder(home: &std::path::Path, p2p: &str) -> Daemon {
    let p2p = format!(
        "{p2p}\n[webtorrent]\nlisten = \"127.0.0.1:0\"\ntracker = false\n[peertube]\nrefresh_secs = 1\n"
    );
    Daemon::start_full(home, "", &p2p, &[]).await
}

/// `POST /api/v1/videos`: the answer's status and body.
async fn post_video(daemon: &Daemon, url: &str) -> (u16, Value) {
    let r = client()
        .post(daemon.url("/api/v1/videos"))
        .bearer_auth(daemon.token())
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every segment and init section, fetched through the daemon's gateway,
/// is the origin's.
async fn gateway_serves_the_origins_bytes(daemon: &Daemon, instance: &Instance, hls: &Hls) {
    let master = instance.playlist_url(UUID, hls);
    let objects = support::hls::objects(
        &client(),
        &daemon.url(""),
        &daemon.hls(&master),
        &hls.dir.join(&hls.master),
    )
    .await;
    assert!(!objects.is_empty());
    for o in objects {
        let got = client()
            .get(daemon.url(&o.path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            got == o.expected,
            "{} differs from the origin's bytes",
            o.path
        );
    }
}

/// The tracker saw the daemon announce, let every announce in, and the
/// daemon announced only info_hashes the instance published.
fn tracker_refused_nothing(tracker: &Tracker) {
    assert!(
        tracker.refused().is_empty(),
        "the tracker refused: {:?}",
        tracker.refused()
    );
    let from_daemon = tracker.accepted_from(DAEMON);
    assert!(!from_daemon.is_empty(), "the daemon never announced");
    let allowed = tracker.allowed();
    for a in &from_daemon {
        assert!(
            allowed.iter().any(|h| a["info_hash"] == json!(h)),
            "{a} is not published"
        );
    }
}

/// An instance publishing one ffmpeg-made video and its tracker, and a
/// seeder that has seeded it from its watch page.
struct Seeded {
    work: tempfile::TempDir,
    hls: Hls,
    instance: Instance,
    tracker: Tracker,
    mirror: Option<LyingMirror>,
    daemon: Daemon,
    /// The video's `playlistUrl`.
    master: String,
}

impl Seeded {
    async fn start(version: &str, audio: Audio, seconds: u32, lying_mirror: bool) -> Seeded {
        let work = support::workdir();
        let root = work.path().join("instance");
        let hls = make_hls(&root, UUID, audio, seconds);
        let instance = Instance::start(&root, version).await;
        let master = instance.playlist_url(UUID, &hls);
        let generation = match version {
            "7.0.1" => TrackerGeneration::Fork,
            _ => TrackerGeneration::V22,
        };
        let tracker =
            Tracker::start(&master, hls.files.len(), audio == Audio::Split, generation).await;
        let mirror = match lying_mirror {
            true => Some(LyingMirror::start(&hls.dir).await),
            false => None,
        };
        let mirrors: Vec<String> = mirror.iter().map(|m| m.base.clone()).collect();
        instance.publish(
            UUID,
            &hls,
            &[tracker.ws_url()],
            &mirrors,
            Some(&tracker.allowed()),
        );
        let daemon = seeder(&work.path().join("seeder"), "listen = []").await;
        let video = daemon.seed(&instance.watch(UUID)).await;
        assert_eq!(video["id"], UUID, "{video}");
        assert_eq!(video["peertube"], instance.watch(UUID), "{video}");
        Seeded {
            work,
            hls,
            instance,
            tracker,
            mirror,
            daemon,
            master,
        }
    }
}

/// A PeerTube 7.0 player (the fork, hls.js 1.5), as PeerTube configures it.
struct ForkPage {
    browser: Chromium,
}

impl ForkPage {
    async fn open(page: &PageServer, manifest: &str, sha256: &str, tracker: &str) -> ForkPage {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("manifest", manifest);
        q.append_pair("sha256", sha256);
        q.append_pair("tracker", tracker);
        q.append_pair("level", "0");
        // With the origin refusing segments, hls.js would give up on a
        // fragment whose error carries no HTTP status (the fork's), and
        // switch level; a player that keeps asking lets P2P answer.
        q.append_pair("retry", "1");
        let url = format!("http://{}/peertube70.html?{}", page.addr, q.finish());
        let browser = Chromium::launch_with_mdns(
            &url,
            &["--autoplay-policy=no-user-gesture-required"],
            "!!(window.ptTest && (window.ptTest.ready || window.ptTest.setupError))",
            false,
        )
        .await;
        let mut page = ForkPage { browser };
        let error = page.browser.eval("window.ptTest.setupError").await;
        assert!(error.is_null(), "the PeerTube 7.0 page failed: {error}");
        page
    }

    async fn state(&mut self) -> Value {
        self.browser.eval("window.ptTest.snapshot()").await
    }

    /// Polls until playback passes `seconds`.
    async fn play_past(&mut self, seconds: f64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.state().await;
            if s["currentTime"].as_f64().unwrap_or(0.0) > seconds {
                return s;
            }
            let fatal: Vec<&Value> = s["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["fatal"] == json!(true))
                .collect();
            assert!(fatal.is_empty(), "the page failed: {s}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "not past {seconds} s: {s}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// PeerTube ≤ 7.0: its players run the p2p-media-loader fork. With every
/// media byte range refused by the origin (and a mirror that lies), the
/// page plays past 20 s from the daemon alone; every segment passes
/// PeerTube's validator; the tracker refuses nothing; and a player pointed
/// at the gateway gets the origin's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peertube_7_0_page_plays_from_the_daemon_alone() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Seeded {
            hls,
            instance,
            tracker,
            mirror,
            daemon,
            master,
            work: _work,
        } = Seeded::start("7.0.1", Audio::Muxed, VIDEO_SECONDS, true).await;
        // The mirror was tried, refused, and never used again.
        assert!(mirror.unwrap().requests() >= 1);
        assert!(daemon.log().contains("mirror sent bytes that do not match"));
        gateway_serves_the_origins_bytes(&daemon, &instance, &hls).await;

        instance.cdn.refuse_media_ranges();
        let page = PageServer::start().await;
        let mut player = ForkPage::open(
            &page,
            &master,
            &instance.sha256_url(UUID, &hls),
            &tracker.ws_url(),
        )
        .await;
        let s = player.play_past(20.0).await;
        assert_eq!(s["bytes"]["http"], 0, "media over HTTP: {s}");
        assert!(s["bytes"]["p2p"].as_u64().unwrap() > 0, "{s}");
        let segments = s["segments"].as_array().unwrap();
        assert!(segments.len() >= 5, "{s}");
        assert!(segments.iter().all(|x| x["method"] == "p2p"), "{s}");
        assert!(
            s["validations"]["failed"].as_array().unwrap().is_empty(),
            "{s}"
        );
        assert!(
            s["validations"]["ok"].as_u64().unwrap() >= segments.len() as u64,
            "{s}"
        );
        tracker_refused_nothing(&tracker);
        let st = daemon.stats().await;
        assert!(st["bytes_uploaded_p2pml"].as_u64().unwrap() > 0, "{st}");
        eprintln!(
            "PeerTube 7.0 page: played {:.1} s, {} segments and {} bytes over P2P, {} validated",
            s["currentTime"],
            segments.len(),
            s["bytes"]["p2p"],
            s["validations"]["ok"]
        );
        player.browser.kill().await;
    })
    .await
    .expect("test timed out");
}

/// PeerTube 7.1 to 8.x: p2p-media-loader 2.2 with audio in its own
/// rendition. The page takes its first 15 s over HTTP (its high-demand
/// window); every segment past it comes from the daemon, and every one
/// passes PeerTube's validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8x_page_takes_every_segment_past_its_high_demand_window_from_the_daemon() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Seeded {
            hls,
            instance,
            tracker,
            daemon,
            master,
            work: _work,
            ..
        } = Seeded::start("8.0.1", Audio::Split, VIDEO_SECONDS, false).await;
        let me = daemon.get_json("/api/v1/node").await["webtorrent_peer_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let page = PageServer::start().await;
        let mut config = PlayerConfig::new(Version::V2_2, &master, &tracker.ws_url());
        // hls-options-builder.ts @ 8.0.1, VOD.
        config.swarm_id = Some(master.clone());
        config.core.insert("highDemandTimeWindow".into(), json!(15));
        config
            .core
            .insert("segmentMemoryStorageLimit".into(), json!(1024));
        config.peertube_sha256 = Some(instance.sha256_url(UUID, &hls));
        config.level = Some(0);
        let total = support::peertube::byte_ranges(&hls.dir.join(&hls.files[0].playlist)).len();
        let mut player = Player::open(&page, &config).await;
        let s = player
            .wait_until("playback", Duration::from_secs(120), |s| {
                s.segments
                    .iter()
                    .filter(|x| x.stream_type == "main")
                    .count()
                    >= total
                    && s.current_time > 5.0
            })
            .await;
        // 4 s segments: the high-demand window holds the first four.
        let window = 15 / 4 + 1;
        let mut from_daemon = 0;
        for seg in s.segments.iter().filter(|x| x.stream_type == "main") {
            if seg.external_id.expect("VOD segments have ids") >= window {
                assert_eq!(seg.source, "p2p", "{seg:?}\n{}", s.raw);
                assert_eq!(seg.peer_id.as_deref(), Some(me.as_str()), "{seg:?}");
                from_daemon += 1;
            }
        }
        assert!(from_daemon >= total as u64 - window, "{}", s.raw);
        let v = &s.raw["validations"];
        assert!(v["mismatch"].as_array().unwrap().is_empty(), "{v}");
        assert!(v["unknown"].as_array().unwrap().is_empty(), "{v}");
        assert!(
            v["ok"].as_u64().unwrap() >= s.segments.len() as u64,
            "{}",
            s.raw
        );
        tracker_refused_nothing(&tracker);
        player.browser.kill().await;
    })
    .await
    .expect("test timed out");
}

/// Two daemons and no trusted publisher: the second trusts the origin's
/// SHA-256 list, so it takes every segment from the first (segments over
/// 1 MiB under the CID the first announced, checked whole), ignores a
/// peer that lies, and the origin sends each segment once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_take_one_copy_from_the_origin() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let root = work.path().join("instance");
        let sizes = [400_000, 1_500_000, 2_600_000, 700_000, 1_200_000];
        let hls = make_synthetic(&root, UUID, &sizes);
        let instance = Instance::start(&root, "8.0.1").await;
        instance.publish(UUID, &hls, &[], &[], None);
        let first = Daemon::start_p2p(&work.path().join("first"), "", "").await;
        first.seed(&instance.watch(UUID)).await;
        let liar = TestPeer::start_with(Misbehaviour::Liar, &[first.tcp_addr().await]).await;
        liar.swarm.join(UUID).await;
        // The deadline bounds a player's wait, which this test does not
        // measure; a loaded machine must not send the segment to the origin.
        let second = Daemon::start_p2p(
            &work.path().join("second"),
            "p2p_timeout_ms = 10000\n",
            &format!(
                "bootstrap = [{:?}, {:?}]",
                first.tcp_addr().await,
                liar.tcp_addr().await
            ),
        )
        .await;
        second.seed(&instance.watch(UUID)).await;
        let path = format!("/{}/{}", static_path(UUID), hls.files[0].fragmented);
        let mut offset = 1000u64;
        for size in sizes {
            let range = format!("{offset}-{}", offset + size as u64 - 1);
            assert_eq!(
                instance.cdn.range_answers(&path, &range),
                1,
                "range {range} came from the origin other than once\n{}",
                second.log()
            );
            offset += size as u64;
        }
        let st = second.stats().await;
        assert!(
            st["bytes_from_p2p"].as_u64().unwrap() >= sizes.iter().sum::<usize>() as u64,
            "{st}"
        );
        gateway_serves_the_origins_bytes(&second, &instance, &hls).await;
    })
    .await
    .expect("test timed out");
}

/// An instance that regenerates the playlist renames it, and every
/// info_hash with it; the daemon reads the video again, announces the new
/// info_hashes, and never again the old, which the tracker now refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerated_playlist_moves_the_daemon_to_the_new_swarms() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Seeded {
            mut hls,
            instance,
            mut tracker,
            daemon,
            work: _work,
            ..
        } = Seeded::start("8.1.3", Audio::Split, 12, false).await;
        wait_for_announces(&tracker, &tracker.allowed()[..2]).await;

        // Regenerated: a new master name, the old one gone, new info_hashes.
        let renamed = "6f7e8d9c-master.m3u8".to_owned();
        std::fs::rename(hls.dir.join(&hls.master), hls.dir.join(&renamed)).unwrap();
        hls.master = renamed;
        let new_master = instance.playlist_url(UUID, &hls);
        tracker
            .republish(&[tracker_video(
                &new_master,
                hls.files.len(),
                true,
                TrackerGeneration::V22,
            )])
            .await;
        let new_hashes = tracker.allowed();
        instance.publish(UUID, &hls, &[tracker.ws_url()], &[], Some(&new_hashes));
        wait_for_announces(&tracker, &new_hashes[..2]).await;
        let videos = daemon.get_json("/api/v1/videos").await;
        assert_eq!(videos[0]["url"], new_master, "{videos}");
        // A few seconds more: nothing on the old info_hashes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(tracker.refused().is_empty(), "{:?}", tracker.refused());
    })
    .await
    .expect("test timed out");
}

/// Waits until the daemon announced each of `hashes` (hex).
async fn wait_for_announces(tracker: &Tracker, hashes: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = tracker.accepted_from(DAEMON);
        if hashes
            .iter()
            .all(|h| seen.iter().any(|a| a["info_hash"] == json!(h)))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not announce {hashes:?}: {:?}",
            tracker.announces()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A private video, a password-protected one, one without a SHA-256 list,
/// a site that is not PeerTube and an instance that does not answer: each
/// is refused with its reason, and the daemon stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_that_cannot_be_seeded_are_refused_with_their_reason() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let root = work.path().join("instance");
        let hls = make_synthetic(&root, UUID, &[1000, 2000]);
        let instance = Instance::start(&root, "8.0.1").await;
        instance.publish(UUID, &hls, &[], &[], None);
        let private = "11111111-2222-3333-4444-555555555555";
        instance.api.set(
            &format!("/api/v1/videos/{private}"),
            401,
            json!({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "Authentication is required"}),
        );
        let password = "22222222-2222-3333-4444-555555555555";
        instance.api.set(
            &format!("/api/v1/videos/{password}"),
            401,
            json!({"status": 401, "code": "video_requires_password", "detail": "Please provide a password to access this password protected video"}),
        );
        let no_list = "33333333-2222-3333-4444-555555555555";
        let mut details = instance_video(&instance, UUID).await;
        details["uuid"] = json!(no_list);
        details["streamingPlaylists"][0]["segmentsSha256Url"] = Value::Null;
        instance
            .api
            .set(&format!("/api/v1/videos/{no_list}"), 200, details);
        let not_peertube = support::cdn::TestCdn::start(&root).await;
        let silent = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        for (url, reason) in [
            (instance.watch(private), "private"),
            (instance.watch(password), "password-protected"),
            (instance.watch(no_list), "no SHA-256 list"),
            (instance.url(&format!("w/p/{UUID}")), "a playlist of videos"),
            (not_peertube.url(&format!("w/{UUID}")), "is not a PeerTube instance"),
            (format!("http://{silent}/w/{UUID}"), "did not answer"),
            (instance.url("c/alice_channel"), "--latest"),
        ] {
            let (status, body) = post_video(&daemon, &url).await;
            assert_eq!(status, 400, "{url}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(reason), "{url}: {error:?} does not say {reason:?}");
        }
        assert!(daemon.healthy().await);
        assert!(
            daemon.get_json("/api/v1/videos").await.as_array().unwrap().is_empty(),
            "a refused video was seeded"
        );
        // The seedable one still seeds.
        let video = daemon.seed(&instance.watch(UUID)).await;
        assert_eq!(video["id"], UUID);
    })
    .await
    .expect("test timed out");
}

/// The instance's API answer for `uuid`, as JSON.
async fn instance_video(instance: &Instance, uuid: &str) -> Value {
    support::json_at(instance.url(&format!("api/v1/videos/{uuid}"))).await
}

/// `swarmseed seed https://instance/c/<channel> --latest 2`: the channel's
/// two latest videos, each seeded under its UUID or reported with the
/// reason it cannot be, from the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_videos_of_a_channel_are_seeded_from_the_command_line() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let root = work.path().join("instance");
        let hls = make_synthetic(&root, UUID, &[3000, 4000]);
        let instance = Instance::start(&root, "8.0.1").await;
        instance.publish(UUID, &hls, &[], &[], None);
        let private = "11111111-2222-3333-4444-555555555555";
        instance.api.set(
            &format!("/api/v1/videos/{private}"),
            403,
            json!({"status": 403, "detail": "Cannot fetch information of private/internal/blocked video"}),
        );
        instance.api.set(
            "/api/v1/video-channels/alice_channel/videos",
            200,
            json!({"total": 2, "data": [{"uuid": UUID}, {"uuid": private}]}),
        );
        let home = work.path().join("d");
        let daemon = Daemon::start(&home, "").await;
        let url = instance.url("c/alice_channel/videos");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(support::daemon::BIN)
                .args(["seed", &url, "--latest", "2", "--config"])
                .arg(home.join("config.toml"))
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("{UUID} seeded: 3 segments")), "{stdout}");
        assert!(stdout.contains("private"), "{stdout}");
        let videos = daemon.get_json("/api/v1/videos").await;
        assert_eq!(videos.as_array().unwrap().len(), 1, "{videos}");
        assert_eq!(videos[0]["state"], "complete");
    })
    .await
    .expect("test timed out");
}

/// Any origin that publishes a SHA-256 list in PeerTube's shape can be
/// trusted by it (`segments_sha256`): bytes the origin sends that differ
/// from the list are refused, never stored, and a player gets an error
/// for that segment, not the bytes; the others play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sha256_list_from_any_origin_keeps_other_bytes_from_players() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        support::media::copy_dir(&support::fixtures().join("byterange"), &origin);
        let ranges = support::peertube::byte_ranges(&origin.join("stream.m3u8"));
        let data = std::fs::read(origin.join("stream.ts")).unwrap();
        let list: serde_json::Map<String, Value> = ranges
            .iter()
            .map(|(off, len)| {
                let bytes = &data[*off as usize..(off + len) as usize];
                (
                    format!("{off}-{}", off + len - 1),
                    json!(support::media::sha256_hex(bytes)),
                )
            })
            .collect();
        std::fs::write(
            origin.join("segments-sha256.json"),
            json!({ "stream.ts": list }).to_string(),
        )
        .unwrap();
        // The origin now serves other bytes in its second segment.
        let mut tampered = data.clone();
        let (off, len) = ranges[1];
        tampered[(off + len / 2) as usize] ^= 0xff;
        std::fs::write(origin.join("stream.ts"), &tampered).unwrap();
        let cdn = support::cdn::TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        let master = cdn.url("master.m3u8");
        let r = client()
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .json(&json!({ "url": master, "segments_sha256": cdn.url("segments-sha256.json") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let failed = loop {
            let videos = daemon.get_json("/api/v1/videos").await;
            let v = videos
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["id"] == id)
                .cloned()
                .unwrap();
            if v["state"] == "failed" {
                break v;
            }
            assert_ne!(v["state"], "complete", "seeded other bytes: {v}");
            assert!(tokio::time::Instant::now() < deadline, "{v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            failed["reason"].as_str().unwrap().contains("SHA-256"),
            "{failed}"
        );
        let playlist = client()
            .get(daemon.hls(&cdn.url("stream.m3u8")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let paths: Vec<&str> = playlist
            .lines()
            .filter(|l| l.starts_with("/hls/seg/"))
            .collect();
        assert_eq!(paths.len(), ranges.len());
        for (i, (path, (off, len))) in paths.iter().zip(&ranges).enumerate() {
            let r = client().get(daemon.url(path)).send().await.unwrap();
            if i == 1 {
                assert_eq!(r.status(), 502, "segment {i}");
                let body: Value = r.json().await.unwrap();
                assert!(
                    body["error"].as_str().unwrap().contains("SHA-256"),
                    "{body}"
                );
            } else {
                assert_eq!(r.status(), 200, "segment {i}");
                let got = r.bytes().await.unwrap();
                assert!(
                    got[..] == data[*off as usize..(off + len) as usize],
                    "segment {i}"
                );
            }
        }
        assert_eq!(daemon.stats().await["segments_stored"], ranges.len() - 1);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
