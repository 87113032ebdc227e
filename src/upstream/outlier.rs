//! Passive outlier detection: an endpoint that fails `consecutive_failures`
//! requests in a row is ejected for `base_ejection * n` (n = its ejection
//! count, capped at `max_ejection`), unless that would eject more than
//! `max_ejected` of the endpoints. Ejections end by time alone; the pick
//! compares `ejected_until` with the clock, so there is no timer task.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::balance::EndpointSet;
use super::endpoint::Endpoint;
use super::spec::Outlier;

/// After this many ejection periods without a new ejection, the next one
/// starts again from `base_ejection`.
const FORGET_AFTER_PERIODS: u32 = 10;

/// Records the outcome of one try against `e`; returns whether this
/// failure ejected it.
pub fn record(spec: &Outlier, set: &EndpointSet, e: &Endpoint, ok: bool, now_ms: u64) -> bool {
    if ok {
        e.failures.store(0, Ordering::Relaxed);
        return false;
    }
    let n = e.failures.fetch_add(1, Ordering::Relaxed) + 1;
    if n < spec.consecutive_failures || e.ejected(now_ms) {
        return false;
    }
    let limit = (spec.max_ejected * set.endpoints.len() as f64).floor() as usize;
    let ejected = set.endpoints.iter().filter(|x| x.ejected(now_ms)).count();
    if ejected >= limit {
        return false;
    }
    let base = millis(spec.base_ejection);
    let last_end = e.ejected_until_ms.load(Ordering::Relaxed);
    let mut count = e.ejections.load(Ordering::Relaxed);
    if last_end != 0 && now_ms.saturating_sub(last_end) > base * u64::from(FORGET_AFTER_PERIODS) {
        count = 0;
    }
    let count = count.saturating_add(1);
    e.ejections.store(count, Ordering::Relaxed);
    let span = (base.saturating_mul(u64::from(count))).min(millis(spec.max_ejection));
    e.ejected_until_ms
        .store(now_ms + span.max(1), Ordering::Relaxed);
    e.failures.store(0, Ordering::Relaxed);
    tracing::warn!(endpoint = %e.authority, ejection_ms = span, "endpoint ejected after consecutive failures");
    true
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::spec::Balance;
    use std::sync::Arc;

    fn set(n: usize) -> EndpointSet {
        let eps = (0..n)
            .map(|i| {
                let a = format!("127.0.0.1:{}", 9000 + i)
                    .parse()
                    .expect("authority");
                Arc::new(Endpoint::new(i as u64, a, 1))
            })
            .collect();
        EndpointSet::new(eps, &Balance::RoundRobin)
    }

    fn spec() -> Outlier {
        Outlier {
            consecutive_failures: 2,
            base_ejection: Duration::from_millis(100),
            max_ejection: Duration::from_millis(250),
            max_ejected: 0.5,
        }
    }

    #[test]
    fn ejects_with_growing_times_and_respects_the_cap() {
        let (s, o) = (set(4), spec());
        let e = &s.endpoints[0];
        assert!(!record(&o, &s, e, false, 0));
        assert!(record(&o, &s, e, false, 0));
        assert!(!e.available(99) && e.available(100));
        record(&o, &s, e, false, 100);
        assert!(record(&o, &s, e, false, 100));
        assert_eq!(e.ejected_until_ms.load(Ordering::Relaxed), 300);
        record(&o, &s, e, false, 300);
        assert!(record(&o, &s, e, false, 300));
        assert_eq!(e.ejected_until_ms.load(Ordering::Relaxed), 550, "capped");
        // A success resets the streak.
        let f = &s.endpoints[1];
        record(&o, &s, f, false, 0);
        record(&o, &s, f, true, 0);
        assert!(!record(&o, &s, f, false, 0));
        assert!(record(&o, &s, f, false, 0));
        // Two of four are ejected: 50% reached, a third is not.
        let g = &s.endpoints[2];
        record(&o, &s, g, false, 1);
        assert!(!record(&o, &s, g, false, 1));
        assert!(g.available(1));
    }
}
