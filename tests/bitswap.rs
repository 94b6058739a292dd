//! IPFS peers fetch from the daemon over Bitswap 1.2.0: Helia from npm
//! (`tests/helia`), with TCP on loopback and no other source, gets every
//! segment of two seeded videos by CID (raw blocks and a dag-pb tree),
//! byte-exact, and the daemon counts the upload. A peer that sends
//! oversized or malformed messages loses its stream, not the daemon, and
//! wants for blocks the daemon lacks get "don't have". The other way, the
//! daemon fetches by CID over Bitswap from Helia, which added the files,
//! and blocks an IPFS peer that sends bytes it did not ask for.

mod support;

use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{make_video, seed, sha256_hex, ts_and_big_origin};
use support::peer::{Misbehaviour, TestPeer};
use support::{TEST_TIMEOUT, car, fixtures, npm};
use swarmseed::swarm::bitswap::PROTOCOL;
use swarmseed::swarm::bitswap_pb::{
    self as pb, BlockPresence, DONT_HAVE, Entry, HAVE, WANT_BLOCK, WANT_HAVE, Wantlist,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_fetches_segments_over_bitswap() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = ts_and_big_origin(work.path());
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start_p2p(&work.path().join("daemon"), "", "").await;
        let mut segments = seed(&daemon, &cdn, &origin, "ts").await;
        segments.extend(seed(&daemon, &cdn, &origin, "big").await);
        assert!(segments.iter().any(|s| s.cid.starts_with("bafybei")));
        let before = daemon.stats().await["bytes_uploaded"].as_u64().unwrap();

        let args =
            std::iter::once(daemon.tcp_addr().await).chain(segments.iter().map(|s| s.cid.clone()));
        let got = npm::helia_script("fetch.mjs", "helia", args, || daemon.log()).await;
        // identify over TCP, read by js-libp2p, lists what the daemon serves.
        let protocols = got["protocols"].as_array().expect("identify answered");
        for p in [
            "/swarmseed/blocks/1.0.0",
            "/swarmseed/receipts/1.0.0",
            "/ipfs/bitswap/1.2.0",
        ] {
            assert!(
                protocols.iter().any(|x| x == p),
                "identify lists {protocols:?}, not {p}"
            );
        }
        let files = got["files"].as_array().unwrap();
        assert_eq!(files.len(), segments.len());
        for (s, f) in segments.iter().zip(files) {
            let want = std::fs::read(&s.file).unwrap();
            assert_eq!(f["cid"], s.cid.as_str());
            assert_eq!(f["len"].as_u64().unwrap(), want.len() as u64, "{}", s.cid);
            assert_eq!(f["sha256"], sha256_hex(&want).as_str(), "{}", s.cid);
        }
        // Every byte came from the daemon: Helia had no other source.
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let uploaded = daemon.stats().await["bytes_uploaded"].as_u64().unwrap() - before;
        assert!(uploaded >= total, "uploaded {uploaded} of {total}");
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_wantlists_lose_their_stream_and_good_wants_are_answered() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(&work.path().join("daemon"), "", "").await;
        let segment = seed(&daemon, &cdn, &fixtures(), "ts").await.remove(0);
        let held: cid::Cid = segment.cid.parse().unwrap();
        let missing = swarmseed::store::unixfs::cid_of_reader(&b"no one has this"[..]).unwrap();

        let peer = TestPeer::start_with(Misbehaviour::Client, &[daemon.tcp_addr().await]).await;
        let daemon_id: libp2p::PeerId = daemon.node().await.0.parse().unwrap();
        let mut answers = peer.swarm.accept(PROTOCOL).unwrap();
        let mut control = peer.swarm.control();
        let mut open = async || loop {
            match control.open_stream(daemon_id, PROTOCOL).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };

        // A length past the 4 MiB limit, then bytes that are no protobuf:
        // each stream is dropped, and the daemon goes on.
        let mut big = open().await;
        big.write_all(&[0x80, 0x80, 0x80, 0x03]).await.unwrap();
        let _ = big.flush().await;
        let mut junk = open().await;
        junk.write_all(&[3, 0xff, 0xff, 0xff]).await.unwrap();
        let _ = junk.flush().await;
        let mut buf = [0u8; 1];
        for s in [&mut big, &mut junk] {
            let read = tokio::time::timeout(
                Duration::from_secs(10),
                futures::AsyncReadExt::read(s, &mut buf),
            )
            .await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "the stream stays open: {read:?}"
            );
        }
        assert!(daemon.healthy().await);

        // Good wants, with a CID that does not parse among them.
        let entry = |cid: &[u8], want_type| Entry {
            block: cid.to_vec(),
            want_type,
            send_dont_have: true,
            ..Default::default()
        };
        let wants = pb::Message {
            wantlist: Some(Wantlist {
                entries: vec![
                    entry(&held.to_bytes(), WANT_HAVE),
                    entry(b"not a cid", WANT_BLOCK),
                    entry(&missing.to_bytes(), WANT_BLOCK),
                    entry(&held.to_bytes(), WANT_BLOCK),
                ],
                full: false,
            }),
            ..Default::default()
        };
        let mut good = open().await;
        pb::write(&mut good, &wants).await.unwrap();
        // The answer comes on a stream the daemon opens.
        let (from, mut back) = answers.next().await.unwrap();
        assert_eq!(from, daemon_id);
        let answer = pb::read(&mut back).await.unwrap().expect("an answer");
        assert_eq!(
            answer.block_presences,
            vec![
                BlockPresence {
                    cid: held.to_bytes(),
                    r#type: HAVE
                },
                BlockPresence {
                    cid: missing.to_bytes(),
                    r#type: DONT_HAVE
                },
            ]
        );
        assert_eq!(answer.payload.len(), 1);
        assert_eq!(answer.payload[0].prefix, [0x01, 0x55, 0x12, 0x20]);
        assert_eq!(
            answer.payload[0].data,
            std::fs::read(&segment.file).unwrap()
        );
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// `tests/helia/provide.mjs`: a Helia node that adds `files` and dials the
/// daemon, then serves their blocks until dropped. Its peer id and CIDs.
async fn helia_provider(
    daemon: &Daemon,
    files: &[&std::path::Path],
) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let helia = npm::dir("tests/helia");
    npm::install(&helia, "ipfs-unixfs-importer");
    let mut child = tokio::process::Command::new("node")
        .arg(helia.join("provide.mjs"))
        .arg(daemon.tcp_addr().await)
        .args(files)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("provide.mjs's JSON");
    let got: serde_json::Value = serde_json::from_str(&line).unwrap();
    let cids = got["cids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (child, got["peer"].as_str().unwrap().to_owned(), cids)
}

