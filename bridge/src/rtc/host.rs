//! This machine's addresses: the host candidates a bound socket offers,
//! and which of them a datagram was sent to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The host candidates of a socket bound to `bound`: that address when it
/// names one, else every up interface of its family. Loopback is offered
/// only when bound to it, since no remote browser can use it.
pub fn candidates(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let port = bound.port();
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() == bound.is_ipv4() && !ip.is_loopback() && usable(ip))
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        // A machine with only loopback can still serve its own browsers.
        out.push(SocketAddr::new(
            if bound.is_ipv4() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
            },
            port,
        ));
    }
    out
}

/// ICE refuses link-local and multicast candidates.
fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => !v.is_link_local() && !v.is_multicast(),
        IpAddr::V6(v) => !v.is_multicast() && (v.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// Which local address a datagram from a source reached. A socket bound to
/// one address knows; one bound to all of them asks the routing table which
/// address it would answer from (a connected throwaway socket, no packet
/// sent), once per source IP.
pub struct Destinations {
    bound: SocketAddr,
    routes: HashMap<IpAddr, IpAddr>,
}

/// A bound on the route cache; browsers come and go by the thousand.
const MAX_ROUTES: usize = 4096;

impl Destinations {
    pub fn new(bound: SocketAddr) -> Self {
        Self {
            bound,
            routes: HashMap::new(),
        }
    }

    pub fn of(&mut self, source: SocketAddr) -> SocketAddr {
        if !self.bound.ip().is_unspecified() {
            return self.bound;
        }
        if let Some(ip) = self.routes.get(&source.ip()) {
            return SocketAddr::new(*ip, self.bound.port());
        }
        let ip = route_to(source).unwrap_or(self.bound.ip());
        if self.routes.len() >= MAX_ROUTES {
            self.routes.clear();
        }
        self.routes.insert(source.ip(), ip);
        SocketAddr::new(ip, self.bound.port())
    }
}

fn route_to(remote: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(remote).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_address_is_its_own_candidate_and_destination() {
        let bound: SocketAddr = "127.0.0.1:4003".parse().unwrap();
        assert_eq!(candidates(bound), vec![bound]);
        let mut d = Destinations::new(bound);
        assert_eq!(d.of("127.0.0.1:5000".parse().unwrap()), bound);
    }

    #[test]
    fn an_unspecified_bind_answers_loopback_from_loopback() {
        let bound: SocketAddr = "0.0.0.0:4003".parse().unwrap();
        let mut d = Destinations::new(bound);
        assert_eq!(
            d.of("127.0.0.1:5000".parse().unwrap()),
            "127.0.0.1:4003".parse::<SocketAddr>().unwrap()
        );
        assert!(candidates(bound).iter().all(|c| c.port() == 4003));
    }
}
