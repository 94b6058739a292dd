//! Entry points for fuzzing and regression tests: the bodies of the fuzz
//! targets in `fuzz/fuzz_targets/`, which `tests/fuzz_regressions.rs` also
//! runs over the committed corpora and crash inputs, so both call the same
//! code. They exist for fuzzing and regression tests only; nothing else in
//! the daemon calls them.
//!
//! Each takes bytes as a peer could send them, reads them the way the
//! daemon does, panics where a reader breaks one of its promises (an
//! accepted message that does not survive its own encoder, say) and tells
//! whether anything was accepted.

use futures::executor::block_on;
use futures::io::Cursor;

use crate::blocks_wire::{self, Status};
use crate::p2pml::command::{self, Command, DEFAULT_MAX_MESSAGE_SIZE, Message, Reassembler};
use crate::receipts_wire::{self, MAX_BATCH, MAX_RECEIPT};
use crate::tracker::wire::{self, TrackerMessage};

/// The largest block a daemon takes from a peer: `p2p.max_block_bytes` at
/// the most its config allows.
pub const MAX_BLOCK: u64 = 4 << 20;

/// `/swarmseed/blocks/1.0.0`: `data` read as a request and as a response.
/// Whatever is read is written again and must read back the same. True if
/// either reader accepted it.
pub fn blocks_wire(data: &[u8]) -> bool {
    block_on(async {
        let mut accepted = false;
        if let Ok(cid) = blocks_wire::read_request(&mut Cursor::new(data)).await {
            let mut out = Cursor::new(Vec::new());
            blocks_wire::write_request(&mut out, &cid)
                .await
                .expect("writes to memory");
            let again = blocks_wire::read_request(&mut Cursor::new(out.into_inner()))
                .await
                .expect("a written request reads back");
            assert_eq!(again, cid);
            accepted = true;
        }
        if let Ok(answer) = blocks_wire::read_response(&mut Cursor::new(data), MAX_BLOCK).await {
            if let Ok(d) = &answer {
                assert!(d.data.len() as u64 <= MAX_BLOCK);
            }
            let (status, epoch, body) = match &answer {
                Ok(d) => (Status::Ok, d.epoch, &d.data[..]),
                Err(s) => (*s, 0, &[][..]),
            };
            let mut out = Cursor::new(Vec::new());
            blocks_wire::write_response(&mut out, status, epoch, body)
                .await
                .expect("writes to memory");
            let again = blocks_wire::read_response(&mut Cursor::new(out.into_inner()), MAX_BLOCK)
                .await
                .expect("a written response reads back");
            assert_eq!(again, answer);
            accepted = true;
        }
        accepted
    })
}

/// `/swarmseed/receipts/1.0.0`: `data` read as a batch (the provider's
/// side) and, after its first byte, as the verdicts on a batch of that
/// byte + 1 receipts (the receiver's side). Both are written again and must
/// read back the same. True if either reader accepted it.
pub fn receipts_wire(data: &[u8]) -> bool {
    block_on(async {
        let mut accepted = false;
        if let Ok(batch) = receipts_wire::read_batch(&mut Cursor::new(data)).await {
            assert!((1..=MAX_BATCH).contains(&batch.len()));
            assert!(batch.iter().all(|r| r.len() as u64 <= MAX_RECEIPT));
            let mut out = Cursor::new(Vec::new());
            receipts_wire::write_batch(&mut out, &batch)
                .await
                .expect("writes to memory");
            let again = receipts_wire::read_batch(&mut Cursor::new(out.into_inner()))
                .await
                .expect("a written batch reads back");
            assert_eq!(again, batch);
            accepted = true;
        }
        if let Some((&n, rest)) = data.split_first() {
            let n = usize::from(n) + 1;
            if let Ok(verdicts) = receipts_wire::read_verdicts(&mut Cursor::new(rest), n).await {
                assert_eq!(verdicts.len(), n);
                let mut out = Cursor::new(Vec::new());
                receipts_wire::write_verdicts(&mut out, &verdicts)
                    .await
                    .expect("writes to memory");
                let again = receipts_wire::read_verdicts(&mut Cursor::new(out.into_inner()), n)
                    .await
                    .expect("written verdicts read back");
                assert_eq!(again, verdicts);
                accepted = true;
            }
        }
        accepted
    })
}

