//! Issue 2, forwarding headers and request ids: what the upstream learns
//! about the client, from untrusted and trusted peers, and the X-Request-Id
//! shared by the upstream and the client.

mod support;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use support::*;

/// A gateway (with `top` prepended to its config) in front of one upstream.
async fn setup(top: &str) -> (Gw, Upstream) {
    let up = echo_upstream("up").await;
    let ups = format!("  up: {{ endpoints: [\"{}\"] }}\n", up.addr);
    let routes = "  - { id: all, match: { path: /** }, upstream: up }\n";
    let gw = start_gateway(&format!("{top}{}", config(&ups, routes))).await;
    (gw, up)
}

/// Sends GET /x with `headers` (repeated names allowed, kept in order).
async fn get_with(gw: &Gw, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap) {
    let mut b = Request::get(gw.url("/x")).header("host", "api.example.com");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (s, h, _) = send(b.body(Full::new(Bytes::new())).expect("request")).await;
    (s, h)
}

fn one<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    let all: Vec<_> = h.get_all(name).iter().collect();
    assert_eq!(all.len(), 1, "{name}: {all:?}");
    all[0].to_str().expect("ascii")
}

const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-for", "7.7.7.7"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-port", "443"),
    ("x-forwarded-prefix", "/admin"),
    ("x-real-ip", "6.6.6.6"),
    ("x-client-ip", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6;proto=https"),
];

