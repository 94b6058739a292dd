//! Bad input to the daemon's browser swarms, from a hand-made
//! p2p-media-loader peer in headless Chromium and from raw WebSockets:
//! malformed tracker JSON, fields of the wrong length, oversized messages,
//! bad SDP, unknown and malformed commands, a split command with no end, a
//! flood of offers past the caps, a browser that stops reading and one that
//! vanishes mid-transfer. After each the daemon is up and serves a
//! well-behaved peer every byte of a segment, checked against the origin.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bridge::p2pml::command::{Command, Message, Reassembler};
use bridge::p2pml::stream::{self, Generation};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use support::browser::Chromium;
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::make_video;
use support::p2pml_raw::{Answer, RawPage, RawPeer, peer_id};
use support::{TEST_TIMEOUT, workdir};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Segments large enough that one outlasts the send buffers.
const SEGMENT: usize = 4 << 20;
const SEGMENTS: usize = 3;
const PER_SWARM: u32 = 4;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Setup {
    _work: tempfile::TempDir,
    _cdn: TestCdn,
    origin: std::path::PathBuf,
    daemon: Daemon,
    /// The stream's 2.3 info_hash, as its 20 characters.
    info_hash: String,
    tracker: String,
    page: RawPage,
}

async fn setup() -> Setup {
    setup_with("").await
}

/// As `setup`, with `p2p` added to the daemon's `[p2p]` table.
async fn setup_with(p2p: &str) -> Setup {
    let work = workdir();
    let origin = work.path().join("origin");
    make_video(&origin.join("big"), SEGMENTS, SEGMENT);
    let cdn = TestCdn::start(&origin).await;
    let p2p = format!(
        "listen = []\n{p2p}\n[webtorrent]\nlisten = \"127.0.0.1:0\"\nmax_peers = 8\nmax_peers_per_swarm = {PER_SWARM}\n"
    );
    let daemon = Daemon::start_full(&work.path().join("seeder"), "", &p2p, &[]).await;
    let master = cdn.url("big/master.m3u8");
    daemon.seed(&master).await;
    let url = url::Url::parse(&master).unwrap();
    let body = std::fs::read(origin.join("big/master.m3u8")).unwrap();
    let streams = stream::streams(&stream::swarm_base(&url), &url, &body).unwrap();
    let info_hash = String::from_utf8(streams[0].info_hash(Generation::V23).to_vec()).unwrap();
    let tracker = format!("ws://{}/announce", daemon.addr);
    Setup {
        _work: work,
        _cdn: cdn,
        origin,
        daemon,
        info_hash,
        tracker,
        page: RawPage::start().await,
    }
}

fn origin_segment(origin: &Path, id: u64) -> Vec<u8> {
    std::fs::read(origin.join(format!("big/seg_{id:03}.ts"))).unwrap()
}

