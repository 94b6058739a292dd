//! The p2p-media-loader harness on its own: two unmodified players (stock
//! hls.js + p2p-media-loader from npm, in two headless Chromiums) and the
//! npm WebTorrent tracker, no daemon. Player B, started after A, gets
//! segments from A over WebRTC, and the CDN's own counts agree with what
//! the pages report as HTTP — the accounting the seeder tests rely on.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::cdn::TestCdn;
use support::p2pml::{NodeTracker, PageServer, Player, PlayerConfig, PlayerState, Version};
use support::{TEST_TIMEOUT, p2pml};

/// Long enough that most of it lies beyond p2p-media-loader's 15 s
/// high-demand window, which it fetches over HTTP; the 12 s `ts` fixture
/// would all come from the CDN.
const VIDEO_SECONDS: u32 = 40;
/// Both players must play at least this far.
const PLAYED: f64 = 10.0;

/// Each test runs two browsers; one test at a time keeps the two cores
/// free enough for playback and WebRTC.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_2_3_share_segments() {
    two_players(Version::V2_3, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_2_2_share_segments() {
    two_players(Version::V2_2, false).await;
}

/// As Chromium runs on users' machines: host candidates are `.local` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_share_segments_with_mdns_candidates() {
    two_players(Version::V2_3, true).await;
}

