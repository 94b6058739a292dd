//! The Bitswap 1.2.0 client: blocks by CID from IPFS peers (Helia, Kubo)
//! that do not speak the block protocol. A block is asked of every such
//! peer with want-have, then of the first that has it with want-block; the
//! next "have" is asked when that one stalls. Answers come on streams the
//! peers open to this node, which the server reads and hands to [`Wants`].
//!
//! A block's CID is rebuilt from its prefix and its bytes, so a peer
//! cannot pass off wrong bytes under a wanted CID; one that sends a block
//! this node never asked it for is lying, and is penalised as a block
//! protocol liar is.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::AsyncWriteExt;
use libp2p::PeerId;
use multihash_codetable::{Code, MultihashDigest};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use super::Swarm;
use super::bitswap::PROTOCOL;
use super::bitswap_pb::{self as pb, DONT_HAVE, HAVE, WANT_BLOCK, WANT_HAVE};
use crate::store::unixfs;

/// The CIDs asked of each peer lately, so a late answer to a want given up
/// on is not taken for a lie.
const RECENT_WANTS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum BitswapError {
    #[error("no IPFS peer has {0}")]
    NotFound(Cid),
    #[error("IPFS peers did not deliver {0} before the deadline")]
    Deadline(Cid),
}

/// What a peer answered about one CID.
#[derive(Debug)]
enum Answer {
    Block(Bytes),
    Have,
    DontHave,
}

/// Where one fetch hears what peers answered.
type Answers = mpsc::UnboundedSender<(PeerId, Answer)>;

/// The wants under way, and what each peer was asked lately.
#[derive(Default)]
pub struct Wants {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    waiting: HashMap<Cid, Vec<(u64, Answers)>>,
    asked: HashMap<PeerId, VecDeque<Cid>>,
}

impl Wants {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, cid: Cid) -> (u64, mpsc::UnboundedReceiver<(PeerId, Answer)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut r = self.lock();
        r.next_id += 1;
        let id = r.next_id;
        r.waiting.entry(cid).or_default().push((id, tx));
        (id, rx)
    }

    fn unregister(&self, cid: &Cid, id: u64) {
        let mut r = self.lock();
        if let Some(list) = r.waiting.get_mut(cid) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                r.waiting.remove(cid);
            }
        }
    }

    fn asked(&self, peer: PeerId, cid: Cid) {
        let mut r = self.lock();
        let recent = r.asked.entry(peer).or_default();
        if !recent.contains(&cid) {
            if recent.len() == RECENT_WANTS {
                recent.pop_front();
            }
            recent.push_back(cid);
        }
    }

    /// Forgets a peer that disconnected.
    pub fn forget(&self, peer: &PeerId) {
        self.lock().asked.remove(peer);
    }

    /// Hands the blocks and presences of a message from `peer` to the wants
    /// waiting for them. Returns whether the peer sent a block it was never
    /// asked for, which is a lie.
    pub fn deliver(&self, peer: PeerId, message: &pb::Message) -> bool {
        let mut lied = false;
        let r = self.lock();
        let was_asked = |cid: &Cid| r.asked.get(&peer).is_some_and(|a| a.contains(cid));
        let send = |cid: &Cid, answer: &dyn Fn() -> Answer| {
            for (_, tx) in r.waiting.get(cid).into_iter().flatten() {
                let _ = tx.send((peer, answer()));
            }
        };
        for block in &message.payload {
            match cid_of(&block.prefix, &block.data) {
                Some(cid) if was_asked(&cid) => {
                    let data = Bytes::copy_from_slice(&block.data);
                    send(&cid, &|| Answer::Block(data.clone()));
                }
                _ => lied = true,
            }
        }
        for presence in &message.block_presences {
            let Ok(cid) = Cid::try_from(presence.cid.as_slice()) else {
                continue;
            };
            match presence.r#type {
                HAVE => send(&cid, &|| Answer::Have),
                DONT_HAVE => send(&cid, &|| Answer::DontHave),
                _ => {}
            }
        }
        lied
    }
}

/// The CID of `data` under `prefix` (version, codec, hash code, digest
/// length); `None` for a hash this node does not compute.
fn cid_of(mut prefix: &[u8], data: &[u8]) -> Option<Cid> {
    let mut next = || {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = prefix.split_first()?;
            prefix = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    };
    let (version, codec, code, len) = (next()?, next()?, next()?, next()?);
    if code != u64::from(Code::Sha2_256) || len != 32 {
        return None;
    }
    let hash = Code::Sha2_256.digest(data);
    match version {
        0 if codec == unixfs::DAG_PB => Cid::new_v0(hash).ok(),
        1 => Some(Cid::new_v1(codec, hash)),
        _ => None,
    }
}

