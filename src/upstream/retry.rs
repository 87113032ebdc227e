//! The per-request try loop: breaker slot, endpoint choice, one try,
//! outlier bookkeeping, and retries when the route's policy allows them.
//!
//! A retry happens only when all of these hold: the method is idempotent
//! (or the route opted in); the body can be replayed (none, or a declared
//! length up to `retry.buffer`, read into memory before the first try: a
//! streamed body is never retried once sent); the failure is one the
//! policy names; another endpoint not tried yet is available; the retry
//! budget has room; and the route's timeout has not run out. Tries back
//! off exponentially with jitter.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, FutureExt};
use http::header::CONTENT_LENGTH;
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::balance::{self, ClaimKey, PickCtx};
use super::body::UpstreamBody;
use super::pool::ResponseBody;
use super::spec::{RetryPolicy, MIN_RETRY_CONCURRENCY};
use super::{outlier, UpstreamRuntime};
use crate::errors::GatewayError;
use crate::proxy::body::{BodyError, RequestBody};
use crate::proxy::forward::{self, Call, TryError};

const NO_ENDPOINT: GatewayError =
    GatewayError::ServiceUnavailable("no healthy upstream endpoint is available");

type TryResult = Result<Response<ResponseBody>, TryError>;

/// Sends `req` to an endpoint of `up`, retrying per the route's policy.
///
/// A plain function: in the common case (no breaker, no retry policy that
/// applies) the endpoint is picked and the request handed to the pool
/// before anything is awaited, so the future returned holds the try's small
/// future and not the request. Breaker waits and retries are boxed.
pub fn run<'a>(
    up: &'a UpstreamRuntime,
    req: Request<RequestBody>,
    pq: PathAndQuery,
    call: Call<'a>,
) -> impl Future<Output = Result<Response<ResponseBody>, GatewayError>> + 'a {
    let policy = call
        .retry
        .filter(|p| p.attempts > 1 && (p.non_idempotent || req.method().is_idempotent()));
    if up.breaker.is_some() || policy.is_some() {
        return Either::Right(Box::pin(guarded(up, req, pq, call, policy)));
    }
    let active = Count::enter(&up.state.active);
    // Combinators, not an async block: they poll the try's future in place
    // (an async block would keep the future it awaits twice).
    Either::Left(match single_try(up, req, pq, &call, call.timeout) {
        Ok(sent) => Either::Left(sent.map(move |res| {
            drop(active);
            res.map_err(GatewayError::from)
        })),
        Err(e) => Either::Right(std::future::ready(Err(e))),
    })
}

/// A route with a circuit breaker or a retry policy: the route's time runs
/// from here, a breaker slot is waited for first, then the tries.
async fn guarded(
    up: &UpstreamRuntime,
    req: Request<RequestBody>,
    pq: PathAndQuery,
    call: Call<'_>,
    policy: Option<&RetryPolicy>,
) -> Result<Response<ResponseBody>, GatewayError> {
    let deadline = Instant::now() + call.timeout;
    let _slot = match &up.breaker {
        Some(b) => Some(b.enter(call.timeout).await?),
        None => None,
    };
    let _active = Count::enter(&up.state.active);
    match policy {
        Some(policy) => with_retries(up, req, pq, call, policy, deadline).await,
        None => {
            let left = deadline.saturating_duration_since(Instant::now());
            single_try(up, req, pq, &call, left)?
                .await
                .map_err(GatewayError::from)
        }
    }
}

/// One try, the body streamed: picks the endpoint and starts the try.
fn single_try<'a>(
    up: &'a UpstreamRuntime,
    req: Request<RequestBody>,
    pq: PathAndQuery,
    call: &Call<'_>,
    timeout: Duration,
) -> Result<impl Future<Output = TryResult> + 'a, GatewayError> {
    let st = &*up.state;
    let (parts, body) = req.into_parts();
    let body = if body.is_end_stream() {
        UpstreamBody::empty()
    } else {
        UpstreamBody::Stream(body)
    };
    let set = st.endpoints.load_full();
    let now_ms = st.now_ms();
    let cx = PickCtx {
        headers: &parts.headers,
        client_ip: call.client_ip,
        claim: parts.extensions.get::<ClaimKey>().map(|c| c.0.as_str()),
        tried: &[],
        now_ms,
    };
    let ep = balance::pick(&up.balance, &set, &st.cursor, &cx).ok_or(NO_ENDPOINT)?;
    let req = Request::from_parts(parts, body);
    Ok(try_once(up, set, ep, req, pq, timeout, now_ms))
}

/// One try against `ep`, then the outlier bookkeeping. (A plain function:
/// the request goes to the pool now, the future keeps only what follows.)
fn try_once<'a>(
    up: &'a UpstreamRuntime,
    set: Arc<balance::EndpointSet>,
    ep: Arc<super::endpoint::Endpoint>,
    req: Request<UpstreamBody>,
    pq: PathAndQuery,
    timeout: Duration,
    now_ms: u64,
) -> impl Future<Output = TryResult> + 'a {
    let in_flight = ep.begin();
    forward::attempt(up, ep, req, pq, timeout).map(move |res| {
        let res = forward::outcome(res);
        // Outlier detection counts what the endpoint did, not the client's
        // faults.
        if let (Some(o), false) = (&up.outlier, matches!(res, Err(TryError::Client(_)))) {
            let ok = matches!(&res, Ok(r) if !r.status().is_server_error());
            outlier::record(o, &set, in_flight.endpoint(), ok, now_ms);
        }
        drop(in_flight);
        res
    })
}

