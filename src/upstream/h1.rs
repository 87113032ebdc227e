//! The upstream HTTP/1.1 client for requests without a body (most of
//! them): the request's own task writes the head on a pooled socket and
//! reads the response head; the response body is decoded from the same
//! socket as the client reads it, and the connection goes back to the pool
//! at its end. No connection task, no channel, no wake-up of another task.
//!
//! Requests with a body, upgrades and HTTP/2 go through hyper's client
//! (see [`super::pool`]), which writes a body while it reads the response.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant, Sleep};

use super::body::UpstreamBody;
use super::endpoint::Endpoint;
use crate::proxy::h1::decode::{Decoder, Step};
use crate::proxy::h1::raw::{Kind, RawHeaders};
use crate::proxy::h1::{self, buffers};

/// Header lines a response may carry.
const MAX_HEADERS: usize = 128;
/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 128 * 1024;
/// Largest response trailer section accepted.
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// A pooled upstream socket and what was read past the last response.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    /// The response-head deadline of each request, kept for the
    /// connection's life (see [`h1::within`]).
    timer: Pin<Box<Sleep>>,
}

impl RawConn {
    pub fn new(stream: TcpStream) -> RawConn {
        RawConn {
            stream,
            buf: BytesMut::new(),
            // Set for real by the first request.
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))),
        }
    }

    /// Whether an idle connection can take a request: nothing may have
    /// arrived on it since its last response (a close, a reset, or stray
    /// bytes). Reads the readiness the event loop already recorded; no
    /// system call.
    pub fn is_usable(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.buf.is_empty() && self.stream.poll_read_ready(&mut cx).is_pending()
    }

    /// Called when the connection goes idle: its buffer goes back to the
    /// thread's spares.
    pub fn park(&mut self) {
        buffers::release_read(&mut self.buf);
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// The connection failed or closed before any byte of a response came
    /// back: the request may be sent again when that is safe.
    Unanswered(io::Error),
    /// It failed after part of a response, or the response was malformed.
    Failed(io::Error),
    /// No response head by the deadline.
    TimedOut,
}

impl ExchangeError {
    pub fn into_io(self) -> io::Error {
        match self {
            ExchangeError::Unanswered(e) | ExchangeError::Failed(e) => e,
            ExchangeError::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "no response head by the deadline")
            }
        }
    }
}

/// Whether a request can take the inline path: no body to stream and no
/// protocol switch.
pub fn suits(req: &Request<UpstreamBody>) -> bool {
    http_body::Body::is_end_stream(req.body())
        && req.method() != Method::CONNECT
        && !crate::proxy::headers::has(req.headers(), &http::header::UPGRADE)
}

/// Serializes the request head (origin-form target, HTTP/1.1).
pub fn encode_request(out: &mut Vec<u8>, req: &Request<UpstreamBody>) {
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A response head and how its body is framed.
pub struct Head {
    /// Status and version; headers only those the gateway sets.
    pub parts: http::response::Parts,
    /// The upstream's header lines.
    pub raw: RawHeaders,
    pub decoder: Decoder,
    /// The connection can carry another request after this body.
    pub reusable: bool,
}

/// Writes `request` and reads the response head (interim 1xx answers
/// skipped), both by `until`.
pub async fn exchange(
    conn: &mut RawConn,
    request: &[u8],
    head_request: bool,
    until: Instant,
) -> Result<Head, ExchangeError> {
    let RawConn { stream, buf, timer } = conn;
    h1::within(
        timer.as_mut(),
        until,
        write_and_read(stream, buf, request, head_request),
    )
    .await
    .unwrap_or(Err(ExchangeError::TimedOut))
}

async fn write_and_read(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    request: &[u8],
    head_request: bool,
) -> Result<Head, ExchangeError> {
    if let Err(e) = stream.write_all(request).await {
        return Err(ExchangeError::Unanswered(e));
    }
    let mut answered = false;
    loop {
        if !buf.is_empty() {
            answered = true;
            match parse_head(buf, head_request) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(ExchangeError::Failed(e)),
            }
        }
        buffers::ready_to_read(buf);
        match stream.read_buf(buf).await {
            Ok(0) => {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed the connection",
                );
                return Err(if answered {
                    ExchangeError::Failed(e)
                } else {
                    ExchangeError::Unanswered(e)
                });
            }
            Ok(_) => {}
            Err(e) if answered => return Err(ExchangeError::Failed(e)),
            Err(e) => return Err(ExchangeError::Unanswered(e)),
        }
    }
}

