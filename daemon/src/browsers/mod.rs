//! The browser swarms of p2p-media-loader players (`shared/P2PML.md`):
//! every seeded or pinned video (and, with `serve_played`, every video
//! played here) is joined in each of its streams' swarms, under both
//! generations' info_hashes, and served from the store to unmodified
//! players over WebRTC data channels. The protocols live in `bridge`; this
//! is where they meet the store, the fetcher and the counters.

mod host;
mod peertube;
mod streams;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bridge::p2pml::{PeerLimits, SwarmStatus, Swarms, SwarmsConfig};
use bridge::rtc::Engine;
use bridge::tracker::{Tracker, TrackerConfig};
use gateway::SeedOptions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::WebtorrentConfig;
use crate::fetch::Fetcher;
use crate::peertube::Resolved;
use crate::store::Store;
pub use host::BrowserHost;
pub use streams::Mode;

/// Which swarms of a video's browsers are joined.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// Unmodified p2p-media-loader pages: the 2.2 and 2.3 swarms of every
    /// stream.
    P2pml,
    /// A PeerTube video's players: the swarms of its origin's generation
    /// that the origin published, on its trackers, within their limits.
    PeerTube(Arc<Resolved>),
}

impl Scheme {
    fn same_swarms(&self, other: &Scheme) -> bool {
        match (self, other) {
            (Scheme::P2pml, Scheme::P2pml) => true,
            (Scheme::PeerTube(a), Scheme::PeerTube(b)) => a.swarm_facts() == b.swarm_facts(),
            _ => false,
        }
    }
}

struct Followed {
    stop: CancellationToken,
    mode: Mode,
    url: Url,
    scheme: Scheme,
}

/// Which follow of a video holds each swarm and stream table: a follow that
/// ends lets go only of what no newer follow took over.
#[derive(Default)]
struct Owners {
    next: u64,
    by_name: HashMap<String, u64>,
}

pub struct Browsers {
    swarms: Swarms<BrowserHost>,
    engine: Engine,
    /// Ask a PeerTube instance's STUN servers too.
    peertube_stun: bool,
    host: Arc<BrowserHost>,
    fetcher: Fetcher,
    store: Store,
    /// Video id → what follows it, how it came, and what it follows.
    videos: Mutex<HashMap<String, Followed>>,
    owners: Mutex<Owners>,
    shutdown: CancellationToken,
    serve_played: bool,
}

/// What `run` starts for the browser swarms.
pub struct Started {
    pub browsers: Arc<Browsers>,
    /// The built-in tracker, to be served at `/announce`.
    pub tracker: Option<Arc<Tracker>>,
}

impl Browsers {
    /// Makes the seeder (and the tracker, when configured) on the WebRTC
    /// engine, whose socket `webtorrent.listen` bound.
    pub fn start(
        engine: Engine,
        config: &WebtorrentConfig,
        gateway_listen: std::net::SocketAddr,
        host: Arc<BrowserHost>,
        fetcher: Fetcher,
        store: Store,
        shutdown: CancellationToken,
    ) -> Started {
        // Viewers' addresses are shown only to whoever is on this machine.
        let tracker = config.tracker.then(|| {
            let tracker_config = TrackerConfig {
                show_remote_addresses: gateway_listen.ip().is_loopback(),
                ..TrackerConfig::default()
            };
            Tracker::new(tracker_config, shutdown.child_token())
        });
        let swarms = Swarms::new(
            engine.clone(),
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
        Started {
            browsers: Arc::new(Browsers {
                swarms,
                engine,
                peertube_stun: config.peertube_stun,
                host,
                fetcher,
                store,
                videos: Mutex::default(),
                owners: Mutex::default(),
                shutdown,
                serve_played: config.serve_played,
            }),
            tracker,
        }
    }

    /// Joins the swarms of a seeded video; a video already followed
    /// because it was played is followed as seeded from now on, and one
    /// whose playlist or swarms changed is followed anew.
    pub fn seed(self: &Arc<Self>, video: &str, url: &Url, options: &SeedOptions, scheme: Scheme) {
        if let Scheme::PeerTube(r) = &scheme
            && self.peertube_stun
            && !r.stun_servers.is_empty()
        {
            let (engine, servers) = (self.engine.clone(), r.stun_servers.clone());
            tokio::spawn(async move { engine.add_stun_servers(&servers).await });
        }
        self.follow(video, url, options, Mode::Seeded, scheme);
    }

    fn follow(
        self: &Arc<Self>,
        video: &str,
        url: &Url,
        options: &SeedOptions,
        mode: Mode,
        scheme: Scheme,
    ) {
        let stop = {
            let mut videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
            match videos.get(video) {
                Some(_) if mode == Mode::Played => return,
                Some(f)
                    if f.mode == Mode::Seeded && f.url == *url && f.scheme.same_swarms(&scheme) =>
                {
                    return;
                }
                Some(f) => f.stop.cancel(),
                None => {}
            }
            let stop = self.shutdown.child_token();
            videos.insert(
                video.to_owned(),
                Followed {
                    stop: stop.clone(),
                    mode,
                    url: url.clone(),
                    scheme: scheme.clone(),
                },
            );
            stop
        };
        let follow = {
            let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            owners.next += 1;
            owners.next
        };
        tokio::spawn(streams::follow(
            self.clone(),
            streams::Follow {
                id: follow,
                video: video.to_owned(),
                url: url.clone(),
                options: options.clone(),
                scheme,
                mode,
            },
            stop,
        ));
    }

    /// `follow` holds `name` (a swarm or a stream table) from now on.
    fn own(&self, name: String, follow: u64) {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .insert(name, follow);
    }

    /// Gives `name` up if `follow` still holds it; `true` if it did.
    fn release(&self, name: &str, follow: u64) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        match owners.by_name.get(name) {
            Some(f) if *f == follow => {
                owners.by_name.remove(name);
                true
            }
            _ => false,
        }
    }

    /// Leaves a video's swarms.
    pub fn stop(&self, video: &str) {
        if let Some(f) = self
            .videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(video)
        {
            f.stop.cancel();
        }
    }

    /// Takes the videos played through the gateway, when `serve_played`.
    pub async fn serve_played(self: Arc<Self>, mut played: mpsc::UnboundedReceiver<(String, Url)>) {
        while let Some((video, url)) = played.recv().await {
            if self.serve_played {
                self.follow(
                    &video,
                    &url,
                    &SeedOptions::default(),
                    Mode::Played,
                    Scheme::P2pml,
                );
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
