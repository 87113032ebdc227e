//! Step 1 of the pipeline: make the request safe to reason about before any
//! route or policy decision. Framing checks, hop-by-hop and never-forwarded
//! headers removed, the client address derived, the path normalized.

use std::borrow::Cow;

use http::request::Parts;
use http::uri::PathAndQuery;
use http::Version;

use super::headers::{framing_error, strip_hop_by_hop, strip_never_forwarded, wants_trailers};
use crate::config::Snapshot;
use crate::errors::GatewayError;
use crate::pipeline::RequestCtx;
use crate::routing::path::normalize;

/// The normalized path: what routing, policies and the upstream see.
#[derive(Debug)]
pub enum NormalPath {
    /// The request's path was already normal (the common case): a cheap
    /// shared copy of the request target, no new string.
    Unchanged(PathAndQuery),
    Normalized(String),
}

impl NormalPath {
    pub fn as_str(&self) -> &str {
        match self {
            NormalPath::Unchanged(pq) => pq.path(),
            NormalPath::Normalized(p) => p,
        }
    }
}

/// What sanitizing learned that later steps need.
pub struct Sanitized {
    pub path: NormalPath,
    /// The client sent `Connection: Upgrade` + `Upgrade: websocket`.
    pub websocket: bool,
    /// The client sent `TE: trailers` (gRPC).
    pub te_trailers: bool,
}

pub fn request(
    snap: &Snapshot,
    ctx: &mut RequestCtx,
    parts: &mut Parts,
) -> Result<Sanitized, GatewayError> {
    // Oversized heads get the JSON 431 here; the HTTP/1 parser's buffer is
    // a few times larger and only answers (bare) for far bigger heads.
    if head_size(parts) > snap.limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    // Identity headers are only ever set from verified claims: a client's
    // own copy goes first, on every route, before anything reads headers.
    crate::auth::strip_identity_headers(&snap.auth, &mut parts.headers);
    // Absolute-form targets are for forward proxies; HTTP/2 always carries
    // scheme and authority, which is fine.
    if parts.version < Version::HTTP_2 && parts.uri.scheme().is_some() {
        return Err(GatewayError::BadRequest(
            "absolute-form request targets are not accepted",
        ));
    }
    if parts.method == http::Method::CONNECT {
        return Err(GatewayError::BadRequest("CONNECT is not supported"));
    }
    if let Some(why) = framing_error(parts.version, &parts.headers) {
        return Err(GatewayError::BadRequest(why));
    }
    let websocket = super::headers::is_websocket_upgrade(parts.version, &parts.headers);
    let te_trailers = wants_trailers(&parts.headers);
    // Order matters: hop-by-hop (and headers named in Connection) go first,
    // so nothing the gateway sets later can be removed by the client.
    strip_hop_by_hop(&mut parts.headers);
    strip_never_forwarded(&mut parts.headers);
    ctx.client_ip = snap.trusted.client_ip(ctx.peer.ip(), &parts.headers);
    let path = match normalize(parts.uri.path(), snap.paths)
        .map_err(|e| GatewayError::BadRequest(e.message()))?
    {
        Cow::Owned(p) => NormalPath::Normalized(p),
        Cow::Borrowed(_) => match parts.uri.path_and_query() {
            Some(pq) => NormalPath::Unchanged(pq.clone()),
            None => NormalPath::Normalized(parts.uri.path().to_owned()),
        },
    };
    Ok(Sanitized {
        path,
        websocket,
        te_trailers,
    })
}

/// The request head's size as sent on HTTP/1.1: request line and header
/// lines with their separators.
fn head_size(parts: &Parts) -> usize {
    let line = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(1, |p| p.as_str().len())
        + 12;
    parts
        .headers
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}