fn malformed(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One final response head from the front of `buf`; `Ok(None)`: read more.
/// Interim responses (1xx other than 101) are dropped on the way.
fn parse_head(buf: &mut BytesMut, head_request: bool) -> io::Result<Option<Head>> {
    loop {
        let mut slots: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS] =
            [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
        let len = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(malformed("upstream response head too large"))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(malformed("malformed upstream response head")),
        };
        let code = resp.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| malformed("invalid upstream status"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            // The inline client never asks for an upgrade.
            return Err(malformed(
                "101 from the upstream without an upgrade request",
            ));
        }
        if status.is_informational() {
            let _ = buf.split_to(len);
            continue;
        }
        let version = match resp.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        // The header lines stay as received (see `proxy::h1::raw`); the
        // response's own map starts empty, for the headers the gateway sets.
        let recorded = RawHeaders::record(buf, resp.headers);
        let mut raw = recorded.over(buf.split_to(len).freeze());
        let (decoder, mut reusable) = framing(head_request, version, status, &mut raw)?;
        reusable &= h1::connection_options_of(version, raw.values(Kind::Connection)).0;
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = buffers::header_map(2);
        return Ok(Some(Head {
            parts,
            raw,
            decoder,
            reusable,
        }));
    }
}

/// RFC 9112 section 6.3, for responses.
fn framing(
    head_request: bool,
    version: Version,
    status: StatusCode,
    headers: &mut RawHeaders,
) -> io::Result<(Decoder, bool)> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Decoder::Done, true));
    }
    if version == Version::HTTP_11 && headers.has(Kind::TransferEncoding) {
        let chunked_last = headers
            .values(Kind::TransferEncoding)
            .last()
            .is_some_and(|v| {
                v.rsplit(|&c| c == b',')
                    .next()
                    .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            });
        // Both framing headers: decoded as chunked, and the connection
        // is not trusted with another request (RFC 9112 6.3).
        let both = headers.has(Kind::ContentLength);
        headers.remove(Kind::ContentLength);
        return Ok(if chunked_last {
            (Decoder::ChunkSize, !both)
        } else {
            (Decoder::UntilClose, false)
        });
    }
    let mut len = None;
    for v in headers.values(Kind::ContentLength) {
        let n = h1::parse_length(v).ok_or_else(|| malformed("invalid upstream Content-Length"))?;
        if len.is_some_and(|l| l != n) {
            return Err(malformed("conflicting upstream Content-Length"));
        }
        len = Some(n);
    }
    Ok(match len {
        Some(n) => (Decoder::length(n), true),
        None => (Decoder::UntilClose, false),
    })
}

/// Where a finished connection goes back: endpoint, worker slot, the most
/// idle connections kept.
pub type Home = (Arc<Endpoint>, usize, usize);

/// A response body read straight from the upstream socket.
#[derive(Debug)]
pub struct RawBody {
    conn: Option<RawConn>,
    decoder: Decoder,
    reusable: bool,
    home: Option<Home>,
}

impl RawBody {
    pub fn new(conn: RawConn, decoder: Decoder, reusable: bool, home: Home) -> RawBody {
        let mut body = RawBody {
            conn: Some(conn),
            decoder,
            reusable,
            home: Some(home),
        };
        if body.decoder.is_done() {
            body.finish();
        }
        body
    }

    /// The body is complete: a clean connection goes back to the pool.
    fn finish(&mut self) {
        self.decoder = Decoder::Done;
        let (Some(conn), Some((ep, slot, max_idle))) = (self.conn.take(), self.home.take()) else {
            return;
        };
        if self.reusable && conn.buf.is_empty() {
            ep.conns.put_raw(slot, conn, max_idle);
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.conn = None;
        self.decoder = Decoder::Done;
        Poll::Ready(Some(Err(e)))
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.decoder.decode(&mut conn.buf, MAX_TRAILER_BYTES) {
                Ok(Step::Frame(f)) => {
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(f)));
                }
                Ok(Step::End) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(_) => return self.fail(malformed("malformed upstream body")),
            }
            buffers::ready_to_read(&mut conn.buf);
            match ready!(pin!(conn.stream.read_buf(&mut conn.buf)).poll(cx)) {
                Ok(0) => match self.decoder.eof() {
                    Ok(()) => {
                        self.reusable = false;
                        self.finish();
                        return Poll::Ready(None);
                    }
                    Err(_) => {
                        return self.fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "upstream closed mid-body",
                        ))
                    }
                },
                Ok(_) => {}
                Err(e) => return self.fail(e),
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8], head_request: bool) -> io::Result<Option<Head>> {
        let mut buf = BytesMut::from(raw);
        parse_head(&mut buf, head_request)
    }

    #[test]
    fn response_framing() {
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::Length(5), true));
        let h = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::ChunkSize, false));
        assert!(!h.raw.has(Kind::ContentLength));
        assert!(head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false).is_err());
        let h = head(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::UntilClose, false));
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!((h.decoder, h.reusable), (Decoder::Done, true));
        let h = head(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!h.reusable);
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.reusable);
        assert!(head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
        assert!(head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
    }

    #[test]
    fn interim_answers_are_skipped() {
        let h = head(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.parts.status, StatusCode::NO_CONTENT);
        assert!(head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2", false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn request_heads_are_origin_form() {
        let req = Request::builder()
            .method("GET")
            .uri("/a?b=1")
            .header("host", "up")
            .body(UpstreamBody::empty())
            .unwrap();
        let mut out = Vec::new();
        encode_request(&mut out, &req);
        assert_eq!(out, b"GET /a?b=1 HTTP/1.1\r\nhost: up\r\n\r\n");
        assert!(suits(&req));
    }
}
