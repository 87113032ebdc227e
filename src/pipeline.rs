//! The request pipeline: one ordered list of steps, read top to bottom.
//!
//! 1. sanitize      framing checks, hop-by-hop removal, client address, path
//!    normalization (before ANY decision)
//! 2. route         select the route on the normalized path
//! 3. local answer  redirect / fixed response / health probe routes stop here
//! 4. authenticate  bearer token found and verified (auth::authenticate)
//! 5. authorize     scopes/roles/claims, identity headers (auth::authorize)
//! 6. rate limit    (rate limiting issue: slots in here)
//! 7. rewrite       upstream path, forwarding headers, request id, header rules
//! 8. forward       pick an endpoint, send, classify failures (502/504/413...)
//! 9. respond       hop-by-hop removal, response header rules, upgrades
//! 10. record       access log, always, even on error
//!
//! Each step either continues with what it computed or ends the request with
//! a [`GatewayError`], which has exactly one mapping to status and body.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, TE};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response};
use tokio::time::Instant;

use crate::auth;
use crate::config::Snapshot;
use crate::errors::GatewayError;
use crate::observability;
use crate::proxy::body::{
    declared_too_large, headers_into_map, ClientBody, ProxyBody, RequestBody,
};
use crate::proxy::headers::{strip_hop_by_hop, X_REQUEST_ID};
use crate::proxy::{forward, forwarded, request_id, sanitize};
use crate::routing::predicates::request_host;
use crate::routing::{Action, Probe, RequestView, Route, Selection};
use crate::upstream::balance::ClaimKey;
use crate::upstream::spec::{Balance, HashKey};
use crate::upstream::UpstreamRuntime;

/// A compiled snapshot and the runtime state built for it, swapped together.
#[derive(Debug)]
pub struct Active {
    pub snapshot: Arc<Snapshot>,
    /// Indexed like `snapshot.upstreams`.
    pub upstreams: Vec<Arc<UpstreamRuntime>>,
    /// Key sets and the verified-token cache, indexed like `snapshot.auth.providers`.
    pub auth: Arc<auth::AuthRuntime>,
}

impl Active {
    pub fn new(snapshot: Snapshot) -> Active {
        let upstreams = snapshot
            .upstreams
            .iter()
            .map(|u| Arc::new(UpstreamRuntime::new(u)))
            .collect();
        let auth = Arc::new(auth::AuthRuntime::new(&snapshot.auth, None));
        Active {
            snapshot: Arc::new(snapshot),
            upstreams,
            auth,
        }
    }
}

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's address formatted once for the forwarding headers.
    pub peer_ip: forwarded::Peer,
    pub listener: Arc<str>,
    /// `http` (TLS listeners will say `https`).
    pub scheme: &'static str,
}

/// Per-request facts shared by the steps and the access log.
#[derive(Debug)]
pub struct RequestCtx {
    pub peer: SocketAddr,
    pub client_ip: IpAddr,
    pub request_id: HeaderValue,
    pub route: Option<Arc<str>>,
    pub upstream: Option<Arc<str>>,
    pub error: Option<&'static str>,
    /// The normalized path, kept only while the access log is enabled.
    pub path: Option<String>,
}

/// Runs one request through every step. Never fails: errors become responses.
pub async fn handle(
    active: &Active,
    conn: &ConnInfo,
    req: Request<ClientBody>,
) -> Response<ProxyBody> {
    // Only the access log reads the clock and the path (step 10).
    let log = observability::access_log_enabled();
    let started = log.then(Instant::now);
    let mut ctx = RequestCtx {
        peer: conn.peer,
        client_ip: conn.peer.ip(),
        request_id: request_id::for_request(req.headers().get(&X_REQUEST_ID)),
        route: None,
        upstream: None,
        error: None,
        path: None,
    };
    let method = req.method().clone();
    let mut resp = match steps(active, conn, &mut ctx, req, log).await {
        Ok(resp) => resp,
        Err(e) => {
            ctx.error = Some(e.code());
            e.to_response(ctx.request_id.to_str().unwrap_or(""))
        }
    };
    resp.headers_mut()
        .insert(&X_REQUEST_ID, ctx.request_id.clone());
    // 10. record
    if let Some(started) = started {
        observability::access_log(&ctx, &method, resp.status(), started.elapsed());
    }
    resp
}

