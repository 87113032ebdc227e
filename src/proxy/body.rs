//! Body types on both sides of the proxy. Bodies stream frame by frame; the
//! gateway never buffers a whole body.
//!
//! - [`ProxyBody`]: what the client receives (an upstream's streamed body or
//!   a small body the gateway made).
//! - [`RequestBody`]: what the upstream receives: the client's body with the
//!   route's size limit (chunked bodies included), a total read deadline,
//!   and trailers cleaned of headers the gateway owns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::headers::is_forbidden_trailer;
use crate::upstream::pool::ResponseBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body sent to clients.
#[derive(Debug)]
pub enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(ResponseBody),
}

impl ProxyBody {
    pub fn full(b: impl Into<Bytes>) -> ProxyBody {
        let b = b.into();
        ProxyBody::Full((!b.is_empty()).then_some(b))
    }

    pub fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }

    /// The upstream's header lines when they are not in the response's map
    /// (an HTTP/1 upstream on the inline client): see `proxy::h1::raw`.
    pub fn raw_headers(&self) -> Option<&crate::proxy::h1::raw::RawHeaders> {
        match self {
            ProxyBody::Upstream(b) => b.raw_headers(),
            ProxyBody::Full(_) => None,
        }
    }
}

/// Puts every header of `resp` into its map: the upstream's lines kept
/// aside (if any) go behind the ones the gateway set. For consumers that
/// only read the map (HTTP/2, header rules).
pub fn headers_into_map(resp: &mut http::Response<ProxyBody>) {
    if resp.body().raw_headers().is_none() {
        return;
    }
    let mut map = std::mem::take(resp.headers_mut());
    if let ProxyBody::Upstream(b) = resp.body_mut() {
        b.move_headers_into(&mut map);
    }
    *resp.headers_mut() = map;
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(inc) => Pin::new(inc).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream(inc) => inc.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream(inc) => inc.size_hint(),
        }
    }
}

/// Why reading the client's body stopped; found again in the upstream
/// client's error chain to choose the status (413, 408, or 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Timeout,
    /// The client's connection failed or sent a malformed body.
    Client,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::TooLarge => "request body exceeds the limit",
            BodyError::Timeout => "request body read deadline exceeded",
            BodyError::Client => "client body stream failed",
        })
    }
}

impl std::error::Error for BodyError {}

/// Finds a [`BodyError`] anywhere in an error's source chain.
pub fn find_body_error(e: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<BodyError>() {
            return Some(*b);
        }
        cur = err.source();
    }
    None
}

/// The client's request body as the server received it.
#[derive(Debug)]
pub enum ClientBody {
    Empty,
    /// From the gateway's own HTTP/1 codec.
    H1(crate::server::http1::body::H1Body),
    /// From hyper's HTTP/2 server.
    H2(Incoming),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::H1(b) => Pin::new(b).poll_frame(cx),
            ClientBody::H2(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|_| BodyError::Client))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::H1(b) => b.is_end_stream(),
            ClientBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::H1(b) => b.size_hint(),
            ClientBody::H2(b) => b.size_hint(),
        }
    }
}

/// The client's body on its way upstream. (The upstream client needs an
/// `Unpin` body, hence the boxed deadline; bodiless requests allocate none.)
pub struct RequestBody {
    inner: Option<ClientBody>,
    remaining: u64,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl RequestBody {
    pub fn empty() -> RequestBody {
        RequestBody {
            inner: None,
            remaining: 0,
            deadline: None,
        }
    }

    /// `limit` bytes at most, all of them within `timeout` from now.
    pub fn new(inner: ClientBody, limit: u64, timeout: Duration) -> RequestBody {
        if inner.is_end_stream() {
            return RequestBody::empty();
        }
        RequestBody {
            inner: Some(inner),
            remaining: limit,
            deadline: Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(f) => f,
            Poll::Pending => {
                if let Some(d) = this.deadline.as_mut() {
                    if d.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(BodyError::Timeout)));
                    }
                }
                return Poll::Pending;
            }
        };
        match frame {
            None => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                    this.remaining -= n;
                    return Poll::Ready(Some(Ok(frame)));
                }
                match frame.into_trailers() {
                    Ok(mut trailers) => {
                        clean_trailers(&mut trailers);
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    Err(other) => Poll::Ready(Some(Ok(other))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(i) => i.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// Trailers can not carry headers the gateway owns (identity, forwarding,
/// framing, credentials).
fn clean_trailers(trailers: &mut HeaderMap) {
    let bad: Vec<_> = trailers
        .keys()
        .filter(|k| is_forbidden_trailer(k))
        .cloned()
        .collect();
    for k in bad {
        trailers.remove(k);
    }
}

/// Returns `true` when the declared length already exceeds the limit, so
/// the gateway can answer 413 before reading anything.
pub fn declared_too_large(headers: &HeaderMap, limit: u64) -> bool {
    if !super::headers::has(headers, &http::header::CONTENT_LENGTH) {
        return false;
    }
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}
