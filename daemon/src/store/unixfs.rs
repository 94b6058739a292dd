//! Content identity (DESIGN §2): exactly what
//! `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` gives.
//!
//! Up to 1 MiB a segment is one raw block. Above that it is a balanced UnixFS
//! file of dag-pb nodes over 1 MiB raw leaves, at most 174 links a node.
//! The dag-pb encoding is written by hand: it is a few dozen bytes of
//! protobuf, and the canonical form puts Links (field 2) before Data
//! (field 1), which derive-based encoders do not do.

use std::io::Read;

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

pub const CHUNK: usize = 1 << 20;
pub const MAX_LINKS: usize = 174;
pub const RAW: u64 = 0x55;
pub const DAG_PB: u64 = 0x70;
const SHA2_256: u64 = 0x12;

/// One content-addressed block.
#[derive(Clone, Debug)]
pub struct Block {
    pub cid: Cid,
    pub data: Bytes,
}

/// A file's DAG: its root CID and every block, leaves in file order.
#[derive(Debug)]
pub struct Dag {
    pub root: Cid,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Copy)]
struct Link {
    cid: Cid,
    /// The whole subtree's encoded size (dag-pb Tsize).
    tsize: u64,
    /// File bytes below this link (UnixFS blocksizes).
    file_size: u64,
}

pub fn block_cid(codec: u64, data: &[u8]) -> Cid {
    Cid::new_v1(codec, Code::Sha2_256.digest(data))
}

/// Whether `data` hashes to `cid`. Only sha2-256 is accepted.
pub fn verify(cid: &Cid, data: &[u8]) -> bool {
    cid.hash().code() == SHA2_256 && Code::Sha2_256.digest(data) == *cid.hash()
}

/// Chunks `data` and builds its DAG. Leaves share `data`'s buffer.
pub fn import(data: &Bytes) -> Dag {
    let mut blocks = Vec::with_capacity(data.len() / CHUNK + 2);
    let mut leaves = Vec::with_capacity(data.len() / CHUNK + 1);
    let mut offset = 0;
    loop {
        let end = (offset + CHUNK).min(data.len());
        let leaf = data.slice(offset..end);
        let cid = block_cid(RAW, &leaf);
        leaves.push(Link {
            cid,
            tsize: leaf.len() as u64,
            file_size: leaf.len() as u64,
        });
        blocks.push(Block { cid, data: leaf });
        offset = end;
        if offset >= data.len() {
            break;
        }
    }
    let root = build_tree(leaves, &mut |b| blocks.push(b));
    Dag { root, blocks }
}

/// The CID of everything `reader` yields, holding one chunk at a time.
pub fn cid_of_reader(mut reader: impl Read) -> std::io::Result<Cid> {
    let mut leaves = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled > 0 || leaves.is_empty() {
            let cid = block_cid(RAW, &buf[..filled]);
            leaves.push(Link {
                cid,
                tsize: filled as u64,
                file_size: filled as u64,
            });
        }
        if filled < CHUNK {
            break;
        }
    }
    Ok(build_tree(leaves, &mut |_| {}))
}

/// The balanced layout: group links by 174 until one remains. A file of one
/// leaf is that leaf.
fn build_tree(mut level: Vec<Link>, emit: &mut impl FnMut(Block)) -> Cid {
    if level.len() == 1 {
        return level[0].cid;
    }
    while level.len() > 1 {
        level = level
            .chunks(MAX_LINKS)
            .map(|children| {
                let data = Bytes::from(encode_file_node(children));
                let link = Link {
                    cid: block_cid(DAG_PB, &data),
                    tsize: data.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
                    file_size: children.iter().map(|c| c.file_size).sum(),
                };
                emit(Block {
                    cid: link.cid,
                    data,
                });
                link
            })
            .collect();
    }
    level[0].cid
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// PBNode { Links, Data: UnixFS { Type: File, filesize, blocksizes } }.
fn encode_file_node(children: &[Link]) -> Vec<u8> {
    let mut out = Vec::with_capacity(children.len() * 48 + 16);
    for c in children {
        let mut link = Vec::with_capacity(48);
        put_bytes_field(&mut link, 0x0a, &c.cid.to_bytes()); // Hash
        put_bytes_field(&mut link, 0x12, b""); // Name, present and empty
        link.push(0x18); // Tsize
        put_varint(&mut link, c.tsize);
        put_bytes_field(&mut out, 0x12, &link);
    }
    let mut unixfs = vec![0x08, 0x02]; // Type = File
    unixfs.push(0x18); // filesize
    put_varint(&mut unixfs, children.iter().map(|c| c.file_size).sum());
    for c in children {
        unixfs.push(0x20); // blocksizes, unpacked
        put_varint(&mut unixfs, c.file_size);
    }
    put_bytes_field(&mut out, 0x0a, &unixfs);
    out
}

#[derive(Debug, thiserror::Error)]
#[error("malformed dag-pb node")]
pub struct Malformed;

fn get_varint(buf: &mut &[u8]) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(Malformed)?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed)
}

