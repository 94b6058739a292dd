//! Video ids and room names (DESIGN §4).

use multihash_codetable::{Code, MultihashDigest};
use url::Url;

/// Lowercase base32 (RFC 4648, no padding) of the sha-256 of the master
/// playlist URL without its query string and fragment.
pub fn video_id(master: &Url) -> String {
    let mut u = master.clone();
    u.set_query(None);
    u.set_fragment(None);
    let digest = Code::Sha2_256.digest(u.as_str().as_bytes());
    base32_lower(digest.digest())
}

fn base32_lower(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn room_topic(video: &str) -> String {
    format!("swarmseed/room/1/{video}")
}

pub fn room_key(video: &str) -> Vec<u8> {
    format!("/swarmseed/room/1/{video}").into_bytes()
}

/// Ids given by config or the API: short and safe in paths and topics.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ignore_query_and_fragment() {
        let a = video_id(&Url::parse("https://cdn.example/v/master.m3u8?token=1#x").unwrap());
        let b = video_id(&Url::parse("https://cdn.example/v/master.m3u8").unwrap());
        assert_eq!(a, b);
        assert_eq!(a.len(), 52);
        assert!(valid_id(&a));
        // RFC 4648 test vector, lowercased.
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }
}
