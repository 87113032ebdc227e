//! Strict JWS (compact serialization) parsing and claim validation.
//!
//! Parsing refuses, before any key is looked at: more or fewer than three
//! segments (five is JWE), anything but base64url without padding, JSON
//! that is not an object or repeats a member name (at any depth), `enc`
//! (JWE), any `crit` (no extension is understood), an `alg` that is not an
//! exact supported name (`none` in any casing included), a non-string `kid`.

use std::fmt;

use super::b64url;
use super::claims::Claims;
use super::json;
use super::keys::{Alg, Key};
use super::provider::Provider;
use super::reason::Reason;

/// A bearer token. `Debug` never prints it.
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted, {} bytes>)", self.0.len())
    }
}

/// A token split and decoded, not yet trusted.
#[derive(Debug)]
pub struct Parsed<'t> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t [u8],
    pub signature: Vec<u8>,
}

pub fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, Reason> {
    // Every segment goes through a strict base64url decoder (no padding, no
    // other characters), so no separate character check is needed.
    if token.len() > max_bytes {
        return Err(Reason::Malformed);
    }
    let bytes = token.as_bytes();
    let Some(first) = memchr::memchr(b'.', bytes) else {
        return Err(Reason::Malformed);
    };
    let Some(second) = memchr::memchr(b'.', &bytes[first + 1..]).map(|i| first + 1 + i) else {
        return Err(Reason::Malformed);
    };
    let (h, p, s) = (
        &bytes[..first],
        &bytes[first + 1..second],
        &bytes[second + 1..],
    );
    // A fourth segment holds a dot, which base64url refuses below.
    let (alg, kid) = decode_header(h)?;
    let payload = b64url::decode(p).map_err(|_| Reason::Malformed)?;
    let payload = String::from_utf8(payload).map_err(|_| Reason::Malformed)?;
    let claims = Claims::parse(payload)?;
    if s.is_empty() {
        return Err(Reason::BadSignature);
    }
    let signature = b64url::decode(s).map_err(|_| Reason::Malformed)?;
    Ok(Parsed {
        alg,
        kid,
        claims,
        signing_input: &bytes[..second],
        signature,
    })
}

/// Most bytes of a decoded header read without a heap buffer (a usual
/// header is 20 to 100).
const HEADER_STACK: usize = 256;

/// The header's `alg` and `kid`. Parsed without building a JSON value: its
/// members are read in place and every other member is only checked.
fn decode_header(segment: &[u8]) -> Result<(Alg, Option<String>), Reason> {
    let mut stack = [0u8; HEADER_STACK];
    let heap;
    let bytes: &[u8] = if segment.len() / 4 * 3 + 3 <= HEADER_STACK {
        let n = b64url::decode_into(segment, &mut stack).map_err(|_| Reason::Malformed)?;
        &stack[..n]
    } else {
        heap = b64url::decode(segment).map_err(|_| Reason::Malformed)?;
        &heap
    };
    let text = std::str::from_utf8(bytes).map_err(|_| Reason::Malformed)?;
    let members = json::object_members(text, HEADER_MEMBERS).map_err(|_| Reason::Malformed)?;
    let (mut alg, mut kid) = (None, None);
    for m in &members {
        let value = text.get(m.value.clone()).ok_or(Reason::Malformed)?;
        match m.name.as_str(text) {
            "alg" => alg = Some(json::string_value(value).ok_or(Reason::Malformed)?),
            "kid" => kid = Some(json::string_value(value).ok_or(Reason::Malformed)?),
            "enc" | "crit" => return Err(Reason::Malformed),
            _ => {}
        }
    }
    let alg = Alg::parse(&alg.ok_or(Reason::Malformed)?).ok_or(Reason::AlgNotAllowed)?;
    Ok((alg, kid.map(|k| k.into_owned())))
}

/// The first of `keys` whose signature check passes.
pub fn check_signature<'k>(
    parsed: &Parsed<'_>,
    keys: &[&'k std::sync::Arc<Key>],
) -> Option<&'k std::sync::Arc<Key>> {
    keys.iter()
        .find(|k| k.verify(parsed.alg, parsed.signing_input, &parsed.signature))
        .copied()
}

/// Time, issuer, audience, required and identity claims. `now` is Unix
/// seconds. Returns `exp` when the token has one.
pub fn check_claims(p: &Provider, claims: &Claims, now: u64) -> Result<Option<f64>, Reason> {
    let now = now as f64;
    let leeway = p.leeway as f64;
    let exp = claims.number("exp")?;
    let nbf = claims.number("nbf")?;
    let iat = claims.number("iat")?;
    match exp {
        Some(exp) if now >= exp + leeway => return Err(Reason::Expired),
        None if p.require_exp => return Err(Reason::Malformed),
        _ => {}
    }
    if nbf.is_some_and(|nbf| now + leeway < nbf) || iat.is_some_and(|iat| now + leeway < iat) {
        return Err(Reason::NotYetValid);
    }
    if claims.string("iss").as_deref() != Some(p.issuer.as_str()) {
        return Err(Reason::BadIssuer);
    }
    if !p.audiences.is_empty() {
        let wanted = |a: &str| p.audiences.iter().any(|x| x == a);
        let ok = match claims.text("aud") {
            Some(t) if t.starts_with('[') => serde_json::from_str::<Vec<serde_json::Value>>(t)
                .is_ok_and(|list| list.iter().any(|a| a.as_str().is_some_and(wanted))),
            Some(t) => json::string_value(t).is_some_and(|a| wanted(&a)),
            None => false,
        };
        if !ok {
            return Err(Reason::BadAudience);
        }
    }
    if !p.required_claims.iter().all(|c| claims.has(c)) {
        return Err(Reason::Malformed);
    }
    match claims.get_str(&p.identity_claim) {
        Some(id) if is_safe_identity(&id) => Ok(exp),
        _ => Err(Reason::Malformed),
    }
}

