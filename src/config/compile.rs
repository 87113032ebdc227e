//! Raw config -> [`Snapshot`]: every semantic check lives here. Errors are
//! collected (not stopped at the first) as `(field path, message)` pairs;
//! `config::load_str` turns paths into positions.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;

use super::raw::*;
use super::{EndpointSpec, Limits, ListenerSpec, Protocol, Snapshot, UpstreamSpec};
use crate::proxy::forwarded::TrustedProxies;
use crate::proxy::headers::is_reserved_request_header;
use crate::proxy::rewrite::{HeaderRules, PathRewrite};
use crate::routing::path::{normalize, PathPolicy};
use crate::routing::pattern::PathPattern;
use crate::routing::predicates::{HostMatch, MethodSet, ValueMatch};
use crate::routing::{Action, Probe, Route, Router};
use crate::upstream::spec as upstream_spec;

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 32 * 1024;
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Large enough that a busy gateway keeps, rather than closes and
/// reopens, the connections its concurrency needs (64 churned connections
/// at 256 clients over 3 endpoints); idle ones still go after the idle timeout.
pub const DEFAULT_POOL_MAX_IDLE: usize = 1024;
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Errors = Vec<(String, String)>;

struct Ctx {
    errors: Errors,
}

impl Ctx {
    fn err(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.errors.push((field.into(), msg.into()));
    }
}

pub fn compile(raw: RawConfig) -> Result<Snapshot, Errors> {
    let mut cx = Ctx { errors: Vec::new() };
    let listeners = listeners(&mut cx, &raw.listeners);
    let trusted = trusted(&mut cx, &raw.trusted_proxies, raw.trusted_hops);
    let limits = limits(&mut cx, &raw.limits);
    let paths = PathPolicy {
        allow_encoded_slash: raw.paths.allow_encoded_slash.unwrap_or(false),
        allow_semicolon: raw.paths.allow_semicolon.unwrap_or(false),
    };
    let upstreams = upstreams(&mut cx, &raw.upstreams);
    let auth = crate::auth::compile::providers(raw.auth.as_ref(), &mut cx.errors);
    let defaults = RouteDefaults {
        auth,
        timeout: raw
            .limits
            .request_timeout
            .map_or(DEFAULT_REQUEST_TIMEOUT, |d| d.0),
        max_body: raw.limits.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0),
    };
    let routes = routes(&mut cx, &raw.routes, &upstreams, &defaults);
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(Snapshot {
        listeners,
        trusted,
        limits,
        paths,
        upstreams,
        router: Router::new(routes),
        auth: defaults.auth.config,
    })
}

fn listeners(cx: &mut Ctx, raw: &[RawListener]) -> Vec<ListenerSpec> {
    if raw.is_empty() {
        cx.err("listeners", "at least one listener is required, e.g. `listeners: [{ name: public, bind: 0.0.0.0:8080 }]`");
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let f = format!("listeners[{i}]");
        if !names.insert(l.name.as_str()) {
            cx.err(
                format!("{f}.name"),
                format!("duplicate listener name `{}`", l.name),
            );
        }
        let bind = match l.bind.as_str().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                cx.err(
                    format!("{f}.bind"),
                    format!(
                        "invalid address `{}`: expected IP:PORT such as 0.0.0.0:8080",
                        l.bind
                    ),
                );
                continue;
            }
        };
        let max_connections = match l.max_connections {
            Some(0) => {
                cx.err(format!("{f}.max_connections"), "must be at least 1");
                1
            }
            Some(n) => n as usize,
            None => DEFAULT_MAX_CONNECTIONS,
        };
        out.push(ListenerSpec {
            name: Arc::from(l.name.as_str()),
            bind,
            max_connections,
            http2: l.http2.unwrap_or(true),
        });
    }
    out
}

fn trusted(cx: &mut Ctx, cidrs: &[super::units::Text], hops: Option<u32>) -> TrustedProxies {
    if hops.is_some() && !cidrs.is_empty() {
        cx.err(
            "trusted_hops",
            "set either `trusted_proxies` (CIDRs) or `trusted_hops` (a count), not both",
        );
    }
    if let Some(n) = hops {
        return TrustedProxies::Hops(n);
    }
    let mut nets = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        let s = c.as_str();
        let parsed = s
            .parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(n) => nets.push(n),
            Err(_) => cx.err(
                format!("trusted_proxies[{i}]"),
                format!("invalid CIDR `{s}`: expected e.g. 10.0.0.0/8 or 192.168.1.7"),
            ),
        }
    }
    if nets.is_empty() {
        TrustedProxies::None
    } else {
        TrustedProxies::Cidrs(nets)
    }
}

