//! An upstream that holds every response until the test releases it, and
//! counts the requests that arrived (requests to `/fast` are answered at once
//! and not counted).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An upstream that holds every response until released; counts arrivals.
pub struct Gated {
    pub addr: SocketAddr,
    pub arrived: Arc<AtomicUsize>,
    pub release: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn gated_upstream() -> Gated {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let arrived = Arc::new(AtomicUsize::new(0));
    let (release, rx) = watch::channel(false);
    let arrived2 = arrived.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let arrived = arrived2.clone();
            let rx = rx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let arrived = arrived.clone();
                    let mut rx = rx.clone();
                    async move {
                        let fast = req.uri().path() == "/fast";
                        let _ = req.into_body().collect().await;
                        if !fast {
                            arrived.fetch_add(1, Ordering::SeqCst);
                            let _ = rx.wait_for(|open| *open).await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("released"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Gated {
        addr,
        arrived,
        release,
        task,
    }
}

impl Gated {
    /// Waits (bounded, 10 s) until `n` held requests have arrived.
    pub async fn wait_arrived(&self, n: usize) -> bool {
        super::wait_until(
            || self.arrived.load(Ordering::SeqCst) == n,
            std::time::Duration::from_secs(10),
        )
        .await
    }
}
