//! Receipts signed and verified per second, against SHA-256 of the 1 MiB
//! block a receipt covers (the CID check a receiver already does for every
//! block), measured in the same run; plus Merkle roots and proofs over an
//! epoch of 100k receipt hashes.
//!
//!     cargo run --release -p swarmseed-proofs --example receipt_rate
//!
//! Prints one JSON object on stdout (progress on stderr). Knobs (environment):
//! RATE_SECS (seconds per measurement, default 3), MERKLE_LEAVES (default 100000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cid::Cid;
use cid::multihash::Multihash;
use libp2p_identity::Keypair;
use multihash_codetable::{Code, MultihashDigest};
use proofs::merkle::{self, Tree};
use proofs::{Hash, Receipt, SignedReceipt};
use serde_json::json;
use sha2::{Digest, Sha256};

const BLOCK: usize = 1 << 20;
const RAW: u64 = 0x55;
const SHA2_256: u64 = 0x12;

/// Runs `f` (one operation per call) in rounds of `batch` until `secs` have
/// passed; returns (operations, seconds).
fn rate(secs: f64, batch: u64, mut f: impl FnMut(u64)) -> (u64, f64) {
    // Warm-up: caches, branch predictors, lazy statics.
    for i in 0..batch.min(16) {
        f(i);
    }
    let budget = Duration::from_secs_f64(secs);
    let t = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..batch {
            f(n);
            n += 1;
        }
        let el = t.elapsed();
        if el >= budget {
            return (n, el.as_secs_f64());
        }
    }
}

fn figure(name: &str, ops: u64, secs: f64) -> serde_json::Value {
    let per_s = ops as f64 / secs;
    let us = secs * 1e6 / ops as f64;
    eprintln!("[receipt_rate] {name}: {ops} in {secs:.2} s = {per_s:.0}/s ({us:.2} µs each)");
    json!({ "ops": ops, "seconds": secs, "per_sec": per_s, "us_per_op": us })
}

