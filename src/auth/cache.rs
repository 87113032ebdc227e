//! The verified-token cache: a repeated token costs a hash and a lookup, not
//! a signature check.
//!
//! Keyed by the SHA-256 of the token (the token itself is never stored).
//! An entry is valid until the token's `exp` (never past it: leeway is only
//! granted by a full verification) and only while the key that verified it
//! is still in its provider's key set; the caller checks the latter.
//! Bounded: when full, expired entries go first, then an arbitrary eighth.
//!
//! Admission: a token enters on its second verification, not its first. A
//! small direct-mapped table remembers the digests of tokens verified once
//! (the "doorkeeper" of TinyLFU, as in Caffeine); a token seen only once
//! (a one-off client, a scan of distinct valid tokens) never takes a slot,
//! so it cannot push out the tokens that come back. A repeated token pays
//! one more verification in its lifetime.

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
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Digest, Entry, BuildHasherDefault<DigestHasher>>,
    /// Tags of digests verified once and not admitted yet (0: empty slot).
    /// Allocated on the first insertion: an idle gateway holds none of it.
    seen: Vec<u64>,
}

/// The doorkeeper has one slot per cache entry, rounded up to a power of
/// two, and at least and at most these many (8 MiB: a `cache_size` of
/// millions does not allocate in proportion on its first insertion).
const SEEN_MIN_SLOTS: usize = 64;
const SEEN_MAX_SLOTS: usize = 1 << 20;

impl Inner {
    /// Whether a verified token with `digest` may enter the cache: true on
    /// its second sighting within the doorkeeper's memory.
    fn admit(&mut self, digest: &[u8; 32], capacity: usize) -> bool {
        if self.seen.is_empty() {
            let slots = capacity
                .checked_next_power_of_two()
                .unwrap_or(SEEN_MAX_SLOTS)
                .clamp(SEEN_MIN_SLOTS, SEEN_MAX_SLOTS);
            self.seen = vec![0; slots];
        }
        // Bytes 8..24 of the digest: independent of the table hash (0..8).
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&digest[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let tag = word(8) | 1;
        let slot = (word(16) as usize) & (self.seen.len() - 1);
        if self.seen[slot] == tag {
            self.seen[slot] = 0;
            true
        } else {
            self.seen[slot] = tag;
            false
        }
    }
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

/// The token's SHA-256, with the same code as HS256's HMAC (`sha2`): a
/// cold HMAC token runs one SHA-256 implementation, not two, so one less
/// block of code competes for the instruction cache.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, hash: &[u8; 32], now: u64) -> Option<Entry> {
        let key = Digest(*hash);
        let mut inner = self.inner.lock().ok()?;
        let map = &mut inner.map;
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
        if let Ok(mut inner) = self.inner.lock() {
            inner.map.remove(&Digest(*hash));
        }
    }

    /// Caches a verified token's entry, from the token's second
    /// verification on (see the module's note on admission).
    pub fn insert(&self, hash: [u8; 32], entry: Entry, now: u64) {
        if self.capacity == 0 || now >= entry.expires_at {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.admit(&hash, self.capacity) {
            return;
        }
        let map = &mut inner.map;
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
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
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

    /// Inserts as the gateway does after each verification of the token.
    fn verified_twice(c: &TokenCache, h: [u8; 32], e: Entry, now: u64) {
        c.insert(h, e.clone(), now);
        c.insert(h, e, now);
    }

    #[test]
    fn token_hash_is_sha256() {
        let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"a.b.c");
        assert_eq!(token_hash("a.b.c").as_slice(), want.as_ref());
        let abc = token_hash("abc");
        assert_eq!(&abc[..4], &[0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn bounded_and_expiring() {
        let c = TokenCache::new(16);
        for i in 0..100u32 {
            verified_twice(&c, token_hash(&i.to_string()), entry(1000), 10);
        }
        assert!(c.len() <= 16);
        assert!(!c.is_empty());
        let h = token_hash("t");
        verified_twice(&c, h, entry(20), 10);
        assert!(c.get(&h, 19).is_some());
        assert!(c.get(&h, 20).is_none());
        verified_twice(&c, h, entry(20), 25);
        assert!(c.get(&h, 21).is_none());
    }

    #[test]
    fn a_token_enters_on_its_second_verification() {
        let c = TokenCache::new(16);
        let h = token_hash("t");
        c.insert(h, entry(1000), 10);
        assert!(c.get(&h, 11).is_none());
        assert_eq!(c.len(), 0);
        c.insert(h, entry(1000), 10);
        assert!(c.get(&h, 11).is_some());
        // Any configured size: the doorkeeper's table is bounded.
        let huge = TokenCache::new(usize::MAX);
        verified_twice(&huge, h, entry(1000), 10);
        assert!(huge.get(&h, 11).is_some());
        let off = TokenCache::new(0);
        verified_twice(&off, h, entry(1000), 10);
        assert!(off.get(&h, 11).is_none());
    }

    #[test]
    fn tokens_seen_once_do_not_push_out_cached_ones() {
        let c = TokenCache::new(16);
        let kept: Vec<[u8; 32]> = (0..16u32)
            .map(|i| token_hash(&format!("kept-{i}")))
            .collect();
        for h in &kept {
            verified_twice(&c, *h, entry(1000), 10);
        }
        assert_eq!(c.len(), 16);
        for i in 0..10_000u32 {
            c.insert(token_hash(&format!("once-{i}")), entry(1000), 10);
        }
        assert_eq!(c.len(), 16);
        assert!(kept.iter().all(|h| c.get(h, 11).is_some()));
    }
}
