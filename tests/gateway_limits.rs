//! Slow and greedy clients against a real daemon: connections that never
//! finish their headers are closed on time while the gateway keeps answering,
//! a public gateway limits each address, the connection cap closes the oldest
//! idle connection first, and 2,000 keep-alive clients on the hit path get no
//! errors within a bounded memory. These tests take the machine, so they run
//! one at a time.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::{TEST_TIMEOUT, client, fixtures};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Far beyond any healthy answer: a probe that takes this long means the
/// slow clients starved the gateway.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer time a monitor may rely on while slow clients are held. It is
/// a liveness bound, not a speed figure: the slowest probe takes a few
/// milliseconds in a debug build even with both cores busy, so a probe over
/// it means the held connections are starving the gateway.
const HEALTH_BOUND: Duration = Duration::from_millis(100);

/// The bound on the daemon's peak resident memory under the load test, as
/// the README states it.
const RSS_BOUND_MIB: u64 = 256;

/// Each connection is a file descriptor here and in the daemon.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the struct is ours; the calls only read and write it.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
    assert!(
        l.rlim_cur >= 4500,
        "the open file limit ({}) is too low for 2,000 connections",
        l.rlim_cur
    );
}

type Conn = BufStream<TcpStream>;

async fn connect(to: SocketAddr) -> Conn {
    BufStream::new(TcpStream::connect(to).await.unwrap())
}

async fn connect_from(source: &str, to: SocketAddr) -> Conn {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    BufStream::new(socket.connect(to).await.unwrap())
}

/// One HTTP/1.1 keep-alive exchange: the status, and the body's length.
async fn exchange(s: &mut Conn, path: &str) -> std::io::Result<(u16, usize)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    s.flush().await?;
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if s.read_until(b'\n', &mut head).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("responses carry Content-Length");
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await?;
    Ok((status, length))
}

/// Reads until the server closes; `true` if it did within `within`.
async fn closed_within(s: &mut Conn, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_headers_are_closed_and_the_gateway_answers_throughout()
{
    let _one = ONE_AT_A_TIME.lock().await;
    raise_fd_limit();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start(&work.path().join("d"), "header_timeout_ms = 3000").await;
        let addr = daemon.addr;
        let mut slow = Vec::new();
        for _ in 0..2000 {
            let mut s = connect(addr).await;
            s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await
                .unwrap();
            s.flush().await.unwrap();
            slow.push(s);
        }
        // Health from a fresh connection every 50 ms until they are all
        // gone. Each probe must be answered within the bound; the figures
        // themselves come from bench/run.sh.
        let done = CancellationToken::new();
        let probing = tokio::spawn({
            let done = done.clone();
            async move {
                let mut latencies = Vec::new();
                while !done.is_cancelled() {
                    let t = Instant::now();
                    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
                        let mut s = connect(addr).await;
                        exchange(&mut s, "/api/v1/health").await
                    })
                    .await;
                    let (status, _) = answer
                        .expect("health went unanswered while slow clients were held")
                        .unwrap();
                    assert_eq!(status, 200);
                    latencies.push(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                latencies
            }
        });
        // The header timeout, not the client, ends every one of them.
        let mut closed = 0;
        for s in &mut slow {
            if closed_within(s, Duration::from_secs(60)).await {
                closed += 1;
            }
        }
        done.cancel();
        assert_eq!(
            closed, 2000,
            "connections with unfinished headers left open"
        );
        let mut latencies = probing.await.unwrap();
        assert!(latencies.len() >= 3, "only {} probes", latencies.len());
        latencies.sort();
        eprintln!(
            "health under 2,000 slow clients: {} probes, median {:?}, worst {:?}",
            latencies.len(),
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
        assert!(
            latencies[latencies.len() - 1] < HEALTH_BOUND,
            "health took {:?} while slow clients were held",
            latencies[latencies.len() - 1]
        );
        assert!(daemon.healthy().await);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_gateway_limits_each_address_and_serves_the_others() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start(
            &work.path().join("d"),
            "public = true\nrequests_per_sec_per_ip = 5\nmax_connections_per_ip = 4",
        )
        .await;
        // Requests: a burst of twice the rate, then 429.
        let mut greedy = connect_from("127.0.0.2", daemon.addr).await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(exchange(&mut greedy, "/api/v1/health").await.unwrap().0);
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert!(limited >= 15, "{statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 429),
            "{statuses:?}"
        );
        let mut other = connect_from("127.0.0.3", daemon.addr).await;
        assert_eq!(exchange(&mut other, "/api/v1/health").await.unwrap().0, 200);
        // Connections: the fifth from one address is turned away.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(connect_from("127.0.0.4", daemon.addr).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fifth = connect_from("127.0.0.4", daemon.addr).await;
        let mut reply = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), fifth.read_to_string(&mut reply)).await;
        assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
        let mut elsewhere = connect_from("127.0.0.5", daemon.addr).await;
        assert_eq!(
            exchange(&mut elsewhere, "/api/v1/health").await.unwrap().0,
            200
        );
        drop(held);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_oldest_idle_connection_goes_first() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start(&work.path().join("d"), "max_connections = 10").await;
        // The health check of the harness has closed its connection by now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut conns = Vec::new();
        for _ in 0..10 {
            let mut s = connect(daemon.addr).await;
            assert_eq!(exchange(&mut s, "/api/v1/health").await.unwrap().0, 200);
            conns.push(s);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut newcomer = connect(daemon.addr).await;
        assert_eq!(
            exchange(&mut newcomer, "/api/v1/health").await.unwrap().0,
            200
        );
        assert!(
            closed_within(&mut conns[0], Duration::from_secs(2)).await,
            "the oldest idle connection stayed"
        );
        for s in &mut conns[1..] {
            assert_eq!(exchange(s, "/api/v1/health").await.unwrap().0, 200);
        }
    })
    .await
    .unwrap();
}

