//! Issue 2, upstream failures: 502 when the upstream refuses or drops the
//! connection, 504 when it does not answer within the route's timeout; each
//! with the small JSON body and the request id.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::*;

/// What a misbehaving upstream does once it has read a request head.
#[derive(Clone, Copy)]
enum Misbehave {
    /// Close the connection without a byte.
    Close,
    /// Send half a response head, then close.
    HalfHead,
    /// Keep the connection open and never answer.
    Silent,
}

/// A raw TCP upstream counting the request heads it read.
struct BadUpstream {
    addr: SocketAddr,
    heads: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for BadUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bad_upstream(how: Misbehave) -> BadUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(AtomicUsize::new(0));
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let (h2, p2) = (heads.clone(), paths.clone());
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read one head (bounded: the gateway sends a small one).
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let line = String::from_utf8_lossy(&buf);
            if let Some(path) = line.split_whitespace().nth(1) {
                p2.lock().expect("lock").push(path.to_owned());
            }
            h2.fetch_add(1, Ordering::SeqCst);
            match how {
                Misbehave::Close => drop(s),
                Misbehave::HalfHead => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
                    drop(s);
                }
                Misbehave::Silent => held.push(s),
            }
        }
    });
    BadUpstream {
        addr,
        heads,
        paths,
        task,
    }
}

async fn gateway_to(addr: SocketAddr, route_extra: &str) -> Gw {
    let ups = format!("  up: {{ endpoints: [\"{addr}\"] }}\n");
    let routes = format!("  - {{ id: all, match: {{ path: /** }}, upstream: up{route_extra} }}\n");
    start_gateway(&config(&ups, &routes)).await
}

/// The error body names the code and status, and carries the same request
/// id as the response header.
fn assert_error(status: StatusCode, h: &HeaderMap, b: &Bytes, want: u16, code: &str) {
    assert_eq!(status.as_u16(), want, "{b:?}");
    assert!(h["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_slice(b).expect("JSON body");
    assert_eq!(v["error"], code);
    assert_eq!(v["status"], want);
    let id = h["x-request-id"].to_str().expect("ascii");
    assert!(!id.is_empty());
    assert_eq!(v["request_id"], id);
}

#[tokio::test]
async fn refused_connection_is_502() {
    // Bind, learn the port, close: nothing listens there now.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let gw = gateway_to(dead, "").await;
    let (s, h, b) = get(&gw.url("/x")).await;
    assert_error(s, &h, &b, 502, "bad_gateway");
    // The client's request id survives into the error.
    let (s, h, b) = send(
        http::Request::get(gw.url("/y"))
            .header("x-request-id", "err-1")
            .body(http_body_util::Full::new(Bytes::new()))
            .expect("request"),
    )
    .await;
    assert_error(s, &h, &b, 502, "bad_gateway");
    assert_eq!(h["x-request-id"], "err-1");
}

#[tokio::test]
async fn upstream_closing_without_answer_is_502() {
    let up = bad_upstream(Misbehave::Close).await;
    let gw = gateway_to(up.addr, "").await;
    let (s, h, b) = get(&gw.url("/closed?q=1")).await;
    assert_error(s, &h, &b, 502, "bad_gateway");
    assert!(up.heads.load(Ordering::SeqCst) >= 1);
    assert!(up
        .paths
        .lock()
        .expect("lock")
        .iter()
        .all(|p| p == "/closed?q=1"));
}

#[tokio::test]
async fn upstream_dropping_mid_response_is_502() {
    let up = bad_upstream(Misbehave::HalfHead).await;
    let gw = gateway_to(up.addr, "").await;
    let (s, h, b) = get(&gw.url("/half")).await;
    assert_error(s, &h, &b, 502, "bad_gateway");
    assert!(up.heads.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn silent_upstream_is_504_after_the_route_timeout() {
    let up = bad_upstream(Misbehave::Silent).await;
    let gw = gateway_to(up.addr, ", timeout: 200ms").await;
    let (s, h, b) = get(&gw.url("/slow")).await;
    assert_error(s, &h, &b, 504, "gateway_timeout");
    // It did reach the upstream: the timeout is the upstream's fault.
    assert!(up.heads.load(Ordering::SeqCst) >= 1);
    assert_eq!(up.paths.lock().expect("lock")[0], "/slow");
    // The same over a raw socket: the 504 arrives and the connection is usable.
    let r = raw(
        gw.addr,
        b"GET /slow2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&r), 504, "{r}");
    assert!(r.contains("\"gateway_timeout\""), "{r}");
}

/// Each request gets the whole route timeout, also on a pooled upstream
/// connection whose previous request's deadline falls inside it (the
/// connection's timer, armed for the earlier deadline, fires early and is
/// moved on instead of cutting the new request short).
#[tokio::test]
async fn a_pooled_connection_gives_each_request_its_whole_timeout() {
    let gated = support::gated::gated_upstream().await;
    let gw = gateway_to(gated.addr, ", timeout: 500ms").await;
    let (s, _, b) = get(&gw.url("/fast")).await;
    assert_eq!(s, 200, "{b:?}");
    // The pooled connection's first deadline passes 250 ms into the next
    // request: the pause is the behaviour under test.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let sent = std::time::Instant::now();
    let (s, h, b) = get(&gw.url("/slow")).await;
    let took = sent.elapsed();
    assert_error(s, &h, &b, 504, "gateway_timeout");
    assert!(
        took >= std::time::Duration::from_millis(480),
        "504 after {took:?}, before the route's 500 ms"
    );
    // The slow request did reach the upstream: the 504 is its fault.
    assert_eq!(gated.arrived.load(Ordering::SeqCst), 1);
    gated.release.send_replace(true);
}

#[tokio::test]
async fn a_healthy_upstream_after_errors_still_works() {
    // Guard against the error paths poisoning the gateway: a route to a dead
    // port next to a working one.
    let ok = echo_upstream("ok").await;
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let ups = format!(
        "  ok: {{ endpoints: [\"{}\"] }}\n  dead: {{ endpoints: [\"{dead}\"] }}\n",
        ok.addr
    );
    let routes = "  - { id: ok, match: { path: /ok }, upstream: ok }\n  - { id: dead, match: { path: /dead }, upstream: dead }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    let (s, h, b) = get(&gw.url("/dead")).await;
    assert_error(s, &h, &b, 502, "bad_gateway");
    let (s, _, b) = get(&gw.url("/ok")).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(ok.count(), 1);
}
