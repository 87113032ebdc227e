//! `auth:` raw config -> [`AuthConfig`], and a route's `auth:` -> [`RouteAuth`].
//! Errors are `(field path, message)` pairs, collected like the rest of
//! `config::compile`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, COOKIE, HOST};
use http::uri::Uri;
use http::HeaderName;

use super::keys::{parse_jwks, parse_pem, Alg, Key, KeyKind, KeySet};
use super::provider::*;
use super::raw::*;
use crate::config::raw::RawHeaderRules;
use crate::proxy::headers::{is_hop_by_hop, is_reserved_request_header};

type Errors = Vec<(String, String)>;

pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
pub const DEFAULT_JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
pub const DEFAULT_JWKS_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8 * 1024;
pub const DEFAULT_CACHE_SIZE: usize = 10_000;

/// Compiled `auth:` plus the policy of routes that say nothing.
#[derive(Debug, Default)]
pub struct Compiled {
    pub config: AuthConfig,
    pub default_route: RouteAuth,
}

pub fn providers(raw: Option<&RawAuth>, errors: &mut Errors) -> Compiled {
    let Some(raw) = raw else {
        return Compiled::default();
    };
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, p) in raw.providers.iter().enumerate() {
        let f = format!("auth.providers[{i}]");
        if !names.insert(p.name.as_str()) {
            errors.push((
                format!("{f}.name"),
                format!("duplicate provider name `{}`", p.name),
            ));
        }
        if let Some(p) = provider(&f, p, errors) {
            out.push(Arc::new(p));
        }
    }
    let mut identity_headers: Vec<HeaderName> = Vec::new();
    for p in &out {
        let names = p
            .forward_claims
            .iter()
            .map(|(_, h)| h)
            .chain(&p.claims_header);
        for h in names {
            if !identity_headers.contains(h) {
                identity_headers.push(h.clone());
            }
        }
    }
    let config = AuthConfig {
        providers: out,
        identity_headers,
        cache_size: raw.cache_size.unwrap_or(DEFAULT_CACHE_SIZE),
    };
    let default_route = match raw.default.as_ref().map(|t| t.as_str()) {
        None | Some("none") => RouteAuth::None,
        Some(mode @ ("optional" | "required")) => {
            policy_all(&config, "auth.default", mode == "optional", errors)
        }
        Some(other) => {
            errors.push((
                "auth.default".into(),
                format!("unknown policy `{other}`: expected none, optional or required"),
            ));
            RouteAuth::None
        }
    };
    Compiled {
        config,
        default_route,
    }
}

