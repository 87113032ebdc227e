//! The RSA public operation (`s^e mod n`) on AVX-512 IFMA, for RS256/384/512
//! (PKCS#1 v1.5) and PS256/384/512 (PSS) signatures.
//!
//! A cold RS256 check is about half of what a request with a new token costs
//! the gateway, and nearly all of that is the RSA public operation: for
//! e = 65537, 17 Montgomery multiplications of 2048-bit numbers. aws-lc does
//! them 64 bits at a time in general-purpose registers. CPUs with AVX-512
//! IFMA (Ice Lake and later, Zen 4 and later) multiply eight 52-bit limbs per
//! instruction; the Montgomery multiplication here keeps a 2048-bit number in
//! five vector registers (40 limbs of 52 bits) and runs word by word
//! ("almost Montgomery multiplication": results stay below twice the
//! modulus, no subtraction per step), as Gueron and Krasnov describe for
//! IFMA.
//!
//! Only public values go through this code (the signature, the modulus and
//! the exponent), so it does not need to be constant-time; it must be exact.
//! It is used only after aws-lc has accepted the key for the algorithm (so
//! the key policy is aws-lc's), only for moduli of up to 4096 bits, and only
//! when the CPU reports the features; in every other case aws-lc verifies.
//! The unit tests check it against a reference modular exponentiation and
//! against aws-lc's signatures.

// Off x86_64 no vector context is ever built: the limb helpers go unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

/// The DigestInfo prefix of each hash in a PKCS#1 v1.5 encoding (RFC 8017, 9.2 note 1).
const DIGEST_INFO_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA384: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DIGEST_INFO_SHA512: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// The hash of an RSA signature (and of PSS's mask generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

impl RsaHash {
    fn digest_info(self) -> &'static [u8; 19] {
        match self {
            RsaHash::Sha256 => &DIGEST_INFO_SHA256,
            RsaHash::Sha384 => &DIGEST_INFO_SHA384,
            RsaHash::Sha512 => &DIGEST_INFO_SHA512,
        }
    }

    fn digest(self, message: &[u8]) -> aws_lc_rs::digest::Digest {
        use aws_lc_rs::digest;
        digest::digest(self.algorithm(), message)
    }

    fn algorithm(self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest;
        match self {
            RsaHash::Sha256 => &digest::SHA256,
            RsaHash::Sha384 => &digest::SHA384,
            RsaHash::Sha512 => &digest::SHA512,
        }
    }
}

use super::keys::strip_zeros;

/// A public key ready for the vector path. Built only where it can run.
pub struct RsaPublic {
    /// The modulus, big-endian, without leading zeros: `k` bytes.
    n_be: Box<[u8]>,
    e: u64,
    ctx: Ctx,
}

enum Ctx {
    #[cfg(target_arch = "x86_64")]
    L5(Box<imp::Mont<5>>),
    #[cfg(target_arch = "x86_64")]
    L8(Box<imp::Mont<8>>),
    #[cfg(target_arch = "x86_64")]
    L10(Box<imp::Mont<10>>),
}

