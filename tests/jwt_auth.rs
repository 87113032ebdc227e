//! JWT authentication and authorization end to end: real gateway, real
//! upstream stub, tokens minted with the `jsonwebtoken` crate.

#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use mint::*;
use serde_json::{json, Value};
use support::*;

fn provider_main() -> String {
    format!(
        "    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      public_key_pem: {}\n      kid: rsa1\n      jwks_file: {}\n      algorithms: [RS256, ES256, EdDSA]\n      roles_claim: realm_access.roles\n      forward_claims: {{ sub: X-User-Id, realm_access.roles: X-User-Roles, email: X-User-Email }}\n      token_from: [{{ header: Authorization }}, {{ cookie: access_token }}, {{ query: access_token }}]\n",
        fixture_path("rsa1.pub.pem"),
        fixture_path("ec-ed.jwks.json"),
    )
}

fn provider_legacy() -> String {
    format!(
        "    - name: legacy\n      issuer: https://legacy.test\n      audiences: [{AUDIENCE}]\n      secret: {SECRET}\n      algorithms: [HS256]\n      forward_token: false\n      claims_header: X-Jwt-Claims\n      forward_claims: {{ sub: X-User-Id }}\n"
    )
}

const ROUTES: &str = r#"
  - id: public
    match: { path: /public/** }
    upstream: task
  - id: tasks
    match: { path: /api/tasks/** }
    upstream: task
    auth: { provider: main, require: { scopes: [tasks:write], roles: [user] } }
  - id: profile
    match: { path: /api/profile }
    upstream: task
    auth: required
  - id: feed
    match: { path: /feed }
    upstream: task
    auth: optional
  - id: admin
    match: { path: /admin/** }
    upstream: task
    auth: { provider: main, require: { roles: [admin, ops], match: any } }
  - id: legacy
    match: { path: /legacy }
    upstream: task
    auth: { provider: legacy }
"#;

async fn setup() -> (Upstream, Gw) {
    let up = echo_upstream("task").await;
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n{}{}upstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n{ROUTES}",
        provider_main(),
        provider_legacy(),
        up.addr
    );
    let gw = start_gateway(&yaml).await;
    (up, gw)
}

async fn call(gw: &Gw, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::get(gw.url(path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (s, h, body) = send(b.body(Full::new(Bytes::new())).expect("request")).await;
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (s, h, v)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn full_claims(sub: &str) -> Value {
    let mut c = claims(sub);
    c["scope"] = json!("tasks:read tasks:write");
    c["realm_access"] = json!({"roles": ["user", "admin"]});
    c["email"] = json!("alice@example.com");
    c
}

#[tokio::test]
async fn valid_token_reaches_upstream_with_verified_identity() {
    let (up, gw) = setup().await;
    let t = rs256("rsa1", &full_claims("alice"));
    let (s, _, _) = call(
        &gw,
        "/api/tasks/7",
        &[("authorization", &bearer(&t)), ("x-user-id", "mallory")],
    )
    .await;
    assert_eq!(s, 200);
    let r = up.last();
    assert_eq!(r.headers["x-user-id"], "alice");
    assert_eq!(r.headers["x-user-roles"], "user,admin");
    assert_eq!(r.headers["x-user-email"], "alice@example.com");
    assert_eq!(r.headers.get_all("x-user-id").iter().count(), 1);
    // forward_token defaults to true: the upstream may re-verify.
    assert_eq!(r.headers["authorization"], bearer(&t).as_str());
    // The same token again is served from the cache, same answer.
    let (s, _, _) = call(&gw, "/api/tasks/8", &[("authorization", &bearer(&t))]).await;
    assert_eq!(s, 200);
    assert_eq!(up.last().headers["x-user-id"], "alice");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn missing_and_bad_tokens_get_401_with_bearer_challenge() {
    let (up, gw) = setup().await;
    let (s, h, body) = call(&gw, "/api/profile", &[]).await;
    assert_eq!(s, 401);
    assert_eq!(h["www-authenticate"], "Bearer realm=\"gwanmun\"");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["status"], 401);

    let mut c = claims("alice");
    c["exp"] = json!(now() - 3600);
    let expired = rs256("rsa1", &c);
    let (s, h, body) = call(&gw, "/api/profile", &[("authorization", &bearer(&expired))]).await;
    assert_eq!(s, 401);
    let challenge = h["www-authenticate"].to_str().expect("ascii");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("error_description=\"the token has expired\""));
    // The token is never echoed.
    assert!(!body.to_string().contains(&expired[..20]));
    assert!(!challenge.contains(&expired[..20]));
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn requirements_give_403_insufficient_scope() {
    let (up, gw) = setup().await;
    let mut c = full_claims("bob");
    c["scope"] = json!("tasks:read");
    let t = rs256("rsa1", &c);
    let (s, h, body) = call(&gw, "/api/tasks/1", &[("authorization", &bearer(&t))]).await;
    assert_eq!(s, 403);
    assert!(h["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("error=\"insufficient_scope\""));
    assert_eq!(body["error"], "forbidden");
    assert_eq!(up.count(), 0);

    // `scp` array works as well as the `scope` string.
    let mut c = full_claims("bob");
    c.as_object_mut().expect("object").remove("scope");
    c["scp"] = json!(["tasks:write"]);
    let (s, _, _) = call(
        &gw,
        "/api/tasks/1",
        &[("authorization", &bearer(&rs256("rsa1", &c)))],
    )
    .await;
    assert_eq!(s, 200);

    // match: any — one of [admin, ops] is enough; none of them is not.
    let mut c = claims("carol");
    c["realm_access"] = json!({"roles": ["ops"]});
    let ops = rs256("rsa1", &c);
    assert_eq!(
        call(&gw, "/admin/x", &[("authorization", &bearer(&ops))])
            .await
            .0,
        200
    );
    c["realm_access"] = json!({"roles": ["user"]});
    let user = rs256("rsa1", &c);
    assert_eq!(
        call(&gw, "/admin/x", &[("authorization", &bearer(&user))])
            .await
            .0,
        403
    );
    assert_eq!(up.count(), 2);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn client_identity_headers_never_reach_the_upstream_as_sent() {
    let (up, gw) = setup().await;
    let forged = [
        ("x-user-id", "admin"),
        ("x-user-roles", "admin"),
        ("x-jwt-claims", "e30"),
    ];
    // Public route: stripped.
    assert_eq!(call(&gw, "/public/a", &forged).await.0, 200);
    let r = up.last();
    assert!(!r.headers.contains_key("x-user-id"));
    assert!(!r.headers.contains_key("x-user-roles"));
    assert!(!r.headers.contains_key("x-jwt-claims"));
    // Optional route without a token: stripped, request passes anonymously.
    assert_eq!(call(&gw, "/feed", &forged).await.0, 200);
    assert!(!up.last().headers.contains_key("x-user-id"));
    // Protected route with a token: replaced by the verified subject.
    let t = rs256("rsa1", &claims("dave"));
    let mut h = forged.to_vec();
    let auth = bearer(&t);
    h.push(("authorization", &auth));
    assert_eq!(call(&gw, "/api/profile", &h).await.0, 200);
    let r = up.last();
    assert_eq!(r.headers["x-user-id"], "dave");
    assert!(!r.headers.contains_key("x-user-roles"));
    // Protected route without a token: refused, nothing forwarded.
    let before = up.count();
    assert_eq!(call(&gw, "/api/profile", &forged).await.0, 401);
    assert_eq!(up.count(), before);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn optional_route_refuses_a_bad_token() {
    let (up, gw) = setup().await;
    let (s, _, _) = call(&gw, "/feed", &[("authorization", "Bearer not.a.token")]).await;
    assert_eq!(s, 401);
    assert_eq!(up.count(), 0);
    let t = rs256("rsa1", &claims("erin"));
    assert_eq!(
        call(&gw, "/feed", &[("authorization", &bearer(&t))])
            .await
            .0,
        200
    );
    assert_eq!(up.last().headers["x-user-id"], "erin");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn several_providers_are_chosen_by_issuer() {
    let (up, gw) = setup().await;
    let mut c = claims("frank");
    c["iss"] = json!("https://legacy.test");
    let hs = mint(Algorithm::HS256, SECRET, None, &c);
    // `auth: required` uses every provider; the legacy one matches `iss`.
    let (s, _, _) = call(&gw, "/api/profile", &[("authorization", &bearer(&hs))]).await;
    assert_eq!(s, 200);
    let r = up.last();
    assert_eq!(r.headers["x-user-id"], "frank");
    // The legacy provider drops the token and passes all claims as one header.
    assert!(!r.headers.contains_key("authorization"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(r.headers["x-jwt-claims"].as_bytes())
        .expect("base64url");
    let v: Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(v["sub"], "frank");
    // Exactly the payload that was signed, not a re-encoding of it.
    assert_eq!(
        r.headers["x-jwt-claims"],
        hs.split('.').nth(1).expect("payload")
    );
    // A route bound to `main` does not accept the legacy issuer.
    let (s, _, _) = call(&gw, "/api/tasks/1", &[("authorization", &bearer(&hs))]).await;
    assert_eq!(s, 401);
    // Unknown issuer on a multi-provider route: bad issuer.
    c["iss"] = json!("https://evil.test");
    let t = rs256("rsa1", &c);
    let (s, h, _) = call(&gw, "/api/profile", &[("authorization", &bearer(&t))]).await;
    assert_eq!(s, 401);
    assert!(h["www-authenticate"]
        .to_str()
        .expect("ascii")
        .contains("issuer"));
    assert_eq!(up.count(), 1);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn es256_and_eddsa_from_a_jwks_file() {
    let (up, gw) = setup().await;
    for (alg, name) in [(Algorithm::ES256, "ec1"), (Algorithm::EdDSA, "ed1")] {
        let t = mint(alg, name, Some(name), &claims(name));
        let (s, _, _) = call(&gw, "/api/profile", &[("authorization", &bearer(&t))]).await;
        assert_eq!(s, 200, "{name}");
        assert_eq!(up.last().headers["x-user-id"], name);
    }
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn cookie_and_query_tokens_one_source_only() {
    let (up, gw) = setup().await;
    let t = rs256("rsa1", &claims("gina"));
    let cookie = format!("theme=dark; access_token={t}");
    assert_eq!(
        call(&gw, "/api/profile", &[("cookie", &cookie)]).await.0,
        200
    );
    assert_eq!(up.last().headers["x-user-id"], "gina");
    // Query tokens are stripped before forwarding.
    let (s, _, _) = call(&gw, &format!("/api/profile?a=1&access_token={t}&b=2"), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(up.last().uri, "/api/profile?a=1&b=2");
    // Two tokens (header + cookie) are refused.
    let before = up.count();
    let auth = bearer(&t);
    let (s, _, _) = call(
        &gw,
        "/api/profile",
        &[("authorization", &auth), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(s, 401);
    // Two Authorization headers are refused.
    let (s, _, _) = call(
        &gw,
        "/api/profile",
        &[("authorization", &auth), ("authorization", &auth)],
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(up.count(), before);
    assert!(gw.shutdown().await);
}

#[test]
fn config_errors_name_the_field() {
    let bad = |auth: &str, route_auth: &str| {
        let yaml = format!(
            "listeners:\n  - name: t\n    bind: 127.0.0.1:0\nauth:\n  providers:\n{auth}upstreams:\n  u: {{ endpoints: [\"127.0.0.1:9\"] }}\nroutes:\n  - id: r\n    match: {{ path: /x }}\n{route_auth}"
        );
        match gwanmun::config::load_str(&yaml, "t.yaml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let p = format!(
        "    - name: main\n      issuer: {ISSUER}\n      audiences: [a]\n      secret: {SECRET}\n"
    );
    let e = bad(
        &format!("{p}      algorithms: [none]\n"),
        "    upstream: u\n",
    );
    assert!(
        e.contains("auth.providers[0].algorithms[0]") && e.contains("never"),
        "{e}"
    );
    let e = bad(
        &format!("{p}      algorithms: [RS256]\n"),
        "    upstream: u\n",
    );
    assert!(e.contains("RS256 is listed but no configured key"), "{e}");
    let e = bad(
        &format!("{p}      algorithms: [HS256]\n"),
        "    respond: { status: 200 }\n    auth: required\n",
    );
    assert!(
        e.contains("routes[0].auth") && e.contains("upstream"),
        "{e}"
    );
    let e = bad(
        &format!("{p}      algorithms: [HS256]\n"),
        "    upstream: u\n    auth: { provider: nope }\n",
    );
    assert!(
        e.contains("routes[0].auth.provider") && e.contains("undefined"),
        "{e}"
    );
    let e = bad(
        &format!("{p}      algorithms: [HS256]\n      forward_claims: {{ sub: X-User-Id }}\n"),
        "    upstream: u\n    request_headers: { set: { X-User-Id: root } }\n",
    );
    assert!(e.contains("routes[0].request_headers"), "{e}");
    assert_eq!(
        bad(
            &format!("{p}      algorithms: [HS256]\n"),
            "    upstream: u\n    auth: required\n"
        ),
        ""
    );
}

/// Every RSA algorithm end to end (on CPUs with AVX-512 IFMA these go
/// through the gateway's own RSA code, elsewhere through aws-lc): tokens
/// signed by the provider's key pass, each in turn; one signed for another
/// algorithm, by another RSA key, or with one bit changed never reaches the
/// upstream.
#[tokio::test]
async fn every_rsa_algorithm_verifies_and_forgeries_do_not() {
    let up = echo_upstream("task").await;
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  cache_size: 0\n  providers:\n    - name: rsa\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      public_key_pem: {}\n      algorithms: [RS256, RS384, RS512, PS256, PS384, PS512]\n      forward_claims: {{ sub: X-User-Id }}\nupstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: r\n    match: {{ path: /r }}\n    upstream: task\n    auth: required\n",
        fixture_path("rsa1.pub.pem"),
        up.addr
    );
    let gw = start_gateway(&yaml).await;
    let algs = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    for (i, alg) in algs.into_iter().enumerate() {
        let sub = format!("user-{i}");
        let t = mint(alg, "rsa1", None, &claims(&sub));
        let (s, _, _) = call(&gw, "/r", &[("authorization", &bearer(&t))]).await;
        assert_eq!(s, 200, "{alg:?}");
        assert_eq!(up.last().headers["x-user-id"], sub.as_str());
    }
    let passed = up.count();
    let payload = claims("mallory").to_string();
    let rsa1 = key(Algorithm::RS256, "rsa1");
    let rsa2 = key(Algorithm::RS256, "rsa2");
    // A signature made under one algorithm, presented under another.
    let relabelled = |signed_as: Algorithm, header: &str| {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &rsa1, signed_as).expect("sign");
        format!("{input}.{sig}")
    };
    let mut forged = vec![
        // Signed with PSS, labelled PKCS#1 v1.5, and the other way round.
        relabelled(Algorithm::PS256, r#"{"alg":"RS256"}"#),
        relabelled(Algorithm::RS512, r#"{"alg":"PS512"}"#),
        // The right algorithm, another RSA key.
        raw_signed(r#"{"alg":"RS256"}"#, &payload, Algorithm::RS256, &rsa2),
        raw_signed(r#"{"alg":"PS256"}"#, &payload, Algorithm::PS256, &rsa2),
    ];
    // One bit changed in a valid signature, for each padding.
    for alg in [Algorithm::RS256, Algorithm::PS384] {
        let t = mint(alg, "rsa1", None, &claims("mallory"));
        let (input, sig) = t.rsplit_once('.').expect("sig");
        let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .expect("b64");
        sig[100] ^= 0x01;
        forged.push(format!("{input}.{}", b64(&sig)));
    }
    for (i, t) in forged.iter().enumerate() {
        let (s, h, _) = call(&gw, "/r", &[("authorization", &bearer(t))]).await;
        assert_eq!(s, 401, "forgery {i}");
        let challenge = h["www-authenticate"].to_str().expect("ascii");
        assert!(challenge.contains("signature"), "forgery {i}: {challenge}");
    }
    assert_eq!(up.count(), passed);
    assert!(gw.shutdown().await);
}