/// A subject that can go into a header and a log line as it is.
pub fn is_safe_identity(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// Most members of a JOSE header (a real one has two to five).
const HEADER_MEMBERS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(h: &str, p: &str) -> String {
        format!("{}.{}.{}", b64(h), b64(p), b64("sig"))
    }

    #[test]
    fn refuses_bad_shapes() {
        let p = r#"{"sub":"a"}"#;
        let ok = tok(r#"{"alg":"RS256"}"#, p);
        assert!(parse(&ok, 8192).is_ok());
        for h in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"nOnE"}"#,
            r#"{"alg":"hs256"}"#,
        ] {
            assert_eq!(parse(&tok(h, p), 8192).err(), Some(Reason::AlgNotAllowed));
        }
        for h in [
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","enc":"A128GCM"}"#,
            r#"{"alg":"RS256","alg":"HS256"}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"["RS256"]"#,
            r#"{"alg":"RS256"} x"#,
        ] {
            assert_eq!(
                parse(&tok(h, p), 8192).err(),
                Some(Reason::Malformed),
                "{h}"
            );
        }
        let nested_dup = tok(r#"{"alg":"RS256","x":[{"r":1,"r":2}]}"#, p);
        assert_eq!(parse(&nested_dup, 8192).err(), Some(Reason::Malformed));
        let escaped = tok(
            r#"{"typ":"JWT","alg":"RS\u0032\u0035\u0036","kid":"k\u0031"}"#,
            p,
        );
        let parsed = parse(&escaped, 8192).expect("escaped names are read");
        assert_eq!(
            (parsed.alg, parsed.kid.as_deref()),
            (Alg::RS256, Some("k1"))
        );
        for h in [r#"{"alg":"RS256","kid":null}"#, r#"{"alg":null}"#, r#"{}"#] {
            assert_eq!(
                parse(&tok(h, p), 8192).err(),
                Some(Reason::Malformed),
                "{h}"
            );
        }
        let many: String = (0..40).map(|i| format!(r#","m{i}":0"#)).collect();
        let crowded = tok(&format!(r#"{{"alg":"RS256"{many}}}"#), p);
        assert_eq!(parse(&crowded, 8192).err(), Some(Reason::Malformed));
        let long_kid = "k".repeat(400);
        let big = tok(&format!(r#"{{"alg":"RS256","kid":"{long_kid}"}}"#), p);
        assert_eq!(parse(&big, 8192).expect("long header").kid, Some(long_kid));
        let dup = tok(r#"{"alg":"RS256"}"#, r#"{"sub":"a","x":{"r":1,"r":2}}"#);
        assert_eq!(parse(&dup, 8192).err(), Some(Reason::Malformed));
        assert_eq!(parse("a.b", 8192).err(), Some(Reason::Malformed));
        assert_eq!(parse("a.b.c.d", 8192).err(), Some(Reason::Malformed));
        assert_eq!(parse("a.b.c.d.e", 8192).err(), Some(Reason::Malformed));
        assert_eq!(parse(&ok, 10).err(), Some(Reason::Malformed));
        let padded = format!("{}=", ok);
        assert_eq!(parse(&padded, 8192).err(), Some(Reason::Malformed));
        let stripped = format!("{}.", ok.rsplit_once('.').expect("dot").0);
        assert_eq!(parse(&stripped, 8192).err(), Some(Reason::BadSignature));
    }

    #[test]
    fn identity_must_be_safe() {
        assert!(is_safe_identity("auth0|5f7c8ec7c33c6c004bbafe82"));
        assert!(is_safe_identity("alice@example.com"));
        assert!(!is_safe_identity(""));
        assert!(!is_safe_identity("a\r\nX-Admin: 1"));
        assert!(!is_safe_identity("a b"));
        assert!(!is_safe_identity("a,b"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Any header and payload bytes (JSON-like fragments, escapes,
        /// non-ASCII, control bytes) give an answer, never a panic; an
        /// accepted token's claims answer every registered claim.
        #[test]
        fn any_segments_parse_or_refuse(
            header in proptest::collection::vec(proptest::prelude::prop_oneof![
                proptest::prelude::Just(b"{\"alg\":\"HS256\"".to_vec()),
                proptest::prelude::Just(b",\"kid\":\"k\\u0031\"".to_vec()),
                proptest::prelude::Just(b"}".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4),
            ], 0..5),
            payload in proptest::collection::vec(proptest::prelude::prop_oneof![
                proptest::prelude::Just(b"{".to_vec()),
                proptest::prelude::Just(b"\"exp\":1e3".to_vec()),
                proptest::prelude::Just(b"\"sub\":\"a\\ud83d\\ude00\"".to_vec()),
                proptest::prelude::Just(b"[[{\"a\":[]}]]".to_vec()),
                proptest::prelude::Just(b",".to_vec()),
                proptest::prelude::Just(b"}".to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4),
            ], 0..8),
        ) {
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header.concat()),
                URL_SAFE_NO_PAD.encode(payload.concat()),
                b64("sig")
            );
            if let Ok(parsed) = parse(&token, 8192) {
                for name in ["exp", "nbf", "iat", "iss", "aud", "sub", "other"] {
                    let _ = parsed.claims.number(name);
                    let _ = parsed.claims.string(name);
                }
            }
        }
    }
}
