//! Asking STUN servers for this socket's public address (RFC 8489 Binding),
//! so sessions can offer a server-reflexive candidate behind a NAT.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The RFC 5389 magic cookie, which every STUN message carries.
const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// A Binding request with no attributes, and its transaction id.
pub fn binding_request() -> ([u8; 20], [u8; 12]) {
    let id: [u8; 12] = rand::random();
    let mut msg = [0u8; 20];
    msg[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    // Length 0: no attributes.
    msg[4..8].copy_from_slice(&MAGIC);
    msg[8..20].copy_from_slice(&id);
    (msg, id)
}

/// Whether a datagram is a STUN message (first two bits zero, the cookie).
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] & 0xc0 == 0 && datagram[4..8] == MAGIC
}

/// The mapped address of a successful Binding response to `id`: its
/// XOR-MAPPED-ADDRESS, or the older MAPPED-ADDRESS. Read here rather than
/// with str0m's STUN parser, which takes only ICE's own responses (with
/// MESSAGE-INTEGRITY), which a public STUN server does not send.
pub fn mapped_address(datagram: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    if !is_stun(datagram) || &datagram[8..20] != id || datagram[0..2] != [0x01, 0x01] {
        return None;
    }
    let len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let mut attrs = datagram.get(20..20 + len)?;
    let mut plain = None;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let n = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let value = attrs.get(4..4 + n)?;
        match kind {
            0x0020 => return address(value, Some(&datagram[4..20])),
            0x0001 => plain = address(value, None),
            _ => {}
        }
        // Attributes are padded to four bytes.
        attrs = attrs.get((4 + n).div_ceil(4) * 4..).unwrap_or(&[]);
    }
    plain
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` is the cookie and transaction id.
fn address(value: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let mask = |i: usize| xor.map_or(0, |x| x[i]);
    let port = u16::from_be_bytes([value.get(2)? ^ mask(0), value.get(3)? ^ mask(1)]);
    let ip: IpAddr = match value.get(1)? {
        0x01 => {
            let b = value.get(4..8)?;
            Ipv4Addr::from(std::array::from_fn::<u8, 4, _>(|i| b[i] ^ mask(i))).into()
        }
        0x02 => {
            let b = value.get(4..20)?;
            Ipv6Addr::from(std::array::from_fn::<u8, 16, _>(|i| b[i] ^ mask(i))).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A Binding success response with XOR-MAPPED-ADDRESS, as RFC 8489 §14.2 lays it out.
    pub(crate) fn success(id: &[u8; 12], addr: SocketAddr) -> Vec<u8> {
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 only in this test")
        };
        let mut m = Vec::new();
        m.extend_from_slice(&0x0101u16.to_be_bytes());
        m.extend_from_slice(&12u16.to_be_bytes());
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(id);
        m.extend_from_slice(&0x0020u16.to_be_bytes());
        m.extend_from_slice(&8u16.to_be_bytes());
        m.push(0);
        m.push(0x01);
        m.extend_from_slice(&(v4.port() ^ 0x2112).to_be_bytes());
        let ip = v4.ip().octets();
        for i in 0..4 {
            m.push(ip[i] ^ MAGIC[i]);
        }
        m
    }

    #[test]
    fn a_binding_response_names_the_mapped_address() {
        let (req, id) = binding_request();
        assert!(is_stun(&req));
        let addr: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let reply = success(&id, addr);
        assert_eq!(mapped_address(&reply, &id), Some(addr));
        assert_eq!(mapped_address(&reply, &[0; 12]), None);
        assert_eq!(mapped_address(&req, &id), None);
        assert_eq!(mapped_address(b"not stun at all, not stun", &id), None);
        let mut truncated = reply.clone();
        truncated.truncate(26);
        assert_eq!(mapped_address(&truncated, &id), None);
    }
}
