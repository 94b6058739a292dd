//! The receiver's side: every block verified from a peer earns that peer a
//! signed receipt. Receipts are batched per provider and sent in seq order
//! on one task per provider, so each provider sees a receiver's seqs rise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use futures::AsyncWriteExt;
use libp2p::PeerId;
use libp2p::identity::Keypair;
use proofs::{Receipt, VERSION};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::now_ms;
use super::wire::{self, MAX_BATCH, PROTOCOL, Verdict};
use crate::swarm::Swarm;

/// How long receipts wait to fill a batch.
const LINGER: Duration = Duration::from_millis(50);
/// A provider's task ends after this long without blocks.
const IDLE: Duration = Duration::from_secs(60);
const SEND_TRIES: u32 = 4;

#[derive(Debug)]
struct Owed {
    cid: Cid,
    bytes: u64,
    epoch: u64,
    video: String,
}

pub struct ReceiptSender {
    key: Keypair,
    me: String,
    swarm: Swarm,
    /// Starts at the clock in µs, so seqs keep rising across restarts.
    seq: AtomicU64,
    queues: Mutex<HashMap<PeerId, mpsc::Sender<Owed>>>,
    tasks: TaskTracker,
}

impl ReceiptSender {
    pub fn new(key: Keypair, swarm: Swarm) -> Arc<Self> {
        Arc::new(Self {
            me: key.public().to_peer_id().to_string(),
            key,
            swarm,
            seq: AtomicU64::new(now_ms() * 1000),
            queues: Mutex::default(),
            tasks: TaskTracker::new(),
        })
    }

    /// Owes `provider` a receipt for a block it sent and we verified.
    pub fn record(
        self: &Arc<Self>,
        provider: PeerId,
        cid: Cid,
        bytes: u64,
        epoch: u64,
        video: &str,
    ) {
        let mut owed = Owed {
            cid,
            bytes,
            epoch,
            video: video.to_owned(),
        };
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.get(&provider) {
            match q.try_send(owed) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return warn!(%provider, "receipt queue full; dropping a receipt");
                }
                Err(mpsc::error::TrySendError::Closed(o)) => owed = o,
            }
        }
        let (tx, rx) = mpsc::channel(4096);
        let _ = tx.try_send(owed);
        queues.insert(provider, tx);
        self.tasks.spawn(self.clone().run(provider, rx));
    }

    /// Sends every receipt still waiting, at shutdown, before the swarm stops.
    pub async fn flush(&self) {
        // Dropping the queues' senders ends each task after its last batch.
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn run(self: Arc<Self>, provider: PeerId, mut rx: mpsc::Receiver<Owed>) {
        loop {
            let first = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(o)) => o,
                _ => {
                    // Unregister before the last check, so nothing is lost
                    // between them: later blocks start a new task.
                    self.queues
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&provider);
                    rx.close();
                    let mut rest = Vec::new();
                    while let Ok(o) = rx.try_recv() {
                        rest.push(o);
                    }
                    while !rest.is_empty() {
                        let tail = rest.split_off(rest.len().min(MAX_BATCH));
                        self.send(provider, std::mem::replace(&mut rest, tail))
                            .await;
                    }
                    return;
                }
            };
            let mut batch = vec![first];
            let until = Instant::now() + LINGER;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(o)) => batch.push(o),
                    _ => break,
                }
            }
            self.send(provider, batch).await;
        }
    }

    async fn send(&self, provider: PeerId, batch: Vec<Owed>) {
        let provider_id = provider.to_string();
        let signed: Vec<Vec<u8>> = batch
            .into_iter()
            .map(|o| {
                Receipt {
                    v: VERSION,
                    cid: o.cid.to_string(),
                    seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
                    bytes: o.bytes,
                    epoch: o.epoch,
                    video: o.video,
                    time_ms: now_ms(),
                    provider: provider_id.clone(),
                    receiver: self.me.clone(),
                }
                .sign(&self.key)
                .bytes
            })
            .collect();
        for attempt in 0..SEND_TRIES {
            match self.exchange(provider, &signed).await {
                Ok(verdicts) => {
                    let refused = verdicts.iter().filter(|v| **v != Verdict::Accepted).count();
                    if refused > 0 {
                        warn!(%provider, refused, first = ?verdicts.iter().find(|v| **v != Verdict::Accepted), "provider refused receipts");
                    } else {
                        debug!(%provider, receipts = signed.len(), "receipts delivered");
                    }
                    return;
                }
                Err(e) => {
                    debug!(%provider, attempt, error = %e, "cannot deliver receipts");
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        warn!(%provider, receipts = signed.len(), "gave up delivering receipts");
    }

    async fn exchange(&self, provider: PeerId, signed: &[Vec<u8>]) -> Result<Vec<Verdict>, String> {
        let mut control = self.swarm.control();
        let talk = async {
            let mut stream = control
                .open_stream(provider, PROTOCOL)
                .await
                .map_err(|e| e.to_string())?;
            wire::write_batch(&mut stream, signed)
                .await
                .map_err(|e| e.to_string())?;
            let v = wire::read_verdicts(&mut stream, signed.len())
                .await
                .map_err(|e| e.to_string())?;
            let _ = stream.close().await;
            Ok(v)
        };
        tokio::time::timeout(Duration::from_secs(10), talk)
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}
