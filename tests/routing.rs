//! Issue 2, routing: every predicate, priority and most-specific choice,
//! 404/405 JSON errors, redirects and fixed responses. Each test asserts
//! what the client got AND which upstream received exactly what.

mod support;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use support::*;

/// Extra request headers, as (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// Starts one echo upstream per name and a gateway with `routes`.
async fn setup(names: &[&'static str], routes: &str) -> (Gw, Vec<Upstream>) {
    let mut ups = Vec::new();
    let mut block = String::new();
    for name in names {
        let up = echo_upstream(name).await;
        block.push_str(&format!("  {name}: {{ endpoints: [\"{}\"] }}\n", up.addr));
        ups.push(up);
    }
    // One route per line, at any indentation (string continuations eat it).
    let routes: String = routes
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  {}\n", l.trim()))
        .collect();
    let gw = start_gateway(&config(&block, &routes)).await;
    (gw, ups)
}

/// Sends `method url` with extra headers; returns status, headers, body.
async fn req(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(Full::new(Bytes::new())).expect("request")).await
}

/// Which upstream answered (its name), or "" for a gateway answer.
fn served_by(h: &HeaderMap) -> &str {
    h.get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn counts(ups: &[Upstream]) -> Vec<usize> {
    ups.iter().map(Upstream::count).collect()
}

fn json(b: &Bytes) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"))
}

