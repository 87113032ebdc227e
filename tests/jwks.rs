//! Remote key sets: a real JWKS server on 127.0.0.1 that rotates keys and
//! goes down. Every wait is bounded and on a condition.

#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use std::time::Duration;

use http::StatusCode;
use mint::*;
use serde_json::Value;
use support::*;

async fn gateway(up: &Upstream, jwks: &JwksServer, extra: &str) -> Gw {
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      jwks_url: {}\n      algorithms: [RS256]\n      forward_claims: {{ sub: X-User-Id }}\n{extra}upstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: api\n    match: {{ path: /api/** }}\n    upstream: task\n    auth: required\n",
        jwks.url(),
        up.addr
    );
    start_gateway(&yaml).await
}

async fn try_token(gw: &Gw, token: &str) -> (StatusCode, Value) {
    get_with_bearer(gw, "/api/x", token).await
}

/// Retries `token` until the gateway answers `want` (bounded: 10 s).
async fn eventually(gw: &Gw, token: &str, want: u16) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if try_token(gw, token).await.0 == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn no_key_set_ever_loaded_is_503_not_401() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    jwks.set_down(true);
    let gw = gateway(&up, &jwks, "      jwks_refresh: 1s\n").await;
    let t = rs256("rsa1", &claims("alice"));
    let (s, body) = try_token(&gw, &t).await;
    assert_eq!(s, 503);
    assert_eq!(body["error"], "signing_keys_unavailable");
    assert!(body["message"]
        .as_str()
        .expect("message")
        .contains("signing keys unavailable"));
    assert_eq!(up.count(), 0);
    // Start-up keeps retrying; once the key server is back, tokens pass.
    jwks.set_down(false);
    assert!(eventually(&gw, &t, 200).await, "keys never loaded");
    assert_eq!(up.last().headers["x-user-id"], "alice");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn readiness_waits_for_keys() {
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    jwks.set_down(true);
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      jwks_url: {}\n      algorithms: [RS256]\n      jwks_refresh: 1s\n",
        jwks.url()
    );
    let snap = gwanmun::config::load_str(&yaml, "t.yaml").expect("config");
    let gw = gwanmun::server::Gateway::new(snap);
    let active = gw.active();
    assert!(
        wait_until(|| jwks.hits() >= 2, Duration::from_secs(10)).await,
        "start-up fetch is retried"
    );
    assert!(!active.auth.ready());
    jwks.set_down(false);
    assert!(wait_until(|| active.auth.ready(), Duration::from_secs(10)).await);
}

#[tokio::test]
async fn rotation_new_kid_is_fetched_and_old_kid_stops_working() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    let gw = gateway(&up, &jwks, "      jwks_min_refetch: 50ms\n").await;
    let old = rs256("rsa1", &claims("old"));
    assert!(eventually(&gw, &old, 200).await);
    // Cached now; still fine.
    assert_eq!(try_token(&gw, &old).await.0, 200);
    // Rotate: rsa1 removed, rsa2 added.
    jwks.set(mint::jwks(&["rsa2"]));
    let new = rs256("rsa2", &claims("new"));
    assert!(eventually(&gw, &new, 200).await, "unknown kid refetch");
    assert_eq!(up.last().headers["x-user-id"], "new");
    // The old key left the set: its cached token no longer passes.
    let before = up.count();
    let (s, _) = try_token(&gw, &old).await;
    assert_eq!(s, 401);
    assert_eq!(up.count(), before);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn last_good_set_serves_while_the_key_server_is_down() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    let gw = gateway(
        &up,
        &jwks,
        "      jwks_refresh: 200ms\n      jwks_min_refetch: 1h\n",
    )
    .await;
    let t = rs256("rsa1", &claims("alice"));
    assert!(eventually(&gw, &t, 200).await);
    jwks.set_down(true);
    let hits = jwks.hits();
    // Background refreshes keep failing...
    assert!(wait_until(|| jwks.hits() >= hits + 2, Duration::from_secs(10)).await);
    // ...and a fresh token (not cached) still verifies with the last good set.
    let fresh = rs256("rsa1", &claims("bob"));
    assert_eq!(try_token(&gw, &fresh).await.0, 200);
    assert_eq!(up.last().headers["x-user-id"], "bob");
    jwks.set_down(false);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn forged_kids_do_not_hammer_the_key_server() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    let gw = gateway(
        &up,
        &jwks,
        "      jwks_refresh: 1h\n      jwks_min_refetch: 1h\n",
    )
    .await;
    let t = rs256("rsa1", &claims("alice"));
    assert!(eventually(&gw, &t, 200).await);
    let hits = jwks.hits();
    for i in 0..20 {
        let forged = mint(
            jsonwebtoken::Algorithm::RS256,
            "attacker",
            Some(&format!("forged-{i}")),
            &claims("mallory"),
        );
        let (s, _) = try_token(&gw, &forged).await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        jwks.hits(),
        hits,
        "an unknown kid refetched within the minimum interval"
    );
    assert_eq!(up.count(), 1);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn cache_control_max_age_drives_refresh() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    *jwks.max_age.lock().expect("lock") = Some(1);
    let gw = gateway(
        &up,
        &jwks,
        "      jwks_refresh: 1h\n      jwks_min_refetch: 100ms\n",
    )
    .await;
    assert!(
        wait_until(|| jwks.hits() >= 3, Duration::from_secs(10)).await,
        "max-age=1 did not shorten the 1h refresh interval"
    );
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn unknown_kid_while_the_key_server_is_down_is_503_not_401() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    // Background refreshes every 200 ms; an unknown kid may not refetch
    // within the hour, so the refetch is rate-limited after a failed refresh.
    let gw = gateway(
        &up,
        &jwks,
        "      jwks_refresh: 200ms\n      jwks_min_refetch: 1h\n",
    )
    .await;
    assert!(eventually(&gw, &rs256("rsa1", &claims("alice")), 200).await);
    jwks.set_down(true);
    let hits = jwks.hits();
    assert!(wait_until(|| jwks.hits() >= hits + 2, Duration::from_secs(10)).await);
    // rsa2 may be a rotation we could not fetch: not the token's fault.
    let rotated = rs256("rsa2", &claims("bob"));
    let before = up.count();
    let (s, body) = try_token(&gw, &rotated).await;
    assert_eq!(s, 503);
    assert_eq!(body["error"], "signing_keys_unavailable");
    assert_eq!(up.count(), before);
    // Known kids keep verifying with the last good set meanwhile.
    assert_eq!(
        try_token(&gw, &rs256("rsa1", &claims("carol"))).await.0,
        200
    );
    // Back up with the rotated set: rsa2 verifies, and a kid that the
    // fresh set lacks is the token's fault again.
    jwks.set(mint::jwks(&["rsa1", "rsa2"]));
    jwks.set_down(false);
    assert!(
        eventually(&gw, &rotated, 200).await,
        "rotated key never loaded"
    );
    let forged = mint(
        jsonwebtoken::Algorithm::RS256,
        "attacker",
        Some("forged"),
        &claims("mallory"),
    );
    let (s, body) = try_token(&gw, &forged).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"], "unauthorized");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn unknown_kid_refetch_failing_is_503() {
    let up = echo_upstream("task").await;
    let jwks = jwks_server(jwks(&["rsa1"])).await;
    let gw = gateway(
        &up,
        &jwks,
        "      jwks_refresh: 1h\n      jwks_min_refetch: 10ms\n",
    )
    .await;
    assert!(eventually(&gw, &rs256("rsa1", &claims("alice")), 200).await);
    jwks.set_down(true);
    // Outlast the 10 ms minimum refetch interval since the start-up fetch.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let hits = jwks.hits();
    let (s, body) = try_token(&gw, &rs256("rsa2", &claims("bob"))).await;
    assert_eq!(s, 503);
    assert_eq!(body["error"], "signing_keys_unavailable");
    assert_eq!(jwks.hits(), hits + 1, "the unknown kid was looked up once");
    jwks.set_down(false);
    assert!(gw.shutdown().await);
}
