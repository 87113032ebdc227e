//! The balancer's pick for each strategy at 3 and 100 endpoints (the hot
//! path: one per upstream try). Must stay well under a microsecond.

use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderName};

use gwanmun::upstream::balance::{pick, EndpointSet, PickCtx};
use gwanmun::upstream::endpoint::Endpoint;
use gwanmun::upstream::spec::{Balance, HashKey};

fn set(n: usize, balance: &Balance) -> EndpointSet {
    let eps = (0..n)
        .map(|i| {
            let a = format!("10.0.{}.{}:8080", i / 250, i % 250)
                .parse()
                .expect("authority");
            Arc::new(Endpoint::new(i as u64, a, 1 + (i % 3) as u32))
        })
        .collect();
    EndpointSet::new(eps, balance)
}

fn bench(c: &mut Criterion) {
    let strategies = [
        ("round_robin", Balance::RoundRobin),
        ("random", Balance::Random),
        ("least_request", Balance::LeastRequest),
        (
            "ring_hash",
            Balance::RingHash(HashKey::Header(HeaderName::from_static("x-user-id"))),
        ),
    ];
    let mut headers = HeaderMap::new();
    headers.insert("x-user-id", "user-4242".parse().expect("value"));
    let mut g = c.benchmark_group("pick");
    for (name, balance) in &strategies {
        for n in [3usize, 100] {
            let s = set(n, balance);
            let cursor = AtomicUsize::new(0);
            g.bench_with_input(BenchmarkId::new(*name, n), &n, |b, _| {
                b.iter(|| {
                    let cx = PickCtx {
                        headers: &headers,
                        client_ip: IpAddr::from([10, 1, 2, 3]),
                        claim: None,
                        tried: &[],
                        now_ms: 1,
                    };
                    black_box(pick(balance, &s, &cursor, &cx))
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
