//! An upstream's response headers on their way to the client: passed on as
//! received (names, order, repeated lines) minus the hop-by-hop ones and
//! those the upstream named in `Connection`; the gateway's own headers
//! (`X-Request-Id`, route rules) replace the upstream's of the same name.
//! The same over HTTP/1.1 (lines written as received) and HTTP/2 (a map).

mod support;
use support::*;

use std::net::SocketAddr;

use http::HeaderMap;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: up/1.0\r\n\
Connection: keep-alive, X-Secret\r\n\
Keep-Alive: timeout=5\r\n\
X-Secret: internal\r\n\
Proxy-Connection: keep-alive\r\n\
Upgrade: h2c\r\n\
Trailer: X-Checksum\r\n\
X-Request-Id: upstream-id\r\n\
Set-Cookie: a=1\r\n\
Content-Type: text/plain\r\n\
set-cookie: b=2\r\n\
Content-Length: 2\r\n\
\r\n\
ok";

/// A raw HTTP/1.1 upstream answering every request with [`ANSWER`].
async fn raw_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(ANSWER).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

async fn gateway_to(addr: SocketAddr, route_extra: &str) -> Gw {
    let ups = format!("  up: {{ endpoints: [\"{addr}\"] }}\n");
    let routes = format!("  - {{ id: all, match: {{ path: /** }}, upstream: up{route_extra} }}\n");
    start_gateway(&config(&ups, &routes)).await
}

/// The response head's lines after the status line, as received.
fn lines(reply: &str) -> Vec<&str> {
    let head = reply.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").skip(1).collect()
}

fn names(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect()
}

fn assert_no_hop_by_hop(names: &[String]) {
    for hop in [
        "connection",
        "keep-alive",
        "x-secret",
        "proxy-connection",
        "upgrade",
        "trailer",
    ] {
        assert!(!names.iter().any(|n| n == hop), "{hop} in {names:?}");
    }
}

#[tokio::test]
async fn http1_client_gets_the_upstream_lines_minus_hop_by_hop() {
    let (up, _task) = raw_upstream().await;
    let gw = gateway_to(up, "").await;
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    for _ in 0..2 {
        // Twice on one connection: the upstream connection is reused too.
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok")) {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        let reply = String::from_utf8_lossy(&got).into_owned();
        let l = lines(&reply);
        let n = names(&l);
        assert_no_hop_by_hop(&n);
        // As received: names keep their case, repeated lines their order.
        assert!(l.contains(&"Server: up/1.0"), "{reply}");
        assert!(l.contains(&"Content-Type: text/plain"), "{reply}");
        let cookies: Vec<&&str> = l
            .iter()
            .filter(|x| x.to_ascii_lowercase().starts_with("set-cookie:"))
            .collect();
        assert_eq!(cookies, [&"Set-Cookie: a=1", &"set-cookie: b=2"], "{reply}");
        // One request id, the gateway's; one length, one date.
        let ids: Vec<&&str> = l
            .iter()
            .filter(|x| x.to_ascii_lowercase().starts_with("x-request-id:"))
            .collect();
        assert_eq!(ids.len(), 1, "{reply}");
        assert!(!ids[0].contains("upstream-id"), "{reply}");
        assert_eq!(n.iter().filter(|x| *x == "content-length").count(), 1);
        assert_eq!(n.iter().filter(|x| *x == "date").count(), 1);
        assert!(reply.ends_with("\r\n\r\nok"), "{reply}");
    }
}

#[tokio::test]
async fn rules_and_http2_clients_see_the_same_headers_in_a_map() {
    let (up, _task) = raw_upstream().await;
    let gw = gateway_to(
        up,
        ", response_headers: { set: { Server: gateway }, add: { Set-Cookie: c=3 }, remove: [Content-Type] }",
    )
    .await;
    let check = |h: &HeaderMap, rules: bool| {
        let n: Vec<String> = h.keys().map(|k| k.as_str().to_owned()).collect();
        assert_no_hop_by_hop(&n);
        assert_ne!(h["x-request-id"], "upstream-id");
        assert_eq!(h.get_all("x-request-id").iter().count(), 1);
        let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
        if rules {
            assert_eq!(h["server"], "gateway");
            assert!(h.get("content-type").is_none());
            assert_eq!(cookies, ["a=1", "b=2", "c=3"]);
        } else {
            assert_eq!(h["server"], "up/1.0");
            assert_eq!(h["content-type"], "text/plain");
            assert_eq!(cookies, ["a=1", "b=2"]);
        }
    };
    // HTTP/1.1 client, route with rules: the lines went through a map.
    let (s, h, b) = get(&gw.url("/x")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"ok"[..]));
    check(&h, true);

    // HTTP/2 client, route without rules.
    let plain = gateway_to(up, "").await;
    let resp = h2_get(plain.addr, "/x").await;
    assert_eq!(resp.status(), 200);
    check(resp.headers(), false);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"ok");
}