fn provider(f: &str, raw: &RawProvider, errors: &mut Errors) -> Option<Provider> {
    let before = errors.len();
    let failed = std::cell::Cell::new(false);
    let mut err = |field: &str, msg: String| {
        failed.set(true);
        let path = if field.is_empty() {
            f.to_owned()
        } else {
            format!("{f}.{field}")
        };
        errors.push((path, msg));
    };
    let name = raw.name.as_str();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        err(
            "name",
            format!("invalid provider name `{name}`: use letters, digits, `-`, `_` and `.`"),
        );
    }
    if raw.issuer.as_str().is_empty() {
        err("issuer", "the issuer (`iss`) is required".into());
    }
    if raw.audiences.is_empty() || raw.audiences.iter().any(|a| a.as_str().is_empty()) {
        err(
            "audiences",
            "list the accepted audiences (`aud`), e.g. [example-api]".into(),
        );
    }
    let mut algorithms = Vec::new();
    if raw.algorithms.is_empty() {
        err(
            "algorithms",
            "list the accepted algorithms, e.g. [RS256, ES256]".into(),
        );
    }
    for (i, a) in raw.algorithms.iter().enumerate() {
        match Alg::parse(a.as_str()) {
            Some(alg) => algorithms.push(alg),
            None if a.as_str().eq_ignore_ascii_case("none") => err(
                &format!("algorithms[{i}]"),
                "`none` (unsigned tokens) is never accepted".into(),
            ),
            None => err(
                &format!("algorithms[{i}]"),
                format!(
                    "unknown algorithm `{a}`: expected one of {}",
                    Alg::ALL.map(Alg::name).join(", ")
                ),
            ),
        }
    }

    // Static keys: PEM, secret, JWKS file.
    let kid = raw.kid.as_ref().map(|k| k.as_str());
    let mut keys: Vec<Key> = Vec::new();
    if let Some(pem) = &raw.public_key_pem {
        let text = if pem.as_str().contains("-----BEGIN") {
            Ok(pem.0.clone())
        } else {
            std::fs::read_to_string(pem.as_str()).map_err(|e| format!("cannot read `{pem}`: {e}"))
        };
        match text.and_then(|t| parse_pem(&t, kid)) {
            Ok(k) => keys.extend(k),
            Err(e) => err("public_key_pem", e),
        }
    }
    if let Some(secret) = &raw.secret {
        let bytes = secret.0.as_str().as_bytes();
        match Key::hmac(kid.map(str::to_owned), bytes) {
            Ok(k) => keys.push(k),
            Err(e) => err("secret", e),
        }
        for a in algorithms.iter().filter(|a| a.kind() == KeyKind::Hmac) {
            if bytes.len() < a.min_secret_len() {
                err(
                    "secret",
                    format!(
                        "{} needs a secret of at least {} bytes",
                        a.name(),
                        a.min_secret_len()
                    ),
                );
            }
        }
    }
    if let Some(path) = &raw.jwks_file {
        let parsed = std::fs::read(path.as_str())
            .map_err(|e| format!("cannot read `{path}`: {e}"))
            .and_then(|b| parse_jwks(&b));
        match parsed {
            Ok((file_keys, skipped)) => {
                for s in skipped {
                    tracing::warn!("{f}.jwks_file: key skipped: {s}");
                }
                keys.extend(file_keys);
            }
            Err(e) => err("jwks_file", e),
        }
    }
    let ca_file = raw.jwks_ca_file.as_ref().map(|c| c.as_str());
    if ca_file.is_some() && raw.jwks_url.is_none() {
        err(
            "jwks_ca_file",
            "applies only with an https `jwks_url`".into(),
        );
    }
    let jwks = raw.jwks_url.as_ref().and_then(|u| {
        let url = match u.as_str().parse::<Uri>() {
            Ok(url)
                if matches!(url.scheme_str(), Some("http" | "https"))
                    && url.authority().is_some() =>
            {
                url
            }
            _ => {
                err(
                    "jwks_url",
                    format!("invalid URL `{u}`: expected https://HOST[:PORT]/PATH or http://..."),
                );
                return None;
            }
        };
        if ca_file.is_some() && url.scheme_str() != Some("https") {
            err(
                "jwks_ca_file",
                "applies only to an https `jwks_url` (this one is http)".into(),
            );
            return None;
        }
        let tls = match super::tls::client_config(ca_file) {
            Ok(t) => t,
            Err(e) => {
                let field = ca_file.map_or("jwks_url", |_| "jwks_ca_file");
                err(field, e);
                return None;
            }
        };
        Some(JwksSource {
            url,
            tls,
            refresh: raw.jwks_refresh.map_or(DEFAULT_JWKS_REFRESH, |d| d.0),
            min_refetch: raw
                .jwks_min_refetch
                .map_or(DEFAULT_JWKS_MIN_REFETCH, |d| d.0),
            timeout: raw.jwks_timeout.map_or(DEFAULT_JWKS_TIMEOUT, |d| d.0),
        })
    });
    for (k, d) in [
        ("jwks_refresh", raw.jwks_refresh),
        ("jwks_timeout", raw.jwks_timeout),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            err(k, "must be greater than zero".into());
        }
    }
    if raw.jwks_url.is_none() && keys.is_empty() && !failed.get() {
        err(
            "",
            "no signing keys: set `jwks_url`, `jwks_file`, `public_key_pem` or `secret`".into(),
        );
    }
    // Every listed algorithm needs a key source that can fit it.
    for a in &algorithms {
        let fits = keys.iter().any(|k| k.fits(*a)) || (a.kind() != KeyKind::Hmac && jwks.is_some());
        if !fits && !failed.get() {
            err(
                "algorithms",
                format!(
                    "{} is listed but no configured key can verify it{}",
                    a.name(),
                    if a.kind() == KeyKind::Hmac {
                        " (HS* algorithms need `secret`)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }

    let path = |err: &mut dyn FnMut(&str, String), field: &str, s: &str| {
        let p = ClaimPath::parse(s);
        if p.is_none() {
            err(field, "a claim name can not be empty".into());
        }
        p
    };
    let required_claims = raw
        .required_claims
        .iter()
        .enumerate()
        .filter_map(|(i, c)| path(&mut err, &format!("required_claims[{i}]"), c.as_str()))
        .collect();
    let identity_claim = path(
        &mut err,
        "identity_claim",
        raw.identity_claim.as_ref().map_or("sub", |c| c.as_str()),
    );
    let roles_claim = path(
        &mut err,
        "roles_claim",
        raw.roles_claim.as_ref().map_or("roles", |c| c.as_str()),
    );
    let token_from = token_sources(raw.token_from.as_deref(), &mut err);
    let mut forward_claims = Vec::new();
    for (claim, header) in &raw.forward_claims {
        let field = format!("forward_claims.{claim}");
        let Some(c) = path(&mut err, &field, claim.as_str()) else {
            continue;
        };
        if let Some(h) = identity_header(header.as_str(), &field, &mut err) {
            forward_claims.push((c, h));
        }
    }
    let claims_header = raw
        .claims_header
        .as_ref()
        .and_then(|h| identity_header(h.as_str(), "claims_header", &mut err));
    let max_token_bytes = raw.max_token_bytes.map_or(DEFAULT_MAX_TOKEN_BYTES, |s| s.0);
    if !(256..=65536).contains(&max_token_bytes) {
        err(
            "max_token_bytes",
            "must be between 256 bytes and 64KiB".into(),
        );
    }
    if errors.len() != before {
        return None;
    }
    Some(Provider {
        name: Arc::from(name),
        issuer: raw.issuer.0.clone(),
        audiences: raw.audiences.iter().map(|a| a.0.clone()).collect(),
        algorithms,
        leeway: raw.leeway.map_or(DEFAULT_LEEWAY, |d| d.0).as_secs(),
        require_exp: raw.require_exp.unwrap_or(true),
        required_claims,
        identity_claim: identity_claim?,
        roles_claim: roles_claim?,
        static_keys: KeySet::new(keys),
        jwks,
        token_from,
        forward_claims,
        forward_token: raw.forward_token.unwrap_or(true),
        claims_header,
        max_token_bytes: max_token_bytes as usize,
    })
}

fn token_sources(
    raw: Option<&[RawTokenSource]>,
    err: &mut dyn FnMut(&str, String),
) -> Vec<TokenSource> {
    let Some(raw) = raw else {
        return vec![TokenSource::Header {
            name: AUTHORIZATION,
            prefix: "Bearer ".into(),
        }];
    };
    if raw.is_empty() {
        err("token_from", "list at least one token source".into());
    }
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let field = format!("token_from[{i}]");
        let src = match (&s.header, &s.cookie, &s.query) {
            (Some(h), None, None) => match HeaderName::from_bytes(h.as_str().as_bytes()) {
                Ok(name) => {
                    let default = if name == AUTHORIZATION { "Bearer " } else { "" };
                    let prefix = s.prefix.as_ref().map_or(default, |p| p.as_str()).to_owned();
                    TokenSource::Header { name, prefix }
                }
                Err(_) => {
                    err(&field, format!("invalid header name `{h}`"));
                    continue;
                }
            },
            (None, Some(c), None) if s.prefix.is_none() && !c.as_str().is_empty() => {
                TokenSource::Cookie(c.0.clone())
            }
            (None, None, Some(q)) if s.prefix.is_none() && !q.as_str().is_empty() => {
                TokenSource::Query(q.0.clone())
            }
            _ => {
                err(&field, "expected exactly one of `header` (with an optional `prefix`), `cookie` or `query`".into());
                continue;
            }
        };
        out.push(src);
    }
    out
}

fn identity_header(
    name: &str,
    field: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(h)
            if is_hop_by_hop(&h)
                || is_reserved_request_header(&h)
                || h == AUTHORIZATION
                || h == COOKIE
                || h == HOST =>
        {
            err(
                field,
                format!(
                    "`{name}` can not carry claims: choose a dedicated header such as X-User-Id"
                ),
            );
            None
        }
        Ok(h) => Some(h),
        Err(_) => {
            err(field, format!("invalid header name `{name}`"));
            None
        }
    }
}

fn policy_all(cfg: &AuthConfig, f: &str, optional: bool, errors: &mut Errors) -> RouteAuth {
    if cfg.providers.is_empty() {
        errors.push((
            f.to_owned(),
            "no auth provider is configured: add one under `auth.providers`".into(),
        ));
        return RouteAuth::None;
    }
    make_policy(cfg, (0..cfg.providers.len()).collect(), optional, None)
}

fn make_policy(
    cfg: &AuthConfig,
    providers: Vec<usize>,
    optional: bool,
    require: Option<Requirements>,
) -> RouteAuth {
    let mut sources: Vec<TokenSource> = Vec::new();
    let mut max_token_bytes = 0;
    for &i in &providers {
        let p = &cfg.providers[i];
        max_token_bytes = max_token_bytes.max(p.max_token_bytes);
        for s in &p.token_from {
            if !sources.contains(s) {
                sources.push(s.clone());
            }
        }
    }
    RouteAuth::Check(Arc::new(RoutePolicy {
        providers,
        optional,
        require,
        sources,
        max_token_bytes,
    }))
}

/// Compiles a route's `auth:`. `proxied`: the route has an upstream (auth
/// runs after local answers, so it can not protect redirects or fixed
/// responses and is refused there rather than silently ignored).
pub fn route(
    compiled: &Compiled,
    raw: Option<&RawRouteAuth>,
    f: &str,
    proxied: bool,
    request_headers: Option<&RawHeaderRules>,
    errors: &mut Errors,
) -> RouteAuth {
    let cfg = &compiled.config;
    let f = format!("{f}.auth");
    if let Some(rules) = request_headers {
        for n in rules.set.keys().chain(rules.add.keys()) {
            let clash = HeaderName::from_bytes(n.as_str().as_bytes())
                .is_ok_and(|h| cfg.identity_headers.contains(&h));
            if clash {
                errors.push((
                    f.replace(".auth", ".request_headers"),
                    format!("`{n}` is set from verified claims and can not be configured here"),
                ));
            }
        }
    }
    let out = match raw {
        None if proxied => return compiled.default_route.clone(),
        None => return RouteAuth::None,
        Some(RawRouteAuth::Mode(m)) => match m.as_str() {
            "none" => RouteAuth::None,
            "optional" => policy_all(cfg, &f, true, errors),
            "required" => policy_all(cfg, &f, false, errors),
            other => {
                errors.push((
                    f.clone(),
                    format!("unknown policy `{other}`: expected none, optional, required or a map"),
                ));
                RouteAuth::None
            }
        },
        Some(RawRouteAuth::Spec(s)) => spec(cfg, &f, s, errors),
    };
    if !proxied && matches!(out, RouteAuth::Check(_)) {
        errors.push((f, "`auth` applies only to routes with an `upstream`".into()));
        return RouteAuth::None;
    }
    out
}

fn spec(cfg: &AuthConfig, f: &str, s: &RawRouteAuthSpec, errors: &mut Errors) -> RouteAuth {
    let names: Vec<(String, &crate::config::units::Text)> = match (&s.provider, &s.providers) {
        (Some(_), Some(_)) => {
            errors.push((f.into(), "set `provider` or `providers`, not both".into()));
            return RouteAuth::None;
        }
        (Some(p), None) => vec![(format!("{f}.provider"), p)],
        (None, Some(ps)) => ps
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{f}.providers[{i}]"), p))
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut providers = Vec::new();
    for (field, n) in names {
        match cfg.provider_index(n.as_str()) {
            Some(i) => providers.push(i),
            None => {
                let known: Vec<&str> = cfg.providers.iter().map(|p| &*p.name).collect();
                errors.push((
                    field,
                    format!(
                        "undefined auth provider `{n}`; defined: [{}]",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if s.providers.as_ref().is_some_and(|p| p.is_empty()) {
        errors.push((
            format!("{f}.providers"),
            "list at least one provider".into(),
        ));
    }
    if s.provider.is_none() && s.providers.is_none() {
        if cfg.providers.is_empty() {
            errors.push((
                f.into(),
                "no auth provider is configured: add one under `auth.providers`".into(),
            ));
        }
        providers = (0..cfg.providers.len()).collect();
    }
    let require = s.require.as_ref().and_then(|r| requirements(f, r, errors));
    if providers.is_empty() {
        return RouteAuth::None;
    }
    make_policy(cfg, providers, s.optional.unwrap_or(false), require)
}

fn requirements(f: &str, r: &RawRequire, errors: &mut Errors) -> Option<Requirements> {
    let f = format!("{f}.require");
    let any = match r.mode.as_ref().map(|m| m.as_str()) {
        None | Some("all") => false,
        Some("any") => true,
        Some(other) => {
            errors.push((
                format!("{f}.match"),
                format!("unknown `{other}`: expected all or any"),
            ));
            false
        }
    };
    let list = |field: &str, v: &[crate::config::units::Text], errors: &mut Errors| {
        if v.iter().any(|x| x.as_str().is_empty()) {
            errors.push((format!("{f}.{field}"), "empty names are not allowed".into()));
        }
        v.iter().map(|x| x.0.clone()).collect::<Vec<_>>()
    };
    let scopes = list("scopes", &r.scopes, errors);
    let roles = list("roles", &r.roles, errors);
    let mut claims = Vec::new();
    for (name, v) in &r.claims {
        let Some(path) = ClaimPath::parse(name.as_str()) else {
            errors.push((
                format!("{f}.claims"),
                "a claim name can not be empty".into(),
            ));
            continue;
        };
        let values = match v {
            RawClaimValue::One(t) => vec![t.0.clone()],
            RawClaimValue::Many(ts) => ts.iter().map(|t| t.0.clone()).collect(),
        };
        if values.is_empty() {
            errors.push((
                format!("{f}.claims.{name}"),
                "list at least one accepted value".into(),
            ));
        }
        claims.push((path, values));
    }
    if scopes.is_empty() && roles.is_empty() && claims.is_empty() {
        errors.push((
            f,
            "`require` lists nothing: add `scopes`, `roles` or `claims`".into(),
        ));
        return None;
    }
    Some(Requirements {
        scopes,
        roles,
        claims,
        any,
    })
}
