//! `swarmseed run`: brings the components up in order, and down in reverse.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bridge::relay::RelayLimits;
use bridge::rtc::{Engine, EngineConfig};
use bridge::transport::WebRtcDirect;
use gateway::{Access, GatewayState, PathKey, SeedOptions, Telemetry, WebAssets};
use libp2p::PeerId;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::browsers::{BrowserHost, Browsers};
use crate::cdn::Cdn;
use crate::config::Config;
use crate::fetch::{Fetcher, Limits, P2p};
use crate::holdings::Holdings;
use crate::notify;
use crate::peers::{PeerFetcher, PeerLimits};
use crate::peertube::PeerTube;
use crate::receipts::{self, ProofSettings, Proofs, ReceiptSender};
use crate::rooms::Rooms;
use crate::seeder::{Seeder, SeederParts};
use crate::service::Service;
use crate::store::Store;
use crate::swarm::bitswap;
use crate::swarm::blocks::{self, RateLimiter, ServeLimits};
use crate::swarm::{self, SwarmSettings, keys};
use crate::trust::Trust;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// How long waiting receipts may take to reach their providers at shutdown.
const RECEIPTS_DRAIN: Duration = Duration::from_secs(3);

/// The file, inside `data_dir`, holding the gateway's bound address.
pub const GATEWAY_ADDR_FILE: &str = "gateway.addr";

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    raise_fd_limit();
    create_private_dir(&data_dir)?;
    let key = keys::load_or_create_identity(&data_dir)?;
    let certificate = keys::load_or_create_certificate(&data_dir)?;
    let token = keys::load_or_create_token(&data_dir)?;
    let path_key = keys::load_or_create_path_key(&data_dir)?;
    let store_dir = data_dir.join("store");
    let limits = crate::store::Limits {
        memory_cache: config.store.memory_cache.as_u64(),
        block_cache: config.store.block_cache.as_u64(),
        max_bytes: config.store.max_bytes.as_u64(),
        min_free: config.store.min_free_bytes.as_u64(),
    };
    let store = tokio::task::spawn_blocking(move || Store::open(&store_dir, limits))
        .await?
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let usage = store.usage();
    info!(segments = usage.segments, bytes = usage.bytes, "store open");

    let telemetry = Arc::new(Telemetry::new());
    let proofs_dir = config.data_dir.join("proofs");
    let proof_settings = ProofSettings {
        epoch: Duration::from_secs(config.proofs.epoch_secs),
        max_unreceipted: config.proofs.max_unreceipted_bytes.as_u64(),
    };
    let (proof_key, proof_telemetry) = (key.clone(), telemetry.clone());
    let proofs = Arc::new(
        tokio::task::spawn_blocking(move || {
            Proofs::open(&proofs_dir, proof_key, proof_settings, proof_telemetry)
        })
        .await?
        .with_context(|| format!("opening the receipts in {}", data_dir.display()))?,
    );
    let p = &config.p2p;
    let (room_events, room_rx) = mpsc::channel(1024);
    let settings = SwarmSettings {
        listen: p.listen.clone(),
        bootstrap: p.bootstrap.clone(),
        ipfs_dht: p.ipfs_dht.then(|| p.ipfs_bootstrap.clone()),
        mdns: p.mdns,
        max_connections: p.max_connections,
        relay: p.relay.then(|| RelayLimits {
            max_reservations: p.relay_max_reservations as usize,
            max_circuits: p.relay_max_circuits as usize,
            ..RelayLimits::default()
        }),
    };
    // The swarm outlives the other components at shutdown, so receipts
    // still waiting can be sent; dropping the guard stops it on any exit.
    let swarm_stop = CancellationToken::new();
    let _swarm_guard = swarm_stop.clone().drop_guard();
    let w = &config.webtorrent;
    // One engine for both browser families: WebRTC-direct listeners share
    // the socket of p2p-media-loader and PeerTube sessions when both name
    // one address, as they do by default.
    let (engine, engine_task) = Engine::start(
        EngineConfig {
            listen: w.enabled.then_some(w.listen),
            stun_servers: w.stun_servers.clone(),
            max_sessions: (w.max_peers as usize) * 2 + 64 + p.max_connections as usize,
            ..EngineConfig::default()
        },
        swarm_stop.child_token(),
    )
    .await
    .with_context(|| format!("binding webtorrent.listen {}", w.listen))?;
    let (swarm, swarm_task) = swarm::start(
        key.clone(),
        WebRtcDirect {
            engine: engine.clone(),
            cert: certificate,
        },
        settings,
        telemetry.clone(),
        room_events,
        swarm_stop.clone(),
    )?;
    info!(peer = %swarm.peer_id, "swarm started");
    let serve_limits = ServeLimits {
        per_peer: p.per_peer_requests as usize,
        request_timeout: Duration::from_millis(p.block_timeout_ms),
    };
    let upload = Arc::new(RateLimiter::new(p.upload_bytes_per_sec.as_u64()));
    let block_server = tokio::spawn(blocks::serve(
        swarm.clone(),
        store.clone(),
        telemetry.clone(),
        proofs.clone(),
        serve_limits,
        upload.clone(),
        shutdown.clone(),
    ));
    let bitswap_server = tokio::spawn(bitswap::serve(
        swarm.clone(),
        store.clone(),
        telemetry.clone(),
        upload.clone(),
        shutdown.clone(),
    ));
    let provide_task = p.ipfs_dht.then(|| {
        tokio::spawn(crate::ipfs_provide::run(
            swarm.clone(),
            store.clone(),
            shutdown.clone(),
        ))
    });
    let receipt_server = tokio::spawn(receipts::serve(
        swarm.clone(),
        proofs.clone(),
        shutdown.clone(),
    ));
    let epochs_task = tokio::spawn(proofs.clone().run_epochs(shutdown.clone()));
    let sender = config
        .proofs
        .send_receipts
        .then(|| ReceiptSender::new(key.clone(), swarm.clone()));
    let receipts_out = sender.clone();
    let peers = PeerFetcher::new(
        swarm.clone(),
        PeerLimits {
            max_block: p.max_block_bytes.as_u64(),
            block_timeout: Duration::from_millis(p.block_timeout_ms),
            parallel: p.per_peer_requests as usize,
            ipfs_dht: p.ipfs_dht,
        },
        sender,
    );
    let trusted: HashSet<PeerId> = p
        .trusted_publishers
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let trust = Arc::new(Trust::default());
    let holdings = Arc::new(Holdings::new(key.clone()));
    let rooms = Arc::new(Rooms::new(
        peers.clone(),
        store.clone(),
        trust.clone(),
        trusted,
        holdings.clone(),
    ));
    let rooms_task = tokio::spawn(rooms.clone().run(room_rx, shutdown.clone()));

    let g = &config.gateway;
    let access = access(g, PathKey::new(&path_key), token);
    let cdn = Cdn::new(
        Duration::from_millis(g.cdn_timeout_ms),
        g.cdn_retries,
        Arc::new(access.upstream.clone()),
    )
    .context("building the HTTP client")?;
    let limits = Limits {
        segment_bytes: g.max_segment_bytes.as_u64(),
        playlist_bytes: g.max_playlist_bytes.as_u64(),
    };
    let (played_tx, played_rx) = mpsc::unbounded_channel();
    let p2p = P2p {
        peers,
        rooms: rooms.clone(),
        timeout: Duration::from_millis(g.p2p_timeout_ms),
        prefetch: g.prefetch_segments as usize,
        holdings,
        played: (w.enabled && w.serve_played).then_some(played_tx),
    };
    let peertube = Arc::new(PeerTube::new(cdn.clone(), trust.clone()));
    let fetcher = Fetcher::new(
        store.clone(),
        cdn,
        telemetry.clone(),
        limits,
        trust,
        Some(p2p),
    );
    let browsers = match w.enabled {
        true => Some(Browsers::start(
            engine,
            w,
            g.listen,
            Arc::new(BrowserHost::new(fetcher.clone(), telemetry.clone(), upload)),
            fetcher.clone(),
            store.clone(),
            shutdown.clone(),
        )),
        false => None,
    };
    let seeder = Arc::new(Seeder::new(SeederParts {
        fetcher: fetcher.clone(),
        store: store.clone(),
        rooms: rooms.clone(),
        key,
        concurrency: p.seed_concurrency as usize,
        browsers: browsers.as_ref().map(|b| b.browsers.clone()),
        peertube,
        peertube_refresh: Duration::from_secs(config.peertube.refresh_secs),
    }));
    let played_task = browsers
        .as_ref()
        .map(|b| tokio::spawn(b.browsers.clone().serve_played(played_rx)));
    let service = Arc::new(Service {
        fetcher: fetcher.clone(),
        seeder: seeder.clone(),
        rooms,
        swarm,
        proofs,
        browsers: browsers.as_ref().map(|b| b.browsers.clone()),
        ipfs_fetch: g.ipfs_fetch,
    });

    let listener = TcpListener::bind(g.listen)
        .await
        .with_context(|| format!("binding the gateway to {}", g.listen))?;
    let addr = listener.local_addr()?;
    let addr_file = data_dir.join(GATEWAY_ADDR_FILE);
    write_atomically(&addr_file, addr.to_string().as_bytes())?;
    let tracker = browsers
        .as_ref()
        .and_then(|b| b.tracker.clone())
        .map(bridge::tracker::router)
        .unwrap_or_default();
    let app = gateway::router_with(
        GatewayState {
            source: service,
            telemetry,
            shutdown: Arc::new(shutdown.clone()),
            access: Arc::new(Access {
                listen: addr,
                ..access
            }),
            web: Some(Arc::new(WebAssets::new(
                bridge::web::assets()
                    .iter()
                    .map(|f| (f.name, f.content_type, f.bytes)),
            ))),
        },
        tracker,
    );
    let mut server = tokio::spawn(gateway::serve(
        listener,
        app,
        gateway_limits(g),
        shutdown.clone(),
    ));
    info!(%addr, "gateway listening");
    let configured: Vec<_> = config
        .videos
        .iter()
        .map(|v| {
            (
                v.url.clone(),
                SeedOptions {
                    id: v.id.clone(),
                    swarm_id: v.swarm_id.clone(),
                    trackers: v.trackers.clone(),
                    peertube: None,
                    segments_sha256: v.segments_sha256.as_ref().map(url::Url::to_string),
                },
            )
        })
        .collect();
    seeder.restore(&configured).await;
    notify::ready();

    tokio::select! {
        _ = shutdown.cancelled() => {}
        r = &mut server => {
            // The server only ends by itself on an accept failure.
            shutdown.cancel();
            r?.context("gateway server failed")?;
        }
    }
    notify::stopping();
    info!("shutting down");
    if !server.is_finished() {
        match tokio::time::timeout(DRAIN, &mut server).await {
            Ok(r) => r?.context("gateway server failed")?,
            Err(_) => {
                warn!("in-flight requests did not finish in time; aborting them");
                server.abort();
            }
        }
    }
    // Seeding resumes from the store at the next start.
    seeder.stop();
    if tokio::time::timeout(DRAIN, fetcher.finish()).await.is_err() {
        warn!("store writes did not finish in time");
    }
    if let Some(sender) = receipts_out
        && tokio::time::timeout(RECEIPTS_DRAIN, sender.flush())
            .await
            .is_err()
    {
        warn!("receipts still waiting were not all sent");
    }
    drop(browsers);
    if let Some(t) = played_task {
        t.abort();
    }
    if let Some(t) = provide_task {
        t.abort();
    }
    swarm_stop.cancel();
    for task in [
        block_server,
        bitswap_server,
        receipt_server,
        epochs_task,
        rooms_task,
        swarm_task,
        engine_task,
    ] {
        let _ = tokio::time::timeout(DRAIN, task).await;
    }
    let _ = std::fs::remove_file(&addr_file);
    tokio::task::spawn_blocking(move || store.flush())
        .await?
        .context("flushing the store")?;
    info!("stopped");
    Ok(())
}

