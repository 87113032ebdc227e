//! Issue 2, framing and header hygiene, with raw bytes over a socket.
//!
//! The upstream sits behind a byte tap, so each test can assert exactly what
//! went over the wire to it: nothing at all for a refused request, and a
//! re-serialized, well-formed request for an accepted one.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::*;

/// A TCP relay in front of an upstream stub that keeps every byte sent
/// towards the upstream.
struct Tap {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Tap {
    fn bytes(&self) -> Vec<u8> {
        self.sent.lock().expect("lock").clone()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tap(target: SocketAddr) -> Tap {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sent2 = sent.clone();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let sent = sent2.clone();
            tokio::spawn(async move {
                let Ok(up) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = up.into_split();
                let back = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    sent.lock().expect("lock").extend_from_slice(&buf[..n]);
                    if uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = uw.shutdown().await;
                let _ = back.await;
            });
        }
    });
    Tap { addr, sent, task }
}

struct Setup {
    gw: Gw,
    up: Upstream,
    tap: Tap,
}

impl Setup {
    /// Sends raw bytes, returns the raw reply.
    async fn send(&self, bytes: &[u8]) -> String {
        raw(self.gw.addr, bytes).await
    }

    /// Must be refused with one of `statuses` and put nothing on the wire
    /// to the upstream.
    async fn refused(&self, bytes: &[u8], statuses: &[u16]) -> String {
        let before = (self.up.count(), self.tap.bytes().len());
        let r = self.send(bytes).await;
        let shown = String::from_utf8_lossy(bytes);
        assert!(
            statuses.contains(&raw_status(&r)),
            "{shown:?}: expected {statuses:?}, got: {r}"
        );
        assert_eq!(
            (self.up.count(), self.tap.bytes().len()),
            before,
            "{shown:?} reached the upstream: {}",
            self.tap.text()
        );
        r
    }
}

/// One upstream (behind a tap) on `/**` with a 1 KiB body limit.
async fn setup() -> Setup {
    setup_with("").await
}

async fn setup_with(extra: &str) -> Setup {
    let up = echo_upstream("up").await;
    let tap = tap(up.addr).await;
    let ups = format!("  up: {{ endpoints: [\"{}\"] }}\n", tap.addr);
    let routes = "  - { id: all, match: { path: /** }, upstream: up, max_body: 1KiB }\n";
    let gw = start_gateway(&format!("{extra}{}", config(&ups, routes))).await;
    Setup { gw, up, tap }
}

fn has_header(r: &Recorded, name: &str) -> bool {
    r.headers.contains_key(name)
}

/// Content-Length together with Transfer-Encoding: refused with 400 by the
/// HTTP/1.1 codec before anything is sent, and the connection closed, so
/// nothing after it on the client's connection is ever parsed as a request
/// (no CL.TE / TE.CL smuggling).
#[tokio::test]
async fn content_length_with_transfer_encoding_is_never_ambiguous_upstream() {
    let s = setup().await;
    for req in [
        &b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let before = s.up.count();
        // `raw` returns once the gateway closed the connection (or after 5 s).
        let r = s.send(req).await;
        assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "one response only: {r}");
        assert_eq!(raw_status(&r), 400, "{r}");
        assert!(r.contains("both Content-Length and Transfer-Encoding"), "{r}");
        assert_eq!(s.up.count(), before);
        assert!(s.up.requests().iter().all(|q| q.uri != "/smuggled"));
        assert!(!s.tap.text().contains("smuggled"));
    }
}

#[tokio::test]
async fn transfer_encoding_other_than_chunked_is_refused() {
    let s = setup().await;
    for te in [
        "gzip",
        "identity",
        "gzip, chunked",
        "chunked, gzip",
        "xchunked",
        "chunked;q=1",
    ] {
        let req = format!(
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\nConnection: close\r\n\r\n0\r\n\r\n"
        );
        s.refused(req.as_bytes(), &[400, 501]).await;
    }
    // two Transfer-Encoding headers, the last not chunked
    s.refused(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n0\r\n\r\n",
        &[400, 501],
    )
    .await;
}

