//! Issue 2, rewriting: the path the upstream receives (strip_prefix,
//! prefix_path, regex with captures), request and response header rules,
//! and the query passed through byte for byte.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use support::*;

/// An upstream whose response carries a few headers to rewrite.
async fn chatty_upstream() -> Upstream {
    start_upstream(
        Arc::new(|_r: &Recorded| {
            Response::builder()
                .header("x-powered-by", "php/5")
                .header("x-tag", "from-upstream")
                .header("cache-control", "public")
                .body(Full::new(Bytes::from_static(b"ok")))
                .expect("response")
        }),
        false,
    )
    .await
}

async fn gateway(up: &Upstream, routes: &str) -> Gw {
    let routes: String = routes
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  {}\n", l.trim()))
        .collect();
    let ups = format!("  u: {{ endpoints: [\"{}\"] }}\n", up.addr);
    start_gateway(&config(&ups, &routes)).await
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(Full::new(Bytes::new())).expect("request")).await
}

fn all<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect()
}

#[tokio::test]
async fn strip_prefix_and_prefix_path() {
    let up = echo_upstream("u").await;
    let gw = gateway(
        &up,
        "
        - { id: one, match: { path: /api/tasks/** }, upstream: u, strip_prefix: 1 }
        - { id: two, match: { path: /svc/users/** }, upstream: u, strip_prefix: 2 }
        - { id: pre, match: { path: /pub/** }, upstream: u, strip_prefix: 1, prefix_path: /v2 }
        - { id: add, match: { path: \"/raw/{id}\" }, upstream: u, prefix_path: /internal }
        ",
    )
    .await;
    let cases = [
        ("/api/tasks/7", "/tasks/7"),
        ("/api/tasks", "/tasks"),
        ("/api/tasks/", "/tasks/"),
        ("/svc/users/9/roles", "/9/roles"),
        ("/svc/users", "/"),
        ("/pub/a/b", "/v2/a/b"),
        ("/raw/5", "/internal/raw/5"),
        // normalization happens first, the rewrite works on the clean path
        ("/api/x/../tasks//7/./", "/tasks/7/"),
    ];
    for (sent, want) in cases {
        let (s, _, _) = get(&gw.url(sent)).await;
        assert_eq!(s, StatusCode::OK, "{sent}");
        assert_eq!(up.last().uri, want, "{sent}");
    }
    assert_eq!(up.count(), cases.len());
}

#[tokio::test]
async fn regex_rewrite_with_captures() {
    let up = echo_upstream("u").await;
    let gw = gateway(
        &up,
        "
        - { id: named, match: { path: /old/** }, upstream: u, rewrite: { regex: \"^/old/(?P<rest>.*)$\", to: \"/new/$${rest}\" } }
        - { id: num, match: { path: \"~^/users/([0-9]+)/posts/([0-9]+)$\" }, upstream: u, rewrite: { regex: \"^/users/([0-9]+)/posts/([0-9]+)$\", to: \"/posts/$2/by/$${1}\" } }
        - { id: rel, match: { path: /flat/** }, upstream: u, rewrite: { regex: \"^/flat/(.*)$\", to: \"$1\" } }
        ",
    )
    .await;
    // `${..}` is environment expansion in the config; `$${rest}` is the
    // regex's named capture.
    get(&gw.url("/old/a/b?keep=1")).await;
    assert_eq!(up.last().uri, "/new/a/b?keep=1");
    // a rewrite producing no leading slash still yields an absolute path
    get(&gw.url("/flat/x/y")).await;
    assert_eq!(up.last().uri, "/x/y");
    // numbered captures, reordered
    let (s, _, _) = get(&gw.url("/users/3/posts/44?x=1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(up.last().uri, "/posts/44/by/3?x=1");
    assert_eq!(up.count(), 3);
}

#[tokio::test]
async fn request_header_rules() {
    let up = echo_upstream("u").await;
    let gw = gateway(
        &up,
        "
        - { id: r, match: { path: /** }, upstream: u, request_headers: { set: { X-Gateway: gwanmun }, add: { X-Tag: gw }, remove: [X-Debug, X-Internal-Token] } }
        ",
    )
    .await;
    let (s, _, _) = get_with(
        &gw.url("/x"),
        &[
            ("x-gateway", "spoofed"),
            ("x-tag", "client"),
            ("x-debug", "1"),
            ("X-Internal-Token", "secret"),
            ("x-other", "kept"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let h = up.last().headers;
    assert_eq!(all(&h, "x-gateway"), ["gwanmun"], "set replaces");
    assert_eq!(all(&h, "x-tag"), ["client", "gw"], "add appends");
    assert!(h.get("x-debug").is_none());
    assert!(h.get("x-internal-token").is_none());
    assert_eq!(h["x-other"], "kept");
    // without the client's headers the rules still apply
    get(&gw.url("/y")).await;
    let h = up.last().headers;
    assert_eq!(all(&h, "x-gateway"), ["gwanmun"]);
    assert_eq!(all(&h, "x-tag"), ["gw"]);
}

#[tokio::test]
async fn response_header_rules() {
    let up = chatty_upstream().await;
    let gw = gateway(
        &up,
        "
        - { id: r, match: { path: /** }, upstream: u, response_headers: { set: { Cache-Control: no-store }, add: { X-Tag: gw, X-Served-By: gwanmun }, remove: [X-Powered-By] } }
        ",
    )
    .await;
    let (s, h, b) = get(&gw.url("/x")).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"ok"[..]));
    assert!(h.get("x-powered-by").is_none());
    assert_eq!(all(&h, "cache-control"), ["no-store"]);
    assert_eq!(all(&h, "x-tag"), ["from-upstream", "gw"]);
    assert_eq!(h["x-served-by"], "gwanmun");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn error_responses_are_not_rewritten_by_a_route_that_did_not_match() {
    // Response rules belong to the route; a 404 has no route.
    let up = chatty_upstream().await;
    let gw = gateway(
        &up,
        "- { id: r, match: { path: /a }, upstream: u, response_headers: { add: { X-Served-By: gwanmun } } }",
    )
    .await;
    let (s, h, _) = get(&gw.url("/b")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h.get("x-served-by").is_none());
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn query_is_passed_through_unchanged() {
    let up = echo_upstream("u").await;
    let gw = gateway(
        &up,
        "- { id: r, match: { path: /api/** }, upstream: u, strip_prefix: 1 }",
    )
    .await;
    for q in [
        "a=1&a=2",
        "b=%2F%2e%2E&c=x+y",
        "empty=&flag&=v",
        "%7Bjson%7D=%22q%22",
        "path=../../etc/passwd",
        "k=v;w=x",
    ] {
        let (s, _, _) = get(&gw.url(&format!("/api/t/..//s?{q}"))).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(up.last().uri, format!("/s?{q}"), "{q}");
    }
    // No query: no `?` appears.
    get(&gw.url("/api/s")).await;
    assert_eq!(up.last().uri, "/s");
    // An empty query is kept as sent.
    let r = raw(
        gw.addr,
        b"GET /api/s? HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert_eq!(up.last().uri, "/s?");
}
