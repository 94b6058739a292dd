//! Super-seeding from the command line and the config, the token that
//! guards it, and CID maps published by the origin itself.

mod support;

use std::process::Command;

use support::cdn::TestCdn;
use support::daemon::{BIN, Daemon};
use support::{TEST_TIMEOUT, client, fixtures, hls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_command_follows_the_job_to_the_end() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(work.path(), "", "").await;
        let url = cdn.url("audio/master.m3u8");
        let out = tokio::task::spawn_blocking({
            let config = work.path().join("config.toml");
            let url = url.clone();
            move || {
                Command::new(BIN)
                    .args(["seed", &url, "--id", "audio-demo", "--config"])
                    .arg(config)
                    .output()
            }
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
        assert!(
            stdout.contains("audio-demo seeded: 12 segments"),
            "{stdout}"
        );
        let videos: serde_json::Value = daemon.get_json("/api/v1/videos").await;
        let v = &videos[0];
        assert_eq!(
            (v["id"].as_str(), v["url"].as_str(), v["state"].as_str()),
            (Some("audio-demo"), Some(url.as_str()), Some("complete"))
        );
        assert_eq!(v["segments_total"], 12);
        assert_eq!(v["segments_stored"], 12);
        let map: serde_json::Value = daemon.get_json("/api/v1/videos/audio-demo/cidmap").await;
        assert_eq!(
            map["renditions"].as_array().unwrap().len(),
            2,
            "audio and video renditions"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_requests_need_the_token() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start_p2p(work.path(), "", "").await;
        let token = std::fs::metadata(work.path().join("data/api.token")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&token.permissions()) & 0o777,
            0o600
        );
        let c = client();
        let body = serde_json::json!({ "url": "http://127.0.0.1:9/master.m3u8" });
        let r = c
            .post(daemon.url("/api/v1/videos"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth("not-the-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let bad = serde_json::json!({ "url": "file:///etc/passwd" });
        let r = c
            .post(daemon.url("/api/v1/videos"))
            .bearer_auth(daemon.token())
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            reqwest::get(daemon.url("/api/v1/videos"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "[]"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_in_the_config_are_seeded_at_start() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let config = format!(
            "[[videos]]\nurl = {:?}\nid = \"from-config\"\n",
            cdn.url("fmp4/master.m3u8")
        );
        // [[videos]] is a top-level table, so it goes after [p2p].
        let daemon =
            Daemon::start_full(work.path(), "", &format!("listen = []\n{config}"), &[]).await;
        let v = daemon.wait_seeded("from-config").await;
        assert_eq!(
            v["segments_total"], 14,
            "two renditions of six segments and an init section each"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cid_map_served_by_the_origin_lets_viewers_use_peers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        // The origin: the ts fixture, its CID map, and a master naming the map.
        let origin = work.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        let status = Command::new("cp").arg("-r").arg(fixtures().join("ts")).arg(&origin).status().unwrap();
        assert!(status.success());
        let cdn = TestCdn::start(&origin).await;
        let map_file = origin.join("ts/cidmap.json");
        let out = tokio::task::spawn_blocking({
            let (url, map_file) = (cdn.url("ts/master.m3u8"), map_file.clone());
            move || Command::new(BIN).args(["cidmap", &url, "--out"]).arg(map_file).output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let master = std::fs::read_to_string(origin.join("ts/master.m3u8")).unwrap();
        let master = master.replacen(
            "#EXT-X-VERSION:3\n",
            "#EXT-X-VERSION:3\n#EXT-X-SESSION-DATA:DATA-ID=\"io.swarmseed.cidmap\",URI=\"cidmap.json\"\n",
            1,
        );
        std::fs::write(origin.join("ts/with-map.m3u8"), master).unwrap();
        let url = cdn.url("ts/with-map.m3u8");

        // A peer holds the video; the viewer trusts no publisher, only the origin's map.
        let holder = Daemon::start_p2p(&work.path().join("holder"), "", "").await;
        holder.seed(&url).await;
        let before = cdn.media_bytes_sent();
        let viewer = Daemon::start_p2p(
            &work.path().join("viewer"),
            "",
            &format!("bootstrap = [{:?}]\n", holder.tcp_addr().await),
        )
        .await;
        let c = client();
        let gateway = format!("http://{}", viewer.addr);
        let list = hls::objects(&c, &gateway, &viewer.hls(&url), &origin.join("ts/with-map.m3u8")).await;
        hls::assert_byte_exact(&c, &gateway, &list).await;
        assert_eq!(cdn.media_bytes_sent(), before, "every segment came from the peer");
        assert!(viewer.stats().await["bytes_from_p2p"].as_u64().unwrap() > 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_named_by_cid_come_from_peers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        std::fs::create_dir_all(origin.join("ipfs")).unwrap();
        std::fs::create_dir_all(origin.join("v")).unwrap();
        // The origin also serves each segment under /ipfs/CID, as an IPFS HTTP gateway would.
        let (mut by_path, mut by_scheme) = (String::new(), String::new());
        for i in 0..6 {
            let file = fixtures().join(format!("ts/v0/seg_{i:03}.ts"));
            let out = Command::new(BIN).arg("cid").arg(&file).output().unwrap();
            let cid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            std::fs::copy(&file, origin.join("ipfs").join(&cid)).unwrap();
            by_path.push_str(&format!("#EXTINF:2,\n../ipfs/{cid}\n"));
            by_scheme.push_str(&format!("#EXTINF:2,\nipfs://{cid}\n"));
        }
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n";
        std::fs::write(
            origin.join("v/by-path.m3u8"),
            format!("{head}{by_path}#EXT-X-ENDLIST\n"),
        )
        .unwrap();
        std::fs::write(
            origin.join("v/by-scheme.m3u8"),
            format!("{head}{by_scheme}#EXT-X-ENDLIST\n"),
        )
        .unwrap();
        let cdn = TestCdn::start(&origin).await;
        let fixtures_cdn = TestCdn::start(&fixtures()).await;

        let holder = Daemon::start_p2p(&work.path().join("holder"), "", "").await;
        holder.seed(&fixtures_cdn.url("ts/master.m3u8")).await;
        let viewer = Daemon::start_p2p(
            &work.path().join("viewer"),
            "",
            &format!("bootstrap = [{:?}]\n", holder.tcp_addr().await),
        )
        .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while viewer.stats().await["peers_connected"] == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "viewer never connected"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let c = client();
        for name in ["by-path", "by-scheme"] {
            let text = c
                .get(viewer.hls(&cdn.url(&format!("v/{name}.m3u8"))))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let paths: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("/hls/seg/"))
                .collect();
            assert_eq!(paths.len(), 6, "{text}");
            for (i, path) in paths.iter().enumerate() {
                let got = c.get(viewer.url(path)).send().await.unwrap();
                assert_eq!(got.status(), 200, "{name} {i}");
                let want = std::fs::read(fixtures().join(format!("ts/v0/seg_{i:03}.ts"))).unwrap();
                assert!(got.bytes().await.unwrap() == want, "{name} segment {i}");
            }
        }
        assert_eq!(
            cdn.media_bytes_sent(),
            0,
            "every CID-named segment came from the peer"
        );
    })
    .await
    .expect("test timed out");
}
