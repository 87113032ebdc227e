//! Every attack case of issue 3: each asserts the status, the reason in the
//! challenge where it is specific, and that nothing reached the upstream.

#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use mint::*;
use serde_json::json;
use support::*;

/// RS256 and ES256 keys plus an HMAC secret on one provider, so key-type
/// confusion is really exercised (HS256 is an allowed algorithm).
async fn setup() -> (Upstream, Gw) {
    let up = echo_upstream("task").await;
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      public_key_pem: {}\n      kid: rsa1\n      secret: {SECRET}\n      jwks_file: {}\n      algorithms: [RS256, ES256, HS256]\n      forward_claims: {{ sub: X-User-Id }}\nupstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: api\n    match: {{ path: /api/** }}\n    upstream: task\n    auth: required\n",
        fixture_path("rsa1.pub.pem"),
        fixture_path("ec-ed.jwks.json"),
        up.addr
    );
    (up, start_gateway(&yaml).await)
}

async fn try_token(gw: &Gw, token: &str) -> (StatusCode, HeaderMap) {
    let req = Request::get(gw.url("/api/x"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (s, h, _) = send(req).await;
    (s, h)
}

/// Asserts a 401 (mentioning `why` in the challenge) and an untouched upstream.
async fn refused(gw: &Gw, up: &Upstream, name: &str, token: &str, why: &str) {
    let (s, h) = try_token(gw, token).await;
    assert_eq!(s, 401, "{name}: expected 401");
    let challenge = h["www-authenticate"].to_str().expect("ascii").to_owned();
    assert!(
        challenge.contains("invalid_token") && challenge.contains(why),
        "{name}: {challenge}"
    );
    assert_eq!(up.count(), 0, "{name}: the upstream was reached");
}

fn payload() -> String {
    claims("alice").to_string()
}

#[tokio::test]
async fn alg_none_in_any_casing() {
    let (up, gw) = setup().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let unsigned = format!("{}.{}.", b64(h.as_bytes()), b64(payload().as_bytes()));
        refused(&gw, &up, alg, &unsigned, "algorithm").await;
        let sig = raw_token(&h, &payload(), b"x");
        refused(&gw, &up, alg, &sig, "algorithm").await;
    }
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key() {
    let (up, gw) = setup().await;
    let pem = fixture("rsa1.pub.pem");
    for kid in [Some("rsa1"), None] {
        let t = mint(Algorithm::HS256, &pem, kid, &claims("alice"));
        refused(&gw, &up, "hs256-with-pem", &t, "").await;
    }
    // Positive control: the real secret works.
    let ok = mint(Algorithm::HS256, SECRET, None, &claims("alice"));
    assert_eq!(try_token(&gw, &ok).await.0, 200);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn hostile_kids() {
    let (up, gw) = setup().await;
    for kid in [
        "../../../../../../etc/passwd",
        "x' OR '1'='1",
        "rsa1\u{0}",
        "/dev/null",
    ] {
        let t = mint(Algorithm::RS256, "attacker", Some(kid), &claims("alice"));
        refused(&gw, &up, kid, &t, "key is unknown").await;
    }
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn embedded_jwk_jku_x5u_never_supply_keys() {
    let (up, gw) = setup().await;
    let lure = jwks_server(jwks(&["attacker"])).await;
    let attacker = key(Algorithm::RS256, "attacker");
    let jwk = jwk("attacker");
    let headers = [
        json!({"alg":"RS256","jwk": jwk}),
        json!({"alg":"RS256","kid":"rsa1","jwk": jwk}),
        json!({"alg":"RS256","kid":"attacker","jku": lure.url()}),
        json!({"alg":"RS256","kid":"attacker","x5u": lure.url()}),
        json!({"alg":"RS256","x5c":["MIIB"]}),
    ];
    for h in headers {
        let t = raw_signed(&h.to_string(), &payload(), Algorithm::RS256, &attacker);
        refused(&gw, &up, &h.to_string(), &t, "").await;
    }
    assert_eq!(lure.hits(), 0, "the gateway fetched a URL named by a token");
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn ecdsa_signature_of_zeros_and_stripped_signatures() {
    let (up, gw) = setup().await;
    let h = r#"{"alg":"ES256","kid":"ec1"}"#;
    refused(
        &gw,
        &up,
        "zeros",
        &raw_token(h, &payload(), &[0u8; 64]),
        "signature",
    )
    .await;
    let good = mint(Algorithm::RS256, "rsa1", Some("rsa1"), &claims("alice"));
    let (head, _) = good.rsplit_once('.').expect("three parts");
    refused(&gw, &up, "stripped", &format!("{head}."), "signature").await;
    // A signature from another key.
    let other = mint(Algorithm::RS256, "attacker", Some("rsa1"), &claims("alice"));
    refused(&gw, &up, "other-key", &other, "signature").await;
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn time_issuer_and_audience_claims() {
    let (up, gw) = setup().await;
    let t = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims("alice");
        f(&mut c);
        mint(Algorithm::RS256, "rsa1", Some("rsa1"), &c)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", t(&|c| c["exp"] = json!(now() - 120)), "expired"),
        (
            "nbf future",
            t(&|c| c["nbf"] = json!(now() + 3600)),
            "not yet valid",
        ),
        (
            "iat future",
            t(&|c| c["iat"] = json!(now() + 3600)),
            "not yet valid",
        ),
        (
            "issuer",
            t(&|c| c["iss"] = json!("https://evil.test")),
            "issuer",
        ),
        (
            "no issuer",
            t(&|c| {
                c.as_object_mut().map(|o| o.remove("iss"));
            }),
            "issuer",
        ),
        (
            "audience",
            t(&|c| c["aud"] = json!("other-api")),
            "audience",
        ),
        (
            "aud array",
            t(&|c| c["aud"] = json!(["a", "b"])),
            "audience",
        ),
        (
            "missing exp",
            t(&|c| {
                c.as_object_mut().map(|o| o.remove("exp"));
            }),
            "malformed",
        ),
        (
            "string exp",
            t(&|c| c["exp"] = json!("99999999999")),
            "malformed",
        ),
        (
            "crlf sub",
            t(&|c| c["sub"] = json!("a\r\nX-Admin: 1")),
            "malformed",
        ),
        ("empty sub", t(&|c| c["sub"] = json!("")), "malformed"),
    ];
    for (name, token, why) in cases {
        refused(&gw, &up, name, &token, why).await;
    }
    // Positive control: an audience array that includes ours is accepted.
    let ok = t(&|c| c["aud"] = json!(["other", AUDIENCE]));
    assert_eq!(try_token(&gw, &ok).await.0, 200);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn malformed_tokens() {
    let (up, gw) = setup().await;
    let rsa = key(Algorithm::RS256, "rsa1");
    let good = mint(Algorithm::RS256, "rsa1", Some("rsa1"), &claims("alice"));
    let parts: Vec<&str> = good.split('.').collect();
    let big = {
        let mut c = claims("alice");
        c["pad"] = json!("x".repeat(16 * 1024));
        mint(Algorithm::RS256, "rsa1", Some("rsa1"), &c)
    };
    let dup_payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","sub":"admin","exp":{}}}"#,
        now() + 600
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "bad base64",
            format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        ),
        ("padded", format!("{}=.{}.{}", parts[0], parts[1], parts[2])),
        (
            "bad json",
            raw_signed("{not json", &payload(), Algorithm::RS256, &rsa),
        ),
        (
            "json array",
            raw_signed("[1]", &payload(), Algorithm::RS256, &rsa),
        ),
        ("2 segments", format!("{}.{}", parts[0], parts[1])),
        ("4 segments", format!("{good}.{}", parts[2])),
        (
            "JWE (5 segments)",
            format!(
                "{}.{}.{}.{}.{}",
                parts[0], parts[1], parts[2], parts[1], parts[2]
            ),
        ),
        (
            "enc header",
            raw_signed(
                r#"{"alg":"RS256","kid":"rsa1","enc":"A256GCM"}"#,
                &payload(),
                Algorithm::RS256,
                &rsa,
            ),
        ),
        (
            "unknown crit",
            raw_signed(
                r#"{"alg":"RS256","kid":"rsa1","crit":["b64"],"b64":false}"#,
                &payload(),
                Algorithm::RS256,
                &rsa,
            ),
        ),
        (
            "duplicate claims",
            raw_signed(
                r#"{"alg":"RS256","kid":"rsa1"}"#,
                &dup_payload,
                Algorithm::RS256,
                &rsa,
            ),
        ),
        (
            "duplicate header",
            raw_signed(
                r#"{"alg":"HS256","alg":"RS256","kid":"rsa1"}"#,
                &payload(),
                Algorithm::RS256,
                &rsa,
            ),
        ),
        ("16 KB token", big),
    ];
    // Validly signed payloads that only the JSON reader can refuse: a name
    // repeated through an escape or deep inside a value, a lone surrogate,
    // a number no double holds, nesting past 64, a trailing comma.
    let exp = now() + 600;
    let base = format!(r#""iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp}"#);
    let deep = format!("{}1{}", "[".repeat(64), "]".repeat(64));
    let cases: Vec<(&str, String)> = cases
        .into_iter()
        .chain(
            [
                (
                    "escaped repeat",
                    format!(r#"{{{base},"sub":"alice","s\u0075b":"admin"}}"#),
                ),
                (
                    "nested repeat",
                    format!(r#"{{{base},"sub":"alice","x":[{{"r":1,"r":2}}]}}"#),
                ),
                (
                    "lone surrogate",
                    format!(r#"{{{base},"sub":"alice\ud800"}}"#),
                ),
                ("1e400", format!(r#"{{{base},"sub":"alice","n":1e400}}"#)),
                (
                    "nested 65 deep",
                    format!(r#"{{{base},"sub":"alice","x":{deep}}}"#),
                ),
                ("trailing comma", format!(r#"{{{base},"sub":"alice",}}"#)),
            ]
            .map(|(name, p)| {
                let header = r#"{"alg":"RS256","kid":"rsa1"}"#;
                (name, raw_signed(header, &p, Algorithm::RS256, &rsa))
            }),
        )
        .collect();
    for (name, token) in cases {
        refused(&gw, &up, name, &token, "malformed").await;
    }
    // Positive control: the well-formed token passes.
    assert_eq!(try_token(&gw, &good).await.0, 200);
    assert!(gw.shutdown().await);
}
