//! Compiled upstream and retry policy: the typed form of the `balance`,
//! `health_check`, `outlier`, `limits`, `discovery` and route `retry` keys,
//! and the functions that build them from the raw config (called by
//! `config::compile`, errors as `(field path, message)` pairs).

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, StatusCode};

use crate::config::raw::{
    RawBalance, RawDiscovery, RawHealthCheck, RawOutlier, RawRetry, RawUpstreamLimits,
};

type Errors = Vec<(String, String)>;

/// How an endpoint is chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin (nginx's algorithm): no bursts.
    RoundRobin,
    /// Weighted random.
    Random,
    /// Power of two choices over in-flight request counts.
    LeastRequest,
    /// Consistent hashing of a request key onto a ring of virtual nodes.
    RingHash(HashKey),
}

/// Where a `ring_hash` key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(HeaderName),
    Cookie(String),
    ClientIp,
    /// A JWT claim. The authentication step publishes it by inserting
    /// [`crate::upstream::balance::ClaimKey`] into the request extensions.
    Claim(String),
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub path: http::uri::PathAndQuery,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring an endpoint back.
    pub healthy: u32,
    /// Consecutive failures that take an endpoint out.
    pub unhealthy: u32,
    /// Inclusive status ranges counted as success.
    pub expect: Vec<(u16, u16)>,
}

impl HealthCheck {
    pub fn accepts(&self, s: StatusCode) -> bool {
        let s = s.as_u16();
        self.expect.iter().any(|&(lo, hi)| (lo..=hi).contains(&s))
    }
}

#[derive(Debug, Clone)]
pub struct Outlier {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    /// Largest share of endpoints ejected at once, 0.0..=1.0.
    pub max_ejected: f64,
}

/// The circuit breaker: at most `max_requests` in flight; up to
/// `max_pending` more may wait for a slot; beyond that, 503 at once.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub max_requests: u32,
    pub max_pending: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsTarget {
    /// A/AAAA records of `host`, all on `port`.
    Host { host: String, port: u16 },
    /// SRV records (each carries its own port).
    Srv(String),
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub target: DnsTarget,
    pub refresh: Duration,
    /// The DNS server to ask; `None` uses the system's (`/etc/resolv.conf`).
    pub resolver: Option<SocketAddr>,
}

/// A route's retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, the first included (>= 1).
    pub attempts: u32,
    pub on_connect_failure: bool,
    pub on_reset: bool,
    /// Upstream statuses that are retried; 504 also covers a per-try timeout.
    pub on_status: Vec<u16>,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Retries in flight may be at most this share of the upstream's
    /// active requests (with a floor of [`MIN_RETRY_CONCURRENCY`]).
    pub budget: f64,
    pub per_try_timeout: Option<Duration>,
    /// Bodies with a declared length up to this are buffered so they can be
    /// replayed; larger or chunked bodies are sent once, never retried.
    pub buffer: u64,
    /// Retry non-idempotent methods (POST, PATCH) too.
    pub non_idempotent: bool,
}

pub const MIN_RETRY_CONCURRENCY: usize = 3;

impl RetryPolicy {
    pub fn retries_timeout(&self) -> bool {
        self.on_status.contains(&504)
    }
}

pub fn balance(f: &str, raw: Option<&RawBalance>, errors: &mut Errors) -> Balance {
    let field = format!("{f}.balance");
    match raw {
        None => Balance::RoundRobin,
        Some(RawBalance::Name(n)) => match n.as_str() {
            "round_robin" => Balance::RoundRobin,
            "random" => Balance::Random,
            "least_request" => Balance::LeastRequest,
            "ring_hash" => {
                errors.push((
                    field,
                    "ring_hash needs a key: `{ ring_hash: { key: header:X-User-Id } }`".into(),
                ));
                Balance::RoundRobin
            }
            other => {
                errors.push((field, format!("unknown strategy `{other}`: expected round_robin, random, least_request or {{ ring_hash: {{ key: ... }} }}")));
                Balance::RoundRobin
            }
        },
        Some(RawBalance::RingHash(r)) => match hash_key(r.ring_hash.key.as_str()) {
            Ok(k) => Balance::RingHash(k),
            Err(m) => {
                errors.push((format!("{field}.ring_hash.key"), m));
                Balance::RoundRobin
            }
        },
    }
}

