//! A misbehaving peer built from the project's own swarm and block-protocol
//! code: it joins rooms like a daemon, then lies or stalls when asked for blocks.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use gateway::Telemetry;
use swarmseed::swarm::blocks::{FetchError, fetch_block};
use swarmseed::swarm::wire::{self, Delivered, PROTOCOL, Status};
use swarmseed::swarm::{Swarm, SwarmSettings, keys};
use tokio_util::sync::CancellationToken;

#[derive(Clone, PartialEq)]
pub enum Misbehaviour {
    /// Answers every block request with bytes that fail the CID.
    Liar,
    /// Reads the request and never answers.
    Staller,
    /// Serves nothing: a client that only asks.
    Client,
    /// Holds these blocks and serves the first `honest` of them as they
    /// are, the others with one byte changed (a root and its first leaves
    /// true, the rest a lie); answers NotFound for any other.
    LiesAfter {
        blocks: Arc<Vec<(cid::Cid, bytes::Bytes)>>,
        honest: usize,
    },
    /// An IPFS peer that lies: it offers Bitswap and not the block
    /// protocol, says it has every block asked of it, and sends 1000 wrong
    /// bytes under the wanted CID's prefix.
    BitswapLiar,
}

pub struct TestPeer {
    pub swarm: Swarm,
    /// The peer's identity, to sign receipts with.
    pub key: libp2p::identity::Keypair,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestPeer {
    pub async fn start(mode: Misbehaviour) -> TestPeer {
        Self::start_with(mode, &[]).await
    }

    /// A peer that dials `bootstrap` (multiaddrs with `/p2p/`) at start.
    pub async fn start_with(mode: Misbehaviour, bootstrap: &[String]) -> TestPeer {
        Self::start_listening(mode, bootstrap, &["/ip4/127.0.0.1/tcp/0"]).await
    }

    /// A peer a browser can dial too: TCP and WebRTC-direct on loopback.
    pub async fn start_webrtc(mode: Misbehaviour) -> TestPeer {
        Self::start_listening(
            mode,
            &[],
            &["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/webrtc-direct"],
        )
        .await
    }

    async fn start_listening(
        mode: Misbehaviour,
        bootstrap: &[String],
        listen: &[&str],
    ) -> TestPeer {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let key = keys::load_or_create_identity(dir.path()).unwrap();
        let cert = keys::load_or_create_certificate(dir.path()).unwrap();
        let (events, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let shutdown = CancellationToken::new();
        let settings = SwarmSettings {
            listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
            bootstrap: bootstrap.iter().map(|a| a.parse().unwrap()).collect(),
            ipfs_dht: None,
            mdns: false,
            max_connections: 64,
            relay: None,
        };
        let (engine, _engine_task) = bridge::rtc::Engine::start(
            bridge::rtc::EngineConfig {
                listen: None,
                ..bridge::rtc::EngineConfig::default()
            },
            shutdown.clone(),
        )
        .await
        .unwrap();
        let (swarm, _task) = swarmseed::swarm::start(
            key.clone(),
            bridge::transport::WebRtcDirect { engine, cert },
            settings,
            Arc::new(Telemetry::new()),
            events,
            shutdown.clone(),
        )
        .unwrap();
        if mode == Misbehaviour::BitswapLiar {
            tokio::spawn(bitswap_liar(swarm.clone()));
            return TestPeer {
                swarm,
                key,
                shutdown,
                _dir: dir,
            };
        }
        let mut incoming = swarm.accept(PROTOCOL).unwrap();
        tokio::spawn(async move {
            while let Some((_, mut stream)) = incoming.next().await {
                let mode = mode.clone();
                tokio::spawn(async move {
                    let Ok(asked) = wire::read_request(&mut stream).await else {
                        return;
                    };
                    match mode {
                        Misbehaviour::Client | Misbehaviour::BitswapLiar => {}
                        Misbehaviour::Liar => {
                            let _ = wire::write_response(&mut stream, Status::Ok, 0, &[0x47; 1000])
                                .await;
                            let _ = stream.close().await;
                        }
                        Misbehaviour::Staller => {
                            tokio::time::sleep(Duration::from_secs(3600)).await
                        }
                        Misbehaviour::LiesAfter { blocks, honest } => {
                            let found = blocks.iter().position(|(c, _)| *c == asked);
                            let _ = match found {
                                Some(i) => {
                                    let mut data = blocks[i].1.to_vec();
                                    if i >= honest {
                                        let mid = data.len() / 2;
                                        data[mid] ^= 0xff;
                                    }
                                    wire::write_response(&mut stream, Status::Ok, 0, &data).await
                                }
                                None => {
                                    wire::write_response(&mut stream, Status::NotFound, 0, &[])
                                        .await
                                }
                            };
                            let _ = stream.close().await;
                        }
                    }
                });
            }
        });
        TestPeer {
            swarm,
            key,
            shutdown,
            _dir: dir,
        }
    }

    pub async fn tcp_addr(&self) -> String {
        self.addr_with("/tcp/").await
    }

    /// The browser-dialable address, with `/certhash/` and `/p2p/`.
    pub async fn webrtc_addr(&self) -> String {
        self.addr_with("/webrtc-direct/").await
    }

    /// Asks `peer` for every CID in `cids` at once, one stream each; the
    /// answers in order.
    pub async fn ask_at_once<'a>(
        &self,
        peer: libp2p::PeerId,
        cids: impl IntoIterator<Item = &'a cid::Cid>,
        timeout: Duration,
    ) -> Vec<Result<Delivered, FetchError>> {
        let asks = cids
            .into_iter()
            .map(|cid| fetch_block(&self.swarm, peer, cid, 4 << 20, timeout));
        futures::future::join_all(asks).await
    }

    async fn addr_with(&self, part: &str) -> String {
        for _ in 0..200 {
            let (_, addrs) = self.swarm.info().await;
            if let Some(a) = addrs.iter().find(|a| a.to_string().contains(part)) {
                return a.to_string();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("test peer never listened on {part}");
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A round of answers: how many were served, how many busy, and the other
/// errors.
pub fn tally(answers: &[Result<Delivered, FetchError>]) -> (usize, usize, Vec<String>) {
    let served = answers.iter().filter(|a| a.is_ok()).count();
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(FetchError::Busy)))
        .count();
    let errors = answers
        .iter()
        .filter_map(|a| a.as_ref().err())
        .filter(|e| !matches!(e, FetchError::Busy))
        .map(|e| e.to_string())
        .collect();
    (served, busy, errors)
}

/// Answers every Bitswap want: "have" for want-have, wrong bytes under the
/// wanted prefix for want-block, on a stream opened back to the asker.
async fn bitswap_liar(swarm: Swarm) {
    use swarmseed::swarm::bitswap::PROTOCOL as BITSWAP;
    use swarmseed::swarm::bitswap_pb::{self as pb, HAVE, WANT_HAVE};
    let mut incoming = swarm.accept(BITSWAP).unwrap();
    while let Some((peer, mut stream)) = incoming.next().await {
        let swarm = swarm.clone();
        tokio::spawn(async move {
            while let Ok(Some(m)) = pb::read(&mut stream).await {
                let mut answer = pb::Message::default();
                for e in m.wantlist.map(|w| w.entries).unwrap_or_default() {
                    let Ok(cid) = cid::Cid::try_from(e.block.as_slice()) else {
                        continue;
                    };
                    if e.cancel {
                        continue;
                    } else if e.want_type == WANT_HAVE {
                        answer.block_presences.push(pb::BlockPresence {
                            cid: cid.to_bytes(),
                            r#type: HAVE,
                        });
                    } else {
                        answer.payload.push(pb::Block {
                            prefix: pb::prefix(&cid),
                            data: vec![0x47; 1000],
                        });
                    }
                }
                if answer == pb::Message::default() {
                    continue;
                }
                if let Ok(mut back) = swarm.control().open_stream(peer, BITSWAP).await {
                    let _ = pb::write(&mut back, &answer).await;
                    let _ = back.close().await;
                }
            }
        });
    }
}