/// One WebSocket message to or from a WebTorrent tracker: decoded as the
/// built-in tracker decodes what peers send (`decode_client_message`; a
/// refusal becomes the `Failure` it answers with), and as the seeder's
/// tracker client decodes what trackers send (`TrackerMessage`). Binary
/// frames are read as UTF-8 text, as the tracker does. A decoded message,
/// encoded again, must decode to itself. True if either side accepted it.
pub fn tracker_wire(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut accepted = false;
    match wire::decode_client_message(text) {
        Ok(m) => {
            let json = serde_json::to_string(&m).expect("client messages encode");
            let again = wire::decode_client_message(&json)
                .unwrap_or_else(|e| panic!("{json} does not decode: {e}"));
            assert_eq!(again, m);
            accepted = true;
        }
        Err(e) => {
            let reply = TrackerMessage::Failure(e.to_failure());
            let json = serde_json::to_string(&reply).expect("failures encode");
            let again: TrackerMessage = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{json} does not decode: {e}"));
            assert_eq!(again, reply);
        }
    }
    if let Ok(m) = serde_json::from_str::<TrackerMessage>(text) {
        let _ = m.info_hash();
        let json = serde_json::to_string(&m).expect("tracker messages encode");
        let again: TrackerMessage =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not decode: {e}"));
        assert_eq!(again, m);
        accepted = true;
    }
    accepted
}

/// p2p-media-loader data-channel messages: `data` as one message, then as
/// messages of a big-endian u16 length each on one channel (so split
/// commands are joined), then as segment bytes cut into data messages.
/// Every decoded command must encode (whole and split) and decode again to
/// the same command. Returns how many commands were decoded.
pub fn p2pml_command(data: &[u8]) -> usize {
    let mut decoded = 0;
    if let Ok(Message::Command(c)) = Reassembler::new().push(data) {
        round_trip(&c);
        decoded += 1;
    }

    let mut channel = Reassembler::new();
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (msg, tail) = tail.split_at(n);
        rest = tail;
        match channel.push(msg) {
            Ok(Message::Command(c)) => {
                assert!(!channel.is_joining());
                round_trip(&c);
                decoded += 1;
            }
            Ok(Message::Data(d)) => assert!(d == msg && !command::is_frame_like(d)),
            Ok(Message::Pending) => assert!(channel.is_joining()),
            // After an error nothing is pending.
            Err(_) => assert!(!channel.is_joining()),
        }
    }

    // Segment bytes as the seeder sends them: no chunk looks like a
    // command, none is over the size, and together they are the segment.
    let max = 1 + usize::from(data.first().copied().unwrap_or(0));
    let mut joined = Vec::with_capacity(data.len());
    for chunk in command::data_chunks(data, max) {
        assert!(!chunk.is_empty() && chunk.len() <= max);
        assert!(!command::is_frame_like(chunk));
        joined.extend_from_slice(chunk);
    }
    assert_eq!(joined, data);
    decoded
}

/// Id lists compared as sets of ids with their counts: the encoder groups
/// ids by block, so the order of a list that came in ungrouped changes.
fn normalised(c: &Command) -> Command {
    match c {
        Command::Announcement { loaded, loading } => {
            let (mut loaded, mut loading) = (loaded.clone(), loading.clone());
            loaded.sort_unstable();
            loading.sort_unstable();
            Command::Announcement { loaded, loading }
        }
        other => other.clone(),
    }
}

fn decode_parts(parts: &[Vec<u8>]) -> Command {
    let mut r = Reassembler::new();
    let (last, init) = parts
        .split_last()
        .expect("a command is at least one message");
    for p in init {
        assert_eq!(r.push(p), Ok(Message::Pending));
    }
    match r.push(last) {
        Ok(Message::Command(c)) => c,
        other => panic!("an encoded command reads as {other:?}"),
    }
}

