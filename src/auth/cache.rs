//! The verified-token cache: a repeated token costs a hash and a lookup, not
//! a signature check.
//!
//! Keyed by the SHA-256 of the token (the token itself is never stored).
//! An entry is valid until the token's `exp` (never past it: leeway is only
//! granted by a full verification) and only while the key that verified it
//! is still in its provider's key set; the caller checks the latter.
//! Bounded: when full, expired entries go first, then an arbitrary eighth.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

pub use super::claims::Claims;

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
    map: Mutex<HashMap<Digest, Entry, BuildHasherDefault<DigestHasher>>>,
}

/// A token's SHA-256, as a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digest([u8; 32]);

/// The digest already is a uniform hash: its first eight bytes are the
/// table hash (no second hashing). Only verified tokens are ever stored,
/// so nobody can fill the table with chosen digests.
impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Digest`; a plain FNV-1a keeps it a hasher.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
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
            map: Mutex::new(HashMap::default()),
        }
    }

    pub fn get(&self, hash: &[u8; 32], now: u64) -> Option<Entry> {
        let key = Digest(*hash);
        let mut map = self.map.lock().ok()?;
        match map.get(&key) {
            Some(e) if now < e.expires_at => Some(e.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, hash: &[u8; 32]) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&Digest(*hash));
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
            let drop: Vec<Digest> = map
                .keys()
                .take((self.capacity / 8).max(1))
                .copied()
                .collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(Digest(hash), entry);
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
            claims: Arc::new(Claims::parse("{}".into()).expect("claims")),
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
