//! The contract between the gateway and whatever supplies bytes.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use cid::Cid;
use url::Url;

/// A byte range of an upstream resource (`EXT-X-BYTERANGE`). Each range is its
/// own object with its own CID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// Names one segment or init section: an upstream URL, and a range within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    pub url: Url,
    pub range: Option<ByteRange>,
}

impl fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            None => write!(f, "{}", self.url),
            Some(r) => write!(f, "{} bytes={}+{}", self.url, r.offset, r.length),
        }
    }
}

impl SegmentKey {
    /// Reads back what `Display` wrote.
    pub fn parse(s: &str) -> Option<Self> {
        let (url, range) = match s.split_once(" bytes=") {
            None => (s, None),
            Some((url, r)) => {
                let (offset, length) = r.split_once('+')?;
                (
                    url,
                    Some(ByteRange {
                        offset: offset.parse().ok()?,
                        length: length.parse().ok()?,
                    }),
                )
            }
        };
        Some(Self {
            url: Url::parse(url).ok()?,
            range,
        })
    }
}

/// Where a response's bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Store,
    Peers,
    Cdn,
}

/// A whole, verified segment.
#[derive(Clone, Debug)]
pub struct Segment {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    /// The segment's CID (DESIGN §2).
    pub cid: String,
    pub origin: Origin,
}

/// A segment as a player gets it: whole, passed through as it arrives, or
/// sent from the store's block files by the kernel.
pub enum Delivery {
    Whole(Segment),
    Streaming(Streaming),
    Files(crate::files::StoredFiles),
}

/// A miss passed through to the player while the source hashes and stores
/// it. Where the upstream's body breaks, so does this one, and the player
/// sees its connection cut, as behind any proxy.
pub struct Streaming {
    /// The body's length, when the upstream said it.
    pub length: Option<u64>,
    pub content_type: Option<String>,
    pub origin: Origin,
    pub body: futures::stream::BoxStream<'static, Result<Bytes, SourceError>>,
}

/// A playlist as the origin sent it.
#[derive(Clone, Debug)]
pub struct Playlist {
    pub body: Bytes,
    /// The URL relative URIs resolve against (the final one after redirects).
    pub base: Url,
    pub origin: Origin,
}

/// Totals for the content store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreUsage {
    pub segments: u64,
    pub bytes: u64,
    /// Writes refused because the store's disk is full.
    pub full_errors: u64,
    /// Bytes held now by the memory cache of segments for players.
    pub memory_cache_bytes: u64,
    /// Bytes held now by the memory cache of blocks for peers.
    pub block_cache_bytes: u64,
}

/// One block for the trustless gateway (`/ipfs/{cid}`), checked against its
/// CID, with what a walk of its DAG needs to know of it.
#[derive(Clone, Debug)]
pub struct IpfsBlock {
    pub data: Bytes,
    /// The CIDs it links to, in order: a dag-pb node's links; none for raw
    /// blocks and the codecs the node does not read.
    pub links: Vec<Cid>,
    /// Set when the block is a UnixFS file node, whose links are parts of
    /// one byte array.
    pub file: Option<FileLayout>,
}

/// Where a UnixFS file node's bytes lie: its own data first, then what each
/// link holds, in link order (UnixFS `Data` and `blocksizes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLayout {
    pub inline: u64,
    pub blocksizes: Vec<u64>,
}

impl FileLayout {
    /// The file's length under this node.
    pub fn size(&self) -> u64 {
        self.inline + self.blocksizes.iter().sum::<u64>()
    }
}

/// Why a playlist or segment could not be had. Every variant is safe to show
/// to a client.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SourceError {
    #[error("upstream answered HTTP {status}")]
    UpstreamStatus { status: u16 },
    #[error("upstream did not answer within {ms} ms")]
    UpstreamTimeout { ms: u64 },
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream, or where it redirected or resolved to, is not one
    /// this gateway fetches from.
    #[error("upstream refused: {0}")]
    Refused(String),
    #[error("upstream body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("upstream sent {got} bytes where {want} were expected")]
    ShortBody { got: u64, want: u64 },
    /// Every source sent bytes other than the ones the origin published a
    /// digest for; none of them reach the client.
    #[error("no source sent bytes matching the origin's published SHA-256")]
    Mismatch,
    /// The detail is logged by the source, not shown to clients.
    #[error("store failure")]
    Store,
}

/// Supplies playlists and segments to the gateway: from a store, peers or
/// the CDN, as the implementation sees fit. Never returns unverified bytes.
pub trait SegmentSource: Send + Sync + 'static {
    fn playlist(&self, url: &Url) -> impl Future<Output = Result<Playlist, SourceError>> + Send;
    fn segment(
        &self,
        key: &SegmentKey,
    ) -> impl Future<Output = Result<Segment, SourceError>> + Send;
    /// The segment for a player that asked for all of it: by default whole,
    /// as [`SegmentSource::segment`] gives it; a source may pass a miss
    /// through as it arrives instead.
    fn deliver(
        &self,
        key: &SegmentKey,
    ) -> impl Future<Output = Result<Delivery, SourceError>> + Send {
        async move { self.segment(key).await.map(Delivery::Whole) }
    }
    /// The segment if it is stored, without fetching it.
    fn stored_segment(&self, key: &SegmentKey) -> impl Future<Output = Option<Segment>> + Send {
        let _ = key;
        async { None }
    }
    /// A block by CID for the trustless gateway: what the node holds, checked
    /// against its CID; fetched from peers first only where the node is
    /// configured to and `may_fetch` allows.
    fn ipfs_block(
        &self,
        cid: &Cid,
        may_fetch: bool,
    ) -> impl Future<Output = Result<Option<IpfsBlock>, SourceError>> + Send {
        let _ = (cid, may_fetch);
        async { Ok(None) }
    }
    fn store_usage(&self) -> StoreUsage;
    fn peers_connected(&self) -> u64 {
        0
    }
}
