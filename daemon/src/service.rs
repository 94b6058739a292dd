//! What the gateway sees of the daemon: bytes (`SegmentSource`, from the
//! fetcher) and the node, its videos and maps (`NodeApi`).

use std::sync::Arc;

use bytes::Bytes;
use gateway::{
    NodeApi, NodeInfo, PinStatus, Playlist, Segment, SegmentKey, SegmentSource, SourceError,
    StoreUsage, VideoStatus,
};
use url::Url;

use crate::fetch::Fetcher;
use crate::rooms::Rooms;
use crate::seeder::Seeder;
use crate::swarm::Swarm;

pub struct Service {
    pub fetcher: Fetcher,
    pub seeder: Arc<Seeder>,
    pub rooms: Arc<Rooms>,
    pub swarm: Swarm,
}

impl SegmentSource for Service {
    async fn playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        self.fetcher.playlist(url).await
    }

    async fn segment(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        self.fetcher.segment(key).await
    }

    async fn stored_segment(&self, key: &SegmentKey) -> Option<Segment> {
        self.fetcher.stored(key).await
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
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
        })
    }

    fn videos(&self) -> Vec<VideoStatus> {
        self.seeder.videos()
    }

    async fn seed(&self, url: Url, id: Option<String>) -> Result<VideoStatus, String> {
        self.seeder.seed(url, id).await
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

    async fn pin(&self, url: Url, id: Option<String>) -> Result<PinStatus, String> {
        self.seeder.pin(url, id).await
    }

    async fn unpin(&self, id: &str) -> Result<bool, String> {
        self.seeder.unpin(id).await
    }
}
