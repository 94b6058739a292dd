//! The IPFS DHT (`p2p.ipfs_dht`): on a small DHT of Helia nodes from npm
//! (`tests/helia/dht.mjs`, Kademlia on /ipfs/kad/1.0.0 over loopback), a
//! Helia node that knows only the DHT finds the daemon as the provider of a
//! seeded segment and fetches it over Bitswap; and the daemon, asked by CID
//! for a file only a Helia node added, finds that node there and fetches it.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{make_video, seed, sha256_hex};
use support::{TEST_TIMEOUT, car, fixtures, npm};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// `dht.mjs`: the DHT's nodes, and a line-by-line conversation with it.
struct Dht {
    _child: Child,
    stdin: tokio::process::ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    servers: Vec<String>,
}

impl Dht {
    async fn start() -> Dht {
        let helia = npm::dir("tests/helia");
        npm::install(&helia, "@libp2p/kad-dht");
        let mut child = tokio::process::Command::new("node")
            .arg(helia.join("dht.mjs"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run node");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        let servers = first["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        Dht {
            _child: child,
            stdin,
            lines,
            servers,
        }
    }

    async fn ask(&mut self, command: &str) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let line = self.lines.next_line().await.unwrap().expect("an answer");
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer["error"].is_null(), "{command}: {answer}");
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipfs_nodes_find_the_daemon_on_the_ipfs_dht_and_it_finds_them() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let mut dht = Dht::start().await;
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start_p2p(
            &work.path().join("daemon"),
            "ipfs_fetch = true\np2p_timeout_ms = 20000",
            &format!("ipfs_dht = true\nipfs_bootstrap = [\"{}\"]", dht.servers[0]),
        )
        .await;
        let segment = seed(&daemon, &cdn, &fixtures(), "ts").await.remove(0);
        let daemon_id = daemon.node().await.0;

        // A Helia node that knows only the DHT finds the daemon there once
        // it has provided what it stored, and fetches the segment from it.
        let mut found = Value::Null;
        for _ in 0..30 {
            found = dht.ask(&format!("find {}", segment.cid)).await;
            if !found["providers"].as_array().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            found["providers"],
            serde_json::json!([daemon_id]),
            "{}",
            daemon.log()
        );
        let want = std::fs::read(&segment.file).unwrap();
        assert_eq!(found["len"].as_u64(), Some(want.len() as u64));
        assert_eq!(found["sha256"], sha256_hex(&want).as_str());

        // A file only a Helia node holds: the daemon has no peer with it,
        // finds its provider on the DHT, and fetches it over Bitswap.
        let files = work.path().join("files");
        make_video(&files, 1, 2 * 1024 * 1024 + 123_456);
        let file = files.join("seg_000.ts");
        let provided = dht.ask(&format!("provide {}", file.display())).await;
        let cid = provided["cid"].as_str().unwrap();
        let before = daemon.stats().await["bytes_from_p2p"].as_u64().unwrap();
        let r = reqwest::Client::new()
            .get(daemon.url(&format!("/ipfs/{cid}?format=car&car-dups=y")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", daemon.log());
        let want = std::fs::read(&file).unwrap();
        assert_eq!(car::leaves(&r.bytes().await.unwrap()), want);
        let stats = daemon.stats().await;
        assert!(
            stats["bytes_from_p2p"].as_u64().unwrap() - before >= want.len() as u64,
            "{stats}"
        );
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