/// `GET /ipfs/{cid}?format=raw` until it answers 200 or `tries` run out
/// (the daemon learns that a peer speaks Bitswap from identify).
async fn get_ipfs(daemon: &Daemon, cid: &str, tries: usize) -> Option<Vec<u8>> {
    let http = reqwest::Client::new();
    for _ in 0..tries {
        let r = http
            .get(daemon.url(&format!("/ipfs/{cid}?format=car&car-dups=y")))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            // The leaves of a CAR with duplicates, in order, are the file.
            let car = r.bytes().await.unwrap();
            return Some(car::leaves(&car));
        }
        assert_eq!(r.status(), 404);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_fetches_by_cid_over_bitswap_and_blocks_a_lying_ipfs_peer() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let files = work.path().join("files");
        make_video(&files, 2, 2 * 1024 * 1024 + 300_000);
        let (big, small) = (files.join("seg_000.ts"), files.join("seg_001.ts"));
        std::fs::write(&small, &std::fs::read(&small).unwrap()[..200_000]).unwrap();

        // First an IPFS peer that lies: the daemon asks it, refuses its
        // bytes, blocks it, and stores nothing.
        let liar = TestPeer::start(Misbehaviour::BitswapLiar).await;
        let daemon = Daemon::start_p2p(
            &work.path().join("daemon"),
            "ipfs_fetch = true\np2p_timeout_ms = 3000",
            &format!("bootstrap = [\"{}\"]", liar.tcp_addr().await),
        )
        .await;
        let want_small = std::fs::read(&small).unwrap();
        let small_cid = swarmseed::store::unixfs::cid_of_reader(&want_small[..]).unwrap();
        let mut blocked = false;
        for _ in 0..50 {
            assert_eq!(get_ipfs(&daemon, &small_cid.to_string(), 1).await, None);
            if daemon
                .log()
                .contains("sent a Bitswap block it was not asked for")
            {
                blocked = true;
                break;
            }
        }
        assert!(blocked, "the liar was never caught: {}", daemon.log());
        let r = reqwest::Client::new()
            .get(daemon.url(&format!("/ipfs/{small_cid}?format=raw")))
            .header("cache-control", "only-if-cached")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412, "a lie was stored");

        // Then Helia, which added the files: both come over Bitswap,
        // byte-exact, with the CIDs the daemon computes.
        let (_helia, _, cids) = helia_provider(&daemon, &[&big, &small]).await;
        let before = daemon.stats().await["bytes_from_p2p"].as_u64().unwrap();
        let mut total = 0;
        for (file, cid) in [&big, &small].iter().zip(&cids) {
            let want = std::fs::read(file).unwrap();
            total += want.len() as u64;
            let ours = swarmseed::store::unixfs::cid_of_reader(&want[..]).unwrap();
            assert_eq!(cid, &ours.to_string(), "Helia's CID is ipfs add's");
            let got = get_ipfs(&daemon, cid, 100).await;
            assert_eq!(got.as_deref(), Some(&want[..]), "{cid}: {}", daemon.log());
        }
        let stats = daemon.stats().await;
        assert!(stats["bytes_from_p2p"].as_u64().unwrap() - before >= total);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
