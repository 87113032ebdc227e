//! JWT authentication and claim-based authorization: pipeline steps 4 and 5.
//!
//! - [`compile`]: `auth:` config -> [`AuthConfig`] (in the snapshot) and a
//!   route's `auth:` -> [`RouteAuth`] (on the route)
//! - [`keys`]: algorithms, JWK/PEM/HMAC keys, key sets, key choice by kid + alg
//! - [`verify`]: strict JWS parsing and claim checks
//! - [`json`]: the strict one-pass JSON reader for token headers and claims
//! - [`jwks`]: remote key sets, refreshed in the background
//! - [`tls`]: the JWKS fetcher's TLS client (rustls on aws-lc-rs, optional private CA)
//! - [`cache`]: verified tokens by hash, until `exp` or until their key goes
//! - [`claims`]: verified claims, read in place from the token's JSON
//! - [`authorize`]: scopes, roles, claim values; identity headers
//! - [`token`]: the one token of a request and its removal
//! - [`reason`]: rejection reasons and their counters
//!
//! Runtime state ([`AuthRuntime`]: key sets, the cache) lives beside the
//! snapshot in `pipeline::Active`, indexed like `AuthConfig::providers`.
//! The token is never logged, echoed or stored (the cache keys on its hash).

pub mod authorize;
pub mod b64url;
pub mod cache;
pub mod claims;
pub mod compile;
pub mod json;
pub mod jwks;
pub mod keys;
pub mod provider;
pub mod raw;
pub mod reason;
pub mod rsa_ifma;
pub mod tls;
pub mod token;
pub mod verify;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::request::Parts;
use http::HeaderMap;

pub use provider::{AuthConfig, Provider, RouteAuth, RoutePolicy};
pub use reason::{counts, Reason};

use crate::errors::GatewayError;
use cache::{Entry, TokenCache};
use claims::Claims;
use jwks::{Refetch, RemoteKeys};
use keys::{KeySet, Lookup};
use provider::TokenSource;
use reason::{count, Outcome};
use verify::Parsed;

/// Key sets and the verified-token cache for one snapshot's providers.
#[derive(Debug)]
pub struct AuthRuntime {
    /// Indexed like `AuthConfig::providers`; `None` without a `jwks_url`.
    remotes: Vec<Option<Arc<RemoteKeys>>>,
    cache: TokenCache,
}

/// Who the verified token says the caller is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Index into `AuthConfig::providers`.
    pub provider: usize,
    pub claims: Arc<Claims>,
}

impl AuthRuntime {
    /// Builds the runtime and starts the JWKS refreshers (when called inside
    /// a tokio runtime). Key sets already loaded by `previous` for a
    /// provider of the same name and URL are carried over (config reload).
    pub fn new(cfg: &AuthConfig, previous: Option<(&AuthConfig, &AuthRuntime)>) -> AuthRuntime {
        let remotes = cfg
            .providers
            .iter()
            .map(|p| {
                let src = p.jwks.clone()?;
                let url = src.url.clone();
                let remote = Arc::new(RemoteKeys::new(p.name.clone(), src));
                let carried = previous.and_then(|(pcfg, prt)| {
                    let i = pcfg.provider_index(&p.name)?;
                    let same_url = pcfg.providers[i].jwks.as_ref().map(|j| &j.url) == Some(&url);
                    prt.remotes.get(i)?.as_ref().filter(|_| same_url)?.current()
                });
                if let Some(set) = carried {
                    remote.adopt(set);
                }
                jwks::spawn_refresher(&remote);
                Some(remote)
            })
            .collect();
        AuthRuntime {
            remotes,
            cache: TokenCache::new(cfg.cache_size),
        }
    }

    /// True when every provider with a JWKS URL has loaded a key set: the
    /// gateway should not report itself ready before.
    pub fn ready(&self) -> bool {
        self.remotes.iter().flatten().all(|r| r.current().is_some())
    }

