//! Connection limits and deadlines: slowloris headers, trickling bodies,
//! idle connections (HTTP/1.1 and HTTP/2), and `max_connections`.

mod support;
use support::gated::gated_upstream;
use support::*;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn limits_config(upstream: SocketAddr, limits: &str, listener_extra: &str) -> String {
    format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\n{listener_extra}limits:\n{limits}upstreams:\n  up: {{ endpoints: [\"{upstream}\"] }}\nroutes:\n  - id: all\n    match: {{ path: /** }}\n    upstream: up\n"
    )
}

/// Writes `bytes` one at a time, `gap` apart, until the peer closes the
/// connection or answers. Returns how many bytes were written and what the
/// gateway sent back (if anything).
async fn trickle(stream: TcpStream, bytes: &[u8], gap: Duration) -> (usize, Vec<u8>) {
    let (mut rd, mut wr) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut out)).await;
        out
    });
    let mut written = 0;
    for b in bytes {
        if reader.is_finished() || wr.write_all(&[*b]).await.is_err() {
            break;
        }
        written += 1;
        tokio::time::sleep(gap).await;
    }
    let _ = wr.shutdown().await;
    let got = reader.await.expect("reader");
    (written, got)
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let up = echo_upstream("never").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  header_read_timeout: 300ms\n  idle_timeout: 60s\n",
        "",
    ))
    .await;
    // Every single read arrives well within the deadline; only the total
    // exceeds it. 200 bytes at 40 ms is 8 s: far beyond 300 ms.
    let mut head = b"GET /x HTTP/1.1\r\nHost: example\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 200 - head.len()));
    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let (written, reply) = trickle(stream, &head, Duration::from_millis(40)).await;
    eprintln!("slowloris: wrote {written} of {} header bytes", head.len());
    assert!(
        written < head.len(),
        "the gateway let a {written}-byte header trickle on"
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || raw_status(&reply) == 408,
        "unexpected reply: {reply}"
    );
    assert_eq!(up.count(), 0, "the upstream received something");
}

#[tokio::test]
async fn slow_http2_preface_is_cut_off() {
    // Before the HTTP version is known, the idle watchdog is the guard.
    let up = echo_upstream("never").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  header_read_timeout: 300ms\n  idle_timeout: 300ms\n",
        "",
    ))
    .await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let (written, _) = trickle(stream, &preface[..], Duration::from_millis(400)).await;
    assert!(written < preface.len(), "a slow preface was never cut off");
    assert_eq!(up.count(), 0);
}

/// Sends a request head declaring a body, then trickles the body.
async fn trickled_body(gw: SocketAddr, chunked: bool) -> (usize, String) {
    let head = if chunked {
        "POST /upload HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n"
    } else {
        "POST /upload HTTP/1.1\r\nHost: example\r\nContent-Length: 200\r\n\r\n"
    };
    let mut stream = TcpStream::connect(gw).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    let body: Vec<u8> = if chunked {
        (0..100)
            .flat_map(|_| b"1\r\nx\r\n".iter().copied())
            .collect()
    } else {
        vec![b'x'; 200]
    };
    // 40 ms per byte: the whole body would take many seconds.
    let (written, reply) = trickle(stream, &body, Duration::from_millis(40)).await;
    (written, String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test]
async fn trickling_body_is_cut_off() {
    let up = echo_upstream("body").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  body_read_timeout: 500ms\n  idle_timeout: 60s\n",
        "",
    ))
    .await;
    for chunked in [false, true] {
        let (written, reply) = trickled_body(gw.addr, chunked).await;
        eprintln!("chunked={chunked}: wrote {written} body bytes; reply: {reply:?}");
        assert_eq!(raw_status(&reply), 408, "chunked={chunked}: {reply}");
        assert!(reply.contains("request_timeout"), "{reply}");
        assert!(
            written < 200,
            "chunked={chunked}: the body was never cut off"
        );
    }
    // Whatever reached the upstream, no complete body did.
    for r in up.requests() {
        assert!(
            r.body.len() < 100,
            "upstream got {} body bytes",
            r.body.len()
        );
    }
}

