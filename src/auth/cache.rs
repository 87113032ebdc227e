//! The verified-token cache: a repeated token costs two hashes and a
//! lookup, not a signature check.
//!
//! Found by a fast keyed hash of the token (foldhash, seeded at random per
//! cache), proven by its SHA-256: an entry holds the SHA-256 of its token
//! (the token itself is never stored), and a lookup is a hit only when the
//! token's SHA-256 is the entry's. The SHA-256 is computed only when a
//! lookup finds an entry or a token is admitted, so a token that is not
//! cached (every new token, every request of a scan of distinct tokens)
//! costs the fast hash alone, not both. A fast-hash collision (chance or
//! chosen) is a miss or an eviction, never a wrong identity.
//!
//! An entry is valid until the token's `exp` (never past it: leeway is only
//! granted by a full verification) and only while the key that verified it
//! is still in its provider's key set; the caller checks the latter.
//! Bounded: when full, expired entries go first, then an arbitrary eighth.
//!
//! Admission: a token enters on its second verification, not its first. A
//! small direct-mapped table remembers the fast hashes of tokens verified
//! once (the "doorkeeper" of TinyLFU, as in Caffeine); a token seen only
//! once (a one-off client, a scan of distinct valid tokens) never takes a
//! slot, so it cannot push out the tokens that come back. A repeated token
//! pays one more verification in its lifetime.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
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
    /// Seeded at random: nobody outside can aim tokens at one slot.
    hasher: foldhash::fast::RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Fast hash -> (the token's SHA-256, its entry).
    map: HashMap<u64, (Digest, Entry), BuildHasherDefault<Identity>>,
    /// Tags of tokens verified once and not admitted yet (0: empty slot).
    /// Allocated on the first insertion: an idle gateway holds none of it.
    seen: Vec<u64>,
}

/// The doorkeeper has one slot per cache entry, rounded up to a power of
/// two, and at least and at most these many (8 MiB: a `cache_size` of
/// millions does not allocate in proportion on its first insertion).
const SEEN_MIN_SLOTS: usize = 64;
const SEEN_MAX_SLOTS: usize = 1 << 20;

impl Inner {
    /// Whether a verified token with fast hash `h` may enter the cache:
    /// true on its second sighting within the doorkeeper's memory.
    fn admit(&mut self, h: u64, capacity: usize) -> bool {
        if self.seen.is_empty() {
            let slots = capacity
                .checked_next_power_of_two()
                .unwrap_or(SEEN_MAX_SLOTS)
                .clamp(SEEN_MIN_SLOTS, SEEN_MAX_SLOTS);
            self.seen = vec![0; slots];
        }
        // The slot from the high bits (the map's buckets use the low ones),
        // the whole hash as the tag.
        let tag = h | 1;
        let slot = (h >> 32) as usize & (self.seen.len() - 1);
        if self.seen[slot] == tag {
            self.seen[slot] = 0;
            true
        } else {
            self.seen[slot] = tag;
            false
        }
    }
}

/// A token's SHA-256: the proof that an entry is this token's.
type Digest = [u8; 32];

/// The map's keys already are seeded uniform hashes: no second hashing.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `u64` keys; a plain FNV-1a keeps it a hasher.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

