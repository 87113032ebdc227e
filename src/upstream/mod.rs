//! Upstreams at run time: the pooled HTTP client, the current endpoint set
//! (swapped whole by DNS discovery), endpoint health and ejections, the
//! circuit breaker and the retry budget. This state lives beside the
//! config snapshot, keyed by upstream name, never inside it.
//!
//! Files: [`balance`] (strategies), [`endpoint`] (per-endpoint atomics),
//! [`health`] (active checks), [`outlier`] (passive ejection),
//! [`breaker`] (limits), [`discovery`] + [`dns`] (DNS endpoints),
//! [`retry`] (the per-request try loop), [`spec`] (compiled config).

pub mod balance;
pub mod body;
pub mod breaker;
pub mod discovery;
pub mod dns;
pub mod endpoint;
pub mod h1;
pub mod health;
pub mod outlier;
pub mod pool;
pub mod retry;
pub mod spec;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::config::{Protocol, UpstreamSpec};
use balance::EndpointSet;
use breaker::Breaker;
use endpoint::Endpoint;
use spec::{Balance, Outlier};

pub struct UpstreamRuntime {
    pub name: Arc<str>,
    pub protocol: Protocol,
    /// How connections to the endpoints are opened and pooled.
    pub pool: pool::Settings,
    pub balance: Balance,
    pub outlier: Option<Outlier>,
    pub breaker: Option<Breaker>,
    pub state: Arc<State>,
}

/// What the background tasks (health checks, discovery) share with the
/// request path. They hold it weakly and stop once the upstream is gone.
#[derive(Debug)]
pub struct State {
    pub endpoints: ArcSwap<EndpointSet>,
    /// Round-robin position.
    pub cursor: AtomicUsize,
    /// Requests in flight to this upstream (the retry budget's base).
    pub active: AtomicUsize,
    /// Retries in flight.
    pub retries: AtomicUsize,
    next_id: AtomicU64,
    epoch: Instant,
}

impl State {
    fn new() -> State {
        State {
            endpoints: ArcSwap::from_pointee(EndpointSet::default()),
            cursor: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds on this upstream's clock (tokio's, so tests can pause it).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn new_endpoint(&self, authority: http::uri::Authority, weight: u32) -> Arc<Endpoint> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Endpoint::new(id, authority, weight))
    }
}

impl std::fmt::Debug for UpstreamRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRuntime")
            .field("name", &self.name)
            .field("balance", &self.balance)
            .finish()
    }
}

impl UpstreamRuntime {
    /// Builds the runtime and, inside a tokio runtime, starts its health
    /// checker and DNS discovery tasks (outside one, e.g. `check`, none).
    pub fn new(spec: &UpstreamSpec) -> UpstreamRuntime {
        let state = Arc::new(State::new());
        let endpoints = spec
            .endpoints
            .iter()
            .map(|e| state.new_endpoint(e.authority.clone(), e.weight))
            .collect();
        state
            .endpoints
            .store(Arc::new(EndpointSet::new(endpoints, &spec.balance)));
        let rt = UpstreamRuntime {
            name: spec.name.clone(),
            protocol: spec.protocol,
            pool: pool::Settings::new(spec),
            balance: spec.balance.clone(),
            outlier: spec.outlier.clone(),
            breaker: spec.limits.map(Breaker::new),
            state,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            pool::spawn_reaper(&rt.state, spec.pool_idle_timeout);
            if let Some(hc) = &spec.health_check {
                health::spawn(&rt, hc.clone());
            }
            if let Some(d) = &spec.discovery {
                discovery::spawn(&rt, d.clone());
            }
        }
        rt
    }

    /// The current endpoints (a cheap atomic load).
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.state.endpoints.load_full()
    }
}