    /// The remote key state of provider `i`, if it has a `jwks_url`.
    pub fn remote(&self, i: usize) -> Option<&Arc<RemoteKeys>> {
        self.remotes.get(i)?.as_ref()
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// Step 1 helper: removes every header any provider sets from claims, so a
/// client can never supply its own identity, on any route.
pub fn strip_identity_headers(cfg: &AuthConfig, headers: &mut HeaderMap) {
    crate::proxy::headers::remove_all(headers, &cfg.identity_headers);
}

fn reject(r: Reason) -> GatewayError {
    count(Outcome::Rejected(r));
    tracing::debug!(reason = r.code(), "token rejected");
    if r == Reason::InsufficientScope {
        GatewayError::Forbidden
    } else {
        GatewayError::Unauthorized(r)
    }
}

fn unavailable(p: &Provider) -> GatewayError {
    count(Outcome::KeysUnavailable);
    tracing::warn!(provider = %p.name, "signing keys unavailable");
    GatewayError::SigningKeysUnavailable
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Step 4: finds and verifies the route's token. `Ok(None)`: no auth on
/// this route, or an optional route without a token.
pub async fn authenticate(
    rt: &AuthRuntime,
    cfg: &AuthConfig,
    route: &RouteAuth,
    parts: &mut Parts,
) -> Result<Option<Identity>, GatewayError> {
    let RouteAuth::Check(policy) = route else {
        return Ok(None);
    };
    // The token is read where it is in the request (no copy); the request
    // is changed (token removed) only once it is no longer read.
    let found = match token::extract(&policy.sources, parts) {
        Ok(Some(f)) => f,
        Ok(None) if policy.optional && policy.require.is_none() => return Ok(None),
        Ok(None) => return Err(reject(Reason::Missing)),
        Err(r) => return Err(reject(r)),
    };
    let now = unix_now();
    let hash = cache::token_hash(found.token);
    let identity = match cached(rt, cfg, policy, &hash, now) {
        Some(id) => {
            count(Outcome::Cached);
            id
        }
        None => {
            let (id, fingerprint, expires_at) =
                verify_token(rt, cfg, policy, found.token, now).await?;
            count(Outcome::Verified);
            let entry = Entry {
                provider: id.provider,
                key_fingerprint: fingerprint,
                expires_at,
                claims: id.claims.clone(),
            };
            rt.cache.insert(hash, entry, now);
            id
        }
    };
    let source = found.source;
    // A token in the query string never travels on (upstream access logs);
    // a rejected request travels nowhere.
    for s in &policy.sources {
        if let TokenSource::Query(q) = s {
            token::strip_query_param(parts, q);
        }
    }
    // (A query token is already gone: stripped just above.)
    let stripped = matches!(source, TokenSource::Query(_));
    if !cfg.providers[identity.provider].forward_token && !stripped {
        token::remove(parts, source);
    }
    Ok(Some(identity))
}

fn cached(
    rt: &AuthRuntime,
    cfg: &AuthConfig,
    policy: &RoutePolicy,
    hash: &[u8; 32],
    now: u64,
) -> Option<Identity> {
    let e = rt.cache.get(hash, now)?;
    if !policy.providers.contains(&e.provider) {
        return None;
    }
    let p = &cfg.providers[e.provider];
    let key_present = p.static_keys.contains(e.key_fingerprint)
        || rt
            .remote(e.provider)
            .and_then(|r| r.current())
            .is_some_and(|s| s.contains(e.key_fingerprint));
    if !key_present {
        rt.cache.remove(hash);
        return None;
    }
    Some(Identity {
        provider: e.provider,
        claims: e.claims,
    })
}

/// A full verification: parse, provider by `iss`, alg allowed, key by kid
/// and type, signature, then claims. Returns the identity, the key's
/// fingerprint and when a cache entry for it must die.
async fn verify_token(
    rt: &AuthRuntime,
    cfg: &AuthConfig,
    policy: &RoutePolicy,
    token: &str,
    now: u64,
) -> Result<(Identity, u64, u64), GatewayError> {
    let parsed = verify::parse(token, policy.max_token_bytes).map_err(reject)?;
    let pi = choose_provider(rt, cfg, policy, &parsed)?;
    let p = &cfg.providers[pi];
    if !p.algorithms.contains(&parsed.alg) {
        return Err(reject(Reason::AlgNotAllowed));
    }
    let fingerprint = check_key(rt.remote(pi), p, &parsed).await?;
    let exp = verify::check_claims(p, &parsed.claims, now).map_err(reject)?;
    let expires_at = match exp {
        Some(exp) if exp > 0.0 => exp as u64,
        _ => now + 300,
    };
    let mut claims = parsed.claims;
    claims.headers = authorize::identity_headers(p, &claims);
    let identity = Identity {
        provider: pi,
        claims: Arc::new(claims),
    };
    Ok((identity, fingerprint, expires_at))
}

/// With several providers on a route, the token's `iss` picks one (then
/// its `kid`, when two providers share an issuer during a migration).
fn choose_provider(
    rt: &AuthRuntime,
    cfg: &AuthConfig,
    policy: &RoutePolicy,
    parsed: &Parsed<'_>,
) -> Result<usize, GatewayError> {
    if let [only] = policy.providers.as_slice() {
        return Ok(*only);
    }
    let iss = parsed.claims.string("iss");
    let matching: Vec<usize> = policy
        .providers
        .iter()
        .copied()
        .filter(|&i| Some(cfg.providers[i].issuer.as_str()) == iss.as_deref())
        .collect();
    match matching.as_slice() {
        [] => Err(reject(Reason::BadIssuer)),
        [one] => Ok(*one),
        many => {
            let has_kid = |i: usize| {
                parsed.kid.as_deref().is_some_and(|kid| {
                    cfg.providers[i].static_keys.has_kid(kid)
                        || rt
                            .remote(i)
                            .and_then(|r| r.current())
                            .is_some_and(|s| s.has_kid(kid))
                })
            };
            Ok(many
                .iter()
                .copied()
                .find(|&i| has_kid(i))
                .unwrap_or(many[0]))
        }
    }
}

/// Finds the key (refetching the JWKS once, rate-limited, for an unknown
/// kid) and checks the signature. 503, never 401, when no key set could
/// ever be had or when an unknown kid can not be looked up because the key
/// server is unreachable (the kid may be a rotation we could not fetch).
async fn check_key(
    remote: Option<&Arc<RemoteKeys>>,
    p: &Provider,
    parsed: &Parsed<'_>,
) -> Result<u64, GatewayError> {
    let mut refetched = false;
    loop {
        let remote_set: Option<Arc<KeySet>> = remote.and_then(|r| r.current());
        let seen = remote.map_or(0, |r| r.generation());
        let static_only = [&p.static_keys];
        let both;
        let sets: &[&KeySet] = match &remote_set {
            Some(s) => {
                both = [&**s, &p.static_keys];
                &both
            }
            None => &static_only,
        };
        match keys::lookup(sets, parsed.kid.as_deref(), parsed.alg) {
            Lookup::Found(candidates) => {
                return verify::check_signature(parsed, &candidates)
                    .map(|k| k.fingerprint)
                    .ok_or_else(|| reject(Reason::BadSignature));
            }
            Lookup::WrongType => return Err(reject(Reason::AlgNotAllowed)),
            Lookup::Unknown => {}
        }
        let Some(r) = remote else {
            return Err(reject(Reason::UnknownKid));
        };
        if refetched {
            return Err(reject(Reason::UnknownKid));
        }
        // Boxed: a refetch is rare, and its state would otherwise be part
        // of every request's future.
        match Box::pin(r.refetch_for_unknown_kid(seen)).await {
            Refetch::Updated => refetched = true,
            Refetch::RateLimited if remote_set.is_some() => return Err(reject(Reason::UnknownKid)),
            Refetch::RateLimited | Refetch::Failed => return Err(unavailable(p)),
        }
    }
}

/// Step 5: checks the route's requirements, then hands the verified
/// identity to the upstream as the provider's claim headers.
pub fn authorize(
    cfg: &AuthConfig,
    route: &RouteAuth,
    identity: Option<Identity>,
    headers: &mut HeaderMap,
) -> Result<(), GatewayError> {
    let RouteAuth::Check(policy) = route else {
        return Ok(());
    };
    let Some(id) = identity else {
        return match policy.require {
            Some(_) => Err(reject(Reason::Missing)),
            None => Ok(()),
        };
    };
    let p = &cfg.providers[id.provider];
    if let Some(req) = &policy.require {
        if !authorize::allows(req, p, &id.claims) {
            return Err(reject(Reason::InsufficientScope));
        }
    }
    // Worked out when the token was verified (kept with the cached token).
    for (name, value) in &id.claims.headers {
        headers.insert(name.clone(), value.clone());
    }
    Ok(())
}
