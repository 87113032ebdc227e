//! Listeners and connections: accept with a per-listener connection cap,
//! serve HTTP/1.1 and HTTP/2 (h2c prior knowledge) on the same port, enforce
//! header-read and idle timeouts, and drain gracefully on shutdown.
//! [`shards`]: one current-thread runtime per worker thread for `run`.

pub mod http1;
pub mod io;
pub mod recycled;
pub mod shards;
pub mod streams;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{ListenerSpec, Snapshot};
use crate::pipeline::{self, Active, ConnInfo};
use crate::proxy::body::{ClientBody, ProxyBody};
use io::PermitStream;

/// The running gateway's shared state: the active snapshot (swapped whole).
#[derive(Debug)]
pub struct Gateway {
    active: ArcSwap<Active>,
}

impl Gateway {
    pub fn new(snapshot: Snapshot) -> Arc<Gateway> {
        Arc::new(Gateway {
            active: ArcSwap::from_pointee(Active::new(snapshot)),
        })
    }

    pub fn active(&self) -> Arc<Active> {
        self.active.load_full()
    }
}

/// Listeners bound and ready; `run` serves them until `shutdown` fires.
pub struct Server {
    gateway: Arc<Gateway>,
    listeners: Vec<(ListenerSpec, TcpListener)>,
}

impl Server {
    /// Binds every listener of the active snapshot. A bind failure is an
    /// error before anything is served.
    pub async fn bind(gateway: Arc<Gateway>) -> std::io::Result<Server> {
        let specs = gateway.active().snapshot.listeners.clone();
        let mut listeners = Vec::new();
        for spec in specs {
            let l = TcpListener::bind(spec.bind).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("listener `{}` on {}: {e}", spec.name, spec.bind),
                )
            })?;
            listeners.push((spec, l));
        }
        Ok(Server { gateway, listeners })
    }

    /// The bound addresses, in listener order (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives
    /// in-flight requests up to the drain timeout. Returns `true` when every
    /// connection finished in time.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> bool {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut acceptors = JoinSet::new();
        for (spec, listener) in self.listeners {
            let gw = self.gateway.clone();
            let stop = stop_rx.clone();
            acceptors.spawn(accept_loop(gw, spec, listener, stop));
        }
        shutdown.await;
        tracing::info!("shutdown requested: no longer accepting, draining in-flight requests");
        let _ = stop_tx.send(true);
        let drain = self.gateway.active().snapshot.limits.drain_timeout;
        // Each accept loop owns its connections and drains them.
        let all = async { while acceptors.join_next().await.is_some() {} };
        match tokio::time::timeout(drain, all).await {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(
                    ?drain,
                    "drain timeout reached with requests still in flight"
                );
                false
            }
        }
    }
}

async fn accept_loop(
    gw: Arc<Gateway>,
    spec: ListenerSpec,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(spec.max_connections));
    let mut conns = JoinSet::new();
    tracing::info!(listener = %spec.name, addr = %spec.bind, "listening");
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let gw = gw.clone();
        let info = ConnInfo {
            peer,
            peer_ip: crate::proxy::forwarded::Peer::new(peer.ip()),
            listener: spec.name.clone(),
            scheme: "http",
        };
        let stop = stop.clone();
        let http2 = spec.http2;
        let _ = stream.set_nodelay(true);
        // The permit travels with the socket, so a connection upgraded to
        // a WebSocket tunnel still counts until the socket closes.
        let stream = PermitStream {
            inner: stream,
            permit,
        };
        conns.spawn(serve_connection(gw, info, stream, http2, stop));
        // Reap finished connection tasks so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Per-connection activity, for the idle timeout.
struct ConnActivity {
    in_flight: AtomicU32,
    /// One plus the milliseconds since `epoch` at the last request start or
    /// end; 0 until the first request starts.
    last: AtomicU64,
    epoch: Instant,
}

impl ConnActivity {
    fn touch(&self) {
        self.last.store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
    }

    /// Counts a request as in flight until the returned guard is dropped:
    /// when it ends, and also when its future is dropped unfinished (the
    /// client reset the stream, or the connection ended).
    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }
}