pub fn token_hash(token: &str) -> Digest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCache {
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            hasher: foldhash::fast::RandomState::default(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn fast_hash(&self, token: &str) -> u64 {
        self.hasher.hash_one(token.as_bytes())
    }

    /// The entry of `token`, if it is cached and alive at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<Entry> {
        let h = self.fast_hash(token);
        let (digest, entry) = {
            let mut inner = self.inner.lock().ok()?;
            let map = &mut inner.map;
            match map.get(&h) {
                Some((d, e)) if now < e.expires_at => (*d, e.clone()),
                Some(_) => {
                    // Dead, whichever token it is: it goes.
                    map.remove(&h);
                    return None;
                }
                None => return None,
            }
        };
        // Outside the lock: the proof that the entry is this token's.
        (token_hash(token) == digest).then_some(entry)
    }

    /// Drops `token`'s entry (its key is gone).
    pub fn remove(&self, token: &str) {
        let h = self.fast_hash(token);
        let digest = token_hash(token);
        if let Ok(mut inner) = self.inner.lock() {
            if inner.map.get(&h).is_some_and(|(d, _)| *d == digest) {
                inner.map.remove(&h);
            }
        }
    }

    /// Caches a verified token's entry, from the token's second
    /// verification on (see the module's note on admission).
    pub fn insert(&self, token: &str, entry: Entry, now: u64) {
        if self.capacity == 0 || now >= entry.expires_at {
            return;
        }
        let h = self.fast_hash(token);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.admit(h, self.capacity) {
            return;
        }
        let map = &mut inner.map;
        if map.len() >= self.capacity {
            map.retain(|_, (_, e)| now < e.expires_at);
        }
        if map.len() >= self.capacity {
            let drop: Vec<u64> = map
                .keys()
                .take((self.capacity / 8).max(1))
                .copied()
                .collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(h, (token_hash(token), entry));
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
    fn verified_twice(c: &TokenCache, h: &str, e: Entry, now: u64) {
        c.insert(h, e.clone(), now);
        c.insert(h, e, now);
    }

    #[test]
    fn bounded_and_expiring() {
        let c = TokenCache::new(16);
        for i in 0..100u32 {
            verified_twice(&c, &i.to_string(), entry(1000), 10);
        }
        assert!(c.len() <= 16);
        assert!(!c.is_empty());
        let h = "t";
        verified_twice(&c, h, entry(20), 10);
        assert!(c.get(h, 19).is_some());
        assert!(c.get(h, 20).is_none());
        verified_twice(&c, h, entry(20), 25);
        assert!(c.get(h, 21).is_none());
    }

    #[test]
    fn a_token_enters_on_its_second_verification() {
        let c = TokenCache::new(16);
        let h = "t";
        c.insert(h, entry(1000), 10);
        assert!(c.get(h, 11).is_none());
        assert_eq!(c.len(), 0);
        c.insert(h, entry(1000), 10);
        assert!(c.get(h, 11).is_some());
        // Any configured size: the doorkeeper's table is bounded.
        let huge = TokenCache::new(usize::MAX);
        verified_twice(&huge, h, entry(1000), 10);
        assert!(huge.get(h, 11).is_some());
        let off = TokenCache::new(0);
        verified_twice(&off, h, entry(1000), 10);
        assert!(off.get(h, 11).is_none());
    }

    #[test]
    fn a_fast_hash_collision_is_a_miss() {
        let c = TokenCache::new(16);
        verified_twice(&c, "a", entry(1000), 10);
        assert!(c.get("a", 11).is_some());
        // "b" lands on "a"'s entry (as a fast-hash collision would): the
        // entry's SHA-256 is a's, so b does not get a's identity.
        {
            let mut inner = c.inner.lock().expect("lock");
            let moved = inner.map.remove(&c.fast_hash("a")).expect("cached");
            inner.map.insert(c.fast_hash("b"), moved);
        }
        assert!(c.get("b", 11).is_none());
        c.remove("b");
        assert_eq!(c.len(), 1, "an entry that is not b's is not b's to remove");
    }

    #[test]
    fn tokens_seen_once_do_not_push_out_cached_ones() {
        let c = TokenCache::new(16);
        let kept: Vec<String> = (0..16u32).map(|i| format!("kept-{i}")).collect();
        for h in &kept {
            verified_twice(&c, h, entry(1000), 10);
        }
        assert_eq!(c.len(), 16);
        for i in 0..10_000u32 {
            c.insert(&format!("once-{i}"), entry(1000), 10);
        }
        assert_eq!(c.len(), 16);
        assert!(kept.iter().all(|h| c.get(h, 11).is_some()));
    }
}
