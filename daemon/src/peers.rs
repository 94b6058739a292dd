//! Fetching whole segments from peers: the root block, then the leaves from
//! several peers at once, every block checked against its CID. A peer that
//! sends wrong bytes is blocked and the block is asked of the next. Every
//! verified block earns its provider a signed receipt. Connected IPFS peers
//! are asked over Bitswap for what no peer with the block protocol sent;
//! they sign no receipts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cid::Cid;
use futures::StreamExt;
use libp2p::PeerId;
use tokio::time::Instant;
use tracing::debug;

use crate::receipts::ReceiptSender;
use crate::store::unixfs::{self, Block};
use crate::swarm::Swarm;
use crate::swarm::bitswap_client::{self, BitswapError};
use crate::swarm::blocks::{FetchError, fetch_block};

/// Streams opened per block and peer before the next peer is asked.
const STREAM_TRIES: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("no peer delivered {0}")]
    NoPeer(Cid),
    #[error("peers did not deliver before the deadline")]
    Deadline,
    #[error("the DAG under {0} does not match its recorded size")]
    Malformed(Cid),
}

#[derive(Clone, Copy, Debug)]
pub struct PeerLimits {
    pub max_block: u64,
    pub block_timeout: Duration,
    /// Blocks of one segment asked for at once.
    pub parallel: usize,
    /// Look on the IPFS DHT for providers of a file no connected peer has.
    pub ipfs_dht: bool,
}

/// Who a file's blocks are asked of: peers with the block protocol (less
/// any caught lying), then IPFS peers over Bitswap.
struct Sources {
    libp2p: Arc<Mutex<Vec<PeerId>>>,
    ipfs: Arc<Vec<PeerId>>,
}

impl Sources {
    fn new(peers: Vec<PeerId>, ipfs: Vec<PeerId>) -> Self {
        let peers = peers.into_iter().filter(|p| !ipfs.contains(p)).collect();
        Sources {
            libp2p: Arc::new(Mutex::new(peers)),
            ipfs: Arc::new(ipfs),
        }
    }
}

/// How long a provider found on the IPFS DHT may stay connected without
/// saying (identify) that it is an IPFS peer before it is asked over the
/// block protocol.
const IDENTIFY_WAIT: Duration = Duration::from_secs(1);

/// A segment fetched from peers, with the blocks that make it up.
pub struct FromPeers {
    pub bytes: Bytes,
    pub blocks: Vec<Block>,
}

#[derive(Clone)]
pub struct PeerFetcher {
    swarm: Swarm,
    limits: PeerLimits,
    /// None when receipts are turned off.
    receipts: Option<Arc<ReceiptSender>>,
}

impl PeerFetcher {
    pub fn new(swarm: Swarm, limits: PeerLimits, receipts: Option<Arc<ReceiptSender>>) -> Self {
        Self {
            swarm,
            limits,
            receipts,
        }
    }

    pub fn swarm(&self) -> &Swarm {
        &self.swarm
    }

    /// Whether a file no connected peer has is looked for on the IPFS DHT.
    pub fn searches_ipfs_dht(&self) -> bool {
        self.limits.ipfs_dht
    }

    /// Fetches the file under `root` from `peers` by `deadline`. Its size is
    /// checked when known, and bounded by `max_size` when not. `video`
    /// names the video in receipts; empty for content named by CID alone.
    pub async fn fetch(
        &self,
        video: &str,
        root: Cid,
        size: Option<u64>,
        max_size: u64,
        peers: Vec<PeerId>,
        deadline: Instant,
    ) -> Result<FromPeers, PeerError> {
        self.fetch_leaves(video, root, size, max_size, peers, deadline, &mut |_| {})
            .await
    }