#[tokio::test]
async fn path_pattern_kinds() {
    let routes = "\
  - { id: exact, match: { path: /users }, upstream: exact }
  - { id: prefix, match: { path: /api/** }, upstream: prefix }
  - { id: tmpl, match: { path: \"/items/{id}\" }, upstream: tmpl }
  - { id: re, match: { path: \"~^/orders/[0-9]+$\" }, upstream: re }
";
    let (gw, ups) = setup(&["exact", "prefix", "tmpl", "re"], routes).await;
    let cases: &[(&str, &str, &str)] = &[
        ("/users", "exact", "/users"),
        ("/api", "prefix", "/api"),
        ("/api/", "prefix", "/api/"),
        ("/api/a/b/c", "prefix", "/api/a/b/c"),
        ("/items/42", "tmpl", "/items/42"),
        ("/orders/17", "re", "/orders/17"),
    ];
    for (path, who, seen) in cases {
        let (s, h, b) = req(Method::GET, &gw.url(path), &[]).await;
        assert_eq!((s, served_by(&h)), (StatusCode::OK, *who), "{path}");
        assert_eq!(&b[..], who.as_bytes());
        let i = ["exact", "prefix", "tmpl", "re"]
            .iter()
            .position(|n| n == who)
            .expect("known");
        assert_eq!(ups[i].last().uri, *seen, "{path}");
    }
    let before = counts(&ups);
    for miss in [
        "/users/1",
        "/users/",
        "/apix",
        "/items",
        "/items/",
        "/items/42/x",
        "/orders/abc",
        "/orders/17/x",
    ] {
        let (s, h, _) = req(Method::GET, &gw.url(miss), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{miss}");
        assert_eq!(served_by(&h), "", "{miss}");
    }
    assert_eq!(counts(&ups), before, "a 404 must reach no upstream");
}

#[tokio::test]
async fn host_exact_wildcard_and_case() {
    let routes = "\
  - { id: exact, match: { path: /**, host: api.example.com }, upstream: exact }
  - { id: wild, match: { path: /**, host: \"*.example.com\" }, upstream: wild }
";
    let (gw, ups) = setup(&["exact", "wild"], routes).await;
    for (host, want) in [
        ("api.example.com", "exact"),
        ("API.Example.COM", "exact"),
        ("api.example.com:8443", "exact"),
        ("www.example.com", "wild"),
        ("a.b.example.com", "wild"),
    ] {
        let (s, h, _) = req(Method::GET, &gw.url("/x"), &[("host", host)]).await;
        assert_eq!((s, served_by(&h)), (StatusCode::OK, want), "{host}");
    }
    let before = counts(&ups);
    for host in ["example.com", "evilexample.com", "api.example.org"] {
        let (s, _, _) = req(Method::GET, &gw.url("/x"), &[("host", host)]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{host}");
    }
    assert_eq!(counts(&ups), before);
    // The upstream receives the client's Host unchanged.
    req(Method::GET, &gw.url("/x"), &[("host", "www.example.com")]).await;
    assert_eq!(ups[1].last().headers["host"], "www.example.com");
}

#[tokio::test]
async fn header_predicates_present_exact_regex() {
    let routes = "\
  - { id: base, match: { path: /api/** }, upstream: base }
  - { id: present, match: { path: /api/**, headers: { X-Trace: { present: true } } }, upstream: present }
  - { id: exact, match: { path: /api/**, headers: { X-Canary: \"true\" } }, upstream: exact }
  - { id: re, match: { path: /api/**, headers: { X-Version: \"~^v[0-9]+$\" } }, upstream: re }
  - { id: re2, match: { path: /api/**, headers: { X-Tier: { regex: \"^(gold|silver)$\" } } }, upstream: re2 }
";
    let (gw, ups) = setup(&["base", "present", "exact", "re", "re2"], routes).await;
    let cases: &[(Headers, &str)] = &[
        (&[], "base"),
        (&[("x-trace", "")], "present"),
        (&[("x-trace", "anything")], "present"),
        (&[("x-canary", "true")], "exact"),
        (&[("X-CANARY", "true")], "exact"),
        (&[("x-canary", "TRUE")], "base"),
        (&[("x-canary", "true1")], "base"),
        (&[("x-version", "v12")], "re"),
        (&[("x-version", "v1x")], "base"),
        (&[("x-tier", "gold")], "re2"),
        (&[("x-tier", "golden")], "base"),
    ];
    for (headers, want) in cases {
        let (s, h, _) = req(Method::GET, &gw.url("/api/t"), headers).await;
        assert_eq!((s, served_by(&h)), (StatusCode::OK, *want), "{headers:?}");
    }
    // Predicates only choose the route: the header still reaches the upstream.
    assert_eq!(ups[2].last().headers["x-canary"], "true");
}

#[tokio::test]
async fn query_predicates_and_query_passthrough() {
    let routes = "\
  - { id: base, match: { path: /search }, upstream: base }
  - { id: dbg, match: { path: /search, query: { debug: \"1\" } }, upstream: dbg }
  - { id: re, match: { path: /search, query: { v: \"~^[0-9]+$\" } }, upstream: re }
";
    let (gw, ups) = setup(&["base", "dbg", "re"], routes).await;
    for (q, want) in [
        ("", "base"),
        ("?debug=1", "dbg"),
        ("?a=b&debug=1&c", "dbg"),
        ("?debug=2", "base"),
        ("?xdebug=1", "base"),
        ("?v=42", "re"),
        ("?v=4x", "base"),
    ] {
        let (s, h, _) = req(Method::GET, &gw.url(&format!("/search{q}")), &[]).await;
        assert_eq!((s, served_by(&h)), (StatusCode::OK, want), "{q}");
    }
    assert_eq!(ups[1].last().uri, "/search?a=b&debug=1&c");
}

#[tokio::test]
async fn methods_and_405_with_allow() {
    let routes = "\
  - { id: read, match: { path: /api/tasks/**, methods: [GET, POST] }, upstream: read }
  - { id: del, match: { path: \"/api/tasks/{id}\", methods: [DELETE] }, upstream: del }
";
    let (gw, ups) = setup(&["read", "del"], routes).await;
    let (s, h, _) = req(Method::POST, &gw.url("/api/tasks/7"), &[]).await;
    assert_eq!((s, served_by(&h)), (StatusCode::OK, "read"));
    assert_eq!(ups[0].last().method, Method::POST);
    let (s, h, _) = req(Method::DELETE, &gw.url("/api/tasks/7"), &[]).await;
    assert_eq!((s, served_by(&h)), (StatusCode::OK, "del"));
    assert_eq!(ups[1].last().method, Method::DELETE);

    let before = counts(&ups);
    let (s, h, b) = req(Method::PUT, &gw.url("/api/tasks/7"), &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let allow: Vec<String> = h["allow"]
        .to_str()
        .expect("ascii")
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect();
    for m in ["GET", "POST", "DELETE"] {
        assert!(allow.iter().any(|a| a == m), "{allow:?}");
    }
    assert!(!allow.iter().any(|a| a == "PUT"), "{allow:?}");
    let v = json(&b);
    assert_eq!(v["error"], "method_not_allowed");
    assert_eq!(v["status"], 405);
    assert_eq!(v["request_id"], h["x-request-id"].to_str().expect("ascii"));
    // Only the list route covers /api/tasks: DELETE is not allowed there.
    let (s, h, _) = req(Method::DELETE, &gw.url("/api/tasks"), &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h["allow"], "GET, POST");
    // A path no route covers is 404 whatever the method.
    let (s, _, _) = req(Method::PUT, &gw.url("/elsewhere"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(counts(&ups), before, "405/404 must reach no upstream");
}

#[tokio::test]
async fn priority_then_most_specific() {
    let routes = "\
  - { id: all, match: { path: /** }, upstream: all }
  - { id: api, match: { path: /api/** }, upstream: api }
  - { id: tasks, match: { path: /api/tasks/** }, upstream: tasks }
  - { id: one, match: { path: \"/api/tasks/{id}\" }, upstream: one }
  - { id: mine, match: { path: /api/tasks/mine }, upstream: mine }
  - { id: re, match: { path: \"~^/api/v[0-9]+/.*$\" }, upstream: re }
  - { id: vip, priority: 10, match: { path: /**, headers: { X-Vip: \"1\" } }, upstream: vip }
";
    let names = ["all", "api", "tasks", "one", "mine", "re", "vip"];
    let (gw, ups) = setup(&names, routes).await;
    let cases: &[(&str, Headers, &str)] = &[
        ("/", &[], "all"),
        ("/other/x", &[], "all"),
        ("/api/users", &[], "api"),
        ("/api/tasks", &[], "tasks"),
        ("/api/tasks/7/notes", &[], "tasks"),
        ("/api/tasks/7", &[], "one"),
        ("/api/tasks/mine", &[], "mine"),
        // the prefix route has more literal segments than the regex's prefix
        ("/api/v2/x", &[], "api"),
        // an explicit priority beats every more specific route
        ("/api/tasks/mine", &[("x-vip", "1")], "vip"),
        ("/api/tasks/7", &[("x-vip", "1")], "vip"),
    ];
    for (path, headers, want) in cases {
        let (s, h, _) = req(Method::GET, &gw.url(path), headers).await;
        assert_eq!((s, served_by(&h)), (StatusCode::OK, *want), "{path}");
        let i = names.iter().position(|n| n == want).expect("known");
        assert_eq!(ups[i].last().uri, *path);
    }
    assert_eq!(ups[5].count(), 0, "the regex route never won");
}

#[tokio::test]
async fn regex_route_wins_when_it_is_the_only_match() {
    let routes = "\
  - { id: re, match: { path: \"~^/v[0-9]+/items$\" }, upstream: re }
  - { id: other, match: { path: /v1/other }, upstream: other }
";
    let (gw, ups) = setup(&["re", "other"], routes).await;
    let (s, h, _) = req(Method::GET, &gw.url("/v3/items?q=1"), &[]).await;
    assert_eq!((s, served_by(&h)), (StatusCode::OK, "re"));
    assert_eq!(ups[0].last().uri, "/v3/items?q=1");
    // The regex is matched against the normalized path, anchored.
    let (s, _, _) = req(Method::GET, &gw.url("/v3/items/x"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, h, _) = req(Method::GET, &gw.url("/x/../v3//items"), &[]).await;
    assert_eq!((s, served_by(&h)), (StatusCode::OK, "re"));
    assert_eq!(ups[0].last().uri, "/v3/items");
    assert_eq!(ups[0].count(), 2);
    assert_eq!(ups[1].count(), 0);
}

#[tokio::test]
async fn not_found_is_json_with_request_id() {
    let (gw, ups) = setup(&["a"], "  - { id: a, match: { path: /a }, upstream: a }\n").await;
    let (s, h, b) = req(Method::GET, &gw.url("/nope?x=1"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let v = json(&b);
    assert_eq!(v["error"], "no_route");
    assert_eq!(v["status"], 404);
    assert!(v["message"].is_string());
    let id = h["x-request-id"].to_str().expect("ascii");
    assert!(!id.is_empty());
    assert_eq!(v["request_id"], id);
    // A sane client id is echoed in both places.
    let (_, h, b) = req(
        Method::GET,
        &gw.url("/nope"),
        &[("x-request-id", "abc-123")],
    )
    .await;
    assert_eq!(h["x-request-id"], "abc-123");
    assert_eq!(json(&b)["request_id"], "abc-123");
    assert_eq!(ups[0].count(), 0);
}

#[tokio::test]
async fn redirects() {
    let routes = "\
  - { id: legacy, match: { path: /old/** }, redirect: { to: /api/, status: 308 } }
  - { id: moved, match: { path: /docs/** }, redirect: { to: \"https://docs.example.com/v2/\", append_path: true } }
  - { id: api, match: { path: /api/** }, upstream: api }
";
    let (gw, ups) = setup(&["api"], routes).await;
    let (s, h, b) = req(Method::POST, &gw.url("/old/x/y?q=1"), &[]).await;
    assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(h["location"], "/api/");
    assert!(b.is_empty());
    assert!(h.contains_key("x-request-id"));
    // default status 302; the rest of the (normalized) path and the query appended
    let (s, h, _) = req(Method::GET, &gw.url("/docs/guide/./intro?lang=ko"), &[]).await;
    assert_eq!(s, StatusCode::FOUND);
    assert_eq!(
        h["location"],
        "https://docs.example.com/v2/guide/intro?lang=ko"
    );
    let (s, h, _) = req(Method::GET, &gw.url("/docs"), &[]).await;
    assert_eq!(s, StatusCode::FOUND);
    assert_eq!(h["location"], "https://docs.example.com/v2/");
    assert_eq!(ups[0].count(), 0, "redirects are answered by the gateway");
}

#[tokio::test]
async fn fixed_responses() {
    let routes = "\
  - { id: ping, match: { path: /ping }, respond: { status: 200, body: pong } }
  - { id: gone, match: { path: /gone/** }, respond: { status: 410, body: \"{\\\"gone\\\":true}\", content_type: application/json }, response_headers: { set: { Cache-Control: no-store } } }
  - { id: api, match: { path: /api/** }, upstream: api }
";
    let (gw, ups) = setup(&["api"], routes).await;
    let (s, h, b) = req(Method::GET, &gw.url("/ping"), &[]).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"pong"[..]));
    assert!(h["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    assert_eq!(h["content-length"], "4");
    let (s, h, b) = req(Method::DELETE, &gw.url("/gone/x"), &[]).await;
    assert_eq!(s, StatusCode::GONE);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(json(&b)["gone"], true);
    // /ping is exact: /ping/ is not it.
    let (s, _, _) = req(Method::GET, &gw.url("/ping/"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(ups[0].count(), 0);
}