#[tokio::test]
async fn untrusted_peer_headers_are_dropped_and_regenerated() {
    let (gw, up) = setup("").await;
    let (s, _) = get_with(&gw, SPOOFED).await;
    assert_eq!(s, StatusCode::OK);
    let h = up.last().headers;
    assert_eq!(one(&h, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(one(&h, "x-real-ip"), "127.0.0.1");
    assert_eq!(one(&h, "x-forwarded-proto"), "http");
    assert_eq!(one(&h, "x-forwarded-host"), "api.example.com");
    for gone in [
        "forwarded",
        "x-client-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream");
    }
    // Without any client headers the same set is generated.
    get_with(&gw, &[]).await;
    let h = up.last().headers;
    assert_eq!(one(&h, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(one(&h, "x-forwarded-host"), "api.example.com");
}

#[tokio::test]
async fn peer_outside_trusted_cidrs_is_untrusted() {
    // 127.0.0.1 is not in 10.0.0.0/8: the spoofed chain is dropped.
    let (gw, up) = setup("trusted_proxies: [10.0.0.0/8]\n").await;
    get_with(&gw, SPOOFED).await;
    let h = up.last().headers;
    assert_eq!(one(&h, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(one(&h, "x-real-ip"), "127.0.0.1");
    assert_eq!(one(&h, "x-forwarded-proto"), "http");
    assert!(!h.contains_key("forwarded"));
}

#[tokio::test]
async fn trusted_peer_chain_is_kept_and_appended() {
    let (gw, up) = setup("trusted_proxies: [127.0.0.0/8]\n").await;
    let cases: &[(&[&str], &str, &str)] = &[
        // one client behind the trusted peer
        (&["1.2.3.4"], "1.2.3.4, 127.0.0.1", "1.2.3.4"),
        // trusted hops inside the chain are skipped, the first untrusted
        // address from the right is the client (the left-most is spoofable)
        (
            &["6.6.6.6, 5.5.5.5, 127.0.0.9"],
            "6.6.6.6, 5.5.5.5, 127.0.0.9, 127.0.0.1",
            "5.5.5.5",
        ),
        // repeated header lines form one chain
        (
            &["7.7.7.7", "127.0.0.3"],
            "7.7.7.7, 127.0.0.3, 127.0.0.1",
            "7.7.7.7",
        ),
        // everything trusted: the left-most
        (
            &["127.0.0.7, 127.0.0.8"],
            "127.0.0.7, 127.0.0.8, 127.0.0.1",
            "127.0.0.7",
        ),
        // a non-address ends the walk at the address to its right
        (
            &["1.1.1.1, junk, 127.0.0.5"],
            "1.1.1.1, junk, 127.0.0.5, 127.0.0.1",
            "127.0.0.5",
        ),
        // no chain: the peer
        (&[], "127.0.0.1", "127.0.0.1"),
    ];
    for (chain, xff, client) in cases {
        let headers: Vec<(&str, &str)> = chain.iter().map(|c| ("x-forwarded-for", *c)).collect();
        let (s, _) = get_with(&gw, &headers).await;
        assert_eq!(s, StatusCode::OK);
        let h = up.last().headers;
        assert_eq!(one(&h, "x-forwarded-for"), *xff, "{chain:?}");
        assert_eq!(one(&h, "x-real-ip"), *client, "{chain:?}");
    }
    // Proto and host from a trusted proxy are believed.
    get_with(
        &gw,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "public.example.com"),
            ("x-real-ip", "9.9.9.9"),
        ],
    )
    .await;
    let h = up.last().headers;
    assert_eq!(one(&h, "x-forwarded-proto"), "https");
    assert_eq!(one(&h, "x-forwarded-host"), "public.example.com");
    // X-Real-IP is always the gateway's own conclusion.
    assert_eq!(one(&h, "x-real-ip"), "127.0.0.1");
}

#[tokio::test]
async fn trusted_hops_choose_the_nth_entry_from_the_right() {
    let chain = [("x-forwarded-for", "1.1.1.1, 2.2.2.2, 3.3.3.3")];
    for (hops, client) in [
        (1, "3.3.3.3"),
        (2, "2.2.2.2"),
        (3, "1.1.1.1"),
        (9, "1.1.1.1"),
    ] {
        let (gw, up) = setup(&format!("trusted_hops: {hops}\n")).await;
        get_with(&gw, &chain).await;
        let h = up.last().headers;
        assert_eq!(one(&h, "x-real-ip"), client, "hops {hops}");
        assert_eq!(
            one(&h, "x-forwarded-for"),
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1",
            "hops {hops}"
        );
    }
    // 0 hops: nothing is trusted, the chain is dropped.
    let (gw, up) = setup("trusted_hops: 0\n").await;
    get_with(&gw, &chain).await;
    let h = up.last().headers;
    assert_eq!(one(&h, "x-real-ip"), "127.0.0.1");
    assert_eq!(one(&h, "x-forwarded-for"), "127.0.0.1");
}

#[tokio::test]
async fn request_id_kept_when_sane_regenerated_otherwise() {
    let (gw, up) = setup("").await;
    for sane in ["abc-123", "0f3c.9a_x:1", &"a".repeat(128)] {
        let (_, h) = get_with(&gw, &[("x-request-id", sane)]).await;
        assert_eq!(one(&h, "x-request-id"), sane);
        assert_eq!(one(&up.last().headers, "x-request-id"), sane);
    }
    let long = "b".repeat(200);
    for insane in ["has space", "quote\"d", "<script>", long.as_str(), ""] {
        let (_, h) = get_with(&gw, &[("x-request-id", insane)]).await;
        let to_client = one(&h, "x-request-id").to_owned();
        assert_ne!(to_client, insane);
        assert!(
            !to_client.is_empty()
                && to_client.len() <= 128
                && to_client.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{to_client}"
        );
        assert_eq!(one(&up.last().headers, "x-request-id"), to_client);
    }
    // None sent: one is generated, the same both ways, fresh each time.
    let (_, h1) = get_with(&gw, &[]).await;
    let id1 = one(&h1, "x-request-id").to_owned();
    assert_eq!(one(&up.last().headers, "x-request-id"), id1);
    let (_, h2) = get_with(&gw, &[]).await;
    assert_ne!(one(&h2, "x-request-id"), id1);
    // Two ids from the client: neither is trusted blindly, one is sent.
    get_with(&gw, &[("x-request-id", "a1"), ("x-request-id", "b2")]).await;
    assert_eq!(up.last().headers.get_all("x-request-id").iter().count(), 1);
}
