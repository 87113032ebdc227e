//! Who the client is, and the forwarding headers the upstream receives.
//!
//! The one rule for the client address (used by logs, rate limits and IP
//! rules):
//! - No trusted proxies: the TCP peer is the client; incoming forwarding
//!   headers are dropped.
//! - `trusted_proxies` (CIDRs): if the peer is not in them, as above.
//!   Otherwise walk `X-Forwarded-For` from right to left, skipping addresses
//!   inside the trusted CIDRs; the first address outside them is the
//!   client. If every entry is trusted, the left-most is the client. An
//!   entry that is not an IP address ends the walk: the address to its
//!   right (or the peer) is the client.
//! - `trusted_hops: N`: the N right-most hops (the peer counting as the
//!   first) are proxies; the client is the N-th entry from the right of
//!   `X-Forwarded-For`, or the left-most one if the chain is shorter;
//!   `N = 0` means the peer. A non-IP entry on the way ends the walk as above.
//!
//! Outgoing: `X-Forwarded-For` is the trusted incoming chain plus the peer
//! (or just the peer), `X-Real-IP` is the client address,
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are kept from a trusted peer
//! and set by us otherwise. From an untrusted peer every `X-Forwarded-*`,
//! `Forwarded`, `X-Real-IP` and `X-Client-IP` is dropped first.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use super::headers::{remove_all, FORWARDING};

/// The TCP peer's address, canonical and formatted once per connection:
/// every request on it sends the same `X-Forwarded-For` entry.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    pub header: HeaderValue,
}

impl Peer {
    pub fn new(ip: IpAddr) -> Peer {
        let ip = canonical(ip);
        Peer {
            ip,
            header: ip_header(ip),
        }
    }
}

