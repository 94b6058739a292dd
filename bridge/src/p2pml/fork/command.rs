//! The fork's peer commands: JSON objects `{"c": code, …}` on the data
//! channel, key order as the library writes them. A message is a command
//! iff it starts with `{"`, ends with `}` and parses as JSON; anything else
//! is segment data, which follows a `SegmentData` header in messages of at
//! most 65,535 bytes.

use serde_json::Value;

/// The fork's `webRtcMaxMessageSize`: the chunk size of segment data.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 - 1;

/// The largest segments map sent, one message: Chromium accepts 256 KiB,
/// but 64 KiB is safe with every browser.
pub const MAX_MAP_SIZE: usize = 64 * 1024;

/// The longest segment id taken: a master URL of 8 KiB and a suffix.
const MAX_ID: usize = 8 * 1024 + 64;

/// A command the seeder acts on; the others are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Code 3: send this segment.
    Request(String),
    /// Code 4: stop sending it.
    Cancel(String),
    /// Codes 0, 1 and 2: answers and maps, which a seeder never asks for.
    Other,
}

/// Why a message that looked like a command is not one a peer may send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("command without a known code")]
    UnknownCode,
    #[error("command without a string segment id of at most {MAX_ID} bytes")]
    BadId,
}

/// Reads one message: `None` when it is segment data, not a command.
pub fn decode(message: &[u8]) -> Option<Result<Incoming, CommandError>> {
    if !is_command_like(message) {
        return None;
    }
    let value: Value = serde_json::from_slice(message).ok()?;
    let id = || {
        value
            .get("i")
            .and_then(Value::as_str)
            .filter(|i| i.len() <= MAX_ID)
            .map(str::to_owned)
            .ok_or(CommandError::BadId)
    };
    Some(match value.get("c").and_then(Value::as_u64) {
        Some(3) => id().map(Incoming::Request),
        Some(4) => id().map(Incoming::Cancel),
        Some(0..=2) => Ok(Incoming::Other),
        _ => Err(CommandError::UnknownCode),
    })
}

/// The shape the library takes for a command, before it tries to parse.
fn is_command_like(message: &[u8]) -> bool {
    message.len() >= 3 && message.starts_with(b"{\"") && message.ends_with(b"}")
}

/// `{"c":0,"i":…,"s":…}`: `size` bytes of `id` follow.
pub fn data(id: &str, size: u64) -> Vec<u8> {
    format!("{{\"c\":0,\"i\":{},\"s\":{size}}}", Value::from(id)).into_bytes()
}

/// `{"c":1,"i":…}`: the seeder does not hold `id`.
pub fn absent(id: &str) -> Vec<u8> {
    format!("{{\"c\":1,\"i\":{}}}", Value::from(id)).into_bytes()
}

/// `{"c":2,"m":{stream: ["seq|seq", [0, 0]], …}}`: every held segment,
/// all loaded, by stream. Streams holding nothing are left out (an empty
/// entry makes the library drop the whole map); past [`MAX_MAP_SIZE`] the
/// remaining sequences are left out.
pub fn segments_map<'a>(streams: impl IntoIterator<Item = (&'a str, &'a [u64])>) -> Vec<u8> {
    let mut out = String::from("{\"c\":2,\"m\":{");
    let mut first_stream = true;
    for (swarm_id, held) in streams {
        let key = Value::from(swarm_id).to_string();
        // Room for the key, the brackets and at least one id.
        if held.is_empty() || out.len() + key.len() + 32 > MAX_MAP_SIZE {
            continue;
        }
        if !first_stream {
            out.push(',');
        }
        first_stream = false;
        out.push_str(&key);
        out.push_str(":[\"");
        let mut count = 0;
        for seq in held {
            let text = seq.to_string();
            // Each id costs its digits, a separator, and a status "0,".
            if count > 0 && out.len() + count * 2 + text.len() + 1 + 16 > MAX_MAP_SIZE {
                break;
            }
            if count > 0 {
                out.push('|');
            }
            out.push_str(&text);
            count += 1;
        }
        out.push_str("\",[");
        out.push_str(&vec!["0"; count].join(","));
        out.push_str("]]");
    }
    out.push_str("}}");
    out.into_bytes()
}

