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
use tracing::{info, warn};
use url::Url;

use crate::cdn::Cdn;
use crate::playlists::LiveCache;
use crate::store::{Store, unixfs};

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
            }),
        }
    }

    /// Joins the CDN fetch for `key` under way, or starts one. The fetch runs
    /// as its own task, so it completes and is stored even if every client
    /// waiting on it goes away.
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
                let inner = self.inner.clone();
                let k = key.clone();
                let task = tokio::spawn(async move {
                    let result = inner.fetch_and_store(&k).await;
                    inner
                        .inflight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&k);
                    result
                });
                let f = async move {
                    task.await.unwrap_or_else(|e| {
                        warn!(error = %e, "CDN fetch task failed");
                        Err(SourceError::Store)
                    })
                }
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
    async fn fetch_and_store(&self, key: &SegmentKey) -> Result<Segment, SourceError> {
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
        let cid = match self
            .store
            .put_segment(key.to_string(), body.clone(), fetched.content_type.clone())
            .await
        {
            Ok(cid) => cid,
            Err(e) => {
                // Serving goes on when the store can't take the bytes (disk full).
                warn!(segment = %key, error = %e, "segment not stored");
                unixfs::import(&body).root
            }
        };
        info!(segment = %key, cid = %cid, bytes = n, "stored segment from CDN");
        Ok(Segment {
            bytes: body,
            content_type: fetched.content_type,
            cid: cid.to_string(),
            origin: Origin::Cdn,
        })
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
