//! Header hygiene: hop-by-hop removal (including headers named in
//! `Connection`), headers clients may never send through, and framing
//! checks the HTTP parser leaves to us.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

/// Hop-by-hop headers (RFC 9110 7.6.1) plus the non-standard ones proxies
/// have historically honoured.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Request headers a client can never get past the gateway: `Proxy`
/// (httpoxy) and the URL-override headers some frameworks honour.
static NEVER_FORWARDED: [HeaderName; 3] = [
    HeaderName::from_static("proxy"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// Headers that describe the client to the upstream; the gateway owns them.
pub static FORWARDING: [HeaderName; 9] = [
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-client-ip"),
];

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_index(name.as_str()).is_some()
}

/// Headers route rules may not set on requests: the gateway computes them.
pub fn is_reserved_request_header(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == X_REQUEST_ID
        || FORWARDING.contains(name)
}

/// The position of a hop-by-hop name in [`HOP_BY_HOP`], by matching the
/// (already lower-case) name: one string switch per header present.
fn hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "transfer-encoding" => 3,
        "te" => 4,
        "trailer" => 5,
        "upgrade" => 6,
        "proxy-authenticate" => 7,
        "proxy-authorization" => 8,
        _ => return None,
    })
}

/// Removes every header named in `Connection` and every hop-by-hop header.
/// Runs before the gateway adds any header of its own, so a client naming
/// `X-Forwarded-For` in `Connection` only removes its own copy.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the headers present (usually a handful, and for
    // responses usually only `Connection: keep-alive` among these).
    let mut present = 0u16;
    for k in headers.keys() {
        if let Some(i) = hop_index(k.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // `Connection: keep-alive` or `close` (nearly every message that has the
    // header) names nothing else: no need to parse the list.
    let only_options = || {
        headers.get_all(header::CONNECTION).iter().all(|v| {
            let v = v.as_bytes();
            v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")
        })
    };
    if present & 1 != 0 && !only_options() {
        // Names in Connection other than hop-by-hop names and `close`
        // (removed anyway, or naming nothing): only names of headers
        // actually present matter, so `keep-alive` alone allocates nothing.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.eq_ignore_ascii_case("close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|n| n.as_str().eq_ignore_ascii_case(t))
            })
            .filter_map(|t| {
                headers
                    .keys()
                    .find(|k| k.as_str().eq_ignore_ascii_case(t))
                    .cloned()
            })
            .collect();
        for n in named {
            // Host and Content-Length are end-to-end and frame the request
            // itself: a client can not make the gateway drop them.
            if n != header::HOST && n != header::CONTENT_LENGTH {
                headers.remove(n);
            }
        }
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(n);
        }
    }
}

pub fn strip_never_forwarded(headers: &mut HeaderMap) {
    remove_all(headers, &NEVER_FORWARDED);
}

/// Whether any header in `names` is present. One pass over the headers the
/// request has (few, and comparing names is cheap) instead of one hash
/// lookup per name.
pub fn any_present(headers: &HeaderMap, names: &[HeaderName]) -> bool {
    headers.keys().any(|k| names.contains(k))
}

/// Removes every header in `names`; costs one pass over the headers when
/// none of them is present (most requests).
pub fn remove_all(headers: &mut HeaderMap, names: &[HeaderName]) {
    if any_present(headers, names) {
        for n in names {
            headers.remove(n);
        }
    }
}

/// Whether `headers` has `name`. A request or response usually carries a
/// handful of headers, and most names asked about are absent: comparing
/// the names present (a tag comparison for standard names) is cheaper than
/// hashing the name for a lookup. Larger maps use the lookup.
pub fn has(headers: &HeaderMap, name: &HeaderName) -> bool {
    if headers.keys_len() <= 12 {
        headers.keys().any(|k| k == name)
    } else {
        headers.contains_key(name)
    }
}

/// Does the client ask for trailers (`TE: trailers`)? gRPC needs this
/// forwarded, and it is the one TE value HTTP/2 allows.
pub fn wants_trailers(headers: &HeaderMap) -> bool {
    if !has(headers, &header::TE) {
        return false;
    }
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// Is this an HTTP/1.1 WebSocket upgrade request? (`Upgrade: h2c` and
/// other protocols are not passed through.)
pub fn is_websocket_upgrade(version: Version, headers: &HeaderMap) -> bool {
    if version != Version::HTTP_11
        || !has(headers, &header::UPGRADE)
        || !has(headers, &header::CONNECTION)
    {
        return false;
    }
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade_ws = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    connection_upgrade && upgrade_ws
}

/// Framing problems hyper accepts but a gateway must not: both
/// Content-Length and Transfer-Encoding, several Host headers, HTTP/1.1
/// without Host. Returns the reason for a 400.
pub fn framing_error(version: Version, headers: &HeaderMap) -> Option<&'static str> {
    if has(headers, &header::TRANSFER_ENCODING) {
        if has(headers, &header::CONTENT_LENGTH) {
            return Some("both Content-Length and Transfer-Encoding are present");
        }
        // hyper refuses a Transfer-Encoding whose last coding is not
        // chunked, but passes `gzip, chunked` (or `gzip` then `chunked` on
        // two lines): the gateway would forward a body whose coding it
        // then strips.
        let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
        if let Some(first) = codings.next() {
            if codings.next().is_some() || !first.as_bytes().eq_ignore_ascii_case(b"chunked") {
                return Some("Transfer-Encoding other than chunked is not supported");
            }
        }
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Some("more than one Host header"),
        (None, _) if version == Version::HTTP_11 => Some("HTTP/1.1 request without Host"),
        (Some(h), None) if !valid_host_value(h) => Some("invalid Host header"),
        _ => None,
    }
}

