//! The engine on loopback sockets, without a browser: STUN, offers,
//! refusals. `tests/rtc_engine.rs` runs it against Chromium.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineConfig, RtcError};

fn config() -> EngineConfig {
    EngineConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..EngineConfig::default()
    }
}

/// A STUN server on loopback that maps every client to one public address.
async fn stun_server(mapped: std::net::SocketAddr) -> std::net::SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if n < 20 || buf[0..2] != [0, 1] {
                continue;
            }
            let id: [u8; 12] = buf[8..20].try_into().unwrap();
            let reply = super::stun::tests::success(&id, mapped);
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

#[tokio::test]
async fn offers_carry_a_server_reflexive_candidate_from_stun() {
    let public: std::net::SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let server = stun_server(public).await;
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(
        EngineConfig {
            stun_servers: vec![server.to_string()],
            ..config()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let local = engine.local_addr().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (sdp, _offer) = engine.create_offer().await.unwrap();
        let host = format!("{} {} typ host", local.ip(), local.port());
        assert!(sdp.contains(&host), "{sdp}");
        if sdp.contains("203.0.113.9 40000 typ srflx") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no srflx in {sdp}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
}

#[tokio::test]
async fn stun_servers_added_later_are_asked_at_once() {
    let public: std::net::SocketAddr = "203.0.113.7:41000".parse().unwrap();
    let server = stun_server(public).await;
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(config(), stop.clone()).await.unwrap();
    engine
        .add_stun_servers(&[format!("stun:{server}"), "turn:x.example".into()])
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (sdp, _offer) = engine.create_offer().await.unwrap();
        if sdp.contains("203.0.113.7 41000 typ srflx") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no srflx in {sdp}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
}

#[test]
fn stun_urls_become_host_and_port() {
    use super::stun_host_port;
    assert_eq!(
        stun_host_port("stun:stun.example.org").as_deref(),
        Some("stun.example.org:3478")
    );
    assert_eq!(
        stun_host_port("stun:stun.example.org:19302").as_deref(),
        Some("stun.example.org:19302")
    );
    assert_eq!(
        stun_host_port("stun.example.org:3478").as_deref(),
        Some("stun.example.org:3478")
    );
    assert_eq!(
        stun_host_port("stun:[2001:db8::1]:3478").as_deref(),
        Some("[2001:db8::1]:3478")
    );
    for bad in [
        "turn:t.example",
        "stuns:s.example",
        "stun:",
        "stun:a/b",
        "stun:2001:db8::1",
    ] {
        assert_eq!(stun_host_port(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn no_stun_servers_means_host_candidates_only_and_caps_hold() {
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(
        EngineConfig {
            max_sessions: 2,
            ..config()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let (sdp, a) = engine.create_offer().await.unwrap();
    assert!(!sdp.contains("srflx"));
    assert!(sdp.contains("a=candidate:"));
    let (_, b) = engine.create_offer().await.unwrap();
    assert!(matches!(
        engine.create_offer().await,
        Err(RtcError::Full(2))
    ));
    // A withdrawn offer frees its place.
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while engine.sessions().await > 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(engine.create_offer().await.is_ok());
    drop(b);
    stop.cancel();
    // A stopped engine says so.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        engine.create_offer().await,
        Err(RtcError::Stopped)
    ));
}

#[tokio::test]
async fn offers_that_never_connect_expire() {
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(
        EngineConfig {
            connect_timeout: Duration::from_millis(300),
            ..config()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let (_sdp, offer) = engine.create_offer().await.unwrap();
    assert_eq!(engine.sessions().await, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(engine.sessions().await, 0);
    let answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    assert!(offer.accept_answer(answer).await.is_err());
    stop.cancel();
}

#[tokio::test]
async fn webrtc_direct_shares_the_socket_of_sdp_sessions() {
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(config(), stop.clone()).await.unwrap();
    let cert = super::direct::DirectCert::generate().unwrap();
    let shared = engine.local_addr().unwrap();
    // Port 0 on the engine's IP, or its exact address: the same socket.
    let first = engine
        .listen_direct("127.0.0.1:0".parse().unwrap(), cert.dtls.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.local, shared);
    // Taken: another port-0 listener gets a socket of its own, and the
    // exact address is refused.
    let second = engine
        .listen_direct("127.0.0.1:0".parse().unwrap(), cert.dtls.clone())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(second.local, shared);
    assert!(
        engine
            .listen_direct(shared, cert.dtls.clone())
            .await
            .unwrap()
            .is_err()
    );
    // Let go of, the engine's socket can serve WebRTC-direct again.
    engine.unlisten_direct(first.id);
    let again = engine
        .listen_direct(shared, cert.dtls.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.local, shared);
    // A socket bound for a listener alone closes with it.
    engine.unlisten_direct(second.id);
    tokio::time::sleep(Duration::from_millis(50)).await;
    UdpSocket::bind(second.local).await.unwrap();
    stop.cancel();
}

/// HMAC-SHA1 (RFC 2104), which STUN's MESSAGE-INTEGRITY uses.
fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let mut inner = Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// A browser's first check when it dials WebRTC-direct with `ufrag`.
fn direct_check(ufrag: &str) -> Vec<u8> {
    use str0m::ice::{StunMessage, TransId};
    let username = format!("{ufrag}:{ufrag}");
    let msg = StunMessage::binding_request(&username, TransId::new(), true, 7, 1 << 24, true);
    let mut buf = vec![0u8; 1500];
    let n = msg
        .to_bytes(Some(ufrag.as_bytes()), &mut buf, hmac_sha1)
        .unwrap();
    buf.truncate(n);
    buf
}

/// A flood of first checks from addresses that never go on: each is a
/// session until its handshake times out, at most 64 of them at once, and
/// every one is gone after the connect timeout; the engine still answers.
#[tokio::test]
async fn webrtc_direct_dials_that_never_finish_are_bounded_and_expire() {
    let stop = CancellationToken::new();
    let (engine, _task) = Engine::start(
        EngineConfig {
            connect_timeout: Duration::from_millis(800),
            ..config()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let cert = super::direct::DirectCert::generate().unwrap();
    let mut listening = engine
        .listen_direct("127.0.0.1:0".parse().unwrap(), cert.dtls.clone())
        .await
        .unwrap()
        .unwrap();
    let target = listening.local;
    let mut socks = Vec::new();
    for i in 0..100 {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(&direct_check(&format!("libp2p+webrtc+v1/flood{i}")), target)
            .await
            .unwrap();
        // Not a check, not a known source: dropped.
        s.send_to(b"\x17\xfe\xfd garbage", target).await.unwrap();
        socks.push(s);
    }
    // A check whose ufrag is not WebRTC-direct's opens nothing.
    socks[0]
        .send_to(&direct_check("plainufrag"), target)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = engine.sessions().await;
    assert!((1..=64).contains(&held), "{held} sessions");
    let mut handed = 0;
    while let Ok(conn) = listening.incoming.try_recv() {
        handed += 1;
        std::mem::forget(conn);
    }
    assert_eq!(
        handed, held,
        "every session held was handed to the listener"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while engine.sessions().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still serving: a new offer is answered.
    engine.create_offer().await.unwrap();
    stop.cancel();
}

/// The engine's sockets get the buffers the kernel allows up to what they
/// ask, not its small default: on Linux, granted sizes read back doubled.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn engine_sockets_get_large_kernel_buffers() {
    let cap = |name: &str| -> usize {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let socket = super::sockets::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let s = socket2::SockRef::from(&socket);
    let want = super::sockets::BUFFER;
    assert_eq!(
        s.recv_buffer_size().unwrap(),
        2 * want.min(cap("rmem_max")),
        "receive"
    );
    assert_eq!(
        s.send_buffer_size().unwrap(),
        2 * want.min(cap("wmem_max")),
        "send"
    );
    // Still a working socket.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(b"ping", socket.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = socket.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"ping"[..], peer.local_addr().unwrap())
    );
}