/// The daemon is up and serves a good peer a whole, exact segment.
async fn still_serving(s: &Setup, browser: &mut Chromium, good: &mut RawPeer, request_id: u64) {
    assert!(s.daemon.healthy().await, "daemon down:\n{}", s.daemon.log());
    let got = good.fetch(browser, 1, request_id).await;
    assert!(got == origin_segment(&s.origin, 1), "wrong bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tracker_messages_and_sdp_and_offer_floods_leave_the_daemon_serving() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut s = setup().await;
        let mut browser = Chromium::launch(&s.page.url()).await;
        let mut good = RawPeer::connect(&mut browser, &s.tracker, &s.info_hash, &peer_id("good")).await;
        // The daemon announces what it holds on open and on every change,
        // the whole set each time: soon, all of it.
        let all: Vec<u64> = (0..SEGMENTS as u64).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut r = Reassembler::new();
            let last = good
                .messages(&mut browser)
                .await
                .iter()
                .filter_map(|m| match r.push(m) {
                    Ok(Message::Command(Command::Announcement { loaded, .. })) => Some(loaded),
                    _ => None,
                })
                .last();
            if last.as_ref() == Some(&all) {
                break;
            }
            assert!(Instant::now() < deadline, "last announcement {last:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        still_serving(&s, &mut browser, &mut good, 1).await;

        // Malformed JSON, fields of the wrong length, non-latin1, unknown
        // actions: each answered with a failure, the socket kept.
        let (mut ws, _) = tokio_tungstenite::connect_async(s.tracker.as_str())
            .await
            .unwrap();
        let ih = &s.info_hash;
        for bad in [
            "{".to_owned(),
            "[]".to_owned(),
            "null".to_owned(),
            json!({"action": "announce", "info_hash": "short", "peer_id": peer_id("x")}).to_string(),
            json!({"action": "announce", "info_hash": ih, "peer_id": "twenty-one-characters"}).to_string(),
            json!({"action": "announce", "info_hash": ih, "peer_id": "€€€€€€€€€€€€€€€€€€€€"}).to_string(),
            json!({"action": "dance", "info_hash": ih, "peer_id": peer_id("x")}).to_string(),
            json!({"action": "announce", "info_hash": ih, "peer_id": peer_id("x"), "offers": "lots"}).to_string(),
        ] {
            ws.send(WsMessage::text(bad.clone())).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap_or_else(|_| panic!("no reply to {bad}"))
                .unwrap()
                .unwrap();
            let text = reply.into_text().unwrap();
            assert!(text.contains("failure reason"), "{bad} -> {text}");
        }
        // Bad SDP, in offers relayed to the daemon: never answered.
        let real = r#"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"#;
        let offers: Vec<_> = ["v=0 not sdp", "", real, &"x".repeat(4000)]
            .iter()
            .enumerate()
            .map(|(i, sdp)| {
                json!({"offer": {"type": "offer", "sdp": sdp}, "offer_id": format!("{:-<20}", i)})
            })
            .collect();
        for (i, offer) in offers.into_iter().enumerate() {
            let announce = json!({"action": "announce", "info_hash": ih,
                "peer_id": peer_id(&format!("sdp{i}")), "numwant": 1, "offers": [offer]});
            let (mut w, _) = tokio_tungstenite::connect_async(s.tracker.as_str())
                .await
                .unwrap();
            w.send(WsMessage::text(announce.to_string())).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout_at(deadline.into(), w.next()).await
            {
                let text = m.into_text().unwrap_or_default();
                assert!(!text.contains("\"answer\""), "bad SDP answered: {text}");
            }
        }
        // An oversized message closes only the socket that sent it.
        ws.send(WsMessage::text("x".repeat(1 << 20))).await.ok();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    return true;
                }
            }
            true
        })
        .await;
        assert_eq!(closed, Ok(true), "the oversized socket stayed open");
        still_serving(&s, &mut browser, &mut good, 2).await;

        // A flood of real offers from browsers past the per-swarm cap: the
        // daemon takes what the cap allows and goes on serving the others.
        let mut flood = Chromium::launch(&s.page.url()).await;
        let mut joined = 0;
        for i in 0..(PER_SWARM + 4) {
            let r = flood
                .eval(&format!(
                    "rawPeers.connect({}, {}, {}, 4000).then(() => true, () => false)",
                    json!(s.tracker),
                    json!(s.info_hash),
                    json!(peer_id(&format!("flood{i}")))
                ))
                .await;
            if r == json!(true) {
                joined += 1;
            }
        }
        // The good peer holds one of the swarm's places.
        assert_eq!(joined, PER_SWARM - 1, "the cap did not hold");
        let st = s.daemon.stats().await;
        assert_eq!(st["browsers_connected"], json!(PER_SWARM), "{st}");
        still_serving(&s, &mut browser, &mut good, 3).await;
        s.daemon.terminate();
        drop(s.page);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_commands_are_dropped_and_the_peer_still_served() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let s = setup().await;
        let mut browser = Chromium::launch(&s.page.url()).await;
        let mut peer =
            RawPeer::connect(&mut browser, &s.tracker, &s.info_hash, &peer_id("odd")).await;
        let skip = peer.request(&mut browser, 99, 7, 0).await;
        assert_eq!(
            peer.answer(&mut browser, skip, 99, 7).await,
            Answer::Absent,
            "an id the daemon does not hold"
        );
        for bad in [
            b"cstr\x09cend".to_vec(),                         // unknown command
            b"cstr\x01\x69\x7f\x00cend".to_vec(),             // unknown value type
            b"cstr\x01\x69\x01cend".to_vec(),                 // truncated int
            b"cstr\x01\x7a\x01\x00\x72\x01\x00cend".to_vec(), // unknown field
            b"cstr\x01\x72\x01\x05cend".to_vec(),             // no segment id
            b"cstrcend".to_vec(),                             // empty
            b"dstr\x01\x69\x01\x00cend".to_vec(),             // continuation without a start
            b"cstr\x01\x69\x01\x00\x72\x01\x05dend".to_vec(), // a start that never ends
            vec![0xab; 40_000],                               // data nobody asked for
        ] {
            peer.send(&mut browser, &bad).await;
        }
        // A request after all that is served, whole and exact.
        let got = peer.fetch(&mut browser, 2, 11).await;
        assert!(got == origin_segment(&s.origin, 2), "wrong bytes");
        // A resumed request (`b`) gets the rest of the segment.
        let skip = peer.request(&mut browser, 0, 12, 1_000_000).await;
        let tail = peer.answer(&mut browser, skip, 0, 12).await;
        assert!(
            tail == Answer::Bytes(origin_segment(&s.origin, 0)[1_000_000..].to_vec()),
            "wrong tail"
        );
        assert!(s.daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// Sends SIGSTOP or SIGKILL to a browser's whole process group.
fn signal(browser: &Chromium, sig: i32) {
    unsafe { libc::kill(-(browser.pid() as i32), sig) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_stops_reading_and_one_that_vanishes_are_dropped() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let s = setup().await;
        let mut browser = Chromium::launch(&s.page.url()).await;
        let mut good =
            RawPeer::connect(&mut browser, &s.tracker, &s.info_hash, &peer_id("good")).await;
        let mut events = s.daemon.events().await;

        // Requests 4 MiB, then stops reading: its process is frozen.
        let mut frozen = Chromium::launch(&s.page.url()).await;
        let mut stalled =
            RawPeer::connect(&mut frozen, &s.tracker, &s.info_hash, &peer_id("frozen")).await;
        stalled.request(&mut frozen, 0, 1, 0).await;
        signal(&frozen, libc::SIGSTOP);
        let reason = events
            .browser_left(&peer_id("frozen"), Duration::from_secs(90))
            .await;
        assert!(
            ["stopped reading", "closed"].contains(&reason.as_str()),
            "{reason}"
        );
        still_serving(&s, &mut browser, &mut good, 5).await;
        signal(&frozen, libc::SIGKILL);

        // Vanishes mid-transfer: killed with bytes still coming.
        let mut doomed = Chromium::launch(&s.page.url()).await;
        let mut gone =
            RawPeer::connect(&mut doomed, &s.tracker, &s.info_hash, &peer_id("gone")).await;
        gone.request(&mut doomed, 0, 1, 0).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while gone.bytes(&mut doomed).await == 0 {
            assert!(Instant::now() < deadline, "no bytes arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        doomed.kill().await;
        events
            .browser_left(&peer_id("gone"), Duration::from_secs(90))
            .await;
        still_serving(&s, &mut browser, &mut good, 6).await;
        let st = s.daemon.stats().await;
        assert_eq!(st["browsers_connected"], json!(1), "{st}");
    })
    .await
    .expect("test timed out");
}

/// Browsers share the node's upload limit with every other peer: under
/// `p2p.upload_bytes_per_sec` a 4 MiB segment cannot go out faster than
/// the limit lets it (the first chunk goes at once, each later one waits
/// its turn on the shared clock). A lower bound, so a slow machine cannot
/// break it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_to_browsers_keep_to_the_upload_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        const RATE: u64 = 2 << 20;
        let s = setup_with(&format!("upload_bytes_per_sec = {RATE}")).await;
        let mut browser = Chromium::launch(&s.page.url()).await;
        let mut peer =
            RawPeer::connect(&mut browser, &s.tracker, &s.info_hash, &peer_id("paced")).await;
        let started = Instant::now();
        let got = peer.fetch(&mut browser, 1, 1).await;
        let took = started.elapsed();
        assert!(got == origin_segment(&s.origin, 1), "wrong bytes");
        let least = Duration::from_secs_f64((SEGMENT - 65535) as f64 / RATE as f64);
        assert!(
            took >= least,
            "{SEGMENT} bytes in {took:?} under {RATE} B/s"
        );
    })
    .await
    .expect("test timed out");
}
