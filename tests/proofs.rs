//! Contribution proofs end to end: real daemons exchange blocks and
//! receipts over loopback, the provider closes epochs, and
//! `swarmseed proofs verify` checks what it publishes. Bad receipts are
//! refused by the provider and by the check.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::AsyncWriteExt;
use libp2p::identity::Keypair;
use proofs::Receipt;
use proofs::export::{Bundle, ReceiptJson};
use support::cdn::TestCdn;
use support::daemon::{BIN, Daemon};
use support::peer::{Misbehaviour, TestPeer, tally};
use support::{FIXTURES, TEST_TIMEOUT, client, fixtures, hls};
use swarmseed::receipts::{Verdict, wire};
use swarmseed::swarm::blocks::fetch_block;

/// Short epochs so tests see them close.
const PROOFS: &str = "\n[proofs]\nepoch_secs = 2\n";

fn p2p(bootstrap: &str, trusted: &str) -> String {
    format!("bootstrap = [{bootstrap:?}]\ntrusted_publishers = [{trusted:?}]\n{PROOFS}")
}

async fn stat(d: &Daemon, name: &str) -> u64 {
    d.stats().await[name].as_u64().unwrap()
}

async fn play_all(viewer: &Daemon, cdn: &TestCdn) {
    let client = client();
    let gateway = format!("http://{}", viewer.addr);
    for name in FIXTURES {
        let master = format!("{name}/master.m3u8");
        let list = hls::objects(
            &client,
            &gateway,
            &viewer.hls(&cdn.url(&master)),
            &fixtures().join(&master),
        )
        .await;
        hls::assert_byte_exact(&client, &gateway, &list).await;
    }
}

/// Polls `check` until it holds, for up to 30 s.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `swarmseed proofs verify`: (success, stdout + stderr).
fn verify(source: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["proofs", "verify", source])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn within(a: u64, b: u64, share: f64) -> bool {
    (a as f64 - b as f64).abs() <= share * b.max(1) as f64
}

