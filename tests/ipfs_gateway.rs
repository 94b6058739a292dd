//! The trustless gateway, `/ipfs/{cid}`: seeded segments read as raw blocks
//! and CARs, by @helia/verified-fetch and @ipld/car from npm (which refuse
//! a gateway that alters a byte) and by hand against the specification's
//! headers, scopes, byte ranges, duplicates and errors.

mod support;

use cid::Cid;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::media::{Segment, make_big_video, seed, sha256_hex, ts_and_big_origin};
use support::{TEST_TIMEOUT, car, fixtures, npm};
use swarmseed::store::unixfs;

const RAW: &str = "application/vnd.ipld.raw";
const CAR: &str = "application/vnd.ipld.car";
const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_fetch_reads_seeded_segments_and_refuses_a_lying_gateway() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = ts_and_big_origin(work.path());
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("daemon"), "").await;
        let mut segments = seed(&daemon, &cdn, &origin, "ts").await;
        segments.truncate(2);
        segments.extend(seed(&daemon, &cdn, &origin, "big").await);
        assert!(segments.iter().any(|s| s.cid.starts_with("bafybei")));

        let args = std::iter::once(daemon.url("")).chain(segments.iter().map(|s| s.cid.clone()));
        let got = npm::helia_script("verified.mjs", "@helia/verified-fetch", args, || {
            daemon.log()
        })
        .await;
        let files = got["files"].as_array().unwrap();
        assert_eq!(files.len(), segments.len());
        for (s, f) in segments.iter().zip(files) {
            let want = std::fs::read(&s.file).unwrap();
            let (len, sha) = (want.len() as u64, sha256_hex(&want));
            let vf = &f["verified_fetch"];
            assert_eq!(vf["status"], 200, "{}: {vf}", s.cid);
            assert_eq!(vf["len"].as_u64(), Some(len), "{}", s.cid);
            assert_eq!(vf["sha256"], sha.as_str(), "{}", s.cid);
            let car = &f["car"];
            assert_eq!(car["status"], 200, "{}: {car}", s.cid);
            assert_eq!(
                car["content_type"],
                "application/vnd.ipld.car; version=1; order=dfs; dups=y"
            );
            assert_eq!(car["roots"], serde_json::json!([s.cid]));
            assert_eq!(
                car["blocks"], car["verified"],
                "{}: every block hashes to its CID",
                s.cid
            );
            let blocks = car["blocks"].as_u64().unwrap();
            let leaves = s.size.div_ceil(MIB as u64);
            assert_eq!(blocks, if leaves > 1 { leaves + 1 } else { 1 }, "{}", s.cid);
            assert_eq!(car["len"].as_u64(), Some(len), "{}", s.cid);
            assert_eq!(car["sha256"], sha.as_str(), "{}", s.cid);
            // Through the proxy that flips a byte: no bytes at all.
            let liar = &f["through_liar"];
            assert!(
                liar["sha256"].is_null(),
                "{}: a lying gateway was believed: {liar}",
                s.cid
            );
        }
        // The liar was asked, and every body it altered was refused.
        assert!(got["liar_altered"].as_u64().unwrap() >= segments.len() as u64);
        let stats = daemon.stats().await;
        let total: u64 = segments.iter().map(|s| s.size).sum();
        assert!(stats["bytes_uploaded_http"].as_u64().unwrap() >= 2 * total);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_blocks_follow_the_specification() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("daemon"), "").await;
        let big = seed(&daemon, &cdn, &origin, "big").await.remove(0);
        let file = std::fs::read(&big.file).unwrap();
        let http = reqwest::Client::new();
        let get = |path: &str, accept: Option<&str>| {
            let mut r = http.get(daemon.url(path));
            if let Some(a) = accept {
                r = r.header("accept", a);
            }
            r
        };

        // The root: a dag-pb node that hashes to the CID asked for.
        let r = get(&format!("/ipfs/{}", big.cid), Some(RAW))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(header(&h, "content-type"), RAW);
        assert_eq!(header(&h, "etag"), format!("\"{}.raw\"", big.cid));
        assert_eq!(
            header(&h, "cache-control"),
            "public, max-age=29030400, immutable"
        );
        assert_eq!(
            header(&h, "content-disposition"),
            format!("attachment; filename=\"{}.bin\"", big.cid)
        );
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
        assert_eq!(header(&h, "x-ipfs-roots"), big.cid);
        assert_eq!(
            header(&h, "content-location"),
            format!("/ipfs/{}?format=raw", big.cid)
        );
        let root = r.bytes().await.unwrap();
        let root_cid: Cid = big.cid.parse().unwrap();
        assert!(unixfs::verify(&root_cid, &root));
        let leaves = unixfs::links(&root).unwrap();
        assert_eq!(leaves.len(), file.len().div_ceil(MIB));

        // A leaf, by ?format=raw alone, whole and in part.
        let leaf = format!("/ipfs/{}?format=raw", leaves[1]);
        let r = get(&leaf, None).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("content-location").is_none());
        assert_eq!(&r.bytes().await.unwrap()[..], &file[MIB..2 * MIB]);
        let r = get(&leaf, None)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header(r.headers(), "content-range"),
            format!("bytes 100-199/{MIB}")
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &file[MIB + 100..MIB + 200]);
        let r = get(&leaf, None)
            .header("range", "bytes=2000000-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        // HEAD, and a conditional GET.
        let r = http.head(daemon.url(&leaf)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(r.headers(), "content-length"), MIB.to_string());
        let etag = header(r.headers(), "etag");
        assert!(r.bytes().await.unwrap().is_empty());
        let r = get(&leaf, None)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(r.bytes().await.unwrap().is_empty());

        // The CIDv0 form of the root names the same block.
        let v0 = Cid::new_v0(*root_cid.hash()).unwrap();
        let r = get(&format!("/ipfs/{v0}"), Some(RAW)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap(), root);

        // The probe: the empty identity CID.
        let r = get("/ipfs/bafkqaaa?format=raw", Some(RAW))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.bytes().await.unwrap().is_empty());

        // What is refused, and how.
        let missing = unixfs::cid_of_reader(&b"no one holds this"[..]).unwrap();
        for (path, accept, cache, want) in [
            (
                format!("/ipfs/{missing}"),
                Some(RAW),
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                format!("/ipfs/{missing}"),
                Some(RAW),
                Some("only-if-cached"),
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                "/ipfs/not-a-cid".into(),
                Some(RAW),
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/ipfs/{}", big.cid),
                None,
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/ipfs/{}", big.cid),
                Some("*/*"),
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/ipfs/{}", big.cid),
                Some("text/html"),
                None,
                StatusCode::NOT_ACCEPTABLE,
            ),
            (
                format!("/ipfs/{}?format=tar", big.cid),
                None,
                None,
                StatusCode::NOT_ACCEPTABLE,
            ),
            (
                format!("/ipfs/{}/a/b", big.cid),
                Some(RAW),
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/ipfs/{}/a", big.cid),
                Some(CAR),
                None,
                StatusCode::NOT_FOUND,
            ),
        ] {
            let mut req = get(&path, accept);
            if let Some(c) = cache {
                req = req.header("cache-control", c);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), want, "{path} {accept:?} {cache:?}");
            let body: Value = r.json().await.expect("a JSON error");
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{path}: {body}"
            );
        }

        // A page of another origin is refused on a loopback gateway.
        let r = get(&leaf, None)
            .header("origin", "https://other.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_carry_the_blocks_their_scope_and_byte_range_ask_for() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        // A segment whose first two leaves are the same block.
        make_zeros_video(&origin.join("zeros"), 2 * MIB + MIB / 2);
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("daemon"), "").await;
        let big = seed(&daemon, &cdn, &origin, "big").await.remove(0);
        let zeros = seed(&daemon, &cdn, &origin, "zeros").await.remove(0);
        let file = std::fs::read(&big.file).unwrap();
        let root: Cid = big.cid.parse().unwrap();
        let http = reqwest::Client::new();
        let car = async |seg: &Segment, query: &str| {
            let r = http
                .get(daemon.url(&format!("/ipfs/{}?{query}", seg.cid)))
                .header("accept", CAR)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let h = r.headers().clone();
            (status, h, r.bytes().await.unwrap().to_vec())
        };

        // The whole DAG: the root, then the leaves in file order.
        let (status, h, body) = car(&big, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header(&h, "content-type"),
            "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        );
        assert_eq!(header(&h, "accept-ranges"), "none");
        assert_eq!(
            header(&h, "content-disposition"),
            format!("attachment; filename=\"{}.car\"", big.cid)
        );
        let (roots, blocks) = car::parse(&body);
        assert_eq!(roots, vec![root]);
        assert_eq!(blocks[0].0, root);
        for (cid, data) in &blocks {
            assert!(unixfs::verify(cid, data), "{cid}");
        }
        let joined: Vec<u8> = blocks[1..].iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(joined, file);
        let leaves: Vec<Cid> = blocks[1..].iter().map(|(c, _)| *c).collect();
        assert_eq!(leaves, unixfs::links(&blocks[0].1).unwrap());
        // The same request twice gives the same bytes, and its ETag holds.
        let etag = header(&h, "etag");
        let r = http
            .get(daemon.url(&format!("/ipfs/{}", big.cid)))
            .header("accept", CAR)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(car(&big, "").await.2, body);

        let picked = async |query: &str| {
            let (status, h, body) = car(&big, query).await;
            assert_eq!(status, StatusCode::OK, "{query}");
            let (roots, blocks) = car::parse(&body);
            assert_eq!(roots, vec![root], "{query}");
            assert_eq!(blocks[0].0, root, "{query}");
            (
                header(&h, "etag"),
                blocks[1..].iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            )
        };
        let (block_tag, only_root) = picked("dag-scope=block").await;
        assert!(only_root.is_empty());
        assert_ne!(block_tag, etag);
        assert_eq!(picked("dag-scope=entity").await.1, leaves);
        // entity-bytes: only the leaves the range touches.
        let (tag, got) = picked(&format!("entity-bytes={}:{}", MIB + 10, MIB + 20)).await;
        assert_eq!(got, vec![leaves[1]]);
        assert_ne!(tag, etag);
        assert_eq!(
            picked(&format!("entity-bytes={}:{}", MIB - 1, MIB)).await.1,
            leaves[..2]
        );
        assert_eq!(
            picked("entity-bytes=-10:*").await.1,
            vec![*leaves.last().unwrap()]
        );
        assert_eq!(picked("entity-bytes=0:*").await.1, leaves);
        assert_eq!(
            picked(&format!("entity-bytes=10:-{}", file.len() - MIB + 1))
                .await
                .1,
            leaves[..1]
        );
        // A range that selects nothing gives the root alone, to learn the
        // length from; one that starts past the end is an error.
        assert!(
            picked(&format!("entity-bytes=-{MIB}:-{}", 2 * MIB))
                .await
                .1
                .is_empty()
        );
        let (status, _, body) = car(&big, &format!("entity-bytes={}:*", file.len())).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );

        // Duplicates: once by default, each time with dups=y.
        let (_, h, body) = car(&zeros, "").await;
        assert!(header(&h, "content-type").ends_with("dups=n"));
        let (_, once) = car::parse(&body);
        let r = http
            .get(daemon.url(&format!("/ipfs/{}", zeros.cid)))
            .header(
                "accept",
                "application/vnd.ipld.car; version=1; order=dfs; dups=y",
            )
            .send()
            .await
            .unwrap();
        assert!(header(r.headers(), "content-type").ends_with("dups=y"));
        let (_, every) = car::parse(&r.bytes().await.unwrap());
        assert_eq!(once.len(), 3, "root, the zero leaf once, the short leaf");
        assert_eq!(every.len(), 4);
        assert_eq!(every[1], every[2]);
        let joined: Vec<u8> = every[1..].iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(joined, std::fs::read(&zeros.file).unwrap());

        // The probe CAR names the identity CID and carries no block.
        let r = http
            .get(daemon.url("/ipfs/bafkqaaa?format=car"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let (roots, blocks) = car::parse(&r.bytes().await.unwrap());
        assert_eq!(roots, vec!["bafkqaaa".parse::<Cid>().unwrap()]);
        assert!(blocks.is_empty());
        // Unknown CAR variants are not acceptable.
        let (status, _, _) = car(&big, "car-version=2").await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_gateway_serves_ipfs_to_any_origin_and_ipfs_fetch_asks_peers() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let seeder = Daemon::start_p2p(&work.path().join("seeder"), "", "").await;
        let segment = seed(&seeder, &cdn, &fixtures(), "ts").await.remove(0);
        let bootstrap = format!("bootstrap = [\"{}\"]", seeder.tcp_addr().await);
        // Public, on loopback; it fetches what it lacks from its peers.
        let public = Daemon::start_p2p(
            &work.path().join("public"),
            "public = true\nipfs_fetch = true",
            &bootstrap,
        )
        .await;
        // Only what it holds, with the same peer.
        let holder = Daemon::start_p2p(&work.path().join("holder"), "", &bootstrap).await;
        let http = reqwest::Client::new();
        let path = format!("/ipfs/{}?format=raw", segment.cid);
        let want = std::fs::read(&segment.file).unwrap();
        let mut got = None;
        for _ in 0..100 {
            let r = http
                .get(public.url(&path))
                .header("origin", "https://any.example")
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                assert_eq!(
                    header(r.headers(), "access-control-allow-origin"),
                    "https://any.example"
                );
                got = Some(r.bytes().await.unwrap());
                break;
            }
            // Until the swarm connects, the block is not to be had.
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(got.as_deref(), Some(&want[..]), "{}", public.log());
        assert!(public.stats().await["bytes_from_p2p"].as_u64().unwrap() >= want.len() as u64);
        // Stored now: only-if-cached has it.
        let r = http
            .get(public.url(&path))
            .header("cache-control", "only-if-cached")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // A node without ipfs_fetch answers 404 though its peer holds it.
        while holder.stats().await["peers_connected"].as_u64() == Some(0) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let r = http.get(holder.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(holder.stats().await["bytes_from_p2p"], 0);
        assert!(public.healthy().await && holder.healthy().await);
    })
    .await
    .expect("test timed out");
}

