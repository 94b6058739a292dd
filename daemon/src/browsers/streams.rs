//! Following a video for its browser swarms: the streams its master names,
//! each stream's segment ids as players number them (VOD by position, live
//! by media sequence, byte ranges as their own segments), and which of them
//! the store holds, announced as that changes. A seeded live stream is kept
//! up with: new segments are fetched as they appear.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bridge::p2pml::stream::{self, Generation, Stream};
use bridge::p2pml::{Held, SwarmSpec};
use gateway::SegmentKey;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use super::Browsers;
use crate::playlists::{Kind, kind};

/// How a video came to be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Seeded or pinned: live segments are fetched to keep up.
    Seeded,
    /// Played through the gateway: only what the store holds is served.
    Played,
}

/// How long a stream is left alone once everything it names is held.
const SETTLED: Duration = Duration::from_secs(30);
/// While a VOD stream is still being fetched, holdings are read this often.
const FILLING: Duration = Duration::from_secs(1);
/// After a failure to read a playlist.
const RETRY: Duration = Duration::from_secs(5);
/// Live segments fetched at once by one stream.
const LIVE_FETCHES: usize = 2;

pub(super) async fn follow(
    browsers: Arc<Browsers>,
    video: String,
    url: Url,
    swarm_id: Option<String>,
    trackers: Vec<String>,
    mode: Mode,
    stop: CancellationToken,
) {
    // Read, not played: the seed job (or the player) already joined the
    // video's room, and these reloads must not disturb what it announces.
    let master = loop {
        match browsers.fetcher.playlist_unplayed(&url).await {
            Ok(p) => break p,
            Err(e) => {
                debug!(%video, error = %e, "master playlist unavailable for browser swarms");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    };
    // The players hash the manifest's final URL, after redirects.
    let base = swarm_id.unwrap_or_else(|| stream::swarm_base(&master.base));
    let streams = match stream::streams(&base, &master.base, &master.body) {
        Ok(s) => s,
        Err(e) => {
            warn!(%video, error = %e, "cannot name the video's browser swarms");
            return;
        }
    };
    let mut seen: Vec<[u8; 20]> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for s in streams {
        let hashes: Vec<[u8; 20]> = Generation::ALL
            .iter()
            .map(|g| s.info_hash(*g))
            .filter(|h| !seen.contains(h))
            .collect();
        if hashes.is_empty() {
            // 2.3 gives streams with the same metadata one swarm; the first
            // stream's segments are what its players expect.
            debug!(%video, playlist = %s.playlist, "stream shares its swarms with another");
            continue;
        }
        seen.extend(&hashes);
        tasks.spawn(follow_stream(
            browsers.clone(),
            video.clone(),
            s,
            hashes,
            trackers.clone(),
            mode,
            stop.clone(),
        ));
    }
    info!(%video, swarms = seen.len(), "joined the video's browser swarms");
    while tasks.join_next().await.is_some() {}
}

async fn follow_stream(
    browsers: Arc<Browsers>,
    video: String,
    s: Stream,
    hashes: Vec<[u8; 20]>,
    trackers: Vec<String>,
    mode: Mode,
    stop: CancellationToken,
) {
    let key = format!("{video} {}", s.playlist);
    let table = browsers.host.table(&key);
    let (held_tx, held) = watch::channel::<Held>(Arc::new(Vec::new()));
    let stream: Arc<str> = key.clone().into();
    let file = s.playlist.path().rsplit('/').next().unwrap_or_default();
    for h in &hashes {
        let generation = Generation::ALL
            .into_iter()
            .find(|g| s.info_hash(*g) == *h)
            .map_or("", |g| match g {
                Generation::V22 => "2.2",
                Generation::V23 => "2.3",
            });
        browsers.swarms.join(SwarmSpec {
            info_hash: *h,
            stream: stream.clone(),
            held: held.clone(),
            trackers: trackers.clone(),
            label: format!(
                "{video} {} {file} p2p-media-loader {generation}",
                s.kind.as_str()
            ),
        });
    }
    loop {
        let wait = match refresh(&browsers, &s.playlist, &table, &held_tx, mode).await {
            Ok(wait) => wait,
            Err(e) => {
                debug!(playlist = %s.playlist, error = %e, "stream playlist unavailable");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // A video followed anew (played, then seeded) has taken these swarms
    // and this table over; only a video no longer followed leaves them.
    if !browsers.is_followed(&video) {
        for h in &hashes {
            browsers.swarms.leave(h);
        }
        browsers.host.forget(&key);
    }
}

/// Reads the stream's playlist once; returns when to read it again.
async fn refresh(
    browsers: &Browsers,
    playlist: &Url,
    table: &super::host::StreamTable,
    held_tx: &watch::Sender<Held>,
    mode: Mode,
) -> Result<Duration, String> {
    let p = browsers
        .fetcher
        .playlist_unplayed(playlist)
        .await
        .map_err(|e| e.to_string())?;
    let refs = gateway::references(&p.body, &p.base).map_err(|e| e.to_string())?;
    let first = if refs.ended { 0 } else { refs.media_sequence };
    let ids: BTreeMap<u64, SegmentKey> = refs
        .media
        .into_iter()
        .enumerate()
        .filter_map(|(i, k)| Some((first + i as u64, k?)))
        .collect();
    let live = match kind(&p.body) {
        Kind::Live { target_duration } => Some(target_duration),
        _ => None,
    };
    if live.is_some() && mode == Mode::Seeded {
        keep_up(browsers, &ids).await;
    }
    let keys: Vec<String> = ids.values().map(SegmentKey::to_string).collect();
    let stored = browsers
        .store
        .has_segments(keys)
        .await
        .map_err(|e| e.to_string())?;
    let now: Vec<u64> = ids
        .keys()
        .zip(&stored)
        .filter(|(_, s)| **s)
        .map(|(id, _)| *id)
        .collect();
    let complete = now.len() == ids.len();
    table.replace(ids);
    held_tx.send_if_modified(|held| {
        if held.as_slice() == now.as_slice() {
            return false;
        }
        *held = Arc::new(now);
        true
    });
    Ok(match live {
        // A live playlist changes about once a target duration.
        Some(t) => (t / 2).max(Duration::from_millis(500)),
        None if complete => SETTLED,
        None => FILLING,
    })
}

/// Fetches the live window's segments not yet held, oldest first.
async fn keep_up(browsers: &Browsers, ids: &BTreeMap<u64, SegmentKey>) {
    use futures::StreamExt;
    let keys: Vec<&SegmentKey> = ids.values().collect();
    let stored = browsers
        .store
        .has_segments(keys.iter().map(|k| k.to_string()).collect())
        .await
        .unwrap_or_default();
    let missing: Vec<&SegmentKey> = keys
        .into_iter()
        .zip(stored.into_iter().chain(std::iter::repeat(false)))
        .filter(|(_, s)| !s)
        .map(|(k, _)| k)
        .collect();
    futures::stream::iter(missing)
        .for_each_concurrent(LIVE_FETCHES, |key| async move {
            if let Err(e) = browsers.fetcher.segment_kept(key).await {
                debug!(%key, error = %e, "live segment not fetched");
            }
        })
        .await;
}
