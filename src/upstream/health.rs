//! Active health checks: every `interval`, a GET of `path` to each endpoint
//! (all endpoints at once, each bounded by `timeout`). `unhealthy` failures
//! in a row take an endpoint out of rotation, `healthy` successes in a row
//! put it back. Endpoints start healthy so a new gateway serves at once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use http::header::{HeaderValue, HOST, USER_AGENT};
use http::Request;
use tokio::task::JoinSet;

use super::body::UpstreamBody;
use super::endpoint::Endpoint;
use super::pool::{self, Settings};
use super::spec::HealthCheck;
use super::{State, UpstreamRuntime};

pub fn spawn(rt: &UpstreamRuntime, hc: HealthCheck) {
    let state = Arc::downgrade(&rt.state);
    let pool = rt.pool.clone();
    let name = rt.name.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(hc.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !round(&state, &pool, &hc, &name).await {
                return;
            }
        }
    });
}

/// One round over the current endpoints; false once the upstream is gone.
async fn round(state: &Weak<State>, pool: &Settings, hc: &HealthCheck, name: &str) -> bool {
    let Some(st) = state.upgrade() else {
        return false;
    };
    let set = st.endpoints.load_full();
    drop(st);
    let mut checks = JoinSet::new();
    for e in set.endpoints.iter().cloned() {
        let (pool, hc) = (pool.clone(), hc.clone());
        checks.spawn(async move {
            let ok = probe(&pool, &hc, &e).await;
            (e, ok)
        });
    }
    while let Some(res) = checks.join_next().await {
        if let Ok((e, ok)) = res {
            update(&e, ok, hc, name);
        }
    }
    true
}

async fn probe(pool: &Settings, hc: &HealthCheck, e: &Arc<Endpoint>) -> bool {
    let Ok(host) = HeaderValue::from_str(e.authority.as_str()) else {
        return false;
    };
    let Ok(req) = Request::get(hc.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, "gwanmun-health-check")
        .body(UpstreamBody::empty())
    else {
        return false;
    };
    let until = tokio::time::Instant::now() + hc.timeout;
    let check = async {
        let resp = pool::send(pool, e.clone(), req, until).await.ok()?;
        let ok = hc.accepts(resp.status());
        // Read to the end (within the timeout) so the connection is reused.
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        Some(ok)
    };
    matches!(tokio::time::timeout_at(until, check).await, Ok(Some(true)))
}

/// Applies one result to the endpoint's streak and, at a threshold, its state.
fn update(e: &Endpoint, ok: bool, hc: &HealthCheck, name: &str) {
    let prev = e.hc_streak.load(Ordering::Relaxed);
    let streak = match (ok, prev) {
        (true, p) if p > 0 => p.saturating_add(1),
        (true, _) => 1,
        (false, p) if p < 0 => p.saturating_sub(1),
        (false, _) => -1,
    };
    e.hc_streak.store(streak, Ordering::Relaxed);
    let healthy_at = i32::try_from(hc.healthy).unwrap_or(i32::MAX);
    let unhealthy_at = i32::try_from(hc.unhealthy).unwrap_or(i32::MAX);
    if e.healthy() && streak <= -unhealthy_at {
        e.set_healthy(false);
        tracing::warn!(upstream = name, endpoint = %e.authority, "endpoint failed its health checks: out of rotation");
    } else if !e.healthy() && streak >= healthy_at {
        e.set_healthy(true);
        tracing::info!(upstream = name, endpoint = %e.authority, "endpoint passed its health checks: back in rotation");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn thresholds_take_out_and_put_back() {
        let hc = HealthCheck {
            path: "/h".parse().expect("path"),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy: 2,
            unhealthy: 3,
            expect: vec![(200, 299)],
        };
        let e = Endpoint::new(0, "127.0.0.1:1".parse().expect("authority"), 1);
        for ok in [false, false, true, false, false] {
            update(&e, ok, &hc, "t");
            assert!(e.healthy());
        }
        update(&e, false, &hc, "t");
        assert!(!e.healthy());
        update(&e, true, &hc, "t");
        assert!(!e.healthy());
        update(&e, true, &hc, "t");
        assert!(e.healthy());
    }
}
