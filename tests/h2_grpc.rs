//! HTTP/2 through the gateway: h2c prior knowledge from the client, HTTP/2
//! or HTTP/1.1 to upstreams, and a gRPC-shaped exchange whose trailers
//! travel both ways.

mod support;
use support::*;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type FrameStream = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// A body of the given frames (data and trailers).
fn frames(list: Vec<Frame<Bytes>>) -> FrameStream {
    StreamBody::new(stream::iter(list.into_iter().map(Ok).collect::<Vec<_>>()))
}

/// A gRPC message: compressed flag, big-endian length, payload.
fn grpc_frame(payload: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(payload.len() + 5);
    b.push(0);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    Bytes::from(b)
}

#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

/// An HTTP/2 (prior knowledge) gRPC-like upstream: records the request and
/// answers with a gRPC message echoing the request payload, then trailers.
async fn grpc_upstream() -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let collected = body.collect().await.expect("request body");
                        let trailers = collected.trailers().cloned();
                        let body = collected.to_bytes();
                        let mut reply = b"echo:".to_vec();
                        reply.extend_from_slice(body.get(5..).unwrap_or_default());
                        seen.lock().expect("lock").push(Seen {
                            version: parts.version,
                            uri: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                            trailers,
                        });
                        let mut t = HeaderMap::new();
                        t.insert("grpc-status", HeaderValue::from_static("0"));
                        t.insert("grpc-message", HeaderValue::from_static("all%20good"));
                        t.insert("x-checksum", HeaderValue::from_static("abc123"));
                        let resp = Response::builder()
                            .header("content-type", "application/grpc")
                            .body(frames(vec![
                                Frame::data(grpc_frame(&reply)),
                                Frame::trailers(t),
                            ]))
                            .expect("response");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen, task)
}

/// An HTTP/2 prior-knowledge client connection to the gateway.
async fn h2_client<B>(addr: std::net::SocketAddr) -> SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake with the gateway");
    tokio::spawn(conn);
    send
}

fn grpc_config(upstream: std::net::SocketAddr) -> String {
    config(
        &format!("  greeter:\n    endpoints: [\"{upstream}\"]\n    protocol: http2"),
        "  - id: grpc\n    match: { path: /helloworld.Greeter/**, methods: [POST] }\n    upstream: greeter\n",
    )
}

#[tokio::test]
async fn grpc_over_h2_carries_trailers_both_ways() {
    let (up_addr, seen, up_task) = grpc_upstream().await;
    let gw = start_gateway(&grpc_config(up_addr)).await;
    let mut client = h2_client(gw.addr).await;

    let mut req_trailers = HeaderMap::new();
    req_trailers.insert("x-client-checksum", HeaderValue::from_static("42"));
    // Trailers may not smuggle headers the gateway owns.
    req_trailers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    req_trailers.insert("authorization", HeaderValue::from_static("Bearer evil"));
    let req = Request::post(format!("http://{}/helloworld.Greeter/SayHello", gw.addr))
        .version(Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "5S")
        .body(frames(vec![
            Frame::data(grpc_frame(b"gwan")),
            Frame::data(Bytes::from_static(b"")),
            Frame::trailers(req_trailers),
        ]))
        .expect("request");
    // The last data frame is empty so the body has several frames; the
    // payload the upstream sees must be exactly one gRPC message.
    let resp = client.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.expect("response body");
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers reached the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "all%20good");
    assert_eq!(trailers["x-checksum"], "abc123");
    assert_eq!(collected.to_bytes(), grpc_frame(b"echo:gwan"));

    let s = seen.lock().expect("lock")[0].clone();
    assert_eq!(s.version, Version::HTTP_2);
    assert!(s.uri.ends_with("/helloworld.Greeter/SayHello"), "{}", s.uri);
    assert_eq!(s.headers["te"], "trailers");
    assert_eq!(s.headers["content-type"], "application/grpc");
    assert_eq!(s.headers["grpc-timeout"], "5S");
    assert_eq!(s.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(s.body, grpc_frame(b"gwan"));
    let t = s.trailers.expect("request trailers reached the upstream");
    assert_eq!(t["x-client-checksum"], "42");
    assert!(!t.contains_key("x-forwarded-for"), "{t:?}");
    assert!(!t.contains_key("authorization"), "{t:?}");
    up_task.abort();
}