/// Every receipt the bundle holds, across epochs.
fn receipts_in(b: &Bundle) -> (u64, u64) {
    b.epochs
        .iter()
        .flat_map(|e| &e.receipts)
        .fold((0, 0), |(n, bytes), r| (n + 1, bytes + r.receipt.bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_add_up_to_the_bytes_uploaded_and_pass_the_offline_check() {
    tokio::time::timeout(TEST_TIMEOUT * 2, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let seeder_home = work.path().join("seeder");
        let mut seeder = Daemon::start_p2p(&seeder_home, "", PROOFS).await;
        for name in FIXTURES {
            seeder.seed(&cdn.url(&format!("{name}/master.m3u8"))).await;
        }
        let (seeder_id, _) = seeder.node().await;
        let addr = seeder.tcp_addr().await;
        // Two viewers, one after the other; the first leaves before the
        // second plays, so every peer byte either took came from the seeder.
        // A viewer that stops sends the receipts still waiting first.
        let mut from_p2p = 0;
        let mut viewer_ids = Vec::new();
        for i in 0..2 {
            let mut v = Daemon::start_p2p(
                &work.path().join(format!("viewer{i}")),
                "p2p_timeout_ms = 5000\n",
                &p2p(&addr, &seeder_id),
            )
            .await;
            play_all(&v, &cdn).await;
            from_p2p += stat(&v, "bytes_from_p2p").await;
            let vid = v.node().await.0;
            assert!(v.terminate().success());
            eventually("the viewer signed for every block", async || {
                seeder.ledger_line(&vid).await["bytes_unreceipted"] == 0
            })
            .await;
            viewer_ids.push(vid);
        }
        assert!(from_p2p > 1_000_000, "viewers fetched from the seeder");

        let uploaded = stat(&seeder, "bytes_uploaded").await;
        let receipted = stat(&seeder, "bytes_receipted").await;
        eprintln!("uploaded {uploaded}, receipted {receipted}, viewers' p2p {from_p2p}");
        assert!(
            within(receipted, uploaded, 0.01),
            "receipted {receipted}, uploaded {uploaded}"
        );
        assert!(
            within(receipted, from_p2p, 0.01),
            "receipted {receipted}, viewers' bytes_from_p2p {from_p2p}"
        );
        assert_eq!(stat(&seeder, "receipts_refused").await, 0);
        let ledger = seeder.get_json("/api/v1/proofs/peers").await;
        let lines = ledger.as_array().unwrap();
        assert_eq!(lines.len(), 2, "{ledger}");
        for line in lines {
            assert!(viewer_ids.contains(&line["peer"].as_str().unwrap().to_owned()));
            assert_eq!(line["deprioritized"], false, "{line}");
            assert!(
                within(
                    line["bytes_receipted"].as_u64().unwrap(),
                    line["bytes_sent"].as_u64().unwrap(),
                    0.01
                ),
                "{line}"
            );
        }

        // Every receipt lands in a closed epoch within an epoch and its grace.
        let accepted = stat(&seeder, "receipts_accepted").await;
        let mut bundle = Bundle {
            v: 1,
            provider: String::new(),
            epochs: vec![],
        };
        eventually("every receipt is in a closed epoch", async || {
            bundle =
                serde_json::from_value(seeder.get_json("/api/v1/proofs/export").await).unwrap();
            receipts_in(&bundle) == (accepted, receipted)
        })
        .await;
        assert_eq!(bundle.provider, seeder_id);

        // The check through the API, page by page, and from an exported file.
        let (ok, out) = verify(&format!("http://{}", seeder.addr));
        assert!(ok, "{out}");
        assert!(out.contains(&format!("{accepted} receipts")), "{out}");
        let file = work.path().join("bundle.json");
        let export = Command::new(BIN)
            .args(["proofs", "export", "--out"])
            .arg(&file)
            .arg("--config")
            .arg(seeder_home.join("config.toml"))
            .output()
            .unwrap();
        assert!(export.status.success(), "{export:?}");
        let (ok, out) = verify(file.to_str().unwrap());
        assert!(ok, "{out}");

        // Pages hold together: epochs one at a time, receipts by hash.
        let first = seeder.get_json("/api/v1/proofs/epochs?limit=1").await;
        assert_eq!(first["epochs"].as_array().unwrap().len(), 1);
        let n = first["epochs"][0]["epoch"].as_u64().unwrap();
        let one = seeder.get_json(&format!("/api/v1/proofs/epochs/{n}")).await;
        assert_eq!(one, first["epochs"][0]);
        let bad = reqwest::get(seeder.url("/api/v1/proofs/receipts/xyz"))
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        // Tampered files fail, each naming what is wrong.
        tampered_bundles_fail(work.path(), &bundle);

        // Receipts and roots survive a restart.
        assert!(seeder.terminate().success());
        drop(seeder);
        let seeder = Daemon::start_p2p(&seeder_home, "", PROOFS).await;
        let again: Bundle =
            serde_json::from_value(seeder.get_json("/api/v1/proofs/export").await).unwrap();
        assert!(again.epochs.len() >= bundle.epochs.len());
        assert_eq!(again.epochs[..bundle.epochs.len()], bundle.epochs[..]);
        let (ok, out) = verify(&format!("http://{}", seeder.addr));
        assert!(ok, "{out}");
    })
    .await
    .expect("test timed out");
}

/// Writes each kind of bad bundle and runs the offline check on it.
fn tampered_bundles_fail(dir: &Path, good: &Bundle) {
    let (e, _) = good
        .epochs
        .iter()
        .enumerate()
        .find(|(_, e)| e.receipts.len() >= 2)
        .expect("an epoch with two receipts");
    let run = |name: &str, b: &Bundle| {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(b).unwrap()).unwrap();
        let (ok, out) = verify(path.to_str().unwrap());
        assert!(!ok, "{name} passed the check");
        out
    };
    let signed = |r: &ReceiptJson| -> Receipt {
        let raw = STANDARD.decode(&r.signed).unwrap();
        proofs::SignedReceipt::open(&raw).unwrap().receipt
    };

    // A field changed after signing.
    let mut t = good.clone();
    t.epochs[e].receipts[0].receipt.bytes *= 2;
    let out = run("tampered", &t);
    assert!(out.contains("fields differ from the signed bytes"), "{out}");

    // A receipt re-signed by a key that is not the receiver's.
    let mut t = good.clone();
    let forged = signed(&t.epochs[e].receipts[0].receipt).sign(&Keypair::generate_ed25519());
    t.epochs[e].receipts[0].receipt = ReceiptJson::from(&forged);
    let out = run("forged", &t);
    assert!(out.contains("signature does not match"), "{out}");

    // The same receipt twice.
    let mut t = good.clone();
    let dup = t.epochs[e].receipts[0].clone();
    t.epochs[e].receipts.push(dup);
    let out = run("replayed", &t);
    assert!(out.contains("replays seq"), "{out}");

    // A receiver claiming more than any block holds.
    let mut t = good.clone();
    let receiver = Keypair::generate_ed25519();
    let mut claim = signed(&t.epochs[e].receipts[0].receipt);
    claim.receiver = receiver.public().to_peer_id().to_string();
    claim.bytes = proofs::MAX_BLOCK_BYTES * 4;
    t.epochs[e].receipts[1].receipt = ReceiptJson::from(&claim.sign(&receiver));
    let out = run("overclaiming", &t);
    assert!(out.contains("more than one block can hold"), "{out}");

    // A receipt dropped, so the signed count no longer holds.
    let mut t = good.clone();
    t.epochs[e].receipts.pop();
    let out = run("dropped", &t);
    assert!(out.contains("receipts, the bundle holds"), "{out}");
}

/// Sends one batch of receipts on the receipt protocol; returns the verdicts.
async fn send(client: &TestPeer, to: libp2p::PeerId, batch: Vec<Vec<u8>>) -> Vec<Verdict> {
    let mut stream = client
        .swarm
        .control()
        .open_stream(to, wire::PROTOCOL)
        .await
        .unwrap();
    wire::write_batch(&mut stream, &batch).await.unwrap();
    let v = wire::read_verdicts(&mut stream, batch.len()).await.unwrap();
    let _ = stream.close().await;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_refuses_bad_receipts_and_serves_freeloaders_last() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        // A slow uplink, so requests overlap and priority shows.
        let p2p = format!(
            "upload_bytes_per_sec = \"4MiB\"\n{PROOFS}max_unreceipted_bytes = \"256KiB\"\n"
        );
        let daemon = Daemon::start_p2p(work.path(), "", &p2p).await;
        let id = daemon.seed(&cdn.url("ts/master.m3u8")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let map = daemon
            .get_json(&format!("/api/v1/videos/{id}/cidmap"))
            .await;
        let cids: Vec<cid::Cid> = map["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["segments"].as_array().unwrap().clone())
            .map(|e| e["cid"].as_str().unwrap().parse().unwrap())
            .collect();
        let (daemon_id, _) = daemon.node().await;
        let daemon_id: libp2p::PeerId = daemon_id.parse().unwrap();
        let client = TestPeer::start_with(Misbehaviour::Client, &[daemon.tcp_addr().await]).await;
        eventually("the client connects", async || {
            client.swarm.peers_connected() > 0
        })
        .await;

        let got = fetch_block(
            &client.swarm,
            daemon_id,
            &cids[0],
            4 << 20,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        let me = client.swarm.peer_id.to_string();
        let base = Receipt {
            v: 1,
            cid: cids[0].to_string(),
            seq: 1000,
            bytes: got.data.len() as u64,
            epoch: got.epoch,
            video: id.clone(),
            time_ms: 1,
            provider: daemon_id.to_string(),
            receiver: me.clone(),
        };
        let with = |f: &dyn Fn(&mut Receipt)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        let forged = with(&|r| r.seq = 1001)
            .sign(&Keypair::generate_ed25519())
            .bytes;
        let mut tampered = with(&|r| r.seq = 1002).sign(&client.key).bytes;
        // Another video named after signing: same shape, same signer.
        let at = tampered
            .windows(id.len())
            .position(|w| w == id.as_bytes())
            .unwrap();
        tampered[at] = if tampered[at] == b'a' { b'b' } else { b'a' };
        let overclaim = with(&|r| {
            r.seq = 1003;
            r.bytes += 1;
        })
        .sign(&client.key)
        .bytes;
        let not_sent = with(&|r| {
            r.seq = 1004;
            r.cid = cids[1].to_string();
        })
        .sign(&client.key)
        .bytes;
        let other_provider = with(&|r| {
            r.seq = 1005;
            r.provider = me.clone();
        })
        .sign(&client.key)
        .bytes;
        let good = with(&|r| r.seq = 1006).sign(&client.key).bytes;
        let verdicts = send(
            &client,
            daemon_id,
            vec![
                forged,
                tampered,
                overclaim,
                not_sent,
                other_provider,
                good.clone(),
            ],
        )
        .await;
        assert_eq!(
            verdicts,
            vec![
                Verdict::BadSignature,
                Verdict::BadSignature,
                Verdict::OverClaim,
                Verdict::OverClaim,
                Verdict::NotForUs,
                Verdict::Accepted
            ]
        );
        // The same receipt again, and a fresh one for the block already paid for.
        let again = with(&|r| r.seq = 1007).sign(&client.key).bytes;
        assert_eq!(
            send(&client, daemon_id, vec![good, again]).await,
            vec![Verdict::Replayed, Verdict::OverClaim]
        );
        let stats = daemon.stats().await;
        assert_eq!(stats["receipts_accepted"], 1, "{stats}");
        assert_eq!(stats["receipts_refused"], 7, "{stats}");
        assert!(daemon.healthy().await);

        // Taking blocks without receipts: past the limit the client is
        // served one request at a time, after everyone else.
        assert_eq!(stats["peers_deprioritized"], 0, "{stats}");
        let mut taken = 0;
        for cid in cids.iter().cycle().skip(1) {
            if taken > 300 << 10 {
                break;
            }
            let b = fetch_block(
                &client.swarm,
                daemon_id,
                cid,
                4 << 20,
                Duration::from_secs(20),
            )
            .await
            .unwrap();
            taken += b.data.len();
        }
        let line = daemon.ledger_line(&me).await;
        assert_eq!(line["deprioritized"], true, "{line}");
        assert!(
            line["bytes_unreceipted"].as_u64().unwrap() > 256 << 10,
            "{line}"
        );
        assert_eq!(stat(&daemon, "peers_deprioritized").await, 1);
        // Four at once: one is served, the rest are turned away busy. A
        // stream can also die with its connection on a loaded machine, so
        // a round with such errors is tried again.
        let mut rounds = Vec::new();
        let mut shown = false;
        for _ in 0..5 {
            let asked = (0..4).map(|i| &cids[i % cids.len()]);
            let answers = client
                .ask_at_once(daemon_id, asked, Duration::from_secs(20))
                .await;
            let (served, busy, errors) = tally(&answers);
            if served >= 1 && busy >= 1 {
                shown = true;
                break;
            }
            rounds.push(format!("served {served}, busy {busy}, errors {errors:?}"));
            eventually("the client is connected", async || {
                client.swarm.peers_connected() > 0
            })
            .await;
        }
        assert!(
            shown,
            "a deprioritized peer was never held to one request: {rounds:?}"
        );
    })
    .await
    .expect("test timed out");
}
