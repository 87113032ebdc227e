//! The request body of an HTTP/1 connection, decoded while the upstream
//! reads it. The body borrows the connection's read half and buffer for as
//! long as it streams and hands both back when it reaches its end; a body
//! dropped before its end hands them back marked unfinished, and the
//! connection then closes (the unread rest can not be told apart from the
//! next request).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

use super::parse::Framing;
use crate::proxy::body::BodyError;
use crate::proxy::h1::buffers;
use crate::proxy::h1::decode::{Decoder, Step};

/// What a body borrows from its connection.
#[derive(Debug)]
pub struct Lent {
    pub read: OwnedReadHalf,
    pub buf: BytesMut,
}

/// Where a body puts back what it borrowed, and whether it was read to
/// its end (`false`: dropped early or failed; the connection must close).
pub type Slot = Arc<Mutex<Option<(Lent, bool)>>>;

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
            Framing::Length(n) => Decoder::length(n),
            Framing::Chunked => Decoder::ChunkSize,
        };
        let mut body = H1Body {
            lent: Some(lent),
            slot,
            decoder,
            max_trailer_bytes,
        };
        if body.decoder.is_done() {
            body.give_back(true);
        }
        body
    }

    fn give_back(&mut self, finished: bool) {
        if let Some(lent) = self.lent.take() {
            *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((lent, finished));
        }
    }

    fn fail(&mut self) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        // Framing lost: the connection can not be reused.
        self.give_back(false);
        self.decoder = Decoder::Done;
        Poll::Ready(Some(Err(BodyError::Client)))
    }
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
            let Some(lent) = this.lent.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut lent.buf, this.max_trailer_bytes) {
                Ok(Step::Frame(frame)) => {
                    if this.decoder.is_done() {
                        this.give_back(true);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(Step::End) => {
                    this.give_back(true);
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(_) => return this.fail(),
            }
            buffers::ready_to_read(&mut lent.buf);
            match ready!(pin!(lent.read.read_buf(&mut lent.buf)).poll(cx)) {
                Ok(0) | Err(_) => return this.fail(),
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        self.give_back(false);
    }
}
