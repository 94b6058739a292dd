//! The path of a segment (DESIGN §1): the store, then peers when the
//! segment's CID is trusted, then the CDN. Implements the gateway's
//! `SegmentSource`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gateway::{
    Counters, Delivery, Event, Origin, Playlist, Segment, SegmentKey, SegmentSource, SourceError,
    StoreUsage, Telemetry,
};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use url::Url;

use crate::cdn::Cdn;
use crate::passthrough::{Head, Tee};
use crate::peers::{PeerError, PeerFetcher};
use crate::playlists::LiveCache;
use crate::rooms::Rooms;
use crate::sha256_list;
use crate::store::unixfs::{self, Dag};
use crate::store::{ForPlayer, Store, StoreError, StoredSegment};
use crate::trust::{Trust, Trusted};

/// Bounds on what the origin may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub segment_bytes: u64,
    pub playlist_bytes: u64,
}

/// The swarm side of fetching.
pub struct P2p {
    pub peers: PeerFetcher,
    pub rooms: Arc<Rooms>,
    /// How long peers get before the CDN is asked.
    pub timeout: Duration,
    /// Segments to prefetch from peers after the one served.
    pub prefetch: usize,
    pub holdings: Arc<crate::holdings::Holdings>,
    /// Told of every video played here (its id and master URL), for the
    /// browser swarms' `serve_played`.
    pub played: Option<tokio::sync::mpsc::UnboundedSender<(String, url::Url)>>,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Segment, SourceError>>>;
/// Resolves once the fetched segment is in the store, or why it is not.
type SharedKept = Shared<BoxFuture<'static, Result<(), String>>>;

/// Where a miss is passed through to players from.
enum Passthrough {
    Cdn,
    Peers(Trusted),
}

/// One fetch under way.
#[derive(Clone)]
struct InFlight {
    /// The whole, verified segment, or why there is none.
    fetch: SharedFetch,
    /// A prefetch, which never goes to the CDN.
    peers_only: bool,
    kept: SharedKept,
    /// The bytes as they arrive, for a miss passed through to players.
    tee: Option<Arc<Tee>>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) cdn: Cdn,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) limits: Limits,
    pub(crate) trust: Arc<Trust>,
    pub(crate) p2p: Option<P2p>,
    /// Fetches under way, so concurrent requests for one segment share one.
    inflight: Mutex<HashMap<SegmentKey, InFlight>>,
    pub(crate) live: LiveCache,
    /// Fetches and store writes under way, awaited at shutdown.
    pub(crate) tasks: TaskTracker,
}

#[derive(Clone)]
pub struct Fetcher {
    pub(crate) inner: Arc<Inner>,
}

