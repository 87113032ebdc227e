//! Upstream connections: opened per endpoint, kept idle per worker thread,
//! and handed back to the pool when a response body has been read to its
//! end.
//!
//! Each endpoint owns its idle connections (so an endpoint that leaves the
//! set by DNS discovery takes its connections with it). They are kept in
//! one slot per worker runtime: a connection is driven by a task on the
//! runtime that opened it, and only requests on that runtime reuse it, so a
//! request never waits on another thread's event loop. A checkout is a
//! pop from a short vector behind an uncontended mutex: no hashing, no
//! channel, no task per request.
//!
//! HTTP/1: one request at a time per connection, newest idle connection
//! first (it is the warmest), expired ones dropped on the way. A request a
//! pooled connection refused before writing anything (it was closing) goes
//! to the next one. HTTP/2: one shared connection per endpoint and slot.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::header::{HeaderValue, HOST};
use http::uri::Scheme;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::UpstreamBody;
use super::endpoint::Endpoint;
use super::h1::{self, RawConn};
use super::State;
use crate::config::{Protocol, UpstreamSpec};
use crate::proxy::body::BoxError;
use crate::proxy::h1::buffers;
use crate::proxy::h1::raw::RawHeaders;

/// Worker runtimes in this process (`run --threads N`); each endpoint keeps
/// one idle stack per worker. 1 unless [`set_workers`] said otherwise
/// (in-process gateways on one runtime, tests).
static WORKERS: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's slot: 0 unless it runs a worker runtime of its own.
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// How many worker runtimes serve requests; call before the first request.
pub fn set_workers(n: usize) {
    WORKERS.store(n.max(1), Ordering::Relaxed);
}

/// Marks the current thread as worker `i` (called once per worker thread).
pub fn enter_worker(i: usize) {
    SLOT.with(|s| s.set(i));
}

fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// How an upstream's connections are opened and kept.
#[derive(Debug, Clone)]
pub struct Settings {
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle HTTP/1 connections kept per endpoint and worker thread.
    pub max_idle: usize,
}

impl Settings {
    pub fn new(spec: &UpstreamSpec) -> Settings {
        Settings {
            protocol: spec.protocol,
            connect_timeout: spec.connect_timeout,
            idle_timeout: spec.pool_idle_timeout,
            max_idle: spec.pool_max_idle_per_endpoint,
        }
    }
}

/// An endpoint's idle connections: one slot per worker, allocated on first
/// use (so the worker count is known).
#[derive(Default)]
pub struct Conns {
    slots: OnceLock<Box<[Mutex<Slot>]>>,
}

#[derive(Default)]
struct Slot {
    /// Oldest first; checkout pops the newest.
    h1: Vec<Idle>,
    /// Connections of the inline client (bodiless requests), oldest first.
    raw: Vec<IdleRaw>,
    h2: Option<http2::SendRequest<UpstreamBody>>,
}

struct IdleRaw {
    conn: RawConn,
    since: Instant,
}

struct Idle {
    tx: http1::SendRequest<UpstreamBody>,
    since: Instant,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conns")
    }
}

impl Conns {
    fn slots(&self) -> &[Mutex<Slot>] {
        self.slots.get_or_init(|| {
            (0..WORKERS.load(Ordering::Relaxed))
                .map(|_| Mutex::default())
                .collect()
        })
    }

