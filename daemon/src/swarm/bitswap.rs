//! A Bitswap 1.2.0 server, so IPFS peers (Helia, Kubo) can fetch what this
//! node holds by CID, block by block, as DESIGN §4 promises. Each want is
//! answered from the store: the block, a "have", or a "don't have" when
//! the peer asked for one. Bitswap peers sign no receipts; their uploads
//! count in `bytes_uploaded` and share the upload rate limit with the
//! block protocol.
//!
//! Bitswap answers on a stream of its own: the peer sends wantlists on a
//! stream it opened, and this node opens one back for blocks and presences.
//! The streams IPFS peers open hold their answers to this node's wants
//! too, which go to the client (`bitswap_client`).

use std::sync::Arc;

use cid::Cid;
use futures::{AsyncWriteExt, StreamExt};
use gateway::{Telemetry, Upload};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::Swarm;
use super::bitswap_pb::{self as pb, DONT_HAVE, HAVE, WANT_BLOCK, WANT_HAVE};
use super::blocks::{PerPeer, RateLimiter};
use super::wire::WireError;
use crate::store::Store;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");

/// Wantlist entries answered from one message; a peer that wants more
/// asks again.
const MAX_ENTRIES: usize = 1024;
/// Block bytes sent in one message. Blocks are at most 2 MiB (1 MiB
/// leaves here), so with the framing a message stays under the 4 MiB limit.
const MESSAGE_BLOCK_BYTES: usize = 2 << 20;
/// Wantlist streams served at once for one peer; more are dropped.
const STREAMS_PER_PEER: usize = 4;
/// How long a wantlist stream may go without a whole message.
const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

struct Server {
    swarm: Swarm,
    store: Store,
    telemetry: Arc<Telemetry>,
    rate: Arc<RateLimiter>,
}

/// Answers Bitswap wantlists from the store until `shutdown`.
pub async fn serve(
    swarm: Swarm,
    store: Store,
    telemetry: Arc<Telemetry>,
    rate: Arc<RateLimiter>,
    shutdown: CancellationToken,
) {
    let mut incoming = match swarm.accept(PROTOCOL) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "bitswap protocol already registered");
            return;
        }
    };
    let server = Arc::new(Server {
        swarm,
        store,
        telemetry,
        rate,
    });
    let mut per_peer = PerPeer::new(STREAMS_PER_PEER);
    let tasks = TaskTracker::new();
    loop {
        let (peer, stream) = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = incoming.next() => match next {
                Some(s) => s,
                None => break,
            },
        };
        let Ok(permit) = per_peer.get(peer).try_acquire_owned() else {
            debug!(%peer, "bitswap: too many wantlist streams; dropped one");
            continue;
        };
        let (server, shutdown) = (server.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = server.session(peer, stream) => if let Err(e) = r {
                    debug!(%peer, error = %e, "bitswap session ended");
                },
            }
            drop(permit);
        });
    }
    tasks.close();
    tasks.wait().await;
}

impl Server {
    /// Reads wantlists from `inbound` until it ends, answering each.
    async fn session(&self, peer: PeerId, mut inbound: Stream) -> Result<(), WireError> {
        let mut out: Option<Stream> = None;
        // A peer that sends nothing, or half a message, for this long gives
        // its stream (and its share of STREAMS_PER_PEER) back.
        while let Ok(read) = tokio::time::timeout(SESSION_IDLE, pb::read(&mut inbound)).await
            && let Some(message) = read?
        {
            // Answers to this node's own wants (see `bitswap_client`).
            if (!message.payload.is_empty() || !message.block_presences.is_empty())
                && self.swarm.wants.deliver(peer, &message)
            {
                self.swarm
                    .penalize(peer, "sent a Bitswap block it was not asked for")
                    .await;
                return Err(WireError::Malformed);
            }
            let Some(wantlist) = message.wantlist else {
                continue;
            };
            let mut answer = pb::Message::default();
            let mut block_bytes = 0;
            for entry in wantlist.entries.into_iter().take(MAX_ENTRIES) {
                if entry.cancel {
                    continue;
                }
                let Ok(cid) = Cid::try_from(entry.block.as_slice()) else {
                    continue;
                };
                let block = match self.store.get_block(&cid).await {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(cid = %cid, error = %e, "store read failed while serving bitswap");
                        None
                    }
                };
                match block {
                    Some(data) if entry.want_type == WANT_BLOCK => {
                        if block_bytes > 0 && block_bytes + data.len() > MESSAGE_BLOCK_BYTES {
                            self.send(peer, &mut out, std::mem::take(&mut answer))
                                .await?;
                            block_bytes = 0;
                        }
                        self.rate.acquire(data.len()).await;
                        block_bytes += data.len();
                        self.telemetry
                            .counters
                            .uploaded(Upload::Bitswap, data.len() as u64);
                        debug!(%peer, cid = %cid, bytes = data.len(), "bitswap: served block");
                        answer.payload.push(pb::Block {
                            prefix: pb::prefix(&cid),
                            data: data.to_vec(),
                        });
                    }
                    Some(_) if entry.want_type == WANT_HAVE => {
                        answer.block_presences.push(pb::BlockPresence {
                            cid: cid.to_bytes(),
                            r#type: HAVE,
                        })
                    }
                    // A want type this version does not know.
                    Some(_) => {}
                    None if entry.send_dont_have => {
                        answer.block_presences.push(pb::BlockPresence {
                            cid: cid.to_bytes(),
                            r#type: DONT_HAVE,
                        })
                    }
                    None => {}
                }
            }
            if !answer.payload.is_empty() || !answer.block_presences.is_empty() {
                self.send(peer, &mut out, answer).await?;
            }
        }
        if let Some(mut s) = out {
            let _ = s.close().await;
        }
        Ok(())
    }

    /// Sends `message` on this session's stream to `peer`, opening it first
    /// (and again, once, if it broke).
    async fn send(
        &self,
        peer: PeerId,
        out: &mut Option<Stream>,
        message: pb::Message,
    ) -> Result<(), WireError> {
        for _ in 0..2 {
            let stream = match out {
                Some(s) => s,
                None => {
                    let s = self
                        .swarm
                        .control()
                        .open_stream(peer, PROTOCOL)
                        .await
                        .map_err(|e| WireError::Io(std::io::Error::other(e.to_string())))?;
                    out.insert(s)
                }
            };
            match pb::write(stream, &message).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    debug!(%peer, error = %e, "bitswap: answer stream broke");
                    *out = None;
                }
            }
        }
        Err(WireError::Io(std::io::ErrorKind::BrokenPipe.into()))
    }
}
