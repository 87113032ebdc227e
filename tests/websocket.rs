//! WebSocket upgrades pass through the gateway to a real WebSocket echo
//! upstream; `Upgrade: h2c` does not.

mod support;
use support::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// What the WebSocket upstream saw: the upgrade request and whether the
/// session ended with a close frame from the client.
#[derive(Default)]
struct WsSeen {
    path: Option<String>,
    headers: Option<HeaderMap>,
    messages: usize,
    closed_by_client: bool,
}

/// A WebSocket echo server: every text or binary message comes back as is.
// The handshake callback's error type is tungstenite's own (large) response.
#[allow(clippy::result_large_err)]
async fn ws_echo_upstream() -> (std::net::SocketAddr, Arc<Mutex<WsSeen>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<WsSeen>> = Arc::default();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let record = seen.clone();
                let callback = move |req: &Request, resp: Response| {
                    let mut s = record.lock().expect("lock");
                    s.path = Some(req.uri().to_string());
                    s.headers = Some(req.headers().clone());
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    match msg {
                        Message::Text(_) | Message::Binary(_) => {
                            seen.lock().expect("lock").messages += 1;
                            if ws.send(msg).await.is_err() {
                                return;
                            }
                        }
                        Message::Close(_) => {
                            seen.lock().expect("lock").closed_by_client = true;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, seen, task)
}

fn ws_config(upstream: std::net::SocketAddr) -> String {
    config(
        &format!("  chat: {{ endpoints: [\"{upstream}\"] }}"),
        "  - id: chat\n    match: { path: /ws/** }\n    upstream: chat\n    strip_prefix: 1\n",
    )
}

#[tokio::test]
async fn websocket_echo_through_the_gateway() {
    let (up_addr, seen, up_task) = ws_echo_upstream().await;
    let gw = start_gateway(&ws_config(up_addr)).await;

    let stream = TcpStream::connect(gw.addr).await.expect("connect");
    let url = format!("ws://{}/ws/echo?room=1", gw.addr);
    let (mut ws, resp) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .expect("websocket handshake through the gateway");
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().contains_key("x-request-id"));

    let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = vec![
        Message::Text("hello".into()),
        Message::Binary(vec![0, 1, 2, 255]),
        Message::Text("안녕하세요 관문".into()),
        Message::Binary(big),
        Message::Text(String::new()),
        Message::Binary(Vec::new()),
    ];
    for msg in &sent {
        ws.send(msg.clone()).await.expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time")
            .expect("stream open")
            .expect("frame");
        assert_eq!(&echoed, msg);
    }

    // Clean close: our close frame reaches the upstream and its reply
    // comes back, then the stream ends.
    ws.close(None).await.expect("close");
    let mut got_close = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("close reply in time")
        {
            Some(Ok(Message::Close(_))) => got_close = true,
            Some(Ok(other)) => panic!("unexpected frame after close: {other:?}"),
            Some(Err(_)) | None => break,
        }
    }
    assert!(got_close, "the close handshake completed");
    assert!(
        wait_until(
            || seen.lock().expect("lock").closed_by_client,
            Duration::from_secs(5)
        )
        .await
    );

    let s = seen.lock().expect("lock");
    assert_eq!(s.messages, sent.len());
    assert_eq!(s.path.as_deref(), Some("/echo?room=1"));
    let h = s.headers.as_ref().expect("upgrade request recorded");
    assert_eq!(h["upgrade"], "websocket");
    assert!(h["connection"]
        .to_str()
        .expect("ascii")
        .eq_ignore_ascii_case("upgrade"));
    assert!(h.contains_key("sec-websocket-key"));
    assert_eq!(h["sec-websocket-version"], "13");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(h.contains_key("x-request-id"));
    drop(s);
    up_task.abort();
}

#[tokio::test]
async fn two_websockets_at_once_stay_separate() {
    let (up_addr, _seen, up_task) = ws_echo_upstream().await;
    let gw = start_gateway(&ws_config(up_addr)).await;
    let url = format!("ws://{}/ws/a", gw.addr);
    let (mut a, _) = tokio_tungstenite::client_async(
        url.as_str(),
        TcpStream::connect(gw.addr).await.expect("connect"),
    )
    .await
    .expect("handshake a");
    let (mut b, _) = tokio_tungstenite::client_async(
        url.as_str(),
        TcpStream::connect(gw.addr).await.expect("connect"),
    )
    .await
    .expect("handshake b");
    for i in 0..20 {
        a.send(Message::Text(format!("a{i}")))
            .await
            .expect("send a");
        b.send(Message::Text(format!("b{i}")))
            .await
            .expect("send b");
        let ra = a.next().await.expect("open").expect("frame");
        let rb = b.next().await.expect("open").expect("frame");
        assert_eq!(ra, Message::Text(format!("a{i}")));
        assert_eq!(rb, Message::Text(format!("b{i}")));
    }
    up_task.abort();
}

#[tokio::test]
async fn upgrade_h2c_is_not_passed_through() {
    let up = echo_upstream("plain").await;
    let gw = start_gateway(&config(
        &format!("  plain: {{ endpoints: [\"{}\"] }}", up.addr),
        "  - id: all\n    match: { path: /** }\n    upstream: plain\n",
    ))
    .await;
    let reply = raw(
        gw.addr,
        b"GET /x HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&reply), 200, "{reply}");
    assert!(reply.ends_with("plain"), "{reply}");
    assert!(!reply.to_ascii_lowercase().contains("upgrade"), "{reply}");

    let rec = up.last();
    assert_eq!(rec.uri, "/x");
    assert_eq!(rec.version, http::Version::HTTP_11);
    for h in ["upgrade", "http2-settings", "connection"] {
        assert!(
            !rec.headers.contains_key(h),
            "{h} forwarded: {:?}",
            rec.headers
        );
    }
    // A WebSocket-looking request that also asks for h2c is not a
    // WebSocket upgrade either.
    let reply = raw(
        gw.addr,
        b"GET /y HTTP/1.1\r\nHost: example\r\nConnection: Upgrade, close\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&reply), 200, "{reply}");
    assert!(!up.last().headers.contains_key("upgrade"));
}

#[tokio::test]
async fn an_open_websocket_counts_toward_max_connections() {
    let (up_addr, _seen, up_task) = ws_echo_upstream().await;
    let plain = echo_upstream("plain").await;
    let gw = start_gateway(&format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\n    max_connections: 1\nupstreams:\n  chat: {{ endpoints: [\"{up_addr}\"] }}\n  plain: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: chat\n    match: {{ path: /ws/** }}\n    upstream: chat\n  - id: plain\n    match: {{ path: /plain }}\n    upstream: plain\n",
        plain.addr
    ))
    .await;
    let url = format!("ws://{}/ws/a", gw.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(
        url.as_str(),
        TcpStream::connect(gw.addr).await.expect("connect"),
    )
    .await
    .expect("handshake");
    ws.send(Message::Text("x".into())).await.expect("send");
    assert_eq!(
        ws.next().await.expect("open").expect("frame"),
        Message::Text("x".into())
    );

    // The tunnel holds the only slot: another client waits.
    let other = tokio::spawn(raw(
        gw.addr,
        b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    let served = wait_until(|| plain.count() > 0, Duration::from_millis(500)).await;
    assert!(
        !served,
        "a second connection was served beside an open WebSocket"
    );

    // Closing the WebSocket frees the slot.
    ws.close(None).await.expect("close");
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    drop(ws);
    let reply = other.await.expect("other client");
    assert_eq!(raw_status(&reply), 200, "{reply}");
    up_task.abort();
}
