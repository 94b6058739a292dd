use serde_json::Value as Json;

use super::*;
use crate::p2pml::fields::{push_int, push_int_array};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn one_frame(cmd: &Command) -> String {
    let frames = encode(cmd, DEFAULT_MAX_MESSAGE_SIZE);
    assert_eq!(frames.len(), 1);
    hex(&frames[0])
}

/// Feeds `frames` to a fresh reassembler: the last gives the command.
fn join(frames: &[Vec<u8>]) -> Result<Command, CommandError> {
    let mut r = Reassembler::new();
    for (i, f) in frames.iter().enumerate() {
        match r.push(f)? {
            Message::Command(c) if i + 1 == frames.len() => return Ok(c),
            Message::Pending if i + 1 < frames.len() => {}
            other => panic!("part {i} of {}: {other:?}", frames.len()),
        }
    }
    panic!("no frames")
}

fn decode_hex(payload: &str) -> Result<Command, CommandError> {
    decode(&unhex(payload))
}

/// xorshift64*: reproducible pseudo-random values without a seed file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value of random bit length up to 53.
    fn value(&mut self) -> u64 {
        let bits = self.next() % 54;
        self.next() & ((1u64 << bits) - 1)
    }
}

const EDGES: [u64; 15] = [
    0,
    1,
    127,
    128,
    255,
    256,
    32767,
    32768,
    65535,
    65536,
    1 << 24,
    (1 << 32) - 1,
    1 << 40,
    (1 << 40) + 255,
    MAX_VALUE,
];

#[test]
fn p2pml_md_wire_examples() {
    let ann = |l: &[u64], p: &[u64]| Command::Announcement {
        loaded: l.to_vec(),
        loading: p.to_vec(),
    };
    assert_eq!(one_frame(&ann(&[], &[])), "637374720063656e64");
    assert_eq!(
        one_frame(&ann(&[3, 4, 5, 300], &[6])),
        "63737472006c100201030304050201012c70100101010663656e64"
    );
    let request = Command::Request {
        id: 12,
        request_id: 345,
        offset: 0,
    };
    assert_eq!(one_frame(&request), "637374720169010c7202015963656e64");
    let data = Command::Data {
        id: 12,
        size: 1234567,
        request_id: 345,
    };
    assert_eq!(
        one_frame(&data),
        "637374720269010c730312d6877202015963656e64"
    );
    let (id, request_id) = (12, 345);
    assert_eq!(
        one_frame(&Command::Completed { id, request_id }),
        "637374720369010c7202015963656e64"
    );
    assert_eq!(&one_frame(&Command::Absent { id, request_id })[8..10], "04");
    assert_eq!(&one_frame(&Command::Cancel { id, request_id })[8..10], "05");
}

#[test]
fn int_and_array_field_examples() {
    for (v, wire) in [
        (0, "0100"),
        (12, "010c"),
        (345, "020159"),
        (65535, "0300ffff"),
        (1234567, "0312d687"),
    ] {
        let mut out = Vec::new();
        push_int(&mut out, v);
        assert_eq!(hex(&out), wire, "{v}");
    }
    // The library would write u64::MAX with 9 bytes; we refuse it back.
    let mut out = Vec::new();
    push_int(&mut out, u64::MAX);
    assert_eq!(hex(&out), "09_00ffffffffffffffff".replace('_', ""));
    assert_eq!(
        decode(&[&[1, b'i'][..], &out, &[b'r', 1, 0]].concat()),
        Err(CommandError::TooLarge)
    );
    let mut out = Vec::new();
    push_int_array(&mut out, &[3, 4, 5, 300]);
    assert_eq!(hex(&out), "100201030304050201012c");
    // −5 is 01 85: sign-magnitude, refused.
    assert_eq!(decode_hex("0169018572010c"), Err(CommandError::Negative));
}

