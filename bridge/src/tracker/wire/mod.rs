//! The WebTorrent WebSocket tracker protocol, both directions, as spoken by
//! bittorrent-tracker 11 (the library p2p-media-loader bundles): what a peer
//! sends ([`ClientMessage`]) and what a tracker sends ([`TrackerMessage`]).
//! The tracker in this module decodes the first and encodes the second; a
//! tracker client does the reverse with the same types.
//!
//! Every message is one JSON object in one WebSocket text message. The
//! 20-byte fields (`info_hash`, `peer_id`, `to_peer_id`, `offer_id`) are
//! JavaScript "binary strings": 20 characters whose code points are the byte
//! values 0-255. [`Id20`] does that mapping.

mod field;
mod id20;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

pub use id20::{Id20, Id20Error};

/// The `type` of a WebRTC session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// `"offer"`
    Offer,
    /// `"answer"`
    Answer,
}

/// A complete (non-trickle) WebRTC session description, as simple-peer
/// emits it: `{"type":"offer","sdp":"v=0\r\n…"}`. The tracker relays it
/// without looking inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// Offer or answer.
    #[serde(rename = "type")]
    pub kind: SdpType,
    /// The SDP text.
    pub sdp: String,
}

/// One entry of an announce's `offers`: an offer for the tracker to hand to
/// one other swarm member, and the id its answer will come back with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferEntry {
    /// The offer.
    pub offer: SessionDescription,
    /// Chosen by the offerer (20 random bytes); echoed by the answer.
    #[serde(deserialize_with = "field::offer_id")]
    pub offer_id: Id20,
}

/// The `event` of an announce. Missing (the periodic re-announce) and
/// `empty` mean the same as `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceEvent {
    /// Joining the swarm.
    Started,
    /// Leaving the swarm (p2p-media-loader never sends it: it just closes).
    Stopped,
    /// Finished downloading: counted as `complete` from now on.
    Completed,
    /// A periodic announce.
    Update,
    /// Paused; treated as an update.
    Paused,
    /// No event; treated as an update.
    Empty,
}

/// `action: "announce"` from a peer. It joins or refreshes the peer's
/// membership of `info_hash` and can carry, at once:
/// - `offers` for the tracker to relay to distinct random other members
///   (the announce is then answered with an [`AnnounceReply`]);
/// - an `answer` to an offer it received, routed to `to_peer_id` with
///   `offer_id` (such an announce gets no reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceRequest {
    /// The swarm.
    #[serde(deserialize_with = "field::info_hash")]
    pub info_hash: Id20,
    /// The announcing peer. One socket keeps one peer_id for all swarms.
    #[serde(deserialize_with = "field::peer_id")]
    pub peer_id: Id20,
    /// Missing on periodic re-announces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<AnnounceEvent>,
    /// How many peers the client wants; trackers ignore it and use
    /// `offers.len()`.
    #[serde(
        default,
        deserialize_with = "field::lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub numwant: Option<u64>,
    /// Bytes uploaded (informational).
    #[serde(
        default,
        deserialize_with = "field::lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub uploaded: Option<u64>,
    /// Bytes downloaded (informational).
    #[serde(
        default,
        deserialize_with = "field::lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub downloaded: Option<u64>,
    /// Bytes left; `Some(0)` counts the peer as `complete` (a seeder).
    /// p2p-media-loader sends none, so browsers count as `incomplete`.
    #[serde(
        default,
        deserialize_with = "field::lenient_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub left: Option<u64>,
    /// Offers to relay, one per chosen member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Vec<OfferEntry>>,
    /// An answer to a relayed offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<SessionDescription>,
    /// Whom the answer is for: the offer's `peer_id`.
    #[serde(
        default,
        deserialize_with = "field::opt_to_peer_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub to_peer_id: Option<Id20>,
    /// Which offer the answer answers.
    #[serde(
        default,
        deserialize_with = "field::opt_offer_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub offer_id: Option<Id20>,
}

