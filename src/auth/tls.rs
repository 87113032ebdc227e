//! The TLS client of the JWKS fetcher: rustls on the `aws-lc-rs` provider
//! (the library that already verifies our signatures: one crypto library),
//! HTTP/1.1 only.
//!
//! An `https` `jwks_url` is verified against Mozilla's roots (webpki-roots:
//! compiled in, so a scratch or distroless image needs no system store), or,
//! when the provider sets `jwks_ca_file`, against that PEM bundle ONLY: a
//! cluster's auth service behind a private CA is trusted without also letting
//! every public CA vouch for the server that hands us signing keys.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Builds the client configuration once, at config load, so an unreadable
/// or empty CA bundle is a config error with its field, not a runtime one.
pub fn client_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let roots = match ca_file {
        Some(path) => private_roots(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every `CERTIFICATE` block of a PEM file, as trust anchors.
fn private_roots(path: &str) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| format!("`{path}`: invalid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("`{path}`: certificate {} is not usable: {e}", i + 1))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "`{path}` holds no `-----BEGIN CERTIFICATE-----` block"
        ));
    }
    Ok(roots)
}

/// The fetcher's connector: plain TCP for `http` URLs, TLS for `https`.
pub fn connector(
    config: &ClientConfig,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    // The TLS layer above takes `https` URIs; plain HttpConnector refuses them.
    http.enforce_http(false);
    HttpsConnectorBuilder::new()
        .with_tls_config(config.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_roots_by_default_and_a_ca_file_must_hold_certificates() {
        assert!(client_config(None).is_ok());
        let dir = std::env::temp_dir().join(format!("gwanmun-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = client_config(empty.to_str()).expect_err("empty bundle");
        assert!(e.contains("no `-----BEGIN CERTIFICATE-----`"), "{e}");
        let e = client_config(Some("/nonexistent/ca.pem")).expect_err("missing");
        assert!(e.contains("cannot read"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