#[test]
fn round_trips() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut values: Vec<u64> = EDGES.to_vec();
    values.extend((0..500).map(|_| rng.value()));
    for (k, &a) in values.iter().enumerate() {
        let b = values[(k * 7 + 3) % values.len()];
        let c = values[(k * 13 + 5) % values.len()];
        for cmd in [
            Command::Request {
                id: a,
                request_id: b,
                offset: c,
            },
            Command::Data {
                id: a,
                size: b,
                request_id: c,
            },
            Command::Completed {
                id: a,
                request_id: b,
            },
            Command::Absent {
                id: b,
                request_id: c,
            },
            Command::Cancel {
                id: c,
                request_id: a,
            },
        ] {
            assert_eq!(
                join(&encode(&cmd, DEFAULT_MAX_MESSAGE_SIZE)),
                Ok(cmd.clone())
            );
            assert_eq!(join(&encode(&cmd, 11 + k % 20)), Ok(cmd));
        }
    }
    for round in 0..300u64 {
        let base = EDGES[round as usize % EDGES.len()].min(MAX_VALUE - 5000);
        let spread = [1, 300, 5000, 1 << 20][round as usize % 4];
        let n = rng.next() % 700;
        let loaded: Vec<u64> = (0..n).map(|_| base + rng.next() % spread).collect();
        let loading: Vec<u64> = (0..n / 3)
            .map(|_| base + rng.next() % (spread * 2))
            .collect();
        let cmd = Command::announcement(loaded.clone(), loading.clone());
        let Command::Announcement {
            loaded: l,
            loading: p,
        } = &cmd
        else {
            unreachable!()
        };
        // Few enough blocks: everything is announced, sorted and unique.
        let mut want = loaded.clone();
        want.sort_unstable();
        want.dedup();
        if spread <= 5000 {
            assert_eq!(l, &want);
        }
        assert!(l.windows(2).all(|w| w[0] < w[1]));
        assert!(l.iter().all(|id| want.binary_search(id).is_ok()));
        assert!(p.iter().all(|id| loading.contains(id)));
        for max in [DEFAULT_MAX_MESSAGE_SIZE, 64 + round as usize, 300] {
            assert_eq!(join(&encode(&cmd, max)), Ok(cmd.clone()), "round {round}");
        }
    }
}

#[test]
fn split_framing_at_small_sizes() {
    let cmd = Command::announcement(0..40, 512..530);
    for max in 9..=80 {
        let frames = encode(&cmd, max);
        let payload_len = frames.iter().map(|f| f.len() - 8).sum::<usize>();
        assert_eq!(payload_len, serialize(&cmd).len(), "max {max}");
        if frames.len() > 1 {
            assert_eq!(&frames[0][..4], CSTR);
            assert_eq!(&frames[0][frames[0].len() - 4..], DEND);
            for f in &frames[1..frames.len() - 1] {
                assert_eq!((&f[..4], &f[f.len() - 4..]), (&DSTR[..], &DEND[..]));
            }
            let last = frames.last().expect("frames");
            assert_eq!(
                (&last[..4], &last[last.len() - 4..]),
                (&DSTR[..], &CEND[..])
            );
        }
        assert!(frames.iter().all(|f| f.len() <= max + 8));
        assert_eq!(join(&frames), Ok(cmd.clone()), "max {max}");
    }
}

#[test]
fn whole_blocks_go_as_two_groups() {
    let cmd = Command::announcement(0..256, []);
    let frames = encode(&cmd, DEFAULT_MAX_MESSAGE_SIZE);
    // l: two groups, 255 ids (header int 0|255 = 02 00ff) then 1 (01 01).
    let wire = hex(&frames[0]);
    assert!(wire.starts_with("63737472006c10020200ff000102"), "{wire}");
    assert!(wire.ends_with("0101ff63656e64"), "{wire}");
    assert_eq!(join(&frames), Ok(Command::announcement(0..256, [])));
    // Whole blocks 1 and 2 plus two ids of block 3.
    let ids: Vec<u64> = (256..768).chain([768, 769]).collect();
    let Command::Announcement { loaded, .. } = join(&encode(
        &Command::announcement(ids.clone(), []),
        DEFAULT_MAX_MESSAGE_SIZE,
    ))
    .expect("decodes") else {
        unreachable!()
    };
    assert_eq!(loaded, ids);
}

#[test]
fn group_budget_drops_the_highest_ids() {
    let ann = |ids: Vec<u64>| match Command::announcement(ids, []) {
        Command::Announcement { loaded, .. } => loaded,
        _ => unreachable!(),
    };
    // 127 whole blocks (254 groups), then a whole block with one group left.
    let kept = ann((0..256 * 200).collect());
    assert_eq!(kept, (0..32767).collect::<Vec<u64>>());
    // One id per block: 255 blocks fit.
    let kept = ann((0..300).map(|b| b * 256 + 7).collect());
    assert_eq!(kept, (0..255).map(|b| b * 256 + 7).collect::<Vec<u64>>());
    // Duplicates and ids beyond 2^53 - 1 are not announced.
    assert_eq!(ann(vec![5, 5, 1 << 53, 4, 4]), vec![4, 5]);
    // Each list has its own budget, and every group the encoder writes
    // holds at most 255 ids.
    let cmd = Command::announcement(0..256 * 200, 0..256 * 200);
    let payload = serialize(&cmd);
    assert_eq!((payload[1], payload[2], payload[3]), (b'l', 0x10, 255));
    assert_eq!(join(&encode(&cmd, DEFAULT_MAX_MESSAGE_SIZE)), Ok(cmd));
}