    fn lock(&self, slot: usize) -> std::sync::MutexGuard<'_, Slot> {
        let slots = self.slots();
        // A panic while holding the lock leaves a plain vector behind.
        slots[slot % slots.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The newest idle HTTP/1 connection that can take a request now.
    /// Expired and closed ones are dropped; busy ones (still finishing a
    /// request body) are left for later.
    fn take_h1(
        &self,
        slot: usize,
        idle_timeout: Duration,
    ) -> Option<(http1::SendRequest<UpstreamBody>, Duration)> {
        let mut s = self.lock(slot);
        let now = Instant::now();
        s.drop_expired(now, idle_timeout);
        let mut i = s.h1.len();
        while i > 0 {
            i -= 1;
            if s.h1[i].tx.is_closed() {
                s.h1.remove(i);
            } else if s.h1[i].tx.is_ready() {
                let idle = s.h1.remove(i);
                return Some((idle.tx, now.duration_since(idle.since)));
            }
        }
        None
    }

    fn put_h1(&self, slot: usize, tx: http1::SendRequest<UpstreamBody>, max_idle: usize) {
        if tx.is_closed() {
            return;
        }
        let mut s = self.lock(slot);
        if s.h1.len() < max_idle {
            s.h1.push(Idle {
                tx,
                since: Instant::now(),
            });
        }
    }

    /// The newest idle inline connection that nothing arrived on since.
    fn take_raw(&self, slot: usize, idle_timeout: Duration) -> Option<(RawConn, Duration)> {
        let mut s = self.lock(slot);
        let now = Instant::now();
        s.drop_expired(now, idle_timeout);
        while let Some(idle) = s.raw.pop() {
            if idle.conn.is_usable() {
                return Some((idle.conn, now.duration_since(idle.since)));
            }
        }
        None
    }

    pub(super) fn put_raw(&self, slot: usize, mut conn: RawConn, max_idle: usize) {
        conn.park();
        let mut s = self.lock(slot);
        if s.raw.len() < max_idle {
            s.raw.push(IdleRaw {
                conn,
                since: Instant::now(),
            });
        }
    }

    fn h2(&self, slot: usize) -> Option<http2::SendRequest<UpstreamBody>> {
        let mut s = self.lock(slot);
        match &s.h2 {
            Some(tx) if !tx.is_closed() => Some(tx.clone()),
            Some(_) => {
                s.h2 = None;
                None
            }
            None => None,
        }
    }

    /// Drops idle connections older than `idle_timeout` in every slot.
    pub fn expire(&self, idle_timeout: Duration) {
        let now = Instant::now();
        for slot in 0..self.slots().len() {
            let mut s = self.lock(slot);
            s.drop_expired(now, idle_timeout);
            s.h1.retain(|i| !i.tx.is_closed());
            s.raw.retain(|i| i.conn.is_usable());
            if s.h2.as_ref().is_some_and(http2::SendRequest::is_closed) {
                s.h2 = None;
            }
        }
    }
}

impl Slot {
    /// Entries are in return order, so everything before the first fresh
    /// one has expired; when the oldest is fresh (the busy case) that is
    /// one comparison.
    fn drop_expired(&mut self, now: Instant, idle_timeout: Duration) {
        let stale = |since: Instant| now.duration_since(since) >= idle_timeout;
        if self.h1.first().is_some_and(|i| stale(i.since)) {
            let fresh = self.h1.partition_point(|i| stale(i.since));
            self.h1.drain(..fresh);
        }
        if self.raw.first().is_some_and(|i| stale(i.since)) {
            let fresh = self.raw.partition_point(|i| stale(i.since));
            self.raw.drain(..fresh);
        }
    }
}

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: nothing was sent.
    Connect(io::Error),
    /// The connection failed while sending or receiving.
    Http(hyper::Error),
    /// The same, on the inline client.
    Io(io::Error),
    /// No response head by the try's deadline.
    Timeout,
}

impl From<h1::ExchangeError> for SendError {
    fn from(e: h1::ExchangeError) -> SendError {
        match e {
            h1::ExchangeError::TimedOut => SendError::Timeout,
            e => SendError::Io(e.into_io()),
        }
    }
}

/// Sends `req` (origin-form URI) to `ep`, on a pooled connection when one
/// is idle, else on a new one; the response head must come by `until`.
///
/// A plain function: the request is looked at and, in the common HTTP/1
/// case, encoded before anything is awaited, so the future returned holds
/// the encoded bytes and not the request (every async level that takes a
/// request by value keeps a copy of it in its state for its whole life, and
/// each level's state is copied into its caller's when it starts).
pub fn send<'a>(
    cfg: &'a Settings,
    ep: Arc<Endpoint>,
    mut req: Request<UpstreamBody>,
    until: Instant,
) -> impl Future<Output = Result<Response<ResponseBody>, SendError>> + 'a {
    let way = if cfg.protocol == Protocol::Http2 {
        Way::Boxed(Box::pin(async move {
            tokio::time::timeout_at(until, send_h2(cfg, &ep, req))
                .await
                .unwrap_or(Err(SendError::Timeout))
        }))
    } else {
        *req.version_mut() = Version::HTTP_11;
        if !req.headers().contains_key(HOST) {
            if let Ok(h) = HeaderValue::from_str(ep.authority.as_str()) {
                req.headers_mut().insert(HOST, h);
            }
        }
        let slot = slot();
        if h1::suits(&req) {
            Way::Inline(Encoded::of(req), ep, slot)
        } else {
            Way::Boxed(Box::pin(async move {
                tokio::time::timeout_at(until, send_hyper(cfg, &ep, req, slot))
                    .await
                    .unwrap_or(Err(SendError::Timeout))
            }))
        }
    };
    // No async wrapper around these (it would hold a second copy).
    match way {
        // The deadline runs on the pooled connection's own timer.
        Way::Inline(req, ep, slot) => Either::Left(send_inline(cfg, ep, req, slot, until)),
        Way::Boxed(fut) => Either::Right(fut),
    }
}