impl AnnounceRequest {
    /// A bare announce (no offers, no answer) with `event`.
    pub fn new(info_hash: Id20, peer_id: Id20, event: Option<AnnounceEvent>) -> Self {
        Self {
            info_hash,
            peer_id,
            event,
            numwant: None,
            uploaded: None,
            downloaded: None,
            left: None,
            offers: None,
            answer: None,
            to_peer_id: None,
            offer_id: None,
        }
    }

    /// An announce carrying `offers`, as a browser sends it (numwant is the
    /// number of offers).
    pub fn with_offers(
        info_hash: Id20,
        peer_id: Id20,
        event: Option<AnnounceEvent>,
        offers: Vec<OfferEntry>,
    ) -> Self {
        Self {
            numwant: Some(offers.len() as u64),
            offers: Some(offers),
            ..Self::new(info_hash, peer_id, event)
        }
    }

    /// The message answering a relayed offer: from `peer_id` to the
    /// offerer `to_peer_id`, echoing `offer_id`.
    pub fn answer(
        info_hash: Id20,
        peer_id: Id20,
        to_peer_id: Id20,
        offer_id: Id20,
        sdp: String,
    ) -> Self {
        Self {
            answer: Some(SessionDescription {
                kind: SdpType::Answer,
                sdp,
            }),
            to_peer_id: Some(to_peer_id),
            offer_id: Some(offer_id),
            ..Self::new(info_hash, peer_id, None)
        }
    }
}

/// `action: "scrape"`: swarm counts for some info_hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScrapeRequest {
    /// One or many info_hashes (a single string is accepted too). Absent
    /// means "all swarms", which this tracker refuses.
    #[serde(
        default,
        deserialize_with = "field::scrape_info_hashes",
        skip_serializing_if = "Option::is_none"
    )]
    pub info_hash: Option<Vec<Id20>>,
}

/// Everything a peer sends a tracker, told apart by `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ClientMessage {
    /// `"announce"`
    Announce(AnnounceRequest),
    /// `"scrape"`
    Scrape(ScrapeRequest),
}

impl From<AnnounceRequest> for ClientMessage {
    fn from(r: AnnounceRequest) -> Self {
        Self::Announce(r)
    }
}

impl From<ScrapeRequest> for ClientMessage {
    fn from(r: ScrapeRequest) -> Self {
        Self::Scrape(r)
    }
}

/// The `action` a tracker message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `"announce"`
    Announce,
    /// `"scrape"`
    Scrape,
}

/// The tracker's reply to an announce without an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceReply {
    /// The swarm announced to (clients ignore replies for other swarms,
    /// since one socket carries several).
    pub info_hash: Id20,
    /// Members that have everything (`left: 0`).
    pub complete: u64,
    /// The other members.
    pub incomplete: u64,
    /// Seconds until the next announce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// A lower bound some trackers send instead of `interval`.
    #[serde(
        default,
        rename = "min interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_interval: Option<u64>,
    /// Something the client should know but that did not fail the announce
    /// (offers beyond the cap were dropped, say).
    #[serde(
        default,
        rename = "warning message",
        skip_serializing_if = "Option::is_none"
    )]
    pub warning: Option<String>,
}

/// An offer relayed from another member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedOffer {
    /// The swarm.
    pub info_hash: Id20,
    /// The offerer: the answer goes back with `to_peer_id` set to this.
    pub peer_id: Id20,
    /// The offer.
    pub offer: SessionDescription,
    /// To echo in the answer.
    pub offer_id: Id20,
}

/// An answer relayed back to the offerer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedAnswer {
    /// The swarm.
    pub info_hash: Id20,
    /// The answerer.
    pub peer_id: Id20,
    /// The answer.
    pub answer: SessionDescription,
    /// The offer it answers.
    pub offer_id: Id20,
}

/// Counts for one swarm in a [`ScrapeReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeCounts {
    /// Members with `left: 0`.
    pub complete: u64,
    /// The other members.
    pub incomplete: u64,
    /// Completed downloads; like bittorrent-tracker, this tracker only
    /// knows the lower bound `complete`.
    pub downloaded: u64,
}

/// `flags` of a [`ScrapeReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeFlags {
    /// Seconds a client should wait between scrapes.
    pub min_request_interval: u64,
}

