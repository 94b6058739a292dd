//! The engine on loopback sockets, without a browser: STUN, offers,
//! refusals. `tests/rtc_engine.rs` runs it against Chromium.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineConfig, RtcError};

fn config() -> EngineConfig {
    EngineConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
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
    let local = engine.local_addr();
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