#[tokio::test]
async fn idle_http1_connection_is_closed_and_busy_one_is_not() {
    let gated = gated_upstream().await;
    let gw = start_gateway(&limits_config(
        gated.addr,
        "  idle_timeout: 300ms\n  header_read_timeout: 10s\n",
        "",
    ))
    .await;
    // A request that takes longer than the idle timeout is not cut.
    let mut busy = TcpStream::connect(gw.addr).await.expect("connect");
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("write");
    assert!(gated.wait_arrived(1).await);
    // Waiting for something NOT to happen: three idle periods.
    tokio::time::sleep(Duration::from_millis(900)).await;
    gated.release.send_replace(true);
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), busy.read(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(raw_status(&reply), 200, "{reply}");
    // Now idle: the gateway closes the keep-alive connection.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut rest))
        .await
        .expect("idle keep-alive connection closed")
        .expect("read");
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1"));
}

/// The idle timeout counts from the end of the last request, not from the
/// first: a connection kept busy past several idle periods by short requests
/// stays open (the connection's timer fires early and is moved on), then
/// closes once it really is idle.
#[tokio::test]
async fn idle_timeout_counts_from_the_last_request() {
    let up = echo_upstream("ok").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  idle_timeout: 300ms
  header_read_timeout: 10s
",
        "",
    ))
    .await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    let began = std::time::Instant::now();
    // Requests 150 ms apart for three idle periods: the gap is the
    // behaviour under test, not a wait for something to happen.
    while began.elapsed() < Duration::from_millis(900) {
        assert_eq!(request_on(&mut s).await, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let last = std::time::Instant::now();
    assert_eq!(request_on(&mut s).await, 200);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("idle keep-alive connection closed")
        .expect("read");
    assert!(
        last.elapsed() >= Duration::from_millis(300),
        "closed {:?} after the last request, before the idle timeout",
        last.elapsed()
    );
}

#[tokio::test]
async fn idle_http2_connection_is_closed() {
    let up = echo_upstream("h2").await;
    let gw = start_gateway(&limits_config(up.addr, "  idle_timeout: 300ms\n", "")).await;
    let (mut send, conn) = h2_connect(gw.addr).await;
    let resp = send
        .send_request(
            Request::get(format!("http://{}/x", gw.addr))
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await;
    // The connection future ends when the gateway sends GOAWAY and closes.
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection stayed open");
    assert!(send.is_closed() || send.ready().await.is_err());
}

/// Sends one keep-alive request on `s` and returns the status.
async fn request_on(s: &mut TcpStream) -> u16 {
    s.write_all(b"GET /x HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // The echo body is "ok"; read until the whole short response is in.
    while !got.ends_with(b"ok") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    raw_status(&String::from_utf8_lossy(&got))
}

#[tokio::test]
async fn max_connections_holds_the_third_until_one_closes() {
    let up = echo_upstream("ok").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  idle_timeout: 60s\n",
        "    max_connections: 2\n",
    ))
    .await;
    let mut a = TcpStream::connect(gw.addr).await.expect("connect a");
    let mut b = TcpStream::connect(gw.addr).await.expect("connect b");
    assert_eq!(request_on(&mut a).await, 200);
    assert_eq!(request_on(&mut b).await, 200);

    // The kernel completes the handshake, but the gateway does not serve it.
    let mut c = TcpStream::connect(gw.addr).await.expect("connect c");
    c.write_all(b"GET /x HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(500), c.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served");
    assert_eq!(up.count(), 2);

    // One closes: the third is accepted and answered.
    drop(a);
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("third connection served after one closed")
        .expect("read");
    assert_eq!(raw_status(&String::from_utf8_lossy(&buf[..n])), 200);
    assert_eq!(request_on(&mut b).await, 200);
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn slowloris_on_a_kept_alive_connection_is_cut_off() {
    let up = echo_upstream("ok").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  header_read_timeout: 300ms\n  idle_timeout: 60s\n",
        "",
    ))
    .await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    assert_eq!(request_on(&mut s).await, 200);
    let mut head = b"GET /second HTTP/1.1\r\nHost: example\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 200 - head.len()));
    let (written, reply) = trickle(s, &head, Duration::from_millis(40)).await;
    eprintln!("keep-alive slowloris: wrote {written} of {}", head.len());
    assert!(written < head.len(), "the second head trickled on");
    assert!(reply.is_empty() || raw_status(&String::from_utf8_lossy(&reply)) == 408);
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn silent_connection_is_closed_by_the_header_deadline() {
    let up = echo_upstream("never").await;
    let gw = start_gateway(&limits_config(
        up.addr,
        "  header_read_timeout: 300ms\n  idle_timeout: 60s\n",
        "",
    ))
    .await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "a connection that sends nothing is held open"
    );
}

