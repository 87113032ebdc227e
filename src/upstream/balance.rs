//! Endpoint choice: a closed set of strategies over an immutable
//! [`EndpointSet`]. Picking is lock-free: it reads the set through an
//! `ArcSwap` guard, an atomic round-robin cursor, per-endpoint atomic
//! in-flight counters and `fastrand`'s thread-local generator.
//!
//! Every strategy skips endpoints that are down (health check), ejected
//! (outlier detection) or already tried by this request (retries), and
//! returns `None` only when no endpoint qualifies.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::header::COOKIE;
use http::HeaderMap;

use super::endpoint::Endpoint;
use super::spec::{Balance, HashKey};

/// Virtual nodes per unit of weight on the hash ring.
const RING_REPLICAS: u32 = 160;

/// The value of a JWT claim, put into the request extensions by the
/// authentication step, for `ring_hash` with `key: claim:NAME`.
/// (Hook for the JWT work: the name is not checked here, the auth step
/// inserts the value of the claim the route's upstream asks for.)
#[derive(Debug, Clone)]
pub struct ClaimKey(pub String);

/// One generation of endpoints with the tables its strategy needs,
/// built once when the endpoints change (never on the request path).
#[derive(Debug, Default)]
pub struct EndpointSet {
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Smooth weighted round-robin order (indices into `endpoints`); also
    /// the weighted table `random` and `least_request` sample from.
    schedule: Vec<u32>,
    /// Sorted `(hash, endpoint index)` virtual nodes (ring_hash only).
    ring: Vec<(u64, u32)>,
}

impl EndpointSet {
    pub fn new(endpoints: Vec<Arc<Endpoint>>, balance: &Balance) -> EndpointSet {
        let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
        let ring = match balance {
            Balance::RingHash(_) => build_ring(&endpoints),
            _ => Vec::new(),
        };
        EndpointSet {
            schedule: smooth_schedule(&weights),
            ring,
            endpoints,
        }
    }
}

/// What a pick may look at besides the set.
pub struct PickCtx<'a> {
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    pub claim: Option<&'a str>,
    /// Endpoint ids this request already tried.
    pub tried: &'a [u64],
    /// Milliseconds on the upstream's clock (ejections expire against it).
    pub now_ms: u64,
}

impl PickCtx<'_> {
    fn usable(&self, e: &Endpoint) -> bool {
        e.available(self.now_ms) && !self.tried.contains(&e.id)
    }
}

/// Chooses an endpoint for one try. `cursor` is the upstream's round-robin
/// position.
pub fn pick(
    balance: &Balance,
    set: &EndpointSet,
    cursor: &AtomicUsize,
    cx: &PickCtx<'_>,
) -> Option<Arc<Endpoint>> {
    let n = set.schedule.len();
    if n == 0 {
        return None;
    }
    let i = match balance {
        Balance::RoundRobin => probe(set, cursor.fetch_add(1, Ordering::Relaxed), cx)?,
        Balance::Random => probe(set, fastrand::usize(..n), cx)?,
        Balance::LeastRequest => {
            // The second choice starts elsewhere in the table, so with few
            // endpoints the two choices are rarely the same one.
            let start = fastrand::usize(..n);
            let a = probe(set, start, cx)?;
            let other = start + 1 + fastrand::usize(..n.saturating_sub(1).max(1));
            match probe(set, other, cx) {
                Some(b) if load(&set.endpoints[b]) < load(&set.endpoints[a]) => b,
                _ => a,
            }
        }
        Balance::RingHash(key) => match hash_key(key, cx) {
            Some(h) => ring_walk(set, h, cx)?,
            None => probe(set, fastrand::usize(..n), cx)?,
        },
    };
    set.endpoints.get(i).cloned()
}

/// In-flight requests per unit of weight, so heavier endpoints take more.
fn load(e: &Endpoint) -> u64 {
    (u64::from(e.in_flight()) << 16) / u64::from(e.weight.max(1))
}

/// The first usable endpoint in schedule order from position `start`.
fn probe(set: &EndpointSet, start: usize, cx: &PickCtx<'_>) -> Option<usize> {
    let n = set.schedule.len();
    (0..n)
        .map(|k| set.schedule[(start.wrapping_add(k)) % n] as usize)
        .find(|&i| cx.usable(&set.endpoints[i]))
}

fn ring_walk(set: &EndpointSet, h: u64, cx: &PickCtx<'_>) -> Option<usize> {
    let n = set.ring.len();
    if n == 0 {
        return None;
    }
    let start = set.ring.partition_point(|&(v, _)| v < h);
    (0..n)
        .map(|k| set.ring[(start + k) % n].1 as usize)
        .find(|&i| cx.usable(&set.endpoints[i]))
}

