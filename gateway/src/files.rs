//! Stored segments sent from their block files with `sendfile(2)`.
//!
//! hyper writes a response body by handing `Bytes` to the connection's
//! `poll_write_vectored`. A body read from block files is made of `Bytes`
//! that map those files (`mmap`, so no page is touched until something
//! reads it), and every mapping is recorded here by address. The
//! listener's socket wrapper looks each buffer up before writing it: a
//! mapped one goes from the file to the socket in the kernel, with no copy
//! through this process. Any other path that reads the same `Bytes` (an
//! HTTP/2 connection, a test through `oneshot`) reads the file's bytes
//! through the mapping, so the same verified bytes go out either way.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// One block file of a stored segment, checked against its CID by the
/// store. Block files are written whole and renamed into place, never
/// rewritten, so the bytes an open file holds stay the checked ones.
#[derive(Clone, Debug)]
pub struct FileSpan {
    pub file: Arc<File>,
    pub len: u64,
}

/// A stored segment as its block files, in order.
#[derive(Debug)]
pub struct StoredFiles {
    pub spans: Vec<FileSpan>,
    pub content_type: Option<String>,
    /// The segment's CID (DESIGN §2).
    pub cid: String,
}

impl StoredFiles {
    pub fn len(&self) -> u64 {
        self.spans.iter().map(|s| s.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Region {
    len: usize,
    fd: RawFd,
}

/// Live mappings by start address.
static REGIONS: RwLock<BTreeMap<usize, Region>> = RwLock::new(BTreeMap::new());
/// How many there are, so sockets skip the lookup when there are none.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Bytes the kernel sent from block files.
static SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes sent from block files by `sendfile(2)` since the process started.
pub fn sent_from_files() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// A mapping that stays registered for as long as it lives.
struct Mapped {
    map: memmap2::Mmap,
    _file: Arc<File>,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Unregistered before the field drops unmap it, so a later
        // mapping at the same address never meets a stale entry.
        let start = self.map.as_ptr() as usize;
        if REGIONS
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&start)
            .is_some()
        {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn map(span: &FileSpan) -> io::Result<Bytes> {
    let len = usize::try_from(span.len).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: block files are never truncated or written in place (see
    // `FileSpan`); the mapping is read-only and lives inside `Mapped`.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&*span.file)? };
    let mapped = Mapped {
        map,
        _file: span.file.clone(),
    };
    REGIONS.write().unwrap_or_else(|p| p.into_inner()).insert(
        mapped.map.as_ptr() as usize,
        Region {
            len,
            fd: span.file.as_raw_fd(),
        },
    );
    LIVE.fetch_add(1, Ordering::Relaxed);
    Ok(Bytes::from_owner(mapped))
}

/// The file and offset behind `buf`, and how many of its bytes lie in
/// that file, if `buf` starts inside a live mapping.
fn lookup(buf: &[u8]) -> Option<(RawFd, u64, usize)> {
    if buf.is_empty() || LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let at = buf.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|p| p.into_inner());
    let (&start, region) = regions.range(..=at).next_back()?;
    let offset = at - start;
    (offset < region.len).then(|| (region.fd, offset as u64, buf.len().min(region.len - offset)))
}

/// Writes `bufs` to `socket`: a leading buffer that maps a block file
/// goes by `sendfile(2)`; otherwise the buffers before the first such one
/// go as any write would. Once a mapped buffer is in sight the socket is
/// corked, so the headers and the file leave in full segments (a receiver
/// pays per segment); [`uncork`] on flush sends what is left.
pub(crate) fn poll_write(
    socket: &mut tokio::net::TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
    corked: &mut bool,
) -> Poll<io::Result<usize>> {
    use tokio::io::AsyncWrite;
    if LIVE.load(Ordering::Relaxed) == 0 {
        return Pin::new(socket).poll_write_vectored(cx, bufs);
    }
    let first = bufs.iter().position(|b| !b.is_empty()).unwrap_or(0);
    let bufs = &bufs[first..];
    // One lookup per buffer, up to the first mapped one.
    let mapped = bufs
        .iter()
        .enumerate()
        .find_map(|(i, b)| lookup(b).map(|m| (i, m)));
    let Some((plain, (fd, offset, len))) = mapped else {
        return Pin::new(socket).poll_write_vectored(cx, bufs);
    };
    if !*corked {
        *corked = set_cork(socket, true);
    }
    if plain == 0 {
        return poll_sendfile(socket, cx, fd, offset, len);
    }
    Pin::new(socket).poll_write_vectored(cx, &bufs[..plain])
}

/// Ends what [`poll_write`] corked: the last partial segment goes now.
pub(crate) fn uncork(socket: &tokio::net::TcpStream, corked: &mut bool) {
    if *corked {
        set_cork(socket, false);
        *corked = false;
    }
}

/// `true` if the socket is now corked.
#[cfg(target_os = "linux")]
fn set_cork(socket: &tokio::net::TcpStream, on: bool) -> bool {
    let v: libc::c_int = on.into();
    // SAFETY: a plain option on a socket this borrow keeps open.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    on && r == 0
}

#[cfg(not(target_os = "linux"))]
fn set_cork(_: &tokio::net::TcpStream, _: bool) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn poll_sendfile(
    socket: &tokio::net::TcpStream,
    cx: &mut Context<'_>,
    fd: RawFd,
    offset: u64,
    len: usize,
) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(socket.poll_write_ready(cx))?;
        let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
            let mut off = offset as libc::off_t;
            // SAFETY: both descriptors are open for the call: the socket is
            // borrowed, and the file belongs to a mapping the caller's
            // buffer keeps alive.
            let n = unsafe { libc::sendfile(socket.as_raw_fd(), fd, &mut off, len) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            // The file ended early: it was cut short behind the store's back.
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                SENT.fetch_add(n as u64, Ordering::Relaxed);
                return Poll::Ready(Ok(n));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn poll_sendfile(
    socket: &tokio::net::TcpStream,
    cx: &mut Context<'_>,
    _fd: RawFd,
    _offset: u64,
    _len: usize,
) -> Poll<io::Result<usize>> {
    let _ = (socket, cx);
    Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
}

/// A response body of mapped block files, its length known up front.
pub(crate) struct FilesBody {
    chunks: std::vec::IntoIter<Bytes>,
    left: u64,
}

impl FilesBody {
    /// Maps `spans[..]`, cut to `range` (inclusive) when one is given.
    pub(crate) fn new(spans: &[FileSpan], range: Option<(u64, u64)>) -> io::Result<Self> {
        let total: u64 = spans.iter().map(|s| s.len).sum();
        let (from, to) = range.unwrap_or((0, total.saturating_sub(1)));
        let mut chunks = Vec::with_capacity(spans.len());
        let mut at = 0u64;
        for span in spans {
            let (start, end) = (at, at + span.len);
            at = end;
            if span.len == 0 || end <= from || start > to {
                continue;
            }
            let whole = map(span)?;
            let lo = from.saturating_sub(start) as usize;
            let hi = ((to + 1).min(end) - start) as usize;
            chunks.push(whole.slice(lo..hi));
        }
        let left = chunks.iter().map(|c| c.len() as u64).sum();
        Ok(Self {
            chunks: chunks.into_iter(),
            left,
        })
    }
}

impl http_body::Body for FilesBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.chunks.next().map(|c| {
            self.left -= c.len() as u64;
            Ok(Frame::data(c))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::io::Write;

    fn span(bytes: &[u8]) -> FileSpan {
        let mut f = tempfile_in_target();
        f.write_all(bytes).unwrap();
        FileSpan {
            file: Arc::new(f),
            len: bytes.len() as u64,
        }
    }

    fn tempfile_in_target() -> File {
        let dir = std::env::temp_dir().join(format!("files-{}", rand_name()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("block");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        f
    }

    fn rand_name() -> String {
        use std::time::{SystemTime, UNIX_EPOCH};
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "{}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn collect(body: FilesBody) -> Vec<u8> {
        body.chunks.flat_map(|c| c.to_vec()).collect()
    }

    #[test]
    fn a_body_is_its_files_in_order_and_a_range_cuts_across_them() {
        let a: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        let spans = [span(&a), span(&b)];
        let body = FilesBody::new(&spans, None).unwrap();
        assert_eq!(body.size_hint().exact(), Some(8000));
        assert_eq!(collect(body), whole);
        for (from, to) in [
            (0, 0),
            (4999, 5000),
            (100, 7999),
            (5000, 5999),
            (7999, 7999),
        ] {
            let body = FilesBody::new(&spans, Some((from, to))).unwrap();
            assert_eq!(body.size_hint().exact(), Some(to - from + 1));
            assert_eq!(collect(body), whole[from as usize..=to as usize]);
        }
    }

    #[test]
    fn mapped_buffers_are_found_by_address_and_forgotten_when_dropped() {
        let data = vec![9u8; 10_000];
        let s = span(&data);
        let bytes = map(&s).unwrap();
        let (fd, offset, len) = lookup(&bytes[4096..]).expect("a mapped buffer");
        assert_eq!((fd, offset, len), (s.file.as_raw_fd(), 4096, 10_000 - 4096));
        assert_eq!(lookup(&bytes[..10]).map(|l| l.2), Some(10));
        let start = bytes.as_ptr() as usize;
        drop(bytes);
        assert!(
            !REGIONS.read().unwrap().contains_key(&start),
            "a dropped mapping stays registered"
        );
        assert!(lookup(&[1, 2, 3]).is_none());
    }
}
