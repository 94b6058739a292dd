//! WebRTC-direct: browsers dial it from an address alone. The certificate's
//! hash is part of the address (`/certhash/…`), so the daemon keeps its
//! certificate across restarts (the daemon stores it in `data_dir`, 0600)
//! and its browser-dialable addresses stay the same.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Transport};

pub use libp2p_webrtc::tokio::Certificate;

/// The WebRTC-direct transport for the swarm.
pub fn webrtc_direct(key: &Keypair, certificate: Certificate) -> Boxed<(PeerId, StreamMuxerBox)> {
    libp2p_webrtc::tokio::Transport::new(key.clone(), certificate)
        .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        .boxed()
}

/// Whether a browser can dial `addr`: WebRTC-direct with its certificate
/// hash, on a concrete IP (browsers cannot dial 0.0.0.0).
pub fn browser_dialable(addr: &Multiaddr) -> bool {
    let mut webrtc = false;
    let mut certhash = false;
    let mut concrete = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => concrete = !ip.is_unspecified(),
            Protocol::Ip6(ip) => concrete = !ip.is_unspecified(),
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => concrete = true,
            Protocol::WebRTCDirect => webrtc = true,
            Protocol::Certhash(_) => certhash = true,
            Protocol::P2pCircuit => return false,
            _ => {}
        }
    }
    webrtc && certhash && concrete
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
        for bad in [
            format!("/ip4/0.0.0.0/udp/4002/webrtc-direct/certhash/{hash}"),
            "/ip4/127.0.0.1/udp/4002/webrtc-direct".to_owned(),
            "/ip4/127.0.0.1/tcp/4001".to_owned(),
            "/ip4/127.0.0.1/udp/4001/quic-v1".to_owned(),
        ] {
            assert!(!browser_dialable(&bad.parse().unwrap()), "{bad}");
        }
    }
}