fn valid_host_value(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

/// Headers the gateway owns that a request trailer may not carry.
pub fn is_forbidden_trailer(name: &HeaderName) -> bool {
    is_hop_by_hop(name)
        || is_reserved_request_header(name)
        || name == header::AUTHORIZATION
        || name == header::COOKIE
        || name == header::CONTENT_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_agrees_with_a_lookup_for_small_and_large_maps() {
        for n in [0usize, 1, 12, 13, 40] {
            let mut h = HeaderMap::new();
            for i in 0..n {
                h.insert(
                    HeaderName::from_bytes(format!("x-h{i}").as_bytes()).expect("name"),
                    HeaderValue::from_static("v"),
                );
            }
            for name in [header::HOST, header::TE, HeaderName::from_static("x-h0")] {
                assert_eq!(has(&h, &name), h.contains_key(&name), "{n} {name}");
            }
            h.append(header::TE, HeaderValue::from_static("trailers"));
            assert!(has(&h, &header::TE));
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn strips_headers_named_in_connection_case_insensitively() {
        let mut h = map(&[
            ("connection", "close, X-Secret , KEEP-ALIVE"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-keep", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-keep"], "yes");
        let mut h = map(&[
            ("connection", "Host, content-length"),
            ("host", "a"),
            ("content-length", "0"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.len(),
            2,
            "Host and Content-Length survive being named in Connection"
        );
    }

    #[test]
    fn hop_index_agrees_with_the_list() {
        for (i, n) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(n.as_str()), Some(i), "{n}");
        }
        assert_eq!(hop_index("x-forwarded-for"), None);
        assert_eq!(hop_index("connectio"), None);
    }

    #[test]
    fn remove_all_removes_every_listed_header_and_only_those() {
        let names = [HeaderName::from_static("x-a"), header::FORWARDED];
        let mut h = map(&[
            ("x-a", "1"),
            ("x-a", "2"),
            ("forwarded", "for=x"),
            ("x-b", "3"),
        ]);
        assert!(any_present(&h, &names));
        remove_all(&mut h, &names);
        assert!(!any_present(&h, &names));
        assert_eq!(h.len(), 1);
        let mut none = map(&[("x-b", "3")]);
        remove_all(&mut none, &names);
        assert_eq!(none.len(), 1);
    }

    #[test]
    fn framing_checks() {
        assert!(framing_error(Version::HTTP_11, &map(&[("host", "a")])).is_none());
        assert!(framing_error(Version::HTTP_11, &map(&[])).is_some());
        assert!(framing_error(Version::HTTP_10, &map(&[])).is_none());
        assert!(framing_error(Version::HTTP_11, &map(&[("host", "a"), ("host", "b")])).is_some());
        assert!(framing_error(
            Version::HTTP_11,
            &map(&[
                ("host", "a"),
                ("content-length", "1"),
                ("transfer-encoding", "chunked")
            ])
        )
        .is_some());
        assert!(framing_error(Version::HTTP_11, &map(&[("host", "a b")])).is_some());
        let te = |v: &[&str]| {
            let mut pairs = vec![("host", "a")];
            pairs.extend(v.iter().map(|v| ("transfer-encoding", *v)));
            framing_error(Version::HTTP_11, &map(&pairs))
        };
        assert!(te(&["chunked"]).is_none());
        assert!(te(&["Chunked"]).is_none());
        assert!(te(&["gzip, chunked"]).is_some());
        assert!(te(&["gzip", "chunked"]).is_some());
        assert!(te(&["chunked", "chunked"]).is_some());
        assert!(te(&["identity"]).is_some());
    }

    #[test]
    fn websocket_detection() {
        let ws = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_websocket_upgrade(Version::HTTP_11, &ws));
        let h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ]);
        assert!(!is_websocket_upgrade(Version::HTTP_11, &h2c));
        assert!(!is_websocket_upgrade(Version::HTTP_2, &ws));
    }

    #[test]
    fn te_trailers() {
        assert!(wants_trailers(&map(&[("te", "gzip, Trailers")])));
        assert!(!wants_trailers(&map(&[("te", "gzip")])));
    }
}
