//! JWKS over https: a TLS key server on 127.0.0.1 whose certificate is
//! issued by a private CA generated here (rcgen), as a cluster's auth
//! service would have. Trusted through `jwks_ca_file`, tokens verify;
//! without it the handshake fails and requests get 503, never 401.

#[path = "fixtures/jwt/mint.rs"]
mod mint;
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mint::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use support::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A private CA (its PEM in a file) and a TLS JWKS server on 127.0.0.1
/// with a certificate it issued for that IP address.
struct TlsJwks {
    addr: SocketAddr,
    ca_file: PathBuf,
    /// TCP connections accepted (handshakes attempted).
    accepted: Arc<AtomicUsize>,
    /// JWKS documents served (handshakes that succeeded).
    served: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TlsJwks {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

impl TlsJwks {
    fn url(&self) -> String {
        format!("https://{}/.well-known/jwks.json", self.addr)
    }
}

fn tls_config() -> (rustls::ServerConfig, String) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "gwanmun test CA");
    let ca = ca.self_signed(&ca_key).expect("ca cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    (config, ca.pem())
}

async fn tls_jwks_server(doc: Value) -> TlsJwks {
    let (config, ca_pem) = tls_config();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ca_file = std::env::temp_dir().join(format!(
        "gwanmun-jwks-ca-{}-{}.pem",
        std::process::id(),
        addr.port()
    ));
    std::fs::write(&ca_file, ca_pem).expect("write CA");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let body = Bytes::from(doc.to_string());
    let accepted = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let (a, s) = (accepted.clone(), served.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let (acceptor, body, s) = (acceptor.clone(), body.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |_req| {
                    s.fetch_add(1, Ordering::SeqCst);
                    let resp = Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()));
                    async move { Ok::<_, Infallible>(resp.expect("response")) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TlsJwks {
        addr,
        ca_file,
        accepted,
        served,
        task,
    }
}

async fn gateway(up: &Upstream, jwks: &TlsJwks, ca_line: &str) -> Gw {
    let yaml = format!(
        "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      jwks_url: {}\n{ca_line}      algorithms: [RS256]\n      jwks_refresh: 1s\n      forward_claims: {{ sub: X-User-Id }}\nupstreams:\n  task: {{ endpoints: [\"{}\"] }}\nroutes:\n  - id: ready\n    match: {{ path: /readyz }}\n    health: ready\n  - id: api\n    match: {{ path: /api/** }}\n    upstream: task\n    auth: required\n",
        jwks.url(),
        up.addr
    );
    start_gateway(&yaml).await
}

async fn try_token(gw: &Gw, token: &str) -> (StatusCode, Value) {
    get_with_bearer(gw, "/api/x", token).await
}

#[tokio::test]
async fn https_jwks_trusted_through_a_private_ca_verifies_tokens() {
    let up = echo_upstream("task").await;
    let jwks = tls_jwks_server(mint::jwks(&["rsa1"])).await;
    let ca_line = format!("      jwks_ca_file: {}\n", jwks.ca_file.display());
    let gw = gateway(&up, &jwks, &ca_line).await;
    let served = jwks.served.clone();
    assert!(
        wait_until(
            || served.load(Ordering::SeqCst) >= 1,
            Duration::from_secs(10)
        )
        .await,
        "the JWKS was never fetched over TLS"
    );
    let token = rs256("rsa1", &claims("alice"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut status = try_token(&gw, &token).await.0;
    while status != 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = try_token(&gw, &token).await.0;
    }
    assert_eq!(status, 200);
    assert_eq!(up.last().headers["x-user-id"], "alice");
    assert_eq!(get(&gw.url("/readyz")).await.0, 200);
    assert!(gw.shutdown().await);
}

#[tokio::test]
async fn https_jwks_with_an_untrusted_certificate_is_503_never_401() {
    let up = echo_upstream("task").await;
    let jwks = tls_jwks_server(mint::jwks(&["rsa1"])).await;
    // No jwks_ca_file: the public roots do not know the private CA.
    let gw = gateway(&up, &jwks, "").await;
    let accepted = jwks.accepted.clone();
    assert!(
        wait_until(
            || accepted.load(Ordering::SeqCst) >= 2,
            Duration::from_secs(10)
        )
        .await,
        "the gateway never tried (and retried) the key server"
    );
    let (s, body) = try_token(&gw, &rs256("rsa1", &claims("alice"))).await;
    assert_eq!(s, 503);
    assert_eq!(body["error"], "signing_keys_unavailable");
    assert_eq!(
        jwks.served.load(Ordering::SeqCst),
        0,
        "a handshake succeeded"
    );
    assert_eq!(up.count(), 0);
    let (s, _, b) = get(&gw.url("/readyz")).await;
    assert_eq!(s, 503);
    let body: Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(body["error"], "not_ready");
    assert!(gw.shutdown().await);
}

#[test]
fn jwks_ca_file_is_checked_at_load() {
    let provider = |url: &str, ca: &str| {
        format!(
            "listeners:\n  - name: test\n    bind: 127.0.0.1:0\nauth:\n  providers:\n    - name: main\n      issuer: {ISSUER}\n      audiences: [{AUDIENCE}]\n      jwks_url: {url}\n      jwks_ca_file: {ca}\n      algorithms: [RS256]\n"
        )
    };
    let err = |yaml: String| {
        let e = gwanmun::config::load_str(&yaml, "t.yaml")
            .expect_err("must be rejected")
            .0;
        (e[0].field.clone(), e[0].message.clone(), e[0].pos.is_some())
    };
    let (field, msg, pos) = err(provider(
        "https://127.0.0.1:1/jwks.json",
        "/nonexistent/ca.pem",
    ));
    assert_eq!(field, "auth.providers[0].jwks_ca_file");
    assert!(msg.contains("cannot read `/nonexistent/ca.pem`"), "{msg}");
    assert!(pos);
    let not_pem = fixture_path("rsa1.pub.pem");
    let (field, msg, _) = err(provider("https://127.0.0.1:1/jwks.json", &not_pem));
    assert_eq!(field, "auth.providers[0].jwks_ca_file");
    assert!(msg.contains("no `-----BEGIN CERTIFICATE-----`"), "{msg}");
    let (field, msg, _) = err(provider("http://127.0.0.1:1/jwks.json", &not_pem));
    assert_eq!(field, "auth.providers[0].jwks_ca_file");
    assert!(msg.contains("only to an https `jwks_url`"), "{msg}");
    // https without a CA file loads (public roots).
    let yaml =
        provider("https://auth.example.com/jwks.json", "x").replace("      jwks_ca_file: x\n", "");
    assert!(gwanmun::config::load_str(&yaml, "t.yaml").is_ok());
}
