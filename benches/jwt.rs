//! JWT verification: RS256, ES256 and HS256, cold (full parse + signature +
//! claims, what a first request costs) and cached (the SHA-256 of the token
//! and a cache lookup, what a repeated token costs).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use gwanmun::auth::cache::{token_hash, Claims, Entry, TokenCache};
use gwanmun::auth::keys::{lookup, Lookup};
use gwanmun::auth::{verify, Provider};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef-bench-secret";

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(p).expect("fixture")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn provider(alg: &str, keys: &str) -> Arc<Provider> {
    let yaml = format!(
        "listeners:\n  - name: b\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: p\n      issuer: https://auth.bench\n      audiences: [api]\n      algorithms: [{alg}]\n{keys}"
    );
    let snap = gwanmun::config::load_str(&yaml, "bench.yaml").expect("config");
    snap.auth.providers[0].clone()
}

fn token(alg: Algorithm, key: &EncodingKey, kid: &str) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    let claims = json!({"iss":"https://auth.bench","aud":"api","sub":"user-1","exp": now() + 3600,"scope":"a b c"});
    jsonwebtoken::encode(&h, &claims, key).expect("encode")
}

/// Everything a cold request does after extracting the token.
fn verify_cold(p: &Provider, token: &str) -> bool {
    let Ok(parsed) = verify::parse(token, p.max_token_bytes) else {
        return false;
    };
    let Lookup::Found(keys) = lookup(&[&p.static_keys], parsed.kid.as_deref(), parsed.alg) else {
        return false;
    };
    verify::check_signature(&parsed, &keys).is_some()
        && verify::check_claims(p, &parsed.claims, now()).is_ok()
}

fn bench(c: &mut Criterion) {
    let rsa_pem = format!(
        "      public_key_pem: {}/tests/fixtures/jwt/rsa1.pub.pem\n      kid: rsa1\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let ec = format!(
        "      jwks_file: {}/tests/fixtures/jwt/ec-ed.jwks.json\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let hs = format!("      secret: {SECRET}\n      kid: hs\n");
    let cases = [
        (
            "RS256",
            provider("RS256", &rsa_pem),
            token(
                Algorithm::RS256,
                &EncodingKey::from_rsa_pem(fixture("rsa1.key.pem").as_bytes()).expect("rsa"),
                "rsa1",
            ),
        ),
        (
            "ES256",
            provider("ES256", &ec),
            token(
                Algorithm::ES256,
                &EncodingKey::from_ec_pem(fixture("ec1.key.pem").as_bytes()).expect("ec"),
                "ec1",
            ),
        ),
        (
            "HS256",
            provider("HS256", &hs),
            token(
                Algorithm::HS256,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                "hs",
            ),
        ),
    ];
    rsa_side_by_side(c, &cases[0].2);
    authenticate_step(c);
    let cache = TokenCache::new(10_000);
    for (name, p, t) in &cases {
        assert!(verify_cold(p, t), "{name} token does not verify");
        c.bench_function(&format!("{name} verify cold"), |b| {
            b.iter(|| verify_cold(p, std::hint::black_box(t)))
        });
        let entry = Entry {
            provider: 0,
            key_fingerprint: p.static_keys.keys[0].fingerprint,
            expires_at: now() + 3600,
            claims: Arc::new(Claims::parse("{}".into()).expect("claims")),
        };
        // A token is admitted on its second verification.
        cache.insert(token_hash(t), entry.clone(), now());
        cache.insert(token_hash(t), entry, now());
        assert!(
            cache.get(&token_hash(t), now()).is_some(),
            "{name} not cached"
        );
        c.bench_function(&format!("{name} verify cached"), |b| {
            b.iter(|| {
                let e = cache.get(&token_hash(std::hint::black_box(t)), now());
                e.is_some_and(|e| p.static_keys.contains(e.key_fingerprint))
            })
        });
    }
}

/// The RSA-2048 PKCS#1 check alone, on one key and signature: aws-lc's
/// parsed key against the AVX-512 IFMA path (where this CPU has it).
fn rsa_side_by_side(c: &mut Criterion, token: &str) {
    use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use gwanmun::auth::rsa_ifma::{RsaHash, RsaPublic};
    let jwk: serde_json::Value = serde_json::from_str(&fixture("rsa1.jwk.json")).expect("jwk");
    let b64 = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().expect(k)).expect(k);
    let (n, e) = (b64("n"), b64("e"));
    let (input, sig) = token.rsplit_once('.').expect("token");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
    let aws = RsaPublicKeyComponents {
        n: n.as_slice(),
        e: e.as_slice(),
    }
    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
    .expect("key");
    assert!(aws.verify_sig(input.as_bytes(), &sig).is_ok());
    c.bench_function("RSA-2048 PKCS#1 SHA-256 verify, aws-lc", |b| {
        b.iter(|| {
            aws.verify_sig(std::hint::black_box(input.as_bytes()), &sig)
                .is_ok()
        })
    });
    if let Some(vector) = RsaPublic::new(&n, &e) {
        assert!(vector.verify_pkcs1(RsaHash::Sha256, input.as_bytes(), &sig));
        c.bench_function("RSA-2048 PKCS#1 SHA-256 verify, AVX-512 IFMA", |b| {
            b.iter(|| {
                vector.verify_pkcs1(
                    RsaHash::Sha256,
                    std::hint::black_box(input.as_bytes()),
                    &sig,
                )
            })
        });
    } else {
        eprintln!("no AVX-512 IFMA on this CPU: only aws-lc measured");
    }
}

