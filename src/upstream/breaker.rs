//! The circuit breaker's limits: at most `max_requests` requests in flight
//! to an upstream; up to `max_pending` more wait for a slot (no longer than
//! the route's timeout); anything beyond is answered 503 at once. The fast
//! path is one atomic compare-and-swap in the semaphore.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::spec::UpstreamLimits;
use crate::errors::GatewayError;

#[derive(Debug)]
pub struct Breaker {
    slots: Arc<Semaphore>,
    pending: AtomicU32,
    max_pending: u32,
}

const OVERLOADED: GatewayError =
    GatewayError::ServiceUnavailable("the upstream's concurrency limit is reached");

impl Breaker {
    pub fn new(l: UpstreamLimits) -> Breaker {
        let permits = (l.max_requests as usize).min(Semaphore::MAX_PERMITS);
        Breaker {
            slots: Arc::new(Semaphore::new(permits)),
            pending: AtomicU32::new(0),
            max_pending: l.max_pending,
        }
    }

    /// A slot for one request (all of its tries), held until dropped.
    pub async fn enter(&self, wait: Duration) -> Result<OwnedSemaphorePermit, GatewayError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let queued = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_pending).then_some(n + 1)
            });
        if queued.is_err() {
            return Err(OVERLOADED);
        }
        let _leave = Leave(&self.pending);
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(OVERLOADED),
        }
    }
}

struct Leave<'a>(&'a AtomicU32);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_requests_and_queues_up_to_max_pending() {
        let b = Breaker::new(UpstreamLimits {
            max_requests: 1,
            max_pending: 0,
        });
        let held = b.enter(Duration::from_secs(1)).await.expect("first");
        assert!(b.enter(Duration::from_secs(1)).await.is_err());
        drop(held);
        assert!(b.enter(Duration::from_secs(1)).await.is_ok());

        let b = Breaker::new(UpstreamLimits {
            max_requests: 1,
            max_pending: 1,
        });
        let held = b.enter(Duration::from_secs(1)).await.expect("first");
        let waiter = b.enter(Duration::from_secs(5));
        tokio::pin!(waiter);
        assert!(futures_poll_once(&mut waiter).await.is_none(), "queued");
        assert!(b.enter(Duration::from_secs(1)).await.is_err(), "queue full");
        drop(held);
        assert!(waiter.await.is_ok());
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        tokio::select! {
            biased;
            v = f => Some(v),
            _ = tokio::task::yield_now() => None,
        }
    }
}
