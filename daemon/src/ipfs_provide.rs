//! Keeps this node's provider records on the IPFS DHT in step with the
//! store: the root CID of every object it holds is provided, and one that
//! is evicted stops being provided. The swarm republishes each record
//! before it expires.

use std::collections::HashSet;
use std::time::Duration;

use cid::Cid;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::store::Store;
use crate::swarm::Swarm;

/// How often the store's objects are compared with what is provided.
const EVERY: Duration = Duration::from_secs(10);

pub async fn run(swarm: Swarm, store: Store, shutdown: CancellationToken) {
    let mut provided: HashSet<Cid> = HashSet::new();
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let held: HashSet<Cid> = match store.object_cids().await {
            Ok(cids) => cids.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "cannot list the store's objects to provide");
                continue;
            }
        };
        let new: Vec<Cid> = held.difference(&provided).copied().collect();
        let gone: Vec<Cid> = provided.difference(&held).copied().collect();
        if !new.is_empty() {
            debug!(objects = new.len(), "providing on the IPFS DHT");
            swarm.ipfs_provide(new).await;
        }
        if !gone.is_empty() {
            swarm.ipfs_unprovide(gone).await;
        }
        provided = held;
    }
}
