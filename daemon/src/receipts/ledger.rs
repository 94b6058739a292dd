//! What this node sent each peer and what that peer has signed for. A
//! receipt may claim only bytes that were sent and not yet receipted; a
//! peer whose unreceipted bytes pass the limit is served last.

use std::collections::HashMap;

use libp2p::PeerId;
use serde::Serialize;

/// Blocks remembered per peer while waiting for their receipts.
const MAX_OWED_BLOCKS: usize = 8192;
/// Peers remembered; past this, peers that owe nothing are forgotten first.
const MAX_PEERS: usize = 10_000;

#[derive(Default)]
struct PeerAccount {
    sent: u64,
    receipted: u64,
    receipts: u64,
    refused: u64,
    /// Unreceipted bytes per block CID.
    owed: HashMap<String, u64>,
    /// Sent bytes with no receipt yet, forgotten blocks included.
    unreceipted: u64,
}

/// One peer's line in `GET /api/v1/proofs/peers`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PeerLedger {
    pub peer: String,
    /// `libp2p` for a peer that can sign receipts; `bitswap` and `p2pml`
    /// for the lines that sum what IPFS peers and p2p-media-loader
    /// browsers took, which no receipt covers.
    pub kind: &'static str,
    pub bytes_sent: u64,
    pub bytes_receipted: u64,
    pub bytes_unreceipted: u64,
    pub receipts: u64,
    pub receipts_refused: u64,
    /// Served only after peers that send receipts.
    pub deprioritized: bool,
}

pub struct Ledger {
    peers: HashMap<PeerId, PeerAccount>,
    limit: u64,
}

impl Ledger {
    /// `limit`: unreceipted bytes a peer may owe before it loses priority.
    pub fn new(limit: u64) -> Self {
        Self {
            peers: HashMap::new(),
            limit,
        }
    }

    pub fn sent(&mut self, peer: PeerId, cid: String, bytes: u64) {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            self.peers.retain(|_, a| a.unreceipted > 0);
            if self.peers.len() >= MAX_PEERS {
                // All owe: keep the largest debts, which matter for priority.
                let mut debts: Vec<u64> = self.peers.values().map(|a| a.unreceipted).collect();
                debts.sort_unstable();
                let cut = debts[debts.len() / 2];
                self.peers.retain(|_, a| a.unreceipted > cut);
            }
        }
        let a = self.peers.entry(peer).or_default();
        a.sent += bytes;
        a.unreceipted += bytes;
        if a.owed.len() >= MAX_OWED_BLOCKS && !a.owed.contains_key(&cid) {
            // A peer that never signs would grow this without end; its debt
            // stays counted in `unreceipted`.
            a.owed.clear();
        }
        *a.owed.entry(cid).or_default() += bytes;
    }

    /// Whether `bytes` of `cid` were sent to `peer` and not yet receipted.
    pub fn owed(&self, peer: &PeerId, cid: &str, bytes: u64) -> bool {
        self.peers
            .get(peer)
            .and_then(|a| a.owed.get(cid))
            .is_some_and(|&o| o >= bytes)
    }

    pub fn settle(&mut self, peer: PeerId, cid: &str, bytes: u64) {
        let a = self.peers.entry(peer).or_default();
        if let Some(o) = a.owed.get_mut(cid) {
            *o -= bytes.min(*o);
            if *o == 0 {
                a.owed.remove(cid);
            }
        }
        a.receipted += bytes;
        a.receipts += 1;
        a.unreceipted = a.unreceipted.saturating_sub(bytes);
    }

    pub fn refused(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_default().refused += 1;
    }

    pub fn deprioritized(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|a| a.unreceipted > self.limit)
    }

    pub fn count_deprioritized(&self) -> u64 {
        self.peers
            .values()
            .filter(|a| a.unreceipted > self.limit)
            .count() as u64
    }

    pub fn report(&self) -> Vec<PeerLedger> {
        let mut out: Vec<PeerLedger> = self
            .peers
            .iter()
            .map(|(p, a)| PeerLedger {
                peer: p.to_string(),
                kind: "libp2p",
                bytes_sent: a.sent,
                bytes_receipted: a.receipted,
                bytes_unreceipted: a.unreceipted,
                receipts: a.receipts,
                receipts_refused: a.refused,
                deprioritized: a.unreceipted > self.limit,
            })
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.bytes_sent));
        out
    }

    /// A line for bytes that peers of a protocol without receipts took,
    /// all of them together: shown unreceipted, never deprioritized.
    pub fn unreceipted_line(peer: &str, kind: &'static str, bytes: u64) -> PeerLedger {
        PeerLedger {
            peer: peer.to_owned(),
            kind,
            bytes_sent: bytes,
            bytes_receipted: 0,
            bytes_unreceipted: bytes,
            receipts: 0,
            receipts_refused: 0,
            deprioritized: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_settle_only_what_was_sent() {
        let mut l = Ledger::new(1000);
        let p = PeerId::random();
        l.sent(p, "a".into(), 600);
        assert!(l.owed(&p, "a", 600));
        assert!(!l.owed(&p, "a", 601));
        assert!(!l.owed(&p, "b", 1));
        l.settle(p, "a", 600);
        assert!(!l.owed(&p, "a", 1), "a block is receipted once");
        l.sent(p, "b".into(), 700);
        l.sent(p, "c".into(), 700);
        assert!(l.deprioritized(&p));
        l.settle(p, "b", 700);
        assert!(!l.deprioritized(&p));
        let r = &l.report()[0];
        assert_eq!(
            (r.bytes_sent, r.bytes_receipted, r.receipts),
            (2000, 1300, 2)
        );
    }
}
