//! Compiled (immutable) auth configuration: providers, per-route policies
//! and requirements. Built once by `auth::compile`, shared by every request;
//! runtime key state lives beside it in [`super::AuthRuntime`].

use std::sync::Arc;
use std::time::Duration;

use http::uri::Uri;
use http::HeaderName;

use super::keys::{Alg, KeySet};

/// Everything under `auth:` once compiled.
#[derive(Debug, Default)]
pub struct AuthConfig {
    pub providers: Vec<Arc<Provider>>,
    /// Every header any provider sets from claims: stripped from EVERY
    /// incoming request before anything else.
    pub identity_headers: Vec<HeaderName>,
    /// Bound on the verified-token cache.
    pub cache_size: usize,
}

impl AuthConfig {
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| &*p.name == name)
    }
}

/// One token issuer and how to trust it.
#[derive(Debug)]
pub struct Provider {
    pub name: Arc<str>,
    pub issuer: String,
    /// The token's `aud` must intersect these.
    pub audiences: Vec<String>,
    pub algorithms: Vec<Alg>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    pub require_exp: bool,
    pub required_claims: Vec<ClaimPath>,
    /// Must be a non-empty string of safe characters.
    pub identity_claim: ClaimPath,
    pub roles_claim: ClaimPath,
    /// PEM keys, HMAC secrets and a JWKS file: fixed for the snapshot.
    pub static_keys: KeySet,
    pub jwks: Option<JwksSource>,
    pub token_from: Vec<TokenSource>,
    pub forward_claims: Vec<(ClaimPath, HeaderName)>,
    /// Keep the token where it came from (`true`) or remove it before forwarding.
    pub forward_token: bool,
    /// All verified claims, base64url JSON, in this header.
    pub claims_header: Option<HeaderName>,
    pub max_token_bytes: usize,
}

/// A remote JWKS document and its refresh policy.
#[derive(Debug, Clone)]
pub struct JwksSource {
    pub url: Uri,
    /// Trust for an `https` URL: public roots, or only `jwks_ca_file`.
    pub tls: Arc<rustls::ClientConfig>,
    pub refresh: Duration,
    pub min_refetch: Duration,
    pub timeout: Duration,
}

/// Where a token may be found. Only one token per request is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header, with a prefix matched case-insensitively (e.g. `Bearer `).
    Header {
        name: HeaderName,
        prefix: String,
    },
    Cookie(String),
    /// A query parameter: only when configured; stripped before forwarding.
    Query(String),
}

/// A claim addressed by a dotted path (`realm_access.roles`). A top-level
/// claim whose name itself contains dots (`https://x.io/roles`) is found too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    pub full: String,
    segments: Vec<String>,
}

impl ClaimPath {
    pub fn parse(s: &str) -> Option<ClaimPath> {
        if s.is_empty() {
            return None;
        }
        Some(ClaimPath {
            full: s.to_owned(),
            segments: s.split('.').map(str::to_owned).collect(),
        })
    }

    /// The path's dot-separated names.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

/// The per-route auth policy.
#[derive(Debug, Clone, Default)]
pub enum RouteAuth {
    #[default]
    None,
    Check(Arc<RoutePolicy>),
}

#[derive(Debug)]
pub struct RoutePolicy {
    /// Indices into `AuthConfig::providers`; tokens are matched by `iss`.
    pub providers: Vec<usize>,
    /// A missing token passes as anonymous (a bad one still fails).
    pub optional: bool,
    pub require: Option<Requirements>,
    /// The union of the providers' token sources.
    pub sources: Vec<TokenSource>,
    pub max_token_bytes: usize,
}

/// Claim-based requirements, combined with all (default) or any.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub claims: Vec<(ClaimPath, Vec<String>)>,
    pub any: bool,
}
