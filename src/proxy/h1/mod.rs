//! HTTP/1.1 wire pieces shared by the gateway's server and its upstream
//! client: the body decoder (length, chunked with trailers, until close)
//! and per-thread spare buffers.

pub mod buffers;
pub mod decode;

use std::cell::Cell;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

thread_local! {
    static LINES: Cell<Vec<[usize; 4]>> = const { Cell::new(Vec::new()) };
}

/// Where each header line of a parsed head sits in the read buffer, so the
/// map can be built from the frozen head without copying values (and the
/// offsets need no zeroed array per request: the vector is reused).
pub struct Lines(Vec<[usize; 4]>);

impl Lines {
    pub fn of(buf: &[u8], headers: &[httparse::Header<'_>]) -> Lines {
        let base = buf.as_ptr() as usize;
        let mut v = LINES.with(Cell::take);
        v.clear();
        v.extend(headers.iter().map(|h| {
            [
                h.name.as_ptr() as usize - base,
                h.name.len(),
                h.value.as_ptr() as usize - base,
                h.value.len(),
            ]
        }));
        Lines(v)
    }

    /// The header map, values sliced from `head`; `extra` spare room.
    pub fn into_map(self, head: &Bytes, extra: usize) -> Result<HeaderMap, decode::Malformed> {
        let mut map = buffers::header_map(self.0.len() + extra);
        let mut ok = true;
        for &[n, nl, v, vl] in &self.0 {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&head[n..n + nl]),
                HeaderValue::from_maybe_shared(head.slice(v..v + vl)),
            ) else {
                ok = false;
                break;
            };
            map.append(name, value);
        }
        LINES.with(|l| l.set(self.0));
        if ok {
            Ok(map)
        } else {
            Err(decode::Malformed)
        }
    }
}
