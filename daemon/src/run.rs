//! `swarmseed run`: brings the components up in order, and down in reverse.

use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gateway::{GatewayState, Telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cdn::Cdn;
use crate::config::Config;
use crate::fetch::{Fetcher, Limits};
use crate::notify;
use crate::store::Store;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// The file, inside `data_dir`, holding the gateway's bound address.
pub const GATEWAY_ADDR_FILE: &str = "gateway.addr";

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    create_private_dir(&data_dir)?;
    let store_dir = data_dir.join("store");
    let memory_cache = config.store.memory_cache.as_u64();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_dir, memory_cache))
        .await?
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let usage = store.usage();
    info!(segments = usage.segments, bytes = usage.bytes, "store open");

    let g = &config.gateway;
    let cdn = Cdn::new(Duration::from_millis(g.cdn_timeout_ms), g.cdn_retries)
        .context("building the HTTP client")?;
    let limits = Limits {
        segment_bytes: g.max_segment_bytes.as_u64(),
        playlist_bytes: g.max_playlist_bytes.as_u64(),
    };
    let telemetry = Arc::new(Telemetry::new());
    let fetcher = Fetcher::new(store.clone(), cdn, telemetry.clone(), limits);
    let source = Arc::new(fetcher.clone());

    let listener = TcpListener::bind(g.listen)
        .await
        .with_context(|| format!("binding the gateway to {}", g.listen))?;
    let addr = listener.local_addr()?;
    let addr_file = data_dir.join(GATEWAY_ADDR_FILE);
    write_atomically(&addr_file, addr.to_string().as_bytes())?;
    let app = gateway::router(GatewayState {
        source,
        telemetry,
        shutdown: shutdown.clone(),
    });
    let server =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = tokio::spawn(server.into_future());
    info!(%addr, "gateway listening");
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
    if tokio::time::timeout(DRAIN, fetcher.finish()).await.is_err() {
        warn!("store writes did not finish in time");
    }
    let _ = std::fs::remove_file(&addr_file);
    tokio::task::spawn_blocking(move || store.flush())
        .await?
        .context("flushing the store")?;
    info!("stopped");
    Ok(())
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
