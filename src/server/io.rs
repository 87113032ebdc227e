//! Socket wrappers: a client socket with its listener's connection permit,
//! and a socket with bytes already read put back in front of it (which
//! keeps the permit for as long as the socket lives).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// A client socket and its listener's connection permit.
pub struct PermitStream {
    pub inner: TcpStream,
    pub permit: OwnedSemaphorePermit,
}

/// A stream whose first bytes were already read (protocol detection, or
/// bytes after an upgrade request): they are read again first.
pub struct Rewind<S> {
    pre: Bytes,
    inner: S,
    /// Released when the socket is dropped (a WebSocket tunnel or an
    /// HTTP/2 connection still counts toward `max_connections`).
    _permit: Option<OwnedSemaphorePermit>,
}

impl<S> Rewind<S> {
    pub fn new(pre: Bytes, inner: S) -> Rewind<S> {
        Rewind {
            pre,
            inner,
            _permit: None,
        }
    }
}

impl Rewind<TcpStream> {
    /// A client socket, its permit, and the bytes already read from it.
    pub fn client(pre: Bytes, stream: PermitStream) -> Rewind<TcpStream> {
        Rewind {
            pre,
            inner: stream.inner,
            _permit: Some(stream.permit),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre[..n]);
            this.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn rewound_bytes_come_first() {
        let inner: &[u8] = b" world";
        let mut r = Rewind::new(Bytes::from_static(b"hello"), inner);
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