impl Fetcher {
    pub fn new(
        store: Store,
        cdn: Cdn,
        telemetry: Arc<Telemetry>,
        limits: Limits,
        trust: Arc<Trust>,
        p2p: Option<P2p>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cdn,
                telemetry,
                limits,
                trust,
                p2p,
                inflight: Mutex::new(HashMap::new()),
                live: LiveCache::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// How long peers get before the CDN is asked.
    pub fn p2p_timeout(&self) -> Duration {
        self.inner
            .p2p
            .as_ref()
            .map_or(Duration::ZERO, |p| p.timeout)
    }

    /// What is known of segments before their bytes arrive.
    pub fn trust(&self) -> &Arc<Trust> {
        &self.inner.trust
    }

    /// Waits for fetches and store writes under way to finish.
    pub async fn finish(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

impl Inner {
    /// Joins the fetch for `key` under way, or starts one. The fetch runs as
    /// its own task: it answers as soon as the bytes and their CID are known,
    /// then stores them, even if every client waiting on it went away. A
    /// prefetch (`peers_only`) never goes to the CDN; the second value says
    /// whether the fetch joined was one.
    async fn fetch_once(
        self: &Arc<Self>,
        key: &SegmentKey,
        peers_only: bool,
    ) -> (Result<Segment, SourceError>, bool, SharedKept) {
        let (fetch, joined_peers_only, kept) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = inflight.get(key) {
                (f.fetch.clone(), f.peers_only, f.kept.clone())
            } else {
                let (tx, rx) = oneshot::channel();
                let (kept_tx, kept_rx) = oneshot::channel();
                let inner = self.clone();
                let k = key.clone();
                self.tasks.spawn(async move {
                    let fetched = if peers_only {
                        inner.obtain_from_peers(&k).await
                    } else {
                        inner.obtain(&k).await
                    };
                    let forget = |inner: &Inner| {
                        inner
                            .inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&k);
                    };
                    match fetched {
                        Ok((seg, dag)) => {
                            let _ = tx.send(Ok(seg.clone()));
                            let kept = inner
                                .keep(k.to_string(), dag, seg.bytes, seg.content_type)
                                .await;
                            forget(&inner);
                            let _ = kept_tx.send(kept);
                        }
                        Err(e) => {
                            // Gone before the answer, so a retry starts afresh.
                            forget(&inner);
                            let _ = kept_tx.send(Err(e.to_string()));
                            let _ = tx.send(Err(e));
                        }
                    }
                });
                let f = async move { rx.await.unwrap_or(Err(SourceError::Store)) }
                    .boxed()
                    .shared();
                let kept = async move {
                    kept_rx
                        .await
                        .unwrap_or_else(|_| Err("fetch abandoned".to_owned()))
                }
                .boxed()
                .shared();
                inflight.insert(
                    key.clone(),
                    InFlight {
                        fetch: f.clone(),
                        peers_only,
                        kept: kept.clone(),
                        tee: None,
                    },
                );
                (f, peers_only, kept)
            }
        };
        (fetch.await, joined_peers_only, kept)
    }

    /// Where a miss of `key` can be passed through to players from: the
    /// CDN when nothing says what its bytes must be, so there is nothing to
    /// check before they go out; peers, leaf by leaf, when a trusted CID of
    /// several blocks names each leaf. Otherwise (one block, or a digest
    /// that only the whole can be checked against) it is held until whole.
    fn passthrough_source(&self, key: &SegmentKey) -> Option<Passthrough> {
        if gateway::ipfs_cid(&key.url).is_some() || named_cid(&key.url).is_some() {
            return None;
        }
        let Some(t) = self.trust.lookup(&key.to_string()) else {
            return Some(Passthrough::Cdn);
        };
        let leaves = t.cid.is_some_and(|c| c.codec() == unixfs::DAG_PB) && t.sha256.is_none();
        (leaves && self.p2p.is_some()).then_some(Passthrough::Peers(t))
    }

    /// A miss for a player: passed through as it arrives where that
    /// needs no check it cannot make yet (see `passthrough_source`), and
    /// stored once whole; else whole. Joins a fetch under way either way.
    async fn deliver(self: &Arc<Self>, key: &SegmentKey) -> Result<Delivery, SourceError> {
        let tee = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(key) {
                Some(f) => f.tee.clone(),
                None => self
                    .passthrough_source(key)
                    .map(|source| self.start_passthrough(key, source, &mut inflight)),
            }
        };
        match tee {
            Some(tee) => Ok(Delivery::Streaming(tee.subscribe().await?)),
            None => self.fetch_joined(key).await.0.map(Delivery::Whole),
        }
    }