#[test]
fn malformed_commands_are_errors() {
    use CommandError::*;
    for (payload, err) in [
        ("", Empty),
        ("06", UnknownCommand(6)),
        ("ff69010c", UnknownCommand(255)),
        (
            "01780100",
            UnexpectedField {
                command: 1,
                field: b'x',
            },
        ),
        (
            "0073010c",
            UnexpectedField {
                command: 0,
                field: b's',
            },
        ),
        ("0162010c72010c", MissingField(b'i')),
        ("01690100720100690101", DuplicateField(b'i')),
        ("0169010c", MissingField(b'r')),
        ("02690101720101", MissingField(b's')),
        (
            "0169100072010c",
            WrongType {
                field: b'i',
                type_code: 1,
            },
        ),
        (
            "006c0105",
            WrongType {
                field: b'l',
                type_code: 0,
            },
        ),
        (
            "016920014172010c",
            WrongType {
                field: b'i',
                type_code: 2,
            },
        ),
        (
            "0169300072010c",
            WrongType {
                field: b'i',
                type_code: 3,
            },
        ),
        ("0169", Truncated),
        ("0169030001", Truncated),
        ("006c", Truncated),
        ("006c10", Truncated),
        ("006c1001010301", Truncated),
        ("006c1002010101", Truncated),
        ("016901ff72010c", Negative),
        ("006c10010185", Negative),
        ("01690720000000000000720100", TooLarge),
        ("01690f7fffffffffffffffffffffffffffff720100", TooLarge),
    ] {
        assert_eq!(decode_hex(payload), Err(err.clone()), "{payload}");
        // The same through a frame.
        let frame = [&CSTR[..], &unhex(payload), &CEND[..]].concat();
        assert_eq!(Reassembler::new().push(&frame), Err(err), "{payload}");
    }
    // Accepted like the library: non-minimal and zero-length ints, -0.
    assert_eq!(
        decode_hex("0169030000057200620180"),
        Ok(Command::Request {
            id: 5,
            request_id: 0,
            offset: 0,
        })
    );
    assert_eq!(
        decode_hex("006c1000"),
        Ok(Command::Announcement {
            loaded: vec![],
            loading: vec![],
        })
    );
}

#[test]
fn reassembler_joins_and_recovers() {
    let big = Command::announcement(0..2000, []);
    let parts = encode(&big, 200);
    assert!(parts.len() > 3);
    let mut r = Reassembler::new();
    assert_eq!(r.push(&parts[0]), Ok(Message::Pending));
    assert!(r.is_joining());
    // Segment data between parts is data, and does not disturb the join.
    assert_eq!(
        r.push(b"cstr plain data"),
        Ok(Message::Data(b"cstr plain data"))
    );
    for p in &parts[1..parts.len() - 1] {
        assert_eq!(r.push(p), Ok(Message::Pending));
    }
    assert_eq!(
        r.push(parts.last().expect("parts")),
        Ok(Message::Command(big.clone()))
    );
    assert!(!r.is_joining());
    // A continuation out of the blue.
    assert_eq!(r.push(&parts[1]), Err(CommandError::OrphanPart));
    // A new first part abandons an unfinished command.
    let small = Command::Cancel {
        id: 1,
        request_id: 2,
    };
    assert_eq!(r.push(&parts[0]), Ok(Message::Pending));
    let whole = encode(&small, DEFAULT_MAX_MESSAGE_SIZE);
    assert_eq!(r.push(&whole[0]), Ok(Message::Command(small.clone())));
    assert!(!r.is_joining());
    // A peer that never ends its command is cut off at MAX_COMMAND_SIZE.
    let filler = vec![0u8; 60_000];
    let first = [&CSTR[..], &[1], &filler, &DEND[..]].concat();
    let middle = [&DSTR[..], &filler[..], &DEND[..]].concat();
    assert_eq!(r.push(&first), Ok(Message::Pending));
    for _ in 0..(MAX_COMMAND_SIZE / 60_000 - 1) {
        assert_eq!(r.push(&middle), Ok(Message::Pending));
    }
    assert_eq!(r.push(&middle), Err(CommandError::TooLong));
    assert!(!r.is_joining());
    assert_eq!(r.push(&whole[0]), Ok(Message::Command(small)));
    // A bad split command leaves nothing pending either.
    let bad = [&CSTR[..], &[9, 0], &DEND[..]].concat();
    let end = [&DSTR[..], &[0], &CEND[..]].concat();
    assert_eq!(r.push(&bad), Ok(Message::Pending));
    assert_eq!(r.push(&end), Err(CommandError::UnknownCommand(9)));
    assert!(!r.is_joining());
}

