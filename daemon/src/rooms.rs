//! Rooms (DESIGN §4): joining the video's gossipsub room when it plays,
//! leaving it when idle, and passing signed CID maps around. Announcements
//! are small pointers; the map itself travels as a content-addressed object
//! over the block protocol, so its size is not bound by gossip limits.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cidmap::CidMap;
use crate::peers::PeerFetcher;
use crate::store::{Store, unixfs};
use crate::swarm::RoomEvent;
use crate::trust::Trust;

/// A room nobody has played from for this long is left (seeded videos stay).
const IDLE: Duration = Duration::from_secs(300);
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// New members hear about maps at most this often per room.
const ANNOUNCE_GAP: Duration = Duration::from_secs(1);
const MAP_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often what this node holds is announced, when it changed.
const HOLDINGS_EVERY: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RoomMessage {
    /// A signed CID map is available from the sender under `cid`.
    Map {
        video: String,
        cid: String,
        size: u64,
        publisher: String,
        created_ms: u64,
    },
}

pub struct Rooms {
    peers: PeerFetcher,
    store: Store,
    trust: Arc<Trust>,
    trusted: HashSet<PeerId>,
    /// Last use of each joined room.
    active: Mutex<HashMap<String, Instant>>,
    seeding: Mutex<HashSet<String>>,
    /// Maps we hold whole and can announce: per video, one per publisher.
    held: Mutex<HashMap<String, HashMap<String, RoomMessage>>>,
    holdings: Arc<crate::holdings::Holdings>,
    /// The latest map of our own holdings, per video.
    own: Mutex<HashMap<String, CidMap>>,
    last_announce: Mutex<HashMap<String, Instant>>,
    /// Rooms with an announcement scheduled.
    delayed: Mutex<HashSet<String>>,
    map_arrived: Notify,
    /// Untrusted maps read for hints: (video, publisher) → the newest one's time.
    hint_maps: Mutex<HashMap<(String, String), u64>>,
}

/// Publishers' maps remembered for hints, all videos together.
const MAX_HINT_MAPS: usize = 4096;

impl Rooms {
    pub fn new(
        peers: PeerFetcher,
        store: Store,
        trust: Arc<Trust>,
        trusted: HashSet<PeerId>,
        holdings: Arc<crate::holdings::Holdings>,
    ) -> Self {
        Self {
            peers,
            store,
            trust,
            trusted,
            active: Mutex::default(),
            seeding: Mutex::default(),
            held: Mutex::default(),
            holdings,
            own: Mutex::default(),
            last_announce: Mutex::default(),
            delayed: Mutex::default(),
            map_arrived: Notify::new(),
            hint_maps: Mutex::default(),
        }
    }

