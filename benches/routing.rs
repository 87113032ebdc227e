//! Hot-path benchmarks for routing: route selection at 10, 1,000 and 10,000
//! routes (the cost must not grow with the route count), path
//! normalization, and header rewriting. Run: `cargo bench --bench routing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use gwanmun::config::{load_str, Snapshot};
use gwanmun::proxy::headers::strip_hop_by_hop;
use gwanmun::proxy::rewrite::HeaderRules;
use gwanmun::routing::path::{normalize, PathPolicy};
use gwanmun::routing::{RequestView, Selection};

/// `n` routes shaped like a real API: services, collections, item templates.
fn config(n: usize) -> String {
    let mut s = String::from(
        "listeners: [{ name: p, bind: 127.0.0.1:0 }]\nupstreams:\n  u: { endpoints: [\"127.0.0.1:1\"] }\nroutes:\n",
    );
    for i in 0..n {
        let path = match i % 3 {
            0 => format!("/api/svc{i}/**"),
            1 => format!("\"/api/svc{i}/items/{{id}}\""),
            _ => format!("/api/svc{i}/items"),
        };
        s.push_str(&format!(
            "  - {{ id: r{i}, match: {{ path: {path}, methods: [GET, POST] }}, upstream: u }}\n"
        ));
    }
    s
}

fn snapshot(n: usize) -> Snapshot {
    load_str(&config(n), "bench.yaml").expect("valid config")
}

fn route_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match");
    for n in [10usize, 1_000, 10_000] {
        let snap = snapshot(n);
        // A path that exists in every size (svc4 is a template route).
        let headers = HeaderMap::new();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let view = RequestView {
                    method: &Method::GET,
                    path: black_box("/api/svc4/items/42"),
                    host: None,
                    headers: &headers,
                    query: None,
                };
                match snap.router.select(&view) {
                    Selection::Found(r) => black_box(r.index),
                    _ => usize::MAX,
                }
            })
        });
    }
    g.finish();
}

fn config_compile(c: &mut Criterion) {
    let text = config(10_000);
    let mut g = c.benchmark_group("config_compile");
    g.sample_size(10);
    g.bench_function("10000_routes", |b| {
        b.iter(|| load_str(black_box(&text), "bench.yaml").is_ok())
    });
    g.finish();
}

fn path_normalization(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize");
    for (name, p) in [
        ("clean", "/api/tasks/7/comments"),
        ("dots_and_escapes", "/api/./tasks//%37/../7/%63omments"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| normalize(black_box(p), PathPolicy::default()).is_ok())
        });
    }
    g.finish();
}

fn header_rewriting(c: &mut Criterion) {
    let rules = HeaderRules {
        remove: vec![HeaderName::from_static("x-debug")],
        set: vec![(
            HeaderName::from_static("x-gateway"),
            HeaderValue::from_static("gwanmun"),
        )],
        add: vec![(
            HeaderName::from_static("x-served-by"),
            HeaderValue::from_static("gwanmun"),
        )],
    };
    let mut base = HeaderMap::new();
    for (k, v) in [
        ("host", "api.example.com"),
        ("user-agent", "bench"),
        ("accept", "*/*"),
        ("connection", "keep-alive"),
        ("x-debug", "1"),
        ("authorization", "Bearer abc"),
    ] {
        base.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    c.bench_function("header_rewrite", |b| {
        b.iter(|| {
            let mut h = base.clone();
            strip_hop_by_hop(&mut h);
            rules.apply(&mut h);
            black_box(h.len())
        })
    });
}

criterion_group!(
    benches,
    route_match,
    config_compile,
    path_normalization,
    header_rewriting
);
criterion_main!(benches);