fn hash_key(s: &str) -> Result<HashKey, String> {
    let bad =
        || format!("invalid key `{s}`: expected header:NAME, cookie:NAME, client_ip or claim:NAME");
    if s == "client_ip" {
        return Ok(HashKey::ClientIp);
    }
    let (kind, name) = s.split_once(':').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    match kind {
        "header" => HeaderName::from_bytes(name.as_bytes())
            .map(HashKey::Header)
            .map_err(|_| bad()),
        "cookie" => Ok(HashKey::Cookie(name.to_owned())),
        "claim" => Ok(HashKey::Claim(name.to_owned())),
        _ => Err(bad()),
    }
}

pub fn health_check(
    f: &str,
    raw: Option<&RawHealthCheck>,
    errors: &mut Errors,
) -> Option<HealthCheck> {
    let r = raw?;
    let f = format!("{f}.health_check");
    let path = match r.path.as_str().parse::<http::uri::PathAndQuery>() {
        Ok(p) if r.path.as_str().starts_with('/') => p,
        _ => {
            errors.push((
                format!("{f}.path"),
                "expected an absolute path such as /health".into(),
            ));
            return None;
        }
    };
    let interval = r.interval.map_or(Duration::from_secs(5), |d| d.0);
    let timeout = r.timeout.map_or(Duration::from_secs(1), |d| d.0);
    for (name, d) in [("interval", interval), ("timeout", timeout)] {
        if d.is_zero() {
            errors.push((format!("{f}.{name}"), "must be greater than zero".into()));
        }
    }
    let mut expect = Vec::new();
    for (i, e) in r.expect.iter().flatten().enumerate() {
        match status_range(e.as_str()) {
            Some(range) => expect.push(range),
            None => errors.push((
                format!("{f}.expect[{i}]"),
                format!("invalid status or range `{e}`: expected e.g. 200 or 200-299"),
            )),
        }
    }
    if expect.is_empty() {
        expect.push((200, 299));
    }
    let healthy = at_least_one(r.healthy, 2, &format!("{f}.healthy"), errors);
    let unhealthy = at_least_one(r.unhealthy, 3, &format!("{f}.unhealthy"), errors);
    Some(HealthCheck {
        path,
        interval,
        timeout,
        healthy,
        unhealthy,
        expect,
    })
}

fn status_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let n = s.trim().parse().ok()?;
            (n, n)
        }
    };
    ((100..=599).contains(&lo) && (lo..=599).contains(&hi)).then_some((lo, hi))
}

fn at_least_one(v: Option<u32>, default: u32, field: &str, errors: &mut Errors) -> u32 {
    match v {
        Some(0) => {
            errors.push((field.to_owned(), "must be at least 1".into()));
            1
        }
        Some(n) => n,
        None => default,
    }
}

/// `50%` or a fraction such as `0.5`.
pub fn share(s: &str) -> Result<f64, String> {
    let bad = || {
        format!("invalid share `{s}`: expected a percentage such as 20% or a fraction such as 0.2")
    };
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => s.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(bad())
    }
}