/// An upstream that answers `/stream` with ten chunks 100 ms apart (a whole
/// second) and anything else at once with one chunk.
async fn slow_stream_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let n = if req.uri().path() == "/stream" { 10 } else { 1 };
                    let chunks = futures_util::stream::unfold(0u32, move |i| async move {
                        if i == n {
                            return None;
                        }
                        if n > 1 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let frame = hyper::body::Frame::data(Bytes::from(format!("chunk{i};")));
                        Some((Ok::<_, Infallible>(frame), i + 1))
                    });
                    Ok::<_, Infallible>(Response::new(http_body_util::StreamBody::new(Box::pin(
                        chunks,
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_response_streaming_longer_than_the_idle_timeout_is_not_cut() {
    // Ten chunks 100 ms apart: a whole second, while the gateway's idle
    // timeout is 300 ms.
    let (addr, task) = slow_stream_upstream().await;
    let gw = start_gateway(&limits_config(addr, "  idle_timeout: 300ms\n", "")).await;
    for h2 in [false, true] {
        let body = if h2 {
            let resp = h2_get(gw.addr, "/stream").await;
            resp.into_body().collect().await.map(|c| c.to_bytes())
        } else {
            let resp = client()
                .get(gw.url("/stream").parse().expect("uri"))
                .await
                .expect("response");
            resp.into_body().collect().await.map(|c| c.to_bytes())
        };
        let body = body.unwrap_or_else(|e| panic!("h2={h2}: body cut: {e}"));
        let want: String = (0..10).map(|i| format!("chunk{i};")).collect();
        assert_eq!(String::from_utf8_lossy(&body), want, "h2={h2}");
    }
    task.abort();
}

/// A client that asks for a large answer and then reads nothing can not
/// hold the connection, nor the upstream response behind it: a write that
/// makes no progress for `idle_timeout` closes both.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<u64>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = [0u8; 4096];
        let _ = s.read(&mut head).await;
        let len: u64 = 256 << 20;
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes())
            .await;
        let block = vec![b'x'; 64 << 10];
        let mut sent = 0u64;
        while sent < len {
            if s.write_all(&block).await.is_err() {
                break;
            }
            sent += block.len() as u64;
        }
        let _ = closed_tx.send(sent);
    });
    let gw = start_gateway(&limits_config(addr, "  idle_timeout: 300ms\n", "")).await;
    let mut c = TcpStream::connect(gw.addr).await.expect("connect");
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    // Nothing is read from here on.
    let sent = tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("the upstream connection was closed in time")
        .expect("upstream task");
    assert!(sent < 256 << 20, "the whole body went through: {sent}");
    drop(c);
}

