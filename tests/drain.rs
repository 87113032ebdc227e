//! Graceful drain of the real binary: on SIGTERM or SIGINT the gateway stops
//! accepting, lets in-flight requests finish, closes idle connections, and
//! exits 0; the drain timeout bounds how long it waits.

mod support;
use support::bin::GwProcess;
use support::gated::gated_upstream;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn drain_config(upstream: SocketAddr, drain_timeout: &str) -> String {
    format!(
        "listeners:\n  - name: main\n    bind: 127.0.0.1:{{PORT}}\nlimits:\n  drain_timeout: {drain_timeout}\n  idle_timeout: 60s\nupstreams:\n  slow: {{ endpoints: [\"{upstream}\"] }}\nroutes:\n  - id: all\n    match: {{ path: /** }}\n    upstream: slow\n"
    )
}

/// Reads one short HTTP/1.1 response (its head and a body of `len` bytes).
async fn read_response(s: &mut TcpStream, body: &str) -> String {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !got.ends_with(body.as_bytes()) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn drains_on(signal: &str, threads: &str) {
    let gated = gated_upstream().await;
    let cfg = drain_config(gated.addr, "30s");
    let mut gw = GwProcess::start_with(&cfg, &["--threads", threads]).await;

    // An idle keep-alive connection that has served one request.
    let mut idle = TcpStream::connect(gw.addr).await.expect("connect");
    idle.write_all(b"GET /fast HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("write");
    let r = read_response(&mut idle, "released").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    // A slow request in flight.
    let mut slow = TcpStream::connect(gw.addr).await.expect("connect");
    slow.write_all(b"POST /slow HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .expect("write");
    assert!(
        gated.wait_arrived(1).await,
        "the slow request reached the upstream"
    );

    gw.signal(signal);

    // New connections are refused soon after: the listener is closed.
    let addr = gw.addr;
    let mut refused = false;
    for _ in 0..500 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "still accepting after SIG{signal}\n{}", gw.log());

    // The idle connection is closed without a response.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest))
        .await
        .expect("idle connection closed during drain")
        .expect("read");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // Still draining: the process waits for the in-flight request.
    assert!(
        gw.child.try_wait().expect("try_wait").is_none(),
        "exited with a request in flight\n{}",
        gw.log()
    );
    gated.release.send_replace(true);
    let r = read_response(&mut slow, "released").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("released"), "{r}");

    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("did not exit after draining\n{}", gw.log()));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    drains_on("TERM", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_requests_and_exits_zero() {
    drains_on("INT", "1").await;
}

/// With several worker runtimes every one stops accepting (each has its own
/// copy of the listener) and the in-flight request on whichever runtime
/// took it still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_runtime_drains() {
    drains_on("TERM", "3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_the_wait() {
    let gated = gated_upstream().await;
    let mut gw = GwProcess::start(&drain_config(gated.addr, "500ms")).await;
    let mut slow = TcpStream::connect(gw.addr).await.expect("connect");
    slow.write_all(b"GET /never HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .expect("write");
    assert!(gated.wait_arrived(1).await);
    gw.signal("TERM");
    // The upstream never answers; the process still exits, and exits 0.
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("drain timeout not enforced\n{}", gw.log()));
    assert_eq!(status.code(), Some(0), "{}", gw.log());
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "the unanswered request can not have succeeded"
    );
}