pub fn outlier(f: &str, raw: Option<&RawOutlier>, errors: &mut Errors) -> Option<Outlier> {
    let r = raw?;
    let f = format!("{f}.outlier");
    let base_ejection = r.base_ejection.map_or(Duration::from_secs(30), |d| d.0);
    if base_ejection.is_zero() {
        errors.push((
            format!("{f}.base_ejection"),
            "must be greater than zero".into(),
        ));
    }
    let max_ejection = r
        .max_ejection
        .map_or(Duration::from_secs(300).max(base_ejection), |d| d.0);
    if max_ejection < base_ejection {
        errors.push((
            format!("{f}.max_ejection"),
            "must not be shorter than base_ejection".into(),
        ));
    }
    let max_ejected = match &r.max_ejected {
        None => 0.5,
        Some(t) => share(t.as_str()).unwrap_or_else(|m| {
            errors.push((format!("{f}.max_ejected"), m));
            0.5
        }),
    };
    Some(Outlier {
        consecutive_failures: at_least_one(
            r.consecutive_failures,
            5,
            &format!("{f}.consecutive_failures"),
            errors,
        ),
        base_ejection,
        max_ejection,
        max_ejected,
    })
}

pub fn limits(
    f: &str,
    raw: Option<&RawUpstreamLimits>,
    errors: &mut Errors,
) -> Option<UpstreamLimits> {
    let r = raw?;
    let max_requests = match r.max_requests {
        Some(0) => {
            errors.push((
                format!("{f}.limits.max_requests"),
                "must be at least 1".into(),
            ));
            1
        }
        Some(n) => n,
        None => u32::MAX,
    };
    Some(UpstreamLimits {
        max_requests,
        max_pending: r.max_pending.unwrap_or(0),
    })
}

pub fn discovery(f: &str, raw: Option<&RawDiscovery>, errors: &mut Errors) -> Option<Discovery> {
    let r = raw?;
    let f = format!("{f}.discovery");
    let target = match (&r.dns, &r.srv) {
        (Some(d), None) => {
            let parsed = d
                .as_str()
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|&p| p != 0)?)))
                .filter(|(h, _)| valid_dns_name(h));
            match parsed {
                Some((h, port)) => DnsTarget::Host {
                    host: h.to_ascii_lowercase(),
                    port,
                },
                None => {
                    errors.push((
                        format!("{f}.dns"),
                        format!("invalid `{d}`: expected NAME:PORT such as task.default.svc.cluster.local:8080"),
                    ));
                    return None;
                }
            }
        }
        (None, Some(s)) if valid_dns_name(s.as_str()) => {
            DnsTarget::Srv(s.as_str().to_ascii_lowercase())
        }
        (None, Some(s)) => {
            errors.push((
                format!("{f}.srv"),
                format!("invalid `{s}`: expected a name such as _http._tcp.task.default.svc.cluster.local"),
            ));
            return None;
        }
        _ => {
            errors.push((
                f,
                "expected exactly one of `dns: NAME:PORT` or `srv: NAME`".into(),
            ));
            return None;
        }
    };
    let refresh = r.refresh.map_or(Duration::from_secs(10), |d| d.0);
    if refresh.is_zero() {
        errors.push((format!("{f}.refresh"), "must be greater than zero".into()));
    }
    let resolver = match &r.resolver {
        None => None,
        Some(t) => match t.as_str().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.push((
                    format!("{f}.resolver"),
                    format!("invalid resolver `{t}`: expected IP:PORT such as 10.96.0.10:53"),
                ));
                None
            }
        },
    };
    Some(Discovery {
        target,
        refresh,
        resolver,
    })
}

