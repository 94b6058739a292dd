//! The swarm end to end: real `swarmseed` processes on loopback, a real
//! CDN that counts what it sends, and peers that lie or stall.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::peer::{Misbehaviour, TestPeer};
use support::{FIXTURES, TEST_TIMEOUT, client, fixtures, hls};

/// Viewers wait this long for a trusted map when they open a video.
const VIEWER: &str = "p2p_timeout_ms = 5000\n";

fn p2p(bootstrap: &[&str], trusted: &[&str]) -> String {
    let list = |v: &[&str]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "bootstrap = [{}]\ntrusted_publishers = [{}]\n",
        list(bootstrap),
        list(trusted)
    )
}

/// Plays every object of the fixtures through `daemon`, byte-exact.
/// Returns the bytes of each distinct object.
async fn play(daemon: &Daemon, cdn: &TestCdn, names: &[&str]) -> u64 {
    let client = client();
    let gateway = format!("http://{}", daemon.addr);
    let mut seen = HashSet::new();
    let mut distinct = 0;
    for name in names {
        let master = format!("{name}/master.m3u8");
        let list = hls::objects(
            &client,
            &gateway,
            &daemon.hls(&cdn.url(&master)),
            &fixtures().join(&master),
        )
        .await;
        hls::assert_byte_exact(&client, &gateway, &list).await;
        for o in list {
            if seen.insert(o.path) {
                distinct += o.expected.len() as u64;
            }
        }
    }
    distinct
}

async fn stat(daemon: &Daemon, name: &str) -> u64 {
    daemon.stats().await[name].as_u64().unwrap()
}

fn home(work: &Path, name: &str) -> std::path::PathBuf {
    work.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_feeds_three_trusting_viewers_and_the_cdn_sends_one_copy() {
    tokio::time::timeout(TEST_TIMEOUT * 2, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let seeder = Daemon::start_p2p(&home(work.path(), "seeder"), "", "").await;
        for name in FIXTURES {
            seeder.seed(&cdn.url(&format!("{name}/master.m3u8"))).await;
        }
        let one_copy = cdn.media_bytes_sent();
        assert!(one_copy > 1_000_000);
        let (seeder_id, _) = seeder.node().await;
        let seeder_addr = seeder.tcp_addr().await;

        let trusted = p2p(&[&seeder_addr], &[&seeder_id]);
        let mut viewers = Vec::new();
        for i in 0..3 {
            viewers.push(
                Daemon::start_p2p(&home(work.path(), &format!("viewer{i}")), VIEWER, &trusted)
                    .await,
            );
        }
        for v in &viewers {
            let distinct = play(v, &cdn, &FIXTURES).await;
            assert_eq!(
                distinct, one_copy,
                "the fixtures' objects are what the seeder fetched"
            );
        }
        // The CDN's own count: viewers fetched no segment bytes from it.
        assert_eq!(
            cdn.media_bytes_sent(),
            one_copy,
            "segment bytes from the CDN beyond the seeder's copy"
        );
        for v in &viewers {
            let s = v.stats().await;
            assert!(s["bytes_from_p2p"].as_u64().unwrap() >= one_copy, "{s}");
            assert!(s["p2p_ratio"].as_f64().unwrap() > 0.9, "{s}");
            assert!(s["peers_connected"].as_u64().unwrap() >= 1, "{s}");
        }
        assert!(stat(&seeder, "bytes_uploaded").await >= one_copy);
        let map = viewers[0]
            .get_json(&format!(
                "/api/v1/videos/{}/cidmap",
                swarmseed::video::video_id(&cdn.url("ts/master.m3u8").parse().unwrap())
            ))
            .await;
        assert_eq!(
            map["publisher"],
            seeder_id.as_str(),
            "viewers pass the seeder's signed map on"
        );

        // Without a trusted publisher, every segment comes from the CDN.
        let untrusting = Daemon::start_p2p(
            &home(work.path(), "untrusting"),
            VIEWER,
            &p2p(&[&seeder_addr], &[]),
        )
        .await;
        let before = cdn.media_bytes_sent();
        play(&untrusting, &cdn, &FIXTURES).await;
        assert_eq!(
            cdn.media_bytes_sent() - before,
            one_copy,
            "one full copy from the CDN"
        );
        assert_eq!(stat(&untrusting, "bytes_from_p2p").await, 0);
        assert!(untrusting.log().contains("no trusted CID"));
    })
    .await
    .expect("test timed out");
}

