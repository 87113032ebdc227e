//! Retries, passive ejection and health checks together, against real
//! replicas on 127.0.0.1 that fail, slow down, die and come back.
mod lb;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use lb::*;
use support::*;

fn endpoints(replicas: &[&Replica]) -> String {
    let eps: Vec<String> = replicas.iter().map(|r| format!("\"{}\"", r.addr)).collect();
    format!("[{}]", eps.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_costs_no_client_errors_and_returns() {
    let r = [
        Replica::start("a").await,
        Replica::start("b").await,
        Replica::start("c").await,
    ];
    let ups = format!(
        "  u:\n    endpoints: {}\n    health_check: {{ path: /health, interval: 50ms, timeout: 500ms, healthy: 2, unhealthy: 2 }}\n    outlier: {{ consecutive_failures: 2, base_ejection: 200ms, max_ejected: 50% }}\n",
        endpoints(&[&r[0], &r[1], &r[2]])
    );
    let routes = "  - id: r\n    match: { path: /** }\n    upstream: u\n    retry: { attempts: 3, on: [connect_failure, reset, 502, 503, 504], backoff: 5ms, budget: 50% }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    let url = gw.url("/x");

    let done = Arc::new(AtomicUsize::new(0));
    let load = {
        let (url, done) = (url.clone(), done.clone());
        tokio::spawn(async move {
            let res = fan_out_counting(&url, 2000, 8, done).await;
            res
        })
    };
    assert!(
        wait_until(
            || done.load(Ordering::SeqCst) >= 600,
            Duration::from_secs(60)
        )
        .await
    );
    r[2].kill();
    let c_at_kill = r[2].hits();
    let res = load.await.expect("join");
    let errors: Vec<_> = res.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        errors.is_empty(),
        "{} client errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(res.len(), 2000);
    // Aborting is asynchronous: requests already inside the handler (at most
    // one per worker) may still count; nothing after that.
    assert!(
        r[2].hits() <= c_at_kill + 8,
        "a dead replica kept answering"
    );

    r[2].restart().await;
    let mut back = false;
    for _ in 0..3000 {
        let (s, h, _) = get(&url).await;
        assert_eq!(s, 200);
        if who(&h) == "c" {
            back = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(back, "the replica was not used again after it came back");
    assert!(gw.shutdown().await);
}

/// Like `lb::fan_out`, counting finished requests in `done` as it goes.
async fn fan_out_counting(
    url: &str,
    total: usize,
    workers: usize,
    done: Arc<AtomicUsize>,
) -> Vec<(u16, String)> {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (next, out, url, done) = (next.clone(), out.clone(), url.to_owned(), done.clone());
        tasks.spawn(async move {
            let client = client();
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let req = Request::get(&url)
                    .body(Full::new(Bytes::new()))
                    .expect("req");
                let r = match client.request(req).await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        let w = who(resp.headers());
                        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                        (s, w)
                    }
                    Err(e) => (0, format!("client error: {e}")),
                };
                out.lock().expect("lock").push(r);
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let v = out.lock().expect("lock").clone();
    v
}

async fn post(url: &str, body: &'static [u8]) -> (u16, String, Bytes) {
    let req = Request::post(url)
        .body(Full::new(Bytes::from_static(body)))
        .expect("req");
    let (s, h, b) = send(req).await;
    (s.as_u16(), who(&h), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_go_to_another_endpoint_for_idempotent_or_opted_in_routes() {
    let bad = Replica::start("bad").await;
    let good = Replica::start("good").await;
    bad.set_status(503);
    let ups = format!("  u:\n    endpoints: {}\n", endpoints(&[&bad, &good]));
    let routes = "  - id: strict\n    match: { path: /strict/** }\n    upstream: u\n    retry: { attempts: 2, backoff: 1ms }\n  - id: posts\n    match: { path: /posts/** }\n    upstream: u\n    retry: { attempts: 2, backoff: 1ms, non_idempotent: true, buffer: 1KiB }\n  - id: tiny\n    match: { path: /tiny/** }\n    upstream: u\n    retry: { attempts: 2, backoff: 1ms, non_idempotent: true, buffer: 4 }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    for _ in 0..10 {
        let (s, h, _) = get(&gw.url("/strict/x")).await;
        assert_eq!((s.as_u16(), who(&h).as_str()), (200, "good"));
    }
    // POST on a route without the opt-in: never retried, so some 503s.
    let mut seen_503 = 0;
    for _ in 0..10 {
        let (s, _, _) = post(&gw.url("/strict/x"), b"hello").await;
        seen_503 += usize::from(s == 503);
    }
    assert!(seen_503 > 0, "a POST was retried without the opt-in");
    // Opted in, small body: buffered and replayed whole.
    for _ in 0..10 {
        let (s, w, b) = post(&gw.url("/posts/x"), b"hello").await;
        assert_eq!((s, w.as_str(), &b[..]), (200, "good", &b"good:5"[..]));
    }
    // Opted in, body over the buffer limit: streamed once, never retried.
    let mut seen_503 = 0;
    for _ in 0..10 {
        let (s, _, _) = post(&gw.url("/tiny/x"), b"hello").await;
        seen_503 += usize::from(s == 503);
    }
    assert!(seen_503 > 0, "a streamed body was retried");
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_try_times_out_and_the_retry_answers() {
    let slow = Replica::start("slow").await;
    let fast = Replica::start("fast").await;
    slow.hold(true);
    let ups = format!("  u:\n    endpoints: {}\n", endpoints(&[&slow, &fast]));
    let routes = "  - id: r\n    match: { path: /** }\n    upstream: u\n    timeout: 20s\n    retry: { attempts: 2, on: [504], per_try_timeout: 200ms, backoff: 1ms }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    for _ in 0..4 {
        let (s, h, _) = get(&gw.url("/x")).await;
        assert_eq!((s.as_u16(), who(&h).as_str()), (200, "fast"));
    }
    assert!(slow.hits() > 0, "the slow replica was tried");
    slow.hold(false);
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_try_fails_the_client_gets_502() {
    let a = Replica::start("a").await;
    let b = Replica::start("b").await;
    let ups = format!("  u:\n    endpoints: {}\n", endpoints(&[&a, &b]));
    a.kill();
    b.kill();
    let routes = "  - id: r\n    match: { path: /** }\n    upstream: u\n    retry: { attempts: 3, backoff: 1ms }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    let (s, _, body) = get(&gw.url("/x")).await;
    assert_eq!(s, 502);
    assert!(String::from_utf8_lossy(&body).contains("bad_gateway"));
    assert!(gw.shutdown().await);
}
