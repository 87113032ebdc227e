//! Upstreams at run time: the pooled HTTP client and the endpoint choice.
//! This state lives beside the config snapshot, keyed by upstream name, so
//! pools survive a reload for upstreams that survive it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{EndpointSpec, Protocol, UpstreamSpec};
use crate::proxy::body::RequestBody;

pub type HttpClient = Client<HttpConnector, RequestBody>;

pub struct UpstreamRuntime {
    pub name: Arc<str>,
    pub protocol: Protocol,
    pub endpoints: Vec<EndpointSpec>,
    pub client: HttpClient,
    /// Smooth weighted round-robin order, computed once.
    schedule: Vec<u32>,
    next: AtomicUsize,
}

impl std::fmt::Debug for UpstreamRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRuntime")
            .field("name", &self.name)
            .finish()
    }
}

impl UpstreamRuntime {
    pub fn new(spec: &UpstreamSpec) -> UpstreamRuntime {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(spec.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(spec.pool_idle_timeout)
            .pool_max_idle_per_host(spec.pool_max_idle_per_endpoint)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(spec.protocol == Protocol::Http2)
            .build(connector);
        UpstreamRuntime {
            name: spec.name.clone(),
            protocol: spec.protocol,
            endpoints: spec.endpoints.clone(),
            client,
            schedule: smooth_schedule(&spec.endpoints.iter().map(|e| e.weight).collect::<Vec<_>>()),
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint in smooth weighted round-robin order.
    pub fn pick(&self) -> Option<&EndpointSpec> {
        if self.schedule.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len();
        self.endpoints.get(self.schedule[n] as usize)
    }
}

/// Nginx's smooth weighted round-robin, unrolled into one cycle: weights
/// 5,1,1 give a,a,b,a,c,a,a rather than a burst of five a's.
fn smooth_schedule(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    // Keep the cycle short for huge weights; proportions survive the scaling.
    let scale = (total / 10_000).max(1);
    let w: Vec<i64> = weights
        .iter()
        .map(|&x| (i64::from(x) / scale as i64).max(1))
        .collect();
    let sum: i64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(sum as usize);
    for _ in 0..sum {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        out.push(best as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_schedule_interleaves_by_weight() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1, 1]), vec![0, 1, 2]);
        let s = smooth_schedule(&[3, 1]);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert!(smooth_schedule(&[]).is_empty());
    }
}
