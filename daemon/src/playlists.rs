//! Playlist freshness. VOD media playlists never change, so they are kept in
//! the store and served from it, CDN or not. Master playlists are kept too,
//! served from the store and refreshed behind the scenes. Live media
//! playlists are held in memory for half their target duration at most.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::{Origin, Playlist, SourceError};
use tracing::{debug, warn};
use url::Url;

use crate::fetch::Inner;

#[derive(Debug, PartialEq)]
pub enum Kind {
    Master,
    Vod,
    Live { target_duration: Duration },
    Unknown,
}

/// Classifies by a line scan; full parsing is the gateway's job.
pub fn kind(body: &[u8]) -> Kind {
    let Ok(text) = std::str::from_utf8(body) else {
        return Kind::Unknown;
    };
    if !text.trim_start_matches('\u{feff}').starts_with("#EXTM3U") {
        return Kind::Unknown;
    }
    let mut target = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#EXT-X-STREAM-INF") || line.starts_with("#EXT-X-I-FRAME-STREAM-INF") {
            return Kind::Master;
        }
        if line == "#EXT-X-ENDLIST" {
            return Kind::Vod;
        }
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite() && *t > 0.0);
        }
    }
    match target {
        Some(t) => Kind::Live {
            target_duration: Duration::from_secs_f64(t.min(3600.0)),
        },
        None => Kind::Unknown,
    }
}

struct LiveEntry {
    body: Bytes,
    base: Url,
    expires: Instant,
}

#[derive(Default)]
pub struct LiveCache {
    entries: Mutex<HashMap<Url, LiveEntry>>,
}

impl LiveCache {
    fn get(&self, url: &Url) -> Option<Playlist> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(url)?;
        if entry.expires <= Instant::now() {
            entries.remove(url);
            return None;
        }
        Some(Playlist {
            body: entry.body.clone(),
            base: entry.base.clone(),
            origin: Origin::Store,
        })
    }

    fn put(&self, url: Url, body: Bytes, base: Url, max_age: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        entries.retain(|_, e| e.expires > now);
        entries.insert(
            url,
            LiveEntry {
                body,
                base,
                expires: now + max_age,
            },
        );
    }
}

impl Inner {
    /// A playlist, as fresh as its kind needs. Playing a master playlist
    /// joins the video's room and takes up the CID map it names, if any.
    /// A media playlist opened with no master before it is a video of its
    /// own, named by its URL, as `swarmseed seed` names it, and joins that
    /// room.
    pub(crate) async fn playlist(
        self: &std::sync::Arc<Self>,
        url: &Url,
    ) -> Result<Playlist, SourceError> {
        let playlist = self.playlist_body(url).await?;
        let Some(p2p) = &self.p2p else {
            return Ok(playlist);
        };
        let refs = gateway::references(&playlist.body, &playlist.base).unwrap_or_default();
        match kind(&playlist.body) {
            Kind::Master => {
                let video = crate::video::video_id(url);
                if let Some(played) = &p2p.played {
                    let _ = played.send((video.clone(), url.clone()));
                }
                p2p.holdings.master(&video, url, &refs.playlists);
                if p2p.rooms.touch(&video).await {
                    self.origin_map(&playlist, &video).await;
                    p2p.rooms.wait_for_map(&video, p2p.timeout).await;
                }
            }
            Kind::Unknown => {}
            _ => {
                if !p2p.holdings.knows_playlist(url) {
                    let video = crate::video::video_id(url);
                    if let Some(played) = &p2p.played {
                        let _ = played.send((video.clone(), url.clone()));
                    }
                    p2p.holdings.master(&video, url, std::slice::from_ref(url));
                    if p2p.rooms.touch(&video).await {
                        p2p.rooms.wait_for_map(&video, p2p.timeout).await;
                    }
                }
                p2p.holdings.media(url, &refs.segments);
            }
        }
        Ok(playlist)
    }

    /// `EXT-X-SESSION-DATA:DATA-ID="io.swarmseed.cidmap"`: a map served by
    /// the origin itself is trusted as the origin is.
    async fn origin_map(&self, master: &Playlist, video: &str) {
        let Ok(refs) = gateway::references(&master.body, &master.base) else {
            return;
        };
        for (id, url) in refs.session_data {
            if id != crate::cidmap::SESSION_DATA_ID {
                continue;
            }
            let map = match self.cdn.get(&url, None, self.limits.playlist_bytes).await {
                Ok(f) => crate::cidmap::CidMap::from_json(&f.body),
                Err(e) => {
                    warn!(url = %url, error = %e, "CID map named by the playlist is unavailable");
                    continue;
                }
            };
            match map {
                Ok(mut map) if map.signature.is_none() || map.verify().is_ok() => {
                    // The origin names the map for this video, whatever id it was made under.
                    map.video = video.to_owned();
                    debug!(url = %url, segments = map.segment_count(), "trusting the origin's CID map");
                    self.trust.add_map(map);
                }
                Ok(_) => warn!(url = %url, "the origin's CID map fails its signature"),
                Err(e) => warn!(url = %url, error = %e, "the origin's CID map is malformed"),
            }
        }
    }

    pub(crate) async fn playlist_body(
        self: &std::sync::Arc<Self>,
        url: &Url,
    ) -> Result<Playlist, SourceError> {
        if let Some(hit) = self.live.get(url) {
            return Ok(hit);
        }
        match self.store.get_playlist(url.as_str()).await {
            Ok(Some((base, body))) => {
                let k = kind(&body);
                if let (Kind::Vod | Kind::Master, Ok(base)) = (&k, Url::parse(&base)) {
                    if k == Kind::Master {
                        let me = self.clone();
                        let url = url.clone();
                        self.tasks.spawn(async move {
                            if let Err(e) = me.fetch_playlist(&url).await {
                                debug!(url = %url, error = %e, "master playlist refresh failed; keeping the stored copy");
                            }
                        });
                    }
                    return Ok(Playlist {
                        body,
                        base,
                        origin: Origin::Store,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => warn!(url = %url, error = %e, "stored playlist unreadable"),
        }
        self.fetch_playlist(url).await
    }

    async fn fetch_playlist(&self, url: &Url) -> Result<Playlist, SourceError> {
        let fetched = self
            .cdn
            .get(url, None, self.limits.playlist_bytes)
            .await
            .inspect_err(|e| {
                warn!(url = %url, error = %e, "playlist fetch failed");
            })?;
        self.count_cdn(&fetched.body);
        let body = fetched.body;
        match kind(&body) {
            Kind::Vod | Kind::Master => {
                let stored = self
                    .store
                    .put_playlist(url.to_string(), fetched.final_url.to_string(), body.clone())
                    .await;
                if let Err(e) = stored {
                    warn!(url = %url, error = %e, "playlist not stored");
                }
            }
            Kind::Live { target_duration } => {
                self.live.put(
                    url.clone(),
                    body.clone(),
                    fetched.final_url.clone(),
                    target_duration / 2,
                );
            }
            Kind::Unknown => {}
        }
        Ok(Playlist {
            body,
            base: fetched.final_url,
            origin: Origin::Cdn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            kind(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n"),
            Kind::Master
        );
        assert_eq!(
            kind(b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n"),
            Kind::Vod
        );
        assert_eq!(
            kind(b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n"),
            Kind::Live {
                target_duration: Duration::from_secs(4)
            }
        );
        assert_eq!(kind(b"<html>"), Kind::Unknown);
        assert_eq!(kind(b"#EXTM3U\n"), Kind::Unknown);
    }
}
