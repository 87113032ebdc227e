//! HTTP/1.1 wire pieces shared by the gateway's server and its upstream
//! client: the body decoder (length, chunked with trailers, until close)
//! and per-thread spare buffers.

pub mod buffers;
pub mod decode;
pub mod raw;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{HeaderMap, Version};
use tokio::time::{Instant, Sleep};

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

/// Readies a connection's kept timer to fire no later than `until`. It is
/// moved only when it would fire late or has fired: a timer set for an
/// earlier deadline fires early and is moved on then (see [`within`]), so a
/// busy connection touches the timer wheel about once per timeout period
/// instead of once per request.
pub fn arm(timer: Pin<&mut Sleep>, until: Instant) {
    if timer.is_elapsed() || timer.deadline() > until {
        timer.reset(until);
    }
}

/// `fut` raced against `until` on a connection's kept timer; `None` when
/// the time ran out first. The future is polled first.
pub async fn within<F: Future>(
    mut timer: Pin<&mut Sleep>,
    until: Instant,
    fut: F,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    arm(timer.as_mut(), until);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= until {
                return Poll::Ready(None);
            }
            timer.as_mut().reset(until);
        }
        Poll::Pending
    })
    .await
}

/// What a message's `Connection` header says: whether the connection stays
/// open after it (HTTP/1.1 unless `close`; HTTP/1.0 only with
/// `keep-alive`), and whether it carries the `upgrade` option.
pub fn connection_options(version: Version, headers: &HeaderMap) -> (bool, bool) {
    if !crate::proxy::headers::has(headers, &CONNECTION) {
        return (version == Version::HTTP_11, false);
    }
    connection_options_of(
        version,
        headers
            .get_all(CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// [`connection_options`] over the values of `Connection` lines.
pub fn connection_options_of<'a>(
    version: Version,
    values: impl Iterator<Item = &'a [u8]>,
) -> (bool, bool) {
    let (mut close, mut keep, mut upgrade) = (false, false, false);
    for v in values {
        for t in v.split(|&c| c == b',') {
            let t = t.trim_ascii();
            close |= t.eq_ignore_ascii_case(b"close");
            keep |= t.eq_ignore_ascii_case(b"keep-alive");
            upgrade |= t.eq_ignore_ascii_case(b"upgrade");
        }
    }
    (!close && (version == Version::HTTP_11 || keep), upgrade)
}

/// A Content-Length value: one to nineteen ASCII digits (fits in a u64),
/// nothing else.
pub fn parse_length(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"18446744073709551615"), None);
        assert_eq!(
            parse_length(b"1234567890123456789"),
            Some(1234567890123456789)
        );
        assert_eq!(parse_length(b" 1"), None);
        assert_eq!(parse_length(b"+1"), None);
    }
}
