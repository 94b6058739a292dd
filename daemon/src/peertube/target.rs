//! What a PeerTube URL names: a video (its watch page, embed or API URL),
//! a channel or an account, on an instance.

use url::Url;

/// What a URL points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `id` is a UUID, a short UUID or a numeric id, as the API takes it.
    Video {
        instance: Url,
        id: String,
    },
    Channel {
        instance: Url,
        handle: String,
    },
    Account {
        instance: Url,
        handle: String,
    },
    /// A playlist of videos: not something one seeds as one video.
    Playlist,
}

impl Target {
    /// Reads a PeerTube URL; `None` when its path is none of PeerTube's.
    pub fn parse(url: &Url) -> Option<Target> {
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return None;
        }
        let mut instance = url.clone();
        instance.set_path("/");
        instance.set_query(None);
        instance.set_fragment(None);
        let parts: Vec<&str> = url.path_segments()?.filter(|p| !p.is_empty()).collect();
        let video = |id: &str| {
            valid_id(id).then(|| Target::Video {
                instance: instance.clone(),
                id: id.to_owned(),
            })
        };
        let handle = |h: &str| valid_handle(h).then(|| h.to_owned());
        match parts.as_slice() {
            ["w", "p", ..] | ["videos", "watch", "playlist", ..] | ["video-playlists", ..] => {
                Some(Target::Playlist)
            }
            ["w", id, ..] | ["videos", "watch", id, ..] | ["videos", "embed", id, ..] => video(id),
            ["api", "v1", "videos", id] => video(id),
            ["c", h, ..] | ["video-channels", h, ..] | ["api", "v1", "video-channels", h, ..] => {
                Some(Target::Channel {
                    instance: instance.clone(),
                    handle: handle(h)?,
                })
            }
            ["a", h, ..] | ["accounts", h, ..] | ["api", "v1", "accounts", h, ..] => {
                Some(Target::Account {
                    instance: instance.clone(),
                    handle: handle(h)?,
                })
            }
            _ => None,
        }
    }
}

/// A UUID (36 characters with dashes), a short UUID (22 base58
/// characters) or a numeric id: what PeerTube's API takes.
fn valid_id(id: &str) -> bool {
    let uuid = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    let short = id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let numeric = !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit());
    uuid || short || numeric
}

/// `name` or `name@host`: letters, digits, `_`, `-`, `.`, and one `@`.
fn valid_handle(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.matches('@').count() <= 1
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b))
}

/// A video's UUID in canonical form, if `id` is one.
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36 && valid_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<Target> {
        Target::parse(&Url::parse(s).unwrap())
    }

    #[test]
    fn every_video_url_form_names_its_video() {
        let instance = Url::parse("https://pt.example:8443/").unwrap();
        for (url, id) in [
            (
                "https://pt.example:8443/w/37evEwhonK5Pyg7Coa6dDK",
                "37evEwhonK5Pyg7Coa6dDK",
            ),
            (
                "https://pt.example:8443/w/11111111-2222-3333-4444-555555555555?start=10s",
                "11111111-2222-3333-4444-555555555555",
            ),
            (
                "https://pt.example:8443/videos/watch/11111111-2222-3333-4444-555555555555",
                "11111111-2222-3333-4444-555555555555",
            ),
            (
                "https://pt.example:8443/videos/embed/37evEwhonK5Pyg7Coa6dDK",
                "37evEwhonK5Pyg7Coa6dDK",
            ),
            ("https://pt.example:8443/api/v1/videos/42", "42"),
        ] {
            assert_eq!(
                parse(url),
                Some(Target::Video {
                    instance: instance.clone(),
                    id: id.into()
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn channels_accounts_and_playlists() {
        let instance = Url::parse("https://pt.example/").unwrap();
        assert_eq!(
            parse("https://pt.example/c/music_channel/videos"),
            Some(Target::Channel {
                instance: instance.clone(),
                handle: "music_channel".into()
            })
        );
        assert_eq!(
            parse("https://pt.example/video-channels/music@other.example"),
            Some(Target::Channel {
                instance: instance.clone(),
                handle: "music@other.example".into()
            })
        );
        assert_eq!(
            parse("https://pt.example/a/alice"),
            Some(Target::Account {
                instance,
                handle: "alice".into()
            })
        );
        assert_eq!(parse("https://pt.example/w/p/abc"), Some(Target::Playlist));
    }

    #[test]
    fn other_urls_are_not_peertube_urls() {
        for url in [
            "https://cdn.example/v/master.m3u8",
            "https://pt.example/w/not-an-id",
            "https://pt.example/w/../../etc",
            "https://pt.example/",
            "ftp://pt.example/w/42",
        ] {
            assert_eq!(parse(url), None, "{url}");
        }
        assert!(is_uuid("11111111-2222-3333-4444-555555555555"));
        assert!(!is_uuid("37evEwhonK5Pyg7Coa6dDK"));
    }
}
