//! Super-seeding: fetch every rendition's every segment and init section,
//! keep them, and publish a signed CID map in the video's room. A seeded
//! video is pinned: every object it fetches or finds is recorded under its
//! id, and the store never evicts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use gateway::{PinStatus, SeedOptions, SegmentSource, VideoStatus};
use libp2p::identity::Keypair;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use url::Url;

use crate::browsers::Browsers;
use crate::cidmap::{CidMap, Entry, Rendition};
use crate::fetch::Fetcher;
use crate::rooms::Rooms;
use crate::store::Store;
use crate::video::{valid_id, video_id};

pub struct Seeder {
    fetcher: Fetcher,
    store: Store,
    rooms: Arc<Rooms>,
    key: Keypair,
    concurrency: usize,
    status: Mutex<HashMap<String, VideoStatus>>,
    jobs: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Seeds every video to p2p-media-loader browsers too.
    browsers: Option<Arc<Browsers>>,
}

/// What the store keeps of a seeded video: its URL alone (as stores
/// written before swarm options existed hold it), or JSON with options.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    url: String,
    #[serde(flatten)]
    options: SeedOptions,
}

impl Record {
    fn encode(url: &Url, options: &SeedOptions) -> String {
        if options.swarm_id.is_none() && options.trackers.is_empty() {
            return url.to_string();
        }
        let options = SeedOptions {
            id: None,
            ..options.clone()
        };
        serde_json::to_string(&Record {
            url: url.to_string(),
            options,
        })
        .unwrap_or_else(|_| url.to_string())
    }

    fn decode(stored: &str) -> Option<(Url, SeedOptions)> {
        if stored.starts_with('{') {
            let r: Record = serde_json::from_str(stored).ok()?;
            Some((Url::parse(&r.url).ok()?, r.options))
        } else {
            Some((Url::parse(stored).ok()?, SeedOptions::default()))
        }
    }
}

impl Seeder {
    pub fn new(
        fetcher: Fetcher,
        store: Store,
        rooms: Arc<Rooms>,
        key: Keypair,
        concurrency: usize,
        browsers: Option<Arc<Browsers>>,
    ) -> Self {
        Self {
            fetcher,
            store,
            rooms,
            key,
            concurrency: concurrency.max(1),
            status: Mutex::default(),
            jobs: Mutex::default(),
            browsers,
        }
    }