fn round_trip(c: &Command) {
    for max in [DEFAULT_MAX_MESSAGE_SIZE, 64, 9] {
        let parts = command::encode(c, max);
        assert_eq!(
            normalised(&decode_parts(&parts)),
            normalised(c),
            "max {max}"
        );
    }
    // The same ids announced as the seeder announces them arrive exactly.
    if let Command::Announcement { loaded, loading } = c {
        let a = Command::announcement(loaded.iter().copied(), loading.iter().copied());
        let parts = command::encode(&a, DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(decode_parts(&parts), a);
    }
}

/// PeerTube's fork of p2p-media-loader (`p2pml/fork/`): `data` as a
/// message on a fork peer's data channel, as segment bytes cut into
/// chunks, and as the master playlist its swarm ids are made from. A
/// command read is one a seeder acts on or ignores; chunks put back
/// together are the bytes, and none reads as a command; every stream's
/// info_hash is its id's, and its segment ids lead back to it. True if
/// the message was a command or the playlist named streams.
pub fn fork(data: &[u8]) -> bool {
    use crate::p2pml::fork::{self, ForkMaster, ForkMember, command as fork_command};
    let mut accepted = matches!(fork_command::decode(data), Some(Ok(_)));
    let chunks: Vec<&[u8]> = fork_command::data_chunks(data).collect();
    assert_eq!(chunks.concat(), data, "chunks lose or add bytes");
    for c in &chunks {
        assert!(c.len() <= fork_command::MAX_MESSAGE_SIZE);
        assert!(
            fork_command::decode(c).is_none(),
            "a data chunk reads as a command"
        );
    }
    let base = url::Url::parse("https://pt.example/static/hls/u/m-master.m3u8").expect("a URL");
    if let Ok(streams) = fork::streams(base.as_str(), &base, data) {
        accepted = true;
        let (_tx, held) = tokio::sync::watch::channel(std::sync::Arc::new(vec![3u64]));
        let master = ForkMaster {
            streams: streams
                .iter()
                .map(|s| ForkMember {
                    swarm_id: s.swarm_id.clone(),
                    stream: s.swarm_id.as_str().into(),
                    held: held.clone(),
                })
                .collect(),
        };
        for s in &streams {
            assert_eq!(s.info_hash, fork::info_hash(&s.swarm_id));
            let (m, seq) = master
                .find(&fork::segment_id(&s.swarm_id, 17))
                .expect("a segment id names its stream");
            assert_eq!((m.swarm_id.as_str(), seq), (s.swarm_id.as_str(), 17));
        }
        let held = [3u64];
        let map =
            fork_command::segments_map(streams.iter().map(|s| (s.swarm_id.as_str(), &held[..])));
        assert!(map.len() <= fork_command::MAX_MAP_SIZE);
        assert_eq!(
            fork_command::decode(&map),
            Some(Ok(fork_command::Incoming::Other))
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let id = fork::segment_id(text, 5);
        let master = ForkMaster {
            streams: Vec::new(),
        };
        assert!(master.find(&id).is_none());
        let absent = fork_command::absent(text);
        assert_eq!(
            fork_command::decode(&absent),
            Some(Ok(fork_command::Incoming::Other))
        );
    }
    accepted
}

/// libp2p WebRTC-direct stream frames: the first byte picks how `data` is
/// cut into channel messages, as a peer may split or join frames. Every
/// frame decoded is encoded again and must read back the same. True if a
/// frame was read.
pub fn webrtc_framing(data: &[u8]) -> bool {
    use crate::rtc::direct::framing::{Decoder, MAX_PAYLOAD, encode};
    let Some((&cut, rest)) = data.split_first() else {
        return false;
    };
    let cut = usize::from(cut).max(1);
    let mut decoder = Decoder::default();
    let mut frames = 0;
    for message in rest.chunks(cut) {
        if decoder.push(message).is_err() {
            return frames > 0;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    frames += 1;
                    let body = frame.data.clone().unwrap_or_default();
                    assert!(body.len() <= crate::rtc::direct::framing::MAX_MESSAGE);
                    if body.len() > MAX_PAYLOAD {
                        continue;
                    }
                    let mut again = Decoder::default();
                    again
                        .push(&encode(frame.flag, &body))
                        .expect("one frame fits");
                    let back = again
                        .next_frame()
                        .expect("an encoded frame decodes")
                        .expect("whole");
                    assert_eq!(back.flag, frame.flag);
                    assert_eq!(back.data.unwrap_or_default(), body);
                }
                Ok(None) => break,
                Err(_) => return frames > 0,
            }
        }
    }
    frames > 0
}
