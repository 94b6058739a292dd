//! Where the gateway may fetch from: `gateway.allowed_origins` and the
//! private-address rule. The daemon's HTTP client applies the same policy to
//! the addresses it actually connects to and to every redirect.

use std::net::IpAddr;

use url::Url;

/// One entry of `gateway.allowed_origins`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedOrigin {
    /// `cdn.example.com` or `cdn.example.com:8443`: that host, any path;
    /// `.example.com` also takes every name under it.
    Host { host: String, port: Option<u16> },
    /// `https://cdn.example.com/videos/`: URLs that start with it.
    Prefix(String),
}

impl AllowedOrigin {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains("://") {
            let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                return Err(format!("{text:?} is not an http or https URL"));
            }
            return Ok(Self::Prefix(url.to_string()));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                let port = p.parse().map_err(|_| format!("{text:?}: bad port"))?;
                (h, Some(port))
            }
            _ => (text, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let bare = host.strip_prefix('.').unwrap_or(host);
        if bare.is_empty()
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        {
            return Err(format!("{text:?} is not a host name"));
        }
        Ok(Self::Host {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        match self {
            Self::Prefix(p) => url.as_str().starts_with(p.as_str()),
            Self::Host { host, port } => {
                let Some(h) = url.host_str() else {
                    return false;
                };
                let h = h
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase();
                let name_ok = match host.strip_prefix('.') {
                    Some(parent) => h == parent || h.ends_with(host.as_str()),
                    None => h == *host,
                };
                name_ok && port.is_none_or(|p| url.port_or_known_default() == Some(p))
            }
        }
    }
}

/// Why an upstream URL or address is refused. Safe to show to clients.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not in gateway.allowed_origins")]
    NotAllowed(String),
    #[error(
        "{0} is a loopback, private or link-local address, which this gateway does not fetch from (gateway.allow_private_origins)"
    )]
    Private(String),
    #[error("this gateway is public and fetches only from gateway.allowed_origins, which is empty")]
    NoOrigins,
}

#[derive(Clone, Debug, Default)]
pub struct UpstreamPolicy {
    /// Empty means any origin.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// Whether upstreams on loopback, private, link-local and unique-local
    /// addresses may be fetched.
    pub allow_private: bool,
    /// A public gateway takes no URL from clients without the token unless
    /// `allowed_origins` names where they may go (`check_client_url`).
    pub require_allowed: bool,
}

impl UpstreamPolicy {
    /// The URL's own checks: the allowed list, and the private rule for a
    /// host written as an address. Names are checked once resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if let Some(ip) = host_ip(url) {
            self.check_addr(ip)?;
        } else if !self.allow_private
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case("localhost") || h.ends_with(".localhost"))
        {
            return Err(Refusal::Private(origin_of(url)));
        }
        if !self.allowed_origins.is_empty() && !self.allowed_origins.iter().any(|o| o.allows(url)) {
            return Err(Refusal::NotAllowed(origin_of(url)));
        }
        Ok(())
    }

    /// A URL from a client with no token (`/hls?url=`): a public gateway
    /// takes none unless `allowed_origins` says where they may go.
    pub fn check_client_url(&self, url: &Url) -> Result<(), Refusal> {
        if self.require_allowed && self.allowed_origins.is_empty() {
            return Err(Refusal::NoOrigins);
        }
        self.check_url(url)
    }

    pub fn check_addr(&self, ip: IpAddr) -> Result<(), Refusal> {
        if !self.allow_private && is_private(ip) {
            return Err(Refusal::Private(ip.to_string()));
        }
        Ok(())
    }
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    }
}

/// Addresses that reach this machine or its networks rather than the
/// Internet: loopback, RFC 1918, CGNAT, link-local (cloud metadata among
/// them), unique-local, unspecified, broadcast and multicast, and IPv4
/// written inside IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                // NAT64 and 6to4 carry an IPv4 address that may be private.
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || s[0] == 0x2002
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn private_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn allowed_origins() {
        let p = UpstreamPolicy {
            allowed_origins: [
                "cdn.example.com",
                ".media.example",
                "https://other.example/v/",
                "x.example:8443",
            ]
            .iter()
            .map(|s| AllowedOrigin::parse(s).unwrap())
            .collect(),
            allow_private: false,
            require_allowed: true,
        };
        for ok in [
            "https://cdn.example.com/a.m3u8",
            "http://CDN.example.com:81/a.m3u8",
            "https://eu.media.example/a.m3u8",
            "https://media.example/a.m3u8",
            "https://other.example/v/a.m3u8",
            "https://x.example:8443/a",
        ] {
            assert_eq!(p.check_url(&url(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "https://cdn.example.com.evil.example/a.m3u8",
            "https://evilmedia.example/a.m3u8",
            "https://other.example/w/a.m3u8",
            "https://other.example/v",
            "https://x.example/a",
            "http://127.0.0.1/a",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad}");
        }
        assert!(AllowedOrigin::parse("ftp://x/").is_err());
        assert!(AllowedOrigin::parse("a b").is_err());
    }

    #[test]
    fn public_gateways_need_origins_and_refuse_private_literals() {
        let p = UpstreamPolicy {
            require_allowed: true,
            ..UpstreamPolicy::default()
        };
        assert_eq!(
            p.check_client_url(&url("https://a.example/")),
            Err(Refusal::NoOrigins)
        );
        // The operator's own URLs (config, API with the token) need no list.
        assert_eq!(p.check_url(&url("https://a.example/")), Ok(()));
        assert!(matches!(
            p.check_url(&url("http://10.0.0.1/")),
            Err(Refusal::Private(_))
        ));
        assert!(matches!(
            p.check_url(&url("http://10.0.0.1/")),
            Err(Refusal::Private(_))
        ));
        let p = UpstreamPolicy::default();
        assert!(p.check_url(&url("http://169.254.169.254/latest/")).is_err());
        assert!(p.check_url(&url("http://[::1]:80/")).is_err());
        assert!(p.check_url(&url("http://localhost/")).is_err());
        let p = UpstreamPolicy {
            allow_private: true,
            ..UpstreamPolicy::default()
        };
        assert!(p.check_url(&url("http://127.0.0.1:9/")).is_ok());
    }
}