/// The try loop for a route with a retry policy that applies to this
/// request.
async fn with_retries(
    up: &UpstreamRuntime,
    req: Request<RequestBody>,
    pq: PathAndQuery,
    call: Call<'_>,
    policy: &RetryPolicy,
    deadline: Instant,
) -> Result<Response<ResponseBody>, GatewayError> {
    let st = &*up.state;
    let (parts, body) = req.into_parts();
    let claim = parts.extensions.get::<ClaimKey>().map(|c| c.0.clone());
    let (mut stream, replay) = prepare_body(body, &parts.headers, policy).await?;
    let attempts = if replay.is_some() { policy.attempts } else { 1 };
    let mut parts = Some(parts);
    let mut tried: Vec<u64> = Vec::new();
    let mut last: Option<TryResult> = None;
    for n in 0..attempts {
        if n > 0 && !wait_for_retry(up, policy, n, deadline).await {
            break;
        }
        let Some(head) = parts.as_ref() else { break };
        let set = st.endpoints.load_full();
        let now_ms = st.now_ms();
        let cx = PickCtx {
            headers: &head.headers,
            client_ip: call.client_ip,
            claim: claim.as_deref(),
            tried: &tried,
            now_ms,
        };
        let Some(ep) = balance::pick(&up.balance, &set, &st.cursor, &cx) else {
            break;
        };
        tried.push(ep.id);
        let head = if n + 1 == attempts {
            parts.take()
        } else {
            parts.clone()
        };
        let Some(head) = head else { break };
        let body = match &replay {
            Some(b) => UpstreamBody::full(b.clone()),
            None => stream
                .take()
                .map_or_else(UpstreamBody::empty, UpstreamBody::Stream),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = policy.per_try_timeout.map_or(left, |t| t.min(left));
        let _retrying = (n > 0).then(|| Count::enter(&st.retries));
        let req = Request::from_parts(head, body);
        let res = try_once(up, set, ep.clone(), req, pq.clone(), per_try, now_ms).await;
        if !retryable(policy, &res) || n + 1 == attempts {
            return res.map_err(GatewayError::from);
        }
        tracing::debug!(upstream = %up.name, endpoint = %ep.authority, try_no = n + 1, "retrying");
        last = Some(res);
    }
    match last {
        Some(res) => res.map_err(GatewayError::from),
        None => Err(NO_ENDPOINT),
    }
}

fn retryable(p: &RetryPolicy, res: &TryResult) -> bool {
    match res {
        Ok(r) => p.on_status.contains(&r.status().as_u16()),
        Err(TryError::Connect) => p.on_connect_failure,
        Err(TryError::Reset) => p.on_reset,
        Err(TryError::Timeout) => p.retries_timeout(),
        Err(TryError::Client(_)) => false,
    }
}

/// Checks the retry budget, then backs off; false when the retry must not
/// happen (budget spent or the route's time is up).
async fn wait_for_retry(up: &UpstreamRuntime, p: &RetryPolicy, n: u32, deadline: Instant) -> bool {
    let active = up.state.active.load(Ordering::Relaxed);
    let allowed = ((p.budget * active as f64) as usize).max(MIN_RETRY_CONCURRENCY);
    if up.state.retries.load(Ordering::Relaxed) >= allowed {
        tracing::debug!(upstream = %up.name, "retry budget exhausted");
        return false;
    }
    let delay = backoff(p, n);
    let now = Instant::now();
    if now + delay >= deadline {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

/// `backoff * 2^(n-1)`, capped at `max_backoff`, then a random half of it
/// dropped ("equal jitter") so synchronized clients spread out.
pub fn backoff(p: &RetryPolicy, n: u32) -> Duration {
    let exp = p
        .backoff
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(p.max_backoff);
    let half = exp / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Returns the body to stream (when it can not be replayed) or the bytes
/// to send on every try.
async fn prepare_body(
    body: RequestBody,
    headers: &HeaderMap,
    p: &RetryPolicy,
) -> Result<(Option<RequestBody>, Option<Bytes>), GatewayError> {
    if body.is_end_stream() {
        return Ok((None, Some(Bytes::new())));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len <= p.buffer => {
            let bytes = body.collect().await.map_err(|e| match e {
                BodyError::TooLarge => GatewayError::PayloadTooLarge,
                BodyError::Timeout => GatewayError::RequestTimeout,
                BodyError::Client => GatewayError::BadRequest("the request body could not be read"),
            })?;
            Ok((None, Some(bytes.to_bytes())))
        }
        _ => Ok((Some(body), None)),
    }
}

/// Counts one unit in `counter` while alive (also when cancelled).
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    fn enter(counter: &'a AtomicUsize) -> Count<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Count(counter)
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            attempts: 5,
            on_connect_failure: true,
            on_reset: true,
            on_status: vec![503],
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            budget: 0.2,
            per_try_timeout: None,
            buffer: 1024,
            non_idempotent: false,
        };
        for _ in 0..100 {
            let b1 = backoff(&p, 1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b2 = backoff(&p, 2);
            assert!(b2 >= Duration::from_millis(100) && b2 <= Duration::from_millis(200));
            let b9 = backoff(&p, 9);
            assert!(b9 >= Duration::from_millis(150) && b9 <= Duration::from_millis(300));
        }
    }
}
