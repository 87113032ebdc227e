//! Test harness: the real gateway in-process on 127.0.0.1:0, in front of
//! recording upstream stubs on ephemeral ports, plus raw-socket and HTTP
//! clients. Every wait is on a condition, never a sleep.
#![allow(dead_code)]

pub mod bin;
pub mod gated;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use gwanmun::config::load_str;
use gwanmun::server::{Gateway, Server};

/// A running in-process gateway.
pub struct Gw {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub done: JoinHandle<bool>,
}

impl Gw {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers graceful shutdown and returns whether draining completed.
    pub async fn shutdown(mut self) -> bool {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.done).await.unwrap_or(false)
    }
}

/// Starts the gateway from YAML. The first listener should bind
/// `127.0.0.1:0`; the harness reports the real port.
pub async fn start_gateway(yaml: &str) -> Gw {
    let snap = load_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("config rejected:\n{e}"));
    let gw = Gateway::new(snap);
    let server = Server::bind(gw).await.expect("bind");
    let addr = server.local_addrs()[0];
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Gw {
        addr,
        stop: Some(tx),
        done,
    }
}

/// A minimal config with one listener on an ephemeral port, the given
/// upstream blocks and routes (already indented YAML).
pub fn config(upstreams: &str, routes: &str) -> String {
    format!("listeners:\n  - name: test\n    bind: 127.0.0.1:0\nupstreams:\n{upstreams}\nroutes:\n{routes}")
}

/// What an upstream stub received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

pub type Handler = Arc<dyn Fn(&Recorded) -> Response<Full<Bytes>> + Send + Sync>;

/// A recording upstream that answers with `handler`.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub fn last(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the upstream received a request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An upstream answering 200 with body `name` and header `x-upstream: name`.
pub async fn echo_upstream(name: &'static str) -> Upstream {
    start_upstream(
        Arc::new(move |_r: &Recorded| {
            Response::builder()
                .header("x-upstream", name)
                .body(Full::new(Bytes::from(name)))
                .expect("response")
        }),
        false,
    )
    .await
}

/// Starts a stub (HTTP/1.1, or HTTP/2 prior knowledge when `h2`).
pub async fn start_upstream(handler: Handler, h2: bool) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let collected = body.collect().await.ok();
                        let trailers = collected.as_ref().and_then(|c| c.trailers().cloned());
                        let body = collected.map(|c| c.to_bytes()).unwrap_or_default();
                        let rec = Recorded {
                            method: parts.method,
                            uri: parts.uri.to_string(),
                            version: parts.version,
                            headers: parts.headers,
                            body,
                            trailers,
                        };
                        let resp = handler(&rec);
                        seen.lock().expect("lock").push(rec);
                        Ok::<_, Infallible>(resp)
                    }
                });
                let io = TokioIo::new(stream);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .with_upgrades()
                        .await;
                }
            });
        }
    });
    Upstream { addr, seen, task }
}

/// A plain HTTP/1.1 client (no pooling surprises: one per test is fine).
pub fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and collects the whole response.
pub async fn send(req: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = client().request(req).await.expect("request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

/// GET `path` with `Authorization: Bearer token`; the status and the body
/// parsed as JSON (`Null` when it is not JSON).
pub async fn get_with_bearer(gw: &Gw, path: &str, token: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::get(gw.url(path))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (s, _, b) = send(req).await;
    (
        s,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    )
}

/// A new HTTP/2 connection to `addr` (prior knowledge): its request sender,
/// and the connection's task, which ends when the connection does.
pub async fn h2_connect(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    JoinHandle<hyper::Result<()>>,
) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    (send, tokio::spawn(conn))
}

/// A GET over HTTP/2 with prior knowledge, on a new connection to `addr`.
pub async fn h2_get(addr: SocketAddr, path: &str) -> Response<Incoming> {
    let (mut send, _conn) = h2_connect(addr).await;
    send.send_request(
        Request::get(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .expect("request"),
    )
    .await
    .expect("response")
}

pub async fn get(url: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(
        Request::get(url)
            .body(Full::new(Bytes::new()))
            .expect("request"),
    )
    .await
}

/// Writes raw bytes, half-closes nothing, and reads until the server closes
/// or `Connection: close` semantics end the exchange (bounded by 5 s).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in a raw reply.
pub fn raw_status(reply: &str) -> u16 {
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until `cond` holds, polling without fixed sleeps longer
/// than a few milliseconds.
pub async fn wait_until(mut cond: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}