/// A VOD of one segment of `size` zero bytes.
fn make_zeros_video(dir: &std::path::Path, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=8000000\nindex.m3u8\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4.0,\nzeros.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    std::fs::write(dir.join("zeros.ts"), vec![0u8; size]).unwrap();
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_for_blocks_taken_over_http_are_checked_like_any_other() {
    use base64::Engine as _;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let origin = work.path().join("origin");
        make_big_video(&origin.join("big"));
        let cdn = TestCdn::start(&origin).await;
        let daemon = Daemon::start(&work.path().join("daemon"), "").await;
        let big = seed(&daemon, &cdn, &origin, "big").await.remove(0);
        let http = reqwest::Client::new();
        let root = http
            .get(daemon.url(&format!("/ipfs/{}?format=raw", big.cid)))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let leaves = unixfs::links(&root).unwrap();

        // A client with a libp2p key takes two leaves, naming itself.
        let key = libp2p::identity::Keypair::generate_ed25519();
        let me = key.public().to_peer_id().to_string();
        let mut taken = Vec::new();
        for leaf in &leaves[..2] {
            let r = http
                .get(daemon.url(&format!("/ipfs/{leaf}?format=raw")))
                .header("x-swarmseed-peer", &me)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let provider = header(r.headers(), "x-swarmseed-provider");
            let epoch: u64 = header(r.headers(), "x-swarmseed-epoch").parse().unwrap();
            let data = r.bytes().await.unwrap();
            assert!(unixfs::verify(leaf, &data));
            taken.push((leaf.to_string(), data.len() as u64, provider, epoch));
        }
        assert_eq!(taken[0].2, daemon.get_json("/api/v1/node").await["peer_id"]);
        let receipt = |signer: &libp2p::identity::Keypair, seq: u64, cid: &str, bytes: u64| {
            let (_, _, provider, epoch) = taken[0].clone();
            let signed = proofs::Receipt {
                v: proofs::VERSION,
                cid: cid.to_owned(),
                seq,
                bytes,
                epoch,
                video: String::new(),
                time_ms: 1,
                provider,
                receiver: me.clone(),
            }
            .sign(signer);
            base64::engine::general_purpose::STANDARD.encode(signed.bytes)
        };
        let post = async |receipts: Vec<String>| {
            let r = http
                .post(daemon.url("/api/v1/proofs/receipts"))
                .json(&serde_json::json!({ "receipts": receipts }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["verdicts"].clone()
        };
        let good: Vec<String> = taken
            .iter()
            .enumerate()
            .map(|(i, (cid, bytes, _, _))| receipt(&key, i as u64 + 1, cid, *bytes))
            .collect();
        assert_eq!(
            post(good.clone()).await,
            serde_json::json!(["accepted", "accepted"])
        );
        assert_eq!(
            post(good).await,
            serde_json::json!(["replayed", "replayed"])
        );
        // A block it never took, and a receipt someone else signed for it.
        let stranger = libp2p::identity::Keypair::generate_ed25519();
        let (cid, bytes) = (leaves[2].to_string(), MIB as u64);
        assert_eq!(
            post(vec![
                receipt(&key, 3, &cid, bytes),
                receipt(&stranger, 4, &taken[0].0, 1)
            ])
            .await,
            serde_json::json!(["over_claim", "bad_signature"])
        );
        let stats = daemon.stats().await;
        assert_eq!(stats["receipts_accepted"], 2);
        assert_eq!(stats["bytes_receipted"].as_u64(), Some(2 * MIB as u64));
        // The ledger names the client, with what it took and signed for.
        let line = daemon.ledger_line(&me).await;
        assert!(line.to_string().contains(&(2 * MIB).to_string()), "{line}");

        // Bad batches get a clear error; another origin's page is refused on
        // a loopback gateway.
        for body in [
            serde_json::json!({ "receipts": [] }),
            serde_json::json!({ "receipts": ["%%%"] }),
            serde_json::json!({ "receipts": ["aGVsbG8="] }),
            serde_json::json!({ "nope": 1 }),
        ] {
            let r = http
                .post(daemon.url("/api/v1/proofs/receipts"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        }
        let r = http
            .post(daemon.url("/api/v1/proofs/receipts"))
            .header("origin", "https://other.example")
            .json(&serde_json::json!({ "receipts": ["aGVsbG8="] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(daemon.healthy().await);
    })
    .await
    .expect("test timed out");
}
