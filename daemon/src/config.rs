//! The daemon's configuration: TOML on disk, embedded defaults otherwise.
//! `config.toml` at the repository root documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use libp2p::multiaddr::{Multiaddr, Protocol};
use serde::Deserialize;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Holds the sled index, the block files and, later, identity.key,
    /// the WebRTC certificate and api.token.
    pub data_dir: PathBuf,
    /// The local HTTP gateway.
    pub gateway: GatewayConfig,
    /// The libp2p swarm.
    pub p2p: P2pConfig,
    /// The content store.
    pub store: StoreConfig,
    /// Contribution proofs: receipts signed and received (DESIGN §5).
    pub proofs: ProofsConfig,
    /// The browser swarms of p2p-media-loader players, and their tracker.
    pub webtorrent: WebtorrentConfig,
    /// Seeding PeerTube videos.
    pub peertube: PeerTubeConfig,
    /// Videos to super-seed at start.
    pub videos: Vec<VideoConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerTubeConfig {
    /// How often a seeded PeerTube video is read again from its instance:
    /// an instance that regenerates a playlist renames it, and with it
    /// every swarm its players join.
    pub refresh_secs: u64,
}

impl Default for PeerTubeConfig {
    fn default() -> Self {
        Self { refresh_secs: 600 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address the gateway listens on. Port 0 picks a free port; the bound
    /// address is written to `data_dir/gateway.addr`.
    pub listen: SocketAddr,
    /// How long to wait for peers before going to the CDN, in milliseconds.
    pub p2p_timeout_ms: u64,
    /// Segments after the one being played to prefetch from peers.
    pub prefetch_segments: u32,
    /// How long the CDN may take to answer, or to send the next chunk of a
    /// body, in milliseconds, before the attempt counts as failed.
    pub cdn_timeout_ms: u64,
    /// Further attempts after a CDN fetch fails with a timeout, a connection
    /// error or a 5xx status. 4xx answers are not retried.
    pub cdn_retries: u32,
    /// The largest segment or init section accepted from upstream.
    pub max_segment_bytes: ByteSize,
    /// The largest playlist accepted from upstream.
    pub max_playlist_bytes: ByteSize,
    /// Serve on a non-loopback address (a VPS, or a reverse proxy in front).
    /// Required for any `listen` that is not loopback. A public gateway
    /// needs the API token for what reveals local state (pins, videos,
    /// events, proofs export), takes `/hls?url=` only for
    /// `allowed_origins`, and limits each client address.
    pub public: bool,
    /// Host names (no port) this gateway answers besides `localhost`,
    /// `127.0.0.1`, `[::1]` and the listen address. Requests naming any
    /// other host are refused, which defeats DNS rebinding.
    pub hostnames: Vec<String>,
    /// If set, the only upstreams the gateway fetches from: host names
    /// (`cdn.example.com`, `cdn.example.com:8443`, `.example.com` for every
    /// name under it) or URL prefixes (`https://cdn.example.com/videos/`).
    pub allowed_origins: Vec<String>,
    /// Fetch from upstreams on loopback, private, link-local and
    /// unique-local addresses. Unset: allowed on a loopback gateway,
    /// refused on a public one.
    pub allow_private_origins: Option<bool>,
    /// Web origins (`https://player.example`) whose pages may use the HLS,
    /// segment and read-only API paths (CORS). None by default; every other
    /// cross-site request is refused.
    pub cors_origins: Vec<String>,
    /// Let the trustless gateway (`/ipfs/{cid}`) fetch from peers what the
    /// store lacks. Off by default: it serves only what the node holds, and
    /// answers 404 for the rest, as a P2P retrieval endpoint should.
    pub ipfs_fetch: bool,
    /// How long a new connection may take to send its first request's
    /// headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// How long a connection may sit with no request in flight, or move no
    /// bytes, before it is closed, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Connections open at once; when full, the oldest idle one is closed.
    pub max_connections: u32,
    /// On a public gateway: connections open at once from one address.
    pub max_connections_per_ip: u32,
    /// On a public gateway: requests per second from one address, with
    /// bursts of twice as many; more are answered 429.
    pub requests_per_sec_per_ip: u32,
}

impl GatewayConfig {
    /// Whether upstreams on private addresses may be fetched.
    pub fn private_origins_allowed(&self) -> bool {
        self.allow_private_origins.unwrap_or(!self.public)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Multiaddrs to listen on. Empty means no listeners (gateway only).
    /// Browsers dial `/udp/N/webrtc-direct` and, where listed, `/tcp/N/ws`.
    pub listen: Vec<Multiaddr>,
    /// Known peers, each a multiaddr ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// Peer ids whose signed CID maps are trusted.
    pub trusted_publishers: Vec<String>,
    /// Most connections open at once, all peers together.
    pub max_connections: u32,
    /// Block requests served to one peer at once; more are answered busy.
    pub per_peer_requests: u32,
    /// Upload rate limit in bytes per second; 0 means none.
    pub upload_bytes_per_sec: ByteSize,
    /// The largest block accepted from a peer.
    pub max_block_bytes: ByteSize,
    /// How long one peer may take to deliver one block, in milliseconds.
    pub block_timeout_ms: u64,
    /// Segments a super-seeder fetches from the CDN at once.
    pub seed_concurrency: u32,
    /// Serve as a circuit relay (v2), so browsers that dial this node over
    /// WebRTC-direct can reach each other. Circuits carry only the WebRTC
    /// handshake (at most 256 KiB and 2 minutes each).
    pub relay: bool,
    /// Relay reservations held at once, all peers together.
    pub relay_max_reservations: u32,
    /// Relay circuits open at once, all peers together.
    pub relay_max_circuits: u32,
    /// Also join the IPFS DHT (Kademlia on `/ipfs/kad/1.0.0`, apart from
    /// the swarm's own): provide the root CID of every object the store
    /// holds, so any IPFS node can find this one, and look there for
    /// providers of a CID no connected peer has.
    pub ipfs_dht: bool,
    /// IPFS DHT nodes to start from, each a multiaddr ending in
    /// `/p2p/<peer id>`. Empty by default: no public node is dialled
    /// unless named here.
    pub ipfs_bootstrap: Vec<Multiaddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Bound on stored segment bytes; cache above pins is evicted, least
    /// recently used first, down to a little under the bound. Pinned
    /// (seeded) videos are never evicted, even if they alone exceed it.
    pub max_bytes: ByteSize,
    /// Free space the store leaves on its disk: a segment write that would
    /// leave less is refused (store full), so the index always has room for
    /// its own writes. Segments are then served without being stored.
    pub min_free_bytes: ByteSize,
    /// Recently served segments kept in memory, already verified, so hot
    /// segments skip the disk.
    pub memory_cache: ByteSize,
    /// Blocks recently served to peers or written, kept in memory already
    /// verified, so a peer's request for a hot block skips the disk and
    /// the hash.
    pub block_cache: ByteSize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProofsConfig {
    /// Sign a receipt for every block verified from a peer. Off, this node
    /// takes blocks without receipts and providers serve it last.
    pub send_receipts: bool,
    /// Seconds an epoch collects receipts before its Merkle root is signed.
    pub epoch_secs: u64,
    /// Bytes a peer may take without receipts before it is served after
    /// peers that sign them.
    pub max_unreceipted_bytes: ByteSize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebtorrentConfig {
    /// Join the p2p-media-loader swarms of seeded and pinned videos and
    /// serve them. Off, no socket is bound for them and no tracker is
    /// served.
    pub enabled: bool,
    /// The WebRTC engine's UDP socket for these sessions. The default is
    /// the address of the default WebRTC-direct listener, so one socket
    /// serves both kinds of browser peer.
    pub listen: SocketAddr,
    /// WebTorrent trackers (`ws://`, `wss://`) every swarm is announced to,
    /// besides each video's own and the built-in one.
    pub trackers: Vec<String>,
    /// Serve a WebTorrent tracker at `/announce` on the gateway's listener;
    /// the daemon is a member of every swarm it seeds there.
    pub tracker: bool,
    /// Browsers connected at once, all swarms together.
    pub max_peers: u32,
    /// Browsers connected at once in one swarm.
    pub max_peers_per_swarm: u32,
    /// STUN servers (`host:port`) asked for this node's public address, so
    /// browsers behind other NATs can reach it. None by default.
    pub stun_servers: Vec<String>,
    /// Also seed to browsers the videos this node plays through its gateway.
    pub serve_played: bool,
    /// Also ask the STUN servers a seeded PeerTube video's instance gives
    /// its players (`/api/v1/config`), so its viewers can reach this node
    /// behind a NAT as they reach each other.
    pub peertube_stun: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    /// Master playlist URL, or a PeerTube video's watch or API URL.
    pub url: Url,
    /// Video id; by default derived from the URL (DESIGN §4).
    #[serde(default)]
    pub id: Option<String>,
    /// The `swarmId` the video's p2p-media-loader pages set, which takes
    /// the manifest URL's place in their swarm ids.
    #[serde(default)]
    pub swarm_id: Option<String>,
    /// The WebTorrent trackers the video's pages announce to.
    #[serde(default)]
    pub trackers: Vec<String>,
    /// A SHA-256 list of the video's segments in PeerTube's
    /// `segments-sha256.json` shape, trusted as the origin's word (DESIGN
    /// §3): every byte from any source is checked against it.
    #[serde(default)]
    pub segments_sha256: Option<Url>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            gateway: GatewayConfig::default(),
            p2p: P2pConfig::default(),
            store: StoreConfig::default(),
            proofs: ProofsConfig::default(),
            webtorrent: WebtorrentConfig::default(),
            peertube: PeerTubeConfig::default(),
            videos: Vec::new(),
        }
    }
}

impl Default for WebtorrentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 4002)),
            trackers: Vec::new(),
            tracker: true,
            max_peers: 200,
            max_peers_per_swarm: 50,
            stun_servers: Vec::new(),
            serve_played: false,
            peertube_stun: true,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            p2p_timeout_ms: 1500,
            prefetch_segments: 6,
            cdn_timeout_ms: 10_000,
            cdn_retries: 2,
            max_segment_bytes: ByteSize::mib(256),
            max_playlist_bytes: ByteSize::mib(8),
            public: false,
            hostnames: Vec::new(),
            allowed_origins: Vec::new(),
            allow_private_origins: None,
            cors_origins: Vec::new(),
            ipfs_fetch: false,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 4096,
            max_connections_per_ip: 64,
            requests_per_sec_per_ip: 100,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        let listen = [
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/0.0.0.0/udp/4001/quic-v1",
            "/ip4/0.0.0.0/udp/4002/webrtc-direct",
        ];
        Self {
            listen: listen.iter().filter_map(|a| a.parse().ok()).collect(),
            bootstrap: Vec::new(),
            mdns: true,
            trusted_publishers: Vec::new(),
            max_connections: 256,
            per_peer_requests: 8,
            upload_bytes_per_sec: ByteSize::b(0),
            max_block_bytes: ByteSize::mib(2),
            block_timeout_ms: 3000,
            seed_concurrency: 4,
            relay: true,
            relay_max_reservations: 128,
            relay_max_circuits: 64,
            ipfs_dht: false,
            ipfs_bootstrap: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_bytes: ByteSize::gib(50),
            min_free_bytes: ByteSize::mib(64),
            memory_cache: ByteSize::mib(256),
            block_cache: ByteSize::mib(64),
        }
    }
}

