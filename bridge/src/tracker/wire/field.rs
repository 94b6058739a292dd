//! Field decoders that name their field in errors. serde needs one function
//! per name, hence these one-liners.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

use super::id20::{Id20, Id20Visitor, OptId20Visitor};

pub(super) fn info_hash<'de, D: Deserializer<'de>>(d: D) -> Result<Id20, D::Error> {
    d.deserialize_str(Id20Visitor("info_hash"))
}
pub(super) fn peer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id20, D::Error> {
    d.deserialize_str(Id20Visitor("peer_id"))
}
pub(super) fn offer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id20, D::Error> {
    d.deserialize_str(Id20Visitor("offer_id"))
}
pub(super) fn opt_info_hash<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id20>, D::Error> {
    d.deserialize_option(OptId20Visitor("info_hash"))
}
pub(super) fn opt_peer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id20>, D::Error> {
    d.deserialize_option(OptId20Visitor("peer_id"))
}
pub(super) fn opt_to_peer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id20>, D::Error> {
    d.deserialize_option(OptId20Visitor("to_peer_id"))
}
pub(super) fn opt_offer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id20>, D::Error> {
    d.deserialize_option(OptId20Visitor("offer_id"))
}

/// `numwant`, `uploaded`, `downloaded`, `left`: informational counters
/// that JavaScript may send as floats, `null` (from `Infinity`) or
/// strings. bittorrent-tracker runs them through `Number()`, so anything
/// that is not a non-negative number reads as absent rather than failing
/// the whole announce.
pub(super) fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(LenientCount)
}

struct LenientCount;

impl<'de> Visitor<'de> for LenientCount {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).ok())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // `as` saturates, which is what a counter wants.
        Ok((v.is_finite() && v >= 0.0).then_some(v as u64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.trim().parse().ok())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Scrape's `info_hash`: one binary string or an array of them.
pub(super) fn scrape_info_hashes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Id20>>, D::Error> {
    d.deserialize_any(OneOrMany)
}

struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Option<Vec<Id20>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("info_hash as a 20-character binary string or an array of them")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Id20Visitor("info_hash")
            .visit_str(v)
            .map(|id| Some(vec![id]))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::new();
        while let Some(id) = seq.next_element_seed(Id20Seed("info_hash"))? {
            ids.push(id);
        }
        Ok(Some(ids))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// An [`Id20`] inside a sequence, with the field named in errors.
struct Id20Seed(&'static str);

impl<'de> de::DeserializeSeed<'de> for Id20Seed {
    type Value = Id20;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Id20, D::Error> {
        d.deserialize_str(Id20Visitor(self.0))
    }
}
