//! Contribution proofs on the node (DESIGN §5): receipts this node earns as
//! a provider, the epochs it closes, and the receipts it signs as a
//! receiver. The formats and their offline check live in the `proofs` crate.

mod api;
mod db;
mod ledger;
mod sender;
mod serve;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway::{Counters, Telemetry};
use libp2p::PeerId;
use libp2p::identity::Keypair;
use proofs::{SignedReceipt, close_epoch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use api::verdict_name;
pub use bridge::receipts_wire as wire;
pub use db::{DbError, EpochState, ProofDb};
pub use ledger::PeerLedger;
pub use sender::ReceiptSender;
pub use serve::serve;
pub use wire::Verdict;

use ledger::Ledger;

#[derive(Clone, Copy, Debug)]
pub struct ProofSettings {
    /// How long an epoch collects receipts before its root is signed.
    pub epoch: Duration,
    /// Unreceipted bytes a peer may owe before it is served last.
    pub max_unreceipted: u64,
}

/// The provider's side: checks incoming receipts, keeps them, closes epochs.
pub struct Proofs {
    key: Keypair,
    me: PeerId,
    db: Arc<ProofDb>,
    /// Held while receipts are accepted and while an epoch closes, so no
    /// receipt lands in an epoch whose root is being built.
    state: tokio::sync::Mutex<EpochState>,
    open_epoch: AtomicU64,
    ledger: Mutex<Ledger>,
    /// Last accepted seq per receiver, read through from the database.
    seqs: Mutex<HashMap<String, u64>>,
    telemetry: Arc<Telemetry>,
    settings: ProofSettings,
    closed: Mutex<Option<Arc<proofs::ClosedEpoch>>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Proofs {
    /// Opens the receipt database under `dir`. Blocking.
    pub fn open(
        dir: &Path,
        key: Keypair,
        settings: ProofSettings,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, DbError> {
        let db = ProofDb::open(dir)?;
        let state = match db.epoch_state()? {
            Some(s) => s,
            None => {
                let s = EpochState {
                    open: 0,
                    open_since_ms: now_ms(),
                    closing: None,
                };
                db.set_epoch_state(&s)?;
                s
            }
        };
        Ok(Self {
            me: key.public().to_peer_id(),
            key,
            db: Arc::new(db),
            open_epoch: AtomicU64::new(state.open),
            state: tokio::sync::Mutex::new(state),
            ledger: Mutex::new(Ledger::new(settings.max_unreceipted)),
            seqs: Mutex::default(),
            telemetry,
            settings,
            closed: Mutex::default(),
        })
    }

    /// The epoch named in block answers now.
    pub fn epoch(&self) -> u64 {
        self.open_epoch.load(Ordering::Relaxed)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a block sent to `peer`, which it now owes a receipt for.
    pub fn sent(&self, peer: PeerId, cid: String, bytes: u64) {
        let mut ledger = self.ledger();
        ledger.sent(peer, cid, bytes);
        self.gauge(&ledger);
    }

    fn gauge(&self, ledger: &Ledger) {
        self.telemetry
            .counters
            .peers_deprioritized
            .store(ledger.count_deprioritized(), Ordering::Relaxed);
    }

    pub fn deprioritized(&self, peer: &PeerId) -> bool {
        self.ledger().deprioritized(peer)
    }

    /// The ledger: every libp2p peer, then one line each for what IPFS
    /// peers (Bitswap), p2p-media-loader browsers and trustless gateway
    /// clients took, which they sign no receipts for.
    pub fn peers(&self) -> Vec<PeerLedger> {
        let mut out = self.ledger().report();
        let c = &self.telemetry.counters;
        for (peer, kind, counter) in [
            ("ipfs peers (Bitswap)", "bitswap", &c.bytes_uploaded_bitswap),
            (
                "p2p-media-loader browsers",
                "p2pml",
                &c.bytes_uploaded_p2pml,
            ),
            (
                "trustless gateway clients (HTTP)",
                "http",
                &c.bytes_uploaded_http,
            ),
        ] {
            let bytes = counter.load(std::sync::atomic::Ordering::Relaxed);
            if bytes > 0 {
                out.push(Ledger::unreceipted_line(peer, kind, bytes));
            }
        }
        out
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ProofDb) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| DbError::Damaged(format!("task: {e}")))?
    }

    async fn last_seq(&self, receiver: &str) -> u64 {
        if let Some(s) = self
            .seqs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(receiver)
        {
            return *s;
        }
        let r = receiver.to_owned();
        let seq = self.blocking(move |db| db.last_seq(&r)).await.unwrap_or(0);
        let mut seqs = self.seqs.lock().unwrap_or_else(|p| p.into_inner());
        // A cache of the database; dropping it costs only a read.
        if seqs.len() >= 10_000 {
            seqs.clear();
        }
        seqs.insert(receiver.to_owned(), seq);
        seq
    }

    /// Checks a batch of signed receipts from `peer` and keeps the good ones.
    pub async fn accept(&self, peer: PeerId, batch: Vec<Vec<u8>>) -> Vec<Verdict> {
        let state = self.state.lock().await;
        let me = self.me.to_string();
        let from = peer.to_string();
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut accepted: Vec<SignedReceipt> = Vec::new();
        let mut last = self.last_seq(&from).await;
        for bytes in batch {
            let verdict = match SignedReceipt::open(&bytes) {
                Err(proofs::ProofError::BadSignature(_)) => Verdict::BadSignature,
                Err(proofs::ProofError::OverClaim(_)) => Verdict::OverClaim,
                Err(_) => Verdict::Malformed,
                Ok(sr) => {
                    let r = &sr.receipt;
                    let epoch_ok = r.epoch == state.open
                        || state.closing.is_some_and(|(e, _, _)| e == r.epoch);
                    if r.receiver != from || r.provider != me {
                        Verdict::NotForUs
                    } else if r.seq <= last {
                        Verdict::Replayed
                    } else if !epoch_ok {
                        Verdict::Late
                    } else if !self.ledger().owed(&peer, &r.cid, r.bytes) {
                        Verdict::OverClaim
                    } else {
                        let mut ledger = self.ledger();
                        ledger.settle(peer, &r.cid, r.bytes);
                        self.gauge(&ledger);
                        drop(ledger);
                        last = r.seq;
                        accepted.push(sr);
                        Verdict::Accepted
                    }
                }
            };
            if verdict != Verdict::Accepted {
                self.ledger().refused(peer);
                Counters::add(&self.telemetry.counters.receipts_refused, 1);
                warn!(%peer, ?verdict, "refused a receipt");
            }
            verdicts.push(verdict);
        }
        if accepted.is_empty() {
            return verdicts;
        }
        let bytes: u64 = accepted.iter().map(|r| r.receipt.bytes).sum();
        let count = accepted.len() as u64;
        let keep = accepted.clone();
        match self.blocking(move |db| db.insert(&keep)).await {
            Ok(()) => {
                self.seqs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(from, last);
                Counters::add(&self.telemetry.counters.receipts_accepted, count);
                Counters::add(&self.telemetry.counters.bytes_receipted, bytes);
            }
            Err(e) => {
                warn!(%peer, error = %e, "cannot store receipts");
                for v in verdicts.iter_mut().filter(|v| **v == Verdict::Accepted) {
                    *v = Verdict::Unavailable;
                }
            }
        }
        verdicts
    }

    /// Grace after an epoch ends for receipts of blocks sent just before.
    fn grace(&self) -> Duration {
        (self.settings.epoch / 2).min(Duration::from_secs(30))
    }

    /// Ends the open epoch when its time is up, and signs the root of an
    /// ended epoch once its grace has passed.
    pub async fn tick(&self, now: u64) -> Result<(), DbError> {
        let mut state = self.state.lock().await;
        let epoch_ms = self.settings.epoch.as_millis() as u64;
        let grace_ms = self.grace().as_millis() as u64;
        let mut next = *state;
        if let Some((e, start, end)) = next.closing
            && (now >= end + grace_ms || now >= next.open_since_ms + epoch_ms)
        {
            self.close(e, start, end).await?;
            next.closing = None;
        }
        if now >= next.open_since_ms + epoch_ms {
            next.closing = Some((next.open, next.open_since_ms, now));
            next.open += 1;
            next.open_since_ms = now;
        }
        if next != *state {
            let save = next;
            self.blocking(move |db| db.set_epoch_state(&save)).await?;
            *state = next;
            self.open_epoch.store(next.open, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn close(&self, epoch: u64, start: u64, end: u64) -> Result<(), DbError> {
        let key = self.key.clone();
        let closed = self
            .blocking(move |db| {
                let receipts = db.receipts(epoch, None, usize::MAX)?;
                let closed = close_epoch(&key, epoch, start, end, &receipts);
                db.put_root(&closed.root)?;
                Ok(closed)
            })
            .await?;
        let r = &closed.root.root;
        info!(
            epoch,
            receipts = r.count,
            bytes = r.bytes,
            root = %hex_root(&r.root),
            "closed receipt epoch"
        );
        Ok(())
    }

    /// Closes epochs on time until `shutdown`.
    pub async fn run_epochs(self: Arc<Self>, shutdown: CancellationToken) {
        let step =
            (self.settings.epoch / 8).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut tick = tokio::time::interval(step);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.tick(now_ms()).await {
                warn!(error = %e, "cannot close receipt epoch");
            }
        }
        if let Err(e) = self.blocking(|db| db.flush()).await {
            warn!(error = %e, "cannot flush receipts");
        }
    }
}

fn hex_root(r: &[u8]) -> String {
    r.iter().map(|b| format!("{b:02x}")).collect()
}