/// Chunks of at most [`MAX_MESSAGE_SIZE`] bytes; a chunk that would read
/// as a command (`{"` … `}`) ends a byte earlier instead.
pub fn data_chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = rest.len().min(MAX_MESSAGE_SIZE);
        while n > 2 && is_command_like(&rest[..n]) {
            n -= 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_written_as_the_library_writes_them() {
        assert_eq!(
            String::from_utf8(data("U+V0+3", 123456)).unwrap(),
            r#"{"c":0,"i":"U+V0+3","s":123456}"#
        );
        assert_eq!(
            String::from_utf8(absent("U+V0+3")).unwrap(),
            r#"{"c":1,"i":"U+V0+3"}"#
        );
        assert_eq!(
            String::from_utf8(segments_map([
                ("U+V0", &[0, 1, 2][..]),
                ("U+V1", &[][..]),
                ("U+V2", &[3][..])
            ]))
            .unwrap(),
            r#"{"c":2,"m":{"U+V0":["0|1|2",[0,0,0]],"U+V2":["3",[0]]}}"#
        );
        assert_eq!(
            String::from_utf8(segments_map([])).unwrap(),
            r#"{"c":2,"m":{}}"#
        );
        // Ids are JSON strings: quotes and backslashes are escaped.
        assert_eq!(
            String::from_utf8(absent("a\"b\\c")).unwrap(),
            r#"{"c":1,"i":"a\"b\\c"}"#
        );
    }

    #[test]
    fn large_maps_stay_under_one_message() {
        let held: Vec<u64> = (0..100_000).collect();
        let map = segments_map([("https://pt.example/u-master.m3u8+V0", &held[..])]);
        assert!(map.len() <= MAX_MAP_SIZE, "{}", map.len());
        let v: Value = serde_json::from_slice(&map).unwrap();
        let entry = &v["m"]["https://pt.example/u-master.m3u8+V0"];
        let ids = entry[0].as_str().unwrap().split('|').count();
        assert_eq!(ids, entry[1].as_array().unwrap().len());
        assert!(ids > 5000);
    }

    #[test]
    fn requests_are_read_and_data_is_not_a_command() {
        assert_eq!(
            decode(br#"{"c":3,"i":"U+V0+7"}"#),
            Some(Ok(Incoming::Request("U+V0+7".into())))
        );
        assert_eq!(
            decode(br#"{"c":4,"i":"U+V0+7"}"#),
            Some(Ok(Incoming::Cancel("U+V0+7".into())))
        );
        assert_eq!(decode(br#"{"c":2,"m":{}}"#), Some(Ok(Incoming::Other)));
        assert_eq!(
            decode(br#"{"c":9,"i":"x"}"#),
            Some(Err(CommandError::UnknownCode))
        );
        assert_eq!(decode(br#"{"c":3,"i":7}"#), Some(Err(CommandError::BadId)));
        assert_eq!(decode(b"\x00\x00\x00\x18ftypiso5"), None);
        assert_eq!(decode(br#"{"not json}"#), None);
    }

    #[test]
    fn chunks_never_read_as_commands() {
        let mut data = vec![7u8; MAX_MESSAGE_SIZE * 2 + 10];
        data[0] = b'{';
        data[1] = b'"';
        data[MAX_MESSAGE_SIZE - 1] = b'}';
        data[MAX_MESSAGE_SIZE - 2] = b'}';
        let chunks: Vec<&[u8]> = data_chunks(&data).collect();
        assert_eq!(chunks[0].len(), MAX_MESSAGE_SIZE - 2);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() <= MAX_MESSAGE_SIZE && !is_command_like(c))
        );
        assert_eq!(chunks.concat(), data);
    }
}