    /// As `fetch`, giving `on_leaf` each leaf of a multi-block file in file
    /// order as soon as it and those before it are verified.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch_leaves(
        &self,
        video: &str,
        root: Cid,
        size: Option<u64>,
        max_size: u64,
        peers: Vec<PeerId>,
        deadline: Instant,
        on_leaf: &mut (dyn FnMut(&Bytes) + Send),
    ) -> Result<FromPeers, PeerError> {
        let fits = |n: usize| size.map_or(n as u64 <= max_size, |s| n as u64 == s);
        let size = size.unwrap_or(max_size);
        // IPFS peers have no block protocol: they are asked over Bitswap,
        // after the peers that have it.
        let ipfs = self.swarm.ipfs_peers().await;
        let mut peers = Sources::new(peers, ipfs);
        let first = match self.block(video, root, &peers, 0, deadline).await {
            Err(PeerError::NoPeer(_)) if self.limits.ipfs_dht => {
                peers = self.providers_on_ipfs_dht(root, deadline).await?;
                self.block(video, root, &peers, 0, deadline).await?
            }
            found => found?,
        };
        let mut blocks = vec![Block {
            cid: root,
            data: first.clone(),
        }];
        if root.codec() == unixfs::RAW {
            return if fits(first.len()) {
                Ok(FromPeers {
                    bytes: first,
                    blocks,
                })
            } else {
                Err(PeerError::Malformed(root))
            };
        }
        // Balanced trees keep every leaf at one depth: walk level by level.
        let max_links = (size / unixfs::CHUNK as u64) as usize + 2;
        let mut level = vec![(root, first)];
        for _ in 0..4 {
            let mut links = Vec::new();
            for (cid, data) in &level {
                links.extend(unixfs::links(data).map_err(|_| PeerError::Malformed(*cid))?);
            }
            if links.is_empty() || links.len() > max_links {
                return Err(PeerError::Malformed(root));
            }
            let raw = links.iter().all(|c| c.codec() == unixfs::RAW);
            if !raw && links.iter().any(|c| c.codec() != unixfs::DAG_PB) {
                return Err(PeerError::Malformed(root));
            }
            let mut fetched = futures::stream::iter(links.clone().into_iter().enumerate())
                .map(|(i, cid)| self.block(video, cid, &peers, i, deadline))
                .buffered(self.limits.parallel.max(1));
            let mut next = Vec::with_capacity(links.len());
            for cid in links {
                let data = fetched.next().await.ok_or(PeerError::NoPeer(cid))??;
                if raw {
                    on_leaf(&data);
                }
                blocks.push(Block {
                    cid,
                    data: data.clone(),
                });
                next.push((cid, data));
            }
            if raw {
                let total: usize = next.iter().map(|(_, d)| d.len()).sum();
                if !fits(total) {
                    return Err(PeerError::Malformed(root));
                }
                let mut out = BytesMut::with_capacity(total);
                for (_, data) in &next {
                    out.extend_from_slice(data);
                }
                if !fits(out.len()) {
                    return Err(PeerError::Malformed(root));
                }
                return Ok(FromPeers {
                    bytes: out.freeze(),
                    blocks,
                });
            }
            level = next;
        }
        Err(PeerError::Malformed(root))
    }

    /// The providers of `root` on the IPFS DHT, once connected: as IPFS
    /// peers when identify says so, else as peers of the block protocol.
    async fn providers_on_ipfs_dht(
        &self,
        root: Cid,
        deadline: Instant,
    ) -> Result<Sources, PeerError> {
        let found = tokio::time::timeout_at(deadline, self.swarm.ipfs_find_providers(root))
            .await
            .map_err(|_| PeerError::Deadline)?;
        if found.is_empty() {
            return Err(PeerError::NoPeer(root));
        }
        debug!(cid = %root, providers = found.len(), "providers found on the IPFS DHT");
        let mut connected_since = None;
        loop {
            let ipfs: Vec<PeerId> = self.swarm.ipfs_peers().await;
            let connected: Vec<PeerId> = self
                .swarm
                .connected_peers()
                .await
                .into_iter()
                .filter(|p| found.contains(p))
                .collect();
            let now = Instant::now();
            if connected.iter().any(|p| ipfs.contains(p))
                || connected_since.is_some_and(|t| now >= t + IDENTIFY_WAIT)
            {
                let ipfs = ipfs.into_iter().filter(|p| found.contains(p)).collect();
                return Ok(Sources::new(connected, ipfs));
            }
            if !connected.is_empty() {
                connected_since.get_or_insert(now);
            }
            if now >= deadline {
                return Err(PeerError::Deadline);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One block from the first peer that has it, starting at `start` so
    /// the leaves of a segment spread over the peers; then from IPFS peers.
    async fn block(
        &self,
        video: &str,
        cid: Cid,
        sources: &Sources,
        start: usize,
        deadline: Instant,
    ) -> Result<Bytes, PeerError> {
        match self
            .block_protocol(video, cid, &sources.libp2p, start, deadline)
            .await
        {
            Err(PeerError::NoPeer(_)) if !sources.ipfs.is_empty() => {}
            done => return done,
        }
        let timeout = self.limits.block_timeout;
        match bitswap_client::fetch(&self.swarm, &sources.ipfs, cid, timeout, deadline).await {
            Ok((peer, data)) => {
                debug!(%peer, cid = %cid, bytes = data.len(), "block over bitswap");
                Ok(data)
            }
            Err(e) => {
                debug!(cid = %cid, error = %e, "no block over bitswap");
                match e {
                    BitswapError::Deadline(_) => Err(PeerError::Deadline),
                    BitswapError::NotFound(_) => Err(PeerError::NoPeer(cid)),
                }
            }
        }
    }

    /// One block over the block protocol, from the first peer that has it.
    async fn block_protocol(
        &self,
        video: &str,
        cid: Cid,
        peers: &Mutex<Vec<PeerId>>,
        start: usize,
        deadline: Instant,
    ) -> Result<Bytes, PeerError> {
        let candidates = peers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for i in 0..candidates.len() {
            let peer = candidates[(start + i) % candidates.len()];
            // Another block of this file may have caught the peer lying
            // since the list was read.
            if !peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&peer)
            {
                continue;
            }
            // A stream dies when the peer's accept queue is momentarily full
            // (libp2p-stream keeps one slot) or with a connection the peer
            // replaced; a short pause and another try usually get through.
            for attempt in 0..STREAM_TRIES {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(PeerError::Deadline);
                }
                let timeout = left.min(self.limits.block_timeout);
                match fetch_block(&self.swarm, peer, &cid, self.limits.max_block, timeout).await {
                    Ok(got) => {
                        if let Some(r) = &self.receipts {
                            r.record(peer, cid, got.data.len() as u64, got.epoch, video);
                        }
                        return Ok(got.data);
                    }
                    Err(FetchError::Lied) => {
                        self.swarm
                            .penalize(peer, "sent bytes that fail their CID")
                            .await;
                        peers
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .retain(|p| *p != peer);
                        break;
                    }
                    Err(e @ (FetchError::Wire(_) | FetchError::Open(_)))
                        if attempt + 1 < STREAM_TRIES
                            && peers
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .contains(&peer) =>
                    {
                        debug!(%peer, cid = %cid, error = %e, "block stream failed; trying again");
                        tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                    }
                    Err(e) => {
                        debug!(%peer, cid = %cid, error = %e, "peer did not deliver block");
                        break;
                    }
                }
            }
        }
        Err(PeerError::NoPeer(cid))
    }
}
