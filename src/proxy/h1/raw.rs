//! An upstream HTTP/1 response's header lines, kept as they were received:
//! an HTTP/1 client gets them written straight from the upstream's bytes,
//! without a header map being built and torn down for every response.
//!
//! The parser (`httparse`) has already checked every line: names are
//! tokens, values hold no control characters other than tab (the same rules
//! as `http::HeaderValue`), so a line can be written as it is, and made into
//! a map entry when something needs one. A map is built only when the route
//! has response header rules or the client speaks HTTP/2 (see
//! [`RawHeaders::move_into`]); headers the gateway sets in the response's
//! own map replace the upstream's lines of the same name.

use std::cell::RefCell;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// What the gateway needs to know about a line, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Other,
    ContentLength,
    TransferEncoding,
    Connection,
    Date,
    /// Another hop-by-hop header (RFC 9110 7.6.1, plus the non-standard
    /// ones proxies have historically honoured).
    HopByHop,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    name: (u32, u32),
    value: (u32, u32),
    kind: Kind,
    /// False once the line was removed (hop-by-hop, named in `Connection`).
    keep: bool,
}

/// Spare line vectors, so a response allocates none.
const KEEP_SPARES: usize = 64;

thread_local! {
    static SPARES: RefCell<Vec<Vec<Line>>> = const { RefCell::new(Vec::new()) };
}

/// Header lines noted by [`RawHeaders::record`], waiting for their bytes.
pub struct Recorded(Vec<Line>);

impl Recorded {
    /// The lines over `head`: the bytes they were recorded in, frozen.
    pub fn over(self, head: Bytes) -> RawHeaders {
        RawHeaders {
            head,
            lines: self.0,
        }
    }
}

/// A response head's header lines over the head's own bytes.
pub struct RawHeaders {
    head: Bytes,
    lines: Vec<Line>,
}

impl std::fmt::Debug for RawHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawHeaders")
            .field("lines", &self.lines.len())
            .finish()
    }
}

impl Drop for RawHeaders {
    fn drop(&mut self) {
        let mut lines = std::mem::take(&mut self.lines);
        if lines.capacity() == 0 || lines.capacity() > 256 {
            return;
        }
        lines.clear();
        SPARES.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < KEEP_SPARES {
                s.push(lines);
            }
        });
    }
}

/// The kind of a header name, compared without regard to case.
fn kind_of(name: &[u8]) -> Kind {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        4 if is("date") => Kind::Date,
        7 if is("trailer") || is("upgrade") => Kind::HopByHop,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::HopByHop,
        14 if is("content-length") => Kind::ContentLength,
        16 if is("proxy-connection") => Kind::HopByHop,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        18 if is("proxy-authenticate") => Kind::HopByHop,
        19 if is("proxy-authorization") => Kind::HopByHop,
        _ => Kind::Other,
    }
}

fn span(base: usize, s: &[u8]) -> (u32, u32) {
    let start = s.as_ptr() as usize - base;
    (start as u32, (start + s.len()) as u32)
}

impl RawHeaders {
    /// Notes where each of `headers` sits in `buf` (the head, before it is
    /// split off and frozen: the parser still borrows it). Heads are far
    /// below 4 GiB (larger ones are refused), so offsets fit in `u32`.
    pub fn record(buf: &[u8], headers: &[httparse::Header<'_>]) -> Recorded {
        let base = buf.as_ptr() as usize;
        let mut lines = SPARES.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        lines.extend(headers.iter().map(|h| Line {
            name: span(base, h.name.as_bytes()),
            value: span(base, h.value),
            kind: kind_of(h.name.as_bytes()),
            keep: true,
        }));
        Recorded(lines)
    }

    fn bytes(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.head[start as usize..end as usize]
    }

    /// The values of the kept lines of `kind`, in order.
    pub fn values(&self, kind: Kind) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines
            .iter()
            .filter(move |l| l.keep && l.kind == kind)
            .map(|l| self.bytes(l.value))
    }

    pub fn has(&self, kind: Kind) -> bool {
        self.lines.iter().any(|l| l.keep && l.kind == kind)
    }

    /// Removes every line of `kind`.
    pub fn remove(&mut self, kind: Kind) {
        for l in &mut self.lines {
            if l.kind == kind {
                l.keep = false;
            }
        }
    }

