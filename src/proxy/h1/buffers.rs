//! Per-thread spare buffers. An idle connection gives its read and write
//! buffers back here and takes them again when its next request arrives,
//! so a busy connection does not allocate per request and an idle one holds
//! none. A few hundred are kept per thread; the rest are freed.

use std::cell::RefCell;

use bytes::BytesMut;
use http::HeaderMap;

/// Room for a typical request head.
pub const READ_CAPACITY: usize = 8 * 1024;
const WRITE_CAPACITY: usize = 4 * 1024;
/// Spare buffers kept per worker thread, of each kind: enough for a few
/// hundred requests in flight at once (64 left most connections of a c256
/// load allocating 8 + 4 KiB per request). At most about 3 MiB of buffers
/// per thread stay after a burst.
pub const KEEP: usize = 256;

/// Header maps larger than this (entries) are freed, not kept.
const MAP_KEEP_CAPACITY: usize = 64;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static WRITE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty header map with room for `n` entries, from a spare if there
/// is one. (A new map is two allocations, one too large for the
/// allocator's per-thread cache: a spare is the cheapest map there is.)
pub fn header_map(n: usize) -> HeaderMap {
    let mut map = MAPS.with(|m| m.borrow_mut().pop()).unwrap_or_default();
    map.reserve(n);
    map
}

/// Gives a header map back once its request or response head has been
/// written out.
pub fn recycle_map(mut map: HeaderMap) {
    if map.capacity() > MAP_KEEP_CAPACITY {
        return;
    }
    map.clear();
    MAPS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < KEEP {
            m.push(map);
        }
    });
}

/// Makes sure `buf` has room to read into, from a spare if it has none.
pub fn ready_to_read(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        if let Some(spare) = READ.with(|r| r.borrow_mut().pop()) {
            *buf = spare;
        }
    }
    if buf.capacity() - buf.len() < 1024 {
        // Reclaims the whole allocation when nothing else refers to it.
        buf.reserve(READ_CAPACITY);
    }
}

/// Gives an empty read buffer back; `buf` is left without capacity.
pub fn release_read(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        return;
    }
    let mut b = std::mem::take(buf);
    b.clear();
    READ.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() < KEEP {
            r.push(b);
        }
    });
}

/// A write buffer, from a spare if there is one.
pub fn ready_to_write(out: &mut Vec<u8>) {
    if out.capacity() == 0 {
        *out = WRITE
            .with(|w| w.borrow_mut().pop())
            .unwrap_or_else(|| Vec::with_capacity(WRITE_CAPACITY));
    }
    out.clear();
}

/// Gives the write buffer back; `out` is left without capacity. Buffers
/// grown far beyond the usual size are freed instead.
pub fn release_write(out: &mut Vec<u8>) {
    if out.capacity() == 0 {
        return;
    }
    let mut b = std::mem::take(out);
    if b.capacity() > 16 * WRITE_CAPACITY {
        return;
    }
    b.clear();
    WRITE.with(|w| {
        let mut w = w.borrow_mut();
        if w.len() < KEEP {
            w.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_are_reused() {
        let mut buf = BytesMut::new();
        ready_to_read(&mut buf);
        assert!(buf.capacity() >= READ_CAPACITY);
        buf.extend_from_slice(b"abc");
        let _ = buf.split_to(3);
        release_read(&mut buf);
        assert_eq!(buf.capacity(), 0);
        ready_to_read(&mut buf);
        assert!(buf.capacity() >= 1024 && buf.is_empty());

        let mut out = Vec::new();
        ready_to_write(&mut out);
        assert!(out.capacity() >= WRITE_CAPACITY);
        out.extend_from_slice(b"x");
        release_write(&mut out);
        assert_eq!(out.capacity(), 0);
        ready_to_write(&mut out);
        assert!(out.is_empty() && out.capacity() >= WRITE_CAPACITY);

        let mut map = header_map(4);
        map.insert("x-a", http::HeaderValue::from_static("1"));
        let cap = map.capacity();
        recycle_map(map);
        let again = header_map(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap);
    }
}
