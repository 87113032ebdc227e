//! One endpoint's run-time state: all atomics, shared by the request path,
//! the health checker, outlier detection and DNS discovery. An endpoint
//! that survives a DNS refresh keeps its `Arc`, hence its counters.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use std::net::SocketAddr;

use http::uri::Authority;

use super::pool::{self, Conns};

#[derive(Debug)]
pub struct Endpoint {
    /// Unique within its upstream for the upstream's lifetime.
    pub id: u64,
    pub authority: Authority,
    /// The address when the authority is an IP literal (no lookup then).
    pub addr: Option<SocketAddr>,
    pub weight: u32,
    /// Idle upstream connections to this endpoint.
    pub(crate) conns: Conns,
    in_flight: AtomicU32,
    /// Active health: false once the health check saw `unhealthy` failures.
    healthy: AtomicBool,
    /// Health check streak: > 0 successes, < 0 failures (checker only).
    pub(crate) hc_streak: AtomicI32,
    /// Consecutive failed requests (outlier detection).
    pub(crate) failures: AtomicU32,
    /// Ejected until this time on the upstream clock (ms); 0: never ejected.
    pub(crate) ejected_until_ms: AtomicU64,
    /// Ejections so far; the next ejection lasts `base * (ejections + 1)`.
    pub(crate) ejections: AtomicU32,
}

impl Endpoint {
    pub fn new(id: u64, authority: Authority, weight: u32) -> Endpoint {
        Endpoint {
            id,
            addr: pool::literal_addr(&authority),
            authority,
            weight: weight.max(1),
            conns: Conns::default(),
            in_flight: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            hc_streak: AtomicI32::new(0),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }

    /// Up by the health check and not ejected at `now_ms`.
    pub fn available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.ejected(now_ms)
    }

    pub fn ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, up: bool) {
        self.healthy.store(up, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops (also when the
    /// request's future is cancelled).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// Holds its endpoint: a try's future owns it, with no borrow to outlive.
#[must_use]
pub struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