/// Sends one wantlist entry to `peer` on a stream of its own.
async fn want(swarm: &Swarm, peer: PeerId, cid: Cid, want_type: i32, cancel: bool) -> bool {
    let message = pb::Message {
        wantlist: Some(pb::Wantlist {
            entries: vec![pb::Entry {
                block: cid.to_bytes(),
                priority: 1,
                cancel,
                want_type,
                send_dont_have: !cancel,
            }],
            full: false,
        }),
        ..Default::default()
    };
    let Ok(mut stream) = swarm.control().open_stream(peer, PROTOCOL).await else {
        return false;
    };
    let sent = pb::write(&mut stream, &message).await.is_ok();
    let _ = stream.close().await;
    sent
}

/// One block from the IPFS peers in `peers`, by `deadline`. A peer that
/// said it has the block gets `block_timeout` to send it before the next
/// one is asked. Its bytes hash to `cid`: the CID was rebuilt from them.
pub async fn fetch(
    swarm: &Swarm,
    peers: &[PeerId],
    cid: Cid,
    block_timeout: Duration,
    deadline: Instant,
) -> Result<(PeerId, Bytes), BitswapError> {
    let wants = &swarm.wants;
    let (id, mut answers) = wants.register(cid);
    for &peer in peers {
        wants.asked(peer, cid);
    }
    let result = async {
        let asks = peers
            .iter()
            .map(|&p| async move { want(swarm, p, cid, WANT_HAVE, false).await.then_some(p) });
        let mut undecided: HashSet<PeerId> = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut have: VecDeque<PeerId> = VecDeque::new();
        let mut asked_block: Option<(PeerId, Instant)> = None;
        loop {
            if asked_block.is_none()
                && let Some(peer) = have.pop_front()
                && want(swarm, peer, cid, WANT_BLOCK, false).await
            {
                asked_block = Some((peer, Instant::now() + block_timeout));
            }
            if asked_block.is_none() && have.is_empty() && undecided.is_empty() {
                return Err(BitswapError::NotFound(cid));
            }
            let until = asked_block.map_or(deadline, |(_, t)| t.min(deadline));
            let answer = tokio::time::timeout_at(until, answers.recv()).await;
            match answer {
                Ok(Some((peer, Answer::Block(data)))) => return Ok((peer, data)),
                Ok(Some((peer, Answer::Have))) => {
                    if undecided.remove(&peer) {
                        have.push_back(peer);
                    }
                }
                Ok(Some((peer, Answer::DontHave))) => {
                    undecided.remove(&peer);
                    if asked_block.is_some_and(|(p, _)| p == peer) {
                        asked_block = None;
                    }
                }
                Ok(None) => return Err(BitswapError::NotFound(cid)),
                Err(_) if Instant::now() >= deadline => return Err(BitswapError::Deadline(cid)),
                // The peer asked for the block stalled: the next "have".
                Err(_) => {
                    if let Some((peer, _)) = asked_block.take() {
                        debug!(%peer, cid = %cid, "bitswap peer stalled");
                    }
                }
            }
        }
    }
    .await;
    wants.unregister(&cid, id);
    // Cancel the wants left with the peers, without waiting on them.
    let (swarm, peers) = (swarm.clone(), peers.to_vec());
    tokio::spawn(async move {
        for peer in peers {
            want(&swarm, peer, cid, WANT_BLOCK, true).await;
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_are_rebuilt_from_prefix_and_bytes() {
        let raw = unixfs::block_cid(unixfs::RAW, b"hello");
        assert_eq!(cid_of(&pb::prefix(&raw), b"hello"), Some(raw));
        assert_ne!(cid_of(&pb::prefix(&raw), b"hellO"), Some(raw));
        let pb_node = unixfs::block_cid(unixfs::DAG_PB, b"node");
        let v0 = Cid::new_v0(*pb_node.hash()).unwrap();
        assert_eq!(cid_of(&pb::prefix(&v0), b"node"), Some(v0));
        // Another hash function is not computed here.
        assert_eq!(cid_of(&[0x01, 0x55, 0x1e, 0x20], b"hello"), None);
        assert_eq!(cid_of(&[0x01, 0x55], b"hello"), None);
    }

    #[test]
    fn blocks_go_to_their_wants_and_unasked_blocks_are_lies() {
        let wants = Wants::default();
        let peer = PeerId::random();
        let cid = unixfs::block_cid(unixfs::RAW, b"hello");
        let (id, mut rx) = wants.register(cid);
        wants.asked(peer, cid);
        let block = |data: &[u8]| pb::Message {
            payload: vec![pb::Block {
                prefix: pb::prefix(&cid),
                data: data.to_vec(),
            }],
            ..Default::default()
        };
        assert!(!wants.deliver(peer, &block(b"hello")));
        assert!(
            matches!(rx.try_recv(), Ok((p, Answer::Block(d))) if p == peer && &d[..] == b"hello")
        );
        // Wrong bytes under the wanted prefix make another CID: a lie.
        assert!(wants.deliver(peer, &block(b"hellO")));
        assert!(rx.try_recv().is_err());
        // Another peer was never asked.
        assert!(wants.deliver(PeerId::random(), &block(b"hello")));
        wants.unregister(&cid, id);
        // A late answer to a want given up on is no lie.
        assert!(!wants.deliver(peer, &block(b"hello")));
    }
}
