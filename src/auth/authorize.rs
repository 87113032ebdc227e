//! Claim-based authorization (scopes, roles, claim values; all or any) and
//! handing the verified identity to the upstream as headers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::claims::Claims;
use super::json;
use super::provider::{ClaimPath, Provider, Requirements};

/// Whether `claims` (verified by `provider`) meet `req`.
pub fn allows(req: &Requirements, provider: &Provider, claims: &Claims) -> bool {
    let scopes = req.scopes.iter().map(|s| has_scope(claims, s));
    let held = if req.roles.is_empty() {
        None
    } else {
        claims.get(&provider.roles_claim)
    };
    let roles = req.roles.iter().map(|r| contains(held.as_ref(), r));
    let values = req.claims.iter().map(|(path, wanted)| {
        wanted
            .iter()
            .any(|w| contains(claims.get(path).as_ref(), w))
    });
    let mut all = scopes.chain(roles).chain(values);
    if req.any {
        all.any(|ok| ok)
    } else {
        all.all(|ok| ok)
    }
}

/// OAuth scopes: a space-separated `scope` string, or an `scp` array/string.
fn has_scope(claims: &Claims, scope: &str) -> bool {
    let in_str =
        |v: Option<std::borrow::Cow<'_, str>>| v.is_some_and(|s| s.split(' ').any(|x| x == scope));
    in_str(claims.string("scope"))
        || in_str(claims.string("scp"))
        || claims
            .text("scp")
            .filter(|t| t.starts_with('['))
            .and_then(|t| serde_json::from_str::<Vec<Value>>(t).ok())
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(scope)))
}

/// A claim equals `wanted`, or is an array holding it. Numbers and booleans
/// compare by their JSON text (`true`, `42`).
fn contains(v: Option<&Value>, wanted: &str) -> bool {
    match v {
        Some(Value::Array(items)) => items.iter().any(|i| scalar_eq(i, wanted)),
        Some(other) => scalar_eq(other, wanted),
        None => false,
    }
}

fn scalar_eq(v: &Value, wanted: &str) -> bool {
    match v {
        Value::String(s) => s == wanted,
        Value::Bool(b) => wanted == if *b { "true" } else { "false" },
        Value::Number(n) => n.to_string() == wanted,
        _ => false,
    }
}

/// Most bytes one forwarded identity header may carry.
const MAX_HEADER_VALUE: usize = 4096;

/// The provider's identity headers for verified claims, worked out once per
/// verification (a cached token reuses them). The same headers were
/// stripped from the request in step 1, so a header present upstream always
/// came from a verified token.
pub fn identity_headers(provider: &Provider, claims: &Claims) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (path, name) in &provider.forward_claims {
        if let Some(v) = claim_header(claims, path) {
            out.push((name.clone(), v));
        }
    }
    if let Some(name) = &provider.claims_header {
        // The payload exactly as signed.
        if let Ok(v) = HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(claims.json())) {
            out.push((name.clone(), v));
        }
    }
    out
}

/// Strings as they are, numbers and booleans as JSON text, arrays joined by
/// commas; objects and nulls are not forwarded, nor any value with control
/// or non-ASCII characters (it would not be a safe header).
fn header_value(v: &Value) -> Option<HeaderValue> {
    let text = match v {
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
            parts?.join(",")
        }
        other => scalar_text(other)?,
    };
    safe_header(&text)
}

/// The header for the claim at `path`; a top-level string claim (the usual
/// `sub`, `email`) is read in place, without building a JSON value.
fn claim_header(claims: &Claims, path: &ClaimPath) -> Option<HeaderValue> {
    match claims.text(&path.full) {
        Some(text) if text.starts_with('"') => safe_header(&json::string_value(text)?),
        _ => header_value(&claims.get(path)?),
    }
}

fn safe_header(text: &str) -> Option<HeaderValue> {
    if text.len() > MAX_HEADER_VALUE || !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    HeaderValue::from_str(text).ok()
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::KeySet;
    use crate::auth::provider::ClaimPath;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        Claims::parse(v.to_string()).expect("claims")
    }

    fn provider() -> Provider {
        Provider {
            name: "p".into(),
            issuer: "i".into(),
            audiences: vec![],
            algorithms: vec![],
            leeway: 0,
            require_exp: true,
            required_claims: vec![],
            identity_claim: ClaimPath::parse("sub").expect("path"),
            roles_claim: ClaimPath::parse("realm_access.roles").expect("path"),
            static_keys: KeySet::default(),
            jwks: None,
            token_from: vec![],
            forward_claims: vec![
                (
                    ClaimPath::parse("sub").expect("path"),
                    http::HeaderName::from_static("x-user-id"),
                ),
                (
                    ClaimPath::parse("realm_access.roles").expect("path"),
                    http::HeaderName::from_static("x-user-roles"),
                ),
            ],
            forward_token: true,
            claims_header: None,
            max_token_bytes: 8192,
        }
    }

    #[test]
    fn scopes_roles_and_claims() {
        let p = provider();
        let c = claims(
            json!({"sub":"u1","scope":"tasks:read tasks:write","realm_access":{"roles":["user","admin"]},"tenant":"acme","n":3}),
        );
        let c = &c;
        let mut r = Requirements {
            scopes: vec!["tasks:write".into()],
            roles: vec!["user".into()],
            claims: vec![(ClaimPath::parse("tenant").expect("p"), vec!["acme".into()])],
            any: false,
        };
        assert!(allows(&r, &p, c));
        r.roles.push("root".into());
        assert!(!allows(&r, &p, c));
        r.any = true;
        assert!(allows(&r, &p, c));
        let scp = claims(json!({"scp":["a","b"]}));
        assert!(has_scope(&scp, "b") && !has_scope(&scp, "c"));
        assert!(contains(
            c.get(&ClaimPath::parse("n").expect("p")).as_ref(),
            "3"
        ));
    }

    #[test]
    fn identity_headers_from_claims() {
        let p = provider();
        let c = claims(json!({"sub":"u1","realm_access":{"roles":["user","admin"]}}));
        let h = identity_headers(&p, &c);
        assert_eq!(
            h[0],
            (
                HeaderName::from_static("x-user-id"),
                HeaderValue::from_static("u1")
            )
        );
        assert_eq!(h[1].1, "user,admin");
        let bad = claims(json!({"sub":"u1\r\nx: y"}));
        assert!(identity_headers(&p, &bad)
            .iter()
            .all(|(n, _)| n != "x-user-id"));
    }
}
