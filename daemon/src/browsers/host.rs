//! The daemon's side of the browser swarms: segment bytes by swarm id
//! from the store alone, the shared upload limit, and the counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use bridge::p2pml::{BrowserEvent, Host};
use bytes::Bytes;
use gateway::{Counters, Event, SegmentKey, Telemetry, Upload};
use tracing::info;

use crate::fetch::Fetcher;
use crate::swarm::blocks::RateLimiter;

/// One stream's segment ids, as its players number them, and the segments
/// they name.
#[derive(Default)]
pub struct StreamTable {
    ids: RwLock<BTreeMap<u64, SegmentKey>>,
}

impl StreamTable {
    pub fn replace(&self, ids: BTreeMap<u64, SegmentKey>) {
        *self.ids.write().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    pub fn get(&self, id: u64) -> Option<SegmentKey> {
        self.ids
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

pub struct BrowserHost {
    pub fetcher: Fetcher,
    pub telemetry: Arc<Telemetry>,
    pub upload: Arc<RateLimiter>,
    tables: RwLock<HashMap<String, Arc<StreamTable>>>,
}

impl BrowserHost {
    pub fn new(fetcher: Fetcher, telemetry: Arc<Telemetry>, upload: Arc<RateLimiter>) -> Self {
        Self {
            fetcher,
            telemetry,
            upload,
            tables: RwLock::default(),
        }
    }

    /// The table of `stream`, made on first use.
    pub fn table(&self, stream: &str) -> Arc<StreamTable> {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stream.to_owned())
            .or_default()
            .clone()
    }

    pub fn forget(&self, stream: &str) {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(stream);
    }
}

impl Host for BrowserHost {
    async fn segment(&self, stream: &str, id: u64) -> Option<Bytes> {
        let table = self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .cloned()?;
        let key = table.get(id)?;
        // Verified on read, block by block; never fetched for a browser.
        self.fetcher.stored(&key).await.map(|s| s.bytes)
    }

    async fn pace(&self, bytes: usize) {
        self.upload.acquire(bytes).await;
    }

    fn uploaded(&self, bytes: u64) {
        self.telemetry.counters.uploaded(Upload::P2pml, bytes);
    }

    fn event(&self, event: BrowserEvent) {
        let c = &self.telemetry.counters;
        match event {
            BrowserEvent::Connected {
                peer,
                swarm,
                remote,
            } => {
                Counters::add(&c.browsers_connected, 1);
                info!(%peer, %swarm, %remote, "browser connected");
                self.telemetry.emit(Event::BrowserConnected {
                    peer,
                    swarm,
                    remote: remote.to_string(),
                });
            }
            BrowserEvent::Disconnected {
                peer,
                swarm,
                bytes,
                reason,
            } => {
                c.browsers_connected.fetch_sub(1, Ordering::Relaxed);
                info!(%peer, %swarm, bytes, reason, "browser disconnected");
                self.telemetry.emit(Event::BrowserDisconnected {
                    peer,
                    swarm,
                    bytes,
                    reason,
                });
            }
        }
    }
}
