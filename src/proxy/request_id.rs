//! X-Request-Id: kept when the client sent a sane one, generated otherwise;
//! sent upstream and back to the client.

use http::HeaderValue;

/// 1 to 128 characters from `A-Z a-z 0-9 - _ . :`; anything else (spaces,
/// quotes, control bytes, over-long values) is replaced.
pub fn is_sane(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// 32 lower-case hex characters from a fast non-cryptographic generator:
/// ids must be unique, not secret.
pub fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = fastrand::u128(..);
    let mut buf = [0u8; 32];
    for b in buf.iter_mut() {
        *b = HEX[(n & 0xF) as usize];
        n >>= 4;
    }
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("0"))
}

/// The id for a request: the client's if sane, else a new one. Marked
/// sensitive: over HTTP/2 a value unique to every request is sent as a
/// never-indexed literal instead of churning the HPACK table the stable
/// headers live in (no effect over HTTP/1).
pub fn for_request(incoming: Option<&HeaderValue>) -> HeaderValue {
    let mut id = match incoming {
        Some(v) if is_sane(v) => v.clone(),
        _ => generate(),
    };
    id.set_sensitive(true);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_and_replaces_the_rest() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(for_request(Some(&ok)), ok);
        for bad in ["", "a b", "<script>", "x\"y"] {
            let v = HeaderValue::from_str(bad).expect("value");
            let id = for_request(Some(&v));
            assert_ne!(id, v);
            assert!(is_sane(&id));
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).expect("value");
        assert_ne!(for_request(Some(&long)), long);
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(generate(), generate());
        assert_eq!(generate().len(), 32);
    }
}
