//! The gateway's listener: every connection is tracked, so one that never
//! finishes its headers, sits idle, or stops reading is closed; the number
//! of connections is bounded, the oldest idle ones going first; and on a
//! public gateway each client address has its own connection and request
//! limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

/// How long in-flight requests may take to finish after shutdown.
const DRAIN: Duration = Duration::from_secs(10);
/// Requests with a body (the mutating APIs) must arrive whole in this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
const SWEEP: Duration = Duration::from_millis(250);

/// Limits on the gateway's clients.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// A new connection must finish its first request's headers in this time.
    pub header_timeout: Duration,
    /// A connection with no request in flight, or one that moves no bytes,
    /// is closed after this long.
    pub idle_timeout: Duration,
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Per-address limits, on a public gateway.
    pub per_ip: Option<PerIp>,
}

#[derive(Clone, Copy, Debug)]
pub struct PerIp {
    pub connections: usize,
    /// Sustained requests per second, with bursts of twice as many.
    pub requests_per_sec: u32,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            per_ip: None,
        }
    }
}

/// One connection's state, read by the sweeper.
struct Conn {
    ip: IpAddr,
    /// The registry's epoch, so a request's end is timed without it.
    start: Instant,
    accepted_ms: u64,
    /// When bytes last moved either way.
    io_ms: AtomicU64,
    /// When the last request ended, or the connection opened.
    idle_since_ms: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    close: CancellationToken,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Registry {
    start: Instant,
    /// Milliseconds since `start`, kept by the sweeper, so the socket's
    /// reads and writes note activity without reading the clock.
    coarse_ms: AtomicU64,
    limits: ServeLimits,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    next_id: AtomicU64,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn coarse_ms(&self) -> u64 {
        self.coarse_ms.load(Ordering::Relaxed)
    }

    /// Registers a connection, closing the oldest idle one if the cap is
    /// reached; `None` if every connection is busy or the address has its
    /// share.
    fn admit(&self, ip: IpAddr) -> Result<(u64, Arc<Conn>), Refused> {
        if let Some(p) = self.limits.per_ip {
            let mut per_ip = lock(&self.per_ip);
            let n = per_ip.entry(ip).or_default();
            if *n >= p.connections {
                return Err(Refused::PerIp);
            }
            *n += 1;
        }
        let mut conns = lock(&self.conns);
        if conns.len() >= self.limits.max_connections {
            let oldest_idle = conns
                .values()
                .filter(|c| c.in_flight.load(Ordering::Relaxed) == 0 && !c.close.is_cancelled())
                .min_by_key(|c| c.idle_since_ms.load(Ordering::Relaxed));
            match oldest_idle {
                Some(c) => c.close.cancel(),
                None => {
                    drop(conns);
                    self.release_ip(ip);
                    return Err(Refused::Full);
                }
            }
        }
        let now = self.now_ms();
        let conn = Arc::new(Conn {
            ip,
            start: self.start,
            accepted_ms: now,
            io_ms: AtomicU64::new(now),
            idle_since_ms: AtomicU64::new(now),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            close: CancellationToken::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        conns.insert(id, conn.clone());
        Ok((id, conn))
    }

    fn remove(&self, id: u64) {
        if let Some(c) = lock(&self.conns).remove(&id) {
            self.release_ip(c.ip);
        }
    }

    fn release_ip(&self, ip: IpAddr) {
        if self.limits.per_ip.is_some() {
            let mut per_ip = lock(&self.per_ip);
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }

    /// Takes one request from the address's token bucket.
    fn take_request(&self, ip: IpAddr) -> bool {
        let Some(p) = self.limits.per_ip else {
            return true;
        };
        let rate = f64::from(p.requests_per_sec.max(1));
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: rate * 2.0,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate * 2.0);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Closes connections past their time.
    fn sweep(&self) {
        let now = self.now_ms();
        self.coarse_ms.store(now, Ordering::Relaxed);
        let header = self.limits.header_timeout.as_millis() as u64;
        let idle = self.limits.idle_timeout.as_millis() as u64;
        for c in lock(&self.conns).values() {
            let quiet = now.saturating_sub(c.io_ms.load(Ordering::Relaxed));
            let no_request = c.in_flight.load(Ordering::Relaxed) == 0;
            let late_headers = no_request
                && c.requests.load(Ordering::Relaxed) == 0
                && now - c.accepted_ms > header;
            let idle_too_long =
                no_request && now.saturating_sub(c.idle_since_ms.load(Ordering::Relaxed)) > idle;
            if late_headers || idle_too_long || quiet > idle {
                c.close.cancel();
            }
        }
        if self.limits.per_ip.is_some() {
            let full = Duration::from_secs(60);
            lock(&self.buckets).retain(|_, b| b.at.elapsed() < full);
        }
    }
}

enum Refused {
    PerIp,
    Full,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `app` on `listener` until `shutdown`, then lets in-flight requests
/// finish for a while. Handlers see the client's address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let registry = Arc::new(Registry {
        start: Instant::now(),
        coarse_ms: AtomicU64::new(0),
        limits,
        conns: Mutex::default(),
        per_ip: Mutex::default(),
        buckets: Mutex::default(),
        next_id: AtomicU64::new(0),
    });
    let sweeper = {
        let (registry, shutdown) = (registry.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => registry.sweep(),
                }
            }
        })
    };
    let tasks = tokio_util::task::TaskTracker::new();
    let result = loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) if transient(&e) => {
                    // Out of file descriptors: wait for some to close.
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => break Err(e),
            },
        };
        let _ = stream.set_nodelay(true);
        match registry.admit(peer.ip()) {
            Ok((id, conn)) => {
                // A child token each: polling one shared token from every
                // connection would contend on its lock at every wake-up.
                let (registry, app, shutdown) =
                    (registry.clone(), app.clone(), shutdown.child_token());
                tasks.spawn(async move {
                    connection(stream, peer, conn, &registry, app, shutdown).await;
                    registry.remove(id);
                });
            }
            Err(why) => {
                debug!(%peer, "connection refused: over a limit");
                tasks.spawn(refuse(stream, why));
            }
        }
    };
    tasks.close();
    if tokio::time::timeout(DRAIN, tasks.wait()).await.is_err() {
        warn!("in-flight requests did not finish in time");
    }
    sweeper.abort();
    result
}

