//! Router tests: selection rules, 405, and agreement with a naive matcher.

use super::*;
use crate::config::load_str;

fn snap(routes: &str) -> crate::config::Snapshot {
    let text = format!(
        "listeners: [{{ name: p, bind: 127.0.0.1:0 }}]\nupstreams:\n  u: {{ endpoints: [\"127.0.0.1:1\"] }}\nroutes:\n{routes}"
    );
    load_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn pick<'a>(
    s: &'a crate::config::Snapshot,
    method: &str,
    path: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
    query: Option<&str>,
) -> Option<&'a str> {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("n"),
            HeaderValue::from_str(v).expect("v"),
        );
    }
    let view = RequestView {
        method: &m,
        path,
        host,
        headers: &h,
        query,
    };
    match s.router.select(&view) {
        Selection::Found(r) => Some(&*r.id),
        _ => None,
    }
}

#[test]
fn most_specific_wins_then_priority() {
    let s = snap(
        "  - { id: all, match: { path: /** }, upstream: u }\n  - { id: api, match: { path: /api/** }, upstream: u }\n  - { id: tasks, match: { path: /api/tasks/** }, upstream: u }\n  - { id: one, match: { path: \"/api/tasks/{id}\" }, upstream: u }\n  - { id: exact, match: { path: /api/tasks/mine }, upstream: u }\n  - { id: re, match: { path: \"~^/api/v[0-9]+/.*$\" }, upstream: u }\n",
    );
    assert_eq!(
        pick(&s, "GET", "/api/tasks/7", None, &[], None),
        Some("one")
    );
    assert_eq!(
        pick(&s, "GET", "/api/tasks/mine", None, &[], None),
        Some("exact")
    );
    assert_eq!(
        pick(&s, "GET", "/api/tasks", None, &[], None),
        Some("tasks")
    );
    assert_eq!(
        pick(&s, "GET", "/api/tasks/7/notes", None, &[], None),
        Some("tasks")
    );
    assert_eq!(pick(&s, "GET", "/api/users", None, &[], None), Some("api"));
    assert_eq!(pick(&s, "GET", "/api/v2/x", None, &[], None), Some("api"));
    assert_eq!(pick(&s, "GET", "/other", None, &[], None), Some("all"));
    assert_eq!(pick(&s, "GET", "/", None, &[], None), Some("all"));
    let p = snap("  - { id: a, match: { path: /api/** }, upstream: u }\n  - { id: b, priority: 10, match: { path: /** }, upstream: u }\n");
    assert_eq!(pick(&p, "GET", "/api/x", None, &[], None), Some("b"));
}

#[test]
fn regex_routes_are_found_through_their_literal_prefix() {
    let s = snap("  - { id: re, match: { path: \"~^/x/[0-9]+$\" }, upstream: u }\n  - { id: any, match: { path: \"~^/y\" }, upstream: u }\n");
    assert_eq!(pick(&s, "GET", "/x/12", None, &[], None), Some("re"));
    assert_eq!(pick(&s, "GET", "/x/ab", None, &[], None), None);
    assert_eq!(pick(&s, "GET", "/yz", None, &[], None), Some("any"));
}

#[test]
fn predicates_filter_and_count_as_specificity() {
    let s = snap(
        "  - { id: plain, match: { path: /api/** }, upstream: u }\n  - { id: canary, match: { path: /api/**, headers: { X-Canary: \"true\" } }, upstream: u }\n  - { id: host, match: { path: /api/**, host: \"*.example.com\" }, upstream: u }\n  - { id: dbg, match: { path: /api/**, query: { debug: \"1\" } }, upstream: u }\n",
    );
    assert_eq!(pick(&s, "GET", "/api/a", None, &[], None), Some("plain"));
    assert_eq!(
        pick(&s, "GET", "/api/a", None, &[("x-canary", "true")], None),
        Some("canary")
    );
    assert_eq!(
        pick(&s, "GET", "/api/a", None, &[("x-canary", "false")], None),
        Some("plain")
    );
    assert_eq!(
        pick(&s, "GET", "/api/a", Some("api.example.com"), &[], None),
        Some("host")
    );
    assert_eq!(
        pick(&s, "GET", "/api/a", None, &[], Some("debug=1")),
        Some("dbg")
    );
}

#[test]
fn method_mismatch_gives_405_with_allow() {
    let s = snap("  - { id: r, match: { path: /api/tasks/**, methods: [GET, POST] }, upstream: u }\n  - { id: d, match: { path: \"/api/tasks/{id}\", methods: [DELETE] }, upstream: u }\n");
    let m = Method::PUT;
    let h = HeaderMap::new();
    let view = RequestView {
        method: &m,
        path: "/api/tasks/7",
        host: None,
        headers: &h,
        query: None,
    };
    match s.router.select(&view) {
        Selection::MethodNotAllowed(allow) => {
            let a = allow.to_str().expect("ascii");
            assert!(
                a.contains("GET") && a.contains("POST") && a.contains("DELETE"),
                "{a}"
            );
        }
        other => panic!("expected 405, got {other:?}"),
    }
    assert_eq!(
        pick(&s, "DELETE", "/api/tasks/7", None, &[], None),
        Some("d")
    );
    // a path nobody matches is 404, not 405
    let view = RequestView {
        method: &m,
        path: "/nope",
        host: None,
        headers: &h,
        query: None,
    };
    assert!(matches!(s.router.select(&view), Selection::NotFound));
}

#[test]
fn routes_are_case_sensitive_and_strict_on_trailing_slash() {
    let s = snap("  - { id: e, match: { path: /Ping }, upstream: u }\n");
    assert_eq!(pick(&s, "GET", "/Ping", None, &[], None), Some("e"));
    assert_eq!(pick(&s, "GET", "/ping", None, &[], None), None);
    assert_eq!(pick(&s, "GET", "/Ping/", None, &[], None), None);
}

/// The trie must agree with a linear scan using `path_matches` on many
/// generated routes and paths.
#[test]
fn trie_agrees_with_linear_scan() {
    let words = ["a", "b", "c", "{p}"];
    let mut routes = String::new();
    let mut n = 0;
    for w1 in words {
        for w2 in words {
            for tail in ["", "/**"] {
                routes.push_str(&format!(
                    "  - {{ id: r{n}, match: {{ path: \"/{w1}/{w2}{tail}\" }}, upstream: u }}\n"
                ));
                n += 1;
            }
        }
    }
    routes.push_str(&format!(
        "  - {{ id: r{n}, match: {{ path: \"~^/a/[bc]$\" }}, upstream: u }}\n"
    ));
    let s = snap(&routes);
    let segs = ["a", "b", "c", "d", ""];
    for x in segs {
        for y in segs {
            for z in ["", "/c", "/"] {
                let path = format!("/{x}/{y}{z}");
                let h = HeaderMap::new();
                let view = RequestView {
                    method: &Method::GET,
                    path: &path,
                    host: None,
                    headers: &h,
                    query: None,
                };
                let got = match s.router.select(&view) {
                    Selection::Found(r) => Some(r.index),
                    _ => None,
                };
                let want = s
                    .router
                    .routes()
                    .iter()
                    .filter(|r| path_matches(r, &path))
                    .max_by(|a, b| a.rank().cmp(&b.rank()).then(b.index.cmp(&a.index)))
                    .map(|r| r.index);
                assert_eq!(got, want, "path {path}");
            }
        }
    }
}