    /// Seeds again what was seeded before the restart, and the configured videos.
    pub async fn restore(self: &Arc<Self>, configured: &[(Url, SeedOptions)]) {
        let mut wanted: Vec<(Url, SeedOptions)> = configured.to_vec();
        match self.store.videos().await {
            Ok(stored) => {
                for (id, record) in stored {
                    if let Some((url, options)) = Record::decode(&record) {
                        wanted.push((
                            url,
                            SeedOptions {
                                id: Some(id),
                                ..options
                            },
                        ));
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot list seeded videos"),
        }
        for (url, options) in wanted {
            if let Err(e) = self.seed(url.clone(), options).await {
                warn!(%url, error = %e, "cannot seed");
            }
        }
    }

    /// Starts seeding `url`, or reports the job already under way.
    pub async fn seed(
        self: &Arc<Self>,
        url: Url,
        options: SeedOptions,
    ) -> Result<VideoStatus, String> {
        let id = options.id.clone().unwrap_or_else(|| video_id(&url));
        if !valid_id(&id) {
            return Err("video id must be 1 to 128 of [A-Za-z0-9_-]".into());
        }
        {
            let status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = status.get(&id)
                && s.state != "failed"
            {
                return Ok(s.clone());
            }
        }
        self.store
            .put_video(id.clone(), Record::encode(&url, &options))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(b) = &self.browsers {
            b.seed(&id, &url, &options);
        }
        let status = VideoStatus {
            id: id.clone(),
            url: url.to_string(),
            segments_total: 0,
            segments_stored: 0,
            state: "fetching".into(),
            reason: None,
        };
        self.set(status.clone());
        let me = self.clone();
        let job_id = id.clone();
        let job = tokio::spawn(async move {
            let result = me.job(&job_id, &url).await;
            me.update(&job_id, |s| match result {
                Ok(()) => s.state = "complete".into(),
                Err(reason) => {
                    warn!(video = %job_id, %reason, "seeding failed");
                    s.state = "failed".into();
                    s.reason = Some(reason);
                }
            });
        });
        if let Some(old) = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, job)
        {
            old.abort();
        }
        Ok(status)
    }

    fn set(&self, s: VideoStatus) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(s.id.clone(), s);
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut VideoStatus)) {
        if let Some(s) = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            f(s);
        }
    }

    pub fn videos(&self) -> Vec<VideoStatus> {
        let mut v: Vec<VideoStatus> = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Pins and seeds a video.
    pub async fn pin(
        self: &Arc<Self>,
        url: Url,
        options: SeedOptions,
    ) -> Result<PinStatus, String> {
        let v = self.seed(url, options).await?;
        Ok(PinStatus {
            id: v.id,
            url: v.url,
            objects: 0,
            bytes: 0,
            state: v.state,
            reason: v.reason,
        })
    }

    /// Stops the video's seed job and unpins it: its objects become cache.
    pub async fn unpin(&self, id: &str) -> Result<bool, String> {
        if let Some(job) = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            job.abort();
        }
        if let Some(b) = &self.browsers {
            b.stop(id);
        }
        let had_job = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some();
        let pinned = self
            .store
            .unpin(id.to_owned())
            .await
            .map_err(|e| e.to_string())?;
        if pinned {
            info!(video = id, "unpinned");
        }
        Ok(pinned || had_job)
    }

    /// Every pin, with what it holds and its seed job's state.
    pub async fn pins(&self) -> Result<Vec<PinStatus>, String> {
        let stored = self.store.videos().await.map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(stored.len());
        for (id, record) in stored {
            let url = Record::decode(&record).map_or(record, |(u, _)| u.to_string());
            let usage = self
                .store
                .pin_usage(id.clone())
                .await
                .map_err(|e| e.to_string())?;
            let job = self
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned();
            out.push(PinStatus {
                id,
                url,
                objects: usage.objects,
                bytes: usage.bytes,
                state: job.as_ref().map_or("fetching".into(), |j| j.state.clone()),
                reason: job.and_then(|j| j.reason),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Stops every job; they resume from the store at the next start.
    pub fn stop(&self) {
        for (_, job) in self.jobs.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            job.abort();
        }
    }

    async fn job(&self, id: &str, url: &Url) -> Result<(), String> {
        let fetcher = &self.fetcher;
        let renditions = crate::cidmap::renditions(url, |u| async move {
            let p = fetcher.playlist(&u).await.map_err(|e| e.to_string())?;
            Ok((p.body, p.base))
        })
        .await?;
        let total: usize = renditions.iter().map(|(_, s)| s.len()).sum();
        self.update(id, |s| s.segments_total = total as u64);
        info!(
            video = id,
            renditions = renditions.len(),
            segments = total,
            "seeding"
        );

        let mut map = Vec::with_capacity(renditions.len());
        for (playlist, keys) in renditions {
            let fetched: Vec<Result<Entry, String>> = futures::stream::iter(keys)
                .map(|key| async move {
                    let _pending = self.store.expect_pin(&key.to_string(), id);
                    let seg = self
                        .fetcher
                        .segment_kept(&key)
                        .await
                        .map_err(|e| format!("{key}: {e}"))?;
                    // Found already stored, or written by a fetch this job joined.
                    self.store
                        .pin_object(id.to_owned(), seg.cid.clone())
                        .await
                        .map_err(|e| format!("{key}: {e}"))?;
                    self.update(id, |s| s.segments_stored += 1);
                    Ok(Entry {
                        key: key.to_string(),
                        cid: seg.cid,
                        size: seg.bytes.len() as u64,
                    })
                })
                .buffered(self.concurrency)
                .collect()
                .await;
            let segments = fetched.into_iter().collect::<Result<Vec<_>, _>>()?;
            map.push(Rendition { playlist, segments });
        }
        let map = CidMap::new(id.to_owned(), url.to_string(), map).sign(&self.key);
        // The map is part of what the pin holds: peers fetch it by CID.
        let _pending = self.store.expect_pin(&crate::rooms::map_key(&map), id);
        self.rooms
            .publish_map(map)
            .await
            .map_err(|e| format!("storing the map: {e}"))?;
        info!(video = id, segments = total, "seeded");
        Ok(())
    }
}