#[tokio::test]
async fn several_or_invalid_content_lengths_are_refused() {
    let s = setup().await;
    for cl in [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: 3, 4",
        "Content-Length: abc",
        "Content-Length: -1",
        "Content-Length: +3",
        "Content-Length: 0x3",
        "Content-Length: 3 3",
        "Content-Length: 99999999999999999999999",
        "Content-Length:",
    ] {
        let req = format!("POST /x HTTP/1.1\r\nHost: a\r\n{cl}\r\nConnection: close\r\n\r\nabcd");
        s.refused(req.as_bytes(), &[400]).await;
    }
}

/// The issue asks to refuse several Content-Length values. The codec
/// refuses differing ones and `3, 3`, but merges repeated identical lines
/// into one (RFC 9112 6.3 allows this): the upstream gets exactly one
/// Content-Length and the body.
#[tokio::test]
async fn repeated_identical_content_length_reaches_upstream_once() {
    let s = setup().await;
    s.refused(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
        &[400],
    )
    .await;
    let r = s
        .send(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        .await;
    match raw_status(&r) {
        400 => assert_eq!(s.up.count(), 0),
        200 => {
            let q = s.up.last();
            assert_eq!(&q.body[..], b"abc");
            assert_eq!(q.headers.get_all("content-length").iter().count(), 1);
            let wire = s.tap.text().to_ascii_lowercase();
            assert_eq!(wire.matches("content-length").count(), 1, "{wire}");
        }
        other => panic!("unexpected {other}: {r}"),
    }
}

#[tokio::test]
async fn malformed_header_lines_are_refused() {
    let s = setup().await;
    for h in [
        // obs-fold
        &b"X-A: a\r\n b"[..],
        b"X-A: a\r\n\tb",
        // NUL and control bytes
        b"X-A: a\x00b",
        b"X-A: a\x01b",
        b"X-A: a\x7fb",
        b"X-\x00A: b",
        // bare CR inside a value
        b"X-A: a\rb",
        // empty or invalid names
        b": empty-name",
        b"X-A : space-before-colon",
        b"X(A): b",
        b"X A: b",
        b"no-colon-at-all",
    ] {
        let mut req = b"GET /x HTTP/1.1\r\nHost: a\r\n".to_vec();
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        s.refused(&req, &[400]).await;
    }
}

#[tokio::test]
async fn bad_chunk_sizes_are_refused() {
    let s = setup().await;
    for body in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"-1\r\nhello\r\n0\r\n\r\n",
        b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        b"5 5\r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut req =
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                .to_vec();
        req.extend_from_slice(body);
        let before = s.up.count();
        let r = s.send(&req).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(raw_status(&r), 400, "{shown:?}: {r}");
        // The head may already be on its way upstream when the body turns
        // out bad (bodies stream); the upstream must never get a complete
        // request with a body.
        assert!(
            s.up.requests()[before..].iter().all(|q| q.body.is_empty()),
            "{shown:?}"
        );
        assert!(!s.tap.text().contains("hello"), "{shown:?}");
    }
}