fn limits(cx: &mut Ctx, raw: &RawLimits) -> Limits {
    let max_header_bytes = raw
        .max_header_bytes
        .map_or(DEFAULT_MAX_HEADER_BYTES, |s| s.0);
    if !(8192..=1 << 20).contains(&max_header_bytes) {
        cx.err("limits.max_header_bytes", "must be between 8KiB and 1MiB");
    }
    for (name, d) in [
        ("header_read_timeout", raw.header_read_timeout),
        ("body_read_timeout", raw.body_read_timeout),
        ("idle_timeout", raw.idle_timeout),
        ("request_timeout", raw.request_timeout),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            cx.err(format!("limits.{name}"), "must be greater than zero");
        }
    }
    Limits {
        header_read_timeout: raw
            .header_read_timeout
            .map_or(DEFAULT_HEADER_READ_TIMEOUT, |d| d.0),
        body_read_timeout: raw
            .body_read_timeout
            .map_or(DEFAULT_BODY_READ_TIMEOUT, |d| d.0),
        idle_timeout: raw.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
        drain_timeout: raw.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.0),
        max_header_bytes: max_header_bytes as usize,
    }
}

fn upstreams(
    cx: &mut Ctx,
    raw: &indexmap::IndexMap<super::units::Text, RawUpstream>,
) -> Vec<UpstreamSpec> {
    let mut out = Vec::new();
    for (name, u) in raw {
        let f = format!("upstreams.{name}");
        if !valid_id(name.as_str()) {
            cx.err(
                f.clone(),
                format!("invalid upstream name `{name}`: use letters, digits, `-`, `_` and `.`"),
            );
        }
        let discovery = upstream_spec::discovery(&f, u.discovery.as_ref(), &mut cx.errors);
        if discovery.is_some() && !u.endpoints.is_empty() {
            cx.err(
                format!("{f}.endpoints"),
                "set either `endpoints` or `discovery`, not both",
            );
        }
        if u.endpoints.is_empty() && u.discovery.is_none() {
            cx.err(
                format!("{f}.endpoints"),
                "at least one endpoint is required, e.g. [\"127.0.0.1:9101\"]",
            );
        }
        let mut endpoints = Vec::new();
        for (i, e) in u.endpoints.iter().enumerate() {
            let ef = format!("{f}.endpoints[{i}]");
            let (addr, weight) = match e {
                RawEndpoint::Address(a) => (a, None),
                RawEndpoint::Weighted(w) => (&w.address, w.weight),
            };
            if weight == Some(0) {
                cx.err(format!("{ef}.weight"), "weight must be at least 1");
            }
            match parse_endpoint(addr.as_str()) {
                Ok(authority) => endpoints.push(EndpointSpec {
                    authority,
                    weight: weight.unwrap_or(1).max(1),
                }),
                Err(m) => cx.err(ef, m),
            }
        }
        let protocol = match u.protocol.as_ref().map(|p| p.as_str()) {
            None | Some("http1") => Protocol::Http1,
            Some("http2") => Protocol::Http2,
            Some(other) => {
                cx.err(
                    format!("{f}.protocol"),
                    format!("unknown protocol `{other}`: expected http1 or http2"),
                );
                Protocol::Http1
            }
        };
        let pool = u.pool.as_ref();
        out.push(UpstreamSpec {
            name: Arc::from(name.as_str()),
            endpoints,
            protocol,
            connect_timeout: u.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            pool_max_idle_per_endpoint: pool
                .and_then(|p| p.max_idle_per_endpoint)
                .unwrap_or(DEFAULT_POOL_MAX_IDLE),
            pool_idle_timeout: pool
                .and_then(|p| p.idle_timeout)
                .map_or(DEFAULT_POOL_IDLE_TIMEOUT, |d| d.0),
            balance: upstream_spec::balance(&f, u.balance.as_ref(), &mut cx.errors),
            health_check: upstream_spec::health_check(&f, u.health_check.as_ref(), &mut cx.errors),
            outlier: upstream_spec::outlier(&f, u.outlier.as_ref(), &mut cx.errors),
            limits: upstream_spec::limits(&f, u.limits.as_ref(), &mut cx.errors),
            discovery,
        });
    }
    out
}