/// The reply to a scrape: counts per requested info_hash (unknown swarms
/// count zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeReply {
    /// Keyed by binary-string info_hash.
    pub files: BTreeMap<Id20, ScrapeCounts>,
    /// Optional hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<ScrapeFlags>,
}

/// A refusal. `action` and `info_hash` are set whenever the request had
/// them, because bittorrent-tracker clients drop announce messages whose
/// `info_hash` is not theirs, and treat a message without `action` as a
/// broken tracker (they close the socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Human-readable reason.
    #[serde(rename = "failure reason")]
    pub reason: String,
    /// The action of the refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The info_hash of the refused request.
    #[serde(
        default,
        deserialize_with = "field::opt_info_hash",
        skip_serializing_if = "Option::is_none"
    )]
    pub info_hash: Option<Id20>,
}

/// Everything a tracker sends a peer.
///
/// Serializes to the flat objects of the protocol (with `action`); decodes
/// them by which fields they carry: `failure reason` → [`Failure`], `files`
/// → [`ScrapeReply`], `offer` → [`RelayedOffer`], `answer` →
/// [`RelayedAnswer`], otherwise [`AnnounceReply`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTrackerMessage")]
pub enum TrackerMessage {
    /// Reply to an announce.
    Announce(AnnounceReply),
    /// An offer from another member.
    Offer(RelayedOffer),
    /// An answer to one of our offers.
    Answer(RelayedAnswer),
    /// Reply to a scrape.
    Scrape(ScrapeReply),
    /// A refused request.
    Failure(Failure),
}

impl TrackerMessage {
    /// The swarm the message is about, if any.
    pub fn info_hash(&self) -> Option<Id20> {
        match self {
            Self::Announce(m) => Some(m.info_hash),
            Self::Offer(m) => Some(m.info_hash),
            Self::Answer(m) => Some(m.info_hash),
            Self::Scrape(_) => None,
            Self::Failure(m) => m.info_hash,
        }
    }
}

/// Adds `"action"` in front of a message body.
#[derive(Serialize)]
struct WithAction<'a, T> {
    action: Action,
    #[serde(flatten)]
    body: &'a T,
}

impl Serialize for TrackerMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let announce = Action::Announce;
        match self {
            Self::Announce(body) => WithAction {
                action: announce,
                body,
            }
            .serialize(s),
            Self::Offer(body) => WithAction {
                action: announce,
                body,
            }
            .serialize(s),
            Self::Answer(body) => WithAction {
                action: announce,
                body,
            }
            .serialize(s),
            Self::Scrape(body) => WithAction {
                action: Action::Scrape,
                body,
            }
            .serialize(s),
            Self::Failure(body) => body.serialize(s),
        }
    }
}

/// Every field any tracker message may carry, for decoding by shape.
#[derive(Deserialize)]
struct RawTrackerMessage {
    #[serde(default)]
    action: Option<Action>,
    #[serde(default, rename = "failure reason")]
    failure: Option<String>,
    #[serde(default, rename = "warning message")]
    warning: Option<String>,
    #[serde(default, deserialize_with = "field::opt_info_hash")]
    info_hash: Option<Id20>,
    #[serde(default, deserialize_with = "field::opt_peer_id")]
    peer_id: Option<Id20>,
    #[serde(default, deserialize_with = "field::opt_offer_id")]
    offer_id: Option<Id20>,
    #[serde(default)]
    offer: Option<SessionDescription>,
    #[serde(default)]
    answer: Option<SessionDescription>,
    #[serde(default, deserialize_with = "field::lenient_count")]
    complete: Option<u64>,
    #[serde(default, deserialize_with = "field::lenient_count")]
    incomplete: Option<u64>,
    #[serde(default, deserialize_with = "field::lenient_count")]
    interval: Option<u64>,
    #[serde(
        default,
        rename = "min interval",
        deserialize_with = "field::lenient_count"
    )]
    min_interval: Option<u64>,
    #[serde(default)]
    files: Option<BTreeMap<Id20, ScrapeCounts>>,
    #[serde(default)]
    flags: Option<ScrapeFlags>,
}

