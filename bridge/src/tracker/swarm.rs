//! One swarm: the members of an info_hash, with O(1) membership changes
//! and O(k) random choice of k distinct members to relay offers to.

use std::collections::HashMap;
use std::time::Instant;

use super::wire::Id20;

/// Identifies one connection (a WebSocket, or an in-process member).
pub(crate) type ConnId = u64;

/// A peer's membership of one swarm.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) peer_id: Id20,
    pub(crate) conn: ConnId,
    /// Announced `left: 0` or `event: completed`.
    pub(crate) complete: bool,
    pub(crate) last_seen: Instant,
    /// An in-process member: never expires, preferred for offers.
    pub(crate) local: bool,
}

/// Members are kept in a `Vec` (for random choice by index) with an index
/// by peer_id (for lookups and removal by `swap_remove`).
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    members: Vec<Member>,
    index: HashMap<Id20, usize>,
    complete: usize,
    /// peer_ids of the local members; few, so a `Vec`.
    locals: Vec<Id20>,
}

impl Swarm {
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn complete(&self) -> usize {
        self.complete
    }

    pub(crate) fn incomplete(&self) -> usize {
        self.members.len() - self.complete
    }

    pub(crate) fn locals(&self) -> usize {
        self.locals.len()
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    pub(crate) fn get(&self, peer_id: &Id20) -> Option<&Member> {
        self.index.get(peer_id).map(|&i| &self.members[i])
    }

    /// Refreshes a member: seen now, and complete if it says so (a peer
    /// that has everything does not become incomplete again).
    pub(crate) fn touch(&mut self, peer_id: &Id20, now: Instant, complete: bool) {
        let Some(&i) = self.index.get(peer_id) else {
            return;
        };
        let m = &mut self.members[i];
        m.last_seen = now;
        if complete && !m.complete {
            m.complete = true;
            self.complete += 1;
        }
    }

    /// Adds a member whose peer_id is not in the swarm yet.
    pub(crate) fn insert(&mut self, member: Member) {
        debug_assert!(!self.index.contains_key(&member.peer_id));
        if member.complete {
            self.complete += 1;
        }
        if member.local {
            self.locals.push(member.peer_id);
        }
        self.index.insert(member.peer_id, self.members.len());
        self.members.push(member);
    }

    pub(crate) fn remove(&mut self, peer_id: &Id20) -> Option<Member> {
        let i = self.index.remove(peer_id)?;
        let m = self.members.swap_remove(i);
        if let Some(moved) = self.members.get(i) {
            self.index.insert(moved.peer_id, i);
        }
        if m.complete {
            self.complete -= 1;
        }
        if m.local {
            self.locals.retain(|p| p != peer_id);
        }
        Some(m)
    }

    /// Non-local members last seen before `cutoff`.
    pub(crate) fn expired(&self, cutoff: Instant) -> Vec<Id20> {
        self.members
            .iter()
            .filter(|m| !m.local && m.last_seen < cutoff)
            .map(|m| m.peer_id)
            .collect()
    }

    /// Up to `k` distinct members other than `sender`, each to receive one
    /// offer. With `local_first`, local members are taken before random
    /// ones.
    pub(crate) fn choose(&self, k: usize, sender: &Id20, local_first: bool) -> Vec<&Member> {
        let mut chosen: Vec<&Member> = Vec::with_capacity(k);
        if k == 0 {
            return chosen;
        }
        if local_first {
            for p in &self.locals {
                if chosen.len() == k {
                    return chosen;
                }
                if p != sender {
                    chosen.extend(self.get(p));
                }
            }
        }
        // Draw enough indices that, after skipping the sender and the
        // locals already taken, k remain whenever the swarm has them.
        let skip = 1 + chosen.len();
        let want = (k - chosen.len() + skip).min(self.members.len());
        let taken_locally = chosen.len();
        let mut rng = rand::rng();
        for i in rand::seq::index::sample(&mut rng, self.members.len(), want) {
            if chosen.len() == k {
                break;
            }
            let m = &self.members[i];
            if &m.peer_id == sender
                || chosen[..taken_locally]
                    .iter()
                    .any(|c| c.peer_id == m.peer_id)
            {
                continue;
            }
            chosen.push(m);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8, local: bool) -> Member {
        Member {
            peer_id: Id20([n; 20]),
            conn: u64::from(n),
            complete: false,
            last_seen: Instant::now(),
            local,
        }
    }

    #[test]
    fn choice_is_distinct_excludes_the_sender_and_prefers_locals() {
        let mut s = Swarm::default();
        for n in 0..10 {
            s.insert(member(n, n == 7));
        }
        for _ in 0..200 {
            let sender = Id20([3; 20]);
            let chosen = s.choose(5, &sender, true);
            assert_eq!(chosen.len(), 5);
            assert_eq!(chosen[0].peer_id, Id20([7; 20]));
            let mut ids: Vec<_> = chosen.iter().map(|m| m.peer_id).collect();
            assert!(!ids.contains(&sender));
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 5);
        }
        // More offers than other members: each other member gets one.
        assert_eq!(s.choose(50, &Id20([3; 20]), false).len(), 9);
        assert_eq!(s.choose(50, &Id20([7; 20]), true).len(), 9);
    }

    #[test]
    fn removal_keeps_the_index_and_counts_right() {
        let mut s = Swarm::default();
        for n in 0..5 {
            s.insert(member(n, n == 0));
        }
        s.touch(&Id20([4; 20]), Instant::now(), true);
        assert_eq!((s.complete(), s.incomplete(), s.locals()), (1, 4, 1));
        assert!(s.remove(&Id20([1; 20])).is_some());
        assert!(s.remove(&Id20([1; 20])).is_none());
        assert_eq!(s.get(&Id20([4; 20])).unwrap().peer_id, Id20([4; 20]));
        assert!(s.remove(&Id20([4; 20])).is_some());
        assert!(s.remove(&Id20([0; 20])).is_some());
        assert_eq!((s.complete(), s.len(), s.locals()), (0, 2, 0));
        for m in s.members() {
            assert_eq!(s.get(&m.peer_id).unwrap().conn, m.conn);
        }
    }
}
