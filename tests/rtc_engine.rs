//! The WebRTC engine (`bridge::rtc`) against headless Chromium's own
//! `RTCPeerConnection`: one UDP socket on loopback, the engine answering
//! the browser's offer and making its own, every byte arriving intact
//! through back-pressure, and bad SDP refused with the engine still up.

mod support;

use std::time::Duration;

use bridge::rtc::{Engine, EngineConfig, Incoming, Session};
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::TEST_TIMEOUT;
use support::browser::Chromium;
use support::rtc_page::RtcPage;
use tokio_util::sync::CancellationToken;

/// The segment-sized messages p2p-media-loader sends.
const MESSAGE: usize = 64 * 1024;

fn config() -> EngineConfig {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let d = EngineConfig::default();
    EngineConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        // For exploring the engine's figures in the benchmark below.
        sctp_buffered: env("RTC_SCTP_BUFFERED", d.sctp_buffered),
        send_queue: env("RTC_SEND_QUEUE", d.send_queue),
        ..d
    }
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Waits for the channel to open, then writes `data` in 64 KiB messages.
async fn feed(mut session: Session, data: Vec<u8>) -> Session {
    match tokio::time::timeout(Duration::from_secs(30), session.recv()).await {
        Ok(Some(Incoming::Open { .. })) => {}
        other => panic!("channel did not open: {other:?}"),
    }
    let writer = session.writer();
    let data = Bytes::from(data);
    let mut max_queued = 0;
    for at in (0..data.len()).step_by(MESSAGE) {
        let end = (at + MESSAGE).min(data.len());
        writer.send(data.slice(at..end)).await.expect("send");
        max_queued = max_queued.max(writer.queued());
    }
    // Back-pressure holds the queue near its bound, never the whole payload.
    assert!(
        max_queued <= EngineConfig::default().send_queue + MESSAGE,
        "queued {max_queued} bytes"
    );
    session
}

async fn start() -> (Engine, RtcPage, Chromium, CancellationToken) {
    start_hiding(false).await
}

/// With `hide`, Chromium names its host candidates `<uuid>.local`, as it
/// does on the Internet by default.
async fn start_hiding(hide: bool) -> (Engine, RtcPage, Chromium, CancellationToken) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // `RUST_LOG=bridge=debug` shows the engine's view of each session.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(config(), stop.clone()).await.unwrap();
    let page = RtcPage::start(engine.clone()).await;
    let browser =
        Chromium::launch_with_mdns(&page.url(), &[], "window.bridgeReady === true", hide).await;
    (engine, page, browser, stop)
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One transfer of `total` bytes to the page, set up by the page's `how`
/// (`offer`: it offers; `answer`: the engine offers), checked byte for
/// byte; returns the session, still open on the engine's side.
async fn transfer(
    browser: &mut Chromium,
    page: &mut RtcPage,
    how: &str,
    total: usize,
    seed: u64,
) -> Session {
    let data = payload(total, seed);
    let want = sha256_hex(&data);
    let expr = format!("rtcTest.{how}({total})");
    let js = browser.eval(&expr);
    let serve = async { feed(page.sessions.recv().await.unwrap(), data).await };
    let (got, session): (Value, _) = tokio::join!(js, serve);
    assert_eq!(got["bytes"], total, "{how}: {got}");
    assert_eq!(got["sha256"], want.as_str(), "{how}: {got}");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ways_every_byte_arrives() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (engine, mut page, mut browser, stop) = start().await;
        // 8 MiB, far more than the queue and the SCTP buffer hold.
        let total = 8 << 20;

        // The browser offers and the engine answers; then the other way.
        transfer(&mut browser, &mut page, "offer", total, 1).await;
        let session = transfer(&mut browser, &mut page, "answer", total, 2).await;

        // The browser closed its side: the session ends, and the engine lets it go.
        let mut session = session;
        let end = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(i) = session.recv().await {
                assert!(matches!(i, Incoming::Message(_)), "{i:?}");
            }
        })
        .await;
        assert!(end.is_ok(), "the session outlived the browser's close");
        drop(session);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while engine.sessions().await > 0 {
            assert!(tokio::time::Instant::now() < deadline, "sessions linger");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.cancel();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_hiding_its_addresses_connects_both_ways() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (_engine, mut page, mut browser, stop) = start_hiding(true).await;
        let total = 1 << 20;
        for how in ["offer", "answer"] {
            transfer(&mut browser, &mut page, how, total, 4).await;
        }
        // The browser's SDPs named no address the engine could use.
        let sdps: Value = browser.eval("rtcTest.sdps").await;
        for sdp in sdps.as_array().unwrap() {
            let sdp = sdp.as_str().unwrap();
            for c in sdp.lines().filter(|l| l.starts_with("a=candidate:")) {
                assert!(c.contains(".local"), "{c}");
            }
        }
        stop.cancel();
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sdp_is_refused_and_the_engine_stays_up() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (engine, mut page, mut browser, stop) = start().await;
        for bad in [
            "",
            "hello",
            "v=0\r\n",
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        ] {
            assert!(engine.accept_offer(bad).await.is_err(), "{bad:?} accepted");
        }
        // An offer truncated halfway, as a tracker might pass on garbage.
        let real: Value = browser
            .eval(
                "(async () => { const pc = new RTCPeerConnection(); pc.createDataChannel('x'); \
                 await pc.setLocalDescription(await pc.createOffer()); return pc.localDescription.sdp })()",
            )
            .await;
        let real = real.as_str().unwrap();
        assert!(engine.accept_offer(&real[..real.len() / 2]).await.is_err());
        let huge = format!("{real}{}", "a=x-padding:0\r\n".repeat(8000));
        assert!(engine.accept_offer(&huge).await.is_err());
        assert_eq!(engine.sessions().await, 0);

        // Still serving.
        transfer(&mut browser, &mut page, "offer", 1 << 20, 3).await;
        stop.cancel();
    })
    .await
    .expect("test timed out");
}

