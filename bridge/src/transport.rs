//! The transports browsers dial.
//!
//! WebRTC-direct: browsers dial it from an address alone. The certificate's
//! hash is part of the address (`/certhash/…`), so the daemon keeps its
//! certificate across restarts (the daemon stores it in `data_dir`, 0600)
//! and its browser-dialable addresses stay the same. It runs on the WebRTC
//! engine ([`crate::rtc::direct`]).
//!
//! WebSocket (`/tcp/N/ws`), where configured: a reliable stream that pages
//! on `http:` or on this machine can dial without WebRTC, and that pages on
//! `https:` reach as `/wss` through a TLS-terminating proxy.

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Transport, noise, tcp, websocket, yamux};

use crate::rtc::Engine;
use crate::rtc::direct::{self, DirectCert};

/// What the WebRTC-direct transport runs on.
pub struct WebRtcDirect {
    pub engine: Engine,
    pub cert: DirectCert,
}

/// The WebRTC-direct transport for the swarm.
pub fn webrtc_direct(key: &Keypair, on: WebRtcDirect) -> Boxed<(PeerId, StreamMuxerBox)> {
    direct::Transport::new(on.engine, key.clone(), on.cert)
        .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        .boxed()
}

/// The WebSocket transport (plain `ws`; `wss` is left to a proxy in front),
/// secured and multiplexed as TCP is: Noise, then yamux.
pub fn websocket(key: &Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(websocket::Config::new(tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .timeout(Duration::from_secs(20))
        .boxed())
}

/// Whether a browser can dial `addr`, on a concrete IP or name (browsers
/// cannot dial 0.0.0.0): WebRTC-direct with its certificate hash, or
/// WebSocket.
pub fn browser_dialable(addr: &Multiaddr) -> bool {
    let mut webrtc = false;
    let mut certhash = false;
    let mut ws = false;
    let mut concrete = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => concrete = !ip.is_unspecified(),
            Protocol::Ip6(ip) => concrete = !ip.is_unspecified(),
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => concrete = true,
            Protocol::WebRTCDirect => webrtc = true,
            Protocol::Certhash(_) => certhash = true,
            Protocol::Ws(_) | Protocol::Wss(_) => ws = true,
            Protocol::P2pCircuit => return false,
            _ => {}
        }
    }
    concrete && ((webrtc && certhash) || ws)
}

/// Whether `addr` is one of the transports kept for browsers; daemons
/// reach each other over TCP and QUIC.
pub fn browser_transport(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| {
        matches!(
            p,
            Protocol::WebRTCDirect
                | Protocol::WebRTC
                | Protocol::Certhash(_)
                | Protocol::Ws(_)
                | Protocol::Wss(_)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_concrete_webrtc_direct_with_certhash_is_dialable() {
        let hash = "uEiDikp5KVUgkLta1EjUN-IKbHk-dUBg8VzKgf5nXxLK46w";
        let ok: Multiaddr = format!("/ip4/127.0.0.1/udp/4002/webrtc-direct/certhash/{hash}")
            .parse()
            .unwrap();
        assert!(browser_dialable(&ok));
        assert!(browser_dialable(
            &"/ip4/127.0.0.1/tcp/4003/ws".parse().unwrap()
        ));
        assert!(browser_dialable(
            &"/dns4/seed.example/tcp/443/wss".parse().unwrap()
        ));
        for bad in [
            "/ip4/0.0.0.0/tcp/4003/ws".to_owned(),
            format!("/ip4/0.0.0.0/udp/4002/webrtc-direct/certhash/{hash}"),
            "/ip4/127.0.0.1/udp/4002/webrtc-direct".to_owned(),
            "/ip4/127.0.0.1/tcp/4001".to_owned(),
            "/ip4/127.0.0.1/udp/4001/quic-v1".to_owned(),
        ] {
            assert!(!browser_dialable(&bad.parse().unwrap()), "{bad}");
        }
    }
}
