//! Per-thread spare buffers. An idle connection gives its read and write
//! buffers back here and takes them again when its next request arrives,
//! so a busy connection does not allocate per request and an idle one holds
//! none. A few dozen are kept per thread; the rest are freed.

use std::cell::RefCell;

use bytes::BytesMut;

/// Room for a typical request head.
pub const READ_CAPACITY: usize = 8 * 1024;
const WRITE_CAPACITY: usize = 4 * 1024;
/// Spare buffers kept per worker thread, of each kind.
const KEEP: usize = 64;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static WRITE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
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
    }
}