async fn steps(
    active: &Active,
    conn: &ConnInfo,
    ctx: &mut RequestCtx,
    req: Request<ClientBody>,
    log: bool,
) -> Result<Response<ProxyBody>, GatewayError> {
    let snap = &*active.snapshot;
    let (mut parts, body) = req.into_parts();

    // 1. sanitize
    let clean = sanitize::request(snap, ctx, &mut parts)?;
    if log {
        ctx.path = Some(clean.path.as_str().to_owned());
    }

    // 2. route
    let route = select_route(snap, &parts, clean.path.as_str())?;
    ctx.route = Some(route.id.clone());

    // 3. local answer
    let upstream = match &route.action {
        Action::Proxy { upstream } => &active.upstreams[*upstream],
        Action::Health(probe) => return probe_answer(*probe, &active.auth, route),
        Action::Redirect { .. } | Action::Respond { .. } => {
            return Ok(local_answer(route, clean.path.as_str(), parts.uri.query()));
        }
    };

    // 4. authenticate
    let identity = auth::authenticate(&active.auth, &snap.auth, &route.auth, &mut parts).await?;

    publish_hash_claim(snap, route, identity.as_ref(), &mut parts);

    // 5. authorize (then set the identity headers from verified claims)
    auth::authorize(&snap.auth, &route.auth, identity, &mut parts.headers)?;

    // 6. rate limit: to come.

    // 7. rewrite
    if declared_too_large(&parts.headers, route.max_body) {
        return Err(GatewayError::PayloadTooLarge);
    }
    let path_and_query = upstream_target(route, &clean.path, &parts.uri)?;
    let client_upgrade = if clean.websocket {
        parts.extensions.remove::<crate::server::http1::OnUpgrade>()
    } else {
        None
    };
    rewrite_request_headers(snap, conn, ctx, route, &mut parts, &clean);
    let body = RequestBody::new(body, route.max_body, snap.limits.body_read_timeout);
    let upstream_req = Request::from_parts(parts, body);

    // 8. forward
    ctx.upstream = Some(upstream.name.clone());
    let call = forward::Call::for_route(route, ctx.client_ip);
    let mut resp = forward::send(upstream, upstream_req, path_and_query, call).await?;

    // 9. respond (an HTTP/1 upstream's header lines may be kept aside from
    // the map, see proxy::h1::raw: both are cleaned)
    match client_upgrade {
        Some(client) if forward::is_switching(&resp) => {
            let upstream_io = hyper::upgrade::on(&mut resp);
            forward::spawn_tunnel(client, upstream_io);
        }
        _ => {
            strip_hop_by_hop(resp.headers_mut());
            if let Some(raw) = resp.body_mut().raw_headers_mut() {
                raw.strip_hop_by_hop();
            }
        }
    }
    let mut resp = resp.map(ProxyBody::Upstream);
    if !route.response_headers.is_empty() {
        headers_into_map(&mut resp);
        route.response_headers.apply(resp.headers_mut());
    }
    Ok(resp)
}

/// For `ring_hash` on `claim:NAME`, hands the verified claim's value to
/// the balancer (step 8) through the request extensions.
fn publish_hash_claim(
    snap: &Snapshot,
    route: &Route,
    identity: Option<&auth::Identity>,
    parts: &mut Parts,
) {
    let (Action::Proxy { upstream }, Some(id)) = (&route.action, identity) else {
        return;
    };
    if let Balance::RingHash(HashKey::Claim(name)) = &snap.upstreams[*upstream].balance {
        if let Some(v) = id.claims.string(name) {
            parts.extensions.insert(ClaimKey(v.into_owned()));
        }
    }
}

fn select_route<'s>(
    snap: &'s Snapshot,
    parts: &Parts,
    path: &str,
) -> Result<&'s Route, GatewayError> {
    // Lower-cased for matching; a copy only when it has upper case.
    let host = request_host(&parts.uri, &parts.headers).map(|h| {
        if h.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(h.to_ascii_lowercase())
        } else {
            Cow::Borrowed(h)
        }
    });
    let view = RequestView {
        method: &parts.method,
        path,
        host: host.as_deref(),
        headers: &parts.headers,
        query: parts.uri.query(),
    };
    match snap.router.select(&view) {
        Selection::Found(r) => Ok(r),
        Selection::NotFound => Err(GatewayError::NoRoute),
        Selection::MethodNotAllowed(allow) => Err(GatewayError::MethodNotAllowed(allow)),
    }
}

