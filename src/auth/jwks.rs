//! Remote JWKS: fetched at start with retries, refreshed in the background
//! (on the configured interval, sooner when `Cache-Control: max-age` says
//! so), refetched on an unknown `kid` at most once per minimum interval, and
//! never emptied by a failure: the last good set keeps serving while the
//! key server is down. `https` URLs go through [`super::tls`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, HOST};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::keys::{parse_jwks, KeySet};
use super::provider::JwksSource;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The live key set of one provider's JWKS URL.
#[derive(Debug)]
pub struct RemoteKeys {
    pub provider: Arc<str>,
    source: JwksSource,
    current: ArcSwapOption<KeySet>,
    /// Bumped on every successful fetch.
    generation: AtomicU64,
    /// Fetch attempts, successful or not (observability and tests).
    attempts: AtomicU64,
    last_attempt: Mutex<Option<Instant>>,
    /// Whether the last attempt failed: an unknown kid met while the key
    /// server is unreachable is our problem (503), not the token's (401).
    last_failed: AtomicBool,
    /// Serializes fetches so concurrent unknown kids cause one request.
    fetching: tokio::sync::Mutex<()>,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// What an unknown-kid refetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// A newer set is in place (fetched now or by someone else meanwhile).
    Updated,
    /// The last fetch was less than the minimum interval ago.
    RateLimited,
    /// The key server could not be reached or sent no usable set (now, or
    /// at the last attempt when it is too soon to ask again).
    Failed,
}

impl RemoteKeys {
    pub fn new(provider: Arc<str>, source: JwksSource) -> RemoteKeys {
        let connector = super::tls::connector(&source.tls, source.timeout);
        RemoteKeys {
            provider,
            source,
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            last_attempt: Mutex::new(None),
            last_failed: AtomicBool::new(false),
            fetching: tokio::sync::Mutex::new(()),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The current set, `None` until one was ever loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Carries a set over from the previous runtime (config reload).
    pub fn adopt(&self, set: Arc<KeySet>) {
        self.current.store(Some(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn since_last_attempt(&self) -> Option<Duration> {
        let last = self.last_attempt.lock().ok()?;
        last.map(|t| t.elapsed())
    }

    /// Fetches once; on success swaps the set in and returns the max-age.
    async fn refresh(&self) -> Result<Option<Duration>, String> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some(Instant::now());
        }
        let fetched = self.fetch().await;
        self.last_failed.store(fetched.is_err(), Ordering::Release);
        let (set, max_age) = fetched?;
        self.current.store(Some(Arc::new(set)));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(max_age)
    }

    async fn fetch(&self) -> Result<(KeySet, Option<Duration>), String> {
        let url = &self.source.url;
        let mut req = Request::get(url.clone());
        if let Some(a) = url.authority() {
            req = req.header(HOST, a.as_str());
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(self.source.timeout, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| format!("request failed: {}", with_causes(&e)))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("answered {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = tokio::time::timeout(
            self.source.timeout,
            Limited::new(resp.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| "timed out reading the body".to_string())?
        .map_err(|e| format!("reading the body failed: {e}"))?
        .to_bytes();
        let (keys, skipped) = parse_jwks(&body)?;
        for s in skipped {
            tracing::warn!(provider = %self.provider, "JWKS key skipped: {s}");
        }
        Ok((KeySet::new(keys), max_age))
    }

    /// Called when a token names a kid the set does not hold. `seen` is the
    /// generation the caller looked in.
    pub async fn refetch_for_unknown_kid(&self, seen: u64) -> Refetch {
        let _guard = self.fetching.lock().await;
        if self.generation() != seen {
            return Refetch::Updated;
        }
        if self
            .since_last_attempt()
            .is_some_and(|d| d < self.source.min_refetch)
        {
            // Too soon to ask again; if the last attempt failed, the key
            // server is unreachable and the kid may well be a new key.
            return if self.last_failed.load(Ordering::Acquire) {
                Refetch::Failed
            } else {
                Refetch::RateLimited
            };
        }
        match self.refresh().await {
            Ok(_) => Refetch::Updated,
            Err(e) => {
                tracing::warn!(provider = %self.provider, url = %self.source.url, "JWKS refetch failed: {e}");
                Refetch::Failed
            }
        }
    }

    /// Delay before the next background refresh after a success: the
    /// configured interval, shortened by `max-age` but never below the
    /// minimum refetch interval (so `max-age=0` can not make us hammer).
    fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        let s = &self.source;
        max_age
            .map_or(s.refresh, |m| m.max(s.min_refetch).min(s.refresh))
            .max(Duration::from_millis(100))
    }
}

/// An error and its causes: the client's own message ("client error
/// (Connect)") hides what failed, such as an untrusted TLS certificate.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Parses `max-age=N` from a Cache-Control value (`no-store`/`no-cache`
/// mean "do not rely on it": the configured interval applies).
fn max_age(v: &str) -> Option<Duration> {
    let mut out = None;
    for d in v.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return None;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            out = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    out
}

/// Keeps `keys` fresh until it is dropped (the runtime holding it was
/// replaced). Holds only a weak reference between fetches.
pub fn spawn_refresher(keys: &Arc<RemoteKeys>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(provider = %keys.provider, "no async runtime: JWKS keys load on first use");
        return;
    };
    let weak: Weak<RemoteKeys> = Arc::downgrade(keys);
    handle.spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let Some(keys) = weak.upgrade() else { return };
            let wait = {
                let _guard = keys.fetching.lock().await;
                match keys.refresh().await {
                    Ok(max_age) => {
                        if failures > 0 || keys.generation() == 1 {
                            tracing::info!(provider = %keys.provider, "JWKS loaded");
                        }
                        failures = 0;
                        keys.next_refresh(max_age)
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let kept = if keys.current().is_some() {
                            "keeping the last good key set"
                        } else {
                            "no key set loaded yet: requests get 503"
                        };
                        tracing::warn!(provider = %keys.provider, url = %keys.source.url, "JWKS fetch failed: {e}; {kept}");
                        let cap = keys.source.refresh.min(Duration::from_secs(30));
                        let backoff = Duration::from_millis(250)
                            .saturating_mul(1u32 << failures.min(8))
                            .min(cap);
                        backoff.max(Duration::from_millis(100))
                    }
                }
            };
            drop(keys);
            tokio::time::sleep(wait).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("public, max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store, max-age=60"), None);
        assert_eq!(max_age("public"), None);
    }
}