impl Default for ProofsConfig {
    fn default() -> Self {
        Self {
            send_receipts: true,
            epoch_secs: 3600,
            max_unreceipted_bytes: ByteSize::mib(32),
        }
    }
}

/// systemd's `StateDirectory=` when run as a service, else the platform's
/// data directory.
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").and_then(|v| {
        std::env::split_paths(&v)
            .next()
            .filter(|p| !p.as_os_str().is_empty())
    }) {
        return dir;
    }
    directories::ProjectDirs::from("", "", "swarmseed")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("swarmseed-data"))
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|(key, message)| ConfigError::Invalid {
            path: path.into(),
            key,
            message,
        })
    }

    /// Parses and validates TOML text; errors name the key at fault.
    pub fn parse(text: &str) -> Result<Self, (String, String)> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ("(syntax)".to_owned(), e.message().to_owned()))?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().to_owned();
            (
                if key == "." {
                    "(top level)".to_owned()
                } else {
                    key
                },
                message,
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: String| Err((key.to_owned(), message));
        let g = &self.gateway;
        if !(1..=60_000).contains(&g.p2p_timeout_ms) {
            return fail(
                "gateway.p2p_timeout_ms",
                format!("{} is outside 1..=60000", g.p2p_timeout_ms),
            );
        }
        if g.prefetch_segments > 64 {
            return fail(
                "gateway.prefetch_segments",
                format!("{} is more than 64", g.prefetch_segments),
            );
        }
        if !(100..=600_000).contains(&g.cdn_timeout_ms) {
            return fail(
                "gateway.cdn_timeout_ms",
                format!("{} is outside 100..=600000", g.cdn_timeout_ms),
            );
        }
        if g.cdn_retries > 10 {
            return fail(
                "gateway.cdn_retries",
                format!("{} is more than 10", g.cdn_retries),
            );
        }
        if g.max_segment_bytes.as_u64() < 1024 {
            return fail("gateway.max_segment_bytes", "must be at least 1KiB".into());
        }
        if g.max_playlist_bytes.as_u64() < 1024 {
            return fail("gateway.max_playlist_bytes", "must be at least 1KiB".into());
        }
        if !g.listen.ip().is_loopback() && !g.public {
            return fail(
                "gateway.listen",
                format!(
                    "{} is not a loopback address; it would expose the HLS proxy and the APIs \
                     to every host that can reach it. Set gateway.public = true to serve there \
                     (the README's Security section says what that changes)",
                    g.listen
                ),
            );
        }
        for h in &g.hostnames {
            if h.is_empty()
                || h.contains([':', '/'])
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            {
                return fail(
                    "gateway.hostnames",
                    format!("{h:?} is not a host name (no port, no scheme)"),
                );
            }
        }
        for o in &g.allowed_origins {
            if let Err(e) = gateway::AllowedOrigin::parse(o) {
                return fail("gateway.allowed_origins", e);
            }
        }
        for o in &g.cors_origins {
            if web_origin(o).is_none() {
                return fail(
                    "gateway.cors_origins",
                    format!("{o:?} is not a web origin such as https://player.example"),
                );
            }
        }
        if !(100..=600_000).contains(&g.header_timeout_ms) {
            return fail(
                "gateway.header_timeout_ms",
                format!("{} is outside 100..=600000", g.header_timeout_ms),
            );
        }
        if !(100..=3_600_000).contains(&g.idle_timeout_ms) {
            return fail(
                "gateway.idle_timeout_ms",
                format!("{} is outside 100..=3600000", g.idle_timeout_ms),
            );
        }
        if g.max_connections == 0 {
            return fail("gateway.max_connections", "must be at least 1".into());
        }
        if g.max_connections_per_ip == 0 {
            return fail(
                "gateway.max_connections_per_ip",
                "must be at least 1".into(),
            );
        }
        if g.requests_per_sec_per_ip == 0 {
            return fail(
                "gateway.requests_per_sec_per_ip",
                "must be at least 1".into(),
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return fail("data_dir", "must not be empty".into());
        }
        let p = &self.p2p;
        if p.max_connections == 0 {
            return fail("p2p.max_connections", "must be at least 1".into());
        }
        if !(1..=256).contains(&p.per_peer_requests) {
            return fail(
                "p2p.per_peer_requests",
                format!("{} is outside 1..=256", p.per_peer_requests),
            );
        }
        if !(1024..=(4 << 20)).contains(&p.max_block_bytes.as_u64()) {
            return fail(
                "p2p.max_block_bytes",
                "must be between 1KiB and 4MiB".into(),
            );
        }
        if !(100..=60_000).contains(&p.block_timeout_ms) {
            return fail(
                "p2p.block_timeout_ms",
                format!("{} is outside 100..=60000", p.block_timeout_ms),
            );
        }
        if !(1..=64).contains(&p.seed_concurrency) {
            return fail(
                "p2p.seed_concurrency",
                format!("{} is outside 1..=64", p.seed_concurrency),
            );
        }
        if p.relay && (p.relay_max_reservations == 0 || p.relay_max_circuits == 0) {
            return fail(
                "p2p.relay_max_reservations",
                "relay limits must be at least 1 (or set relay = false)".into(),
            );
        }
        if !(1..=7 * 86_400).contains(&self.proofs.epoch_secs) {
            return fail(
                "proofs.epoch_secs",
                format!("{} is outside 1..=604800", self.proofs.epoch_secs),
            );
        }
        for (key, list) in [
            ("p2p.bootstrap", &self.p2p.bootstrap),
            ("p2p.ipfs_bootstrap", &self.p2p.ipfs_bootstrap),
        ] {
            for (i, addr) in list.iter().enumerate() {
                if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
                    return fail(
                        &format!("{key}[{i}]"),
                        format!("{addr} has no /p2p/<peer id>"),
                    );
                }
            }
        }
        for (i, id) in self.p2p.trusted_publishers.iter().enumerate() {
            if !is_peer_id(id) {
                return fail(
                    &format!("p2p.trusted_publishers[{i}]"),
                    format!("{id:?} is not a peer id"),
                );
            }
        }
        let w = &self.webtorrent;
        if w.max_peers == 0 || w.max_peers_per_swarm == 0 {
            return fail(
                "webtorrent.max_peers",
                "browser limits must be at least 1 (or set enabled = false)".into(),
            );
        }
        for (i, t) in w.trackers.iter().enumerate() {
            if let Err(m) = tracker_url(t) {
                return fail(&format!("webtorrent.trackers[{i}]"), m);
            }
        }
        for (i, s) in w.stun_servers.iter().enumerate() {
            if s.rsplit_once(':')
                .and_then(|(h, p)| (!h.is_empty()).then(|| p.parse::<u16>().ok()).flatten())
                .is_none()
            {
                return fail(
                    &format!("webtorrent.stun_servers[{i}]"),
                    format!("{s:?} is not host:port"),
                );
            }
        }
        if !(1..=86_400).contains(&self.peertube.refresh_secs) {
            return fail(
                "peertube.refresh_secs",
                format!("{} is outside 1..=86400", self.peertube.refresh_secs),
            );
        }
        for (i, v) in self.videos.iter().enumerate() {
            for (j, t) in v.trackers.iter().enumerate() {
                if let Err(m) = tracker_url(t) {
                    return fail(&format!("videos[{i}].trackers[{j}]"), m);
                }
            }
            if v.swarm_id.as_deref().is_some_and(str::is_empty) {
                return fail(&format!("videos[{i}].swarm_id"), "must not be empty".into());
            }
            if !matches!(v.url.scheme(), "http" | "https") {
                return fail(
                    &format!("videos[{i}].url"),
                    "only http and https URLs are accepted".into(),
                );
            }
            if v.segments_sha256
                .as_ref()
                .is_some_and(|u| !matches!(u.scheme(), "http" | "https"))
            {
                return fail(
                    &format!("videos[{i}].segments_sha256"),
                    "only http and https URLs are accepted".into(),
                );
            }
            if let Some(id) = &v.id
                && (id.is_empty()
                    || id.len() > 128
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
            {
                return fail(
                    &format!("videos[{i}].id"),
                    "use 1 to 128 of [A-Za-z0-9_-]".into(),
                );
            }
        }
        Ok(())
    }
}

