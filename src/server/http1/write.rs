//! Response heads on HTTP/1.1: the status line, the headers as the pipeline
//! left them, the body's framing decided here from what the body knows about
//! itself, and a Date formatted once per second.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use http_body::SizeHint;

use crate::proxy::h1::raw::{in_map, Kind, RawHeaders};

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// No body bytes at all: 1xx, 204, 304 and answers to HEAD. `keep_length`:
    /// a Content-Length the head carries describes the resource (HEAD, 304)
    /// and is passed on.
    NoBody {
        keep_length: bool,
    },
    Length(u64),
    Chunked,
    /// HTTP/1.0 client and a body of unknown length: ends with the connection.
    UntilClose,
}

pub fn body_framing(head_request: bool, http10: bool, status: StatusCode, hint: &SizeHint) -> Out {
    if status.is_informational() || status == StatusCode::NO_CONTENT {
        Out::NoBody { keep_length: false }
    } else if head_request || status == StatusCode::NOT_MODIFIED {
        Out::NoBody { keep_length: true }
    } else if let Some(n) = hint.exact() {
        Out::Length(n)
    } else if !http10 {
        Out::Chunked
    } else {
        Out::UntilClose
    }
}

/// What the `Connection` header says, beyond the pipeline's own headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnHeader {
    None,
    Close,
    /// An HTTP/1.0 client that asked for keep-alive is told it got it.
    KeepAlive,
}

/// `raw`: an upstream's header lines kept aside from `headers` (see
/// `proxy::h1::raw`), written after them; a name `headers` has is the
/// gateway's and replaces the upstream's lines of that name.
pub fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    raw: Option<&RawHeaders>,
    framing: Out,
    conn: ConnHeader,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let ours = !matches!(framing, Out::NoBody { keep_length: true });
    for (name, value) in headers {
        if ours && (name == CONTENT_LENGTH || name == TRANSFER_ENCODING) {
            continue;
        }
        if conn != ConnHeader::None && name == CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut raw_date = false;
    for (name, value, kind) in raw.into_iter().flat_map(RawHeaders::lines) {
        match kind {
            Kind::ContentLength | Kind::TransferEncoding if ours => continue,
            Kind::Connection if conn != ConnHeader::None => continue,
            _ => {}
        }
        if in_map(headers, name) {
            continue;
        }
        raw_date |= kind == Kind::Date;
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Out::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            let mut digits = itoa::Buffer::new();
            out.extend_from_slice(digits.format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Out::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Out::NoBody { .. } | Out::UntilClose => {}
    }
    match conn {
        ConnHeader::None => {}
        ConnHeader::Close => out.extend_from_slice(b"connection: close\r\n"),
        ConnHeader::KeepAlive => out.extend_from_slice(b"connection: keep-alive\r\n"),
    }
    if !raw_date && !headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The chunk-size line for a data chunk of `n` bytes.
pub fn chunk_head(out: &mut Vec<u8>, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = HEX[v & 15];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    static DATE_CACHE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// The current time as an IMF-fixdate, formatted at most once per second
/// per thread.
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            c.0 = secs;
            c.1 = httpdate::fmt_http_date(now).into_bytes();
        }
        f(&c.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(status: u16, headers: &[(&str, &str)], framing: Out, conn: ConnHeader) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map.insert(DATE, HeaderValue::from_static("D"));
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::from_u16(status).unwrap(),
            &map,
            None,
            framing,
            conn,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn framing_headers_are_ours() {
        let h = head(
            200,
            &[("content-length", "99"), ("x-a", "1")],
            Out::Length(5),
            ConnHeader::None,
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: D\r\ncontent-length: 5\r\n\r\n"
        );
        let h = head(
            200,
            &[("transfer-encoding", "gzip")],
            Out::Chunked,
            ConnHeader::Close,
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: D\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let h = head(
            304,
            &[("content-length", "7")],
            Out::NoBody { keep_length: true },
            ConnHeader::None,
        );
        assert!(h.contains("content-length: 7\r\n"), "{h}");
    }

    /// An upstream's kept header lines: written as received after the
    /// gateway's headers, which replace lines of the same name; framing and
    /// `Connection` stay the writer's; the upstream's `Date` is kept.
    #[test]
    fn raw_upstream_lines_follow_the_gateways_headers() {
        let wire: &'static [u8] = b"HTTP/1.1 200 OK\r\nServer: up\r\nX-Request-Id: theirs\r\nContent-Length: 99\r\nDate: Sat, 28 Nov 2026 10:00:00 GMT\r\nConnection: keep-alive\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n";
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut slots);
        assert!(resp.parse(wire).is_ok());
        let raw = RawHeaders::record(wire, resp.headers).over(bytes::Bytes::from_static(wire));
        let mut map = HeaderMap::new();
        map.insert("x-request-id", HeaderValue::from_static("ours"));
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::OK,
            &map,
            Some(&raw),
            Out::Length(5),
            ConnHeader::Close,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nx-request-id: ours\r\nServer: up\r\nDate: Sat, 28 Nov 2026 10:00:00 GMT\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn body_framing_rules() {
        let exact = SizeHint::with_exact(3);
        let open = SizeHint::default();
        assert_eq!(
            body_framing(false, false, StatusCode::OK, &exact),
            Out::Length(3)
        );
        assert_eq!(
            body_framing(false, false, StatusCode::OK, &open),
            Out::Chunked
        );
        assert_eq!(
            body_framing(false, true, StatusCode::OK, &open),
            Out::UntilClose
        );
        assert_eq!(
            body_framing(true, false, StatusCode::OK, &exact),
            Out::NoBody { keep_length: true }
        );
        assert_eq!(
            body_framing(false, false, StatusCode::NO_CONTENT, &exact),
            Out::NoBody { keep_length: false }
        );
    }

    #[test]
    fn chunk_heads_are_lower_hex() {
        let mut out = Vec::new();
        chunk_head(&mut out, 0x1af);
        chunk_head(&mut out, 0);
        assert_eq!(out, b"1af\r\n0\r\n");
    }

    #[test]
    fn date_is_an_imf_fixdate() {
        let mut d = Vec::new();
        with_date(|b| d.extend_from_slice(b));
        assert_eq!(d.len(), 29);
        assert!(d.ends_with(b" GMT"));
    }
}
