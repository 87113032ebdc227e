//! HTTP/1.x request heads: parsed with `httparse` straight into `http`
//! types, the path and header values sliced out of the read buffer (no
//! copy), and the body's framing decided here, strictly (RFC 9112 section
//! 6): anything ambiguous is refused before a byte goes anywhere.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};

use crate::errors::GatewayError;
use crate::proxy::h1::{self, Lines};
use crate::proxy::headers::has;

/// Header lines one request may carry (hyper's default is 100).
pub const MAX_HEADERS: usize = 128;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no framing header, or `Content-Length: 0`).
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head and what the connection needs to know about it.
#[derive(Debug)]
pub struct Head {
    pub parts: Parts,
    pub framing: Framing,
    /// The client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header.
    pub upgrade: bool,
}

/// Parses one head from the front of `buf`, removing its bytes on success.
/// `Ok(None)`: incomplete, read more. Heads over `max_bytes` get 431.
pub fn parse(buf: &mut BytesMut, max_bytes: usize) -> Result<Option<Head>, GatewayError> {
    // Uninitialized slots: zeroing 128 of them costs more than parsing.
    let mut slots: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => {
            return Err(GatewayError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(GatewayError::HeadersTooLarge),
        Err(httparse::Error::Version) => {
            return Err(GatewayError::BadRequest("unsupported HTTP version"))
        }
        Err(_) => return Err(GatewayError::BadRequest("malformed request head")),
    };
    if len > max_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(GatewayError::BadRequest("malformed request method"))?;
    let target = req
        .path
        .map(|p| p.as_ptr() as usize - buf.as_ptr() as usize);
    let target = target.map_or((0, 0), |at| (at, req.path.map_or(0, str::len)));
    let lines = Lines::of(buf, req.headers);
    let head = buf.split_to(len).freeze();

    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| GatewayError::BadRequest("malformed request target"))?;
    let mut headers = lines
        .into_map(&head, 6)
        .map_err(|_| GatewayError::BadRequest("malformed header line"))?;

    let framing = framing(version, &mut headers)?;
    let (mut keep_alive, upgrade) = h1::connection_options(version, &headers);
    let upgrade = upgrade && headers.contains_key(http::header::UPGRADE);
    if version == Version::HTTP_10 && framing == Framing::Chunked {
        keep_alive = false;
    }
    let expect_continue = version == Version::HTTP_11
        && framing != Framing::None
        && headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    }))
}

/// RFC 9112 section 6.3, without the lenient branches: a Transfer-Encoding
/// must be exactly `chunked` (on HTTP/1.1, without a Content-Length);
/// Content-Length lines must all be the same plain decimal number, and
/// repeated identical lines are merged into one.
fn framing(version: Version, headers: &mut HeaderMap) -> Result<Framing, GatewayError> {
    // Most requests have neither framing header: no lookup for them.
    let (te, cl) = (
        has(headers, &TRANSFER_ENCODING),
        has(headers, &CONTENT_LENGTH),
    );
    if !te && !cl {
        return Ok(Framing::None);
    }
    let mut te = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(first) = te.next() {
        if te.next().is_some() || !first.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err(GatewayError::BadRequest(
                "Transfer-Encoding other than chunked is not supported",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(GatewayError::BadRequest(
                "Transfer-Encoding on an HTTP/1.0 request",
            ));
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(GatewayError::BadRequest(
                "both Content-Length and Transfer-Encoding are present",
            ));
        }
        return Ok(Framing::Chunked);
    }
    let mut len = None;
    let mut lines = 0;
    for v in headers.get_all(CONTENT_LENGTH) {
        let n = h1::parse_length(v.as_bytes())
            .ok_or(GatewayError::BadRequest("invalid Content-Length"))?;
        if len.is_some_and(|l| l != n) {
            return Err(GatewayError::BadRequest(
                "conflicting Content-Length values",
            ));
        }
        len = Some(n);
        lines += 1;
    }
    if lines > 1 {
        if let Some(n) = len {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    Ok(match len {
        None | Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, GatewayError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse(&mut buf, 8192)
    }

    fn ok(raw: &str) -> Head {
        head(raw).unwrap().unwrap()
    }

    #[test]
    fn simple_get_keeps_alive_and_leaves_the_rest() {
        let mut buf =
            BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\nNEXT"[..]);
        let h = parse(&mut buf, 8192).unwrap().unwrap();
        assert_eq!(h.parts.method, Method::GET);
        assert_eq!(h.parts.uri, "/a?b=1");
        assert_eq!(h.parts.version, Version::HTTP_11);
        assert_eq!(h.parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(h.framing, Framing::None);
        assert!(h.keep_alive && !h.upgrade && !h.expect_continue);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn partial_heads_ask_for_more_until_the_limit() {
        assert!(head("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        let mut buf =
            BytesMut::from(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(9000)).as_bytes());
        assert_eq!(
            parse(&mut buf, 8192).unwrap_err(),
            GatewayError::HeadersTooLarge
        );
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            raw.push_str(&format!("x-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        let mut buf = BytesMut::from(raw.as_bytes());
        assert_eq!(
            parse(&mut buf, 1 << 20).unwrap_err(),
            GatewayError::HeadersTooLarge
        );
    }

    #[test]
    fn framing_is_strict() {
        assert_eq!(
            ok("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").framing,
            Framing::Length(5)
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        let merged = ok("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(merged.framing, Framing::Length(3));
        assert_eq!(
            merged.parts.headers.get_all(CONTENT_LENGTH).iter().count(),
            1
        );
        for bad in [
            "Content-Length: 3\r\nContent-Length: 4",
            "Content-Length: 3, 3",
            "Content-Length: +3",
            "Content-Length: 99999999999999999999999",
            "Content-Length:",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 3",
        ] {
            let raw = format!("POST / HTTP/1.1\r\n{bad}\r\n\r\n");
            assert!(
                matches!(head(&raw), Err(GatewayError::BadRequest(_))),
                "{bad}"
            );
        }
        assert!(head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn connection_options_by_version() {
        assert!(!ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            ok("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
                .upgrade
        );
        assert!(!ok("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n").upgrade);
        assert!(
            ok("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(!ok("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
            "GET / HTTP/1.1\r\nX A: b\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A : b\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(head(bad), Err(GatewayError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