type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, SendError>> + Send + 'a>>;

/// How [`send`] goes on once the request has been looked at.
enum Way<'a> {
    /// A bodiless HTTP/1 request, encoded: the inline client.
    Inline(Encoded, Arc<Endpoint>, usize),
    /// HTTP/2, or a body or an upgrade on hyper's HTTP/1 client: boxed, so
    /// the common request's future does not carry their state.
    Boxed(SendFuture<'a>),
}

/// A bodiless request written out for the inline client.
struct Encoded {
    out: Vec<u8>,
    head_request: bool,
    idempotent: bool,
}

impl Encoded {
    fn of(req: Request<UpstreamBody>) -> Encoded {
        let mut out = Vec::new();
        buffers::ready_to_write(&mut out);
        h1::encode_request(&mut out, &req);
        let e = Encoded {
            out,
            head_request: req.method() == http::Method::HEAD,
            idempotent: req.method().is_idempotent(),
        };
        buffers::recycle_map(req.into_parts().0.headers);
        e
    }
}

/// A request with a body (or an upgrade) on hyper's HTTP/1 client.
async fn send_hyper(
    cfg: &Settings,
    ep: &Arc<Endpoint>,
    mut req: Request<UpstreamBody>,
    slot: usize,
) -> Result<Response<ResponseBody>, SendError> {
    // Bounded: every turn takes one connection out of the pool.
    while let Some((mut tx, idle_for)) = ep.conns.take_h1(slot, cfg.idle_timeout) {
        // A connection idle this long may be closed by the upstream just as
        // the request goes out (its keep-alive timeout ran out): keep a copy
        // of a request that is safe to send twice.
        let replay = (idle_for >= STALE_AFTER)
            .then(|| replayable(&req))
            .flatten();
        match tx.try_send_request(req).await {
            Ok(resp) => {
                return Ok(ResponseBody::wrap(
                    resp,
                    Some((ep.clone(), tx, slot, cfg.max_idle)),
                ))
            }
            Err(mut e) => match e.take_message() {
                // Refused before anything was written: the connection was
                // closing. The request goes to the next one, untouched.
                Some(r) => req = r,
                None => {
                    let err = e.into_error();
                    match replay {
                        // Closed under the request with no answer: once
                        // more, on a new connection.
                        Some(copy) if closed_unanswered(&err) => {
                            tracing::debug!(endpoint = %ep.authority, error = %err, "stale pooled connection; sending again on a new one");
                            req = copy;
                            break;
                        }
                        _ => return Err(SendError::Http(err)),
                    }
                }
            },
        }
    }
    // Opening a connection is the exception under load: boxed, so the
    // common request's future does not carry its state.
    let mut tx = Box::pin(open_h1(cfg, ep)).await?;
    let resp = tx.send_request(req).await.map_err(SendError::Http)?;
    Ok(ResponseBody::wrap(
        resp,
        Some((ep.clone(), tx, slot, cfg.max_idle)),
    ))
}