fn ip_header(ip: IpAddr) -> HeaderValue {
    // An IP address always formats to a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

#[derive(Debug, Clone, Default)]
pub enum TrustedProxies {
    #[default]
    None,
    Cidrs(Vec<IpNet>),
    Hops(u32),
}

static XFF: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
static XFP: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
static XFH: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: http::HeaderName = http::HeaderName::from_static("x-real-ip");

impl TrustedProxies {
    /// Whether forwarding headers from this peer are believed.
    pub fn trusts_peer(&self, peer: IpAddr) -> bool {
        match self {
            TrustedProxies::None => false,
            TrustedProxies::Cidrs(nets) => contains(nets, peer),
            TrustedProxies::Hops(n) => *n > 0,
        }
    }

    /// The client address by the rule above.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts_peer(peer) {
            return peer;
        }
        let chain = xff_entries(headers);
        match self {
            TrustedProxies::None => peer,
            TrustedProxies::Cidrs(nets) => {
                let mut client = peer;
                for entry in chain.iter().rev() {
                    match entry.parse::<IpAddr>() {
                        Ok(ip) => {
                            client = ip;
                            if !contains(nets, ip) {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                client
            }
            TrustedProxies::Hops(n) => {
                // The peer is hop 1; each XFF entry from the right is one more.
                let mut client = peer;
                for entry in chain.iter().rev().take(*n as usize) {
                    match entry.parse::<IpAddr>() {
                        Ok(ip) => client = ip,
                        Err(_) => break,
                    }
                }
                client
            }
        }
    }
}

fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Every `X-Forwarded-For` entry, left to right, across repeated headers.
fn xff_entries(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(&XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Rewrites the forwarding headers of a request about to go upstream.
/// `host` is the request's Host (or authority), if any.
pub fn set_forwarding_headers(
    headers: &mut HeaderMap,
    trusted_peer: bool,
    peer: &Peer,
    client: IpAddr,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    let incoming_xff = if trusted_peer {
        let entries = xff_entries(headers);
        (!entries.is_empty()).then(|| entries.join(", "))
    } else {
        None
    };
    if !trusted_peer {
        remove_all(headers, &FORWARDING);
    }
    let xff = match incoming_xff {
        Some(chain) => HeaderValue::from_str(&format!("{chain}, {}", peer.ip)).ok(),
        None => Some(peer.header.clone()),
    };
    if let Some(v) = xff {
        headers.insert(&XFF, v);
    }
    let client = canonical(client);
    let real_ip = if client == peer.ip {
        peer.header.clone()
    } else {
        ip_header(client)
    };
    headers.insert(&X_REAL_IP, real_ip);
    // From an untrusted peer both were just removed.
    if !trusted_peer || !headers.contains_key(&XFP) {
        headers.insert(&XFP, HeaderValue::from_static(proto));
    }
    if !trusted_peer || !headers.contains_key(&XFH) {
        if let Some(h) = host {
            headers.insert(&XFH, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("v"));
        h
    }

    fn cidrs(list: &[&str]) -> TrustedProxies {
        TrustedProxies::Cidrs(list.iter().map(|s| s.parse().expect("cidr")).collect())
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = cidrs(&["10.0.0.0/8"]);
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), &xff("1.2.3.4")),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::None.client_ip(ip("10.0.0.1"), &xff("1.2.3.4")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn cidr_walk_skips_trusted_hops() {
        let t = cidrs(&["10.0.0.0/8"]);
        // client -> CDN-ish hop (untrusted) -> ingress 10.0.0.2 -> peer 10.0.0.1
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("1.2.3.4, 10.0.0.2")),
            ip("1.2.3.4")
        );
        // a spoofed left-most entry does not win over the real untrusted hop
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("6.6.6.6, 5.5.5.5, 10.9.9.9")),
            ip("5.5.5.5")
        );
        // all trusted: left-most
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("10.1.1.1, 10.2.2.2")),
            ip("10.1.1.1")
        );
        // no header: peer
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // garbage stops the walk at the address to its right
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), &xff("1.1.1.1, junk, 10.0.0.5")),
            ip("10.0.0.5")
        );
        // repeated headers are one chain
        let mut h = xff("7.7.7.7");
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.3"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("7.7.7.7"));
    }

    #[test]
    fn hop_count_rule() {
        let chain = xff("1.1.1.1, 2.2.2.2, 3.3.3.3");
        assert_eq!(
            TrustedProxies::Hops(0).client_ip(ip("9.9.9.9"), &chain),
            ip("9.9.9.9")
        );
        assert_eq!(
            TrustedProxies::Hops(1).client_ip(ip("9.9.9.9"), &chain),
            ip("3.3.3.3")
        );
        assert_eq!(
            TrustedProxies::Hops(2).client_ip(ip("9.9.9.9"), &chain),
            ip("2.2.2.2")
        );
        assert_eq!(
            TrustedProxies::Hops(9).client_ip(ip("9.9.9.9"), &chain),
            ip("1.1.1.1")
        );
    }

    #[test]
    fn forwarding_headers_from_untrusted_are_regenerated() {
        let mut h = xff("6.6.6.6");
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        set_forwarding_headers(
            &mut h,
            false,
            &Peer::new(ip("203.0.113.9")),
            ip("203.0.113.9"),
            "http",
            Some(HeaderValue::from_static("api.example.com")),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-real-ip"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert!(h.get("forwarded").is_none());
    }

    #[test]
    fn forwarding_headers_from_trusted_are_appended() {
        let mut h = xff("1.2.3.4");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let peer = Peer::new(ip("10.0.0.1"));
        set_forwarding_headers(&mut h, true, &peer, ip("1.2.3.4"), "http", None);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-real-ip"], "1.2.3.4");
    }

    #[test]
    fn mapped_ipv6_peer_is_written_as_ipv4() {
        let mut h = HeaderMap::new();
        let peer = Peer::new(ip("::ffff:10.0.0.7"));
        set_forwarding_headers(&mut h, false, &peer, ip("::ffff:10.0.0.7"), "http", None);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-real-ip"], "10.0.0.7");
    }
}
