//! The serde mirror of the `auth:` section and of a route's `auth:` field.
//! Unknown keys are rejected; all checks happen in `auth::compile`.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

use crate::config::units::{Dur, Size, Text};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Policy of routes without an `auth:` field: none (default), optional, required.
    pub default: Option<Text>,
    /// Entries of the verified-token cache (default 10000; 0 disables it).
    pub cache_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: Text,
    pub issuer: Text,
    #[serde(default)]
    pub audiences: Vec<Text>,
    pub jwks_url: Option<Text>,
    /// PEM bundle of the CA(s) that alone are trusted for an https `jwks_url`.
    pub jwks_ca_file: Option<Text>,
    pub jwks_file: Option<Text>,
    /// Inline PEM text, or a path to a PEM file.
    pub public_key_pem: Option<Text>,
    /// The `kid` given to `public_key_pem` / `secret` keys (optional).
    pub kid: Option<Text>,
    pub secret: Option<Secret>,
    #[serde(default)]
    pub algorithms: Vec<Text>,
    pub leeway: Option<Dur>,
    pub require_exp: Option<bool>,
    #[serde(default)]
    pub required_claims: Vec<Text>,
    pub identity_claim: Option<Text>,
    pub roles_claim: Option<Text>,
    pub token_from: Option<Vec<RawTokenSource>>,
    #[serde(default)]
    pub forward_claims: IndexMap<Text, Text>,
    pub forward_token: Option<bool>,
    pub claims_header: Option<Text>,
    pub max_token_bytes: Option<Size>,
    pub jwks_refresh: Option<Dur>,
    pub jwks_min_refetch: Option<Dur>,
    pub jwks_timeout: Option<Dur>,
}

/// An HMAC secret (usually `${JWT_SECRET}`); `Debug` never prints it.
pub struct Secret(pub Text);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(Secret)
    }
}

/// `{ header: Authorization, prefix: "Bearer " }`, `{ cookie: NAME }` or
/// `{ query: NAME }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenSource {
    pub header: Option<Text>,
    pub prefix: Option<Text>,
    pub cookie: Option<Text>,
    pub query: Option<Text>,
}

/// A route's `auth:`: `none` | `optional` | `required` | a map.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRouteAuth {
    Mode(Text),
    Spec(RawRouteAuthSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteAuthSpec {
    pub provider: Option<Text>,
    pub providers: Option<Vec<Text>>,
    pub optional: Option<bool>,
    pub require: Option<RawRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    #[serde(default)]
    pub scopes: Vec<Text>,
    #[serde(default)]
    pub roles: Vec<Text>,
    #[serde(default)]
    pub claims: IndexMap<Text, RawClaimValue>,
    /// `all` (default) or `any`.
    #[serde(rename = "match")]
    pub mode: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawClaimValue {
    One(Text),
    Many(Vec<Text>),
}
