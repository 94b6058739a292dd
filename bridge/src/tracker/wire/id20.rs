//! [`Id20`]: the protocol's 20-byte fields, carried as JavaScript binary
//! strings.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A 20-byte identifier: an info_hash, a peer_id or an offer_id.
///
/// On the wire it is a 20-character string whose characters are the bytes
/// (U+0000..U+00FF; JSON carries U+0080..U+00FF as two-byte UTF-8, and
/// control characters as `\u00XX` escapes). `Display` and `FromStr` use 40
/// lowercase hex digits, which is how humans and logs see it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id20(pub [u8; 20]);

/// Why a string is not an [`Id20`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Id20Error {
    /// The binary string does not have exactly 20 characters.
    #[error("expected 20 characters, got {0}")]
    Length(usize),
    /// A character is above U+00FF, so it is not one byte.
    #[error("character U+{code:04X} at position {position} is not a byte (must be U+0000..U+00FF)")]
    NotByte {
        /// The offending code point.
        code: u32,
        /// Its position, counted in characters.
        position: usize,
    },
    /// The text is not 40 hex digits.
    #[error("expected 40 hex digits")]
    Hex,
}

impl Id20 {
    /// Decodes a binary string: exactly 20 characters, each ≤ U+00FF.
    pub fn from_binary_str(s: &str) -> Result<Self, Id20Error> {
        let mut out = [0u8; 20];
        let mut count = 0;
        for (position, c) in s.chars().enumerate() {
            let code = u32::from(c);
            let byte = u8::try_from(code).map_err(|_| Id20Error::NotByte { code, position })?;
            if let Some(slot) = out.get_mut(position) {
                *slot = byte;
            }
            count += 1;
        }
        if count != 20 {
            return Err(Id20Error::Length(count));
        }
        Ok(Self(out))
    }

    /// Encodes as a binary string: one character per byte.
    pub fn to_binary_string(&self) -> String {
        self.0.iter().map(|&b| char::from(b)).collect()
    }

    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, Id20Error> {
        let s = s.as_bytes();
        if s.len() != 40 {
            return Err(Id20Error::Hex);
        }
        let mut out = [0u8; 20];
        for (slot, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let hi = hex_digit(pair[0]).ok_or(Id20Error::Hex)?;
            let lo = hex_digit(pair[1]).ok_or(Id20Error::Hex)?;
            *slot = hi << 4 | lo;
        }
        Ok(Self(out))
    }

    /// 40 lowercase hex digits (the same as `Display`).
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The bytes as text if they are all printable ASCII (p2p-media-loader's
    /// info_hashes and peer_ids are), for showing to humans.
    pub fn as_ascii(&self) -> Option<&str> {
        if self.0.iter().all(|b| (0x20..0x7f).contains(b)) {
            std::str::from_utf8(&self.0).ok()
        } else {
            None
        }
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl From<[u8; 20]> for Id20 {
    fn from(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_ascii() {
            Some(ascii) => write!(f, "Id20({ascii:?})"),
            None => write!(f, "Id20({self})"),
        }
    }
}

impl FromStr for Id20 {
    type Err = Id20Error;

    /// Parses hex, like `Display` prints.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl Serialize for Id20 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_binary_string())
    }
}

impl<'de> Deserialize<'de> for Id20 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Id20Visitor("20-byte id"))
    }
}

/// Decodes an [`Id20`] and names the field in errors, so a peer's failure
/// reason says which field was wrong.
pub(super) struct Id20Visitor(pub(super) &'static str);

impl Visitor<'_> for Id20Visitor {
    type Value = Id20;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a 20-character binary string", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Id20, E> {
        Id20::from_binary_str(v).map_err(|e| E::custom(format_args!("invalid {}: {e}", self.0)))
    }
}

/// The same for optional fields (missing and `null` are `None`).
pub(super) struct OptId20Visitor(pub(super) &'static str);

impl<'de> Visitor<'de> for OptId20Visitor {
    type Value = Option<Id20>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a 20-character binary string, or null", self.0)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(Id20Visitor(self.0)).map(Some)
    }
}
