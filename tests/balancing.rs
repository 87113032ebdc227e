//! Load balancing over real replicas on 127.0.0.1: smooth weighted round
//! robin, random, least_request (power of two choices) and ring_hash.
mod lb;
mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use lb::*;
use support::*;

fn upstream(name: &str, replicas: &[&Replica], weights: &[u32], balance: &str) -> String {
    let eps: Vec<String> = replicas
        .iter()
        .zip(weights.iter().chain(std::iter::repeat(&1)))
        .map(|(r, w)| format!("{{ address: \"{}\", weight: {w} }}", r.addr))
        .collect();
    format!(
        "  {name}:\n    endpoints: [{}]\n    balance: {balance}\n",
        eps.join(", ")
    )
}

const ROUTE: &str = "  - id: r\n    match: { path: /** }\n    upstream: u\n";

async fn replicas(names: &[&str]) -> Vec<Replica> {
    let mut v = Vec::new();
    for n in names {
        v.push(Replica::start(n).await);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly_and_by_weight() {
    let r = replicas(&["a", "b", "c"]).await;
    let refs: Vec<&Replica> = r.iter().collect();
    let gw = start_gateway(&config(&upstream("u", &refs, &[], "round_robin"), ROUTE)).await;
    let res = fan_out(&gw.url("/x"), 3000, 8).await;
    assert!(res.iter().all(|(s, _)| *s == 200));
    for n in ["a", "b", "c"] {
        let c = count(&res, n);
        assert!(c.abs_diff(1000) <= 50, "{n} got {c} of 3000");
    }
    assert!(gw.shutdown().await);

    let gw = start_gateway(&config(
        &upstream("u", &refs[..2], &[3, 1], "round_robin"),
        ROUTE,
    ))
    .await;
    let res = fan_out(&gw.url("/x"), 3000, 8).await;
    let (a, b) = (count(&res, "a"), count(&res, "b"));
    assert!(
        a.abs_diff(2250) <= 112 && b.abs_diff(750) <= 37,
        "3:1 gave {a}:{b}"
    );
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_spreads_roughly_evenly() {
    let r = replicas(&["a", "b", "c"]).await;
    let refs: Vec<&Replica> = r.iter().collect();
    let gw = start_gateway(&config(&upstream("u", &refs, &[], "random"), ROUTE)).await;
    let res = fan_out(&gw.url("/x"), 1500, 8).await;
    for n in ["a", "b", "c"] {
        let c = count(&res, n);
        // Expected 500, standard deviation about 18.
        assert!(c.abs_diff(500) <= 100, "{n} got {c} of 1500");
    }
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_sends_fewer_to_the_slow_replica() {
    let r = replicas(&["fast", "slow"]).await;
    r[0].set_delay(Duration::from_millis(3));
    r[1].set_delay(Duration::from_millis(30));
    let refs: Vec<&Replica> = r.iter().collect();
    let gw = start_gateway(&config(&upstream("u", &refs, &[], "least_request"), ROUTE)).await;
    let res = fan_out(&gw.url("/x"), 600, 12).await;
    assert!(res.iter().all(|(s, _)| *s == 200));
    let (fast, slow) = (count(&res, "fast"), count(&res, "slow"));
    assert!(slow * 3 < fast, "fast {fast}, slow {slow}");
    assert!(gw.shutdown().await);
}

async fn replica_for_key(gw: &Gw, key: &str) -> String {
    let req = Request::get(gw.url("/x"))
        .header("x-user-id", key)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (s, h, _) = send(req).await;
    assert_eq!(s, 200);
    who(&h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_hash_keeps_keys_and_moves_few_when_one_of_five_leaves() {
    let r = replicas(&["a", "b", "c", "d", "e"]).await;
    let refs: Vec<&Replica> = r.iter().collect();
    let balance = "{ ring_hash: { key: header:X-User-Id } }";
    let five = start_gateway(&config(&upstream("u", &refs, &[], balance), ROUTE)).await;
    let five_again = start_gateway(&config(&upstream("u", &refs, &[], balance), ROUTE)).await;
    let four = start_gateway(&config(&upstream("u", &refs[..4], &[], balance), ROUTE)).await;
    let (mut moved, keys) = (0, 300);
    let mut used = std::collections::HashSet::new();
    for k in 0..keys {
        let key = format!("user-{k}");
        let first = replica_for_key(&five, &key).await;
        assert_eq!(first, replica_for_key(&five, &key).await, "key {key} moved");
        assert_eq!(
            first,
            replica_for_key(&five_again, &key).await,
            "another gateway disagrees"
        );
        if first != replica_for_key(&four, &key).await {
            assert_eq!(first, "e", "only keys of the removed replica may move");
            moved += 1;
        }
        used.insert(first);
    }
    assert_eq!(used.len(), 5, "every replica owns keys");
    assert!(moved * 100 <= keys * 30, "{moved} of {keys} keys moved");
    for gw in [five, five_again, four] {
        assert!(gw.shutdown().await);
    }
}