/// A deterministic 1 MiB block (xorshift; the bytes do not matter to SHA-256's speed).
fn block() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() {
    let secs: f64 = std::env::var("RATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let leaves_n: usize = std::env::var("MERKLE_LEAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);

    let provider = Keypair::generate_ed25519();
    let receiver = Keypair::generate_ed25519();
    let provider_id = provider.public().to_peer_id().to_string();
    let receiver_id = receiver.public().to_peer_id().to_string();
    let data = block();
    // The block's CIDv1 (raw, sha2-256), as the daemon names a 1 MiB leaf.
    let digest: [u8; 32] = Sha256::digest(&data).into();
    let cid = Cid::new_v1(
        RAW,
        Multihash::wrap(SHA2_256, &digest).expect("32-byte digest"),
    );
    let cid_str = cid.to_string();
    // A video id is the master playlist's URL.
    let video = "https://cdn.example.com/videos/7f3a9c2e/master.m3u8".to_owned();
    let receipt = |seq: u64| Receipt {
        v: proofs::VERSION,
        cid: cid_str.clone(),
        seq: 1_763_856_000_000_000 + seq,
        bytes: BLOCK as u64,
        epoch: 42,
        video: video.clone(),
        time_ms: 1_763_856_000_000 + seq / 1000,
        provider: provider_id.clone(),
        receiver: receiver_id.clone(),
    };
    let sample = receipt(0).sign(&receiver);
    SignedReceipt::open(&sample.bytes).expect("a fresh receipt opens");
    eprintln!(
        "[receipt_rate] receipt: {} B signed DAG-CBOR; {secs} s per measurement",
        sample.bytes.len()
    );

    // The reference: SHA-256 of the 1 MiB block (what checking its CID costs).
    let (n, s) = rate(secs, 4, |_| {
        black_box(Sha256::digest(black_box(&data)));
    });
    let sha = figure("sha256 of a 1 MiB block", n, s);
    let sha_us = sha["us_per_op"].as_f64().unwrap_or(f64::NAN);
    // Cross-check: the same hash as the daemon computes a block's CID
    // (multihash-codetable, which carries its own sha2 version).
    let (n, s) = rate(secs, 4, |_| {
        black_box(Code::Sha2_256.digest(black_box(&data)));
    });
    let sha_daemon = figure(
        "sha256 of a 1 MiB block (multihash-codetable, as the daemon)",
        n,
        s,
    );

    // Signing: building the receipt (the sender does that per block) and sealing it.
    let (n, s) = rate(secs, 64, |i| {
        black_box(receipt(i).sign(&receiver));
    });
    let sign = figure("receipts signed", n, s);

    // Opening: decode, canonical check, both peer ids, CID, signature.
    let pool: Vec<Vec<u8>> = (0..1024)
        .map(|i| receipt(i).sign(&receiver).bytes)
        .collect();
    let (n, s) = rate(secs, 64, |i| {
        let r = SignedReceipt::open(black_box(&pool[(i % 1024) as usize]));
        assert!(r.is_ok());
        black_box(r.ok());
    });
    let verify = figure("receipts opened and verified", n, s);

    // An epoch: 100k receipt hashes (names of distinct signed receipts).
    let t = Instant::now();
    let leaves: Vec<Hash> = (0..leaves_n as u64)
        .map(|i| {
            let mut h = Sha256::new();
            h.update(&pool[(i % 1024) as usize]);
            h.update(i.to_be_bytes());
            h.finalize().into()
        })
        .collect();
    eprintln!(
        "[receipt_rate] {leaves_n} leaves made in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut root = [0u8; 32];
    let (n, s) = rate(secs, 1, |_| {
        let tree = Tree::new(black_box(&leaves));
        root = tree.root();
    });
    let merkle_root = figure(&format!("merkle roots over {leaves_n} leaves"), n, s);
    let tree = Tree::new(&leaves);
    assert_eq!(tree.root(), root);
    let step = 7919usize; // a prime: indices spread over the tree
    let (n, s) = rate(secs, 256, |i| {
        black_box(tree.proof((i as usize * step) % leaves_n));
    });
    let proofs_made = figure("inclusion proofs made", n, s);
    let paths: Vec<(usize, Vec<Hash>)> = (0..1024)
        .map(|i| {
            let idx = (i * step) % leaves_n;
            (idx, tree.proof(idx))
        })
        .collect();
    let (n, s) = rate(secs, 256, |i| {
        let (idx, path) = &paths[(i % 1024) as usize];
        let ok = merkle::verify(&leaves[*idx], *idx as u64, leaves_n as u64, path, &root);
        assert!(ok);
    });
    let proofs_checked = figure("inclusion proofs verified", n, s);

    let us = |v: &serde_json::Value| v["us_per_op"].as_f64().unwrap_or(f64::NAN);
    let out = json!({
        "receipt_bytes": sample.bytes.len(),
        "block_bytes": BLOCK,
        "seconds_per_measurement": secs,
        "sha256_1mib_block": sha,
        "sha256_1mib_block_multihash_codetable": sha_daemon,
        "sign": sign,
        "verify": verify,
        "merkle_leaves": leaves_n,
        "merkle_proof_hashes": tree.proof(leaves_n / 2).len(),
        "merkle_root": merkle_root,
        "merkle_proof": proofs_made,
        "merkle_proof_verify": proofs_checked,
        "ratios": {
            "sign_over_sha256_block": us(&sign) / sha_us,
            "verify_over_sha256_block": us(&verify) / sha_us,
            "merkle_root_per_receipt_over_sha256_block":
                us(&merkle_root) / leaves_n as f64 / sha_us,
            "merkle_proof_over_sha256_block": us(&proofs_made) / sha_us,
            "merkle_proof_verify_over_sha256_block": us(&proofs_checked) / sha_us,
        },
    });
    println!("{out}");
}