#[test]
fn data_chunks_never_look_like_frames() {
    let mut rng = Rng(42);
    for max in [1, 7, 8, 9, 16, 100, 65535] {
        // Every aligned chunk of the naive split would be a frame.
        let mut data = Vec::new();
        while data.len() < max * 5 + 3 {
            let pad = max.saturating_sub(8);
            data.extend_from_slice(if rng.next().is_multiple_of(2) {
                CSTR
            } else {
                DSTR
            });
            data.extend((0..pad).map(|_| rng.next() as u8));
            data.extend_from_slice(if rng.next().is_multiple_of(2) {
                CEND
            } else {
                DEND
            });
        }
        let chunks: Vec<&[u8]> = data_chunks(&data, max).collect();
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= max));
        assert!(chunks.iter().all(|c| !is_frame_like(c)), "max {max}");
        assert_eq!(chunks.concat(), data);
        // Each received chunk is data to the reassembler.
        let mut r = Reassembler::new();
        assert!(chunks.iter().all(|c| r.push(c) == Ok(Message::Data(c))));
    }
    assert_eq!(data_chunks(&[], 10).count(), 0);
    let plain = vec![7u8; 150_000];
    let sizes: Vec<usize> = data_chunks(&plain, DEFAULT_MAX_MESSAGE_SIZE)
        .map(<[u8]>::len)
        .collect();
    assert_eq!(sizes, [65535, 65535, 18930]);
}

fn command_from_json(c: &Json) -> Command {
    let int = |k: &str| c[k].as_u64().unwrap_or(0);
    let ids = |k: &str| -> Vec<u64> {
        c[k].as_array()
            .map(|a| a.iter().filter_map(Json::as_u64).collect())
            .unwrap_or_default()
    };
    let (id, request_id) = (int("i"), int("r"));
    match int("c") {
        0 => Command::Announcement {
            loaded: ids("l"),
            loading: ids("p"),
        },
        1 => Command::Request {
            id,
            request_id,
            offset: int("b"),
        },
        2 => Command::Data {
            id,
            size: int("s"),
            request_id,
        },
        3 => Command::Completed { id, request_id },
        4 => Command::Absent { id, request_id },
        5 => Command::Cancel { id, request_id },
        other => panic!("command code {other} in vectors"),
    }
}

/// Whether the library's decoding is a command we would accept as such.
fn library_decoded(v: &Json) -> Option<Command> {
    let obj = v["decoded"].as_object()?;
    if !v["error"].is_null()
        || obj
            .keys()
            .any(|k| !["c", "i", "r", "b", "s", "l", "p"].contains(&k.as_str()))
    {
        return None;
    }
    Some(command_from_json(&v["decoded"]))
}

#[test]
fn library_command_vectors() {
    let json: Json =
        serde_json::from_str(include_str!("../../../tests/vectors/p2pml-commands.json"))
            .expect("p2pml-commands.json");
    let frames = |v: &Json| -> Vec<Vec<u8>> {
        v["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .map(|f| unhex(f.as_str().expect("hex frame")))
            .collect()
    };
    let encodings = json["encode"].as_array().expect("encode");
    assert!(encodings.len() >= 24);
    let mut buggy = 0;
    for v in encodings {
        let cmd = command_from_json(&v["command"]);
        let max = v["max"].as_u64().expect("max") as usize;
        let want = frames(v);
        match library_decoded(v) {
            Some(decoded) => {
                assert_eq!(encode(&cmd, max), want, "{}", v["command"]);
                assert_eq!(join(&want), Ok(decoded), "{}", v["command"]);
            }
            None => {
                // The library's 256-id group: its bytes are garbage to us
                // too, and we send that block another way.
                buggy += 1;
                assert!(join(&want).is_err(), "{}", v["command"]);
                assert_ne!(encode(&cmd, max), want);
                assert_eq!(join(&encode(&cmd, max)), Ok(cmd));
            }
        }
    }
    assert_eq!(buggy, 2);
    for v in json["decode"].as_array().expect("decode") {
        let got = join(&frames(v));
        match library_decoded(v) {
            Some(decoded) => assert_eq!(got, Ok(decoded), "{}", v["why"]),
            None => assert!(got.is_err(), "{}", v["why"]),
        }
    }
    // Our announcement of a whole block is the two-group form the library
    // decodes whole.
    let two_groups = &json["decode"][0];
    assert_eq!(
        encode(&Command::announcement(0..256, []), DEFAULT_MAX_MESSAGE_SIZE),
        frames(two_groups)
    );
    assert_eq!(
        two_groups["decoded"]["l"].as_array().map(Vec::len),
        Some(256)
    );
    for v in json["is_command_chunk"].as_array().expect("chunks") {
        let chunk = unhex(v["hex"].as_str().expect("hex"));
        assert_eq!(
            Some(is_frame_like(&chunk)),
            v["is_command"].as_bool(),
            "{}",
            v["hex"]
        );
    }
}