fn hash_key(key: &HashKey, cx: &PickCtx<'_>) -> Option<u64> {
    match key {
        HashKey::Header(name) => cx.headers.get(name).map(|v| hash(v.as_bytes())),
        HashKey::Cookie(name) => cookie(cx.headers, name).map(|v| hash(v.as_bytes())),
        HashKey::ClientIp => Some(match cx.client_ip {
            IpAddr::V4(a) => hash(&a.octets()),
            IpAddr::V6(a) => hash(&a.octets()),
        }),
        HashKey::Claim(_) => cx.claim.map(|c| hash(c.as_bytes())),
    }
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn build_ring(endpoints: &[Arc<Endpoint>]) -> Vec<(u64, u32)> {
    let mut ring = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let name = e.authority.as_str();
        for r in 0..RING_REPLICAS.saturating_mul(e.weight.min(100)) {
            let mut b = Vec::with_capacity(name.len() + 12);
            b.extend_from_slice(name.as_bytes());
            b.push(b'#');
            b.extend_from_slice(r.to_string().as_bytes());
            ring.push((hash(&b), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

/// FNV-1a with a splitmix64 finish: stable across builds and platforms, so
/// the same key maps to the same endpoint on every gateway instance.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Nginx's smooth weighted round-robin, unrolled into one cycle: weights
/// 5,1,1 give a,a,b,a,c,a,a rather than a burst of five a's.
pub fn smooth_schedule(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    // Keep the cycle short for huge weights; proportions survive the scaling.
    let scale = (total / 10_000).max(1);
    let w: Vec<i64> = weights
        .iter()
        .map(|&x| (i64::from(x) / scale as i64).max(1))
        .collect();
    let sum: i64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(sum as usize);
    for _ in 0..sum {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        out.push(best as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, balance: &Balance) -> EndpointSet {
        let eps = (0..n)
            .map(|i| {
                let a = format!("127.0.0.1:{}", 9000 + i)
                    .parse()
                    .expect("authority");
                Arc::new(Endpoint::new(i as u64, a, 1))
            })
            .collect();
        EndpointSet::new(eps, balance)
    }

    fn cx<'a>(headers: &'a HeaderMap, tried: &'a [u64]) -> PickCtx<'a> {
        PickCtx {
            headers,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            claim: None,
            tried,
            now_ms: 0,
        }
    }

    #[test]
    fn smooth_schedule_interleaves_by_weight() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1, 1]), vec![0, 1, 2]);
        let s = smooth_schedule(&[3, 1]);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert!(smooth_schedule(&[]).is_empty());
    }

    #[test]
    fn skips_down_and_tried_endpoints() {
        let h = HeaderMap::new();
        for b in [Balance::RoundRobin, Balance::Random, Balance::LeastRequest] {
            let s = set(3, &b);
            s.endpoints[0].set_healthy(false);
            let cur = AtomicUsize::new(0);
            for _ in 0..50 {
                let e = pick(&b, &s, &cur, &cx(&h, &[1])).expect("one left");
                assert_eq!(e.id, 2, "{b:?}");
            }
            assert!(pick(&b, &s, &cur, &cx(&h, &[1, 2])).is_none());
        }
    }

    #[test]
    fn least_request_prefers_the_idle_endpoint() {
        let b = Balance::LeastRequest;
        let s = set(2, &b);
        let _busy: Vec<_> = (0..10).map(|_| s.endpoints[0].begin()).collect();
        let (h, cur) = (HeaderMap::new(), AtomicUsize::new(0));
        let zero = (0..1000)
            .filter(|_| pick(&b, &s, &cur, &cx(&h, &[])).expect("pick").id == 0)
            .count();
        // Only when both choices land on endpoint 0 (about 1 in 4).
        assert!(zero < 350, "{zero}");
    }

    #[test]
    fn ring_hash_is_stable_and_moves_few_keys() {
        let b = Balance::RingHash(HashKey::Header(http::HeaderName::from_static("x-k")));
        let five = set(5, &b);
        let four = EndpointSet::new(five.endpoints[..4].to_vec(), &b);
        let cur = AtomicUsize::new(0);
        let mut moved = 0;
        for k in 0..2000 {
            let mut h = HeaderMap::new();
            h.insert("x-k", k.to_string().parse().expect("value"));
            let a = pick(&b, &five, &cur, &cx(&h, &[])).expect("pick").id;
            assert_eq!(a, pick(&b, &five, &cur, &cx(&h, &[])).expect("pick").id);
            if a != pick(&b, &four, &cur, &cx(&h, &[])).expect("pick").id {
                moved += 1;
            }
        }
        assert!(moved <= 600, "{moved} of 2000 moved");
    }

    #[test]
    fn finds_cookies() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; sid=xyz".parse().expect("value"));
        assert_eq!(cookie(&h, "sid"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