fn parse_endpoint(s: &str) -> Result<Authority, String> {
    let bad = || {
        format!("invalid endpoint `{s}`: expected HOST:PORT such as 127.0.0.1:9101 or task.default.svc:8080")
    };
    if s.contains("://") || s.contains('/') || s.contains('@') {
        return Err(bad());
    }
    let a: Authority = s.parse().map_err(|_| bad())?;
    match a.port_u16() {
        Some(p) if p != 0 => Ok(a),
        _ => Err(bad()),
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

struct RouteDefaults {
    timeout: Duration,
    max_body: u64,
    auth: crate::auth::compile::Compiled,
}

fn routes(cx: &mut Ctx, raw: &[RawRoute], ups: &[UpstreamSpec], d: &RouteDefaults) -> Vec<Route> {
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let f = format!("routes[{i}]");
        if !valid_id(r.id.as_str()) {
            cx.err(
                format!("{f}.id"),
                format!(
                    "invalid route id `{}`: use letters, digits, `-`, `_` and `.`",
                    r.id
                ),
            );
        } else if !ids.insert(r.id.as_str()) {
            cx.err(format!("{f}.id"), format!("duplicate route id `{}`", r.id));
        }
        if let Some(route) = route(cx, &f, i, r, ups, d) {
            out.push(route);
        }
    }
    out
}

fn route(
    cx: &mut Ctx,
    f: &str,
    index: usize,
    r: &RawRoute,
    ups: &[UpstreamSpec],
    d: &RouteDefaults,
) -> Option<Route> {
    let errors_before = cx.errors.len();
    let pattern = PathPattern::parse(r.matcher.path.as_str())
        .map_err(|m| cx.err(format!("{f}.match.path"), m))
        .ok();
    let methods = r.matcher.methods.as_ref().map(|ms| methods(cx, f, ms));
    let host = r.matcher.host.as_ref().and_then(|h| {
        HostMatch::parse(h.as_str())
            .map_err(|m| cx.err(format!("{f}.match.host"), m))
            .ok()
    });
    let mut headers = Vec::new();
    for (name, v) in r.matcher.headers.iter().flatten() {
        let hf = format!("{f}.match.headers.{name}");
        let Ok(hn) = HeaderName::from_bytes(name.as_str().as_bytes()) else {
            cx.err(hf, format!("invalid header name `{name}`"));
            continue;
        };
        if let Some(m) = value_match(cx, &hf, v) {
            headers.push((hn, m));
        }
    }
    let mut query = Vec::new();
    for (name, v) in r.matcher.query.iter().flatten() {
        if let Some(m) = value_match(cx, &format!("{f}.match.query.{name}"), v) {
            query.push((name.as_str().to_owned(), m));
        }
    }
    let action = action(cx, f, r, ups);
    let rewrite = path_rewrite(cx, f, r);
    let request_headers = header_rules(
        cx,
        &format!("{f}.request_headers"),
        r.request_headers.as_ref(),
        true,
    );
    let response_headers = header_rules(
        cx,
        &format!("{f}.response_headers"),
        r.response_headers.as_ref(),
        false,
    );
    if r.timeout.is_some_and(|t| t.0.is_zero()) {
        cx.err(format!("{f}.timeout"), "must be greater than zero");
    }
    let retry = upstream_spec::retry(f, r.retry.as_ref(), &mut cx.errors);
    if retry.is_some() && r.upstream.is_none() {
        cx.err(
            format!("{f}.retry"),
            "`retry` applies only to routes with an `upstream`",
        );
    }
    let auth = crate::auth::compile::route(
        &d.auth,
        r.auth.as_ref(),
        f,
        r.upstream.is_some(),
        r.request_headers.as_ref(),
        &mut cx.errors,
    );
    if cx.errors.len() != errors_before {
        return None;
    }
    Some(Route {
        id: Arc::from(r.id.as_str()),
        index,
        priority: r.priority.unwrap_or(0),
        pattern: pattern?,
        methods,
        host,
        headers,
        query,
        action: action?,
        rewrite,
        request_headers,
        response_headers,
        timeout: r.timeout.map_or(d.timeout, |t| t.0),
        max_body: r.max_body.map_or(d.max_body, |s| s.0),
        retry,
        auth,
    })
}

fn methods(cx: &mut Ctx, f: &str, raw: &[super::units::Text]) -> MethodSet {
    if raw.is_empty() {
        cx.err(
            format!("{f}.match.methods"),
            "an empty method list matches nothing; omit `methods` to allow any",
        );
    }
    let mut out = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let upper = m.as_str().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(method) if upper.bytes().all(|b| b.is_ascii_uppercase()) => out.push(method),
            _ => cx.err(
                format!("{f}.match.methods[{i}]"),
                format!("invalid method `{m}`: expected e.g. GET, POST, PUT, PATCH, DELETE"),
            ),
        }
    }
    MethodSet::new(out)
}

