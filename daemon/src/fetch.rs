//! The path of a segment (DESIGN §1): store first, then the CDN. Implements
//! the gateway's `SegmentSource`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gateway::{
    Counters, Event, Origin, Playlist, Segment, SegmentKey, SegmentSource, SourceError, StoreUsage,
    Telemetry,
};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use url::Url;

use crate::cdn::Cdn;
use crate::playlists::LiveCache;
use crate::store::{Store, unixfs, unixfs::Dag};

/// Bounds on what the origin may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub segment_bytes: u64,
    pub playlist_bytes: u64,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Segment, SourceError>>>;

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) cdn: Cdn,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) limits: Limits,
    /// CDN fetches under way, so concurrent requests for one segment share one.
    inflight: Mutex<HashMap<SegmentKey, SharedFetch>>,
    pub(crate) live: LiveCache,
    /// Fetches and store writes under way, awaited at shutdown.
    pub(crate) tasks: TaskTracker,
}

#[derive(Clone)]
pub struct Fetcher {
    pub(crate) inner: Arc<Inner>,
}

impl Fetcher {
    pub fn new(store: Store, cdn: Cdn, telemetry: Arc<Telemetry>, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cdn,
                telemetry,
                limits,
                inflight: Mutex::new(HashMap::new()),
                live: LiveCache::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Waits for fetches and store writes under way to finish.
    pub async fn finish(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Joins the CDN fetch for `key` under way, or starts one. The fetch runs
    /// as its own task: it answers as soon as the bytes and their CID are
    /// known, then stores them, even if every client waiting on it went away.
    async fn fetch_once(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        let fetch = {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(f) = inflight.get(key) {
                f.clone()
            } else {
                let (tx, rx) = oneshot::channel();
                let inner = self.inner.clone();
                let k = key.clone();
                self.inner.tasks.spawn(async move {
                    let fetched = inner.fetch_and_identify(&k).await;
                    let to_store = fetched
                        .as_ref()
                        .ok()
                        .map(|(seg, dag)| (seg.clone(), dag.clone()));
                    let _ = tx.send(fetched.map(|(seg, _)| seg));
                    if let Some((seg, dag)) = to_store
                        && let Err(e) = inner
                            .store
                            .put_imported(k.to_string(), dag, seg.bytes, seg.content_type)
                            .await
                    {
                        // Serving goes on when the store can't take the bytes (disk full).
                        warn!(segment = %k, error = %e, "segment not stored");
                    }
                    inner
                        .inflight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&k);
                });
                let f = async move { rx.await.unwrap_or(Err(SourceError::Store)) }
                    .boxed()
                    .shared();
                inflight.insert(key.clone(), f.clone());
                f
            }
        };
        fetch.await
    }
}

impl Inner {
    async fn fetch_and_identify(
        &self,
        key: &SegmentKey,
    ) -> Result<(Segment, Arc<Dag>), SourceError> {
        let fetched = self
            .cdn
            .get(&key.url, key.range, self.limits.segment_bytes)
            .await
            .inspect_err(|e| {
                warn!(segment = %key, error = %e, "CDN fetch failed");
            })?;
        let n = fetched.body.len() as u64;
        Counters::add(&self.telemetry.counters.bytes_from_cdn, n);
        self.telemetry.emit(Event::FallbackCdn {
            url: key.url.to_string(),
            bytes: n,
            reason: "no trusted CID",
        });
        let body = fetched.body;
        let for_import = body.clone();
        let dag = tokio::task::spawn_blocking(move || unixfs::import(&for_import))
            .await
            .map_err(|_| SourceError::Store)?;
        info!(segment = %key, cid = %dag.root, bytes = n, "fetched segment from CDN");
        let seg = Segment {
            bytes: body,
            content_type: fetched.content_type,
            cid: dag.root.to_string(),
            origin: Origin::Cdn,
        };
        Ok((seg, Arc::new(dag)))
    }

    pub(crate) fn count_cdn(&self, bytes: &Bytes) {
        Counters::add(&self.telemetry.counters.bytes_from_cdn, bytes.len() as u64);
    }
}

impl SegmentSource for Fetcher {
    async fn playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        self.inner.playlist(url).await
    }

    async fn segment(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
        match self.inner.store.get_segment(&key.to_string()).await {
            Ok(Some(s)) => {
                return Ok(Segment {
                    bytes: s.bytes,
                    content_type: s.content_type,
                    cid: s.cid.to_string(),
                    origin: Origin::Store,
                });
            }
            Ok(None) => {}
            Err(e) => warn!(segment = %key, error = %e, "store read failed; going to the CDN"),
        }
        self.fetch_once(key).await
    }

    fn store_usage(&self) -> StoreUsage {
        self.inner.store.usage()
    }
}