fn valid_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub fn retry(f: &str, raw: Option<&RawRetry>, errors: &mut Errors) -> Option<RetryPolicy> {
    let r = raw?;
    let f = format!("{f}.retry");
    let attempts = at_least_one(r.attempts, 2, &format!("{f}.attempts"), errors);
    if attempts > 10 {
        errors.push((format!("{f}.attempts"), "at most 10 attempts".into()));
    }
    let mut p = RetryPolicy {
        attempts: attempts.min(10),
        on_connect_failure: false,
        on_reset: false,
        on_status: Vec::new(),
        backoff: r.backoff.map_or(Duration::from_millis(25), |d| d.0),
        max_backoff: Duration::ZERO,
        budget: 0.2,
        per_try_timeout: r.per_try_timeout.map(|d| d.0),
        buffer: r.buffer.map_or(64 * 1024, |s| s.0),
        non_idempotent: r.non_idempotent.unwrap_or(false),
    };
    p.max_backoff = r.max_backoff.map_or(p.backoff * 10, |d| d.0);
    if p.max_backoff < p.backoff {
        errors.push((
            format!("{f}.max_backoff"),
            "must not be shorter than backoff".into(),
        ));
    }
    if p.per_try_timeout.is_some_and(|d| d.is_zero()) {
        errors.push((
            format!("{f}.per_try_timeout"),
            "must be greater than zero".into(),
        ));
    }
    if let Some(b) = &r.budget {
        match share(b.as_str()) {
            Ok(v) => p.budget = v,
            Err(m) => errors.push((format!("{f}.budget"), m)),
        }
    }
    let default_on = ["connect_failure", "reset", "502", "503", "504"];
    let on: Vec<String> = match &r.on {
        Some(list) => list.iter().map(|t| t.0.clone()).collect(),
        None => default_on.iter().map(|s| (*s).to_owned()).collect(),
    };
    for (i, c) in on.iter().enumerate() {
        match c.as_str() {
            "connect_failure" => p.on_connect_failure = true,
            "reset" => p.on_reset = true,
            s => match s.parse::<u16>() {
                Ok(n) if (500..=599).contains(&n) => p.on_status.push(n),
                _ => errors.push((
                    format!("{f}.on[{i}]"),
                    format!("unknown retry condition `{s}`: expected connect_failure, reset or a 5xx status"),
                )),
            },
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_reported_at_their_field() {
        let yaml = "listeners: [{ name: t, bind: 127.0.0.1:0 }]\nupstreams:\n  u:\n    endpoints: [\"127.0.0.1:1\"]\n    balance: fastest\n    outlier: { max_ejected: 150% }\n    health_check: { path: health, expect: [700] }\n  d:\n    discovery: { dns: \"svc\", resolver: nope }\nroutes:\n  - id: r\n    match: { path: /x }\n    upstream: u\n    retry: { attempts: 0, on: [teapot], budget: 2 }\n";
        let errs = crate::config::load_str(yaml, "t.yaml")
            .expect_err("rejected")
            .0;
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "upstreams.u.balance",
            "upstreams.u.outlier.max_ejected",
            "upstreams.u.health_check.path",
            "upstreams.d.discovery.dns",
            "routes[0].retry.attempts",
            "routes[0].retry.on[0]",
            "routes[0].retry.budget",
        ] {
            assert!(fields.contains(&f), "{f} not in {fields:?}");
        }
        assert!(errs.iter().all(|e| e.pos.is_some()), "{errs:?}");
    }

    #[test]
    fn parses_shares_ranges_and_keys() {
        assert_eq!(share("20%"), Ok(0.2));
        assert_eq!(share("0.5"), Ok(0.5));
        assert!(share("120%").is_err() && share("x").is_err());
        assert_eq!(status_range("200-299"), Some((200, 299)));
        assert_eq!(status_range("204"), Some((204, 204)));
        assert_eq!(status_range("300-200"), None);
        assert_eq!(hash_key("client_ip"), Ok(HashKey::ClientIp));
        assert_eq!(hash_key("cookie:sid"), Ok(HashKey::Cookie("sid".into())));
        assert!(matches!(
            hash_key("header:X-User-Id"),
            Ok(HashKey::Header(_))
        ));
        assert!(hash_key("query:x").is_err() && hash_key("header:").is_err());
        assert!(valid_dns_name("task.default.svc.cluster.local"));
        assert!(valid_dns_name("_http._tcp.task"));
        assert!(!valid_dns_name("a..b"));
    }
}
