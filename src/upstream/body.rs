//! The body the upstream client sends: the client's body streamed once, or
//! a buffered copy that can be replayed on a retry.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::proxy::body::{BodyError, RequestBody};

pub enum UpstreamBody {
    Stream(RequestBody),
    /// Whole body in memory (or none); cheap to clone for another try.
    Full(Option<Bytes>),
}

impl UpstreamBody {
    pub fn empty() -> UpstreamBody {
        UpstreamBody::Full(None)
    }

    pub fn full(b: Bytes) -> UpstreamBody {
        UpstreamBody::Full((!b.is_empty()).then_some(b))
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamBody::Stream(_) => f.write_str("UpstreamBody::Stream"),
            UpstreamBody::Full(b) => write!(
                f,
                "UpstreamBody::Full({:?} bytes)",
                b.as_ref().map(Bytes::len)
            ),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Stream(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Stream(b) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Stream(b) => b.size_hint(),
            UpstreamBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            UpstreamBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}