impl TryFrom<RawTrackerMessage> for TrackerMessage {
    type Error = String;

    fn try_from(m: RawTrackerMessage) -> Result<Self, String> {
        if let Some(reason) = m.failure {
            return Ok(Self::Failure(Failure {
                reason,
                action: m.action,
                info_hash: m.info_hash,
            }));
        }
        if m.action == Some(Action::Scrape) || m.files.is_some() {
            return Ok(Self::Scrape(ScrapeReply {
                files: m.files.unwrap_or_default(),
                flags: m.flags,
            }));
        }
        let info_hash = m.info_hash.ok_or("tracker message without info_hash")?;
        if let Some(offer) = m.offer {
            return Ok(Self::Offer(RelayedOffer {
                info_hash,
                peer_id: m.peer_id.ok_or("relayed offer without peer_id")?,
                offer,
                offer_id: m.offer_id.ok_or("relayed offer without offer_id")?,
            }));
        }
        if let Some(answer) = m.answer {
            return Ok(Self::Answer(RelayedAnswer {
                info_hash,
                peer_id: m.peer_id.ok_or("relayed answer without peer_id")?,
                answer,
                offer_id: m.offer_id.ok_or("relayed answer without offer_id")?,
            }));
        }
        Ok(Self::Announce(AnnounceReply {
            info_hash,
            complete: m.complete.unwrap_or(0),
            incomplete: m.incomplete.unwrap_or(0),
            interval: m.interval,
            min_interval: m.min_interval,
            warning: m.warning,
        }))
    }
}

/// Why a peer's message could not be decoded, with what could be salvaged
/// from it so the [`Failure`] reaches the right client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DecodeError {
    /// What was wrong, for the `failure reason`.
    pub reason: String,
    /// The request's `action`, if it named a known one.
    pub action: Option<Action>,
    /// The request's `info_hash`, if it was a valid one.
    pub info_hash: Option<Id20>,
}

impl DecodeError {
    /// The refusal to send back. Without a known action it says
    /// `"announce"`: bittorrent-tracker clients take a message with no or
    /// another action for a broken tracker and drop the socket, with all
    /// its swarms, over one bad message.
    pub fn to_failure(&self) -> Failure {
        Failure {
            reason: self.reason.clone(),
            action: Some(self.action.unwrap_or(Action::Announce)),
            info_hash: self.info_hash,
        }
    }
}

/// Decodes one message from a peer, with a reason fit for a `failure
/// reason` if it is not a valid announce or scrape.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, DecodeError> {
    let err = match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    if err.is_syntax() || err.is_eof() {
        return Err(DecodeError {
            reason: format!("malformed JSON: {err}"),
            action: None,
            info_hash: None,
        });
    }
    // Only on the failure path: look again, loosely, for what the reply
    // needs to reach the client.
    let Ok(mut probe) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
    else {
        return Err(DecodeError {
            reason: "a tracker message must be a JSON object".into(),
            action: None,
            info_hash: None,
        });
    };
    let action = match probe.get("action").map(|a| a.as_str()) {
        None => {
            return Err(DecodeError {
                reason: "missing action (expected \"announce\" or \"scrape\")".into(),
                action: None,
                info_hash: None,
            });
        }
        Some(Some("announce")) => Action::Announce,
        Some(Some("scrape")) => Action::Scrape,
        Some(other) => {
            let shown = match other {
                Some(s) => format!("{:?}", truncate(s, 40)),
                None => "(not a string)".into(),
            };
            return Err(DecodeError {
                reason: format!("unknown action {shown} (expected \"announce\" or \"scrape\")"),
                action: None,
                info_hash: None,
            });
        }
    };
    let info_hash = match (action, probe.remove("info_hash")) {
        (Action::Announce, Some(serde_json::Value::String(s))) => Id20::from_binary_str(&s).ok(),
        _ => None,
    };
    let what = match action {
        Action::Announce => "announce",
        Action::Scrape => "scrape",
    };
    Err(DecodeError {
        reason: format!("invalid {what}: {err}"),
        action: Some(action),
        info_hash,
    })
}

/// At most `max` characters of `s`, for echoing peer input in messages.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