impl RsaPublic {
    /// The key for the vector path, or `None` when this CPU has no AVX-512
    /// IFMA, the modulus is even or longer than 4096 bits, or the exponent
    /// is even, below 3 or above 2^33 - 1 (aws-lc's limits).
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaPublic> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        if n.is_empty() || n[n.len() - 1] & 1 == 0 || e.is_empty() || e.len() > 5 {
            return None;
        }
        let e = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if e < 3 || e & 1 == 0 || e >= 1 << 33 {
            return None;
        }
        let key = RsaPublic {
            n_be: n.into(),
            e,
            ctx: Ctx::new(n)?,
        };
        // A known answer before first use: (n - 1)^e = (-1)^e = n - 1 for
        // odd e. Should the vector code ever be wrong on some CPU or build,
        // the key stays on aws-lc instead. (n is odd: no borrow.)
        let mut minus_one = n.to_vec();
        minus_one[n.len() - 1] -= 1;
        if key.public_op(&minus_one).as_deref() != Some(&minus_one[..]) {
            tracing::error!("the AVX-512 IFMA RSA self-check failed: RSA keys stay on aws-lc");
            return None;
        }
        Some(key)
    }

    /// `s^e mod n` as `k` big-endian bytes, or `None` when the signature is
    /// not `k` bytes long or not below the modulus (RFC 8017, 5.2.2).
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.n_be.len() || signature >= &self.n_be[..] {
            return None;
        }
        let words = self.ctx.mod_exp(signature, self.e);
        Some(words_to_be(&words, self.n_be.len()))
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017, 8.2.2): the signature's
    /// public operation must equal the encoding of the message's digest.
    pub fn verify_pkcs1(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let digest = hash.digest(message);
        let digest = digest.as_ref();
        let info = hash.digest_info();
        let t_len = info.len() + digest.len();
        // 0x00 0x01 PS(0xff, at least 8) 0x00 T
        if em.len() < t_len + 11 {
            return false;
        }
        let ps_end = em.len() - t_len - 1;
        em[0] == 0
            && em[1] == 1
            && em[2..ps_end].iter().all(|&b| b == 0xff)
            && em[ps_end] == 0
            && em[ps_end + 1..ps_end + 1 + info.len()] == info[..]
            && em[ps_end + 1 + info.len()..] == *digest
    }

    /// RSASSA-PSS verification (RFC 8017, 8.1.2 and 9.1.2) with MGF1 over
    /// the same hash and a salt as long as the hash (RFC 7518, 3.5; what
    /// aws-lc requires for PS256/384/512 too).
    pub fn verify_pss(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::digest;
        let Some(m) = self.public_op(signature) else {
            return false;
        };
        let mod_bits = self.n_be.len() * 8 - self.n_be[0].leading_zeros() as usize;
        let em_bits = mod_bits - 1;
        let em_len = em_bits.div_ceil(8);
        // EM is the last em_len bytes; a k-byte result has one more only
        // when the modulus bits are a multiple of 8, and it must be zero.
        let (head, em) = m.split_at(m.len() - em_len);
        let h_len = hash.algorithm().output_len();
        let s_len = h_len;
        if head.iter().any(|&b| b != 0) || em_len < h_len + s_len + 2 || em[em_len - 1] != 0xbc {
            return false;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let h = &rest[..h_len];
        let top_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8 >> top_bits;
        if masked_db[0] & !top_mask != 0 {
            return false;
        }
        // DB = maskedDB xor MGF1(H, len): PS (zeros), 0x01, salt.
        let mut db = masked_db.to_vec();
        for (counter, chunk) in (0u32..).zip(db.chunks_mut(h_len)) {
            let mut ctx = digest::Context::new(hash.algorithm());
            ctx.update(h);
            ctx.update(&counter.to_be_bytes());
            let mask = ctx.finish();
            for (b, m) in chunk.iter_mut().zip(mask.as_ref()) {
                *b ^= m;
            }
        }
        db[0] &= top_mask;
        let ps_len = em_len - h_len - s_len - 2;
        if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 1 {
            return false;
        }
        let salt = &db[ps_len + 1..];
        let mut ctx = digest::Context::new(hash.algorithm());
        ctx.update(&[0u8; 8]);
        ctx.update(hash.digest(message).as_ref());
        ctx.update(salt);
        ctx.finish().as_ref() == h
    }
}

