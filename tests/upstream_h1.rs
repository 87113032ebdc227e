//! The inline upstream HTTP/1.1 client (bodiless requests), against an
//! origin that answers with hand-written bytes: chunked bodies, interim
//! answers, bodies that end with the connection, HEAD, garbage, and stray
//! bytes after a response. Each case checks the client's answer and whether
//! the upstream connection was (rightly) reused.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::*;

struct Origin {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn origin() -> Origin {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("test io");
    let addr = l.local_addr().expect("test io");
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let n = acc.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(serve(s, n));
        }
    });
    Origin {
        addr,
        accepted,
        task,
    }
}

async fn serve(mut s: TcpStream, conn: usize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let reply: Vec<u8> = match path.as_str() {
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
            "/early" => b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            "/until-close" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nstreamed until close").await;
                return;
            }
            "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
            "/garbage" => b"HTTX/1.1 2OO\r\n\r\n".to_vec(),
            "/extra" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec(),
            "/cut" => {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
                    .await;
                return;
            }
            _ => {
                let body = format!("conn {conn}");
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
            }
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn setup() -> (Origin, Gw) {
    let o = origin().await;
    let gw = start_gateway(&config(
        &format!("  o: {{ endpoints: [\"{}\"] }}", o.addr),
        "  - id: all\n    match: { path: /** }\n    upstream: o\n",
    ))
    .await;
    (o, gw)
}

#[tokio::test]
async fn chunked_and_interim_answers_keep_the_connection() {
    let (o, gw) = setup().await;
    let (s, _, b) = get(&gw.url("/chunked")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"hello world"[..]));
    let (s, _, b) = get(&gw.url("/early")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"ok"[..]));
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 1"[..]));
    assert_eq!(o.accepted(), 1);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn a_body_that_ends_with_the_connection_is_whole_and_not_reused() {
    let (o, gw) = setup().await;
    let (s, _, b) = get(&gw.url("/until-close")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"streamed until close"[..]));
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 2"[..]));
    assert_eq!(o.accepted(), 2);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn head_answers_are_not_waited_on_for_a_body() {
    let (o, gw) = setup().await;
    let req = http::Request::head(gw.url("/head"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("test io");
    let (s, h, b) = send(req).await;
    assert_eq!((s.as_u16(), b.len()), (200, 0));
    assert_eq!(h["content-length"], "100");
    let (s, _, b) = get(&gw.url("/n")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"conn 1"[..]));
    assert_eq!(o.accepted(), 1);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn garbage_is_a_502_and_stray_bytes_end_the_connection() {
    let (o, gw) = setup().await;
    let (s, _, b) = get(&gw.url("/garbage")).await;
    assert_eq!(s.as_u16(), 502, "{b:?}");
    let (s, _, b) = get(&gw.url("/extra")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"ok"[..]));
    let before = o.accepted();
    let (s, _, _) = get(&gw.url("/n")).await;
    assert_eq!(s, 200);
    assert_eq!(
        o.accepted(),
        before + 1,
        "the connection with stray bytes was reused"
    );
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn an_upstream_that_closes_mid_body_never_looks_complete() {
    let (_o, gw) = setup().await;
    let r = raw(gw.addr, b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // Either nothing had gone out yet when the upstream closed (a 502), or
    // the head promised 100 bytes, the client got what came and the
    // connection closed: its parser sees a short body, not a whole answer.
    match raw_status(&r) {
        502 => assert!(r.contains("bad_gateway"), "{r}"),
        200 => {
            assert!(r.contains("content-length: 100\r\n"), "{r}");
            let body = r.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            assert_eq!(body, "only ten b");
        }
        other => panic!("unexpected {other}: {r}"),
    }
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn an_http10_client_gets_a_chunked_answer_delimited_by_close() {
    let (_o, gw) = setup().await;
    let r = raw(gw.addr, b"GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(!r.to_ascii_lowercase().contains("transfer-encoding"), "{r}");
    assert!(r.contains("connection: close\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nhello world"), "{r}");
    assert!(gw.shutdown().await);
}
