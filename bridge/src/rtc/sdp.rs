//! Remote SDP, read with str0m after one cleaning step.
//!
//! Chromium names its host candidates `<uuid>.local` (mDNS) unless told
//! otherwise, and str0m's parser refuses a candidate whose address is not
//! an IP. Nobody resolves those names here: those candidates are dropped,
//! and ICE learns the browser's address as a peer-reflexive candidate from
//! its first connectivity check instead.

use std::net::IpAddr;

use str0m::change::{SdpAnswer, SdpOffer};

use super::RtcError;

/// Far above any real offer (a few KiB), small enough to parse cheaply.
pub const MAX_SDP: usize = 64 * 1024;

pub fn parse_offer(sdp: &str) -> Result<SdpOffer, RtcError> {
    SdpOffer::from_sdp_string(&clean(sdp)?).map_err(|e| RtcError::BadSdp(e.to_string()))
}

pub fn parse_answer(sdp: &str) -> Result<SdpAnswer, RtcError> {
    SdpAnswer::from_sdp_string(&clean(sdp)?).map_err(|e| RtcError::BadSdp(e.to_string()))
}

/// The SDP without candidates whose address is a name, with CRLF line ends.
fn clean(sdp: &str) -> Result<String, RtcError> {
    if sdp.len() > MAX_SDP {
        return Err(RtcError::BadSdp(format!(
            "{} bytes, more than {MAX_SDP}",
            sdp.len()
        )));
    }
    if !sdp.starts_with("v=0") {
        return Err(RtcError::BadSdp("does not start with v=0".into()));
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || named_candidate(line) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    Ok(out)
}

/// `a=candidate:<foundation> <component> <transport> <priority> <address> …`
/// with an address that is not an IP.
fn named_candidate(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("a=candidate:") else {
        return false;
    };
    rest.split(' ')
        .nth(4)
        .is_none_or(|addr| addr.parse::<IpAddr>().is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdns_candidates_go_and_ip_candidates_stay() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\
            a=candidate:1 1 udp 2113937151 4f2a1c6e-7d1b-4e59-a0a1-2b9c0e4d7f10.local 54321 typ host generation 0\r\n\
            a=candidate:2 1 udp 2113937151 192.168.1.7 54322 typ host generation 0\r\n\
            a=candidate:3 1 udp 2113937151\r\n";
        let out = clean(sdp).unwrap();
        assert!(!out.contains(".local"));
        assert!(out.contains("192.168.1.7 54322"));
        assert!(!out.contains("a=candidate:3"));
    }

    #[test]
    fn garbage_and_oversized_sdp_are_refused() {
        assert!(matches!(parse_offer("hello"), Err(RtcError::BadSdp(_))));
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP));
        assert!(matches!(parse_offer(&big), Err(RtcError::BadSdp(_))));
        assert!(matches!(
            parse_offer("v=0\r\nm=nonsense\r\n"),
            Err(RtcError::BadSdp(_))
        ));
    }
}