impl Ctx {
    #[cfg(target_arch = "x86_64")]
    fn new(n: &[u8]) -> Option<Ctx> {
        let bits = n.len() * 8 - n[0].leading_zeros() as usize;
        if bits > 4096 {
            return None;
        }
        // Almost Montgomery multiplication needs 4n < R = 2^(52 * 8 * L).
        Some(match bits + 2 {
            b if b <= 416 * 5 => Ctx::L5(Box::new(imp::Mont::new(n)?)),
            b if b <= 416 * 8 => Ctx::L8(Box::new(imp::Mont::new(n)?)),
            b if b <= 416 * 10 => Ctx::L10(Box::new(imp::Mont::new(n)?)),
            _ => return None,
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn new(_n: &[u8]) -> Option<Ctx> {
        None
    }

    /// `s^e mod n` as little-endian 64-bit words.
    fn mod_exp(&self, s: &[u8], e: u64) -> Vec<u64> {
        match self {
            #[cfg(target_arch = "x86_64")]
            Ctx::L5(m) => m.mod_exp(s, e),
            #[cfg(target_arch = "x86_64")]
            Ctx::L8(m) => m.mod_exp(s, e),
            #[cfg(target_arch = "x86_64")]
            Ctx::L10(m) => m.mod_exp(s, e),
            #[cfg(not(target_arch = "x86_64"))]
            _ => {
                let _ = (s, e);
                unreachable!("no vector context is built off x86_64")
            }
        }
    }
}

/// Big-endian bytes as little-endian 64-bit words, `words` of them.
fn be_to_words(be: &[u8], words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words];
    for (i, &byte) in be.iter().rev().enumerate() {
        out[i / 8] |= u64::from(byte) << (8 * (i % 8));
    }
    out
}

/// Little-endian 64-bit words as `k` big-endian bytes (higher bytes dropped).
fn words_to_be(words: &[u64], k: usize) -> Vec<u8> {
    let mut out = vec![0u8; k];
    for (i, b) in out.iter_mut().rev().enumerate() {
        *b = (words.get(i / 8).copied().unwrap_or(0) >> (8 * (i % 8))) as u8;
    }
    out
}

/// `a >= b` for little-endian words of one length.
fn words_ge(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// `a -= b` for little-endian words of one length, `a >= b`.
fn words_sub(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        *x = d;
        borrow = b1 || b2;
    }
}

/// `a = 2a mod m` for `a < m`, little-endian words with a spare top bit.
fn words_double_mod(a: &mut [u64], m: &[u64]) {
    let mut carry = 0;
    for x in a.iter_mut() {
        let next = *x >> 63;
        *x = (*x << 1) | carry;
        carry = next;
    }
    if carry != 0 || words_ge(a, m) {
        words_sub(a, m);
    }
}

const MASK52: u64 = (1 << 52) - 1;

/// 52-bit limbs (little-endian, `limbs` of them) of a number in words.
fn words_to_limbs(words: &[u64], limbs: usize) -> Vec<u64> {
    (0..limbs)
        .map(|i| {
            let bit = 52 * i;
            let (w, s) = (bit / 64, bit % 64);
            let lo = words.get(w).copied().unwrap_or(0) >> s;
            let hi = match s {
                0 => 0,
                _ => words.get(w + 1).copied().unwrap_or(0) << (64 - s),
            };
            (lo | hi) & MASK52
        })
        .collect()
}

/// The number in 52-bit limbs (each below 2^52) as `words` 64-bit words.
fn limbs_to_words(limbs: &[u64], words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words + 1];
    for (i, &l) in limbs.iter().enumerate() {
        let bit = 52 * i;
        let (w, s) = (bit / 64, bit % 64);
        if w < out.len() {
            out[w] |= l << s;
        }
        if s > 12 && w + 1 < out.len() {
            out[w + 1] |= l >> (64 - s);
        }
    }
    out.truncate(words);
    out
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use super::{
        be_to_words, limbs_to_words, words_double_mod, words_ge, words_sub, words_to_limbs, MASK52,
    };

    /// A modulus in `L` vectors of eight 52-bit limbs, with R = 2^(416 L).
    pub struct Mont<const L: usize> {
        n: [[u64; 8]; L],
        /// R^2 mod n: multiplying by it enters the Montgomery domain.
        rr: [[u64; 8]; L],
        /// -n^-1 mod 2^52.
        k0: u64,
        /// The modulus in 64-bit words (for the final reduction).
        n_words: Vec<u64>,
    }

    fn split<const L: usize>(limbs: &[u64]) -> [[u64; 8]; L] {
        let mut out = [[0u64; 8]; L];
        for (i, &l) in limbs.iter().enumerate().take(8 * L) {
            out[i / 8][i % 8] = l;
        }
        out
    }

    impl<const L: usize> Mont<L> {
        /// `n`: odd, big-endian, 4n < 2^(416 L) (checked by the caller).
        /// `None` when this CPU lacks the features: a `Mont` exists only
        /// where its vector code can run.
        pub fn new(n: &[u8]) -> Option<Mont<L>> {
            if !(std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma"))
            {
                return None;
            }
            let words = 8 * L * 52 / 64 + 1;
            let n_words = be_to_words(n, words);
            // R^2 mod n by doubling: from the highest power of two below n.
            let bits = n.len() * 8 - n[0].leading_zeros() as usize;
            let mut rr = vec![0u64; words];
            rr[(bits - 1) / 64] = 1 << ((bits - 1) % 64);
            for _ in bits - 1..2 * 416 * L {
                words_double_mod(&mut rr, &n_words);
            }
            // Newton's iteration doubles the correct low bits each round.
            let n0 = n_words[0];
            let mut inv: u64 = 1;
            for _ in 0..6 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
            }
            Some(Mont {
                n: split(&words_to_limbs(&n_words, 8 * L)),
                rr: split(&words_to_limbs(&rr, 8 * L)),
                k0: inv.wrapping_neg() & MASK52,
                n_words,
            })
        }

        /// `s^e mod n` (`s < n`, big-endian) as little-endian 64-bit words.
        pub fn mod_exp(&self, s: &[u8], e: u64) -> Vec<u64> {
            let words = self.n_words.len();
            let s = split::<L>(&words_to_limbs(&be_to_words(s, words), 8 * L));
            // SAFETY: a `Mont` is only built (`Mont::new`) after
            // `is_x86_feature_detected!` reported avx512f and avx512ifma.
            #[allow(unsafe_code)]
            let limbs = unsafe { mod_exp_ifma(self, &s, e) };
            let flat: Vec<u64> = limbs.iter().flatten().copied().collect();
            let mut out = limbs_to_words(&flat, words);
            // The last multiplication leaves a value in [0, n].
            if words_ge(&out, &self.n_words) {
                words_sub(&mut out, &self.n_words);
            }
            out
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn load(x: &[u64; 8]) -> __m512i {
        _mm512_set_epi64(
            x[7] as i64,
            x[6] as i64,
            x[5] as i64,
            x[4] as i64,
            x[3] as i64,
            x[2] as i64,
            x[1] as i64,
            x[0] as i64,
        )
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn store(v: __m512i) -> [u64; 8] {
        let lo = _mm512_extracti64x4_epi64::<0>(v);
        let hi = _mm512_extracti64x4_epi64::<1>(v);
        [
            _mm256_extract_epi64::<0>(lo) as u64,
            _mm256_extract_epi64::<1>(lo) as u64,
            _mm256_extract_epi64::<2>(lo) as u64,
            _mm256_extract_epi64::<3>(lo) as u64,
            _mm256_extract_epi64::<0>(hi) as u64,
            _mm256_extract_epi64::<1>(hi) as u64,
            _mm256_extract_epi64::<2>(hi) as u64,
            _mm256_extract_epi64::<3>(hi) as u64,
        ]
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mod_exp_ifma<const L: usize>(m: &Mont<L>, s: &[[u64; 8]; L], e: u64) -> [[u64; 8]; L] {
        let n: [__m512i; L] = std::array::from_fn(|k| load(&m.n[k]));
        let rr: [__m512i; L] = std::array::from_fn(|k| load(&m.rr[k]));
        let s: [__m512i; L] = std::array::from_fn(|k| load(&s[k]));
        let k0 = _mm512_set1_epi64(m.k0 as i64);
        // x = s R mod n (below 2n); then left-to-right square and multiply.
        let x = amm(&s, &rr, &n, k0);
        let mut t = x;
        let top = 63 - e.leading_zeros();
        for bit in (0..top).rev() {
            t = amm(&t, &t, &n, k0);
            if (e >> bit) & 1 == 1 {
                t = amm(&t, &x, &n, k0);
            }
        }
        // Out of the Montgomery domain: t * 1 * R^-1.
        let mut one = [_mm512_setzero_si512(); L];
        one[0] = _mm512_maskz_set1_epi64(1, 1);
        let t = amm(&t, &one, &n, k0);
        std::array::from_fn(|k| store(t[k]))
    }

    /// Almost Montgomery multiplication: a b R^-1 mod n, below 2n when `a`
    /// and `b` are below 2n, limbs normalized (each below 2^52).
    ///
    /// Word by word over `b`: add a b_i, add n y with y chosen so the lowest
    /// limb becomes a multiple of 2^52, drop that limb (keeping its carry).
    /// The running sum is kept in two parts so that little waits for y: `q`
    /// holds the low halves of n y, `p` everything else (the a b_i terms,
    /// which never wait, and the high halves of n y, added one step late);
    /// the chain from one y to the next is then one multiply-add and a shift
    /// (or two multiply-adds) and the lowest limb's sum.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn amm<const L: usize>(
        a: &[__m512i; L],
        b: &[__m512i; L],
        n: &[__m512i; L],
        k0: __m512i,
    ) -> [__m512i; L] {
        let zero = _mm512_setzero_si512();
        let mut p = [zero; L];
        let mut q = [zero; L];
        // Lane 0: what the dropped limbs carried into the lowest limb.
        let mut c = zero;
        // The previous step's y: its high halves are added one step late,
        // after the next a b_i terms, so they are the last thing the next y
        // waits for.
        let mut y = zero;
        for bv in b {
            for j in 0..8 {
                let bi = _mm512_permutexvar_epi64(_mm512_set1_epi64(j), *bv);
                for k in 0..L {
                    p[k] = _mm512_madd52lo_epu64(p[k], a[k], bi);
                    p[k] = _mm512_madd52hi_epu64(p[k], n[k], y);
                }
                let rest = _mm512_add_epi64(p[0], c);
                let low = _mm512_add_epi64(rest, q[0]);
                y = _mm512_madd52lo_epu64(
                    zero,
                    _mm512_broadcastq_epi64(_mm512_castsi512_si128(low)),
                    k0,
                );
                for k in 0..L {
                    q[k] = _mm512_madd52lo_epu64(q[k], n[k], y);
                }
                // The lowest limb is now a multiple of 2^52: keep its carry.
                c = _mm512_srli_epi64::<52>(_mm512_add_epi64(rest, q[0]));
                shift_down(&mut p);
                shift_down(&mut q);
                // The high halves belong one limb up: where the shift put it.
                for k in 0..L {
                    p[k] = _mm512_madd52hi_epu64(p[k], a[k], bi);
                }
            }
        }
        for k in 0..L {
            p[k] = _mm512_madd52hi_epu64(p[k], n[k], y);
        }
        let mut r: [__m512i; L] = std::array::from_fn(|k| _mm512_add_epi64(p[k], q[k]));
        r[0] = _mm512_mask_add_epi64(r[0], 1, r[0], c);
        normalize(&mut r);
        r
    }

    /// Drops the lowest limb and moves every other one down by one.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn shift_down<const L: usize>(r: &mut [__m512i; L]) {
        for k in 0..L - 1 {
            r[k] = _mm512_alignr_epi64::<1>(r[k + 1], r[k]);
        }
        r[L - 1] = _mm512_alignr_epi64::<1>(_mm512_setzero_si512(), r[L - 1]);
    }

    /// Carries every limb's bits above 52 into the next limb until all
    /// limbs are below 2^52 (the value is below R: nothing leaves the top).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn normalize<const L: usize>(r: &mut [__m512i; L]) {
        let zero = _mm512_setzero_si512();
        let mask = _mm512_set1_epi64(MASK52 as i64);
        let above = _mm512_set1_epi64(!MASK52 as i64);
        loop {
            let hi: [__m512i; L] = std::array::from_fn(|k| _mm512_srli_epi64::<52>(r[k]));
            let mut prev = zero;
            for k in 0..L {
                let up = _mm512_alignr_epi64::<7>(hi[k], prev);
                prev = hi[k];
                r[k] = _mm512_add_epi64(_mm512_and_si512(r[k], mask), up);
            }
            let over = r
                .iter()
                .fold(0, |acc, v| acc | _mm512_test_epi64_mask(*v, above));
            if over == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{
        KeyPair as _, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256,
        RSA_PSS_SHA384, RSA_PSS_SHA512,
    };
    use num_bigint::BigUint;

    fn ifma() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// A deterministic stream of bytes (xorshift), so failures reproduce.
    fn bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn word_and_limb_conversions_round_trip() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for len in [1usize, 7, 8, 9, 255, 256, 384, 512] {
            let be = bytes(&mut seed, len);
            let words = be_to_words(&be, len.div_ceil(8) + 1);
            assert_eq!(words_to_be(&words, len), be);
            let limbs = words_to_limbs(&words, (len * 8).div_ceil(52) + 1);
            assert!(limbs.iter().all(|&l| l <= MASK52));
            assert_eq!(limbs_to_words(&limbs, words.len()), words);
        }
    }

    #[test]
    fn keys_the_vector_path_cannot_take_are_refused() {
        let odd = [0xc5u8; 256];
        assert!(
            RsaPublic::new(&[0xc4u8; 256], &[1, 0, 1]).is_none(),
            "even n"
        );
        assert!(RsaPublic::new(&odd, &[2]).is_none(), "even e");
        assert!(RsaPublic::new(&odd, &[1]).is_none(), "e = 1");
        assert!(
            RsaPublic::new(&odd, &[2, 0, 0, 0, 1]).is_none(),
            "e >= 2^33"
        );
        assert!(
            RsaPublic::new(&[0xc5u8; 513], &[1, 0, 1]).is_none(),
            "n > 4096 bits"
        );
        assert_eq!(RsaPublic::new(&odd, &[1, 0, 1]).is_some(), ifma());
    }

    /// The vector exponentiation against num-bigint's, for random bases,
    /// moduli of every supported size class and several exponents.
    #[test]
    fn public_operation_matches_a_reference_exponentiation() {
        if !ifma() {
            eprintln!("this CPU has no AVX-512 IFMA: the vector path is never used here");
            return;
        }
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for bits in [2048usize, 2047, 2050, 3072, 2100, 4096, 4094, 1024, 512] {
            for e in [65537u64, 3, 17, (1 << 33) - 1] {
                let len = bits.div_ceil(8);
                let mut n = bytes(&mut seed, len);
                let extra = len * 8 - bits;
                n[0] = (n[0] | 0x80) >> extra;
                n[len - 1] |= 1;
                let key = RsaPublic::new(&n, &e.to_be_bytes()).expect("key");
                let big_n = BigUint::from_bytes_be(&n);
                for case in 0..4 {
                    let mut s = bytes(&mut seed, len);
                    match case {
                        0 => s[0] &= n[0] >> 1,
                        1 => s = vec![0; len],
                        2 => {
                            s = vec![0; len];
                            s[len - 1] = 1;
                        }
                        _ => {
                            // n - 1: the largest accepted signature.
                            s = (&big_n - 1u32).to_bytes_be();
                            s.splice(0..0, vec![0; len - s.len()]);
                        }
                    }
                    let want = BigUint::from_bytes_be(&s).modpow(&BigUint::from(e), &big_n);
                    let got = key.public_op(&s).expect("in range");
                    assert_eq!(
                        BigUint::from_bytes_be(&got),
                        want,
                        "bits {bits}, e {e}, case {case}"
                    );
                    assert_eq!(got.len(), len);
                }
                // Out of range: n itself, above n, wrong length.
                assert!(key.public_op(&n).is_none());
                assert!(key.public_op(&vec![0xff; len]).is_none());
                assert!(key.public_op(&n[1..]).is_none());
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random 2048-bit moduli and bases, including long runs of all-ones
        /// limbs (carries that ripple through the normalization).
        #[test]
        fn random_2048_bit_operations_match_the_reference(
            n in proptest::collection::vec(proptest::prelude::any::<u8>(), 256),
            s in proptest::collection::vec(proptest::prelude::any::<u8>(), 256),
            ones in 0usize..200,
        ) {
            if !ifma() {
                return Ok(());
            }
            let mut n = n;
            n[0] |= 0x80;
            n[255] |= 1;
            let mut s = s;
            for b in s.iter_mut().skip(8).take(ones) {
                *b = 0xff;
            }
            s[0] = n[0] - 1;
            let key = RsaPublic::new(&n, &[1, 0, 1]).expect("key");
            let want = BigUint::from_bytes_be(&s)
                .modpow(&BigUint::from(65537u32), &BigUint::from_bytes_be(&n));
            let got = key.public_op(&s).expect("in range");
            proptest::prop_assert_eq!(BigUint::from_bytes_be(&got), want);
        }
    }

    /// `n` and `e` of a DER `RSAPublicKey` (RFC 8017, A.1.1).
    fn der_rsa_public_key(der: &[u8]) -> (&[u8], &[u8]) {
        fn item(der: &[u8]) -> (&[u8], &[u8]) {
            let (len, at) = match der[1] {
                l if l < 0x80 => (l as usize, 2),
                l => {
                    let k = (l & 0x7f) as usize;
                    let len = der[2..2 + k].iter().fold(0, |a, &b| (a << 8) | b as usize);
                    (len, 2 + k)
                }
            };
            (&der[at..at + len], &der[at + len..])
        }
        let (seq, _) = item(der);
        let (n, rest) = item(seq);
        let (e, _) = item(rest);
        (n, e)
    }

    /// Signatures made by aws-lc verify, PKCS#1 v1.5 and PSS; any changed
    /// bit, message, hash or padding does not.
    #[test]
    fn signatures_from_aws_lc_verify() {
        if !ifma() {
            eprintln!("this CPU has no AVX-512 IFMA: the vector path is never used here");
            return;
        }
        let rng = SystemRandom::new();
        for size in [KeySize::Rsa2048, KeySize::Rsa3072, KeySize::Rsa4096] {
            let pair = KeyPair::generate(size).expect("generate");
            let public = pair.public_key();
            let (n, e) = der_rsa_public_key(public.as_ref());
            let key = RsaPublic::new(n, e).expect("vector key");
            let check = |hash, pss, msg: &[u8], sig: &[u8]| match pss {
                false => key.verify_pkcs1(hash, msg, sig),
                true => key.verify_pss(hash, msg, sig),
            };
            for (pad, hash, pss) in [
                (&RSA_PKCS1_SHA256, RsaHash::Sha256, false),
                (&RSA_PKCS1_SHA384, RsaHash::Sha384, false),
                (&RSA_PKCS1_SHA512, RsaHash::Sha512, false),
                (&RSA_PSS_SHA256, RsaHash::Sha256, true),
                (&RSA_PSS_SHA384, RsaHash::Sha384, true),
                (&RSA_PSS_SHA512, RsaHash::Sha512, true),
            ] {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0";
                pair.sign(pad, &rng, msg, &mut sig).expect("sign");
                assert!(check(hash, pss, msg, &sig), "{hash:?} pss {pss}");
                assert!(!check(hash, !pss, msg, &sig), "{hash:?} other padding");
                assert!(!check(hash, pss, b"eyJhbGciOiJSUzI1NiJ9.e30", &sig));
                let other = if hash == RsaHash::Sha256 {
                    RsaHash::Sha512
                } else {
                    RsaHash::Sha256
                };
                assert!(!check(other, pss, msg, &sig), "{hash:?} as {other:?}");
                for i in [0, sig.len() / 2, sig.len() - 1] {
                    let mut bad = sig.clone();
                    bad[i] ^= 0x10;
                    assert!(!check(hash, pss, msg, &bad), "bit flipped at {i}");
                }
                assert!(!check(hash, pss, msg, &sig[1..]));
            }
        }
    }
}