/// A WebTorrent tracker's address: a `ws:` or `wss:` URL.
pub fn tracker_url(s: &str) -> Result<(), String> {
    match Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => Ok(()),
        Ok(_) => Err(format!("{s:?} is not a ws:// or wss:// URL")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

/// A libp2p peer id as text (`12D3Koo…`).
fn is_peer_id(s: &str) -> bool {
    s.parse::<libp2p::PeerId>().is_ok()
}

/// `scheme://host[:port]` as browsers send it in `Origin`, or `None`.
pub fn web_origin(text: &str) -> Option<String> {
    let url = Url::parse(text).ok()?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !text.ends_with('/');
    (matches!(url.scheme(), "http" | "https") && url.has_host() && bare)
        .then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let c = Config::parse(include_str!("../../config.toml")).unwrap();
        assert_eq!(c.gateway.listen, GatewayConfig::default().listen);
    }

    #[test]
    fn empty_text_is_the_embedded_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.store.max_bytes, ByteSize::gib(50));
        assert_eq!(c.p2p.listen.len(), 3);
    }

    #[test]
    fn a_public_listener_must_be_asked_for() {
        let c = Config::parse("[gateway]\nlisten = \"0.0.0.0:8080\"\npublic = true").unwrap();
        assert!(!c.gateway.private_origins_allowed());
        let (_, message) = Config::parse("[gateway]\nlisten = \"10.1.2.3:8080\"").unwrap_err();
        assert!(message.contains("gateway.public = true"), "{message}");
        let c = Config::parse("").unwrap();
        assert!(c.gateway.private_origins_allowed());
        let c = Config::parse("[gateway]\nallow_private_origins = false").unwrap();
        assert!(!c.gateway.private_origins_allowed());
        assert_eq!(
            web_origin("https://Player.Example:443").as_deref(),
            Some("https://player.example")
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[gateway]\nlisten = \"nope\"", "gateway.listen"),
            ("[gateway]\nbogus = 1", "bogus"),
            ("surprise = true", "surprise"),
            ("[store]\nmax_bytes = \"lots\"", "store.max_bytes"),
            ("[proofs]\nepoch_secs = 0", "proofs.epoch_secs"),
            ("[gateway]\np2p_timeout_ms = 0", "gateway.p2p_timeout_ms"),
            ("[p2p]\nlisten = [\"/ip4/1.2.3.4/tcpx/1\"]", "p2p.listen"),
            (
                "[p2p]\nbootstrap = [\"/ip4/127.0.0.1/tcp/4001\"]",
                "p2p.bootstrap[0]",
            ),
            (
                "[p2p]\nipfs_bootstrap = [\"/ip4/127.0.0.1/tcp/4001\"]",
                "p2p.ipfs_bootstrap[0]",
            ),
            ("[[videos]]\nurl = \"file:///etc/passwd\"", "videos[0].url"),
            (
                "[webtorrent]\ntrackers = [\"http://tracker.example\"]",
                "webtorrent.trackers[0]",
            ),
            (
                "[webtorrent]\nstun_servers = [\"stun\"]",
                "webtorrent.stun_servers[0]",
            ),
            ("[webtorrent]\nlisten = \"nowhere\"", "webtorrent.listen"),
            ("[webtorrent]\nmax_peers = 0", "webtorrent.max_peers"),
            ("[peertube]\nrefresh_secs = 0", "peertube.refresh_secs"),
            (
                "[[videos]]\nurl = \"https://a.example/m.m3u8\"\nsegments_sha256 = \"ftp://a.example/s.json\"",
                "videos[0].segments_sha256",
            ),
            (
                "[[videos]]\nurl = \"http://o/m.m3u8\"\ntrackers = [\"udp://t:1\"]",
                "videos[0].trackers[0]",
            ),
            ("[gateway]\nlisten = \"0.0.0.0:8080\"", "gateway.listen"),
            ("[gateway]\nlisten = \"[::]:8080\"", "gateway.listen"),
            (
                "[gateway]\nhostnames = [\"seed.example:80\"]",
                "gateway.hostnames",
            ),
            (
                "[gateway]\nallowed_origins = [\"ftp://cdn/\"]",
                "gateway.allowed_origins",
            ),
            (
                "[gateway]\ncors_origins = [\"https://a.example/page\"]",
                "gateway.cors_origins",
            ),
            (
                "[gateway]\nheader_timeout_ms = 1",
                "gateway.header_timeout_ms",
            ),
            ("[gateway]\nmax_connections = 0", "gateway.max_connections"),
        ];
        for (text, key) in cases {
            let (k, m) = Config::parse(text).unwrap_err();
            assert!(
                k.contains(key) || m.contains(key),
                "{text:?}: got key {k:?}, message {m:?}"
            );
        }
    }
}
