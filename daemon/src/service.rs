//! What the gateway sees of the daemon: bytes (`SegmentSource`, from the
//! fetcher) and the node, its videos and maps (`NodeApi`).

use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use gateway::{
    ApiError, Delivery, FileLayout, IpfsBlock, NodeApi, NodeInfo, PinStatus, Playlist, ProofsApi,
    SeedOptions, Segment, SegmentKey, SegmentSource, SourceError, StoreUsage, VideoStatus,
};
use serde::Serialize;
use serde_json::Value;
use tracing::warn;
use url::Url;

use crate::fetch::Fetcher;
use crate::receipts::{DbError, Proofs};
use crate::rooms::Rooms;
use crate::seeder::Seeder;
use crate::store::unixfs;
use crate::swarm::Swarm;

pub struct Service {
    pub fetcher: Fetcher,
    pub seeder: Arc<Seeder>,
    pub rooms: Arc<Rooms>,
    pub swarm: Swarm,
    pub proofs: Arc<Proofs>,
    pub browsers: Option<Arc<crate::browsers::Browsers>>,
    /// `gateway.ipfs_fetch`: `/ipfs/` may fetch what the store lacks.
    pub ipfs_fetch: bool,
}

impl Service {
    /// A stored block, checked against its CID by the store.
    async fn stored_block(&self, cid: &Cid) -> Result<Option<Bytes>, SourceError> {
        self.fetcher.inner.store.get_block(cid).await.map_err(|e| {
            warn!(cid = %cid, error = %e, "store read failed for /ipfs/");
            SourceError::Store
        })
    }
}

/// What the trustless gateway's walk needs of a block: a dag-pb node's
/// links and file layout. A node that does not parse is served as the
/// bytes it is, with nothing below it.
fn ipfs_block(cid: &Cid, data: Bytes) -> IpfsBlock {
    let node = (cid.codec() == unixfs::DAG_PB)
        .then(|| unixfs::decode(&data).ok())
        .flatten();
    let (links, file) = node.map_or((Vec::new(), None), |n| {
        let file = n
            .file
            .map(|(inline, blocksizes)| FileLayout { inline, blocksizes });
        (n.links, file)
    });
    IpfsBlock { data, links, file }
}

impl SegmentSource for Service {
    async fn playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        self.fetcher.playlist(url).await
    }

    async fn segment(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        self.fetcher.segment(key).await
    }

    async fn deliver(&self, key: &SegmentKey) -> Result<Delivery, SourceError> {
        self.fetcher.deliver(key).await
    }

    async fn stored_segment(&self, key: &SegmentKey) -> Option<Segment> {
        self.fetcher.stored(key).await
    }

    async fn ipfs_block(
        &self,
        cid: &Cid,
        may_fetch: bool,
    ) -> Result<Option<IpfsBlock>, SourceError> {
        let mut data = self.stored_block(cid).await?;
        if data.is_none() && may_fetch && self.ipfs_fetch {
            // Fetched from peers as an `ipfs://` segment is, and stored
            // with its blocks; a failure is a block not held.
            let key = SegmentKey {
                url: Url::parse(&format!("ipfs://{cid}")).map_err(|_| SourceError::Store)?,
                range: None,
            };
            // Once stored: the walk reads its blocks from the store.
            if self.fetcher.segment_kept(&key).await.is_ok() {
                data = self.stored_block(cid).await?;
            }
        }
        Ok(data.map(|d| ipfs_block(cid, d)))
    }

    fn store_usage(&self) -> StoreUsage {
        self.fetcher.store_usage()
    }

    fn peers_connected(&self) -> u64 {
        self.swarm.peers_connected()
    }
}

