//! The Merkle tree of RFC 9162 §2.1 (Certificate Transparency): leaves are
//! hashed with a 0x00 prefix and nodes with 0x01, so no leaf can pose as a
//! node, and any leaf count has one tree.

use sha2::{Digest, Sha256};

use crate::Hash;

fn leaf(data: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A tree built level by level: pairs are hashed and an odd last node is
/// carried up unchanged, which gives RFC 9162's tree for any leaf count
/// while every proof costs only a walk up.
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: &[Hash]) -> Self {
        let mut levels = vec![leaves.iter().map(leaf).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up = below
                .chunks(2)
                .map(|p| {
                    if p.len() == 2 {
                        node(&p[0], &p[1])
                    } else {
                        p[0]
                    }
                })
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The root. The empty tree's root is SHA-256 of nothing.
    pub fn root(&self) -> Hash {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) => *r,
            None => Sha256::digest([]).into(),
        }
    }

    /// The audit path for leaf `index`, from the bottom up.
    pub fn proof(&self, mut index: usize) -> Vec<Hash> {
        let mut path = Vec::new();
        if index >= self.levels[0].len() {
            return path;
        }
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                path.push(*sibling);
            }
            index >>= 1;
        }
        path
    }
}

/// The root over `leaves` in order.
pub fn root(leaves: &[Hash]) -> Hash {
    Tree::new(leaves).root()
}

/// The audit path for leaf `index`.
pub fn proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    Tree::new(leaves).proof(index)
}

/// Checks that `data` is leaf `index` of a tree of `size` leaves with
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify(data: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf(data);
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect()
    }

    #[test]
    fn every_proof_of_every_size_verifies() {
        for n in 1..40 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = proof(&l, i);
                assert!(verify(&l[i], i as u64, n as u64, &p, &r), "n={n} i={i}");
                // Wrong index, wrong leaf, wrong root: all refused. (The
                // size is bound by the signed root's count, checked apart.)
                assert!(!verify(&l[i], ((i + 1) % n) as u64, n as u64, &p, &r) || n == 1);
                assert!(!verify(&l[(i + 1) % n], i as u64, n as u64, &p, &r) || n == 1);
                assert!(!verify(&l[i], i as u64, n as u64, &p, &[0; 32]));
            }
        }
    }

    /// RFC 9162's recursive definition, to check the level-built tree against.
    fn rfc_root(l: &[Hash]) -> Hash {
        match l.len() {
            0 => Sha256::digest([]).into(),
            1 => leaf(&l[0]),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node(&rfc_root(&l[..k]), &rfc_root(&l[k..]))
            }
        }
    }

    #[test]
    fn level_tree_equals_the_rfc_tree() {
        for n in 0..70 {
            assert_eq!(root(&leaves(n)), rfc_root(&leaves(n)), "n={n}");
        }
    }

    #[test]
    fn matches_rfc_structure() {
        let l = leaves(3);
        let expect = node(&node(&leaf(&l[0]), &leaf(&l[1])), &leaf(&l[2]));
        assert_eq!(root(&l), expect);
        assert_eq!(root(&[]), <[u8; 32]>::from(Sha256::digest([])));
    }
}
