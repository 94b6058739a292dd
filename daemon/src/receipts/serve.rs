//! Accepting receipt batches from peers.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::Proofs;
use super::wire::{self, PROTOCOL};
use crate::swarm::Swarm;

/// Time a peer has to send its batch.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(swarm: Swarm, proofs: Arc<Proofs>, shutdown: CancellationToken) {
    let mut incoming = match swarm.accept(PROTOCOL) {
        Ok(i) => i,
        Err(e) => return warn!(error = %e, "receipt protocol already registered"),
    };
    let tasks = TaskTracker::new();
    loop {
        let (peer, mut stream) = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = incoming.next() => match next {
                Some(s) => s,
                None => break,
            },
        };
        let proofs = proofs.clone();
        tasks.spawn(async move {
            let batch =
                match tokio::time::timeout(READ_TIMEOUT, wire::read_batch(&mut stream)).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => return debug!(%peer, error = %e, "malformed receipt batch"),
                    Err(_) => return debug!(%peer, "receipt batch timed out"),
                };
            let verdicts = proofs.accept(peer, batch).await;
            // A peer gone mid-answer (a closed tab) never reads it: the
            // write and the close would wait for as long as the connection
            // lives, and the open stream keeps it from going idle.
            let answered = tokio::time::timeout(READ_TIMEOUT, async {
                if let Err(e) = wire::write_verdicts(&mut stream, &verdicts).await {
                    debug!(%peer, error = %e, "cannot answer receipt batch");
                }
                let _ = stream.close().await;
            })
            .await;
            if answered.is_err() {
                debug!(%peer, "receipt stream dropped: the peer stopped reading");
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}