fn value_match(cx: &mut Ctx, f: &str, v: &RawValueMatch) -> Option<ValueMatch> {
    let regex = |cx: &mut Ctx, s: &str| {
        Regex::new(s)
            .map(ValueMatch::Regex)
            .map_err(|e| cx.err(f, format!("invalid regex: {e}")))
            .ok()
    };
    match v {
        RawValueMatch::Text(t) => match t.as_str().strip_prefix('~') {
            Some(re) => regex(cx, re),
            None => Some(ValueMatch::Exact(t.0.clone())),
        },
        RawValueMatch::Spec(s) => {
            match (s.present, &s.exact, &s.regex) {
                (Some(true), None, None) => Some(ValueMatch::Present),
                (None, Some(e), None) => Some(ValueMatch::Exact(e.0.clone())),
                (None, None, Some(r)) => regex(cx, r.as_str()),
                _ => {
                    cx.err(f, "expected exactly one of `present: true`, `exact: VALUE` or `regex: PATTERN`");
                    None
                }
            }
        }
    }
}

fn action(cx: &mut Ctx, f: &str, r: &RawRoute, ups: &[UpstreamSpec]) -> Option<Action> {
    let count = usize::from(r.upstream.is_some())
        + usize::from(r.redirect.is_some())
        + usize::from(r.respond.is_some())
        + usize::from(r.health.is_some());
    if count != 1 {
        // Point at the last action key when there are several.
        let field = match (count > 1, r.health.is_some(), r.respond.is_some()) {
            (true, true, _) => format!("{f}.health"),
            (true, false, true) => format!("{f}.respond"),
            (true, false, false) => format!("{f}.redirect"),
            _ => f.to_owned(),
        };
        cx.err(
            field,
            "a route needs exactly one of `upstream`, `redirect`, `respond` or `health`",
        );
        return None;
    }
    if r.upstream.is_none()
        && (r.strip_prefix.is_some() || r.prefix_path.is_some() || r.rewrite.is_some())
    {
        cx.err(
            f,
            "`strip_prefix`, `prefix_path` and `rewrite` apply only to routes with an `upstream`",
        );
    }
    if let Some(name) = &r.upstream {
        return match ups.iter().position(|u| &*u.name == name.as_str()) {
            Some(i) => Some(Action::Proxy { upstream: i }),
            None => {
                let known: Vec<&str> = ups.iter().map(|u| &*u.name).collect();
                cx.err(
                    format!("{f}.upstream"),
                    format!(
                        "undefined upstream `{name}`; defined: [{}]",
                        known.join(", ")
                    ),
                );
                None
            }
        };
    }
    if let Some(rd) = &r.redirect {
        let status = rd.status.unwrap_or(302);
        if ![301, 302, 303, 307, 308].contains(&status) {
            cx.err(
                format!("{f}.redirect.status"),
                format!("invalid redirect status {status}: expected 301, 302, 303, 307 or 308"),
            );
            return None;
        }
        if HeaderValue::from_str(rd.to.as_str()).is_err() || rd.to.as_str().is_empty() {
            cx.err(
                format!("{f}.redirect.to"),
                "expected a non-empty URL or path without control characters",
            );
            return None;
        }
        return Some(Action::Redirect {
            location: rd.to.0.clone(),
            status: StatusCode::from_u16(status).ok()?,
            append_path: rd.append_path.unwrap_or(false),
        });
    }
    if let Some(h) = &r.health {
        let probe = Probe::parse(h.as_str());
        if probe.is_none() {
            cx.err(
                format!("{f}.health"),
                format!("unknown probe `{h}`: expected live or ready"),
            );
        }
        return probe.map(Action::Health);
    }
    let rs = r.respond.as_ref()?;
    let status = rs.status.unwrap_or(200);
    let Ok(code) = StatusCode::from_u16(status) else {
        cx.err(
            format!("{f}.respond.status"),
            format!("invalid status {status}: expected 100-999"),
        );
        return None;
    };
    let ct = rs
        .content_type
        .as_ref()
        .map_or("text/plain; charset=utf-8", |c| c.as_str());
    let Ok(content_type) = HeaderValue::from_str(ct) else {
        cx.err(format!("{f}.respond.content_type"), "invalid header value");
        return None;
    };
    Some(Action::Respond {
        status: code,
        body: Bytes::from(rs.body.as_ref().map(|b| b.0.clone()).unwrap_or_default()),
        content_type,
    })
}