async fn two_players(version: Version, mdns: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let t0 = Instant::now();
        let work = support::workdir();
        let origin = work.path().join("origin");
        p2pml::make_ts_video(&origin.join("long"), VIDEO_SECONDS);
        let cdn = TestCdn::start(&origin).await;
        // 10 s: pages re-announce every 2 s, so B's offers reach A soon.
        let tracker = NodeTracker::start(Duration::from_secs(10)).await;
        let page = PageServer::start().await;
        let master = cdn.url("long/master.m3u8");
        // Level 0 (hls.js sorts by bitrate: the 160x90 one) for both, so
        // ABR cannot put them in different swarms.
        let level = 0;
        let level_segments = std::fs::read_to_string(origin.join("long/v1/index.m3u8"))
            .unwrap()
            .matches("#EXTINF")
            .count();
        let mut config = PlayerConfig::new(version, &master, &tracker.ws_url());
        config.level = Some(level);
        config.hide_ips_with_mdns = mdns;
        eprintln!("setup {:?}", t0.elapsed());

        let mut a = Player::open(&page, &config).await;
        a.wait_until("A plays", Duration::from_secs(60), |s| s.current_time > 2.0)
            .await;
        // Every id announced so far is A's (one per stream it joined).
        let a_ids: BTreeSet<String> = tracker.peer_ids().into_iter().collect();
        assert!(!a_ids.is_empty(), "A never announced: {:?}", tracker.messages());
        eprintln!("A playing {:?}, ids {a_ids:?}", t0.elapsed());

        let mut b = Player::open(&page, &config).await;
        let b_opened = t0.elapsed();
        let deadline = Instant::now() + Duration::from_secs(90);
        let (sa, sb) = loop {
            let sa = a.state().await;
            let sb = b.state().await;
            for (name, s) in [("A", &sa), ("B", &sb)] {
                assert!(s.fatal_errors().is_empty(), "{name} failed: {}", s.raw);
            }
            if sa.current_time > PLAYED
                && sb.current_time > PLAYED
                && sb.p2p_segments().next().is_some()
            {
                break (sa, sb);
            }
            assert!(
                Instant::now() < deadline,
                "no P2P playback:\nA {}\nB {}",
                sa.raw,
                sb.raw
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        eprintln!(
            "both past {PLAYED} s {:?} (B opened at {b_opened:?}): A {} http / {} p2p segments, B {} http / {} p2p",
            t0.elapsed(),
            sa.http_segments().count(),
            sa.p2p_segments().count(),
            sb.http_segments().count(),
            sb.p2p_segments().count(),
        );

        // B's P2P segments came from A: from one of the ids A announced,
        // a peer B had connected to, with data counted under that peer.
        for s in sb.p2p_segments() {
            let from = s.peer_id.as_deref().expect("a P2P segment names its peer");
            assert!(a_ids.contains(from), "{s:?} from {from}, not A {a_ids:?}");
            assert!(sb.bytes_from_peer.get(from).copied().unwrap_or(0) > 0, "{}", sb.raw);
            assert!(
                sb.raw["peers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["peerId"] == from),
                "{}",
                sb.raw
            );
            assert!(s.external_id.is_some(), "{s:?}");
        }
        assert!(sb.bytes_from_p2p > 0, "{}", sb.raw);
        assert!(sa.bytes_uploaded > 0, "{}", sa.raw);

        // The accounting: once both hold every segment of the level and
        // nothing is in flight, each HTTP attempt the pages started is one
        // request at the CDN and the bytes they counted are the bytes it sent.
        let deadline = Instant::now() + Duration::from_secs(60);
        let (sa, sb, requests, bytes) = loop {
            let sa = a.state().await;
            let sb = b.state().await;
            let requests = cdn_segment_requests(&cdn, &origin);
            let bytes = cdn.media_bytes_sent();
            let complete = |s: &PlayerState| {
                s.segments
                    .iter()
                    .filter_map(|s| s.external_id)
                    .collect::<BTreeSet<_>>()
                    .len()
                    == level_segments
            };
            if complete(&sa)
                && complete(&sb)
                && requests == sa.http_requests + sb.http_requests
                && bytes == sa.bytes_from_http + sb.bytes_from_http
            {
                break (sa, sb, requests, bytes);
            }
            assert!(
                Instant::now() < deadline,
                "the CDN saw {requests} segment requests and sent {bytes} bytes; \
                 the pages report {} + {} requests and {} + {} bytes\nA {}\nB {}",
                sa.http_requests,
                sb.http_requests,
                sa.bytes_from_http,
                sb.bytes_from_http,
                sa.raw,
                sb.raw
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for (name, s) in [("A", &sa), ("B", &sb)] {
            assert_eq!(s.level, Some(level as i64), "{name}: {}", s.raw);
            assert!(
                s.segments.iter().all(|x| x.url.contains("/long/v1/")),
                "{name}: {}",
                s.raw
            );
            assert!(s.tracker_errors.is_empty(), "{name}: {}", s.raw);
            // No HTTP load failed: the CDN answered every request in full.
            let http_errors: Vec<_> = s
                .errors
                .iter()
                .filter(|e| e["kind"] == "segment" && e["downloadSource"] == "http")
                .collect();
            assert!(http_errors.is_empty(), "{name}: {http_errors:?}");
            // A P2P load that timed out on a busy machine is retried from
            // the bytes it has, maybe over HTTP; without any, each segment
            // is on one side of the ledger with all its bytes.
            if s.errors.iter().all(|e| e["kind"] != "segment") && s.aborts.is_empty() {
                let http: u64 = s.http_segments().map(|x| x.bytes).sum();
                assert_eq!(http, s.bytes_from_http, "{name}: {}", s.raw);
                let p2p: u64 = s.p2p_segments().map(|x| x.bytes).sum();
                assert_eq!(p2p, s.bytes_from_p2p, "{name}: {}", s.raw);
            } else {
                eprintln!("{name}: errors {:?} aborts {:?}", s.errors, s.aborts);
            }
        }
        eprintln!(
            "accounting agrees {:?}: CDN {requests} segment requests / {bytes} bytes; \
             A {} B {} bytes over P2P",
            t0.elapsed(),
            sa.bytes_from_p2p,
            sb.bytes_from_p2p
        );

        // What Chromium put in its SDP: with mDNS hiding (its default) every
        // host candidate is a `<uuid>.local` name and the connection line
        // says 0.0.0.0; without it, real addresses. They connected both ways.
        let sdps = tracker.sdps();
        assert!(sdps.iter().any(|(_, kind, _)| kind == "answer"), "{sdps:?}");
        for (from, kind, sdp) in &sdps {
            let candidates: Vec<&str> = sdp
                .lines()
                .filter(|l| l.starts_with("a=candidate:"))
                .collect();
            assert!(!candidates.is_empty(), "{kind} from {from}:\n{sdp}");
            for c in &candidates {
                let address = c.split(' ').nth(4).unwrap_or("");
                assert_eq!(address.ends_with(".local"), mdns, "{kind} from {from}:\n{sdp}");
            }
            assert_eq!(sdp.contains("c=IN IP4 0.0.0.0"), mdns, "{kind} from {from}:\n{sdp}");
        }
        let (from, kind, sdp) = &sdps[0];
        eprintln!("an {kind} from {from} (mDNS hiding {mdns}):\n{sdp}");
    })
    .await
    .expect("test timed out");
}

/// Segment requests the CDN answered: every path but playlists.
fn cdn_segment_requests(cdn: &TestCdn, origin: &std::path::Path) -> u64 {
    let mut n = 0;
    for v in ["v0", "v1"] {
        for entry in std::fs::read_dir(origin.join("long").join(v)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".ts") {
                n += cdn.requests_for(&format!("/long/{v}/{name}"));
            }
        }
    }
    n
}
