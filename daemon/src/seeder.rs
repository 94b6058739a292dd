//! Super-seeding: fetch every rendition's every segment and init section,
//! keep them, and publish a signed CID map in the video's room. A seeded
//! video is pinned: every object it fetches or finds is recorded under its
//! id, and the store never evicts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use gateway::{PinStatus, SeedOptions, SegmentSource, VideoStatus};
use libp2p::identity::Keypair;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use url::Url;

use crate::browsers::{Browsers, Scheme};
use crate::cidmap::{CidMap, Entry, Rendition};
use crate::fetch::Fetcher;
use crate::peertube::{PeerTube, PeerTubeError, Resolved, Target};
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
    peertube: Arc<PeerTube>,
    /// How often a seeded PeerTube video is read again from its instance.
    peertube_refresh: Duration,
    /// The re-reading of each seeded PeerTube video.
    watchers: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// Answers that say a PeerTube video is gone or closed: its swarms are left.
fn closed(e: &PeerTubeError) -> bool {
    matches!(
        e,
        PeerTubeError::NoSuchVideo { .. }
            | PeerTubeError::Private
            | PeerTubeError::PasswordProtected
            | PeerTubeError::NotPublic(_)
            | PeerTubeError::NoHls
            | PeerTubeError::NoSha256List
    )
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
        if options.swarm_id.is_none()
            && options.trackers.is_empty()
            && options.peertube.is_none()
            && options.segments_sha256.is_none()
        {
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

/// How a [`Seeder`] is made.
pub struct SeederParts {
    pub fetcher: Fetcher,
    pub store: Store,
    pub rooms: Arc<Rooms>,
    pub key: Keypair,
    pub concurrency: usize,
    pub browsers: Option<Arc<Browsers>>,
    pub peertube: Arc<PeerTube>,
    pub peertube_refresh: Duration,
}

impl Seeder {
    pub fn new(parts: SeederParts) -> Self {
        Self {
            fetcher: parts.fetcher,
            store: parts.store,
            rooms: parts.rooms,
            key: parts.key,
            concurrency: parts.concurrency.max(1),
            status: Mutex::default(),
            jobs: Mutex::default(),
            browsers: parts.browsers,
            peertube: parts.peertube,
            peertube_refresh: parts.peertube_refresh,
            watchers: Mutex::default(),
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
            let result = match options.peertube.as_deref().map(Url::parse) {
                Some(Ok(page)) => self.seed_peertube(page, options, Some(url.clone())).await,
                _ => self.seed(url.clone(), options).await,
            };
            if let Err(e) = result {
                warn!(%url, error = %e, "cannot seed");
            }
        }
    }

    /// Starts seeding `url` (an HLS master playlist, or a PeerTube video's
    /// page), or reports the job already under way.
    pub async fn seed(
        self: &Arc<Self>,
        url: Url,
        options: SeedOptions,
    ) -> Result<VideoStatus, String> {
        if Target::parse(&url).is_some() {
            return self.seed_peertube(url, options, None).await;
        }
        self.trust_list(&url, &options).await?;
        self.seed_hls(url, options, Some(Scheme::P2pml)).await
    }

    /// Takes up the SHA-256 list the options name for the video at `url`.
    async fn trust_list(&self, url: &Url, options: &SeedOptions) -> Result<(), String> {
        let Some(list) = &options.segments_sha256 else {
            return Ok(());
        };
        let list = Url::parse(list).map_err(|e| format!("segments_sha256: {e}"))?;
        let id = options.id.clone().unwrap_or_else(|| video_id(url));
        let files = self
            .peertube
            .trust_sha256_list(&id, &list)
            .await
            .map_err(|e| e.to_string())?;
        info!(video = %id, %list, files, "trusting the origin's SHA-256 list");
        Ok(())
    }

    /// Seeds the `n` latest videos of a PeerTube channel or account; a video
    /// that cannot be seeded is reported failed with its reason.
    pub async fn seed_latest(
        self: &Arc<Self>,
        page: Url,
        n: u32,
        options: SeedOptions,
    ) -> Result<Vec<VideoStatus>, String> {
        let videos = self
            .peertube
            .latest(&page, n)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(videos.len());
        for video in videos {
            let options = SeedOptions {
                id: None,
                ..options.clone()
            };
            match self.seed_peertube(video.clone(), options, None).await {
                Ok(s) => out.push(s),
                Err(reason) => out.push(VideoStatus {
                    id: String::new(),
                    url: video.to_string(),
                    segments_total: 0,
                    segments_stored: 0,
                    state: "failed".into(),
                    reason: Some(reason),
                    peertube: Some(video.to_string()),
                }),
            }
        }
        Ok(out)
    }

    /// Reads a PeerTube video and seeds it under its UUID. A video seeded
    /// before (`stored`: its master playlist then) whose instance does not
    /// answer now goes on being seeded to daemons from the store; its
    /// browser swarms wait for the instance, whose info_hashes may have
    /// changed meanwhile.
    async fn seed_peertube(
        self: &Arc<Self>,
        page: Url,
        options: SeedOptions,
        stored: Option<Url>,
    ) -> Result<VideoStatus, String> {
        match self.peertube.resolve(&page).await {
            Ok(r) => {
                let id = options.id.clone().unwrap_or_else(|| r.uuid.clone());
                if !valid_id(&id) {
                    return Err("video id must be 1 to 128 of [A-Za-z0-9_-]".into());
                }
                info!(video = %id, name = %r.name, version = %r.server_version, generation = r.generation.as_str(), master = %r.master, "PeerTube video read");
                let r = self.peertube.adopt(&id, r);
                let status = self.seed_resolved(&id, &page, &r).await?;
                self.watch(id, page);
                Ok(status)
            }
            Err(e) => match (stored, options.id.clone()) {
                (Some(master), Some(id)) if !closed(&e) => {
                    warn!(video = %id, error = %e, "PeerTube instance not read; seeding from the store until it is");
                    let status = self.seed_hls(master, options, None).await?;
                    self.watch(id, page);
                    Ok(status)
                }
                _ => Err(e.to_string()),
            },
        }
    }

    async fn seed_resolved(
        self: &Arc<Self>,
        id: &str,
        page: &Url,
        r: &Arc<Resolved>,
    ) -> Result<VideoStatus, String> {
        let options = SeedOptions {
            id: Some(id.to_owned()),
            swarm_id: Some(r.master.to_string()),
            trackers: r.trackers.clone(),
            peertube: Some(page.to_string()),
            segments_sha256: None,
        };
        self.seed_hls(r.master.clone(), options, Some(Scheme::PeerTube(r.clone())))
            .await
    }

    /// Reads the PeerTube video `id` again every refresh, following a
    /// regenerated playlist into its new swarms, and leaving the swarms of
    /// a video that was deleted or closed.
    fn watch(self: &Arc<Self>, id: String, page: Url) {
        let me = self.clone();
        let video = id.clone();
        let job = tokio::spawn(async move {
            loop {
                tokio::time::sleep(me.peertube_refresh).await;
                match me.peertube.resolve(&page).await {
                    Ok(r) => {
                        let before = me.peertube.resolved(&video);
                        let changed = before.as_ref().is_none_or(|b| {
                            b.swarm_facts() != r.swarm_facts() || b.sha256_url != r.sha256_url
                        });
                        if changed {
                            info!(%video, master = %r.master, "PeerTube video changed; following it");
                            let r = me.peertube.adopt(&video, r);
                            if let Err(e) = me.seed_resolved(&video, &page, &r).await {
                                warn!(%video, error = %e, "cannot seed the changed PeerTube video");
                            }
                        }
                    }
                    Err(e) if closed(&e) => {
                        warn!(%video, error = %e, "PeerTube video no longer seedable; leaving its browser swarms");
                        if let Some(b) = &me.browsers {
                            b.stop(&video);
                        }
                        me.peertube.forget(&video);
                    }
                    Err(e) => {
                        debug!(%video, error = %e, "PeerTube instance not read; trying again later")
                    }
                }
            }
        });
        if let Some(old) = self
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, job)
        {
            old.abort();
        }
    }

    /// Seeds the HLS video at `url`; `scheme` names its browser swarms, if
    /// it is to join any yet.
    async fn seed_hls(
        self: &Arc<Self>,
        url: Url,
        options: SeedOptions,
        scheme: Option<Scheme>,
    ) -> Result<VideoStatus, String> {
        let id = options.id.clone().unwrap_or_else(|| video_id(&url));
        if !valid_id(&id) {
            return Err("video id must be 1 to 128 of [A-Za-z0-9_-]".into());
        }
        let under_way = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .filter(|s| s.state != "failed" && s.url == url.as_str())
            .cloned();
        if let Some(s) = under_way {
            // Its swarms may have changed without its playlist.
            if let (Some(b), Some(scheme)) = (&self.browsers, scheme) {
                b.seed(&id, &url, &options, scheme);
            }
            return Ok(s);
        }
        self.store
            .put_video(id.clone(), Record::encode(&url, &options))
            .await
            .map_err(|e| e.to_string())?;
        if let (Some(b), Some(scheme)) = (&self.browsers, scheme) {
            b.seed(&id, &url, &options, scheme);
        }
        let status = VideoStatus {
            id: id.clone(),
            url: url.to_string(),
            segments_total: 0,
            segments_stored: 0,
            state: "fetching".into(),
            reason: None,
            peertube: options.peertube.clone(),
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
        if let Some(w) = self
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            w.abort();
        }
        self.peertube.forget(id);
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
        for (_, w) in self
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            w.abort();
        }
    }

    async fn job(&self, id: &str, url: &Url) -> Result<(), String> {
        let fetcher = &self.fetcher;
        let renditions = crate::cidmap::renditions(url, |u| async move {
            let p = fetcher.playlist(&u).await.map_err(|e| e.to_string())?;
            Ok((p.body, p.base))
        })
        .await?;
        let named = self.fetcher.trust().add_sha_renditions(id, &renditions);
        if named > 0 {
            debug!(
                video = id,
                segments = named,
                "segments named in the origin's SHA-256 list"
            );
        }
        // Members are worth waiting for only when something says what
        // their bytes must be.
        let wait = match named > 0 {
            true => self.fetcher.p2p_timeout(),
            false => Duration::ZERO,
        };
        self.rooms.seed(id, wait).await;
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
