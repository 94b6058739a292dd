//! CID maps (DESIGN §3): for each rendition, each segment with its CID and
//! size, signed by the publisher's libp2p key. A viewer that trusts the
//! publisher fetches those segments from peers, checking every block.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

/// The map's `io.swarmseed.cidmap` session-data id in master playlists.
pub const SESSION_DATA_ID: &str = "io.swarmseed.cidmap";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CidMap {
    pub v: u32,
    pub video: String,
    /// The master playlist URL.
    pub url: String,
    pub created_ms: u64,
    pub renditions: Vec<Rendition>,
    /// Peer id of the signer; absent on maps served by the origin itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// Base64 signature over the map with this field empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rendition {
    /// The media playlist URL.
    pub playlist: String,
    /// In playlist order.
    pub segments: Vec<Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The segment's key: its URL, with ` bytes=OFFSET+LENGTH` for a byte range.
    pub key: String,
    pub cid: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("map is not signed")]
    Unsigned,
    #[error("publisher {0:?} is not a peer id with an embedded key")]
    BadPublisher(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("malformed map: {0}")]
    Malformed(String),
}

impl CidMap {
    pub fn new(video: String, url: String, renditions: Vec<Rendition>) -> Self {
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            v: 1,
            video,
            url,
            created_ms,
            renditions,
            publisher: None,
            signature: None,
        }
    }

    /// The bytes a signature covers: the map as JSON, signature left out.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature = None;
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }

    pub fn sign(mut self, key: &Keypair) -> Self {
        self.publisher = Some(key.public().to_peer_id().to_string());
        self.signature = None;
        self.signature = key
            .sign(&self.signing_bytes())
            .ok()
            .map(|s| STANDARD.encode(s));
        self
    }

    /// Checks the signature with the key inside the publisher's peer id.
    pub fn verify(&self) -> Result<PeerId, MapError> {
        let (Some(publisher), Some(signature)) = (&self.publisher, &self.signature) else {
            return Err(MapError::Unsigned);
        };
        let peer: PeerId = publisher
            .parse()
            .map_err(|_| MapError::BadPublisher(publisher.clone()))?;
        let key = public_key_of(&peer).ok_or_else(|| MapError::BadPublisher(publisher.clone()))?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| MapError::BadSignature)?;
        if key.verify(&self.signing_bytes(), &signature) {
            Ok(peer)
        } else {
            Err(MapError::BadSignature)
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, MapError> {
        let map: CidMap =
            serde_json::from_slice(bytes).map_err(|e| MapError::Malformed(e.to_string()))?;
        if map.v != 1 {
            return Err(MapError::Malformed(format!("version {}", map.v)));
        }
        Ok(map)
    }

    pub fn segment_count(&self) -> usize {
        self.renditions.iter().map(|r| r.segments.len()).sum()
    }
}

/// Every rendition of the video at `url` with its segments and init
/// sections, in playlist order. `fetch` returns a playlist's body and the
/// URL its relative URIs resolve against.
pub async fn renditions<F, Fut>(
    url: &url::Url,
    mut fetch: F,
) -> Result<Vec<(String, Vec<gateway::SegmentKey>)>, String>
where
    F: FnMut(url::Url) -> Fut,
    Fut: std::future::Future<Output = Result<(bytes::Bytes, url::Url), String>>,
{
    let (body, base) = fetch(url.clone())
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let refs = gateway::references(&body, &base).map_err(|e| format!("{url}: {e}"))?;
    let mut out = Vec::new();
    if refs.playlists.is_empty() {
        out.push((url.to_string(), refs.segments));
    }
    for child in refs.playlists {
        let (body, base) = fetch(child.clone())
            .await
            .map_err(|e| format!("{child}: {e}"))?;
        let r = gateway::references(&body, &base).map_err(|e| format!("{child}: {e}"))?;
        out.push((child.to_string(), r.segments));
    }
    Ok(out)
}

/// Ed25519 peer ids carry their public key (identity multihash).
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let mh = peer.as_ref();
    (mh.code() == 0)
        .then(|| PublicKey::try_decode_protobuf(mh.digest()).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> CidMap {
        CidMap::new(
            "vid".into(),
            "http://o/master.m3u8".into(),
            vec![Rendition {
                playlist: "http://o/v0.m3u8".into(),
                segments: vec![Entry {
                    key: "http://o/a.ts".into(),
                    cid: "bafkreiabc".into(),
                    size: 10,
                }],
            }],
        )
    }

    #[test]
    fn signed_maps_verify_and_tampering_is_caught() {
        let key = Keypair::generate_ed25519();
        let signed = map().sign(&key);
        assert_eq!(signed.verify().unwrap(), key.public().to_peer_id());
        let round = CidMap::from_json(&signed.to_json()).unwrap();
        assert_eq!(round.verify().unwrap(), key.public().to_peer_id());

        let mut tampered = signed.clone();
        tampered.renditions[0].segments[0].cid = "bafkreievil".into();
        assert!(matches!(tampered.verify(), Err(MapError::BadSignature)));
        let mut stolen = signed.clone();
        stolen.publisher = Some(
            Keypair::generate_ed25519()
                .public()
                .to_peer_id()
                .to_string(),
        );
        assert!(matches!(stolen.verify(), Err(MapError::BadSignature)));
        assert!(matches!(map().verify(), Err(MapError::Unsigned)));
    }
}