/// The spike's figure, not a test (`--ignored`, in release; `bench/run.sh`
/// runs it with `P2PML_ONLY=1`): 64 MiB to Chromium over one data channel
/// in 64 KiB messages from a bare engine, against the same bytes over HTTP
/// from a loopback server and Chromium sending them to itself over its own
/// data channel, in the same run. One warm-up pass of each, then three
/// repetitions interleaved; prints one line, `RTC_BENCH {json}`, with the
/// medians. The engine and the HTTP server run in this process, so its CPU
/// time during a pass is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    tokio::time::timeout(Duration::from_secs(600), async {
        let (_engine, mut page, mut browser, stop) = start().await;
        let total = 64 << 20;
        let data = Bytes::from(payload(total, 9));
        let http = {
            let data = data.clone();
            let app = axum::Router::new().route(
                "/bytes",
                axum::routing::get(move || {
                    let data = data.clone();
                    async move { ([("access-control-allow-origin", "*")], data) }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        };
        let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64;
        // Machine-wide UDP datagrams sent and dropped at a full receive
        // buffer (`/proc/net/snmp`): on loopback, what one side sent and the
        // other never got, which SCTP then sends again.
        let udp = || -> (u64, u64) {
            let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
            let rows: Vec<Vec<&str>> = snmp
                .lines()
                .filter(|l| l.starts_with("Udp:"))
                .map(|l| l.split_whitespace().collect())
                .collect();
            let get = |name: &str| -> u64 {
                rows.first()
                    .and_then(|names| names.iter().position(|n| *n == name))
                    .and_then(|i| rows.get(1)?.get(i)?.parse().ok())
                    .unwrap_or(0)
            };
            (get("OutDatagrams"), get("RcvbufErrors"))
        };
        let me = std::process::id();
        let chromium = browser.pid();
        let reps = 3;
        const HOW: [&str; 3] = ["rtc", "http", "loopback"];
        let mut runs: Vec<serde_json::Value> = Vec::new();
        for rep in 0..=reps {
            for how in HOW {
                // Copied before the clock starts: `feed` takes it by value.
                let mut owned = (how == "rtc").then(|| data.to_vec());
                let u0 = udp();
                let (p0, b0, w0) = (
                    support::browser::process_cpu_ticks(me),
                    support::browser::group_cpu_ticks(chromium),
                    std::time::Instant::now(),
                );
                let got: Value = match how {
                    "rtc" => {
                        let expr = format!("rtcTest.offer({total}, false)");
                        let js = browser.eval(&expr);
                        let bytes = owned.take().unwrap();
                        let serve = async { feed(page.sessions.recv().await.unwrap(), bytes).await };
                        tokio::join!(js, serve).0
                    }
                    "http" => {
                        browser
                            .eval(&format!(
                                "(async () => {{ const t0 = performance.now(); const r = await fetch('http://{http}/bytes'); \
                                 const b = await r.arrayBuffer(); return {{ bytes: b.byteLength, ms: performance.now() - t0 }} }})()"
                            ))
                            .await
                    }
                    _ => browser.eval(&format!("rtcTest.loopback({total})")).await,
                };
                let wall = w0.elapsed().as_secs_f64();
                let (p1, b1) = (
                    support::browser::process_cpu_ticks(me),
                    support::browser::group_cpu_ticks(chromium),
                );
                let u1 = udp();
                assert_eq!(got["bytes"], total, "{how}: {got}");
                let ms = got["ms"].as_f64().unwrap();
                let run = serde_json::json!({
                    "rep": rep, "how": how, "ms": (ms * 10.0).round() / 10.0,
                    "mbit_s": (total as f64 * 8.0 / ms / 100.0).round() / 10.0,
                    "server_cores": ((p1 - p0) as f64 / hz / wall * 1000.0).round() / 1000.0,
                    "browser_cores": ((b1 - b0) as f64 / hz / wall * 1000.0).round() / 1000.0,
                    "udp_sent": u1.0 - u0.0,
                    "udp_rcvbuf_drops": u1.1 - u0.1,
                });
                eprintln!("{run}");
                // Rep 0 warms the connection paths and the page's JIT up.
                if rep > 0 {
                    runs.push(run);
                }
            }
        }
        let median = |how: &str, key: &str| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter(|r| r["how"] == how)
                .map(|r| r[key].as_f64().unwrap())
                .collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let series = |how: &str| -> Vec<f64> {
            runs.iter()
                .filter(|r| r["how"] == how)
                .map(|r| r["mbit_s"].as_f64().unwrap())
                .collect()
        };
        let sum = |how: &str, key: &str| -> u64 {
            runs.iter()
                .filter(|r| r["how"] == how)
                .map(|r| r[key].as_u64().unwrap())
                .sum()
        };
        let (rtc, http, lo) = (
            median("rtc", "mbit_s"),
            median("http", "mbit_s"),
            median("loopback", "mbit_s"),
        );
        let report = serde_json::json!({
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "bytes": total,
            "message_bytes": MESSAGE,
            "reps": reps,
            "rtc_mbit_s": series("rtc"),
            "http_mbit_s": series("http"),
            "loopback_mbit_s": series("loopback"),
            "rtc_median_mbit_s": rtc,
            "http_median_mbit_s": http,
            "loopback_median_mbit_s": lo,
            "ratio_rtc_http": (rtc / http * 1000.0).round() / 1000.0,
            "ratio_rtc_loopback": (rtc / lo * 1000.0).round() / 1000.0,
            "rtc_server_cores": median("rtc", "server_cores"),
            "rtc_browser_cores": median("rtc", "browser_cores"),
            "http_server_cores": median("http", "server_cores"),
            "http_browser_cores": median("http", "browser_cores"),
            "loopback_browser_cores": median("loopback", "browser_cores"),
            "rtc_udp_sent": sum("rtc", "udp_sent"),
            "rtc_udp_rcvbuf_drops": sum("rtc", "udp_rcvbuf_drops"),
            "loopback_udp_sent": sum("loopback", "udp_sent"),
            "loopback_udp_rcvbuf_drops": sum("loopback", "udp_rcvbuf_drops"),
            "runs": runs,
        });
        println!("RTC_BENCH {report}");
        stop.cancel();
    })
    .await
    .expect("benchmark timed out");
}