    /// Starts fetching `key` from the CDN into a tee, the whole segment
    /// stored once it is in; the caller holds the in-flight map.
    fn start_passthrough(
        self: &Arc<Self>,
        key: &SegmentKey,
        source: Passthrough,
        inflight: &mut HashMap<SegmentKey, InFlight>,
    ) -> Arc<Tee> {
        let tee = Arc::new(Tee::default());
        let (tx, rx) = oneshot::channel();
        let (kept_tx, kept_rx) = oneshot::channel();
        let inner = self.clone();
        let k = key.clone();
        let t = tee.clone();
        self.tasks.spawn(async move {
            let fetched = match source {
                Passthrough::Cdn => inner.via_cdn_passthrough(&k, &t).await,
                Passthrough::Peers(trusted) => inner.via_peers_passthrough(&k, &trusted, &t).await,
            };
            let forget = |inner: &Inner| {
                inner
                    .inflight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&k);
            };
            match fetched {
                Ok((seg, dag)) => {
                    let _ = tx.send(Ok(seg.clone()));
                    let kept = inner
                        .keep(k.to_string(), dag, seg.bytes, seg.content_type)
                        .await;
                    forget(&inner);
                    let _ = kept_tx.send(kept);
                }
                Err(e) => {
                    forget(&inner);
                    let _ = kept_tx.send(Err(e.to_string()));
                    let _ = tx.send(Err(e));
                }
            }
        });
        let fetch = async move { rx.await.unwrap_or(Err(SourceError::Store)) }
            .boxed()
            .shared();
        let kept = async move {
            kept_rx
                .await
                .unwrap_or_else(|_| Err("fetch abandoned".to_owned()))
        }
        .boxed()
        .shared();
        inflight.insert(
            key.clone(),
            InFlight {
                fetch,
                peers_only: false,
                kept,
                tee: Some(tee.clone()),
            },
        );
        tee
    }

    /// The CDN's bytes into `tee` as they arrive, then hashed whole. A body
    /// that breaks breaks the tee's, and nothing comes back to store.
    async fn via_cdn_passthrough(
        &self,
        key: &SegmentKey,
        tee: &Tee,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let result = self.read_passthrough(key, tee).await;
        tee.finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
        let (body, content_type) = result?;
        let n = body.len() as u64;
        let for_import = body.clone();
        let dag = tokio::task::spawn_blocking(move || unixfs::import(&for_import))
            .await
            .map_err(|_| SourceError::Store)?;
        let reason = "no trusted CID";
        self.telemetry.emit(Event::FallbackCdn {
            url: key.url.to_string(),
            bytes: n,
            reason,
        });
        info!(segment = %key, cid = %dag.root, bytes = n, reason, "passed a segment through from the CDN");
        let seg = Segment {
            bytes: body,
            content_type,
            cid: dag.root.to_string(),
            origin: Origin::Cdn,
        };
        Ok((seg, Arc::new(dag)))
    }

    /// A trusted multi-block segment from peers, each leaf to `tee` as it
    /// verifies. Peers that fail before the first leaf leave the CDN to
    /// answer, whole; once a leaf went out, a failure breaks the body.
    async fn via_peers_passthrough(
        &self,
        key: &SegmentKey,
        t: &Trusted,
        tee: &Tee,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let (Some(p2p), Some(cid)) = (&self.p2p, t.cid) else {
            return Err(SourceError::Store);
        };
        let mut started = false;
        let found = self
            .via_peers_leaves(
                cid,
                t.size,
                Some(&t.video),
                p2p,
                Instant::now() + p2p.timeout,
                &mut |leaf| {
                    if !started {
                        started = true;
                        tee.head(Head {
                            length: t.size,
                            content_type: None,
                        });
                    }
                    tee.push(leaf.clone());
                },
            )
            .await;
        let result = match found {
            Ok(found) => Ok(found),
            Err(reason) if !started => self.via_cdn(key, reason, None).await.inspect(|(seg, dag)| {
                if dag.root != cid {
                    warn!(segment = %key, trusted = %cid, cdn = %dag.root, "the CDN's bytes differ from the trusted CID");
                }
                tee.head(Head {
                    length: Some(seg.bytes.len() as u64),
                    content_type: seg.content_type.clone(),
                });
                tee.push(seg.bytes.clone());
            }),
            Err(reason) => {
                warn!(segment = %key, reason, "peers broke off after the first leaf; nothing is stored");
                Err(SourceError::Unreachable(format!("peers broke off: {reason}")))
            }
        };
        tee.finish(result.as_ref().map(|_| ()).map_err(Clone::clone));
        result
    }

    async fn read_passthrough(
        &self,
        key: &SegmentKey,
        tee: &Tee,
    ) -> Result<(Bytes, Option<String>), SourceError> {
        let mut up = self
            .cdn
            .stream(&key.url, key.range, self.limits.segment_bytes)
            .await
            .inspect_err(|e| warn!(segment = %key, error = %e, "CDN fetch failed"))?;
        tee.head(Head {
            length: up.length,
            content_type: up.content_type.clone(),
        });
        let cap = up.length.unwrap_or(0).min(self.limits.segment_bytes) as usize;
        let mut body = bytes::BytesMut::with_capacity(cap);
        loop {
            match up.chunk().await {
                Ok(Some(c)) => {
                    Counters::add(&self.telemetry.counters.bytes_from_cdn, c.len() as u64);
                    body.extend_from_slice(&c);
                    tee.push(c);
                }
                Ok(None) => return Ok((body.freeze(), up.content_type)),
                Err(e) => {
                    warn!(segment = %key, error = %e, "CDN body broke off; nothing is stored");
                    return Err(e);
                }
            }
        }
    }

    async fn obtain_from_peers(
        &self,
        key: &SegmentKey,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let name = key.to_string();
        let (Some(t), Some(p2p)) = (self.trust.lookup(&name), &self.p2p) else {
            return Err(SourceError::Unreachable("no trusted CID".into()));
        };
        self.via_trusted(&name, &t, p2p)
            .await
            .map_err(|reason| SourceError::Unreachable(reason.into()))
    }

    /// A trusted segment from its room, by the p2p deadline: under its
    /// trusted CID, or else under the CIDs room members announced for it,
    /// whose bytes must then match the origin's SHA-256 whole.
    async fn via_trusted(
        &self,
        key: &str,
        t: &Trusted,
        p2p: &P2p,
    ) -> Result<(Segment, Arc<Dag>), &'static str> {
        let deadline = Instant::now() + p2p.timeout;
        if let Some(cid) = t.cid {
            let found = self
                .via_peers(cid, t.size, Some(&t.video), p2p, deadline)
                .await?;
            // A map's dag-pb CID and a digest must both hold; a raw CID
            // already is the digest.
            if let Some(digest) = t.sha256
                && cid.codec() != unixfs::RAW
                && !digest_matches(digest, &found.0.bytes).await
            {
                warn!(segment = key, cid = %cid, "the map's CID names bytes that do not match the origin's SHA-256");
                return Err("peers' bytes do not match the origin's SHA-256");
            }
            return Ok(found);
        }
        let Some(digest) = t.sha256 else {
            return Err("no trusted CID");
        };
        // A member that holds the segment announces its CID with its map;
        // one that just joined may not have heard it yet.
        let hints = loop {
            let arrived = p2p.rooms.map_arrivals().notified();
            tokio::pin!(arrived);
            // Registered now, so a map that lands while the room is asked
            // still wakes it.
            arrived.as_mut().enable();
            let hints = self.trust.hints(key);
            if !hints.is_empty() {
                break hints;
            }
            if p2p.peers.swarm().room_peers(&t.video).await.is_empty()
                || tokio::time::timeout_at(deadline, arrived).await.is_err()
            {
                return Err("no CID announced for the segment");
            }
        };
        let mut reason = "no peer delivered";
        for h in hints {
            match self
                .via_peers(h.cid, Some(h.size), Some(&t.video), p2p, deadline)
                .await
            {
                Ok(found) if digest_matches(digest, &found.0.bytes).await => return Ok(found),
                Ok(_) => {
                    warn!(segment = key, publisher = %h.publisher, cid = %h.cid, "an announced CID names bytes that do not match the origin's SHA-256");
                    self.trust.drop_hints_from(&h.publisher);
                    if let Ok(peer) = h.publisher.parse() {
                        p2p.peers
                            .swarm()
                            .penalize(peer, "announced a CID for other bytes")
                            .await;
                    }
                    reason = "an announced CID named other bytes";
                }
                Err(e) => reason = e,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(reason)
    }

    async fn keep(
        &self,
        key: String,
        dag: Arc<Dag>,
        bytes: Bytes,
        content_type: Option<String>,
    ) -> Result<(), String> {
        let (cid, size) = (dag.root.to_string(), bytes.len() as u64);
        match self
            .store
            .put_imported(key.clone(), dag, bytes, content_type)
            .await
        {
            // Serving goes on when the store can't take the bytes; the store
            // logs a full disk itself, now and then rather than per segment.
            Err(e @ StoreError::Full { .. }) => {
                debug!(segment = %key, error = %e, "segment not stored");
                Err(e.to_string())
            }
            Err(e) => {
                warn!(segment = %key, error = %e, "segment not stored");
                Err(e.to_string())
            }
            Ok(_) => {
                if let Some(p2p) = &self.p2p {
                    p2p.holdings.stored(&key, &cid, size);
                }
                Ok(())
            }
        }
    }

    /// Peers first when the CID is trusted and the room has members, then the CDN.
    async fn obtain(&self, key: &SegmentKey) -> Result<(Segment, Arc<Dag>), SourceError> {
        let named = named_cid(&key.url);
        if gateway::ipfs_cid(&key.url).is_some() {
            // `ipfs://CID` has no CDN to fall back on.
            let cid = named.ok_or(SourceError::Unreachable("malformed CID".into()))?;
            let p2p = self
                .p2p
                .as_ref()
                .ok_or(SourceError::Unreachable("no swarm".into()))?;
            let deadline = Instant::now() + p2p.timeout;
            return self
                .via_peers(cid, None, None, p2p, deadline)
                .await
                .map_err(|reason| SourceError::Unreachable(format!("ipfs://{cid}: {reason}")));
        }
        let name = key.to_string();
        let trusted = self.trust.lookup(&name);
        let want = trusted.as_ref().and_then(|t| t.cid).or(named);
        let reason = match (&trusted, named, &self.p2p) {
            (Some(t), _, Some(p2p)) => match self.via_trusted(&name, t, p2p).await {
                Ok(found) => return Ok(found),
                Err(reason) => reason,
            },
            (None, Some(cid), Some(p2p)) => {
                match self
                    .via_peers(cid, None, None, p2p, Instant::now() + p2p.timeout)
                    .await
                {
                    Ok(found) => return Ok(found),
                    Err(reason) => reason,
                }
            }
            (_, _, None) if want.is_some() => "no swarm",
            _ => "no trusted CID",
        };
        let (seg, dag) = self
            .via_cdn(key, reason, trusted.and_then(|t| t.sha256))
            .await?;
        if let Some(cid) = want
            && cid != dag.root
        {
            warn!(segment = %key, trusted = %cid, cdn = %dag.root, "the CDN's bytes differ from the trusted CID");
        }
        Ok((seg, dag))
    }

    /// The file under `cid` from the video's room, or from any connected
    /// peer for content named by CID alone.
    async fn via_peers(
        &self,
        cid: Cid,
        size: Option<u64>,
        video: Option<&str>,
        p2p: &P2p,
        deadline: Instant,
    ) -> Result<(Segment, Arc<Dag>), &'static str> {
        self.via_peers_leaves(cid, size, video, p2p, deadline, &mut |_| {})
            .await
    }

    /// As `via_peers`, giving `on_leaf` each verified leaf in file order.
    async fn via_peers_leaves(
        &self,
        cid: Cid,
        size: Option<u64>,
        video: Option<&str>,
        p2p: &P2p,
        deadline: Instant,
        on_leaf: &mut (dyn FnMut(&Bytes) + Send),
    ) -> Result<(Segment, Arc<Dag>), &'static str> {
        let swarm = p2p.peers.swarm();
        let candidates = match video {
            Some(v) => swarm.room_peers(v).await,
            None => swarm.connected_peers().await,
        };
        if candidates.is_empty()
            && !p2p.peers.searches_ipfs_dht()
            && swarm.ipfs_peers().await.is_empty()
        {
            return Err("no peers in the room");
        }
        match p2p
            .peers
            .fetch_leaves(
                video.unwrap_or_default(),
                cid,
                size,
                self.limits.segment_bytes,
                candidates,
                deadline,
                on_leaf,
            )
            .await
        {
            Ok(got) => {
                Counters::add(
                    &self.telemetry.counters.bytes_from_p2p,
                    got.bytes.len() as u64,
                );
                debug!(cid = %cid, bytes = got.bytes.len(), "segment from peers");
                let dag = Arc::new(Dag {
                    root: cid,
                    blocks: got.blocks,
                });
                let seg = Segment {
                    bytes: got.bytes,
                    content_type: None,
                    cid: cid.to_string(),
                    origin: Origin::Peers,
                };
                Ok((seg, dag))
            }
            Err(e @ PeerError::Deadline) => {
                debug!(cid = %cid, error = %e, "peers did not deliver");
                Err("peers did not deliver in time")
            }
            Err(e) => {
                debug!(cid = %cid, error = %e, "peers did not deliver");
                Err("no peer delivered")
            }
        }
    }

    /// From the CDN; with a published digest, from the origin or one of
    /// its mirrors, in random order as PeerTube's players pick, until one
    /// sends the bytes the digest names.
    async fn via_cdn(
        &self,
        key: &SegmentKey,
        reason: &'static str,
        digest: Option<[u8; 32]>,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let Some(digest) = digest else {
            return self.fetch_url(key, &key.url, reason, None).await;
        };
        let mut sources: Vec<(Option<Url>, Url)> = vec![(None, key.url.clone())];
        sources.extend(
            self.trust
                .mirrors
                .alternatives(&key.url)
                .into_iter()
                .map(|(base, url)| (Some(base), url)),
        );
        rand::seq::SliceRandom::shuffle(&mut sources[..], &mut rand::rng());
        let mut last = SourceError::Mismatch;
        for (mirror, url) in sources {
            match self.fetch_url(key, &url, reason, Some(digest)).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    if let Some(base) = mirror
                        && matches!(e, SourceError::Mismatch)
                    {
                        self.trust.mirrors.drop(&key.url, &base);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// `key`'s bytes from `url`, checked against `digest` when there is one.
    async fn fetch_url(
        &self,
        key: &SegmentKey,
        url: &Url,
        reason: &'static str,
        digest: Option<[u8; 32]>,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let fetched = self
            .cdn
            .get(url, key.range, self.limits.segment_bytes)
            .await
            .inspect_err(|e| {
                warn!(segment = %key, %url, error = %e, "CDN fetch failed");
            })?;
        let n = fetched.body.len() as u64;
        Counters::add(&self.telemetry.counters.bytes_from_cdn, n);
        let body = fetched.body;
        let for_import = body.clone();
        let (dag, matched) = tokio::task::spawn_blocking(move || {
            let dag = unixfs::import(&for_import);
            let matched = digest.is_none_or(|d| {
                // A single block's CID is its digest; a larger file is hashed whole.
                match dag.root.codec() == unixfs::RAW {
                    true => dag.root.hash().digest() == d,
                    false => sha256_list::matches(&d, &for_import),
                }
            });
            (dag, matched)
        })
        .await
        .map_err(|_| SourceError::Store)?;
        if !matched {
            warn!(segment = %key, %url, "bytes do not match the origin's SHA-256; refused");
            return Err(SourceError::Mismatch);
        }
        self.telemetry.emit(Event::FallbackCdn {
            url: key.url.to_string(),
            bytes: n,
            reason,
        });
        info!(segment = %key, %url, cid = %dag.root, bytes = n, reason, "fetched segment from CDN");
        let seg = Segment {
            bytes: body,
            content_type: fetched.content_type,
            cid: dag.root.to_string(),
            origin: Origin::Cdn,
        };
        Ok((seg, Arc::new(dag)))
    }

    /// Fetches the next segments of a trusted rendition from peers, so
    /// P2P has time to work before the player asks.
    fn prefetch_after(self: &Arc<Self>, key: &SegmentKey) {
        let Some(p2p) = &self.p2p else { return };
        let Some(t) = self.trust.lookup(&key.to_string()) else {
            return;
        };
        let next = self.trust.following(&t, p2p.prefetch);
        if next.is_empty() {
            return;
        }
        let inner = self.clone();
        self.tasks.spawn(async move {
            let Some(p2p) = &inner.p2p else { return };
            p2p.rooms.touch(&t.video).await;
            for (key, _) in next {
                let Some(k) = SegmentKey::parse(&key) else {
                    continue;
                };
                if !matches!(inner.store.get_segment(&key).await, Ok(Some(_))) {
                    let _ = inner.fetch_once(&k, true).await;
                }
            }
        });
    }

    /// Joins or starts a fetch that may use the CDN.
    async fn fetch_joined(
        self: &Arc<Self>,
        key: &SegmentKey,
    ) -> (Result<Segment, SourceError>, SharedKept) {
        match self.fetch_once(key, false).await {
            // A prefetch from peers failed; this request may use the CDN.
            (Err(_), true, _) => {
                let (r, _, kept) = self.fetch_once(key, false).await;
                (r, kept)
            }
            (r, _, kept) => (r, kept),
        }
    }

    pub(crate) fn count_cdn(&self, bytes: &Bytes) {
        Counters::add(&self.telemetry.counters.bytes_from_cdn, bytes.len() as u64);
    }
}

/// Whether `bytes` hash to `digest`, hashed off the async workers.
async fn digest_matches(digest: [u8; 32], bytes: &Bytes) -> bool {
    let bytes = bytes.clone();
    tokio::task::spawn_blocking(move || sha256_list::matches(&digest, &bytes))
        .await
        .unwrap_or(false)
}

/// A CID the URL names: `ipfs://CID`, or `…/ipfs/CID` on any host (DESIGN §3).
fn named_cid(url: &Url) -> Option<Cid> {
    if let Some(host) = gateway::ipfs_cid(url) {
        return Cid::try_from(host).ok();
    }
    let mut parts = url.path_segments()?;
    while let Some(p) = parts.next() {
        if p == "ipfs" {
            return parts.next().and_then(|c| Cid::try_from(c).ok());
        }
    }
    None
}

fn from_store(s: StoredSegment) -> Segment {
    Segment {
        bytes: s.bytes,
        content_type: s.content_type,
        cid: s.cid.to_string(),
        origin: Origin::Store,
    }
}

impl Fetcher {
    /// The segment if the store holds it.
    pub async fn stored(&self, key: &SegmentKey) -> Option<Segment> {
        let s = self
            .inner
            .store
            .get_segment(&key.to_string())
            .await
            .ok()??;
        Some(from_store(s))
    }

    /// A playlist as fresh as its kind needs, read without playing it: no
    /// room is joined and nothing changes in what this node announces.
    pub async fn playlist_unplayed(&self, url: &Url) -> Result<Playlist, SourceError> {
        self.inner.playlist_body(url).await
    }

    /// A segment once it is in the store, for seeding, where a segment
    /// served but not kept (a full disk) is a failure.
    pub async fn segment_kept(&self, key: &SegmentKey) -> Result<Segment, String> {
        if let Some(s) = self.stored(key).await {
            return Ok(s);
        }
        let (seg, kept) = self.inner.fetch_joined(key).await;
        let seg = seg.map_err(|e| e.to_string())?;
        kept.await?;
        Ok(seg)
    }
}

impl SegmentSource for Fetcher {
    async fn playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        self.inner.playlist(url).await
    }

    async fn segment(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        let found = match self.inner.store.get_segment(&key.to_string()).await {
            Ok(Some(s)) => Some(from_store(s)),
            Ok(None) => None,
            Err(e) => {
                warn!(segment = %key, error = %e, "store read failed; fetching instead");
                None
            }
        };
        let seg = match found {
            Some(s) => s,
            None => self.inner.fetch_joined(key).await.0?,
        };
        self.inner.prefetch_after(key);
        Ok(seg)
    }

    async fn deliver(&self, key: &SegmentKey) -> Result<Delivery, SourceError> {
        let stored = match self.inner.store.for_player(&key.to_string()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(segment = %key, error = %e, "store read failed; fetching instead");
                None
            }
        };
        let delivery = match stored {
            Some(ForPlayer::Memory(s)) => Delivery::Whole(from_store(s)),
            Some(ForPlayer::Files(f)) => Delivery::Files(f),
            None => self.inner.deliver(key).await?,
        };
        self.inner.prefetch_after(key);
        Ok(delivery)
    }

    async fn stored_segment(&self, key: &SegmentKey) -> Option<Segment> {
        self.stored(key).await
    }

    fn store_usage(&self) -> StoreUsage {
        self.inner.store.usage()
    }

    fn peers_connected(&self) -> u64 {
        self.inner
            .p2p
            .as_ref()
            .map_or(0, |p| p.peers.swarm().peers_connected())
    }
}
