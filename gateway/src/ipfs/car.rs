//! CARv1 streams of what the node holds: the header names the requested
//! CID, then blocks follow in depth-first order as the walk reads them, so
//! a CAR of any size needs one block in memory at a time.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use cid::Cid;
use futures::stream::{self, BoxStream};

use super::negotiate::Scope;
use crate::source::{IpfsBlock, SegmentSource, SourceError};
use crate::telemetry::{Telemetry, Upload};

/// The multihash code of identity CIDs: their bytes are in the CID, and a
/// CAR never carries them as blocks.
pub const IDENTITY: u64 = 0x00;

/// Which blocks a CAR carries, once the root is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub scope: Scope,
    /// The file bytes `[from, to]` (inclusive) that entity-bytes selects.
    pub range: Option<(u64, u64)>,
    pub dups: bool,
}

/// The CARv1 header: a varint length, then DAG-CBOR
/// `{"roots": [root], "version": 1}` with its keys in canonical order.
pub fn header(root: &Cid) -> Bytes {
    let cid = root.to_bytes();
    let mut cbor = Vec::with_capacity(cid.len() + 24);
    cbor.push(0xa2); // map of two
    cbor.push(0x65); // text of five
    cbor.extend_from_slice(b"roots");
    cbor.push(0x81); // array of one
    cbor.extend_from_slice(&[0xd8, 0x2a]); // tag 42: a CID
    // Byte string: the CID after the multibase identity prefix 0x00.
    let n = cid.len() + 1;
    match n {
        0..=23 => cbor.push(0x40 | n as u8),
        24..=255 => cbor.extend_from_slice(&[0x58, n as u8]),
        _ => {
            cbor.push(0x59);
            cbor.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    cbor.push(0x00);
    cbor.extend_from_slice(&cid);
    cbor.push(0x67); // text of seven
    cbor.extend_from_slice(b"version");
    cbor.push(0x01);
    let mut out = BytesMut::with_capacity(cbor.len() + 2);
    varint(cbor.len() as u64, &mut out);
    out.put_slice(&cbor);
    out.freeze()
}

/// One CAR section's prefix: the varint length of CID and data, then the CID.
fn section_prefix(cid: &Cid, data_len: usize) -> Bytes {
    let cid = cid.to_bytes();
    let mut out = BytesMut::with_capacity(cid.len() + 10);
    varint((cid.len() + data_len) as u64, &mut out);
    out.put_slice(&cid);
    out.freeze()
}

fn varint(mut n: u64, out: &mut BytesMut) {
    while n >= 0x80 {
        out.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

/// A block still to visit, with the file offset its bytes start at when it
/// is a part of a UnixFS file whose layout is known.
struct Pending {
    cid: Cid,
    offset: Option<u64>,
}

struct Walk<S> {
    source: Arc<S>,
    telemetry: Arc<Telemetry>,
    plan: Plan,
    may_fetch: bool,
    stack: Vec<Pending>,
    sent: HashSet<Cid>,
    /// Bytes ready to go, in order.
    queue: VecDeque<Bytes>,
}

impl<S: SegmentSource> Walk<S> {
    /// Sends `block` (unless it went before and dups are off) and queues
    /// the children the plan asks for.
    fn visit(&mut self, cid: Cid, block: IpfsBlock, offset: Option<u64>) {
        if self.plan.dups || self.sent.insert(cid) {
            self.telemetry
                .counters
                .uploaded(Upload::Http, block.data.len() as u64);
            self.queue.push_back(section_prefix(&cid, block.data.len()));
            self.queue.push_back(block.data.clone());
        }
        let descend = match self.plan.scope {
            Scope::Block => false,
            // A UnixFS file's entity is the whole file; anything else's is
            // its root block.
            Scope::Entity => block.file.is_some(),
            Scope::All => true,
        };
        if !descend {
            return;
        }
        let layout = block
            .file
            .as_ref()
            .filter(|f| f.blocksizes.len() == block.links.len());
        let mut at = offset.zip(layout).map(|(o, f)| o.saturating_add(f.inline));
        let mut children = Vec::with_capacity(block.links.len());
        for (i, link) in block.links.iter().enumerate() {
            let size = layout.map(|f| f.blocksizes[i]);
            let wanted = match (self.plan.range, at, size) {
                (Some((from, to)), Some(at), Some(size)) => {
                    at <= to && at.saturating_add(size) > from
                }
                _ => true,
            };
            if wanted && link.hash().code() != IDENTITY {
                children.push(Pending {
                    cid: *link,
                    offset: at,
                });
            }
            at = at.zip(size).map(|(a, s)| a.saturating_add(s));
        }
        self.stack.extend(children.into_iter().rev());
    }

    /// The next bytes of the CAR, or `None` at its end.
    async fn next(&mut self) -> Option<Result<Bytes, SourceError>> {
        loop {
            if let Some(b) = self.queue.pop_front() {
                return Some(Ok(b));
            }
            let Pending { cid, offset } = self.stack.pop()?;
            match self.source.ipfs_block(&cid, self.may_fetch).await {
                Ok(Some(block)) => self.visit(cid, block, offset),
                // The status went out with the root: all a CAR can do now is
                // end early, which a client checking completeness sees.
                Ok(None) => {
                    self.stack.clear();
                    return Some(Err(SourceError::Unreachable(format!(
                        "block {cid} of the DAG is not held"
                    ))));
                }
                Err(e) => {
                    self.stack.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The CAR for `root`, whose block the caller has already read (`None`
/// for an identity CID, which a CAR names but does not carry).
pub fn stream<S: SegmentSource>(
    source: Arc<S>,
    telemetry: Arc<Telemetry>,
    root: Cid,
    block: Option<IpfsBlock>,
    plan: Plan,
    may_fetch: bool,
) -> BoxStream<'static, Result<Bytes, SourceError>> {
    let mut walk = Walk {
        source,
        telemetry,
        plan,
        may_fetch,
        stack: Vec::new(),
        sent: HashSet::new(),
        queue: VecDeque::from([header(&root)]),
    };
    if let Some(block) = block {
        walk.visit(root, block, Some(0));
    }
    Box::pin(stream::unfold(walk, |mut walk| async move {
        let item = walk.next().await?;
        Some((item, walk))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_canonical_dag_cbor() {
        // The header for bafkqaaa (roots: [bafkqaaa], version 1), spelled out
        // from the CARv1 and DAG-CBOR specifications.
        let cid: Cid = "bafkqaaa".parse().unwrap();
        let want: Vec<u8> = [
            &[0x19, 0xa2, 0x65][..],
            b"roots",
            &[0x81, 0xd8, 0x2a, 0x45, 0x00, 0x01, 0x55, 0x00, 0x00, 0x67],
            b"version",
            &[0x01],
        ]
        .concat();
        assert_eq!(&header(&cid)[..], &want[..]);
    }

    #[test]
    fn varints_are_unsigned_leb128() {
        for (n, want) in [
            (0u64, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (1 << 20, vec![0x80, 0x80, 0x40]),
        ] {
            let mut out = BytesMut::new();
            varint(n, &mut out);
            assert_eq!(&out[..], &want[..], "{n}");
        }
    }
}
