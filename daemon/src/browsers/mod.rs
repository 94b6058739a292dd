//! The browser swarms of p2p-media-loader players (`shared/P2PML.md`):
//! every seeded or pinned video (and, with `serve_played`, every video
//! played here) is joined in each of its streams' swarms, under both
//! generations' info_hashes, and served from the store to unmodified
//! players over WebRTC data channels. The protocols live in `bridge`; this
//! is where they meet the store, the fetcher and the counters.

mod host;
mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use bridge::p2pml::{PeerLimits, SwarmStatus, Swarms, SwarmsConfig};
use bridge::rtc::{Engine, EngineConfig};
use bridge::tracker::{Tracker, TrackerConfig};
use gateway::{SeedOptions, Telemetry};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::WebtorrentConfig;
use crate::fetch::Fetcher;
use crate::store::Store;
use crate::swarm::blocks::RateLimiter;
use host::BrowserHost;
pub use streams::Mode;

pub struct Browsers {
    swarms: Swarms<BrowserHost>,
    host: Arc<BrowserHost>,
    fetcher: Fetcher,
    store: Store,
    /// Video id → what follows it, and how it came.
    videos: Mutex<HashMap<String, (CancellationToken, Mode)>>,
    shutdown: CancellationToken,
    serve_played: bool,
}

/// What `run` starts for the browser swarms.
pub struct Started {
    pub browsers: Arc<Browsers>,
    /// The built-in tracker, to be served at `/announce`.
    pub tracker: Option<Arc<Tracker>>,
    pub engine: JoinHandle<()>,
}

impl Browsers {
    /// Binds the WebRTC engine's socket and makes the seeder (and the
    /// tracker, when configured).
    pub async fn start(
        config: &WebtorrentConfig,
        gateway_listen: std::net::SocketAddr,
        fetcher: Fetcher,
        store: Store,
        telemetry: Arc<Telemetry>,
        upload: Arc<RateLimiter>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Started> {
        let (engine, engine_task) = Engine::start(
            EngineConfig {
                listen: config.listen,
                stun_servers: config.stun_servers.clone(),
                max_sessions: (config.max_peers as usize) * 2 + 64,
                ..EngineConfig::default()
            },
            shutdown.child_token(),
        )
        .await
        .with_context(|| format!("binding webtorrent.listen {}", config.listen))?;
        // Viewers' addresses are shown only to whoever is on this machine.
        let tracker = config.tracker.then(|| {
            let tracker_config = TrackerConfig {
                show_remote_addresses: gateway_listen.ip().is_loopback(),
                ..TrackerConfig::default()
            };
            Tracker::new(tracker_config, shutdown.child_token())
        });
        let host = Arc::new(BrowserHost::new(fetcher.clone(), telemetry, upload));
        let swarms = Swarms::new(
            engine,
            host.clone(),
            SwarmsConfig {
                trackers: config.trackers.clone(),
                max_peers: config.max_peers as usize,
                max_peers_per_swarm: config.max_peers_per_swarm as usize,
                peer: PeerLimits::default(),
                ..SwarmsConfig::default()
            },
            tracker.clone(),
            shutdown.child_token(),
        );
        Ok(Started {
            browsers: Arc::new(Browsers {
                swarms,
                host,
                fetcher,
                store,
                videos: Mutex::default(),
                shutdown,
                serve_played: config.serve_played,
            }),
            tracker,
            engine: engine_task,
        })
    }

    /// Joins the swarms of a seeded video; a video already followed
    /// because it was played is followed as seeded from now on.
    pub fn seed(self: &Arc<Self>, video: &str, url: &Url, options: &SeedOptions) {
        self.follow(video, url, options, Mode::Seeded);
    }

    fn follow(self: &Arc<Self>, video: &str, url: &Url, options: &SeedOptions, mode: Mode) {
        let stop = {
            let mut videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
            match videos.get(video) {
                Some((_, m)) if *m == Mode::Seeded || mode == Mode::Played => return,
                Some((old, _)) => old.cancel(),
                None => {}
            }
            let stop = self.shutdown.child_token();
            videos.insert(video.to_owned(), (stop.clone(), mode));
            stop
        };
        tokio::spawn(streams::follow(
            self.clone(),
            video.to_owned(),
            url.clone(),
            options.swarm_id.clone(),
            options.trackers.clone(),
            mode,
            stop,
        ));
    }

    fn is_followed(&self, video: &str) -> bool {
        self.videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(video)
    }

    /// Leaves a video's swarms.
    pub fn stop(&self, video: &str) {
        if let Some((stop, _)) = self
            .videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(video)
        {
            stop.cancel();
        }
    }

    /// Takes the videos played through the gateway, when `serve_played`.
    pub async fn serve_played(self: Arc<Self>, mut played: mpsc::UnboundedReceiver<(String, Url)>) {
        while let Some((video, url)) = played.recv().await {
            if self.serve_played {
                self.follow(&video, &url, &SeedOptions::default(), Mode::Played);
            }
        }
    }

    /// Every browser swarm joined.
    pub fn swarms(&self) -> Vec<SwarmStatus> {
        self.swarms.status()
    }

    /// The daemon's peer id in browser swarms.
    pub fn peer_id(&self) -> String {
        self.swarms.peer_id()
    }
}
