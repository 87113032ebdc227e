//! Sending the request to an upstream endpoint and classifying what comes
//! back: a response head, or an error at the right status (502 refused or
//! reset, 504 timeout, 413/408/400 when the client's body was at fault).
//! The try loop (endpoint choice, retries, breaker) is `upstream::retry`.
//! Also the WebSocket tunnel once both sides agreed to upgrade.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::body::{find_body_error, BodyError, RequestBody};
use crate::errors::GatewayError;
use crate::routing::Route;
use crate::upstream::body::UpstreamBody;
use crate::upstream::endpoint::Endpoint;
use crate::upstream::pool::{self, ResponseBody, SendError};
use crate::upstream::spec::RetryPolicy;
use crate::upstream::UpstreamRuntime;

/// What the route asks of the upstream call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Time allowed for the response head, all tries included.
    pub timeout: Duration,
    pub retry: Option<&'a RetryPolicy>,
    /// The client's address (after trusted proxies), for `ring_hash`.
    pub client_ip: IpAddr,
}

impl<'a> Call<'a> {
    pub fn for_route(route: &'a Route, client_ip: IpAddr) -> Call<'a> {
        Call {
            timeout: route.timeout,
            retry: route.retry.as_ref(),
            client_ip,
        }
    }
}

/// Picks an endpoint and sends `req` (whose URI holds only path and query),
/// retrying per the route's policy (see [`crate::upstream::retry`]).
pub fn send<'a>(
    up: &'a UpstreamRuntime,
    req: Request<RequestBody>,
    path_and_query: PathAndQuery,
    call: Call<'a>,
) -> impl Future<Output = Result<Response<ResponseBody>, GatewayError>> + 'a {
    crate::upstream::retry::run(up, req, path_and_query, call)
}

/// Why one try failed, finely enough to decide on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryError {
    /// No connection could be made: nothing was sent.
    Connect,
    /// The connection was reset or closed, or the answer was garbage.
    Reset,
    /// No response head within the try's timeout.
    Timeout,
    /// The client's body was at fault (413, 408, 400): never retried.
    Client(GatewayError),
}

impl From<TryError> for GatewayError {
    fn from(e: TryError) -> GatewayError {
        match e {
            TryError::Connect | TryError::Reset => GatewayError::BadGateway,
            TryError::Timeout => GatewayError::GatewayTimeout,
            TryError::Client(e) => e,
        }
    }
}

/// One try against one endpoint, bounded by `timeout` for the head; pass
/// what it yields to [`outcome`]. (A plain function returning the pool's
/// future itself: an async wrapper would keep a second copy of it.)
pub fn attempt<'a>(
    up: &'a UpstreamRuntime,
    endpoint: Arc<Endpoint>,
    mut req: Request<UpstreamBody>,
    path_and_query: PathAndQuery,
    timeout: Duration,
) -> impl Future<Output = Result<Response<ResponseBody>, SendError>> + 'a {
    *req.uri_mut() = Uri::from(path_and_query);
    pool::send(&up.pool, endpoint, req, Instant::now() + timeout)
}

/// What an [`attempt`] came to.
pub fn outcome(
    res: Result<Response<ResponseBody>, SendError>,
) -> Result<Response<ResponseBody>, TryError> {
    res.map_err(|e| classify(&e))
}

fn classify(e: &SendError) -> TryError {
    let e = match e {
        SendError::Timeout => return TryError::Timeout,
        SendError::Connect(e) => {
            tracing::debug!(error = %e, "upstream connect failed");
            return TryError::Connect;
        }
        SendError::Io(e) => {
            tracing::debug!(error = %e, "upstream request failed");
            return TryError::Reset;
        }
        SendError::Http(e) => e,
    };
    match find_body_error(e) {
        Some(BodyError::TooLarge) => TryError::Client(GatewayError::PayloadTooLarge),
        Some(BodyError::Timeout) => TryError::Client(GatewayError::RequestTimeout),
        Some(BodyError::Client) => TryError::Client(GatewayError::BadRequest(
            "the request body could not be read",
        )),
        None => {
            tracing::debug!(error = %e, "upstream request failed");
            TryError::Reset
        }
    }
}

/// After a `101 Switching Protocols` from the upstream, joins the client's
/// upgraded connection to the upstream's and copies bytes both ways until
/// either side closes.
pub fn spawn_tunnel(client: crate::server::http1::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let Some(crate::server::http1::Upgraded(mut c)) = client.upgraded().await else {
            tracing::debug!("client connection closed before the upgrade");
            return;
        };
        let u = match upstream.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut u = TokioIo::new(u);
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
            tracing::debug!(error = %e, "tunnel closed with error");
        }
    });
}

/// Whether an upstream response completes a WebSocket upgrade.
pub fn is_switching(resp: &Response<ResponseBody>) -> bool {
    resp.status() == StatusCode::SWITCHING_PROTOCOLS
}
