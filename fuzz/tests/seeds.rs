//! Writes the seed corpora, `fuzz/corpus/<target>/`, with the project's own
//! encoders: a handful of valid messages per target and a few edge cases.
//! Deterministic (fixed keys and times; Ed25519 signs deterministically),
//! so a rerun rewrites the same files. Rerun after a format change:
//!
//! ```sh
//! cd fuzz && cargo test --test seeds -- --ignored
//! ```

use std::path::{Path, PathBuf};

use bridge::blocks_wire::{self, Status};
use bridge::p2pml::command::{self, Command, DEFAULT_MAX_MESSAGE_SIZE};
use bridge::receipts_wire::{self, Verdict};
use bridge::tracker::wire::{
    Action, AnnounceEvent, AnnounceReply, AnnounceRequest, ClientMessage, Failure, Id20,
    OfferEntry, RelayedAnswer, RelayedOffer, ScrapeCounts, ScrapeFlags, ScrapeReply, ScrapeRequest,
    SdpType, SessionDescription, TrackerMessage,
};
use cid::Cid;
use futures::executor::block_on;
use futures::io::Cursor;
use libp2p_identity::Keypair;
use proofs::export::{Bundle, BundleEpoch, EpochJson, ReceiptJson, ReceiptWithProof};
use proofs::{Receipt, SignedReceipt, VERSION, close_epoch};
use swarmseed::cidmap::{CidMap, Entry, Rendition};
use swarmseed::store::unixfs;
use swarmseed::swarm::bitswap_pb as pb;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn put(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn key(n: u8) -> Keypair {
    let mut seed = [n; 32];
    Keypair::ed25519_from_bytes(&mut seed).unwrap()
}

fn peer(k: &Keypair) -> String {
    k.public().to_peer_id().to_string()
}

fn raw_cid(data: &[u8]) -> Cid {
    unixfs::block_cid(unixfs::RAW, data)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn written<F, Fut>(f: F) -> Vec<u8>
where
    F: FnOnce(Cursor<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Cursor<Vec<u8>>>,
{
    block_on(f(Cursor::new(Vec::new()))).into_inner()
}

fn blocks_wire() {
    let t = "blocks_wire";
    let raw = raw_cid(b"hello");
    let pb_cid = unixfs::block_cid(unixfs::DAG_PB, b"node");
    let v0: Cid = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
        .parse()
        .unwrap();
    for (name, cid) in [
        ("request-raw", raw),
        ("request-dag-pb", pb_cid),
        ("request-v0", v0),
    ] {
        let bytes = written(|mut s| async move {
            blocks_wire::write_request(&mut s, &cid).await.unwrap();
            s
        });
        put(t, name, bytes);
    }
    let answers: [(&str, Status, u64, &[u8]); 4] = [
        ("response-ok", Status::Ok, 300, b"a block of segment bytes"),
        ("response-ok-empty", Status::Ok, 0, b""),
        ("response-not-found", Status::NotFound, 0, b""),
        ("response-busy", Status::Busy, 0, b""),
    ];
    for (name, status, epoch, data) in answers {
        let bytes = written(|mut s| async move {
            blocks_wire::write_response(&mut s, status, epoch, data)
                .await
                .unwrap();
            s
        });
        put(t, name, bytes);
    }
    // A length over every limit; a varint that never ends; a block longer
    // than what follows.
    put(
        t,
        "edge-huge-length",
        [0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f],
    );
    put(t, "edge-endless-varint", [0x80; 11]);
    put(t, "edge-truncated", [0x00, 0x05, 0x0a, 0x01, 0x02]);
}

/// Receipts from receiver `key(2)` to provider `key(1)`, in `epoch`.
fn receipts(epoch: u64, n: u64) -> Vec<SignedReceipt> {
    let (provider, receiver) = (key(1), key(2));
    (0..n)
        .map(|i| {
            Receipt {
                v: VERSION,
                cid: raw_cid(&i.to_be_bytes()).to_string(),
                seq: epoch * 100 + i + 1,
                bytes: 1000 + i,
                epoch,
                video: "bafyvideo".into(),
                time_ms: 1_763_862_000_000 + i,
                provider: peer(&provider),
                receiver: peer(&receiver),
            }
            .sign(&receiver)
        })
        .collect()
}

fn receipts_wire() {
    let t = "receipts_wire";
    let signed: Vec<Vec<u8>> = receipts(3, 2).into_iter().map(|r| r.bytes).collect();
    for (name, batch) in [
        ("batch-two", signed.clone()),
        ("batch-one", signed[..1].to_vec()),
    ] {
        let bytes = written(|mut s| async move {
            receipts_wire::write_batch(&mut s, &batch).await.unwrap();
            s
        });
        put(t, name, bytes);
    }
    // Verdicts: the first byte is the batch size less one.
    let verdicts = [Verdict::Accepted, Verdict::Late, Verdict::Replayed];
    let mut bytes = vec![verdicts.len() as u8 - 1];
    bytes.extend(written(|mut s| async move {
        receipts_wire::write_verdicts(&mut s, &verdicts)
            .await
            .unwrap();
        s
    }));
    put(t, "verdicts-three", bytes);
    put(t, "edge-empty-batch", [0x00]);
    put(t, "edge-batch-of-257", [0x81, 0x02, 0x01, 0x00]);
    put(t, "edge-receipt-too-long", [0x01, 0x81, 0x08]);
}

fn bitswap() {
    let t = "bitswap";
    let have = raw_cid(b"have");
    let want = raw_cid(b"want");
    let entry = |cid: Cid, want_type, cancel, send_dont_have| pb::Entry {
        block: cid.to_bytes(),
        priority: 1,
        cancel,
        want_type,
        send_dont_have,
    };
    let wantlist = pb::Message {
        wantlist: Some(pb::Wantlist {
            entries: vec![
                entry(have, pb::WANT_HAVE, false, true),
                entry(want, pb::WANT_BLOCK, false, false),
                entry(raw_cid(b"gone"), pb::WANT_BLOCK, true, false),
            ],
            full: true,
        }),
        payload: vec![],
        block_presences: vec![],
    };
    let answer = pb::Message {
        wantlist: None,
        payload: vec![pb::Block {
            prefix: pb::prefix(&want),
            data: b"want".to_vec(),
        }],
        block_presences: vec![
            pb::BlockPresence {
                cid: have.to_bytes(),
                r#type: pb::HAVE,
            },
            pb::BlockPresence {
                cid: raw_cid(b"none").to_bytes(),
                r#type: pb::DONT_HAVE,
            },
        ],
    };
    let frame = |m: pb::Message| {
        written(|mut s| async move {
            pb::write(&mut s, &m).await.unwrap();
            s
        })
    };
    put(t, "wantlist", frame(wantlist.clone()));
    put(t, "answer", frame(answer.clone()));
    let mut two = frame(wantlist);
    two.extend(frame(answer));
    put(t, "wantlist-then-answer", two);
    put(t, "edge-empty-message", frame(pb::Message::default()));
    put(t, "edge-over-limit", [0x81, 0x80, 0x80, 0x02]);
}

fn dag_pb() {
    let t = "dag_pb";
    // A segment of three full chunks and a bit: a root node with four links.
    let data: Vec<u8> = (0..3 * unixfs::CHUNK + 7)
        .map(|i| (i % 251) as u8)
        .collect();
    let dag = unixfs::import(&data.into());
    let root = dag.blocks.iter().find(|b| b.cid == dag.root).unwrap();
    put(t, "file-node-4-links", &root.data);
    // A raw block after its CID, as verification sees it.
    let mut block = raw_cid(b"hello").to_bytes();
    block.extend_from_slice(b"hello");
    put(t, "cid-and-block", block);
    // Unknown fields of each wire type dag-pb allows; a link with a name.
    let mut node = vec![0x12, 0x00, 0x08, 0x2a, 0x1a, 0x01, b'x'];
    let cid = raw_cid(b"child").to_bytes();
    let mut link = vec![0x0a, cid.len() as u8];
    link.extend_from_slice(&cid);
    link.extend_from_slice(&[0x12, 0x04, b'n', b'a', b'm', b'e', 0x18, 0x05]);
    node.push(0x12);
    node.push(link.len() as u8);
    node.extend_from_slice(&link);
    put(t, "edge-unknown-fields", node);
    put(t, "edge-fixed32-field", [0x0d, 1, 2, 3, 4]);
}

fn cidmap() {
    let t = "cidmap";
    let rendition = |n: usize| Rendition {
        playlist: format!("https://origin.example/v{n}.m3u8"),
        segments: (0..3)
            .map(|i| Entry {
                key: format!("https://origin.example/v{n}/{i}.ts"),
                cid: raw_cid(format!("{n}/{i}").as_bytes()).to_string(),
                size: 1000 + i as u64,
            })
            .chain(std::iter::once(Entry {
                key: format!("https://origin.example/v{n}/all.ts bytes=0+100"),
                cid: raw_cid(b"range").to_string(),
                size: 100,
            }))
            .collect(),
    };
    let mut map = CidMap::new(
        "video-1".into(),
        "https://origin.example/master.m3u8".into(),
        vec![rendition(0), rendition(1)],
    );
    map.created_ms = 1_763_862_000_000;
    put(t, "unsigned", map.to_json());
    let signed = map.clone().sign(&key(7));
    put(t, "signed", signed.to_json());
    let mut forged = signed.clone();
    forged.renditions[0].segments[0].cid = raw_cid(b"evil").to_string();
    put(t, "edge-forged", serde_json::to_vec(&forged).unwrap());
    put(
        t,
        "edge-bad-cid-and-version-2",
        br#"{"v":2,"video":"v","url":"u","created_ms":0,"renditions":[{"playlist":"p","segments":[{"key":"k","cid":"not a cid","size":1}]}]}"#,
    );
}

fn proofs() {
    let t = "proofs";
    let provider = key(1);
    let signed = receipts(5, 3);
    put(t, "receipt", &signed[0].bytes);
    let closed = close_epoch(&provider, 5, 1_763_862_000_000, 1_763_862_060_000, &signed);
    put(t, "root", &closed.root.bytes);
    let with_proofs: Vec<ReceiptWithProof> = signed
        .iter()
        .map(|r| ReceiptWithProof {
            receipt: ReceiptJson::from(r),
            proof: closed.proof(&r.hash()),
        })
        .collect();
    put(
        t,
        "receipt-with-proof.json",
        serde_json::to_vec(&with_proofs[1]).unwrap(),
    );
    let bundle = Bundle {
        v: VERSION,
        provider: peer(&provider),
        epochs: vec![BundleEpoch {
            root: EpochJson::from(&closed.root),
            receipts: with_proofs,
        }],
    };
    assert!(proofs::verify::verify_bundle(&bundle).is_ok());
    put(
        t,
        "bundle.json",
        serde_json::to_vec_pretty(&bundle).unwrap(),
    );
    // The same bundle claiming another provider; a receipt with one byte
    // of its body flipped.
    let mut stolen = bundle.clone();
    stolen.provider = peer(&key(9));
    assert!(proofs::verify::verify_bundle(&stolen).is_err());
    put(
        t,
        "edge-bundle-other-provider.json",
        serde_json::to_vec(&stolen).unwrap(),
    );
    let mut flipped = signed[1].bytes.clone();
    let at = flipped.len() - 3;
    flipped[at] ^= 1;
    assert!(SignedReceipt::open(&flipped).is_err());
    put(t, "edge-flipped-receipt", flipped);
    // A receipt signed by the browser library (bridge/js).
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("../tests/vectors/receipt-js.json")).unwrap(),
    )
    .unwrap();
    put(t, "receipt-js", hex(v["signed_hex"].as_str().unwrap()));
    // An epoch with no receipts.
    let empty = close_epoch(&provider, 6, 0, 1, &[]);
    put(t, "edge-empty-root", &empty.root.bytes);
}

fn tracker_wire() {
    let t = "tracker_wire";
    let id = |s: &[u8; 20]| Id20(*s);
    let swarm = id(b"-swarm-info-hash-01-");
    let me = id(b"-PM0203-Zg1LSKTU4qFt");
    let other = id(b"-PM0203-otherpeer000");
    let mut binary = [0u8; 20];
    for (i, b) in binary.iter_mut().enumerate() {
        *b = [0x00, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xa0, 0xe9, 0xff, 0x41][i % 10];
    }
    let sdp = |kind| SessionDescription {
        kind,
        sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n".into(),
    };
    let client: [(&str, ClientMessage); 4] = [
        (
            "announce-offers",
            AnnounceRequest::with_offers(
                swarm,
                me,
                Some(AnnounceEvent::Started),
                vec![OfferEntry {
                    offer: sdp(SdpType::Offer),
                    offer_id: Id20(binary),
                }],
            )
            .into(),
        ),
        (
            "announce-answer",
            AnnounceRequest::answer(swarm, other, me, Id20(binary), "v=0\r\n".into()).into(),
        ),
        (
            "announce-stopped",
            AnnounceRequest::new(Id20(binary), me, Some(AnnounceEvent::Stopped)).into(),
        ),
        (
            "scrape",
            ScrapeRequest {
                info_hash: Some(vec![swarm, Id20(binary)]),
            }
            .into(),
        ),
    ];
    for (name, m) in client {
        put(
            t,
            &format!("client-{name}.json"),
            serde_json::to_vec(&m).unwrap(),
        );
    }
    let tracker = [
        (
            "announce-reply",
            TrackerMessage::Announce(AnnounceReply {
                info_hash: swarm,
                complete: 1,
                incomplete: 4,
                interval: Some(120),
                min_interval: None,
                warning: Some("offers beyond the cap were dropped".into()),
            }),
        ),
        (
            "offer",
            TrackerMessage::Offer(RelayedOffer {
                info_hash: swarm,
                peer_id: other,
                offer: sdp(SdpType::Offer),
                offer_id: Id20(binary),
            }),
        ),
        (
            "answer",
            TrackerMessage::Answer(RelayedAnswer {
                info_hash: swarm,
                peer_id: other,
                answer: sdp(SdpType::Answer),
                offer_id: Id20(binary),
            }),
        ),
        (
            "scrape-reply",
            TrackerMessage::Scrape(ScrapeReply {
                files: [(
                    swarm,
                    ScrapeCounts {
                        complete: 1,
                        incomplete: 2,
                        downloaded: 1,
                    },
                )]
                .into(),
                flags: Some(ScrapeFlags {
                    min_request_interval: 60,
                }),
            }),
        ),
        (
            "failure",
            TrackerMessage::Failure(Failure {
                reason: "invalid announce: missing field `peer_id`".into(),
                action: Some(Action::Announce),
                info_hash: Some(swarm),
            }),
        ),
    ];
    for (name, m) in tracker {
        put(
            t,
            &format!("tracker-{name}.json"),
            serde_json::to_vec(&m).unwrap(),
        );
    }
    // What JavaScript sends: counters as strings, floats and null; a
    // single-string scrape; an unknown action; broken JSON.
    put(
        t,
        "edge-lenient-counters.json",
        r#"{"action":"announce","info_hash":"-swarm-info-hash-01-","peer_id":"-PM0203-Zg1LSKTU4qFt","numwant":"5","uploaded":1.5e3,"downloaded":null,"left":-1,"event":"empty"}"#,
    );
    put(
        t,
        "edge-scrape-one.json",
        r#"{"action":"scrape","info_hash":"-swarm-info-hash-01-"}"#,
    );
    put(
        t,
        "edge-unknown-action.json",
        r#"{"action":"connect","info_hash":"\u0000\u001f\"\\é"}"#,
    );
    put(
        t,
        "edge-broken.json",
        r#"{"action":"announce","info_hash":"#,
    );
}

fn p2pml_command() {
    let t = "p2pml_command";
    let commands = [
        ("announcement", Command::announcement(0..40, [41, 42, 300])),
        ("announcement-empty", Command::announcement([], [])),
        (
            "request",
            Command::Request {
                id: 7,
                request_id: 1,
                offset: 65536,
            },
        ),
        (
            "data",
            Command::Data {
                id: 7,
                size: 1 << 20,
                request_id: 1,
            },
        ),
        (
            "completed",
            Command::Completed {
                id: 7,
                request_id: 1,
            },
        ),
        (
            "absent",
            Command::Absent {
                id: (1 << 53) - 1,
                request_id: 0,
            },
        ),
        (
            "cancel",
            Command::Cancel {
                id: 7,
                request_id: 2,
            },
        ),
    ];
    for (name, c) in &commands {
        let parts = command::encode(c, DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(parts.len(), 1);
        put(t, name, &parts[0]);
    }
    // One channel: messages of a u16 length each. A whole block announced
    // (two groups) split in parts of 64 bytes, with segment bytes between
    // the parts, then a request.
    let mut channel = Vec::new();
    let mut push = |m: &[u8]| {
        channel.extend_from_slice(&(m.len() as u16).to_be_bytes());
        channel.extend_from_slice(m);
    };
    let parts = command::encode(&Command::announcement(256..512, 600..610), 64);
    assert!(parts.len() > 2);
    for (i, p) in parts.iter().enumerate() {
        push(p);
        if i == 0 {
            push(b"segment bytes between the parts");
        }
    }
    push(&command::encode(&commands[2].1, DEFAULT_MAX_MESSAGE_SIZE)[0]);
    put(t, "channel-split-announcement", channel);
    // A continuation with no first part; an unknown command; a negative
    // int; data that ends like a frame.
    put(t, "edge-orphan-part", b"dstr\x01i\x01\x07r\x01\x01cend");
    put(t, "edge-unknown-code", b"cstr\x09cend");
    put(t, "edge-negative", b"cstr\x01i\x01\x87r\x01\x01cend");
    put(
        t,
        "edge-data-like-frame",
        b"cstrsegment bytes that happen to end in dend",
    );
}

fn config() {
    let t = "config";
    put(
        t,
        "documented-example.toml",
        std::fs::read(root().join("../config.toml")).unwrap(),
    );
    put(t, "empty.toml", "");
    put(
        t,
        "small.toml",
        r#"data_dir = "/var/lib/swarmseed"

[gateway]
listen = "127.0.0.1:8080"
max_segment_bytes = "16MiB"

[p2p]
listen = ["/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/udp/4002/webrtc-direct"]
bootstrap = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7"]
trusted_publishers = ["12D3KooWJ1TsijH7H5F74hfAD5XishQz3sxrmAtVY37GtNd9CqYf"]

[webtorrent]
trackers = ["wss://tracker.example/announce"]

[[videos]]
url = "https://origin.example/master.m3u8"
id = "video-1"
"#,
    );
    put(
        t,
        "edge-invalid.toml",
        "[p2p]\nmax_block_bytes = \"5MiB\"\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n",
    );
}

fn fork() {
    let t = "fork";
    let u = "https://pt.example/static/streaming-playlists/hls/u/4e5d-master.m3u8";
    put(t, "request.json", format!(r#"{{"c":3,"i":"{u}+V0+7"}}"#));
    put(t, "cancel.json", format!(r#"{{"c":4,"i":"{u}+V1+0"}}"#));
    put(
        t,
        "map.json",
        format!(r#"{{"c":2,"m":{{"{u}+V0":["0|1|2",[0,0,1]]}}}}"#),
    );
    put(
        t,
        "data-header.json",
        format!(r#"{{"c":0,"i":"{u}+V0+3","s":123456}}"#),
    );
    put(t, "absent.json", format!(r#"{{"c":1,"i":"{u}+V0+3"}}"#));
    put(
        t,
        "master.m3u8",
        "#EXTM3U\n#EXT-X-VERSION:3\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",URI=\"u-0.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=144000,RESOLUTION=256x144,CODECS=\"avc1.4d401e\",AUDIO=\"audio\"\n\
         u-144.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=240000,RESOLUTION=426x240,CODECS=\"avc1.4d401e\",AUDIO=\"audio\"\n\
         u-240.m3u8\n",
    );
    put(
        t,
        "media.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"u-240-fragmented.mp4\",BYTERANGE=\"1355@0\"\n\
         #EXTINF:4,\n#EXT-X-BYTERANGE:63001@1355\nu-240-fragmented.mp4\n#EXT-X-ENDLIST\n",
    );
    // Segment bytes that begin and end like a command.
    put(t, "edge-data-like-json.bin", b"{\"\x00\x01binary\xff}");
    put(t, "edge-unknown-code.json", r#"{"c":9,"i":"x"}"#);
    put(t, "edge-numeric-id.json", r#"{"c":3,"i":17}"#);
}

fn sha256_list() {
    let t = "sha256_list";
    let d = |data: &[u8]| -> String {
        raw_cid(data)
            .hash()
            .digest()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    put(
        t,
        "vod.json",
        format!(
            r#"{{"u-720-fragmented.mp4":{{"1355-64355":"{}","64356-120000":"{}"}},"u-0-fragmented.mp4":{{"700-9999":"{}"}}}}"#,
            d(b"a"),
            d(b"b"),
            d(b"c")
        ),
    );
    put(
        t,
        "live.json",
        format!(r#"{{"3.ts":"{}","4.ts":"{}"}}"#, d(b"3"), d(b"4")),
    );
    put(t, "empty.json", "{}");
    put(t, "edge-short-digest.json", r#"{"a.ts":"abc"}"#);
    put(
        t,
        "edge-reversed-range.json",
        format!(r#"{{"a.mp4":{{"9-3":"{}"}}}}"#, d(b"x")),
    );
    put(t, "edge-array.json", "[1,2]");
}

fn peertube() {
    let t = "peertube";
    put(
        t,
        "config.json",
        r#"{"serverVersion":"8.0.1","serverCommit":"","tracker":{"enabled":true},"webrtc":{"stunServers":["stun:stun.example.org:3478"]}}"#,
    );
    put(
        t,
        "video.json",
        r#"{"id":7,"uuid":"9c9de5e8-0a1e-484a-b099-e80766180a6d","shortUUID":"kkGMgK9ZtnKfYAgnEtQxbv","name":"v","privacy":{"id":1,"label":"Public"},"isLive":false,"isLocal":false,"account":{"name":"alice","host":"pt.example"},"trackerUrls":["https://pt.example/tracker/announce","wss://pt.example:443/tracker/socket"],"streamingPlaylists":[{"id":1,"type":1,"playlistUrl":"https://pt.example/static/streaming-playlists/hls/u/4e5d-master.m3u8","segmentsSha256Url":"https://pt.example/static/streaming-playlists/hls/u/4e5d-segments-sha256.json","redundancies":[{"baseUrl":"https://mirror.example/static/redundancy/hls/u"}],"files":[{"resolution":{"id":720,"label":"720p"},"playlistUrl":"https://pt.example/static/streaming-playlists/hls/u/u-720.m3u8"},{"resolution":{"id":0,"label":"Audio"}}]}]}"#,
    );
    put(
        t,
        "activitypub.json",
        r#"{"type":"Video","url":[{"type":"Link","mediaType":"application/x-mpegURL","href":"https://pt.example/m.m3u8","tag":[{"type":"Infohash","name":"423b4b2f444eedcd25e2e9dc968b9bcad098095a"},{"type":"Link","name":"sha256","href":"x"}]}]}"#,
    );
    put(
        t,
        "list.json",
        r#"{"total":2,"data":[{"uuid":"9c9de5e8-0a1e-484a-b099-e80766180a6d"},{"uuid":"x"}]}"#,
    );
    put(
        t,
        "problem.json",
        r#"{"type":"about:blank","status":401,"code":"video_requires_password","detail":"d"}"#,
    );
    put(
        t,
        "watch-url.txt",
        "https://pt.example:8443/w/kkGMgK9ZtnKfYAgnEtQxbv",
    );
    put(
        t,
        "channel-url.txt",
        "https://pt.example/c/alice_channel@other.example/videos",
    );
    put(t, "version.txt", "7.0.1");
    put(t, "edge-not-json.txt", "<html>not found</html>");
}

fn webrtc_framing() {
    use bridge::rtc::direct::framing::{Flag, encode};
    let t = "webrtc_framing";
    let data = encode(None, b"/multistream/1.0.0\n");
    let fin = encode(Some(Flag::Fin), b"");
    let ack = encode(Some(Flag::FinAck), b"");
    // The first byte is the size of the messages the rest is cut into.
    let joined = [&data[..], &fin[..], &ack[..]].concat();
    put(t, "joined", [&[255u8][..], &joined[..]].concat());
    put(t, "split", [&[1u8][..], &joined[..]].concat());
    put(
        t,
        "flag-and-data",
        [&[64u8][..], &encode(Some(Flag::Reset), b"last words")[..]].concat(),
    );
    put(
        t,
        "stop-sending",
        [&[8u8][..], &encode(Some(Flag::StopSending), b"")[..]].concat(),
    );
    put(t, "oversized", [0x10, 0xff, 0xff, 0x03, 0x12]);
    put(t, "truncated-field", [0x10, 0x03, 0x12, 0x05, 0x00]);
}

#[test]
#[ignore = "writes fuzz/corpus/; run with --ignored"]
fn write_seed_corpora() {
    webrtc_framing();
    fork();
    sha256_list();
    peertube();
    blocks_wire();
    receipts_wire();
    bitswap();
    dag_pb();
    cidmap();
    proofs();
    tracker_wire();
    p2pml_command();
    config();
}