#[tokio::test]
async fn host_is_required_once() {
    let s = setup().await;
    s.refused(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n", &[400])
        .await;
    s.refused(
        b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        &[400],
    )
    .await;
    s.refused(
        b"GET /x HTTP/1.1\r\nHost: a\r\nhost: a\r\nConnection: close\r\n\r\n",
        &[400],
    )
    .await;
    for bad in ["", "a b", "a/b", "a@b", "a\tb"] {
        let req = format!("GET /x HTTP/1.1\r\nHost: {bad}\r\nConnection: close\r\n\r\n");
        s.refused(req.as_bytes(), &[400]).await;
    }
}

/// The head parser (httparse) accepts bare LF as a line ending (as RFC 9112
/// allows a recipient to). That is safe here because the upstream never sees the
/// client's bytes: it receives a re-serialized request with CRLF endings.
#[tokio::test]
async fn bare_lf_line_endings_are_reserialized_with_crlf() {
    let s = setup().await;
    let r = s
        .send(b"GET /lf HTTP/1.1\nHost: a\nX-A: b\nConnection: close\n\n")
        .await;
    match raw_status(&r) {
        200 => {
            assert_eq!(s.up.last().uri, "/lf");
            let wire = s.tap.bytes();
            let head_end = wire
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a CRLF-terminated head upstream");
            let head = &wire[..head_end + 2];
            for (i, &b) in head.iter().enumerate() {
                if b == b'\n' {
                    assert_eq!(head[i - 1], b'\r', "bare LF upstream: {head:?}");
                }
            }
        }
        400 => assert_eq!(s.tap.bytes().len(), 0),
        other => panic!("unexpected {other}: {r}"),
    }
}

#[tokio::test]
async fn headers_named_in_connection_cannot_remove_gateway_headers() {
    let s = setup().await;
    let r = s
        .send(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Forwarded-For, x-request-id, X-REAL-IP, x-secret, X-Forwarded-Proto\r\nX-Forwarded-For: 6.6.6.6\r\nX-Secret: s\r\nX-Request-Id: client-id-1\r\n\r\n")
        .await;
    assert_eq!(raw_status(&r), 200, "{r}");
    let q = s.up.last();
    assert_eq!(q.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(q.headers["x-real-ip"], "127.0.0.1");
    assert_eq!(q.headers["x-forwarded-proto"], "http");
    assert!(!has_header(&q, "x-secret"));
    assert!(!has_header(&q, "connection") || q.headers["connection"] == "keep-alive");
    // The client's own id was named in Connection: it is dropped, and the
    // gateway still sends one (a fresh one) upstream and back.
    let id = q.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(!id.is_empty());
    assert!(r
        .to_ascii_lowercase()
        .contains(&format!("x-request-id: {id}")));
}

#[tokio::test]
async fn never_forwarded_headers() {
    let s = setup().await;
    let r = s
        .send(
            b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nProxy: http://127.0.0.1:1/\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nProxy-Authorization: Basic eDp5\r\nTE: gzip\r\nTrailer: X-A\r\nX-Kept: yes\r\n\r\n",
        )
        .await;
    assert_eq!(raw_status(&r), 200, "no 101 for h2c: {r}");
    let q = s.up.last();
    assert_eq!(q.headers["x-kept"], "yes");
    let wire = s.tap.text().to_ascii_lowercase();
    for name in [
        "upgrade",
        "http2-settings",
        "proxy",
        "proxy-connection",
        "keep-alive",
        "x-original-url",
        "x-rewrite-url",
        "proxy-authorization",
        "te",
        "trailer",
    ] {
        assert!(!has_header(&q, name), "{name} reached the upstream");
        assert!(!wire.contains(&format!("\r\n{name}:")), "{name}: {wire}");
    }
    assert!(!wire.contains("h2c") && !wire.contains("/admin"), "{wire}");
}

#[tokio::test]
async fn oversized_request_headers_get_431() {
    let s = setup().await;
    let big = "a".repeat(40 * 1024);
    let req = format!("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let r = s.refused(req.as_bytes(), &[431]).await;
    assert!(
        r.contains("\"error\":\"headers_too_large\""),
        "JSON body expected: {r}"
    );
    // far beyond the limit the parser itself refuses (a bare 431)
    let huge = "a".repeat(200 * 1024);
    let req = format!("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {huge}\r\nConnection: close\r\n\r\n");
    s.refused(req.as_bytes(), &[431]).await;
    // many small headers adding up to more than the limit
    let mut req = String::from("GET /x HTTP/1.1\r\nHost: a\r\n");
    for i in 0..90 {
        req.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(400)));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.refused(req.as_bytes(), &[431]).await;
    // under the limit passes intact
    let ok = "c".repeat(16 * 1024);
    let req = format!("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {ok}\r\nConnection: close\r\n\r\n");
    let r = s.send(req.as_bytes()).await;
    assert_eq!(raw_status(&r), 200, "{}", &r[..r.len().min(200)]);
    assert_eq!(s.up.last().headers["x-big"], ok.as_str());
}

#[tokio::test]
async fn body_over_max_body_gets_413() {
    let s = setup().await;
    // Declared too large: refused before anything is forwarded.
    let body = "x".repeat(2048);
    let req = format!(
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = s.refused(req.as_bytes(), &[413]).await;
    assert!(r.contains("payload_too_large"), "{r}");
    // Declared too large, body never sent: still refused at once.
    s.refused(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n",
        &[413],
    )
    .await;
    // Chunked: the limit holds on the bytes actually read.
    let mut req =
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'y'; 512]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let before = s.up.count();
    let r = s.send(&req).await;
    assert_eq!(raw_status(&r), 413, "{r}");
    assert!(r.contains("payload_too_large"), "{r}");
    // Bodies stream, so the head may have left; the upstream must never get
    // more than the limit nor a complete (terminated) body.
    assert!(s.up.requests()[before..]
        .iter()
        .all(|q| q.body.len() <= 1024));
    assert!(!s.tap.text().contains("\r\n0\r\n\r\n"), "{}", s.tap.text());
    // At the limit passes, chunked or not, and arrives exactly.
    let body = "z".repeat(1024);
    let req = format!(
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{body}"
    );
    let r = s.send(req.as_bytes()).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert_eq!(&s.up.last().body[..], body.as_bytes());
    let req = format!(
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n200\r\n{}\r\n200\r\n{}\r\n0\r\n\r\n",
        &body[..512],
        &body[512..]
    );
    let r = s.send(req.as_bytes()).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert_eq!(&s.up.last().body[..], body.as_bytes());
}

/// Over HTTP/1.1 upstreams, hyper only sends trailers declared in a
/// `Trailer` header, which is hop-by-hop: client trailers never reach an
/// HTTP/1.1 upstream at all. Over HTTP/2 they pass, cleaned of the
/// headers the gateway owns.
#[tokio::test]
async fn trailers_cannot_carry_gateway_headers() {
    let chunked_with_trailers = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Forwarded-For, X-Request-Id\r\nX-Request-Id: head-id\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: trailer-id\r\nX-Real-IP: 6.6.6.6\r\nAuthorization: Bearer x\r\nHost: evil\r\nContent-Length: 99\r\n\r\n";

    // HTTP/1.1 upstream
    let s = setup().await;
    let r = s.send(chunked_with_trailers).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    let q = s.up.last();
    assert_eq!(&q.body[..], b"hello");
    assert_eq!(q.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(q.headers["x-request-id"], "head-id");
    let wire = s.tap.text();
    assert!(
        !wire.contains("6.6.6.6") && !wire.contains("trailer-id"),
        "{wire}"
    );
    if let Some(t) = &q.trailers {
        for name in [
            "x-forwarded-for",
            "x-request-id",
            "x-real-ip",
            "authorization",
            "host",
            "content-length",
        ] {
            assert!(!t.contains_key(name), "{name} in trailers");
        }
    }

    // HTTP/2 upstream
    let up = start_upstream(
        Arc::new(|_r: &Recorded| {
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"h2")))
        }),
        true,
    )
    .await;
    let ups = format!(
        "  up: {{ endpoints: [\"{}\"], protocol: http2 }}\n",
        up.addr
    );
    let gw = start_gateway(&config(
        &ups,
        "  - { id: all, match: { path: /** }, upstream: up }\n",
    ))
    .await;
    let r = raw(gw.addr, chunked_with_trailers).await;
    assert_eq!(raw_status(&r), 200, "{r}");
    let q = up.last();
    assert_eq!(&q.body[..], b"hello");
    assert_eq!(q.headers["x-request-id"], "head-id");
    assert_eq!(q.headers["x-forwarded-for"], "127.0.0.1");
    let t = q.trailers.clone().unwrap_or_default();
    for name in [
        "x-forwarded-for",
        "x-request-id",
        "x-real-ip",
        "authorization",
        "host",
        "content-length",
    ] {
        assert!(!t.contains_key(name), "{name} in trailers: {t:?}");
    }
    assert_eq!(
        t.get("x-checksum").map(|v| v.as_bytes()),
        Some(&b"abc"[..]),
        "{t:?}"
    );
}