#[tokio::test]
async fn many_grpc_calls_share_one_client_connection() {
    let (up_addr, seen, up_task) = grpc_upstream().await;
    let gw = start_gateway(&grpc_config(up_addr)).await;
    let client = h2_client(gw.addr).await;
    let mut calls = Vec::new();
    for i in 0..16u8 {
        let mut client = client.clone();
        let url = format!("http://{}/helloworld.Greeter/SayHello", gw.addr);
        calls.push(tokio::spawn(async move {
            let req = Request::post(url)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(grpc_frame(&[b'a' + i])))
                .expect("request");
            let resp = client.send_request(req).await.expect("response");
            let c = resp.into_body().collect().await.expect("body");
            let status = c.trailers().map(|t| t["grpc-status"].clone());
            (i, status, c.to_bytes())
        }));
    }
    for call in calls {
        let (i, status, body) = call.await.expect("call");
        assert_eq!(status.as_ref().map(|s| s.as_bytes()), Some(&b"0"[..]));
        assert_eq!(body, grpc_frame(&[b'e', b'c', b'h', b'o', b':', b'a' + i]));
    }
    assert_eq!(seen.lock().expect("lock").len(), 16);
    up_task.abort();
}

#[tokio::test]
async fn h2_client_to_h1_upstream() {
    let up = echo_upstream("h1").await;
    let gw = start_gateway(&config(
        &format!("  h1: {{ endpoints: [\"{}\"] }}", up.addr),
        "  - id: all\n    match: { path: /api/** }\n    upstream: h1\n",
    ))
    .await;
    let mut client = h2_client(gw.addr).await;
    let req = Request::post(format!("http://{}/api/items?x=1", gw.addr))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("request");
    let resp = client.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.headers()["x-upstream"], "h1");
    assert!(resp.headers().contains_key("x-request-id"));
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"h1");

    let rec = up.last();
    assert_eq!(rec.version, Version::HTTP_11);
    assert_eq!(rec.uri, "/api/items?x=1");
    assert_eq!(&rec.body[..], b"payload");
    // HTTP/2 has no Host header; the upstream gets one from :authority.
    assert_eq!(rec.headers["host"], gw.addr.to_string().as_str());
    assert_eq!(
        rec.headers["x-forwarded-host"],
        gw.addr.to_string().as_str()
    );
}

#[tokio::test]
async fn h1_client_to_h2_upstream() {
    let up = start_upstream(
        Arc::new(|r: &Recorded| {
            Response::builder()
                .header("x-upstream-version", format!("{:?}", r.version))
                .body(Full::new(r.body.clone()))
                .expect("response")
        }),
        true,
    )
    .await;
    let gw = start_gateway(&config(
        &format!(
            "  h2:\n    endpoints: [\"{}\"]\n    protocol: http2",
            up.addr
        ),
        "  - id: all\n    match: { path: /** }\n    upstream: h2\n",
    ))
    .await;
    let (s, h, b) = send(
        Request::put(gw.url("/thing"))
            .body(Full::new(Bytes::from_static(b"over h2")))
            .expect("request"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(h["x-upstream-version"], "HTTP/2.0");
    assert_eq!(&b[..], b"over h2");
    assert_eq!(up.last().version, Version::HTTP_2);
}

/// A connection's streams are served side by side (they run in the
/// connection's own task): held requests do not hold up another stream, and
/// on shutdown every stream in flight still gets its answer.
#[tokio::test]
async fn streams_of_one_connection_run_side_by_side_and_finish_on_drain() {
    use std::time::Duration;

    let gated = support::gated::gated_upstream().await;
    let gw = start_gateway(&config(
        &format!("  held: {{ endpoints: [\"{}\"] }}", gated.addr),
        "  - id: all\n    match: { path: /** }\n    upstream: held\n",
    ))
    .await;
    let client = h2_client::<Full<Bytes>>(gw.addr).await;
    let addr = gw.addr;
    let held: Vec<_> = (0..3)
        .map(|i| {
            let mut c = client.clone();
            tokio::spawn(async move {
                let req = Request::get(format!("http://{addr}/held/{i}"))
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                let resp = c.send_request(req).await.expect("response");
                let status = resp.status();
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                (status, body)
            })
        })
        .collect();
    assert!(
        gated.wait_arrived(3).await,
        "all three streams reached the upstream while none was answered"
    );

    // Another stream on the same connection is answered meanwhile.
    let mut c = client.clone();
    let req = Request::get(format!("http://{addr}/fast"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let fast = tokio::time::timeout(Duration::from_secs(10), c.send_request(req))
        .await
        .expect("a free stream is not held up by the others")
        .expect("response");
    assert_eq!(fast.status(), 200);

    // Shutdown starts with the three in flight; they are released after.
    let drained = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !drained.is_finished(),
        "drain waits for the streams in flight"
    );
    gated.release.send(true).expect("release");
    for h in held {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("answered after release")
            .expect("task");
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"released");
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(10), drained)
            .await
            .expect("drain finishes")
            .expect("task"),
        "drain completed"
    );
}