/// One request counted in its connection's `in_flight` (see
/// [`ConnActivity::start`]).
struct InFlight(Arc<ConnActivity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An HTTP/2 response body that keeps its stream counted as in flight
/// until hyper has sent all of it (or dropped it): a connection streaming a
/// response is not idle.
struct Tracked {
    body: ProxyBody,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = <ProxyBody as http_body::Body>::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The HTTP/2 connection preface (RFC 9113 section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

async fn serve_connection(
    gw: Arc<Gateway>,
    info: ConnInfo,
    mut stream: PermitStream,
    http2: bool,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    // Only plain values are kept in the connection's task.
    let limits = {
        let active = gw.active();
        let l = &active.snapshot.limits;
        http1::Limits {
            idle: l.idle_timeout,
            header_read: l.header_read_timeout,
            max_header_bytes: l.max_header_bytes,
        }
    };
    let mut buf = BytesMut::new();
    if http2 {
        // Read until the bytes so far can only be one protocol.
        let until = started + limits.header_read.min(limits.idle);
        loop {
            let n = buf.len().min(PREFACE.len());
            if buf[..n] != PREFACE[..n] {
                break;
            }
            if n == PREFACE.len() {
                let io = io::Rewind::client(buf.freeze(), stream);
                // Boxed: HTTP/1 connections do not carry its size.
                return Box::pin(serve_http2(gw, info, io, limits, stop)).await;
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(crate::proxy::h1::buffers::READ_CAPACITY);
            }
            tokio::select! {
                r = stream.inner.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                _ = tokio::time::sleep_until(until) => return,
                _ = stop.changed() => return,
            }
        }
    }
    http1::serve(gw, info, stream, buf, limits, started, stop).await;
}

/// HTTP/2 (prior knowledge) on hyper's server.
async fn serve_http2(
    gw: Arc<Gateway>,
    info: ConnInfo,
    io: io::Rewind<tokio::net::TcpStream>,
    limits: http1::Limits,
    mut stop: watch::Receiver<bool>,
) {
    let idle = limits.idle;
    let first = limits.header_read.min(limits.idle);
    let activity = Arc::new(ConnActivity {
        in_flight: AtomicU32::new(0),
        last: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let info = Arc::new(info);
    let act = activity.clone();
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let gw = gw.clone();
        let info = info.clone();
        let act = act.clone();
        // Not boxed: the stream's future (this one inside) is boxed once
        // when it is handed to the connection (streams.rs).
        async move {
            let in_flight = act.start();
            let active = gw.active();
            let req = req.map(ClientBody::H2);
            let mut resp = pipeline::handle(&active, &info, req).await;
            // hyper writes the map: the upstream's kept lines go into it.
            crate::proxy::body::headers_into_map(&mut resp);
            let resp = resp.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            });
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let mut streams = streams::Streams::default();
    let mut builder = hyper::server::conn::http2::Builder::new(streams.inbox());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    // One timer and one wait for the drain signal for the connection's
    // life (as on HTTP/1.1): the timer fires no later than the idle
    // deadline and is moved on when it finds the connection busy or used
    // since, so it neither registers per wake-up nor fires in a loop while
    // a request outlasts the idle timeout.
    let mut timer = std::pin::pin!(tokio::time::sleep_until(idle_deadline(
        &activity, idle, first
    )));
    let mut stopped = std::pin::pin!(async move {
        let _ = stop.changed().await;
    });
    loop {
        tokio::select! {
            biased;
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with error");
                }
                return;
            }
            // Never ready: polls the streams after the connection, which
            // queues the new ones (the stream futures live in this task).
            () = std::future::poll_fn(|cx| streams.poll(cx)) => {}
            () = stopped.as_mut(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = timer.as_mut(), if !draining => {
                let now = Instant::now();
                let deadline = idle_deadline(&activity, idle, first);
                if activity.in_flight.load(Ordering::Relaxed) > 0 {
                    // Busy: idle can start no sooner than a full timeout
                    // after the last request ends; look again then.
                    timer.as_mut().reset(now + idle);
                } else if deadline > now {
                    timer.as_mut().reset(deadline);
                } else {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Until the first request starts, the client has the header read deadline
/// (hyper's own header timer does not cover a silent connection, nor the
/// bytes read while the HTTP version is detected); after that, the idle
/// timeout counts from the last request start or end.
fn idle_deadline(a: &ConnActivity, idle: Duration, first: Duration) -> Instant {
    match a.last.load(Ordering::Relaxed) {
        0 => a.epoch + first,
        last => a.epoch + Duration::from_millis(last - 1) + idle,
    }
}
