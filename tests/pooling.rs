//! Upstream connection pooling over real sockets: keep-alive reuse, no
//! reuse of a connection that was left mid-response or told to close, and
//! idle connections closed after `pool.idle_timeout`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::*;

/// A raw HTTP/1.1 origin that counts the connections it accepted and still
/// has open. `/close` answers with `Connection: close`; `/big` sends 8 MiB;
/// anything else a short body naming the connection it came on. With
/// `drop_reused`, a connection's second request is read and then the
/// connection closed unanswered (an upstream whose keep-alive timeout ran
/// out just as the gateway reused the connection).
struct Origin {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

impl Origin {
    async fn start() -> Origin {
        Origin::start_with(false).await
    }

    async fn start_with(drop_reused: bool) -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (a, o) = (accepted.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let n = a.fetch_add(1, Ordering::SeqCst) + 1;
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    serve(s, n, drop_reused).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Origin {
            addr,
            accepted,
            open,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

async fn serve(mut s: TcpStream, conn: usize, drop_reused: bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for served in 0.. {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        if drop_reused && served > 0 {
            return;
        }
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let ok = match path.as_str() {
            "/close" => {
                let body = format!("conn {conn}");
                let msg = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(msg.as_bytes()).await;
                return;
            }
            "/big" => {
                let len = 8 << 20;
                let mut ok = s
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
                    )
                    .await
                    .is_ok();
                let block = vec![b'x'; 64 << 10];
                for _ in 0..(len / block.len()) {
                    if !ok {
                        break;
                    }
                    ok = s.write_all(&block).await.is_ok();
                }
                ok
            }
            _ => {
                let body = format!("conn {conn}");
                let msg = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(msg.as_bytes()).await.is_ok()
            }
        };
        if !ok {
            return;
        }
    }
}

fn gateway_config(origin: &Origin, pool: &str) -> String {
    config(
        &format!("  o: {{ endpoints: [\"{}\"]{pool} }}", origin.addr),
        "  - id: all\n    match: { path: /** }\n    upstream: o\n",
    )
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let origin = Origin::start().await;
    let gw = start_gateway(&gateway_config(&origin, "")).await;
    for _ in 0..50 {
        let (s, _, b) = get(&gw.url("/n")).await;
        assert_eq!(s, 200);
        assert_eq!(&b[..], b"conn 1");
    }
    assert_eq!(origin.accepted(), 1);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn connection_close_answers_are_not_reused() {
    let origin = Origin::start().await;
    let gw = start_gateway(&gateway_config(&origin, "")).await;
    for i in 1..=5 {
        let (s, _, b) = get(&gw.url("/close")).await;
        assert_eq!(s, 200);
        assert_eq!(String::from_utf8_lossy(&b), format!("conn {i}"));
    }
    // The next plain request opens a sixth connection, then keeps it.
    for _ in 0..3 {
        let (s, _, b) = get(&gw.url("/n")).await;
        assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 6"[..]));
    }
    assert_eq!(origin.accepted(), 6);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn a_response_left_unread_never_reaches_the_next_request() {
    let origin = Origin::start().await;
    let gw = start_gateway(&gateway_config(&origin, "")).await;
    // Read the head of an 8 MiB answer, then hang up.
    let mut s = TcpStream::connect(gw.addr).await.expect("connect");
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).await.expect("read");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    // The half-read connection is closed, not pooled: the next answer is
    // whole and comes on a new connection.
    assert!(wait_until(|| origin.open() == 0, Duration::from_secs(5)).await);
    for _ in 0..3 {
        let (s, _, b) = get(&gw.url("/n")).await;
        assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 2"[..]));
    }
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout() {
    let origin = Origin::start().await;
    let pool = ", pool: { idle_timeout: 300ms }";
    let gw = start_gateway(&gateway_config(&origin, pool)).await;
    let (s, _, _) = get(&gw.url("/n")).await;
    assert_eq!(s, 200);
    assert_eq!(origin.open(), 1);
    // Nothing else is sent: the pool's sweep closes it.
    assert!(
        wait_until(|| origin.open() == 0, Duration::from_secs(5)).await,
        "the idle connection was not closed"
    );
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 2"[..]));
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn max_idle_zero_keeps_no_connection() {
    let origin = Origin::start().await;
    let pool = ", pool: { max_idle_per_endpoint: 0 }";
    let gw = start_gateway(&gateway_config(&origin, pool)).await;
    for i in 1..=3 {
        let (s, _, b) = get(&gw.url("/n")).await;
        assert_eq!(s, 200);
        assert_eq!(String::from_utf8_lossy(&b), format!("conn {i}"));
    }
    assert!(wait_until(|| origin.open() == 0, Duration::from_secs(5)).await);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn concurrent_requests_open_only_what_they_need() {
    let origin = Origin::start().await;
    let gw = start_gateway(&gateway_config(&origin, "")).await;
    // 8 workers x 25 requests each, one connection per worker at most.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/n");
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let (s, _, _) = get(&url).await;
                assert_eq!(s, 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    assert!(origin.accepted() <= 8, "{} connections", origin.accepted());
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn a_stale_pooled_connection_is_retried_for_safe_requests_only() {
    let origin = Origin::start_with(true).await;
    let gw = start_gateway(&gateway_config(&origin, "")).await;
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 1"[..]));
    // What is under test is the connection's idle time: past a second,
    // the gateway keeps a copy of a safe request before reusing it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Connection 1 takes the GET and closes unanswered: sent again on a new
    // connection, the client never sees it.
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 2"[..]));
    assert_eq!(origin.accepted(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A POST is never sent twice: the client gets the 502.
    let req = http::Request::post(gw.url("/n"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let (s, _, _) = send(req).await;
    assert_eq!(s, 502);
    assert_eq!(origin.accepted(), 2);
    assert!(gw.shutdown().await);
}