/// A media playlist played on its own, with no master before it, is a
/// video of its own: a seeder that seeded that URL feeds the viewer, and
/// the CDN sends no second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_playlist_played_on_its_own_gets_its_segments_from_peers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let seeder = Daemon::start_p2p(&home(work.path(), "seeder"), "", "").await;
        let media = "ts/v0/index.m3u8";
        seeder.seed(&cdn.url(media)).await;
        let one_copy = cdn.media_bytes_sent();
        assert!(one_copy > 100_000);
        let (seeder_id, _) = seeder.node().await;
        let viewer = Daemon::start_p2p(
            &home(work.path(), "viewer"),
            VIEWER,
            &p2p(&[&seeder.tcp_addr().await], &[&seeder_id]),
        )
        .await;

        let client = client();
        let gateway = format!("http://{}", viewer.addr);
        let list = hls::objects(
            &client,
            &gateway,
            &viewer.hls(&cdn.url(media)),
            &fixtures().join(media),
        )
        .await;
        assert_eq!(list.len(), 6);
        hls::assert_byte_exact(&client, &gateway, &list).await;
        assert_eq!(
            cdn.media_bytes_sent(),
            one_copy,
            "segment bytes from the CDN beyond the seeder's copy"
        );
        assert!(stat(&viewer, "bytes_from_p2p").await >= one_copy);
    })
    .await
    .expect("test timed out");
}

/// A seeder hands its map to a viewer, then goes away, leaving only `peer`
/// in the room. Returns the viewer and the seeded fixture's objects.
async fn viewer_left_with(work: &Path, cdn: &TestCdn, peer: &TestPeer) -> Daemon {
    viewer_of(work, cdn, peer, "ts/master.m3u8", "").await
}