fn transient(e: &io::Error) -> bool {
    // EMFILE and ENFILE: out of file descriptors.
    matches!(e.raw_os_error(), Some(23 | 24))
        || matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        )
}

/// Answers a connection over a limit with one HTTP error and closes it.
async fn refuse(mut stream: TcpStream, why: Refused) {
    let (status, reason) = match why {
        Refused::PerIp => (
            "429 Too Many Requests",
            "too many connections from this address",
        ),
        Refused::Full => (
            "503 Service Unavailable",
            "the gateway has too many connections",
        ),
    };
    let body = format!("{{\"error\":\"{reason}\"}}");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<Conn>,
    registry: &Arc<Registry>,
    app: Router,
    shutdown: CancellationToken,
) {
    let io = Watched {
        inner: stream,
        conn: conn.clone(),
        registry: registry.clone(),
        corked: false,
    };
    let service = {
        let (conn, registry) = (conn.clone(), registry.clone());
        // What needs the connection or the registry is done here, outside
        // the request's future, so that future holds only the app and a guard.
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let guard = Busy::start(&conn);
            let allowed = registry.take_request(conn.ip);
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let guarded = |response: Response<Body>| {
                    Ok::<_, Infallible>(response.map(|body| Guarded {
                        body,
                        _guard: guard,
                    }))
                };
                if !allowed {
                    return guarded(too_many_requests());
                }
                let has_body = !matches!(
                    *req.method(),
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let call = app.oneshot(req.map(Body::new));
                let response = if has_body {
                    match tokio::time::timeout(BODY_TIMEOUT, call).await {
                        Ok(r) => r,
                        Err(_) => return guarded(status_only(StatusCode::REQUEST_TIMEOUT)),
                    }
                } else {
                    call.await
                };
                match response {
                    Ok(r) => guarded(r),
                    Err(never) => match never {},
                }
            }
        })
    };
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let served = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(served);
    tokio::select! {
        biased;
        r = served.as_mut() => {
            if let Err(e) = r {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        // Dropping the connection closes it.
        _ = conn.close.cancelled() => debug!(%peer, "connection closed: timed out or evicted"),
        _ = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, served).await;
        }
    }
}

fn too_many_requests() -> Response<Body> {
    let mut r = Response::new(Body::from(
        r#"{"error":"too many requests from this address"}"#,
    ));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    h.insert("retry-after", "1".parse().expect("static header"));
    r
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Marks a request in flight until its response body is done or dropped.
struct Busy {
    conn: Arc<Conn>,
}

impl Busy {
    fn start(conn: &Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        conn.requests.fetch_add(1, Ordering::Relaxed);
        Self { conn: conn.clone() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle time counts from the end of the last response.
        let now = self.conn.start.elapsed().as_millis() as u64;
        self.conn.idle_since_ms.fetch_max(now, Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request marked in flight.
struct Guarded {
    body: Body,
    _guard: Busy,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting when bytes move, and sending mapped block files
/// with `sendfile(2)` (see `files`).
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    /// Corked for a body sent from block files (see `files`).
    corked: bool,
}

impl Watched {
    fn moved(&self) {
        // One cache line written per sweep period, not per read or write.
        let now = self.registry.coarse_ms();
        if self.conn.io_ms.load(Ordering::Relaxed) < now {
            self.conn.io_ms.store(now, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = crate::files::poll_write(
            &mut this.inner,
            cx,
            &[io::IoSlice::new(buf)],
            &mut this.corked,
        );
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = crate::files::poll_write(&mut this.inner, cx, bufs, &mut this.corked);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        crate::files::uncork(&this.inner, &mut this.corked);
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