/// A bodiless request on the inline client: written from the request's
/// task, the response head read by it too.
async fn send_inline(
    cfg: &Settings,
    ep: Arc<Endpoint>,
    req: Encoded,
    slot: usize,
    until: Instant,
) -> Result<Response<ResponseBody>, SendError> {
    let Encoded {
        mut out,
        head_request,
        idempotent,
    } = req;
    let home = || (ep.clone(), slot, cfg.max_idle);
    let result = async {
        // Connections that saw anything while idle were dropped by take_raw.
        if let Some((mut conn, idle_for)) = ep.conns.take_raw(slot, cfg.idle_timeout) {
            match h1::exchange(&mut conn, &out, head_request, until).await {
                Ok(head) => return Ok(ResponseBody::raw(conn, head, home())),
                // Closed under the request with no answer (its keep-alive
                // timeout ran out as the request went): once more, on a new
                // connection, when sending it twice is safe.
                Err(h1::ExchangeError::Unanswered(e)) if idempotent && idle_for >= STALE_AFTER => {
                    tracing::debug!(endpoint = %ep.authority, error = %e, "stale pooled connection; sending again on a new one");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let stream = tokio::time::timeout_at(until, Box::pin(connect(cfg, &ep)))
            .await
            .map_err(|_| SendError::Timeout)??;
        let mut conn = RawConn::new(stream);
        let head = h1::exchange(&mut conn, &out, head_request, until).await?;
        Ok(ResponseBody::raw(conn, head, home()))
    }
    .await;
    buffers::release_write(&mut out);
    result
}

/// Pooled connections idle at least this long get a replay copy of a safe
/// request (upstream keep-alive timeouts are seconds; under load a
/// connection is reused within milliseconds and no copy is made).
const STALE_AFTER: Duration = Duration::from_secs(1);

/// A copy of `req` when sending it twice is safe: an idempotent method
/// (RFC 9110 9.2.2) and a body held in memory (none, or buffered).
fn replayable(req: &Request<UpstreamBody>) -> Option<Request<UpstreamBody>> {
    let UpstreamBody::Full(body) = req.body() else {
        return None;
    };
    if !req.method().is_idempotent() {
        return None;
    }
    let mut copy = Request::new(UpstreamBody::Full(body.clone()));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// The upstream closed or reset the connection before any response.
fn closed_unanswered(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            );
        }
        cur = err.source();
    }
    false
}

async fn open_h1(
    cfg: &Settings,
    ep: &Endpoint,
) -> Result<http1::SendRequest<UpstreamBody>, SendError> {
    let io = TokioIo::new(connect(cfg, ep).await?);
    let (tx, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(SendError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection closed with error");
        }
    });
    Ok(tx)
}

async fn send_h2(
    cfg: &Settings,
    ep: &Arc<Endpoint>,
    mut req: Request<UpstreamBody>,
) -> Result<Response<ResponseBody>, SendError> {
    *req.version_mut() = Version::HTTP_2;
    let mut uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(ep.authority.clone());
    if let Some(pq) = req.uri().path_and_query() {
        uri = uri.path_and_query(pq.clone());
    }
    if let Ok(uri) = uri.build() {
        *req.uri_mut() = uri;
    }
    let slot = slot();
    let mut tx = match ep.conns.h2(slot) {
        Some(tx) => tx,
        None => {
            let io = TokioIo::new(connect(cfg, ep).await?);
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(SendError::Http)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream h2 connection closed with error");
                }
            });
            ep.conns.lock(slot).h2 = Some(tx.clone());
            tx
        }
    };
    let resp = tx.send_request(req).await.map_err(SendError::Http)?;
    Ok(ResponseBody::wrap(resp, None))
}

async fn connect(cfg: &Settings, ep: &Endpoint) -> Result<TcpStream, SendError> {
    let attempt = async {
        let stream = match ep.addr {
            Some(addr) => TcpStream::connect(addr).await?,
            None => connect_by_name(ep).await?,
        };
        stream.set_nodelay(true)?;
        Ok::<_, io::Error>(stream)
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(SendError::Connect(e)),
        Err(_) => Err(SendError::Connect(io::Error::new(
            io::ErrorKind::TimedOut,
            "connect timed out",
        ))),
    }
}

/// An endpoint given by host name: every address it resolves to, in turn.
async fn connect_by_name(ep: &Endpoint) -> io::Result<TcpStream> {
    let host = ep.authority.host();
    let port = ep.authority.port_u16().unwrap_or(80);
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in tokio::net::lookup_host((host, port)).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The address of an authority that is an IP literal with a port.
pub fn literal_addr(authority: &http::uri::Authority) -> Option<SocketAddr> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, authority.port_u16().unwrap_or(80)))
}

