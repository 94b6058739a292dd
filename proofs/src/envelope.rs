//! Signed DAG-CBOR envelopes `{sig, body}` shared by receipts and roots.

use libp2p_identity::{Keypair, PeerId, PublicKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// SHA-256 of a signed envelope's bytes: a receipt's name.
pub type Hash = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("not canonical DAG-CBOR of the expected shape")]
    Malformed,
    #[error("format version {0} is not supported")]
    Version(u8),
    #[error("peer id {0} does not carry its public key")]
    NoPublicKey(String),
    #[error("signature does not match the signer {0}")]
    BadSignature(String),
    #[error("invalid peer id {0}")]
    BadPeer(String),
    #[error("invalid CID {0}")]
    BadCid(String),
    #[error("claims {0} bytes, more than one block can hold")]
    OverClaim(u64),
    #[error("invalid hash {0}")]
    BadHash(String),
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    // DAG-CBOR orders map keys by length, then bytes: `sig` before `body`.
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
    body: T,
}

/// Encodes `value` as DAG-CBOR.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Only plain structs of strings, integers and bytes reach here; they
    // always encode.
    serde_ipld_dagcbor::to_vec(value).unwrap_or_default()
}

/// Decodes DAG-CBOR, refusing any encoding but the canonical one.
pub(crate) fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, ProofError> {
    let value: T = serde_ipld_dagcbor::from_slice(bytes).map_err(|_| ProofError::Malformed)?;
    if encode(&value) != bytes {
        return Err(ProofError::Malformed);
    }
    Ok(value)
}

/// Signs `body` under `domain` and returns the envelope's bytes.
pub(crate) fn seal<T: Serialize>(key: &Keypair, domain: &[u8], body: &T) -> Vec<u8> {
    let body_bytes = encode(body);
    let sig = key
        .sign(&signed_message(domain, &body_bytes))
        .unwrap_or_default();
    encode(&Envelope { sig, body })
}

/// Opens an envelope: decodes it and checks its signature against `signer`,
/// which the caller takes from the body.
pub(crate) fn open<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    domain: &[u8],
    signer: impl FnOnce(&T) -> &str,
) -> Result<T, ProofError> {
    let env: Envelope<T> = decode(bytes)?;
    let signer = signer(&env.body).to_owned();
    let key = public_key(&signer)?;
    let message = signed_message(domain, &encode(&env.body));
    if !key.verify(&message, &env.sig) {
        return Err(ProofError::BadSignature(signer));
    }
    Ok(env.body)
}

fn signed_message(domain: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + body.len());
    m.extend_from_slice(domain);
    m.extend_from_slice(body);
    m
}

/// The public key inside a peer id. Ed25519 peer ids inline their key, so
/// no key server is needed.
pub fn public_key(peer: &str) -> Result<PublicKey, ProofError> {
    let id: PeerId = peer
        .parse()
        .map_err(|_| ProofError::BadPeer(peer.to_owned()))?;
    if id.to_string() != peer {
        return Err(ProofError::BadPeer(peer.to_owned()));
    }
    let mh = multihash_of(&id);
    if mh.0 != 0 {
        return Err(ProofError::NoPublicKey(peer.to_owned()));
    }
    PublicKey::try_decode_protobuf(&mh.1).map_err(|_| ProofError::NoPublicKey(peer.to_owned()))
}

/// (code, digest) of a peer id's multihash.
fn multihash_of(id: &PeerId) -> (u64, Vec<u8>) {
    let bytes = id.to_bytes();
    // A multihash is <varint code><varint length><digest>.
    let (code, rest) = read_varint(&bytes);
    let (len, rest) = read_varint(rest);
    let digest = rest.get(..len as usize).unwrap_or_default().to_vec();
    (code, digest)
}

fn read_varint(b: &[u8]) -> (u64, &[u8]) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(9) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, &b[i + 1..]);
        }
    }
    (u64::MAX, &[])
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

pub fn hash_hex(h: &Hash) -> String {
    hex::encode(h)
}

pub fn parse_hash(s: &str) -> Result<Hash, ProofError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).map_err(|_| ProofError::BadHash(s.to_owned()))?;
    Ok(h)
}
