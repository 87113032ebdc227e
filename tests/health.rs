//! Active health checks, the all-down answer and the circuit breaker,
//! against real replicas on 127.0.0.1.
mod lb;
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use lb::*;
use support::*;

const ROUTE: &str = "  - id: r\n    match: { path: /** }\n    upstream: u\n";

fn upstream(replicas: &[&Replica], extra: &str) -> String {
    let eps: Vec<String> = replicas.iter().map(|r| format!("\"{}\"", r.addr)).collect();
    format!("  u:\n    endpoints: [{}]\n{extra}", eps.join(", "))
}

const CHECKS: &str = "    health_check: { path: /health, interval: 50ms, timeout: 1s, healthy: 2, unhealthy: 2, expect: [200-299] }\n";

/// Sends GETs one by one (at most `limit`) until `cond` holds for the
/// replica names of the last `window` answers.
async fn until_answers(
    gw: &Gw,
    window: usize,
    limit: usize,
    cond: impl Fn(&[String]) -> bool,
) -> bool {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..limit {
        let (s, h, _) = get(&gw.url("/x")).await;
        assert_eq!(s, 200);
        seen.push(who(&h));
        if seen.len() >= window && cond(&seen[seen.len() - window..]) {
            return true;
        }
        // Give the checker a turn between requests without a fixed wait.
        tokio::task::yield_now().await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_a_replica_out_and_put_it_back() {
    let a = Replica::start("a").await;
    let b = Replica::start("b").await;
    let gw = start_gateway(&config(&upstream(&[&a, &b], CHECKS), ROUTE)).await;
    assert!(
        wait_until(
            || b.knobs.health_hits.load(Ordering::SeqCst) > 0,
            Duration::from_secs(5)
        )
        .await
    );

    b.set_health(503);
    let before = b.knobs.health_hits.load(Ordering::SeqCst);
    // Two failed checks take it out.
    assert!(
        wait_until(
            || b.knobs.health_hits.load(Ordering::SeqCst) >= before + 3,
            Duration::from_secs(5)
        )
        .await
    );
    assert!(
        until_answers(&gw, 30, 2000, |w| w.iter().all(|n| n == "a")).await,
        "b never left"
    );
    let b_hits = b.hits();
    for _ in 0..20 {
        let (_, h, _) = get(&gw.url("/x")).await;
        assert_eq!(who(&h), "a");
    }
    assert_eq!(b.hits(), b_hits, "a down replica got traffic");

    b.set_health(200);
    assert!(
        until_answers(&gw, 1, 5000, |w| w[0] == "b").await,
        "b never came back"
    );
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_answers_503_at_once_with_the_json_body() {
    let a = Replica::start("a").await;
    let b = Replica::start("b").await;
    a.set_health(500);
    b.set_health(500);
    let gw = start_gateway(&config(&upstream(&[&a, &b], CHECKS), ROUTE)).await;
    let down = |r: &Replica| r.knobs.health_hits.load(Ordering::SeqCst) >= 3;
    assert!(wait_until(|| down(&a) && down(&b), Duration::from_secs(5)).await);
    let mut got_503 = false;
    for _ in 0..500 {
        let (s, _, body) = get(&gw.url("/x")).await;
        if s == 503 {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json body");
            assert_eq!(v["error"], "service_unavailable");
            assert!(v["request_id"].is_string());
            got_503 = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(got_503, "never 503");
    // At once: answered without trying any endpoint.
    let (ha, hb) = (a.hits(), b.hits());
    for _ in 0..10 {
        assert_eq!(get(&gw.url("/x")).await.0, 503);
    }
    assert_eq!((a.hits(), b.hits()), (ha, hb));
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_caps_concurrency_and_answers_503_beyond() {
    let a = Replica::start("a").await;
    a.hold(true);
    let gw = start_gateway(&config(
        &upstream(&[&a], "    limits: { max_requests: 2, max_pending: 0 }\n"),
        ROUTE,
    ))
    .await;
    let url = gw.url("/x");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let u = url.clone();
            tokio::spawn(async move { get(&u).await.0 })
        })
        .collect();
    assert!(
        wait_until(
            || a.knobs.in_flight.load(Ordering::SeqCst) == 2,
            Duration::from_secs(5)
        )
        .await
    );
    for _ in 0..5 {
        let (s, _, body) = get(&url).await;
        assert_eq!(s, 503);
        assert!(String::from_utf8_lossy(&body).contains("service_unavailable"));
    }
    assert_eq!(a.knobs.max_in_flight.load(Ordering::SeqCst), 2);
    a.hold(false);
    for h in held {
        assert_eq!(h.await.expect("join"), 200);
    }
    assert_eq!(get(&url).await.0, 200, "slots are released");
    assert!(gw.shutdown().await);
}