/// Starts the task that closes idle connections past their idle timeout
/// (checkouts drop expired ones too; this covers an upstream gone quiet).
pub fn spawn_reaper(state: &Arc<State>, idle_timeout: Duration) {
    let state: Weak<State> = Arc::downgrade(state);
    let every = (idle_timeout / 2).max(Duration::from_millis(500));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(st) = state.upgrade() else { return };
            for e in st.endpoints.load().endpoints.iter() {
                e.conns.expire(idle_timeout);
            }
        }
    });
}

type Return = (
    Arc<Endpoint>,
    http1::SendRequest<UpstreamBody>,
    usize,
    usize,
);

/// An upstream response body that gives its HTTP/1 connection back to the
/// pool once read to the end. Dropped earlier (the client went away), the
/// connection is dropped with it and closes: it is mid-response.
pub struct ResponseBody {
    inner: Inner,
    back: Option<Return>,
}

enum Inner {
    Hyper(Incoming),
    /// Boxed: a response is moved through several async layers on its way
    /// out, and this variant would make every move twice as large.
    Raw(Box<Raw>),
}

/// The inline client's body, and its header lines until they are written
/// out or moved into the response's map (see `proxy::h1::raw`).
struct Raw {
    body: h1::RawBody,
    headers: Option<RawHeaders>,
}

impl ResponseBody {
    fn wrap(resp: Response<Incoming>, back: Option<Return>) -> Response<ResponseBody> {
        // A switched protocol owns the connection from here on.
        let back = back.filter(|_| resp.status() != StatusCode::SWITCHING_PROTOCOLS);
        let mut resp = resp.map(|inner| ResponseBody {
            inner: Inner::Hyper(inner),
            back,
        });
        if resp.body().is_end_stream() {
            resp.body_mut().release();
        }
        resp
    }

    fn raw(conn: RawConn, head: h1::Head, home: h1::Home) -> Response<ResponseBody> {
        let body = ResponseBody {
            inner: Inner::Raw(Box::new(Raw {
                body: h1::RawBody::new(conn, head.decoder, head.reusable, home),
                headers: Some(head.raw),
            })),
            back: None,
        };
        Response::from_parts(head.parts, body)
    }

    /// The upstream's header lines when they are not in the response's map.
    pub fn raw_headers(&self) -> Option<&RawHeaders> {
        match &self.inner {
            Inner::Raw(r) => r.headers.as_ref(),
            Inner::Hyper(_) => None,
        }
    }

    pub fn raw_headers_mut(&mut self) -> Option<&mut RawHeaders> {
        match &mut self.inner {
            Inner::Raw(r) => r.headers.as_mut(),
            Inner::Hyper(_) => None,
        }
    }

    /// Moves the upstream's header lines into `map` (after the headers the
    /// gateway set there, which win): for header rules and HTTP/2 clients.
    pub fn move_headers_into(&mut self, map: &mut http::HeaderMap) {
        if let Some(raw) = match &mut self.inner {
            Inner::Raw(r) => r.headers.take(),
            Inner::Hyper(_) => None,
        } {
            raw.move_into(map);
        }
    }

    fn release(&mut self) {
        if let Some((ep, tx, slot, max_idle)) = self.back.take() {
            ep.conns.put_h1(slot, tx, max_idle);
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner: &dyn std::fmt::Debug = match &self.inner {
            Inner::Hyper(i) => i,
            Inner::Raw(r) => &r.body,
        };
        f.debug_struct("ResponseBody")
            .field("inner", inner)
            .field("pooled", &self.back.is_some())
            .finish()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let inner = match &mut this.inner {
            Inner::Raw(r) => return r.body.poll_frame(cx).map_err(Into::into),
            Inner::Hyper(inner) => inner,
        };
        let res = Pin::new(&mut *inner).poll_frame(cx);
        match &res {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        res.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Hyper(i) => i.is_end_stream(),
            Inner::Raw(r) => r.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Hyper(i) => i.size_hint(),
            Inner::Raw(r) => r.body.size_hint(),
        }
    }
}
