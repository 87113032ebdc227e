//! The request body of an HTTP/1 connection, decoded while the upstream
//! reads it. The body borrows the connection's read half and buffer for as
//! long as it streams and hands both back when it reaches its end; a body
//! dropped before its end keeps them, and the connection then closes (the
//! unread rest can not be told apart from the next request).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

use super::parse::Framing;
use crate::proxy::body::BodyError;

/// Room made in the buffer before each read.
pub const READ_CHUNK: usize = 8 * 1024;
/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

/// What a body borrows from its connection.
#[derive(Debug)]
pub struct Lent {
    pub read: OwnedReadHalf,
    pub buf: BytesMut,
}

/// Where a body puts back what it borrowed, and whether it was read to
/// its end (`false`: dropped early or failed; the connection must close).
pub type Slot = Arc<Mutex<Option<(Lent, bool)>>>;

/// Reads once from the socket into the buffer's spare room.
pub fn poll_fill(lent: &mut Lent, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    if lent.buf.capacity() - lent.buf.len() < 1024 {
        lent.buf.reserve(READ_CHUNK);
    }
    pin!(lent.read.read_buf(&mut lent.buf)).poll(cx)
}

#[derive(Debug)]
enum Decoder {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Done,
}

/// A request body streamed from an HTTP/1 connection.
#[derive(Debug)]
pub struct H1Body {
    lent: Option<Lent>,
    slot: Slot,
    decoder: Decoder,
    max_trailer_bytes: usize,
}

impl H1Body {
    pub fn new(lent: Lent, slot: Slot, framing: Framing, max_trailer_bytes: usize) -> H1Body {
        let decoder = match framing {
            Framing::None => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::ChunkSize,
        };
        let mut body = H1Body {
            lent: Some(lent),
            slot,
            decoder,
            max_trailer_bytes,
        };
        if matches!(body.decoder, Decoder::Done) {
            body.give_back(true);
        }
        body
    }

    fn give_back(&mut self, finished: bool) {
        if finished {
            self.decoder = Decoder::Done;
        }
        if let Some(lent) = self.lent.take() {
            *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((lent, finished));
        }
    }

    /// One step of decoding from what is buffered. `Ok(None)`: read more.
    fn decode(&mut self) -> Result<Option<Option<Frame<Bytes>>>, BodyError> {
        let Some(lent) = self.lent.as_mut() else {
            return Ok(Some(None));
        };
        let buf = &mut lent.buf;
        loop {
            match self.decoder {
                Decoder::Done => return Ok(Some(None)),
                Decoder::Length(rem) | Decoder::ChunkData(rem) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = rem.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    let left = rem - n;
                    self.decoder = match (&self.decoder, left) {
                        (Decoder::Length(_), 0) => Decoder::Done,
                        (Decoder::Length(_), l) => Decoder::Length(l),
                        (_, 0) => Decoder::ChunkEnd,
                        (_, l) => Decoder::ChunkData(l),
                    };
                    return Ok(Some(Some(Frame::data(data))));
                }
                Decoder::ChunkSize => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(BodyError::Client);
                        }
                        return Ok(None);
                    };
                    if nl > MAX_CHUNK_LINE {
                        return Err(BodyError::Client);
                    }
                    let size = chunk_size(&buf[..nl]).ok_or(BodyError::Client)?;
                    buf.advance(nl + 1);
                    self.decoder = if size == 0 {
                        Decoder::Trailers
                    } else {
                        Decoder::ChunkData(size)
                    };
                }
                Decoder::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError::Client);
                    }
                    buf.advance(2);
                    self.decoder = Decoder::ChunkSize;
                }
                Decoder::Trailers => {
                    if buf.len() >= 2 && &buf[..2] == b"\r\n" {
                        buf.advance(2);
                        self.decoder = Decoder::Done;
                        continue;
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if buf.len() > self.max_trailer_bytes {
                            return Err(BodyError::Client);
                        }
                        return Ok(None);
                    };
                    if end > self.max_trailer_bytes {
                        return Err(BodyError::Client);
                    }
                    let trailers = parse_trailers(&buf[..end + 4])?;
                    buf.advance(end + 4);
                    self.decoder = Decoder::Done;
                    return Ok(Some(Some(Frame::trailers(trailers))));
                }
            }
        }
    }
}

/// `1*HEXDIG [ BWS ";" ext ] CR` (the LF already split off); at most 16
/// digits, so the size always fits.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r")?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let mut size = 0u64;
    for &c in &line[..digits] {
        size = size << 4 | u64::from((c as char).to_digit(16)?);
    }
    let rest = &line[digits..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    match rest.first() {
        None => Some(size),
        Some(b';')
            if rest
                .iter()
                .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b)) =>
        {
            Some(size)
        }
        Some(_) => None,
    }
}

fn parse_trailers(raw: &[u8]) -> Result<HeaderMap, BodyError> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let parsed = match httparse::parse_headers(raw, &mut slots) {
        Ok(httparse::Status::Complete((_, h))) => h,
        _ => return Err(BodyError::Client),
    };
    let mut map = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| BodyError::Client)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| BodyError::Client)?;
        map.append(name, value);
    }
    Ok(map)
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.decode() {
                Ok(Some(frame)) => {
                    if matches!(this.decoder, Decoder::Done) {
                        this.give_back(true);
                    }
                    return Poll::Ready(frame.map(Ok));
                }
                Ok(None) => {}
                Err(e) => {
                    // Framing lost: the connection can not be reused.
                    this.give_back(false);
                    this.decoder = Decoder::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let Some(lent) = this.lent.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(poll_fill(lent, cx)) {
                Ok(0) | Err(_) => {
                    this.give_back(false);
                    this.decoder = Decoder::Done;
                    return Poll::Ready(Some(Err(BodyError::Client)));
                }
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.decoder, Decoder::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        self.give_back(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"5\r"), Some(5));
        assert_eq!(chunk_size(b"1aF\r"), Some(0x1af));
        assert_eq!(chunk_size(b"5;name=value\r"), Some(5));
        assert_eq!(chunk_size(b"5 ;x\r"), Some(5));
        assert_eq!(chunk_size(b"ffffffffffffffff\r"), Some(u64::MAX));
        for bad in [
            &b"5"[..],
            b"\r",
            b"zz\r",
            b"-1\r",
            b"5 5\r",
            b"0x5\r",
            b"fffffffffffffffff\r",
            b"5;\x00\r",
        ] {
            assert_eq!(chunk_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn trailers_parse() {
        let t = parse_trailers(b"X-Sum: 1\r\nX-Other: 2\r\n\r\n").unwrap();
        assert_eq!(t["x-sum"], "1");
        assert!(parse_trailers(b"X Sum: 1\r\n\r\n").is_err());
    }
}