impl NodeApi for Service {
    async fn node_info(&self) -> Option<NodeInfo> {
        let (peer, addrs) = self.swarm.info().await;
        Some(NodeInfo {
            peer_id: peer.to_string(),
            browser_addrs: addrs
                .iter()
                .filter(|a| bridge::transport::browser_dialable(a))
                .map(|a| a.to_string())
                .collect(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            webtorrent_peer_id: self.browsers.as_ref().map(|b| b.peer_id()),
        })
    }

    fn videos(&self) -> Vec<VideoStatus> {
        self.seeder.videos()
    }

    async fn seed(&self, url: Url, options: SeedOptions) -> Result<VideoStatus, String> {
        self.seeder.seed(url, options).await
    }

    async fn seed_latest(
        &self,
        url: Url,
        n: u32,
        options: SeedOptions,
    ) -> Result<Vec<VideoStatus>, String> {
        self.seeder.seed_latest(url, n, options).await
    }

    async fn cidmap(&self, id: &str) -> Option<Bytes> {
        self.rooms.map_json(id)
    }

    async fn pins(&self) -> Vec<PinStatus> {
        self.seeder.pins().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list pins");
            Vec::new()
        })
    }

    async fn pin(&self, url: Url, options: SeedOptions) -> Result<PinStatus, String> {
        self.seeder.pin(url, options).await
    }

    async fn unpin(&self, id: &str) -> Result<bool, String> {
        self.seeder.unpin(id).await
    }
}

/// JSON for a found answer; 404 for none; 500, details logged, for a
/// database failure.
fn answer<T: Serialize>(r: Result<Option<T>, DbError>) -> Result<Value, ApiError> {
    match r {
        Ok(Some(v)) => serde_json::to_value(v).map_err(|_| ApiError::Internal),
        Ok(None) => Err(ApiError::NotFound),
        Err(e) => {
            warn!(error = %e, "cannot read receipts");
            Err(ApiError::Internal)
        }
    }
}

impl ProofsApi for Service {
    async fn proof_epochs(&self, after: Option<u64>, limit: usize) -> Result<Value, ApiError> {
        answer(self.proofs.epochs_page(after, limit).await.map(Some))
    }

    async fn proof_epoch(&self, epoch: u64) -> Result<Value, ApiError> {
        answer(self.proofs.epoch_root(epoch).await)
    }

    async fn proof_receipts(
        &self,
        epoch: u64,
        after: Option<String>,
        limit: usize,
    ) -> Result<Value, ApiError> {
        let after = match after.as_deref().map(proofs::parse_hash).transpose() {
            Ok(a) => a,
            Err(e) => return Err(ApiError::BadRequest(e.to_string())),
        };
        answer(
            self.proofs
                .receipts_page(epoch, after, limit)
                .await
                .map(Some),
        )
    }

    async fn proof_receipt(&self, hash: String) -> Result<Value, ApiError> {
        answer(self.proofs.receipt(&hash).await)
    }

    async fn proof_export(&self, epoch: Option<u64>) -> Result<Value, ApiError> {
        answer(self.proofs.export(epoch).await.map(Some))
    }

    fn proof_peers(&self) -> Value {
        serde_json::to_value(self.proofs.peers()).unwrap_or_default()
    }

    fn http_sent(&self, receiver: &str, cid: &str, bytes: u64) -> Option<(String, u64)> {
        let peer: libp2p::PeerId = receiver.parse().ok()?;
        self.proofs.sent(peer, cid.to_owned(), bytes);
        Some((self.swarm.peer_id.to_string(), self.proofs.epoch()))
    }

    async fn accept_receipts(&self, receipts: Vec<Vec<u8>>) -> Result<Vec<&'static str>, ApiError> {
        // The receiver signed the receipts: it is the peer they come from.
        let receiver = receipts
            .iter()
            .find_map(|r| proofs::SignedReceipt::open(r).ok())
            .and_then(|r| r.receipt.receiver.parse::<libp2p::PeerId>().ok())
            .ok_or_else(|| {
                ApiError::BadRequest("no receipt opens with a valid signature".into())
            })?;
        let verdicts = self.proofs.accept(receiver, receipts).await;
        Ok(verdicts
            .into_iter()
            .map(crate::receipts::verdict_name)
            .collect())
    }
}
