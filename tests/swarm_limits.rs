//! The block protocol under abuse and under limits: malformed and oversized
//! messages, too many requests at once, many requests opened together, the
//! upload rate limit, and peers coming and going as the events report them.

mod support;

use std::time::{Duration, Instant};

use cid::Cid;
use futures::{AsyncReadExt, AsyncWriteExt};
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::peer::{Misbehaviour, TestPeer, tally};
use support::{TEST_TIMEOUT, fixtures};
use swarmseed::swarm::blocks::{FetchError, fetch_block};
use swarmseed::swarm::wire::PROTOCOL;

/// Every CID in the daemon's map of the fixture, with its size.
async fn seeded_cids(daemon: &Daemon, master: &str) -> Vec<(Cid, u64)> {
    let id = daemon.seed(master).await["id"].as_str().unwrap().to_owned();
    let map: serde_json::Value = daemon
        .get_json(&format!("/api/v1/videos/{id}/cidmap"))
        .await;
    map["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["segments"].as_array().unwrap().clone())
        .map(|e| {
            (
                e["cid"].as_str().unwrap().parse().unwrap(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn connected_client(daemon: &Daemon) -> (TestPeer, libp2p::PeerId) {
    let (id, _) = daemon.node().await;
    let client = TestPeer::start_with(Misbehaviour::Client, &[daemon.tcp_addr().await]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.swarm.peers_connected() == 0 {
        assert!(Instant::now() < deadline, "client never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (client, id.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_leave_the_daemon_up() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(
            work.path(),
            "",
            "per_peer_requests = 2\nblock_timeout_ms = 500\n",
        )
        .await;
        let cids = seeded_cids(&daemon, &cdn.url("ts/master.m3u8")).await;
        let (client, daemon_id) = connected_client(&daemon).await;
        let mut control = client.swarm.control();

        let garbage: Vec<Vec<u8>> = vec![
            vec![0xff; 12],                      // a varint that never ends
            vec![0x80, 0x80, 0x80, 0x80, 0x01],  // a CID length of 2^28
            [vec![40], vec![0xAB; 40]].concat(), // a CID that does not parse
            vec![],                              // nothing, then close
            [vec![0x20], vec![7; 10]].concat(),  // a truncated request
        ];
        for bytes in garbage {
            let mut stream = control.open_stream(daemon_id, PROTOCOL).await.unwrap();
            let _ = stream.write_all(&bytes).await;
            let _ = stream.close().await;
            let mut rest = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            assert!(rest.is_empty(), "no block for garbage");
        }
        // A request that never comes: the daemon gives up on it.
        let mut silent = control.open_stream(daemon_id, PROTOCOL).await.unwrap();
        let mut rest = Vec::new();
        let ended =
            tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "the daemon closes streams that send nothing");

        // Many requests at once: some are turned away busy, none crash anything.
        let (cid, _) = cids[0];
        let answers = client
            .ask_at_once(daemon_id, [&cid; 24], Duration::from_secs(10))
            .await;
        let (served, busy, other) = tally(&answers);
        assert!(
            served >= 2 && busy >= 1,
            "served {served}, busy {busy}, errors {other:?}"
        );

        assert!(daemon.healthy().await);
        for (cid, size) in &cids {
            let block = fetch_block(
                &client.swarm,
                daemon_id,
                cid,
                4 << 20,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            assert_eq!(block.data.len() as u64, *size);
        }
        // An unknown CID is answered, not dropped.
        let unknown = swarmseed::store::unixfs::block_cid(0x55, b"nobody has this");
        let r = fetch_block(
            &client.swarm,
            daemon_id,
            &unknown,
            4 << 20,
            Duration::from_secs(10),
        )
        .await;
        assert!(matches!(r, Err(FetchError::NotFound)), "{r:?}");
    })
    .await
    .expect("test timed out");
}

/// A peer that asks for many blocks at once, within its cap, gets every one:
/// streams that arrive together are queued for the server, not reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_opened_together_are_all_answered() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(work.path(), "", "per_peer_requests = 64\n").await;
        let cids = seeded_cids(&daemon, &cdn.url("ts/master.m3u8")).await;
        let (client, daemon_id) = connected_client(&daemon).await;
        for round in 0..3 {
            let asked: Vec<&(Cid, u64)> = cids.iter().cycle().take(48).collect();
            let answers = client
                .ask_at_once(
                    daemon_id,
                    asked.iter().map(|(c, _)| c),
                    Duration::from_secs(20),
                )
                .await;
            let (served, busy, failed) = tally(&answers);
            assert_eq!(
                served,
                asked.len(),
                "round {round}: busy {busy}, {failed:?}"
            );
            for (got, (_, size)) in answers.into_iter().zip(asked) {
                assert_eq!(got.unwrap().data.len() as u64, *size);
            }
        }
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_hold_to_the_rate_limit() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        for i in 0..4u64 {
            let data: Vec<u8> = (0..(1 << 20) - 7 * i)
                .map(|b| ((b * 31 + i) % 251) as u8)
                .collect();
            std::fs::write(origin.join(format!("s{i}.ts")), data).unwrap();
            playlist.push_str(&format!("#EXTINF:4,\ns{i}.ts\n"));
        }
        std::fs::write(origin.join("index.m3u8"), playlist + "#EXT-X-ENDLIST\n").unwrap();
        let cdn = TestCdn::start(&origin).await;
        const RATE: u64 = 4 << 20;
        let daemon = Daemon::start_p2p(
            &work.path().join("node"),
            "",
            &format!("upload_bytes_per_sec = {RATE}\n"),
        )
        .await;
        let cids = seeded_cids(&daemon, &cdn.url("index.m3u8")).await;
        let (client, daemon_id) = connected_client(&daemon).await;

        // Twenty blocks of about 1 MiB, four asked at a time.
        let plan: Vec<Cid> = (0..20).map(|i| cids[i % cids.len()].0).collect();
        let start = Instant::now();
        // The daemon's own fetcher, with its retries: libp2p-stream drops an
        // inbound stream that arrives while its one slot is taken.
        let fetcher = swarmseed::peers::PeerFetcher::new(
            client.swarm.clone(),
            swarmseed::peers::PeerLimits {
                max_block: 4 << 20,
                block_timeout: Duration::from_secs(30),
                parallel: 4,
                ipfs_dht: false,
            },
            None,
        );
        let sizes: std::collections::HashMap<Cid, u64> = cids.iter().copied().collect();
        let mut total = 0u64;
        for chunk in plan.chunks(4) {
            let asks = chunk.iter().map(|cid| {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                fetcher.fetch(
                    "",
                    *cid,
                    Some(sizes[cid]),
                    4 << 20,
                    vec![daemon_id],
                    deadline,
                )
            });
            for got in futures::future::join_all(asks).await {
                total += got.unwrap().bytes.len() as u64;
            }
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        let ratio = rate / RATE as f64;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "upload ran at {rate:.0} B/s, {ratio:.3} of the limit"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_coming_and_going_are_counted_and_reported() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start_p2p(work.path(), "", "").await;
        let mut events = reqwest::get(daemon.url("/api/v1/events")).await.unwrap();
        let (client, _) = connected_client(&daemon).await;
        let client_id = client.swarm.peer_id.to_string();
        let mut seen = String::new();
        let mut wait_for = async |name: &str| {
            let needle = format!("event: {name}\ndata: {{\"peer\":\"{client_id}\"}}");
            while !seen.contains(&needle) {
                let chunk = events.chunk().await.unwrap().expect("stream open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        wait_for("peer-connected").await;
        assert_eq!(daemon.stats().await["peers_connected"], 1);
        drop(client);
        wait_for("peer-disconnected").await;
        assert_eq!(daemon.stats().await["peers_connected"], 0);
    })
    .await
    .expect("test timed out");
}