/// A request that outlasts the idle timeout does not make its connection's
/// task spin, on HTTP/1.1 or HTTP/2: the idle check waits for the next
/// deadline instead of firing again at once while the request runs.
/// (Measured on the binary: its CPU time while one request is held for
/// 1.5 s with a 100 ms idle timeout; a task polled in a loop would use most
/// of that. HTTP/2 did, before the fix: 1.39 s.)
#[tokio::test]
async fn a_long_request_does_not_spin_the_idle_check() {
    for h2 in [false, true] {
        let up = gated_upstream().await;
        let yaml = format!(
            "listeners:\n  - name: main\n    bind: 127.0.0.1:{{PORT}}\nlimits:\n  idle_timeout: 100ms\nupstreams:\n  up: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: all\n    match: {{ path: /** }}\n    upstream: up\n",
            up.addr
        );
        let gw = support::bin::GwProcess::start(&yaml).await;
        let addr = gw.addr;
        let req = tokio::spawn(async move {
            let resp = if h2 {
                h2_get(addr, "/held").await
            } else {
                client()
                    .get(format!("http://{addr}/held").parse().expect("uri"))
                    .await
                    .expect("response")
            };
            let status = resp.status();
            let body = resp.into_body().collect().await.map(|c| c.to_bytes());
            (status, body)
        });
        assert!(
            up.wait_arrived(1).await,
            "h2={h2}: the request reached the upstream"
        );
        let before = support::bin::proc_cpu(gw.pid());
        // The scenario is time passing with one request open: 15 idle timeouts.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let used = support::bin::proc_cpu(gw.pid()) - before;
        up.release.send_replace(true);
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), req)
            .await
            .expect("response in time")
            .expect("client task");
        assert_eq!(status, 200, "h2={h2}");
        assert_eq!(body.expect("whole body"), "released", "h2={h2}");
        assert!(
            used < Duration::from_millis(200),
            "h2={h2}: the gateway used {used:?} of CPU while one request waited 1.5 s"
        );
    }
}

/// A stream the client cancels (RST_STREAM) while the upstream still holds
/// its answer no longer counts as in flight: the connection idles out as
/// usual instead of staying open for good.
#[tokio::test]
async fn an_http2_connection_whose_stream_was_cancelled_still_idles_out() {
    let up = gated_upstream().await;
    let gw = start_gateway(&limits_config(up.addr, "  idle_timeout: 300ms\n", "")).await;
    let (mut send, conn) = h2_connect(gw.addr).await;
    let pending = send.send_request(
        Request::get(format!("http://{}/held", gw.addr))
            .body(Full::new(Bytes::new()))
            .expect("request"),
    );
    let pending = tokio::spawn(pending);
    assert!(up.wait_arrived(1).await, "the request reached the upstream");
    // Dropping the response future resets the stream.
    pending.abort();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(
        ended.is_ok(),
        "the HTTP/2 connection stayed open after its only stream was cancelled"
    );
}

/// An HTTP/2 connection whose response is still streaming is not idle: the
/// gateway does not send GOAWAY while a body is on its way, so the client
/// can start another request on the same connection meanwhile.
#[tokio::test]
async fn an_http2_connection_streaming_a_response_is_not_idle() {
    let (addr, task) = slow_stream_upstream().await;
    let gw = start_gateway(&limits_config(addr, "  idle_timeout: 300ms\n", "")).await;
    let (mut send, _conn) = h2_connect(gw.addr).await;
    let get = |path: &str| {
        Request::get(format!("http://{}{path}", gw.addr))
            .body(Full::new(Bytes::new()))
            .expect("request")
    };
    let resp = send.send_request(get("/stream")).await.expect("response");
    let mut body = resp.into_body();
    // Read until well past the idle timeout: chunk 5 comes after ~600 ms.
    let mut got = String::new();
    while !got.contains("chunk5;") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a chunk in time")
            .expect("the body goes on")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            got.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let second = send
        .send_request(get("/x"))
        .await
        .expect("a second request on the streaming connection");
    assert_eq!(second.status(), 200);
    let rest = body
        .collect()
        .await
        .expect("the rest of the stream")
        .to_bytes();
    got.push_str(&String::from_utf8_lossy(&rest));
    let want: String = (0..10).map(|i| format!("chunk{i};")).collect();
    assert_eq!(got, want);
    task.abort();
}
