//! Message body decoding (RFC 9112 sections 6 and 7), strict: a chunk-size
//! line is hex digits with optional extensions and a CRLF, sizes fit in 64
//! bits, trailers are real header lines within a size limit. Anything else
//! is an error and the connection can not be reused.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use http_body::Frame;

/// Longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

/// Where a body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    /// A response without length: everything until the upstream closes.
    UntilClose,
    Done,
}

/// One step of decoding.
#[derive(Debug)]
pub enum Step {
    Frame(Frame<Bytes>),
    /// The body has ended (the decoder is `Done`).
    End,
    /// Read more bytes first.
    More,
}

/// The body's framing is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Decoder {
    pub fn length(n: u64) -> Decoder {
        if n == 0 {
            Decoder::Done
        } else {
            Decoder::Length(n)
        }
    }

    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(*n),
            Decoder::Done => Some(0),
            _ => None,
        }
    }

    /// The peer closed: the end of an until-close body, else an error.
    pub fn eof(&mut self) -> Result<(), Malformed> {
        match self {
            Decoder::UntilClose | Decoder::Done => {
                *self = Decoder::Done;
                Ok(())
            }
            _ => Err(Malformed),
        }
    }

    /// Decodes what `buf` holds. Data frames are split off the buffer
    /// without copying.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        max_trailer_bytes: usize,
    ) -> Result<Step, Malformed> {
        loop {
            match *self {
                Decoder::Done => return Ok(Step::End),
                Decoder::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    return Ok(Step::Frame(Frame::data(buf.split().freeze())));
                }
                Decoder::Length(rem) | Decoder::ChunkData(rem) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = rem.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    let left = rem - n;
                    *self = match (*self, left) {
                        (Decoder::Length(_), 0) => Decoder::Done,
                        (Decoder::Length(_), l) => Decoder::Length(l),
                        (_, 0) => Decoder::ChunkEnd,
                        (_, l) => Decoder::ChunkData(l),
                    };
                    return Ok(Step::Frame(Frame::data(data)));
                }
                Decoder::ChunkSize => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(Malformed);
                        }
                        return Ok(Step::More);
                    };
                    if nl > MAX_CHUNK_LINE {
                        return Err(Malformed);
                    }
                    let size = chunk_size(&buf[..nl]).ok_or(Malformed)?;
                    buf.advance(nl + 1);
                    *self = if size == 0 {
                        Decoder::Trailers
                    } else {
                        Decoder::ChunkData(size)
                    };
                }
                Decoder::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Malformed);
                    }
                    buf.advance(2);
                    *self = Decoder::ChunkSize;
                }
                Decoder::Trailers => {
                    if buf.len() >= 2 && &buf[..2] == b"\r\n" {
                        buf.advance(2);
                        *self = Decoder::Done;
                        continue;
                    }
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if buf.len() > max_trailer_bytes {
                            return Err(Malformed);
                        }
                        return Ok(Step::More);
                    };
                    if end > max_trailer_bytes {
                        return Err(Malformed);
                    }
                    let trailers = parse_trailers(&buf[..end + 4])?;
                    buf.advance(end + 4);
                    *self = Decoder::Done;
                    return Ok(Step::Frame(Frame::trailers(trailers)));
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

fn parse_trailers(raw: &[u8]) -> Result<HeaderMap, Malformed> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let parsed = match httparse::parse_headers(raw, &mut slots) {
        Ok(httparse::Status::Complete((_, h))) => h,
        _ => return Err(Malformed),
    };
    let mut map = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| Malformed)?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder, input: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>, bool), Malformed> {
        let mut buf = BytesMut::from(input);
        let mut data = Vec::new();
        let mut trailers = None;
        loop {
            match d.decode(&mut buf, 1024)? {
                Step::Frame(f) => match f.into_data() {
                    Ok(b) => data.extend_from_slice(&b),
                    Err(f) => trailers = f.into_trailers().ok(),
                },
                Step::End => return Ok((data, trailers, true)),
                Step::More => return Ok((data, trailers, false)),
            }
        }
    }

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
    fn chunked_with_trailers_and_leftover() {
        let mut d = Decoder::ChunkSize;
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 1\r\n\r\nNEXT"[..]);
        let mut data = Vec::new();
        let mut trailers = None;
        loop {
            match d.decode(&mut buf, 1024).unwrap() {
                Step::Frame(f) => match f.into_data() {
                    Ok(b) => data.extend_from_slice(&b),
                    Err(f) => trailers = f.into_trailers().ok(),
                },
                Step::End => break,
                Step::More => panic!("complete input"),
            }
        }
        assert_eq!(data, b"abcde");
        assert_eq!(trailers.unwrap()["x-sum"], "1");
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn partial_input_asks_for_more() {
        let (data, _, done) = all(&mut Decoder::ChunkSize, b"5\r\nhel").unwrap();
        assert_eq!((data.as_slice(), done), (&b"hel"[..], false));
        let (data, _, done) = all(&mut Decoder::length(5), b"hel").unwrap();
        assert_eq!((data.as_slice(), done), (&b"hel"[..], false));
    }

    #[test]
    fn broken_framing_is_an_error() {
        assert!(all(&mut Decoder::ChunkSize, b"3\r\nabcX\r\n").is_err());
        assert!(all(&mut Decoder::ChunkSize, b"0\r\nX Sum: 1\r\n\r\n").is_err());
        let mut d = Decoder::Length(3);
        assert!(d.eof().is_err());
        let mut d = Decoder::UntilClose;
        assert!(d.eof().is_ok() && d.is_done());
    }

    #[test]
    fn trailers_over_the_limit_are_refused() {
        let mut input = b"0\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', 2000));
        assert!(all(&mut Decoder::ChunkSize, &input).is_err());
    }
}
