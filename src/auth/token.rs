//! Finding the one token of a request, and removing it before forwarding
//! when asked to (always for a query parameter, so it never reaches an
//! upstream's logs).
//!
//! Exactly one token is accepted: two `Authorization` headers, two cookies
//! of the name, or tokens in two different places are refused as malformed
//! rather than guessing which one counts.

use http::header::{HeaderValue, COOKIE};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::HeaderMap;

use super::provider::TokenSource;
use super::reason::Reason;

/// The token, borrowed from the request (no copy per request), and where it
/// was found, to remove it later if configured. `Debug` never prints the
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct Found<'s, 'r> {
    pub token: &'r str,
    /// One of the route's sources (borrowed: no copy per request).
    pub source: &'s TokenSource,
}

impl std::fmt::Debug for Found<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field(
                "token",
                &format_args!("<redacted, {} bytes>", self.token.len()),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// Looks in every source; `Ok(None)` when no token is present at all.
pub fn extract<'s: 'r, 'r>(
    sources: &'s [TokenSource],
    parts: &'r Parts,
) -> Result<Option<Found<'s, 'r>>, Reason> {
    let mut found: Option<Found<'s, 'r>> = None;
    let mut put = |token: &'r str, source: &'s TokenSource| -> Result<(), Reason> {
        if found.is_some() || token.is_empty() {
            return Err(Reason::Malformed);
        }
        found = Some(Found { token, source });
        Ok(())
    };
    for src in sources {
        match src {
            TokenSource::Header { name, prefix } => {
                let mut values = parts.headers.get_all(name).iter();
                let Some(v) = values.next() else { continue };
                if values.next().is_some() {
                    return Err(Reason::Malformed);
                }
                let Some(v) = text(v) else {
                    return Err(Reason::Malformed);
                };
                // Another scheme (e.g. `Basic`) is not a bearer token.
                let Some(head) = v.get(..prefix.len()) else {
                    continue;
                };
                if head.eq_ignore_ascii_case(prefix) {
                    put(v[prefix.len()..].trim_start_matches(' '), src)?;
                }
            }
            TokenSource::Cookie(name) => {
                for value in cookies(&parts.headers, name) {
                    put(value, src)?;
                }
            }
            TokenSource::Query(name) => {
                for value in query_values(parts.uri.query(), name) {
                    put(value, src)?;
                }
            }
        }
    }
    Ok(found)
}

/// A header value as text, for finding a token in it. UTF-8 is enough:
/// the token itself is checked byte by byte by the strict base64url
/// decoder, so a non-ASCII byte in it is refused there (as malformed, as
/// before). `HeaderValue::to_str` (visible ASCII only) made a Cookie header
/// holding any UTF-8 cookie hide the token's cookie too.
fn text(v: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(v.as_bytes()).ok()
}

fn cookies<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(text)
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

fn query_values<'q>(query: Option<&'q str>, name: &'q str) -> impl Iterator<Item = &'q str> + 'q {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(move |pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
}

/// Removes every query parameter called `name` from the request target.
pub fn strip_query_param(parts: &mut Parts, name: &str) {
    let Some(query) = parts.uri.query() else {
        return;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect();
    let target = if kept.is_empty() {
        parts.uri.path().to_owned()
    } else {
        format!("{}?{}", parts.uri.path(), kept.join("&"))
    };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = PathAndQuery::try_from(target).ok();
    parts.uri = Uri::from_parts(uri).unwrap_or_else(|_| Uri::from_static("/"));
}

/// Removes the token from where it was found (`source`: [`Found::source`]).
pub fn remove(parts: &mut Parts, source: &TokenSource) {
    match source {
        TokenSource::Header { name, .. } => {
            parts.headers.remove(name);
        }
        TokenSource::Cookie(name) => {
            let rest: Vec<String> = parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(text)
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|pair| pair.split_once('=').is_none_or(|(k, _)| k.trim() != name))
                .map(str::to_owned)
                .collect();
            parts.headers.remove(COOKIE);
            if let Ok(v) = HeaderValue::from_bytes(rest.join("; ").as_bytes()) {
                if !rest.is_empty() {
                    parts.headers.insert(COOKIE, v);
                }
            }
        }
        TokenSource::Query(name) => strip_query_param(parts, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;
    use http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn sources() -> Vec<TokenSource> {
        vec![
            TokenSource::Header {
                name: AUTHORIZATION,
                prefix: "Bearer ".into(),
            },
            TokenSource::Cookie("access_token".into()),
            TokenSource::Query("access_token".into()),
        ]
    }

    #[test]
    fn one_token_only() {
        let s = sources();
        let bearer = parts("/", &[("authorization", "bearer abc")]);
        let ok = extract(&s, &bearer);
        assert_eq!(ok.expect("ok").expect("found").token, "abc");
        assert_eq!(
            extract(&s, &parts("/", &[("authorization", "Basic xyz")])).expect("ok"),
            None
        );
        let two = parts(
            "/",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
        );
        assert_eq!(extract(&s, &two), Err(Reason::Malformed));
        let mixed = parts("/?access_token=b", &[("authorization", "Bearer a")]);
        assert_eq!(extract(&s, &mixed), Err(Reason::Malformed));
        let cookie = parts("/", &[("cookie", "x=1; access_token=c")]);
        assert_eq!(extract(&s, &cookie).expect("ok").expect("found").token, "c");
        assert_eq!(
            extract(&s, &parts("/", &[("authorization", "Bearer ")])),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn header_text_beyond_ascii() {
        let s = sources();
        // UTF-8 in another cookie no longer hides the token's cookie.
        let v = HeaderValue::from_bytes("name=h\u{e9}l\u{e8}ne; access_token=c".as_bytes())
            .expect("value");
        let mut p = parts("/", &[]);
        p.headers.insert(COOKIE, v);
        assert_eq!(extract(&s, &p).expect("ok").expect("found").token, "c");
        remove(&mut p, &TokenSource::Cookie("access_token".into()));
        assert_eq!(
            p.headers[COOKIE].as_bytes(),
            "name=h\u{e9}l\u{e8}ne".as_bytes()
        );
        // Bytes that are not UTF-8 in the Authorization header: refused.
        let mut bad = parts("/", &[]);
        bad.headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("value"),
        );
        assert_eq!(extract(&s, &bad), Err(Reason::Malformed));
        // UTF-8 in the token is found here and refused by the token's
        // strict base64url decoding (`verify::parse`).
        let mut utf8 = parts("/", &[]);
        utf8.headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes("Bearer \u{e9}t\u{e9}".as_bytes()).expect("value"),
        );
        let found = extract(&s, &utf8).expect("ok").expect("found");
        assert!(crate::auth::verify::parse(found.token, 8192).is_err());
    }

    #[test]
    fn strips_query_and_cookie() {
        let mut p = parts(
            "/a?x=1&access_token=t&y=2",
            &[("cookie", "x=1; access_token=c")],
        );
        strip_query_param(&mut p, "access_token");
        assert_eq!(p.uri.to_string(), "/a?x=1&y=2");
        remove(&mut p, &TokenSource::Cookie("access_token".into()));
        assert_eq!(p.headers[COOKIE], "x=1");
    }
}