fn path_rewrite(cx: &mut Ctx, f: &str, r: &RawRoute) -> PathRewrite {
    let mut out = PathRewrite {
        strip_prefix: r.strip_prefix.unwrap_or(0),
        ..Default::default()
    };
    if let Some(p) = &r.prefix_path {
        let ok = p.as_str().starts_with('/')
            && normalize(p.as_str(), PathPolicy::default()).is_ok_and(|n| n == p.as_str());
        if ok {
            out.prefix_path = Some(p.0.clone());
        } else {
            cx.err(
                format!("{f}.prefix_path"),
                "expected a normalized absolute path such as /v2",
            );
        }
    }
    if let Some(rw) = &r.rewrite {
        if r.strip_prefix.is_some() || r.prefix_path.is_some() {
            cx.err(
                format!("{f}.rewrite"),
                "`rewrite` can not be combined with `strip_prefix` or `prefix_path`",
            );
        }
        match Regex::new(rw.regex.as_str()) {
            Ok(re) => out.regex = Some((re, rw.to.0.clone())),
            Err(e) => cx.err(format!("{f}.rewrite.regex"), format!("invalid regex: {e}")),
        }
    }
    out
}

fn header_rules(cx: &mut Ctx, f: &str, raw: Option<&RawHeaderRules>, request: bool) -> HeaderRules {
    let mut out = HeaderRules::default();
    let Some(raw) = raw else { return out };
    let name = |cx: &mut Ctx, field: String, n: &str| -> Option<HeaderName> {
        match HeaderName::from_bytes(n.as_bytes()) {
            Ok(h) if crate::proxy::headers::is_hop_by_hop(&h) => {
                cx.err(
                    field,
                    format!("`{n}` is a hop-by-hop header and can not be configured"),
                );
                None
            }
            Ok(h) if request && is_reserved_request_header(&h) => {
                cx.err(
                    field,
                    format!("`{n}` is set by the gateway itself and can not be configured"),
                );
                None
            }
            Ok(h) => Some(h),
            Err(_) => {
                cx.err(field, format!("invalid header name `{n}`"));
                None
            }
        }
    };
    for (i, n) in raw.remove.iter().enumerate() {
        if let Some(h) = name(cx, format!("{f}.remove[{i}]"), n.as_str()) {
            out.remove.push(h);
        }
    }
    for (kind, map) in [("set", &raw.set), ("add", &raw.add)] {
        for (n, v) in map {
            let field = format!("{f}.{kind}.{n}");
            let Some(h) = name(cx, field.clone(), n.as_str()) else {
                continue;
            };
            let Ok(value) = HeaderValue::from_str(v.as_str()) else {
                cx.err(
                    field,
                    "invalid header value (control characters are not allowed)",
                );
                continue;
            };
            if kind == "set" {
                out.set.push((h, value));
            } else {
                out.add.push((h, value));
            }
        }
    }
    out
}