fn peak_rss_mib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_keep_alive_clients_on_the_hit_path() {
    let _one = ONE_AT_A_TIME.lock().await;
    raise_fd_limit();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let cdn = TestCdn::start(&fixtures()).await;
        let daemon = Daemon::start(&work.path().join("d"), "").await;
        let playlist = client()
            .get(daemon.hls(&cdn.url("ts/v0/index.m3u8")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let path: Arc<str> = playlist
            .lines()
            .find(|l| l.starts_with("/hls/seg/"))
            .unwrap()
            .into();
        let mut warm = connect(daemon.addr).await;
        let (status, size) = exchange(&mut warm, &path).await.unwrap();
        assert_eq!(status, 200);
        daemon.wait_stored(1).await;
        let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let until = Instant::now() + Duration::from_secs(30);
        let mut clients = Vec::new();
        for _ in 0..2000 {
            let (path, ok, errors, addr) = (path.clone(), ok.clone(), errors.clone(), daemon.addr);
            clients.push(tokio::spawn(async move {
                let mut s = match TcpStream::connect(addr).await {
                    Ok(s) => BufStream::new(s),
                    Err(_) => return errors.fetch_add(1, Ordering::Relaxed),
                };
                while Instant::now() < until {
                    match exchange(&mut s, &path).await {
                        Ok((200, n)) if n == size => ok.fetch_add(1, Ordering::Relaxed),
                        _ => return errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
                0
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let (ok, errors) = (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
        assert_eq!(errors, 0, "{errors} clients failed ({ok} answers)");
        assert!(ok >= 2000, "only {ok} answers");
        let rss = peak_rss_mib(daemon.pid());
        assert!(
            rss < RSS_BOUND_MIB,
            "peak RSS {rss} MiB, bound {RSS_BOUND_MIB} MiB"
        );
        eprintln!("2,000 clients: {ok} answers of {size} bytes in 30 s; daemon peak RSS {rss} MiB");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let _one = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = support::workdir();
        let daemon = Daemon::start(&work.path().join("d"), "idle_timeout_ms = 1000").await;
        let mut idle = connect(daemon.addr).await;
        assert_eq!(exchange(&mut idle, "/api/v1/health").await.unwrap().0, 200);
        // Kept busy, a connection stays open past the idle timeout.
        let mut busy = connect(daemon.addr).await;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            assert_eq!(exchange(&mut busy, "/api/v1/health").await.unwrap().0, 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            closed_within(&mut idle, Duration::from_millis(100)).await,
            "an idle connection outlived its timeout"
        );
        assert!(
            closed_within(&mut busy, Duration::from_secs(3)).await,
            "the connection was not closed once idle"
        );
    })
    .await
    .unwrap();
}
