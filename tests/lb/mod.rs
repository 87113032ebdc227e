//! Helpers for the upstream tests (balancing, health, retries, discovery):
//! replicas that can be slowed, failed, held, killed and restarted on the
//! same port, and a DNS server on an ephemeral UDP port whose answers the
//! test changes. All on 127.0.0.1.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What a replica does; changed by the test while it runs.
pub struct Knobs {
    pub name: String,
    /// Requests other than `/health`.
    pub hits: AtomicUsize,
    pub health_hits: AtomicUsize,
    pub status: AtomicU16,
    pub health_status: AtomicU16,
    pub delay_ms: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Requests wait while this is false.
    pub gate: watch::Sender<bool>,
}

pub struct Replica {
    pub addr: SocketAddr,
    pub knobs: Arc<Knobs>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Replica {
    pub async fn start(name: &str) -> Replica {
        let knobs = Arc::new(Knobs {
            name: name.to_owned(),
            hits: AtomicUsize::new(0),
            health_hits: AtomicUsize::new(0),
            status: AtomicU16::new(200),
            health_status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            gate: watch::channel(true).0,
        });
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let (addr, task) = serve(addr, knobs.clone()).await;
        Replica {
            addr,
            knobs,
            task: Mutex::new(Some(task)),
        }
    }

    pub fn hits(&self) -> usize {
        self.knobs.hits.load(Ordering::SeqCst)
    }

    pub fn set_status(&self, s: u16) {
        self.knobs.status.store(s, Ordering::SeqCst);
    }

    pub fn set_health(&self, s: u16) {
        self.knobs.health_status.store(s, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.knobs
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn hold(&self, closed: bool) {
        self.knobs.gate.send_replace(!closed);
    }

    /// Closes the listener and every open connection at once.
    pub fn kill(&self) {
        if let Some(t) = self.task.lock().expect("lock").take() {
            t.abort();
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&self) {
        let (_, task) = serve(self.addr, self.knobs.clone()).await;
        *self.task.lock().expect("lock") = Some(task);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve(addr: SocketAddr, knobs: Arc<Knobs>) -> (SocketAddr, JoinHandle<()>) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_reuseaddr(true).expect("reuseaddr");
    sock.bind(addr).expect("bind");
    let listener = sock.listen(1024).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        // Dropping this set (when the task is aborted) aborts every
        // connection task: the replica dies with its connections.
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let knobs = knobs.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| handle(knobs.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    (addr, task)
}

async fn handle(
    k: Arc<Knobs>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/health" {
        k.health_hits.fetch_add(1, Ordering::SeqCst);
        let s = k.health_status.load(Ordering::SeqCst);
        return Ok(reply(&k.name, s, Bytes::new()));
    }
    k.hits.fetch_add(1, Ordering::SeqCst);
    let now = k.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    k.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let delay = k.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        // The replica's own latency (what the test simulates), not a wait in the test.
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut gate = k.gate.subscribe();
    let _ = gate.wait_for(|open| *open).await;
    k.in_flight.fetch_sub(1, Ordering::SeqCst);
    let s = k.status.load(Ordering::SeqCst);
    Ok(reply(
        &k.name,
        s,
        Bytes::from(format!("{}:{}", k.name, body.len())),
    ))
}

fn reply(name: &str, status: u16, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("x-upstream", name)
        .body(Full::new(body))
        .expect("response")
}

/// The name of the replica that answered (its `x-upstream` header).
pub fn who(h: &http::HeaderMap) -> String {
    h.get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// What the test DNS server answers.
#[derive(Debug, Clone)]
pub enum DnsMode {
    /// A records (127.0.0.1) for any name; SRV records for these ports,
    /// each with target `r<port>.test.` and an A glue record 127.0.0.1.
    Answer {
        a: bool,
        srv_ports: Vec<u16>,
    },
    ServFail,
    NxDomain,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    pub mode: Arc<Mutex<DnsMode>>,
    pub queries: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    pub async fn start(mode: DnsMode) -> DnsServer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = sock.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(mode));
        let queries = Arc::new(AtomicUsize::new(0));
        let (m, q) = (mode.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let current = m.lock().expect("lock").clone();
                if let Some(reply) = answer(&buf[..n], &current) {
                    let _ = sock.send_to(&reply, peer).await;
                }
                q.fetch_add(1, Ordering::SeqCst);
            }
        });
        DnsServer {
            addr,
            mode,
            queries,
            task,
        }
    }

    pub fn set(&self, mode: DnsMode) {
        *self.mode.lock().expect("lock") = mode;
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

fn name_end(q: &[u8]) -> Option<usize> {
    let mut p = 12;
    loop {
        let l = *q.get(p)? as usize;
        p += 1;
        if l == 0 {
            return Some(p);
        }
        p += l;
    }
}

fn name_bytes(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// Builds the reply to one query (no compression, TTL 1 s).
fn answer(q: &[u8], mode: &DnsMode) -> Option<Vec<u8>> {
    let qend = name_end(q)? + 4;
    let qtype = u16::from_be_bytes([*q.get(qend - 4)?, *q.get(qend - 3)?]);
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut additional: Vec<Vec<u8>> = Vec::new();
    let rcode = match mode {
        DnsMode::ServFail => 2,
        DnsMode::NxDomain => 3,
        DnsMode::Answer { a, srv_ports } => {
            let rr = |owner: &[u8], rtype: u16, rdata: &[u8]| {
                let mut r = owner.to_vec();
                r.extend_from_slice(&rtype.to_be_bytes());
                r.extend_from_slice(&[0, 1, 0, 0, 0, 1]);
                r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                r.extend_from_slice(rdata);
                r
            };
            let owner = q[12..qend - 4].to_vec();
            match qtype {
                1 if *a => answers.push(rr(&owner, 1, &[127, 0, 0, 1])),
                33 => {
                    for p in srv_ports {
                        let target = name_bytes(&format!("r{p}.test"));
                        let mut rd = vec![0, 10, 0, 1];
                        rd.extend_from_slice(&p.to_be_bytes());
                        rd.extend_from_slice(&target);
                        answers.push(rr(&owner, 33, &rd));
                        additional.push(rr(&target, 1, &[127, 0, 0, 1]));
                    }
                }
                _ => {}
            }
            0
        }
    };
    let mut out = q[..qend].to_vec();
    out[2] = 0x81;
    out[3] = 0x80 | rcode;
    out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    out[8..10].copy_from_slice(&[0, 0]);
    out[10..12].copy_from_slice(&(additional.len() as u16).to_be_bytes());
    for r in answers.iter().chain(additional.iter()) {
        out.extend_from_slice(r);
    }
    Some(out)
}

/// Sends `total` GETs to `url` from `workers` concurrent tasks; returns
/// (status, replica) for each, in completion order.
pub async fn fan_out(url: &str, total: usize, workers: usize) -> Vec<(u16, String)> {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (next, out, url) = (next.clone(), out.clone(), url.to_owned());
        tasks.spawn(async move {
            let client = crate::support::client();
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let req = Request::get(&url)
                    .body(Full::new(Bytes::new()))
                    .expect("req");
                let r = match client.request(req).await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        let w = who(resp.headers());
                        let _ = resp.into_body().collect().await;
                        (s, w)
                    }
                    Err(e) => (0, format!("client error: {e}")),
                };
                out.lock().expect("lock").push(r);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let v = out.lock().expect("lock").clone();
    v
}

pub fn count(results: &[(u16, String)], name: &str) -> usize {
    results.iter().filter(|(_, w)| w == name).count()
}
