//! Following a video for its browser swarms: the streams its master names
//! and the swarms each is seeded in, each stream's segment ids as players
//! number them (p2p-media-loader 2.x: VOD by position, live by media
//! sequence; PeerTube's fork: by media sequence; byte ranges as their own
//! segments), and which of them the store holds, announced as that
//! changes. A seeded live stream is kept up with: new segments are fetched
//! as they appear.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bridge::p2pml::fork::{ForkMaster, ForkMember};
use bridge::p2pml::stream::{self, Generation, StreamKind};
use bridge::p2pml::{AnnouncePolicy, Held, SwarmSpec, Wire};
use gateway::{SeedOptions, SegmentKey};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use super::{Browsers, Scheme};
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

/// How a swarm numbers a stream's segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Numbering {
    /// p2p-media-loader 2.x: a VOD's by position from 0, a live stream's by
    /// media sequence.
    P2pml,
    /// PeerTube's fork: media sequence + position, VOD or live.
    Sequence,
}

/// One stream to follow and the swarms it is seeded in.
pub(super) struct Planned {
    pub playlist: Url,
    pub kind: StreamKind,
    /// Info_hash and generation, for the label.
    pub joins: Vec<([u8; 20], &'static str)>,
    /// Its id in the fork's master map, when the swarms are the fork's.
    pub fork_id: Option<String>,
    pub numbering: Numbering,
}

/// One following of a video, under its own id.
pub(super) struct Follow {
    pub id: u64,
    pub video: String,
    pub url: Url,
    pub options: SeedOptions,
    pub scheme: Scheme,
    pub mode: Mode,
}

pub(super) async fn follow(browsers: Arc<Browsers>, f: Follow, stop: CancellationToken) {
    let Follow {
        id: follow,
        video,
        url,
        options,
        scheme,
        mode,
    } = f;
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
    let (planned, policy) = match &scheme {
        Scheme::P2pml => {
            // The players hash the manifest's final URL, after redirects.
            let base = options
                .swarm_id
                .clone()
                .unwrap_or_else(|| stream::swarm_base(&master.base));
            (
                p2pml_plan(&base, &master.base, &master.body),
                AnnouncePolicy::default(),
            )
        }
        Scheme::PeerTube(r) => (
            super::peertube::plan(&video, r, &master.base, &master.body),
            AnnouncePolicy::peertube(),
        ),
    };
    let planned = match planned {
        Ok(p) => p,
        Err(e) => {
            warn!(%video, error = %e, "cannot name the video's browser swarms");
            return;
        }
    };
    let held: Vec<(watch::Sender<Held>, watch::Receiver<Held>)> = planned
        .iter()
        .map(|_| watch::channel::<Held>(Arc::new(Vec::new())))
        .collect();
    let key = |p: &Planned| format!("{video} {}", p.playlist);
    let fork = ForkMaster {
        streams: planned
            .iter()
            .zip(&held)
            .filter_map(|(p, (_, rx))| {
                Some(ForkMember {
                    swarm_id: p.fork_id.clone()?,
                    stream: key(p).into(),
                    held: rx.clone(),
                })
            })
            .collect(),
    };
    let swarms: usize = planned.iter().map(|p| p.joins.len()).sum();
    let mut tasks = tokio::task::JoinSet::new();
    for (p, (tx, rx)) in planned.into_iter().zip(held) {
        let wire = match p.fork_id {
            Some(_) => Wire::Fork(fork.clone()),
            None => Wire::Binary,
        };
        tasks.spawn(follow_stream(
            browsers.clone(),
            (follow, video.clone()),
            key(&p),
            p,
            (tx, rx),
            (wire, policy),
            options.trackers.clone(),
            mode,
            stop.clone(),
        ));
    }
    info!(%video, swarms, "joined the video's browser swarms");
    while tasks.join_next().await.is_some() {}
}

/// Every stream in the 2.2 and 2.3 swarms unmodified p2p-media-loader
/// pages join.
fn p2pml_plan(base: &str, master_url: &Url, body: &[u8]) -> Result<Vec<Planned>, String> {
    let streams = stream::streams(base, master_url, body).map_err(|e| e.to_string())?;
    let mut seen: Vec<[u8; 20]> = Vec::new();
    let mut out = Vec::new();
    for s in streams {
        let joins: Vec<([u8; 20], &'static str)> = Generation::ALL
            .iter()
            .map(|g| (s.info_hash(*g), generation_label(*g)))
            .filter(|(h, _)| !seen.contains(h))
            .collect();
        if joins.is_empty() {
            // 2.3 gives streams with the same metadata one swarm; the first
            // stream's segments are what its players expect.
            debug!(playlist = %s.playlist, "stream shares its swarms with another");
            continue;
        }
        seen.extend(joins.iter().map(|(h, _)| *h));
        out.push(Planned {
            playlist: s.playlist,
            kind: s.kind,
            joins,
            fork_id: None,
            numbering: Numbering::P2pml,
        });
    }
    Ok(out)
}

fn generation_label(g: Generation) -> &'static str {
    match g {
        Generation::V22 => "p2p-media-loader 2.2",
        Generation::V23 => "p2p-media-loader 2.3",
    }
}

#[allow(clippy::too_many_arguments)]
async fn follow_stream(
    browsers: Arc<Browsers>,
    (follow, video): (u64, String),
    key: String,
    p: Planned,
    (held_tx, held): (watch::Sender<Held>, watch::Receiver<Held>),
    (wire, announce): (Wire, AnnouncePolicy),
    trackers: Vec<String>,
    mode: Mode,
    stop: CancellationToken,
) {
    let table = browsers.host.table(&key);
    browsers.own(format!("table {key}"), follow);
    let stream: Arc<str> = key.clone().into();
    let file = p.playlist.path().rsplit('/').next().unwrap_or_default();
    for (h, generation) in &p.joins {
        browsers.own(swarm_name(h), follow);
        browsers.swarms.join(SwarmSpec {
            info_hash: *h,
            stream: stream.clone(),
            held: held.clone(),
            trackers: trackers.clone(),
            label: format!("{video} {} {file} {generation}", p.kind.as_str()),
            wire: wire.clone(),
            announce,
        });
    }
    loop {
        let wait = match refresh(&browsers, &p.playlist, p.numbering, &table, &held_tx, mode).await
        {
            Ok(wait) => wait,
            Err(e) => {
                debug!(playlist = %p.playlist, error = %e, "stream playlist unavailable");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // A video followed anew (played, then seeded; or with a regenerated
    // playlist) may have taken some of these over; the rest are left.
    for (h, _) in &p.joins {
        if browsers.release(&swarm_name(h), follow) {
            browsers.swarms.leave(h);
        }
    }
    if browsers.release(&format!("table {key}"), follow) {
        browsers.host.forget(&key);
    }
}

fn swarm_name(info_hash: &[u8; 20]) -> String {
    let hex: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("swarm {hex}")
}

/// Reads the stream's playlist once; returns when to read it again.
async fn refresh(
    browsers: &Browsers,
    playlist: &Url,
    numbering: Numbering,
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
    let first = match numbering {
        Numbering::P2pml if refs.ended => 0,
        _ => refs.media_sequence,
    };
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