    /// Removes every hop-by-hop line and every line named in `Connection`
    /// (except `Host` and `Content-Length`, which frame the message itself),
    /// like [`crate::proxy::headers::strip_hop_by_hop`] does for a map.
    pub fn strip_hop_by_hop(&mut self) {
        // `Connection: keep-alive` or `close` names nothing else.
        let names_others = self
            .values(Kind::Connection)
            .any(|v| !(v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")));
        if names_others {
            let named: Vec<Vec<u8>> = self
                .values(Kind::Connection)
                .flat_map(|v| v.split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|t| {
                    !t.is_empty()
                        && !t.eq_ignore_ascii_case(b"close")
                        && !t.eq_ignore_ascii_case(b"host")
                        && !t.eq_ignore_ascii_case(b"content-length")
                })
                .map(<[u8]>::to_vec)
                .collect();
            for i in 0..self.lines.len() {
                let name = self.bytes(self.lines[i].name);
                if named.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    self.lines[i].keep = false;
                }
            }
        }
        for l in &mut self.lines {
            if matches!(
                l.kind,
                Kind::Connection | Kind::TransferEncoding | Kind::HopByHop
            ) {
                l.keep = false;
            }
        }
    }

    /// The kept lines as (name, value, kind), in order.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8], Kind)> + '_ {
        self.lines
            .iter()
            .filter(|l| l.keep)
            .map(|l| (self.bytes(l.name), self.bytes(l.value), l.kind))
    }

    /// Moves the kept lines into `map`, after what it holds; a name the map
    /// already has (set by the gateway) keeps the map's value.
    pub fn move_into(mut self, map: &mut HeaderMap) {
        // First the lines the map replaces (before anything is appended:
        // an upstream's repeated lines must all go in).
        for i in 0..self.lines.len() {
            if self.lines[i].keep && in_map(map, self.bytes(self.lines[i].name)) {
                self.lines[i].keep = false;
            }
        }
        map.reserve(self.lines.len());
        for l in self.lines.iter().filter(|l| l.keep) {
            let (ns, ne) = l.name;
            let (vs, ve) = l.value;
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&self.head[ns as usize..ne as usize]),
                HeaderValue::from_maybe_shared(self.head.slice(vs as usize..ve as usize)),
            ) else {
                // Not reached: the parser's rules are the map's.
                continue;
            };
            map.append(name, value);
        }
    }
}

/// Whether `name` is one of the map's names (the map of a response is a
/// handful of headers the gateway set: compared one by one).
pub fn in_map(map: &HeaderMap, name: &[u8]) -> bool {
    !map.is_empty()
        && map
            .keys()
            .any(|k| k.as_str().as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(head: &'static [u8]) -> RawHeaders {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut slots);
        let n = match resp.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(n, head.len());
        RawHeaders::record(head, resp.headers).over(Bytes::from_static(head))
    }

    fn kept(r: &RawHeaders) -> Vec<String> {
        r.lines()
            .map(|(n, v, _)| {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn classifies_and_strips_hop_by_hop_and_connection_named() {
        let mut r = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nx-secret: 2\r\nDate: now\r\nX-Ok: yes\r\nTE: trailers\r\n\r\n");
        assert_eq!(
            r.values(Kind::ContentLength).collect::<Vec<_>>(),
            vec![&b"2"[..]]
        );
        assert!(r.has(Kind::Date));
        r.strip_hop_by_hop();
        assert_eq!(
            kept(&r),
            vec!["Content-Length: 2", "Date: now", "X-Ok: yes"]
        );
    }

    #[test]
    fn plain_connection_options_remove_only_hop_by_hop() {
        let mut r =
            raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\nupgrade: h2c\r\nserver: x\r\n\r\n");
        r.strip_hop_by_hop();
        assert_eq!(kept(&r), vec!["server: x"]);
    }

    #[test]
    fn moves_into_a_map_behind_what_the_gateway_set() {
        let r = raw(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Request-Id: upstream\r\nset-cookie: b=2\r\n\r\n");
        let mut map = HeaderMap::new();
        map.insert("x-request-id", HeaderValue::from_static("ours"));
        r.move_into(&mut map);
        assert_eq!(map["x-request-id"], "ours");
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, vec!["a=1", "b=2"]);
        assert!(in_map(&map, b"X-Request-ID"));
        assert!(!in_map(&map, b"date"));
    }
}