/// Steps 4 and 5 as a request runs them (token from the header, cache,
/// verification, identity headers, token removed), HS256: one token
/// repeated, and 10,000 distinct tokens in turn through a cache of 1,000
/// (the load benchmark's "many tokens" case: every request verifies cold).
fn authenticate_step(c: &mut Criterion) {
    use futures_util::FutureExt;
    use gwanmun::auth::{authenticate, authorize, AuthRuntime};
    let yaml = format!(
        "listeners:\n  - name: b\n    bind: 127.0.0.1:0\nupstreams:\n  u: {{ endpoints: [\"127.0.0.1:1\"] }}\nroutes:\n  - {{ id: all, match: {{ path: /** }}, upstream: u }}\nauth:\n  default: required\n  cache_size: 1000\n  providers:\n    - name: p\n      issuer: https://auth.bench\n      audiences: [api]\n      algorithms: [HS256]\n      secret: {SECRET}\n"
    );
    let snap = gwanmun::config::load_str(&yaml, "bench.yaml").expect("config");
    let route = &snap.router.routes()[0].auth;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let tokens: Vec<String> = (0..10_000)
        .map(|i| {
            let claims = json!({"sub": format!("user-{i}"), "iss": "https://auth.bench", "aud": "api",
                "exp": now() + 3600, "roles": ["user"], "scope": "tasks:read"});
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode")
        })
        .collect();
    let requests: Vec<http::request::Parts> = tokens
        .iter()
        .map(|t| {
            http::Request::get("/api/bench")
                .header("authorization", format!("Bearer {t}"))
                .body(())
                .expect("request")
                .into_parts()
                .0
        })
        .collect();
    let rt = AuthRuntime::new(&snap.auth, None);
    let run = |parts: &http::request::Parts| {
        let mut parts = parts.clone();
        let id = authenticate(&rt, &snap.auth, route, &mut parts)
            .now_or_never()
            .expect("no wait")
            .expect("verified");
        authorize(&snap.auth, route, id, &mut parts.headers).expect("authorized");
        parts
    };
    c.bench_function("HS256 authenticate step, one token", |b| {
        b.iter(|| run(std::hint::black_box(&requests[0])))
    });
    let mut i = 0;
    c.bench_function("HS256 authenticate step, 10,000 tokens, cache 1,000", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            run(std::hint::black_box(&requests[i]))
        })
    });
    let plain = requests[0].clone();
    c.bench_function("request parts clone (the floor of the two above)", |b| {
        b.iter(|| std::hint::black_box(&plain).clone())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
