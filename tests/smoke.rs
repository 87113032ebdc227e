mod support;
use support::*;

#[tokio::test]
async fn proxies_and_rewrites() {
    let up = echo_upstream("task").await;
    let cfg = config(
        &format!("  task: {{ endpoints: [\"{}\"] }}", up.addr),
        "  - id: tasks\n    match: { path: /api/tasks/** }\n    upstream: task\n    strip_prefix: 1\n  - id: ping\n    match: { path: /ping }\n    respond: { status: 200, body: pong }\n",
    );
    let gw = start_gateway(&cfg).await;
    let (s, h, b) = get(&gw.url("/api/tasks/7?x=1")).await;
    assert_eq!(s, 200);
    assert_eq!(&b[..], b"task");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(up.last().uri, "/tasks/7?x=1");
    let (s, _, b) = get(&gw.url("/ping")).await;
    assert_eq!((s.as_u16(), &b[..]), (200, &b"pong"[..]));
    let (s, _, b) = get(&gw.url("/nope")).await;
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&b).contains("no_route"));
    let r = raw(
        gw.addr,
        b"GET /auth/../api/tasks/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert_eq!(up.last().uri, "/tasks/1");
    assert!(gw.shutdown().await);
}
