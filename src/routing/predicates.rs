//! Per-route predicates beside the path: methods, host, headers, query.
//! All are compiled once; evaluation allocates nothing.

use http::{HeaderMap, HeaderName, Method};
use regex::Regex;

/// The set of methods a route accepts. `None` in `Route::methods` means any.
#[derive(Debug, Clone)]
pub struct MethodSet {
    methods: Vec<Method>,
}

impl MethodSet {
    pub fn new(methods: Vec<Method>) -> Self {
        MethodSet { methods }
    }

    pub fn contains(&self, m: &Method) -> bool {
        self.methods.iter().any(|x| x == m)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Method> {
        self.methods.iter()
    }
}

/// `api.example.com` (exact) or `*.example.com` (one or more labels in
/// front of the suffix). Compared case-insensitively, port ignored.
#[derive(Debug, Clone)]
pub enum HostMatch {
    Exact(String),
    /// The suffix including its leading dot: `.example.com`.
    Wildcard(String),
}

impl HostMatch {
    pub fn parse(pattern: &str) -> Result<HostMatch, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let valid = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if let Some(suffix) = p.strip_prefix("*.") {
            if valid(suffix) {
                return Ok(HostMatch::Wildcard(format!(".{suffix}")));
            }
        } else if valid(&p) {
            return Ok(HostMatch::Exact(p));
        }
        Err(format!(
            "invalid host pattern `{pattern}`: expected `api.example.com` or `*.example.com`"
        ))
    }

    /// `host` is the request's host without port, already lower-cased.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h == host,
            HostMatch::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

/// How one header or query parameter value must look.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Present,
    Exact(String),
    Regex(Regex),
}

impl ValueMatch {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Present => true,
            ValueMatch::Exact(v) => v == value,
            ValueMatch::Regex(r) => r.is_match(value),
        }
    }
}

/// All header predicates must hold; a header with several values matches if
/// any value does.
pub fn headers_match(rules: &[(HeaderName, ValueMatch)], headers: &HeaderMap) -> bool {
    rules.iter().all(|(name, rule)| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| rule.matches(v)))
    })
}

/// All query predicates must hold. Parameters are compared after
/// percent-decoding neither name nor value: the raw query is what the
/// upstream sees, so matching stays on the same bytes.
pub fn query_match(rules: &[(String, ValueMatch)], query: Option<&str>) -> bool {
    rules.iter().all(|(name, rule)| {
        query.is_some_and(|q| {
            q.split('&').any(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                k == name && rule.matches(v)
            })
        })
    })
}

/// The request's host: the Host header (HTTP/1) or the URI authority (HTTP/2),
/// lower-cased, without port. Returns `None` when absent.
pub fn request_host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let raw = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    Some(strip_port(raw))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: keep the brackets, drop ":port" after them.
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let w = HostMatch::parse("*.Example.com").expect("valid");
        assert!(w.matches("api.example.com"));
        assert!(w.matches("a.b.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("evilexample.com"));
        let e = HostMatch::parse("api.example.com").expect("valid");
        assert!(e.matches("api.example.com"));
        assert!(!e.matches("x.api.example.com"));
        assert!(HostMatch::parse("*").is_err());
        assert!(HostMatch::parse("a..b").is_err());
        assert!(HostMatch::parse("a b").is_err());
    }

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("a.com:8080"), "a.com");
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn query_predicates() {
        let rules = vec![("debug".to_string(), ValueMatch::Exact("1".into()))];
        assert!(query_match(&rules, Some("a=2&debug=1")));
        assert!(!query_match(&rules, Some("debug=2")));
        assert!(!query_match(&rules, None));
        let present = vec![("flag".to_string(), ValueMatch::Present)];
        assert!(query_match(&present, Some("flag")));
    }

    #[test]
    fn header_predicates() {
        let mut h = HeaderMap::new();
        h.append("x-canary", "false".parse().expect("v"));
        h.append("x-canary", "true".parse().expect("v"));
        let rules = vec![(
            HeaderName::from_static("x-canary"),
            ValueMatch::Exact("true".into()),
        )];
        assert!(headers_match(&rules, &h));
        let re = vec![(
            HeaderName::from_static("x-canary"),
            ValueMatch::Regex(Regex::new("^t").expect("re")),
        )];
        assert!(headers_match(&re, &h));
        let missing = vec![(HeaderName::from_static("x-other"), ValueMatch::Present)];
        assert!(!headers_match(&missing, &h));
    }
}
