//! The runtime layout of `gwanmun run`: one current-thread tokio runtime
//! per worker thread, each with its own copy of every listener socket
//! (`SO_REUSEPORT`). The kernel spreads new connections over the copies and
//! a connection lives on the runtime that accepted it, so a request never
//! crosses threads and waking a task is a local queue push, not a
//! cross-thread notification. The snapshot and upstream state are shared.
//!
//! Everything that can fail (binding, building the runtimes) happens before
//! anything is served. On shutdown every shard stops accepting and drains
//! its own connections within the drain timeout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use super::{Gateway, Server};
use crate::config::ListenerSpec;

/// Pending connections each listener copy queues (tokio's default).
const BACKLOG: u32 = 1024;

/// One copy of every listener, for one runtime.
pub struct Shard {
    gateway: Arc<Gateway>,
    listeners: Vec<(ListenerSpec, std::net::TcpListener)>,
}

/// Binds `n` copies of every listener of the active snapshot; with `n > 1`
/// they share their address through `SO_REUSEPORT`. A port of 0 is chosen
/// once, by the first copy.
pub async fn bind(gateway: Arc<Gateway>, n: usize) -> io::Result<Vec<Shard>> {
    let n = n.max(1);
    let specs = gateway.active().snapshot.listeners.clone();
    let mut shards: Vec<Shard> = (0..n)
        .map(|_| Shard {
            gateway: gateway.clone(),
            listeners: Vec::new(),
        })
        .collect();
    for spec in specs {
        let mut addr = spec.bind;
        for shard in shards.iter_mut() {
            let l = bind_one(addr, n > 1).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("listener `{}` on {}: {e}", spec.name, spec.bind),
                )
            })?;
            addr = l.local_addr()?;
            shard.listeners.push((spec.clone(), l.into_std()?));
        }
    }
    Ok(shards)
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As tokio's TcpListener::bind: a restarted gateway can bind at once.
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl Shard {
    /// Registers the sockets with the runtime this is called in.
    fn into_server(self) -> io::Result<Server> {
        let listeners = self
            .listeners
            .into_iter()
            .map(|(spec, l)| Ok((spec, TcpListener::from_std(l)?)))
            .collect::<io::Result<_>>()?;
        Ok(Server {
            gateway: self.gateway,
            listeners,
        })
    }
}

/// A current-thread runtime with IO, timers and signals.
pub fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Serves `shards[0]` on the runtime this is awaited in (the caller's, which
/// also runs the background tasks) and every other shard on a thread of
/// its own, until `shutdown` resolves; then all drain. Returns `true` when
/// every shard drained in time.
pub async fn serve(
    shards: Vec<Shard>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shards = shards.into_iter();
    let Some(first) = shards.next() else {
        return Ok(true);
    };
    let first = first.into_server()?;
    // Build every runtime and register every socket before serving.
    let mut ready = Vec::new();
    for shard in shards {
        let rt = runtime()?;
        let server = {
            let _enter = rt.enter();
            shard.into_server()?
        };
        ready.push((rt, server));
    }
    // Upstream connections are pooled across shards, and a pooled
    // connection is driven by a task on the runtime that opened it. So no
    // runtime may stop (and drop its tasks) until every shard has drained:
    // each shard reports, then keeps its runtime running until released.
    let (release_tx, release_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for (i, (rt, server)) in ready.into_iter().enumerate() {
        let mut stop = stop_rx.clone();
        let mut release = release_rx.clone();
        let done = done_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("gwanmun-{}", i + 1))
            .spawn(move || {
                crate::upstream::pool::enter_worker(i + 1);
                rt.block_on(async move {
                    let drained = server
                        .run(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await;
                    let _ = done.send(drained);
                    let _ = release.wait_for(|r| *r).await;
                });
            })?;
        threads.push(t);
    }
    drop(done_tx);
    let mut drained = first
        .run(async {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    // Each shard bounds its own drain by the drain timeout.
    for _ in 0..threads.len() {
        drained &= done_rx.recv().await.unwrap_or(false);
    }
    let _ = release_tx.send(true);
    for t in threads {
        let joined = tokio::task::spawn_blocking(move || t.join()).await;
        drained &= matches!(joined, Ok(Ok(())));
    }
    Ok(drained)
}