/// Redirect and fixed-response routes.
fn local_answer(route: &Route, path: &str, query: Option<&str>) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::empty());
    match &route.action {
        Action::Redirect {
            location,
            status,
            append_path,
        } => {
            let mut loc = location.clone();
            if *append_path {
                let skip = route.pattern.literal_prefix().len() as u32;
                let rest = crate::proxy::rewrite::PathRewrite {
                    strip_prefix: skip,
                    ..Default::default()
                }
                .apply(path);
                loc = format!("{}{}", loc.trim_end_matches('/'), rest);
                if let Some(q) = query {
                    loc.push('?');
                    loc.push_str(q);
                }
            }
            *resp.status_mut() = *status;
            if let Ok(v) = HeaderValue::from_str(&loc) {
                resp.headers_mut().insert(LOCATION, v);
            }
        }
        Action::Respond {
            status,
            body,
            content_type,
        } => {
            *resp.status_mut() = *status;
            *resp.body_mut() = ProxyBody::full(body.clone());
            resp.headers_mut()
                .insert(CONTENT_TYPE, content_type.clone());
        }
        Action::Proxy { .. } | Action::Health(_) => {}
    }
    route.response_headers.apply(resp.headers_mut());
    resp
}

/// Built-in probes, answered before authentication. `live`: the process
/// serves. `ready`: every auth provider has a key set, so a new replica takes
/// no traffic it could only answer with 503 signing_keys_unavailable.
fn probe_answer(
    probe: Probe,
    auth: &auth::AuthRuntime,
    route: &Route,
) -> Result<Response<ProxyBody>, GatewayError> {
    let body: &'static [u8] = match probe {
        Probe::Live => br#"{"status":"live"}"#,
        Probe::Ready if auth.ready() => br#"{"status":"ready"}"#,
        Probe::Ready => return Err(GatewayError::NotReady),
    };
    let mut resp = Response::new(ProxyBody::full(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    route.response_headers.apply(resp.headers_mut());
    Ok(resp)
}

/// The path (after the route's rewrite) and the client's query, untouched.
/// A normal path without a rewrite goes as the client sent it (authentication
/// may have removed a token from the query: `uri` is the current target).
fn upstream_target(
    route: &Route,
    path: &sanitize::NormalPath,
    uri: &http::Uri,
) -> Result<PathAndQuery, GatewayError> {
    let identity = route.rewrite.is_identity();
    if let (true, sanitize::NormalPath::Unchanged(_), Some(pq)) =
        (identity, path, uri.path_and_query())
    {
        return Ok(pq.clone());
    }
    let mut target = if identity {
        path.as_str().to_owned()
    } else {
        route.rewrite.apply(path.as_str())
    };
    if let Some(q) = uri.query() {
        target.push('?');
        target.push_str(q);
    }
    PathAndQuery::try_from(target)
        .map_err(|_| GatewayError::BadRequest("request target can not be forwarded"))
}

fn rewrite_request_headers(
    snap: &Snapshot,
    conn: &ConnInfo,
    ctx: &RequestCtx,
    route: &Route,
    parts: &mut Parts,
    clean: &sanitize::Sanitized,
) {
    // Room for the headers set below: one growth of the map, not several.
    let rules = &route.request_headers;
    parts.headers.reserve(6 + rules.set.len() + rules.add.len());
    let sent_host = parts.headers.get(HOST).cloned();
    let had_host = sent_host.is_some();
    let host = sent_host.or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let trusted = snap.trusted.trusts_peer(ctx.peer.ip());
    forwarded::set_forwarding_headers(
        &mut parts.headers,
        trusted,
        &conn.peer_ip,
        ctx.client_ip,
        conn.scheme,
        host.clone(),
    );
    // (The forwarding headers never touch Host: it is there if it was.)
    if let (false, Some(h)) = (had_host, host) {
        parts.headers.insert(HOST, h);
    }
    parts.headers.insert(&X_REQUEST_ID, ctx.request_id.clone());
    route.request_headers.apply(&mut parts.headers);
    if clean.websocket {
        parts.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        parts
            .headers
            .insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    if clean.te_trailers {
        parts
            .headers
            .insert(TE, HeaderValue::from_static("trailers"));
    }
}
