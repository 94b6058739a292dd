//! A WebRTC-direct session from a browser's first STUN check, with no SDP:
//! the browser sets both ICE ufrag and password to one value that starts
//! with [`UFRAG_PREFIX`], so the check's USERNAME carries everything this
//! side needs. This side is ICE-lite and controlled, the DTLS server, and
//! the SCTP server; channel 0 is negotiated out of band for Noise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::channel::{ChannelConfig, ChannelId};
use str0m::config::{CryptoProvider, DtlsCert, Fingerprint};
use str0m::ice::{IceCreds, StunMessage};
use str0m::{Candidate, Rtc, RtcConfig};

use super::super::RtcError;

/// The ufrag prefix of the libp2p WebRTC-direct spec.
pub const UFRAG_PREFIX: &str = "libp2p+webrtc+v1/";

/// The ufrag a browser's Binding request names, when it dials
/// WebRTC-direct.
pub fn ufrag_of(datagram: &[u8]) -> Option<String> {
    let msg = StunMessage::parse(datagram).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    let (ours, _theirs) = msg.split_username()?;
    // Both halves are the same value in this protocol; ours is what we
    // must answer to.
    (ours.starts_with(UFRAG_PREFIX) && ours.len() <= 256).then(|| ours.to_owned())
}

pub struct Settings<'a> {
    pub crypto: Arc<CryptoProvider>,
    pub cert: &'a DtlsCert,
    pub sctp_buffered: usize,
    pub max_message: usize,
}

/// A session ready to take the check that named `ufrag`, and its Noise
/// channel.
pub fn session(
    s: Settings<'_>,
    ufrag: &str,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<(Rtc, ChannelId), RtcError> {
    let rtc_err = |e: &dyn std::fmt::Display| RtcError::Rtc(e.to_string());
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(s.crypto)
        .set_dtls_cert(s.cert.clone())
        .set_ice_lite(true)
        // The browser's certificate is not known beforehand; Noise binds
        // the connection to the one DTLS saw.
        .set_fingerprint_verification(false)
        .set_sctp_max_buffered_amount(s.sctp_buffered)
        .set_sctp_max_message_size(s.max_message as u32)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| rtc_err(&e))?);
    rtc.add_remote_candidate(Candidate::host(remote, "udp").map_err(|e| rtc_err(&e))?);
    let creds = IceCreds {
        ufrag: ufrag.to_owned(),
        pass: ufrag.to_owned(),
    };
    let mut api = rtc.direct_api();
    // Any expected value: with verification off, str0m records the real
    // digest, which is all that is read back.
    api.set_remote_fingerprint(Fingerprint {
        hash_func: "sha-256".into(),
        bytes: vec![0xff; 32],
    });
    api.set_remote_ice_credentials(creds.clone());
    api.set_local_ice_credentials(creds);
    api.set_ice_controlling(false);
    api.start_dtls(false).map_err(|e| rtc_err(&e))?;
    api.start_sctp(false);
    let noise = api.create_data_channel(ChannelConfig {
        negotiated: Some(0),
        ..ChannelConfig::default()
    });
    Ok((rtc, noise))
}

/// The SHA-256 digest of the peer's certificate, once DTLS has seen it.
pub fn remote_fingerprint(rtc: &mut Rtc) -> Option<[u8; 32]> {
    let f = rtc.direct_api().remote_dtls_fingerprint()?.clone();
    (f.hash_func == "sha-256")
        .then(|| f.bytes.try_into().ok())
        .flatten()
}
