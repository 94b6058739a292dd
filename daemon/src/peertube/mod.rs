//! Seeding PeerTube videos (`shared/PEERTUBE.md`): a watch, embed or API
//! URL is read from the instance (and from the video's origin, when it was
//! federated), refused with the reason when it cannot be seeded, and
//! otherwise seeded as its HLS master playlist under the video's UUID,
//! with the origin's SHA-256 list as a trust source, its mirrors as
//! sources, and its players' swarms on its trackers. Seeded videos are read
//! again from time to time, since an instance that regenerates a playlist
//! renames it, and with it every info_hash.

mod api;
mod resolve;
mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::cdn::Cdn;
use crate::trust::Trust;
pub use resolve::{Generation, MAX_LATEST, PeerTubeError, Resolved};
pub use target::Target;

/// What the daemon knows of the PeerTube videos it seeds.
pub struct PeerTube {
    cdn: Cdn,
    trust: Arc<Trust>,
    /// Video id → its latest reading.
    videos: Mutex<HashMap<String, Arc<Resolved>>>,
}

impl PeerTube {
    pub fn new(cdn: Cdn, trust: Arc<Trust>) -> Self {
        Self {
            cdn,
            trust,
            videos: Mutex::default(),
        }
    }

    /// Reads the video `page` names (a watch, embed or API URL).
    pub async fn resolve(&self, page: &Url) -> Result<Resolved, PeerTubeError> {
        match Target::parse(page) {
            Some(Target::Video { instance, id }) => {
                resolve::resolve(&self.cdn, &instance, &id).await
            }
            Some(Target::Playlist) => Err(PeerTubeError::Playlist),
            Some(Target::Channel { .. } | Target::Account { .. }) => {
                Err(PeerTubeError::NeedsLatest)
            }
            None => Err(PeerTubeError::NotPeerTube {
                instance: page.host_str().unwrap_or_default().to_owned(),
                reason: "the URL is no PeerTube video, channel or account page".into(),
            }),
        }
    }

    /// The API URLs of the `n` latest videos of the channel or account
    /// `page` names.
    pub async fn latest(&self, page: &Url, n: u32) -> Result<Vec<Url>, PeerTubeError> {
        let (instance, handle, channel) = match Target::parse(page) {
            Some(Target::Channel { instance, handle }) => (instance, handle, true),
            Some(Target::Account { instance, handle }) => (instance, handle, false),
            Some(Target::Video { .. }) => {
                return Err(PeerTubeError::NotPeerTube {
                    instance: page.host_str().unwrap_or_default().to_owned(),
                    reason: "--latest takes a channel or account URL, not a video's".into(),
                });
            }
            Some(Target::Playlist) => return Err(PeerTubeError::Playlist),
            None => {
                return Err(PeerTubeError::NotPeerTube {
                    instance: page.host_str().unwrap_or_default().to_owned(),
                    reason: "the URL is no PeerTube channel or account page".into(),
                });
            }
        };
        let uuids = resolve::latest(&self.cdn, &instance, &handle, channel, n).await?;
        Ok(uuids
            .into_iter()
            .filter(|u| target::is_uuid(u))
            .filter_map(|u| instance.join(&format!("/api/v1/videos/{u}")).ok())
            .collect())
    }

    /// Trusts the SHA-256 list at `url` for video `id` (DESIGN §3, fifth
    /// case), for an origin that is not PeerTube but publishes one.
    pub async fn trust_sha256_list(&self, id: &str, url: &Url) -> Result<usize, PeerTubeError> {
        let list = resolve::sha256_list(&self.cdn, url).await?;
        let files = list.len();
        self.trust.add_sha_list(id, Arc::new(list));
        Ok(files)
    }

    /// Takes up a reading of video `id`: its SHA-256 list is trusted and
    /// its mirrors are used from now on. Returns the reading kept.
    pub fn adopt(&self, id: &str, resolved: Resolved) -> Arc<Resolved> {
        let r = Arc::new(resolved);
        self.trust.add_sha_list(id, r.sha256.clone());
        self.trust.mirrors.set(&r.master, r.mirrors.clone());
        self.videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), r.clone());
        r
    }

    /// The latest reading of video `id`.
    pub fn resolved(&self, id: &str) -> Option<Arc<Resolved>> {
        self.videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn forget(&self, id: &str) {
        self.videos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The body of the `peertube` fuzz target: `data` read as each answer the
/// daemon reads from an instance, as a URL given to `swarmseed seed`, and
/// as a `serverVersion`. True if any answer was read.
#[doc(hidden)]
pub fn fuzz_answers(data: &[u8]) -> bool {
    let mut read = false;
    read |= serde_json::from_slice::<api::ServerConfig>(data).is_ok();
    read |= serde_json::from_slice::<api::VideoList>(data).is_ok();
    read |= serde_json::from_slice::<api::Problem>(data).is_ok();
    if let Ok(details) = serde_json::from_slice::<api::VideoDetails>(data) {
        read = true;
        for p in &details.streaming_playlists {
            let _ = Url::parse(&p.playlist_url);
        }
    }
    if let Ok(ap) = serde_json::from_slice::<api::ApVideo>(data) {
        read = true;
        for link in &ap.url {
            if let Some(href) = &link.href {
                let _ = ap.infohashes(href);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Generation::of_version(text);
        if let Ok(url) = Url::parse(text)
            && let Some(Target::Video { instance, id }) = Target::parse(&url)
        {
            // What the API is asked for stays on the instance.
            let asked = instance
                .join(&format!("/api/v1/videos/{id}"))
                .expect("an id is a path segment");
            assert_eq!(asked.host_str(), instance.host_str());
            assert_eq!(asked.path(), format!("/api/v1/videos/{id}"));
        }
    }
    read
}
