//! Strict base64url decoding (RFC 4648 section 5, no padding) of a token's
//! three segments: the same answers as the `base64` crate's
//! `URL_SAFE_NO_PAD` engine (tested against it below), in about half its
//! instructions.
//!
//! Four characters make three bytes. Each character is looked up in a
//! table of its sextet already shifted to its place in the 24-bit group,
//! so a group is four loads and three ORs. A character outside the
//! alphabet (padding `=` included) has every bit of the top byte set in
//! its entry; the ORed groups are checked once, at the end.
//!
//! Refused like the crate refuses: a length of 1 modulo 4, any byte
//! outside `A-Z a-z 0-9 - _`, and a last character whose unused low bits
//! are not zero (a second spelling of the same bytes).

/// Not base64url this decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Where a character's bits go: the value of `c` in `v << shift`, or
/// `BAD` when `c` is not in the alphabet.
const BAD: u32 = 0xff00_0000;

const fn sextet(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => (c - b'A') as u32,
        b'a'..=b'z' => (c - b'a') as u32 + 26,
        b'0'..=b'9' => (c - b'0') as u32 + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    })
}

const fn table(shift: u32) -> [u32; 256] {
    let mut t = [BAD; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = sextet(c as u8) {
            t[c] = v << shift;
        }
        c += 1;
    }
    t
}

/// One table per position in a group of four characters.
static TABLES: [[u32; 256]; 4] = [table(18), table(12), table(6), table(0)];

/// The number of bytes `len` characters decode to; `None` for a length
/// no unpadded base64 text has (1 modulo 4).
pub fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        0 => Some(len / 4 * 3),
        r => Some(len / 4 * 3 + r - 1),
    }
}

/// Decodes `input` into the start of `out` (at least
/// [`decoded_len`] bytes long); returns the number of bytes written.
pub fn decode_into(input: &[u8], out: &mut [u8]) -> Result<usize, Invalid> {
    let n = decoded_len(input.len()).ok_or(Invalid)?;
    let out = out.get_mut(..n).ok_or(Invalid)?;
    let [t0, t1, t2, t3] = &TABLES;
    let group = |g: &[u8]| {
        t0[usize::from(g[0])]
            | t1[usize::from(g[1])]
            | t2[usize::from(g[2])]
            | t3[usize::from(g[3])]
    };
    let mut seen = 0u32;
    // Eight characters (two groups, six bytes) a step, then the last group.
    let mut pairs = input.chunks_exact(8);
    let mut dst = out.chunks_exact_mut(6);
    for (g, d) in (&mut pairs).zip(&mut dst) {
        let (v, w) = (group(&g[..4]), group(&g[4..]));
        seen |= v | w;
        let both = (u64::from(v) << 24 | u64::from(w)).to_be_bytes();
        d.copy_from_slice(&both[2..]);
    }
    let mut groups = pairs.remainder().chunks_exact(4);
    let mut dst = dst.into_remainder().chunks_exact_mut(3);
    for (g, d) in (&mut groups).zip(&mut dst) {
        let v = group(g);
        seen |= v;
        let [_, b0, b1, b2] = v.to_be_bytes();
        d.copy_from_slice(&[b0, b1, b2]);
    }
    let tail = groups.remainder();
    let rest = dst.into_remainder();
    match *tail {
        [] => {}
        [a, b] => {
            let v = t0[usize::from(a)] | t1[usize::from(b)];
            seen |= v;
            // The second character's low four bits are unused: zero.
            seen |= u32::from(v & 0xf000 != 0) << 31;
            if let [d] = rest {
                *d = (v >> 16) as u8;
            }
        }
        [a, b, c] => {
            let v = t0[usize::from(a)] | t1[usize::from(b)] | t2[usize::from(c)];
            seen |= v;
            // The third character's low two bits are unused: zero.
            seen |= u32::from(v & 0xc0 != 0) << 31;
            if let [d0, d1] = rest {
                *d0 = (v >> 16) as u8;
                *d1 = (v >> 8) as u8;
            }
        }
        _ => return Err(Invalid),
    }
    if seen & BAD != 0 {
        return Err(Invalid);
    }
    Ok(n)
}

/// Decodes `input` into a new vector.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, Invalid> {
    let mut out = vec![0; decoded_len(input.len()).ok_or(Invalid)?];
    decode_into(input, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn decodes_what_the_crate_decodes() {
        for text in [
            "",
            "Zg",
            "Zm8",
            "Zm9v",
            "Zm9vYg",
            "Zm9vYmE",
            "Zm9vYmFy",
            "-_-_",
            "eyJhbGciOiJIUzI1NiJ9",
        ] {
            assert_eq!(
                decode(text.as_bytes()).ok(),
                URL_SAFE_NO_PAD.decode(text).ok(),
                "{text}"
            );
        }
        assert_eq!(decode(b"Zm9vYmFy").expect("valid"), b"foobar");
    }

    #[test]
    fn refuses_what_the_crate_refuses() {
        for text in [
            "Z",
            "Zm9vY",
            "Zg==",
            "Zm8=",
            "Zh",
            "Zm9",
            "Zm+v",
            "Zm/v",
            "Zm9v\n",
            " Zm9",
            "Zm.v",
            "Zm9v\u{e9}",
        ] {
            assert_eq!(decode(text.as_bytes()), Err(Invalid), "{text}");
            assert!(URL_SAFE_NO_PAD.decode(text).is_err(), "{text}");
        }
        let mut short = [0u8; 2];
        assert_eq!(decode_into(b"Zm9v", &mut short), Err(Invalid));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Any bytes, any text drawn near the alphabet: the same answer as
        /// the crate, byte for byte, accepted or refused.
        #[test]
        fn same_answer_as_the_crate(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            text in "[A-Za-z0-9_=+/.-]{0,40}",
        ) {
            let encoded = URL_SAFE_NO_PAD.encode(&raw);
            proptest::prop_assert_eq!(decode(encoded.as_bytes()).ok(), Some(raw.clone()));
            proptest::prop_assert_eq!(decode(&raw).ok(), URL_SAFE_NO_PAD.decode(&raw).ok());
            proptest::prop_assert_eq!(decode(text.as_bytes()).ok(), URL_SAFE_NO_PAD.decode(&text).ok());
        }
    }
}
