//! Serving and fetching blocks over `/swarmseed/blocks/1.0.0`, with
//! per-peer concurrency caps and an upload rate limit on the serving side,
//! and CID verification of every block on the fetching side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::{AsyncWriteExt, StreamExt};
use gateway::{Counters, Telemetry};
use libp2p::PeerId;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::Swarm;
use super::wire::{self, PROTOCOL, Status, WireError};
use crate::store::{Store, unixfs};

/// Limits on what this node uploads.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Concurrent block requests served to one peer; more are answered Busy.
    pub per_peer: usize,
    /// Upload rate in bytes per second; 0 means unlimited.
    pub upload_bytes_per_sec: u64,
    /// Time a peer has to send its request.
    pub request_timeout: Duration,
}

/// Paces uploads: each block reserves its share of time on a shared clock.
pub struct RateLimiter {
    bytes_per_sec: u64,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec,
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn acquire(&self, bytes: usize) {
        if self.bytes_per_sec == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Answers block requests from the store until `shutdown`.
pub async fn serve(
    swarm: Swarm,
    store: Store,
    telemetry: Arc<Telemetry>,
    limits: ServeLimits,
    shutdown: CancellationToken,
) {
    let mut control = swarm.control.clone();
    let mut incoming = match control.accept(PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "block protocol already registered");
            return;
        }
    };
    let rate = Arc::new(RateLimiter::new(limits.upload_bytes_per_sec));
    let mut per_peer: HashMap<PeerId, Arc<Semaphore>> = HashMap::new();
    let tasks = TaskTracker::new();
    loop {
        let (peer, mut stream) = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = incoming.next() => match next {
                Some(s) => s,
                None => break,
            },
        };
        per_peer.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < limits.per_peer);
        let sem = per_peer
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(limits.per_peer)))
            .clone();
        let (store, rate, telemetry) = (store.clone(), rate.clone(), telemetry.clone());
        // The accept queue has no buffer: every stream gets its own task at once.
        tasks.spawn(async move {
            let permit = sem.try_acquire_owned();
            let result = match permit {
                Ok(_permit) => {
                    answer(
                        &mut stream,
                        &store,
                        &rate,
                        &telemetry,
                        limits.request_timeout,
                    )
                    .await
                }
                Err(_) => wire::write_response(&mut stream, Status::Busy, &[])
                    .await
                    .map(|_| 0),
            };
            match result {
                Ok(n) if n > 0 => debug!(%peer, bytes = n, "served block"),
                Ok(_) => {}
                Err(e) => debug!(%peer, error = %e, "block request failed"),
            }
            let _ = stream.close().await;
        });
    }
    tasks.close();
    tasks.wait().await;
}

async fn answer(
    stream: &mut libp2p::Stream,
    store: &Store,
    rate: &RateLimiter,
    telemetry: &Telemetry,
    timeout: Duration,
) -> Result<usize, WireError> {
    let cid = tokio::time::timeout(timeout, wire::read_request(stream))
        .await
        .map_err(|_| WireError::Io(std::io::ErrorKind::TimedOut.into()))??;
    match store.get_block(&cid).await {
        Ok(Some(block)) => {
            rate.acquire(block.len()).await;
            wire::write_response(stream, Status::Ok, &block).await?;
            Counters::add(&telemetry.counters.bytes_uploaded, block.len() as u64);
            Ok(block.len())
        }
        Ok(None) => wire::write_response(stream, Status::NotFound, &[])
            .await
            .map(|_| 0),
        Err(e) => {
            warn!(cid = %cid, error = %e, "store read failed while serving");
            wire::write_response(stream, Status::NotFound, &[])
                .await
                .map(|_| 0)
        }
    }
}

/// Why a peer did not deliver a block.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("peer does not have it")]
    NotFound,
    #[error("peer is busy")]
    Busy,
    #[error("peer sent bytes that fail the CID")]
    Lied,
    #[error("peer timed out")]
    Timeout,
    #[error("protocol: {0}")]
    Wire(#[from] WireError),
    #[error("cannot open a stream: {0}")]
    Open(String),
}

/// Fetches one block from `peer` and checks it against `cid`.
pub async fn fetch_block(
    swarm: &Swarm,
    peer: PeerId,
    cid: &Cid,
    max_block: u64,
    timeout: Duration,
) -> Result<Bytes, FetchError> {
    let mut control = swarm.control.clone();
    let exchange = async {
        let mut stream = control
            .open_stream(peer, PROTOCOL)
            .await
            .map_err(|e| FetchError::Open(e.to_string()))?;
        wire::write_request(&mut stream, cid).await?;
        // Read the whole answer before closing (no FIN_ACK on some transports).
        let answer = wire::read_response(&mut stream, max_block).await?;
        let _ = stream.close().await;
        Ok::<_, FetchError>(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout)??;
    match answer {
        Ok(data) if unixfs::verify(cid, &data) => Ok(data),
        Ok(_) => Err(FetchError::Lied),
        Err(Status::NotFound) => Err(FetchError::NotFound),
        Err(Status::Busy) => Err(FetchError::Busy),
        Err(Status::Ok) => Err(FetchError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_paces_bytes() {
        let limiter = RateLimiter::new(1_000_000);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire(500_000).await;
        }
        // Ten half-second shares; the last starts after 4.5 s.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((4.5..4.6).contains(&elapsed), "{elapsed}");
    }
}
