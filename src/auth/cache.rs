//! The verified-token cache: a repeated token costs a hash and a lookup, not
//! a signature check.
//!
//! Keyed by the SHA-256 of the token (the token itself is never stored).
//! An entry is valid until the token's `exp` (never past it: leeway is only
//! granted by a full verification) and only while the key that verified it
//! is still in its provider's key set; the caller checks the latter.
//! Bounded: when full, expired entries go first, then an arbitrary eighth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// Verified claims, shared between the cache and requests.
#[derive(Debug)]
pub struct Claims(pub Map<String, Value>);

#[derive(Debug, Clone)]
pub struct Entry {
    pub provider: usize,
    pub key_fingerprint: u64,
    /// Unix seconds; the entry is dead from this second on.
    pub expires_at: u64,
    pub claims: Arc<Claims>,
}

#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

pub fn token_hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &[u8; 32], now: u64) -> Option<Entry> {
        let mut map = self.map.lock().ok()?;
        match map.get(hash) {
            Some(e) if now < e.expires_at => Some(e.clone()),
            Some(_) => {
                map.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, hash: &[u8; 32]) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(hash);
        }
    }

    pub fn insert(&self, hash: [u8; 32], entry: Entry, now: u64) {
        if self.capacity == 0 || now >= entry.expires_at {
            return;
        }
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= self.capacity {
            map.retain(|_, e| now < e.expires_at);
        }
        if map.len() >= self.capacity {
            let drop: Vec<[u8; 32]> = map
                .keys()
                .take((self.capacity / 8).max(1))
                .copied()
                .collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(hash, entry);
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(expires_at: u64) -> Entry {
        Entry {
            provider: 0,
            key_fingerprint: 1,
            expires_at,
            claims: Arc::new(Claims(Map::new())),
        }
    }

    #[test]
    fn bounded_and_expiring() {
        let c = TokenCache::new(16);
        for i in 0..100u32 {
            c.insert(token_hash(&i.to_string()), entry(1000), 10);
        }
        assert!(c.len() <= 16);
        let h = token_hash("t");
        c.insert(h, entry(20), 10);
        assert!(c.get(&h, 19).is_some());
        assert!(c.get(&h, 20).is_none());
        c.insert(h, entry(20), 25);
        assert!(c.get(&h, 21).is_none());
    }
}