/// As `viewer_left_with`, for the video at `master` (a path on `cdn`),
/// `extra` added to the viewer's `[p2p]`.
async fn viewer_of(
    work: &Path,
    cdn: &TestCdn,
    peer: &TestPeer,
    master: &str,
    extra: &str,
) -> Daemon {
    let mut seeder = Daemon::start_p2p(&home(work, "seeder"), "", "").await;
    let master = cdn.url(master);
    seeder.seed(&master).await;
    let (seeder_id, _) = seeder.node().await;
    let video = swarmseed::video::video_id(&master.parse().unwrap());
    peer.swarm.join(&video).await;
    let viewer = Daemon::start_p2p(
        &home(work, "viewer"),
        "p2p_timeout_ms = 2000\n",
        &format!(
            "{}block_timeout_ms = 1000\n{extra}",
            p2p(
                &[&seeder.tcp_addr().await, &peer.tcp_addr().await],
                &[&seeder_id]
            )
        ),
    )
    .await;
    // Opening the video brings the map; then the seeder leaves.
    reqwest::get(viewer.hls(&master)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(viewer.url(&format!("/api/v1/videos/{video}/cidmap")))
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no map:\n{}",
            viewer.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seeder.terminate().success());
    viewer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_is_disconnected_and_its_bytes_never_reach_the_player() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let liar = TestPeer::start(Misbehaviour::Liar).await;
        let viewer = viewer_left_with(work.path(), &cdn, &liar).await;
        let before = cdn.media_bytes_sent();
        let distinct = play(&viewer, &cdn, &["ts"]).await;
        assert_eq!(
            cdn.media_bytes_sent() - before,
            distinct,
            "every segment came from the CDN"
        );
        assert_eq!(
            stat(&viewer, "bytes_from_p2p").await,
            0,
            "nothing from the liar was accepted"
        );
        assert!(viewer.log().contains("blocking peer"), "{}", viewer.log());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while liar.swarm.peers_connected() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the liar is still connected"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(viewer.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// A trusted segment of several blocks goes to the player leaf by leaf, each
/// as soon as it verifies; a leaf that fails its CID ends the response
/// there, nothing is stored, and the next request gets it whole from the
/// CDN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_segment_goes_out_leaf_by_leaf_and_a_lying_leaf_ends_it_unstored() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        support::media::make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        let data = bytes::Bytes::from(std::fs::read(origin.join("big/seg_000.ts")).unwrap());
        let dag = swarmseed::store::unixfs::import(&data);
        // The root and the first leaf as they are, the later leaves a lie.
        let mut blocks = vec![dag.blocks.last().unwrap().clone()];
        blocks.extend(dag.blocks[..dag.blocks.len() - 1].iter().cloned());
        let blocks = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        let peer = TestPeer::start(Misbehaviour::LiesAfter {
            blocks: std::sync::Arc::new(blocks),
            honest: 2,
        })
        .await;
        // One block at a time from a peer, so the lie comes after the truth.
        let viewer = viewer_of(
            work.path(),
            &cdn,
            &peer,
            "big/master.m3u8",
            "per_peer_requests = 1\n",
        )
        .await;
        let playlist = client()
            .get(viewer.hls(&cdn.url("big/index.m3u8")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let path = playlist
            .lines()
            .find(|l| l.starts_with("/hls/seg/"))
            .unwrap()
            .to_owned();
        let mut response = client().get(viewer.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut got = Vec::new();
        let broke = loop {
            match response.chunk().await {
                Ok(Some(c)) => got.extend_from_slice(&c),
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        let leaf = swarmseed::store::unixfs::CHUNK;
        assert_eq!(
            got.len(),
            leaf,
            "the first leaf, and not a byte more (broke: {broke})"
        );
        assert!(got[..] == data[..leaf], "the first leaf is the segment's");
        assert!(
            viewer
                .log()
                .contains("peers broke off after the first leaf"),
            "{}",
            viewer.log()
        );
        let cached = client()
            .get(viewer.url(&path))
            .header("Cache-Control", "only-if-cached")
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 504, "a segment whose leaf lied was stored");
        // The liar is gone: the CDN sends it whole.
        let again = client().get(viewer.url(&path)).send().await.unwrap();
        assert!(again.bytes().await.unwrap() == data);
        assert!(viewer.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_peer_costs_at_most_the_p2p_timeout() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let staller = TestPeer::start(Misbehaviour::Staller).await;
        let viewer = viewer_left_with(work.path(), &cdn, &staller).await;
        let before = cdn.media_bytes_sent();
        let distinct = play(&viewer, &cdn, &["ts"]).await;
        assert_eq!(
            cdn.media_bytes_sent() - before,
            distinct,
            "every segment came from the CDN"
        );
        let log = viewer.log();
        assert!(
            log.contains("peers did not deliver in time") || log.contains("no peer delivered"),
            "{log}"
        );
        assert!(viewer.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_that_share_only_a_dht_node_meet_in_the_room() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let hub = Daemon::start_p2p(&home(work.path(), "hub"), "", "").await;
        let hub_addr = hub.tcp_addr().await;
        let seeder =
            Daemon::start_p2p(&home(work.path(), "seeder"), "", &p2p(&[&hub_addr], &[])).await;
        seeder.seed(&cdn.url("fmp4/master.m3u8")).await;
        let one_copy = cdn.media_bytes_sent();
        let (seeder_id, _) = seeder.node().await;
        let viewer = Daemon::start_p2p(
            &home(work.path(), "viewer"),
            VIEWER,
            &p2p(&[&hub_addr], &[&seeder_id]),
        )
        .await;
        play(&viewer, &cdn, &["fmp4"]).await;
        assert_eq!(
            cdn.media_bytes_sent(),
            one_copy,
            "the viewer found the seeder and took every segment from it"
        );
        assert!(stat(&viewer, "bytes_from_p2p").await >= one_copy);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_certhash_and_seeded_videos_survive_a_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let h = home(work.path(), "node");
        let mut node = Daemon::start_p2p(&h, "", "").await;
        let seeded = node.seed(&cdn.url("byterange/master.m3u8")).await;
        let (id, addrs) = node.node().await;
        let certhash = |addrs: &[String]| {
            let a = addrs
                .iter()
                .find(|a| a.contains("/webrtc-direct/"))
                .expect("a webrtc-direct address")
                .clone();
            a[a.find("/certhash/").unwrap()..a.find("/p2p/").unwrap()].to_owned()
        };
        let hash = certhash(&addrs);
        let key = std::fs::metadata(h.join("data/identity.key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
            0o600
        );
        assert!(node.terminate().success());
        cdn.stop().await;

        let node = Daemon::start_p2p(&h, "", "").await;
        let (id2, addrs2) = node.node().await;
        assert_eq!(id, id2, "same peer id");
        assert_eq!(hash, certhash(&addrs2), "same certhash");
        let again = node.wait_seeded(seeded["id"].as_str().unwrap()).await;
        assert_eq!(
            again["segments_stored"], seeded["segments_total"],
            "seeded again from the store, CDN down"
        );
        assert_eq!(stat(&node, "bytes_from_cdn").await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_identity_key_is_refused() {
    let work = support::workdir();
    let h = home(work.path(), "node");
    let mut node = Daemon::start_p2p(&h, "", "").await;
    assert!(node.terminate().success());
    let key = h.join("data/identity.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(support::daemon::BIN)
        .args(["run", "--config"])
        .arg(h.join("config.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_seeder_the_first_viewer_publishes_what_it_holds() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let first = Daemon::start_p2p(&home(work.path(), "first"), "", "").await;
        let one_copy = play(&first, &cdn, &["ts"]).await;
        assert_eq!(cdn.media_bytes_sent(), one_copy);
        let (first_id, _) = first.node().await;
        // The first viewer announces a map of what it holds, signed with its key.
        let video = swarmseed::video::video_id(&cdn.url("ts/master.m3u8").parse().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = reqwest::get(first.url(&format!("/api/v1/videos/{video}/cidmap")))
                .await
                .unwrap();
            if r.status() == 200 {
                let map: serde_json::Value = r.json().await.unwrap();
                let n: usize = map["renditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["segments"].as_array().unwrap().len())
                    .sum();
                if n == 12 {
                    assert_eq!(map["publisher"], first_id.as_str());
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no holdings map:\n{}",
                first.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let second = Daemon::start_p2p(
            &home(work.path(), "second"),
            VIEWER,
            &p2p(&[&first.tcp_addr().await], &[&first_id]),
        )
        .await;
        play(&second, &cdn, &["ts"]).await;
        assert_eq!(
            cdn.media_bytes_sent(),
            one_copy,
            "the second viewer took every segment from the first"
        );
        assert!(stat(&first, "bytes_uploaded").await >= one_copy);
    })
    .await
    .expect("test timed out");
}