    /// Marks the room used, joining it first if needed. Returns whether it was just joined.
    pub async fn touch(&self, video: &str) -> bool {
        let joined = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.insert(video.to_owned(), Instant::now()).is_none()
        };
        if joined {
            self.peers.swarm().join(video).await;
        }
        joined
    }

    /// Joins the room of a video this node seeds and stays in it, then
    /// gives its members up to `timeout` to show up, so the seed job can
    /// take what they hold instead of going to the CDN.
    pub async fn seed(&self, video: &str, timeout: Duration) {
        self.seeding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(video.to_owned());
        self.touch(video).await;
        let deadline = Instant::now() + timeout;
        while self.peers.swarm().room_peers(video).await.is_empty() {
            if Instant::now() >= deadline {
                debug!(video, "nobody in the room yet; fetching from the origin");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Woken whenever a map arrives (trusted, or read for hints).
    pub fn map_arrivals(&self) -> &Notify {
        &self.map_arrived
    }

    /// Waits, up to `timeout`, for a trusted map of `video`. Returns at once
    /// when no publisher is trusted, since no map could be.
    pub async fn wait_for_map(&self, video: &str, timeout: Duration) {
        if self.trusted.is_empty() {
            return;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self.map_arrived.notified();
            if self.trust.map(video).is_some() {
                return;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                debug!(
                    video,
                    "no trusted map yet; segments come from the CDN until one arrives"
                );
                return;
            }
        }
    }

    /// Publishes our own signed map: stored as an object, trusted, announced.
    pub async fn publish_map(&self, map: CidMap) -> Result<(), crate::store::StoreError> {
        let message = self.hold(&map).await?;
        self.trust.add_map(map.clone());
        self.seeding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(map.video.clone());
        self.touch(&map.video).await;
        info!(video = %map.video, "publishing CID map");
        self.announce(&map.video, message).await;
        Ok(())
    }

    /// Announces what this node holds of the videos it plays.
    async fn publish_holdings(&self) {
        let evicted = self.store.take_evicted();
        if !evicted.is_empty() {
            self.holdings.forget(&evicted);
        }
        let seeding = self
            .seeding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for map in self.holdings.changed_maps(&seeding) {
            let video = map.video.clone();
            match self.hold(&map).await {
                Ok(message) => {
                    self.own
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(video.clone(), map);
                    self.announce(&video, message).await
                }
                Err(e) => warn!(video, error = %e, "cannot keep our own map"),
            }
        }
    }

    /// Stores a map's JSON as an object so peers can fetch it by CID. A
    /// newer map from the same publisher replaces the older in the store.
    async fn hold(&self, map: &CidMap) -> Result<RoomMessage, crate::store::StoreError> {
        let json = Bytes::from(map.to_json());
        let dag = unixfs::import(&json);
        let message = RoomMessage::Map {
            video: map.video.clone(),
            cid: dag.root.to_string(),
            size: json.len() as u64,
            publisher: map.publisher.clone().unwrap_or_default(),
            created_ms: map.created_ms,
        };
        let key = map_key(map);
        self.store
            .put_imported(key, Arc::new(dag), json, Some("application/json".into()))
            .await?;
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(map.video.clone())
            .or_default()
            .insert(map.publisher.clone().unwrap_or_default(), message.clone());
        Ok(message)
    }

    async fn announce(&self, video: &str, message: RoomMessage) {
        if let Ok(data) = serde_json::to_vec(&message) {
            self.last_announce
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(video.to_owned(), Instant::now());
            self.peers.swarm().publish(video, data).await;
        }
    }

    /// Announces the map we hold for `video`. Bursts of new members get one
    /// announcement at the end of the burst rather than one each.
    async fn announce_held(self: &Arc<Self>, video: &str) {
        let messages: Vec<RoomMessage> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(video)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        let recent = self
            .last_announce
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(video)
            .is_some_and(|t| t.elapsed() < ANNOUNCE_GAP);
        if !recent {
            for message in messages {
                self.announce(video, message).await;
            }
            return;
        }
        if self
            .delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(video.to_owned())
        {
            let me = self.clone();
            let video = video.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(ANNOUNCE_GAP).await;
                me.delayed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&video);
                for message in messages {
                    me.announce(&video, message).await;
                }
            });
        }
    }

    /// The map this node trusts for `video`, as JSON.
    pub fn map_json(&self, video: &str) -> Option<Bytes> {
        let map = self.trust.map(video).map(|m| m.to_json());
        map.or_else(|| {
            self.own
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(video)
                .map(|m| m.to_json())
        })
        .map(Bytes::from)
    }

    pub async fn run(
        self: Arc<Self>,
        mut events: mpsc::Receiver<RoomEvent>,
        shutdown: CancellationToken,
    ) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut holdings = tokio::time::interval(HOLDINGS_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(event) = events.recv() => self.clone().handle(event).await,
                _ = sweep.tick() => self.sweep().await,
                _ = holdings.tick() => self.publish_holdings().await,
            }
        }
    }

    async fn handle(self: Arc<Self>, event: RoomEvent) {
        match event {
            RoomEvent::PeerJoined { video, .. } => self.announce_held(&video).await,
            RoomEvent::Message {
                video,
                source,
                data,
            } => {
                let Ok(RoomMessage::Map {
                    video: v,
                    cid,
                    size,
                    publisher,
                    created_ms,
                }) = serde_json::from_slice(&data)
                else {
                    debug!(%source, "unreadable room message");
                    return;
                };
                let trusted = publisher
                    .parse::<PeerId>()
                    .is_ok_and(|p| self.trusted.contains(&p));
                if v != video {
                    return;
                }
                let wanted = if trusted {
                    self.trust
                        .map(&video)
                        .is_none_or(|m| m.created_ms < created_ms)
                } else {
                    // An untrusted map is worth reading only for its CIDs of
                    // segments known by their SHA-256, each map once.
                    self.trust.has_sha_list(&video)
                        && self.new_hint_map(&video, &publisher, created_ms)
                };
                if !wanted {
                    return;
                }
                let Ok(cid) = Cid::try_from(cid.as_str()) else {
                    return;
                };
                tokio::spawn(async move { self.fetch_map(video, cid, size, source).await });
            }
        }
    }

    /// Whether `publisher`'s map of `video` made at `created_ms` is newer
    /// than the last one read for hints; notes it if so.
    fn new_hint_map(&self, video: &str, publisher: &str, created_ms: u64) -> bool {
        let mut seen = self.hint_maps.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_HINT_MAPS
            && !seen.contains_key(&(video.to_owned(), publisher.to_owned()))
        {
            return false;
        }
        let last = seen
            .entry((video.to_owned(), publisher.to_owned()))
            .or_insert(0);
        if *last >= created_ms {
            return false;
        }
        *last = created_ms;
        true
    }

    async fn fetch_map(&self, video: String, cid: Cid, size: u64, from: PeerId) {
        if size > 64 << 20 {
            return;
        }
        let got = match self
            .peers
            .fetch(
                &video,
                cid,
                Some(size),
                size,
                vec![from],
                Instant::now() + MAP_FETCH_TIMEOUT,
            )
            .await
        {
            Ok(got) => got,
            Err(e) => return debug!(video, %from, error = %e, "could not fetch announced map"),
        };
        let map = match CidMap::from_json(&got.bytes) {
            Ok(m) => m,
            Err(e) => return warn!(video, %from, error = %e, "announced map is malformed"),
        };
        match map.verify() {
            Ok(publisher) if map.video != video => {
                debug!(video, %publisher, "announced map is of another video")
            }
            Ok(publisher) if self.trusted.contains(&publisher) => {
                if let Err(e) = self.hold(&map).await {
                    warn!(video, error = %e, "cannot keep the map to pass on");
                }
                if self.trust.add_map(map) {
                    info!(video, %publisher, "trusting CID map");
                    self.map_arrived.notify_waiters();
                }
            }
            Ok(publisher) => {
                let kept = self.trust.add_hints(&map);
                if kept > 0 {
                    self.map_arrived.notify_waiters();
                }
                debug!(video, %publisher, kept, "CIDs of an untrusted map kept as hints, to be checked against the origin's SHA-256");
            }
            Err(e) => {
                warn!(video, %from, error = %e, "announced map fails its signature");
                self.peers
                    .swarm()
                    .penalize(from, "announced a forged CID map")
                    .await;
            }
        }
    }

    /// Leaves rooms unused for a while, and reminds rooms of our maps.
    async fn sweep(self: &Arc<Self>) {
        let seeding = self
            .seeding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let idle: Vec<String> = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            let idle: Vec<String> = active
                .iter()
                .filter(|(v, t)| t.elapsed() > IDLE && !seeding.contains(*v))
                .map(|(v, _)| v.clone())
                .collect();
            for v in &idle {
                active.remove(v);
            }
            idle
        };
        for video in idle {
            self.peers.swarm().leave(&video).await;
        }
        for video in seeding {
            self.announce_held(&video).await;
        }
    }
}

/// The store key of a map: one per video and publisher.
pub fn map_key(map: &CidMap) -> String {
    format!(
        "cidmap:{}:{}",
        map.video,
        map.publisher.as_deref().unwrap_or("origin")
    )
}