fn get_bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Malformed> {
    let len = usize::try_from(get_varint(buf)?).map_err(|_| Malformed)?;
    if len > buf.len() {
        return Err(Malformed);
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Ok(field)
}

/// The child CIDs of a dag-pb node, in order.
pub fn links(node: &[u8]) -> Result<Vec<Cid>, Malformed> {
    decode(node).map(|n| n.links)
}

/// What a dag-pb node holds: its links, and when it is a UnixFS file (or
/// raw) node, the bytes of its own and what each link holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    pub links: Vec<Cid>,
    /// `(inline, blocksizes)` of a UnixFS file node.
    pub file: Option<(u64, Vec<u64>)>,
}

pub fn decode(mut node: &[u8]) -> Result<Node, Malformed> {
    let mut out = Node {
        links: Vec::new(),
        file: None,
    };
    while !node.is_empty() {
        let key = get_varint(&mut node)?;
        match (key >> 3, key & 7) {
            (2, 2) => {
                let mut link = get_bytes(&mut node)?;
                while !link.is_empty() {
                    let key = get_varint(&mut link)?;
                    match (key >> 3, key & 7) {
                        (1, 2) => out
                            .links
                            .push(Cid::try_from(get_bytes(&mut link)?).map_err(|_| Malformed)?),
                        _ => skip(key, &mut link)?,
                    }
                }
            }
            (1, 2) => out.file = file_layout(get_bytes(&mut node)?)?,
            _ => skip(key, &mut node)?,
        }
    }
    Ok(out)
}

/// UnixFS `Data`: for Raw (0) and File (2) nodes, the length of the inline
/// bytes and the blocksizes; `None` for directories and the rest.
fn file_layout(mut data: &[u8]) -> Result<Option<(u64, Vec<u64>)>, Malformed> {
    let mut kind = None;
    let mut inline = 0;
    let mut sizes = Vec::new();
    while !data.is_empty() {
        let key = get_varint(&mut data)?;
        match (key >> 3, key & 7) {
            (1, 0) => kind = Some(get_varint(&mut data)?),
            (2, 2) => inline = get_bytes(&mut data)?.len() as u64,
            (4, 0) => sizes.push(get_varint(&mut data)?),
            (4, 2) => {
                let mut packed = get_bytes(&mut data)?;
                while !packed.is_empty() {
                    sizes.push(get_varint(&mut packed)?);
                }
            }
            _ => skip(key, &mut data)?,
        }
    }
    Ok(matches!(kind, Some(0 | 2)).then_some((inline, sizes)))
}

fn skip(key: u64, buf: &mut &[u8]) -> Result<(), Malformed> {
    match key & 7 {
        2 => get_bytes(buf).map(drop),
        0 => get_varint(buf).map(drop),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Bytes {
        (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
    }

    #[test]
    fn import_and_streaming_agree_and_links_decode() {
        for n in [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let data = pattern(n);
            let dag = import(&data);
            assert_eq!(dag.root, cid_of_reader(&data[..]).unwrap(), "size {n}");
            for b in &dag.blocks {
                assert!(verify(&b.cid, &b.data));
            }
            if n > CHUNK {
                let root = dag.blocks.iter().find(|b| b.cid == dag.root).unwrap();
                let kids = links(&root.data).unwrap();
                let node = decode(&root.data).unwrap();
                let sizes: Vec<u64> = kids
                    .iter()
                    .map(|k| dag.blocks.iter().find(|b| b.cid == *k).unwrap().data.len() as u64)
                    .collect();
                assert_eq!(node.file, Some((0, sizes)), "size {n}");
                assert_eq!(kids.len(), n.div_ceil(CHUNK));
                let joined: Vec<u8> = kids
                    .iter()
                    .flat_map(|k| {
                        dag.blocks
                            .iter()
                            .find(|b| b.cid == *k)
                            .unwrap()
                            .data
                            .to_vec()
                    })
                    .collect();
                assert_eq!(joined, data.to_vec());
            } else {
                assert_eq!(dag.root.codec(), RAW);
            }
        }
    }

    #[test]
    fn wrong_bytes_fail_verification() {
        let cid = block_cid(RAW, b"hello");
        assert!(verify(&cid, b"hello"));
        assert!(!verify(&cid, b"hellO"));
        assert!(links(&[0x12, 0x05, 0x0a]).is_err());
    }
}
