//! DNS discovery: resolves the upstream's name at start, then again every
//! `refresh` (sooner when the answer's TTL is shorter), and swaps in a new
//! endpoint set when the addresses change. Endpoints that stay keep their
//! `Arc` (in-flight counters, health, ejections; the client's pooled
//! connections are keyed by address and stay too); requests in flight to a
//! removed endpoint finish on the connection they have. When resolution
//! fails the last good answer is kept; NXDOMAIN or an empty answer is an
//! answer (no endpoints).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::uri::Authority;

use super::balance::EndpointSet;
use super::dns::{self, DnsError};
use super::spec::{Balance, Discovery, DnsTarget};
use super::{State, UpstreamRuntime};

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Never re-resolve more often than this, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_millis(50);

pub fn spawn(rt: &UpstreamRuntime, d: Discovery) {
    let state = Arc::downgrade(&rt.state);
    let balance = rt.balance.clone();
    let name = rt.name.clone();
    tokio::spawn(async move {
        loop {
            let wait = match resolve(&d).await {
                Ok((addrs, ttl)) => {
                    if !apply(&state, &balance, &addrs, &name) {
                        return;
                    }
                    ttl.map_or(d.refresh, |t| t.min(d.refresh)).max(MIN_REFRESH)
                }
                Err(e) => {
                    tracing::warn!(upstream = %name, error = %e, "DNS discovery failed; keeping the last answer");
                    if state.strong_count() == 0 {
                        return;
                    }
                    d.refresh
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}

async fn resolve(d: &Discovery) -> Result<(Vec<SocketAddr>, Option<Duration>), DnsError> {
    match d.resolver.or_else(dns::system_resolver) {
        Some(server) => dns::resolve(server, &d.target, QUERY_TIMEOUT).await,
        // No nameserver known: the platform's resolver (no TTLs, no SRV).
        None => match &d.target {
            DnsTarget::Host { host, port } => tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map(|a| (a.collect(), None))
                .map_err(|e| DnsError::Io(e.to_string())),
            DnsTarget::Srv(_) => Err(DnsError::Io("SRV needs a nameserver".into())),
        },
    }
}

/// Installs `addrs` as the endpoint set if it differs; false once the
/// upstream is gone.
fn apply(state: &Weak<State>, balance: &Balance, addrs: &[SocketAddr], name: &str) -> bool {
    let Some(st) = state.upgrade() else {
        return false;
    };
    let current = st.endpoints.load_full();
    let wanted: Vec<Authority> = addrs
        .iter()
        .filter_map(|a| a.to_string().parse::<Authority>().ok())
        .collect();
    let same = wanted.len() == current.endpoints.len()
        && wanted
            .iter()
            .all(|w| current.endpoints.iter().any(|e| &e.authority == w));
    if same {
        return true;
    }
    let next: Vec<_> = wanted
        .into_iter()
        .map(|w| {
            current
                .endpoints
                .iter()
                .find(|e| e.authority == w)
                .cloned()
                .unwrap_or_else(|| st.new_endpoint(w, 1))
        })
        .collect();
    tracing::info!(
        upstream = name,
        endpoints = next.len(),
        "DNS discovery updated the endpoints"
    );
    st.endpoints
        .store(Arc::new(EndpointSet::new(next, balance)));
    true
}
