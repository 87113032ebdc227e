//! Built-in probes (`health: live` / `health: ready`): readiness waits for
//! the auth providers' key sets, liveness does not. A real JWKS server on
//! 127.0.0.1 that starts down; every wait is bounded and on a condition.

#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use mint::*;
use serde_json::Value;
use support::*;

fn yaml(jwks_url: &str, up: &Upstream) -> String {
    format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  default: required\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      jwks_url: {jwks_url}\n      algorithms: [RS256]\n      jwks_refresh: 1s\nupstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: live\n    match: {{ path: /livez }}\n    health: live\n  - id: ready\n    match: {{ path: /readyz, methods: [GET, HEAD] }}\n    health: ready\n  - id: api\n    match: {{ path: /api/** }}\n    upstream: task\n",
        up.addr
    )
}

async fn probe(gw: &Gw, path: &str) -> (StatusCode, http::HeaderMap, Value) {
    let (s, h, b) = get(&gw.url(path)).await;
    let v = serde_json::from_slice(&b).unwrap_or_else(|_| panic!("not JSON: {b:?}"));
    (s, h, v)
}

#[tokio::test]
async fn ready_only_once_the_providers_have_keys_live_always() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    jwks.set_down(true);
    let gw = start_gateway(&yaml(&jwks.url(), &up)).await;
    assert!(
        wait_until(|| jwks.hits() >= 1, Duration::from_secs(10)).await,
        "the start-up fetch never happened"
    );

    // Key server down: not ready (the JSON error shape), but alive.
    let (s, h, body) = probe(&gw, "/readyz").await;
    assert_eq!(s, 503);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(body["error"], "not_ready");
    assert_eq!(body["status"], 503);
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("no signing keys")));
    assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    let (s, h, body) = probe(&gw, "/livez").await;
    assert_eq!(s, 200);
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(body, serde_json::json!({ "status": "live" }));

    // Once the key server serves, readiness follows (refresh retries at <= 1 s).
    jwks.set_down(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = StatusCode::SERVICE_UNAVAILABLE;
    while last != 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = get(&gw.url("/readyz")).await.0;
    }
    assert_eq!(last, 200, "never became ready");
    let (_, h, body) = probe(&gw, "/readyz").await;
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(body, serde_json::json!({ "status": "ready" }));

    // Probes never needed a token (auth.default is required) and never
    // reached an upstream; a real request now passes.
    assert_eq!(up.count(), 0);
    let req = Request::get(gw.url("/api/x"))
        .header(
            "authorization",
            format!("Bearer {}", rs256("rsa1", &claims("alice"))),
        )
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(send(req).await.0, 200);
    assert_eq!(up.count(), 1);
    // The route's method list still applies to a probe.
    let post = Request::post(gw.url("/readyz"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(send(post).await.0, 405);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn without_jwks_providers_ready_at_once() {
    let up = echo_upstream("task").await;
    let yaml = config(
        &format!("  task: {{ endpoints: [\"{}\"] }}\n", up.addr),
        "  - id: ready\n    match: { path: /readyz }\n    health: ready\n",
    );
    let gw = start_gateway(&yaml).await;
    let (s, _, body) = probe(&gw, "/readyz").await;
    assert_eq!(s, 200);
    assert_eq!(body["status"], "ready");
    assert!(gw.shutdown().await);
}

#[test]
fn health_routes_are_validated() {
    let route = |extra: &str| {
        config(
            "  task: { endpoints: [\"127.0.0.1:9\"] }\n",
            &format!("  - id: r\n    match: {{ path: /x }}\n{extra}"),
        )
    };
    let err = |extra: &str| {
        gwanmun::config::load_str(&route(extra), "t.yaml")
            .expect_err("must be rejected")
            .0
    };
    let e = err("    health: started\n");
    assert_eq!(e[0].field, "routes[0].health");
    assert!(e[0].message.contains("expected live or ready"), "{e:?}");
    let e = err("    upstream: task\n    health: ready\n");
    assert_eq!(e[0].field, "routes[0].health");
    assert!(
        e[0].message
            .contains("exactly one of `upstream`, `redirect`, `respond` or `health`"),
        "{e:?}"
    );
    assert!(e[0].pos.is_some(), "no position: {e:?}");
    let e = err("    health: live\n    strip_prefix: 1\n");
    assert!(e[0].message.contains("only to routes with an `upstream`"));
    assert!(gwanmun::config::load_str(&route("    health: live\n"), "t.yaml").is_ok());
}
