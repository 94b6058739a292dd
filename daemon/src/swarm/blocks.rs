//! Serving and fetching blocks over `/swarmseed/blocks/1.0.0`, with
//! per-peer concurrency caps, an upload rate limit and lower priority for
//! peers that do not sign receipts on the serving side, and CID
//! verification of every block on the fetching side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use futures::{AsyncWriteExt, StreamExt};
use gateway::{Telemetry, Upload};
use libp2p::PeerId;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::Swarm;
use super::wire::{self, Delivered, PROTOCOL, Status, WireError};
use crate::receipts::Proofs;
use crate::store::{Store, unixfs};

/// Longest a peer that owes receipts waits behind peers that sign them.
const DEPRIORITIZED_WAIT: Duration = Duration::from_secs(2);
/// Longest one block request may take to serve, close included. Fetchers
/// give up long before (`p2p.block_timeout_ms`, 10 s in browsers); a
/// 2 MiB block within it needs about 0.6 Mbit/s.
const SERVE_DEADLINE: Duration = Duration::from_secs(30);

/// Limits on what this node uploads.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Concurrent block requests served to one peer; more are answered Busy.
    pub per_peer: usize,
    /// Time a peer has to send its request.
    pub request_timeout: Duration,
}

/// Paces uploads: each block reserves its share of time on a shared clock.
/// One limiter paces every protocol this node uploads on.
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

/// One semaphore of `limit` permits per peer: what a peer may have served
/// at once. Peers with nothing in flight are forgotten.
pub struct PerPeer {
    limit: usize,
    peers: HashMap<PeerId, Arc<Semaphore>>,
}

impl PerPeer {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            peers: HashMap::new(),
        }
    }

    pub fn get(&mut self, peer: PeerId) -> Arc<Semaphore> {
        let limit = self.limit;
        self.peers
            .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < limit);
        self.peers
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }
}

/// Answers block requests from the store until `shutdown`.
pub async fn serve(
    swarm: Swarm,
    store: Store,
    telemetry: Arc<Telemetry>,
    proofs: Arc<Proofs>,
    limits: ServeLimits,
    rate: Arc<RateLimiter>,
    shutdown: CancellationToken,
) {
    let mut incoming = match swarm.accept(PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "block protocol already registered");
            return;
        }
    };
    // Requests in flight from peers in good standing.
    let preferred = Arc::new(AtomicUsize::new(0));
    let mut per_peer = PerPeer::new(limits.per_peer);
    let tasks = TaskTracker::new();
    loop {
        let (peer, mut stream) = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = incoming.next() => match next {
                Some(s) => s,
                None => break,
            },
        };
        let sem = per_peer.get(peer);
        let (store, rate, telemetry) = (store.clone(), rate.clone(), telemetry.clone());
        let (proofs, preferred) = (proofs.clone(), preferred.clone());
        // Every stream gets its own task at once, so the accept queue stays short.
        tasks.spawn(async move {
            // A peer that vanishes mid-block (a closed tab, a killed
            // browser) stops reading: writes and the close would then wait
            // for as long as the WebRTC connection lives, and an open
            // stream keeps that connection from going idle. Past this
            // deadline the stream is dropped (reset); the idle timeout then
            // closes the connection.
            let served = tokio::time::timeout(SERVE_DEADLINE, async move {
                let debtor = proofs.deprioritized(&peer);
                // A peer that owes receipts gets one request at a time.
                let permit = if debtor && sem.available_permits() < limits.per_peer {
                    Err(())
                } else {
                    sem.try_acquire_owned().map_err(|_| ())
                };
                let result = match permit {
                    Ok(_permit) => {
                        let _turn = if debtor {
                            wait_behind(&preferred).await;
                            None
                        } else {
                            Some(InFlight::new(&preferred))
                        };
                        answer(
                            &mut stream,
                            peer,
                            &store,
                            &rate,
                            &telemetry,
                            &proofs,
                            limits.request_timeout,
                        )
                        .await
                    }
                    Err(()) => wire::write_response(&mut stream, Status::Busy, 0, &[])
                        .await
                        .map(|_| 0),
                };
                match result {
                    Ok(n) if n > 0 => debug!(%peer, bytes = n, "served block"),
                    Ok(_) => {}
                    Err(e) => debug!(%peer, error = %e, "block request failed"),
                }
                let _ = stream.close().await;
            })
            .await;
            if served.is_err() {
                debug!(%peer, "block stream dropped: the peer stopped reading");
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Counts a preferred request in flight for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lets preferred requests go first, for a bounded time.
async fn wait_behind(preferred: &AtomicUsize) {
    let until = Instant::now() + DEPRIORITIZED_WAIT;
    while preferred.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn answer(
    stream: &mut libp2p::Stream,
    peer: PeerId,
    store: &Store,
    rate: &RateLimiter,
    telemetry: &Telemetry,
    proofs: &Proofs,
    timeout: Duration,
) -> Result<usize, WireError> {
    let cid = tokio::time::timeout(timeout, wire::read_request(stream))
        .await
        .map_err(|_| WireError::Io(std::io::ErrorKind::TimedOut.into()))??;
    match store.get_block(&cid).await {
        Ok(Some(block)) => {
            rate.acquire(block.len()).await;
            wire::write_response(stream, Status::Ok, proofs.epoch(), &block).await?;
            telemetry
                .counters
                .uploaded(Upload::Blocks, block.len() as u64);
            proofs.sent(peer, cid.to_string(), block.len() as u64);
            Ok(block.len())
        }
        Ok(None) => wire::write_response(stream, Status::NotFound, 0, &[])
            .await
            .map(|_| 0),
        Err(e) => {
            warn!(cid = %cid, error = %e, "store read failed while serving");
            wire::write_response(stream, Status::NotFound, 0, &[])
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
) -> Result<Delivered, FetchError> {
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
        Ok(d) if unixfs::verify(cid, &d.data) => Ok(d),
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
