//! DNS discovery against a real DNS server on an ephemeral 127.0.0.1 UDP
//! port (tests/lb) whose answers change while the gateway runs.
mod lb;
mod support;

use std::time::Duration;

use lb::*;
use support::*;

const ROUTE: &str = "  - id: r\n    match: { path: /** }\n    upstream: u\n";

/// Waits until the DNS server has answered `n` more queries.
async fn resolutions(dns: &DnsServer, n: usize) {
    let start = dns.queries();
    assert!(wait_until(|| dns.queries() >= start + n, Duration::from_secs(10)).await);
}

/// Polls the gateway (bounded) until the answer satisfies `cond`.
async fn until(gw: &Gw, cond: impl Fn(u16, &str) -> bool) -> bool {
    for _ in 0..2000 {
        let (s, h, _) = get(&gw.url("/x")).await;
        if cond(s.as_u16(), &who(&h)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_are_followed_and_the_last_good_answer_kept() {
    let a = Replica::start("a").await;
    let dns = DnsServer::start(DnsMode::NxDomain).await;
    let ups = format!(
        "  u:\n    discovery: {{ dns: \"svc.test:{}\", refresh: 50ms, resolver: \"{}\" }}\n",
        a.addr.port(),
        dns.addr
    );
    let gw = start_gateway(&config(&ups, ROUTE)).await;
    resolutions(&dns, 2).await;
    let (s, _, body) = get(&gw.url("/x")).await;
    assert_eq!(s, 503, "no such name: no endpoints");
    assert!(String::from_utf8_lossy(&body).contains("service_unavailable"));

    dns.set(DnsMode::Answer {
        a: true,
        srv_ports: vec![],
    });
    assert!(until(&gw, |s, w| s == 200 && w == "a").await);

    // The resolver fails: the last good answer stays.
    dns.set(DnsMode::ServFail);
    resolutions(&dns, 4).await;
    for _ in 0..20 {
        assert_eq!(get(&gw.url("/x")).await.0, 200);
    }

    // The name goes away: so do the endpoints.
    dns.set(DnsMode::NxDomain);
    assert!(until(&gw, |s, _| s == 503).await);
    assert!(gw.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_answers_add_and_remove_endpoints_without_dropping_in_flight_requests() {
    let a = Replica::start("a").await;
    let b = Replica::start("b").await;
    let dns = DnsServer::start(DnsMode::Answer {
        a: true,
        srv_ports: vec![a.addr.port()],
    })
    .await;
    let ups = format!(
        "  u:\n    discovery: {{ srv: \"_http._tcp.svc.test\", refresh: 50ms, resolver: \"{}\" }}\n",
        dns.addr
    );
    let gw = start_gateway(&config(&ups, ROUTE)).await;
    assert!(until(&gw, |s, w| s == 200 && w == "a").await);

    // b joins.
    dns.set(DnsMode::Answer {
        a: true,
        srv_ports: vec![a.addr.port(), b.addr.port()],
    });
    assert!(until(&gw, |s, w| s == 200 && w == "b").await);

    // A request in flight on a when a leaves still completes.
    a.hold(true);
    let url = gw.url("/x");
    let mut slow = None;
    for _ in 0..10 {
        let u = url.clone();
        let h = tokio::spawn(async move { get(&u).await });
        if wait_until(
            || a.knobs.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0,
            Duration::from_millis(500),
        )
        .await
        {
            slow = Some(h);
            break;
        }
        assert_eq!(h.await.expect("join").0, 200);
    }
    let slow = slow.expect("a request reached a");
    dns.set(DnsMode::Answer {
        a: true,
        srv_ports: vec![b.addr.port()],
    });
    resolutions(&dns, 3).await;
    for _ in 0..20 {
        let (s, h, _) = get(&url).await;
        assert_eq!((s.as_u16(), who(&h).as_str()), (200, "b"));
    }
    a.hold(false);
    let (s, h, _) = slow.await.expect("join");
    assert_eq!((s.as_u16(), who(&h).as_str()), (200, "a"));
    assert!(gw.shutdown().await);
}