/// Every connection is a file descriptor, and the usual soft limit (1024)
/// is below `gateway.max_connections`; the hard limit is ours to take.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let old = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                info!(
                    from = old,
                    to = limit.rlim_max,
                    "raised the open file limit"
                );
            }
        }
    }
}

/// Who may use the gateway, from `[gateway]`.
fn access(g: &crate::config::GatewayConfig, paths: PathKey, token: String) -> Access {
    let mut access = Access::new(paths, g.listen);
    access.public = g.public;
    access.api_token = Some(token.into());
    access.hostnames = g.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect();
    access.cors_origins = g
        .cors_origins
        .iter()
        .filter_map(|o| crate::config::web_origin(o))
        .collect();
    access.upstream = gateway::UpstreamPolicy {
        allowed_origins: g
            .allowed_origins
            .iter()
            .filter_map(|o| gateway::AllowedOrigin::parse(o).ok())
            .collect(),
        allow_private: g.private_origins_allowed(),
        require_allowed: g.public,
    };
    access
}

fn gateway_limits(g: &crate::config::GatewayConfig) -> gateway::ServeLimits {
    gateway::ServeLimits {
        header_timeout: Duration::from_millis(g.header_timeout_ms),
        idle_timeout: Duration::from_millis(g.idle_timeout_ms),
        max_connections: g.max_connections as usize,
        per_ip: g.public.then_some(gateway::PerIp {
            connections: g.max_connections_per_ip as usize,
            requests_per_sec: g.requests_per_sec_per_ip,
        }),
    }
}

/// The data dir holds keys and tokens, so only its owner may enter it.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data_dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o007 != 0 {
        warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data_dir is accessible to all users");
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
