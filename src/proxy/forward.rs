//! Sending the request to an upstream endpoint and classifying what comes
//! back: a response head, or an error at the right status (502 refused or
//! reset, 504 timeout, 413/408/400 when the client's body was at fault).
//! Also the WebSocket tunnel once both sides agreed to upgrade.

use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::{find_body_error, BodyError, RequestBody};
use crate::config::Protocol;
use crate::errors::GatewayError;
use crate::upstream::UpstreamRuntime;

/// Picks an endpoint and sends `req` (whose URI holds only path and query),
/// waiting at most `timeout` for the response head.
pub async fn send(
    up: &UpstreamRuntime,
    mut req: Request<RequestBody>,
    path_and_query: PathAndQuery,
    timeout: Duration,
) -> Result<Response<Incoming>, GatewayError> {
    let endpoint = up.pick().ok_or(GatewayError::ServiceUnavailable(
        "no upstream endpoint is available",
    ))?;
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(endpoint.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| GatewayError::Internal)?;
    *req.uri_mut() = uri;
    *req.version_mut() = match up.protocol {
        Protocol::Http1 => Version::HTTP_11,
        Protocol::Http2 => Version::HTTP_2,
    };
    match tokio::time::timeout(timeout, up.client.request(req)).await {
        Err(_) => Err(GatewayError::GatewayTimeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

fn classify(e: &hyper_util::client::legacy::Error) -> GatewayError {
    match find_body_error(e) {
        Some(BodyError::TooLarge) => GatewayError::PayloadTooLarge,
        Some(BodyError::Timeout) => GatewayError::RequestTimeout,
        Some(BodyError::Client) => GatewayError::BadRequest("the request body could not be read"),
        None => {
            tracing::debug!(error = %e, connect = e.is_connect(), "upstream request failed");
            GatewayError::BadGateway
        }
    }
}

/// After a `101 Switching Protocols` from the upstream, joins the client's
/// upgraded connection to the upstream's and copies bytes both ways until
/// either side closes.
pub fn spawn_tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (c, u) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut c = TokioIo::new(c);
        let mut u = TokioIo::new(u);
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
            tracing::debug!(error = %e, "tunnel closed with error");
        }
    });
}

/// Whether an upstream response completes a WebSocket upgrade.
pub fn is_switching(resp: &Response<Incoming>) -> bool {
    resp.status() == StatusCode::SWITCHING_PROTOCOLS
}
