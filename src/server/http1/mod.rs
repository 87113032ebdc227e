//! HTTP/1.1 client connections, served by the gateway's own codec.
//!
//! One task per connection runs requests one after another:
//!
//! 1. wait for the next head: an idle connection holds no buffer (it waits
//!    for readability first), the idle timeout runs until a first byte, the
//!    header read timeout from there;
//! 2. parse it ([`parse`]): framing decided strictly, values sliced from the
//!    read buffer without copies; a bad head gets its JSON error and the
//!    connection closes;
//! 3. run the pipeline; a request body ([`body::H1Body`]) borrows the read
//!    half and buffer while the upstream reads it; without a body the task
//!    watches the socket meanwhile, and a client that goes away cancels the
//!    request;
//! 4. write the response ([`write`]): head and the first body bytes in one
//!    write when they are ready together, chunked when the length is
//!    unknown; a `101` hands the socket to the tunnel;
//! 5. keep the connection when both sides allow it and the request body was
//!    read to its end; otherwise close, after reading what the client still
//!    sends for a moment (so it sees the answer instead of a reset).

pub mod body;
pub mod parse;
pub mod write;

use std::future::{poll_fn, Future};
use std::io;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode, Version};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use self::body::{H1Body, Lent, Slot};
use self::parse::{Framing, Head};
use self::write::{ConnHeader, Out};
use super::io::{PermitStream, Rewind};
use super::recycled::Recycled;
use super::Gateway;
use crate::errors::GatewayError;
use crate::pipeline::{self, ConnInfo};
use crate::proxy::body::{ClientBody, ProxyBody};
use crate::proxy::h1::buffers;

/// Bodies up to this size are copied next to the head (one write); larger
/// ones go out with a vectored write.
const COPY_MAX: usize = 16 * 1024;
/// How long and how much a closing connection reads and discards.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// The connection limits, read once from the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub header_read: Duration,
    pub max_header_bytes: usize,
}

/// A client socket handed to the tunnel after `101 Switching Protocols`,
/// with any bytes the client sent after its request in front.
pub struct Upgraded(pub Rewind<TcpStream>);

/// Put in a request's extensions when the client asks to upgrade; the
/// pipeline takes it to tunnel a WebSocket. (Extensions must be `Clone`:
/// the receiver is shared, and taken once.)
#[derive(Clone)]
pub struct OnUpgrade(Arc<std::sync::Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// The client's socket, once the `101` has been written to it.
    pub async fn upgraded(self) -> Option<Upgraded> {
        let rx = self.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        rx.await.ok()
    }
}

struct Conn {
    /// `None` while a request body has it.
    read: Option<OwnedReadHalf>,
    write: OwnedWriteHalf,
    permit: OwnedSemaphorePermit,
    /// Where a request body hands back the read half; made on first use.
    slot: Option<Slot>,
    /// The longest a response write may wait for the client to read.
    stall: Duration,
    out: Vec<u8>,
}

enum Next {
    Head(Box<Head>),
    Closed,
    Refuse(GatewayError),
}

/// Serves an HTTP/1 connection. `buf` holds bytes already read (protocol
/// detection); `started` is when the connection was accepted.
pub async fn serve(
    gw: Arc<Gateway>,
    info: ConnInfo,
    stream: PermitStream,
    mut buf: BytesMut,
    limits: Limits,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let PermitStream { inner, permit } = stream;
    let (read, write) = inner.into_split();
    let mut conn = Conn {
        read: Some(read),
        write,
        permit,
        slot: None,
        stall: limits.idle,
        out: Vec::new(),
    };
    // The first request: its whole head within the header deadline (or the
    // idle timeout, if shorter) from accept. Later ones: a first byte within
    // the idle timeout, then the head within the header deadline.
    let mut idle_until = started + limits.header_read.min(limits.idle);
    let mut head_until = Some(started + limits.header_read);
    // The connection's one timer for both deadlines, and one wait for the
    // drain signal, made once and kept across requests (see `next_head`).
    let mut timer = std::pin::pin!(tokio::time::sleep_until(idle_until));
    let draining = stop.clone();
    let mut stopped = std::pin::pin!(async move {
        let _ = stop.changed().await;
    });
    loop {
        let head = match next_head(
            &mut conn,
            &mut buf,
            limits,
            (idle_until, head_until),
            timer.as_mut(),
            (&draining, stopped.as_mut()),
        )
        .await
        {
            Next::Head(h) => h,
            Next::Closed => return,
            Next::Refuse(e) => {
                tracing::debug!(error = e.code(), "request head refused");
                let id = crate::proxy::request_id::for_request(None);
                if crate::observability::access_log_enabled() {
                    crate::observability::access_log_refused(info.peer, &id, e.status(), e.code());
                }
                let mut resp = e.to_response(id.to_str().unwrap_or(""));
                resp.headers_mut()
                    .insert(&crate::proxy::headers::X_REQUEST_ID, id);
                let _ = respond(&mut conn, resp, false, false, ConnHeader::Close).await;
                linger(conn).await;
                return;
            }
        };
        match exchange(&gw, &info, &mut conn, &mut buf, *head, limits, &draining).await {
            Keep::Open => {}
            Keep::Close => {
                linger(conn).await;
                return;
            }
            Keep::Gone => return,
            Keep::Upgrade(tx) => {
                let Conn {
                    read,
                    write,
                    permit,
                    ..
                } = conn;
                if let Some(Ok(inner)) = read.map(|r| r.reunite(write)) {
                    let stream = PermitStream { inner, permit };
                    let _ = tx.send(Upgraded(Rewind::client(buf.freeze(), stream)));
                }
                return;
            }
        }
        idle_until = Instant::now() + limits.idle;
        head_until = None;
    }
}

/// Reads until a whole head is buffered: a first byte by `idle_until`, the
/// rest of the head by `head_until` (from the first byte when `None`).
///
/// Both deadlines run on the connection's one `timer`, which only has to
/// fire no later than the deadline: it is moved when it would fire late or
/// has fired, and a timer that fires early is moved on. A busy keep-alive
/// connection thus touches the timer wheel about once per idle timeout,
/// not once per request. (Branches are polled in order: a request already
/// readable is served without looking at the timer.) Likewise `stopped`
/// (the drain signal) stays registered with its channel between requests;
/// it completes at most once, and the connection ends when it does.
async fn next_head(
    conn: &mut Conn,
    buf: &mut BytesMut,
    limits: Limits,
    (idle_until, mut head_until): (Instant, Option<Instant>),
    mut timer: Pin<&mut tokio::time::Sleep>,
    (draining, mut stopped): (&watch::Receiver<bool>, Pin<&mut impl Future<Output = ()>>),
) -> Next {
    loop {
        if !buf.is_empty() {
            match parse::parse(buf, limits.max_header_bytes) {
                Ok(Some(head)) => return Next::Head(Box::new(head)),
                Ok(None) => {}
                Err(e) => return Next::Refuse(e),
            }
        }
        let idle = buf.is_empty();
        if idle && *draining.borrow() {
            return Next::Closed;
        }
        let until = if idle {
            idle_until
        } else {
            *head_until.get_or_insert_with(|| Instant::now() + limits.header_read)
        };
        let Some(read) = conn.read.as_mut() else {
            return Next::Closed;
        };
        crate::proxy::h1::arm(timer.as_mut(), until);
        if idle {
            // Nothing buffered: hold no buffer while waiting.
            buffers::release_read(buf);
            buffers::release_write(&mut conn.out);
            tokio::select! {
                biased;
                r = read.readable() => if r.is_err() { return Next::Closed },
                () = stopped.as_mut() => return Next::Closed,
                () = timer.as_mut() => {
                    if Instant::now() < until {
                        continue;
                    }
                    return Next::Closed;
                }
            }
        }
        buffers::ready_to_read(buf);
        tokio::select! {
            biased;
            r = read.read_buf(buf) => match r {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            },
            () = timer.as_mut() => {
                if Instant::now() < until {
                    continue;
                }
                return if buf.is_empty() { Next::Closed } else { Next::Refuse(GatewayError::RequestTimeout) };
            }
        }
    }
}

enum Keep {
    Open,
    /// Close after reading what the client still sends for a moment.
    Close,
    /// The client went away.
    Gone,
    /// The `101` is written: the socket goes to the tunnel.
    Upgrade(oneshot::Sender<Upgraded>),
}

/// One request and its response.
async fn exchange(
    gw: &Arc<Gateway>,
    info: &ConnInfo,
    conn: &mut Conn,
    buf: &mut BytesMut,
    head: Head,
    limits: Limits,
    stop: &watch::Receiver<bool>,
) -> Keep {
    let Head {
        mut parts,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    } = head;
    let head_request = parts.method == Method::HEAD;
    let http10 = parts.version == Version::HTTP_10;
    if expect_continue {
        // Sent at once rather than on the first body read: simpler, and
        // allowed (RFC 9110 10.1.1).
        if write_all(
            &mut conn.write,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            &[],
            conn.stall,
        )
        .await
        .is_err()
        {
            return Keep::Gone;
        }
    }
    let body = match (framing, conn.read.take()) {
        (Framing::None, read) => {
            conn.read = read;
            ClientBody::Empty
        }
        (framing, Some(read)) => {
            let slot = conn.slot.get_or_insert_with(Slot::default).clone();
            let lent = Lent {
                read,
                buf: std::mem::take(buf),
            };
            ClientBody::H1(H1Body::new(lent, slot, framing, limits.max_header_bytes))
        }
        (_, None) => return Keep::Gone,
    };
    let upgrade_tx = if upgrade && framing == Framing::None {
        let (tx, rx) = oneshot::channel();
        parts
            .extensions
            .insert(OnUpgrade(Arc::new(std::sync::Mutex::new(Some(rx)))));
        Some(tx)
    } else {
        None
    };
    let req = Request::from_parts(parts, body);
    let active = gw.active();
    // On the heap: the pipeline's state lives only while a request runs,
    // not in every idle connection's task. The block is taken first (one
    // the previous request left warm, see `recycled`) and the future built
    // in it, instead of built on the stack and copied whole (2 KiB).
    let mut call = Recycled::new_with(|| pipeline::handle(&active, info, req));
    let resp = match conn.read.as_mut() {
        Some(read) => {
            let max = limits.max_header_bytes;
            tokio::select! {
                resp = call.as_mut() => resp,
                () = watch_client(read, buf, max) => return Keep::Gone,
            }
        }
        None => call.as_mut().await,
    };
    drop(call);

    let (parts, body) = resp.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(tx) = upgrade_tx else {
            // A switch the client did not ask for can not be relayed.
            let id = parts.headers.get(&crate::proxy::headers::X_REQUEST_ID);
            let id = id.and_then(|v| v.to_str().ok()).unwrap_or("");
            let resp = GatewayError::BadGateway.to_response(id);
            let _ = respond(conn, resp, head_request, http10, ConnHeader::Close).await;
            return Keep::Close;
        };
        let resp = http::Response::from_parts(parts, body);
        let (sent, _) = respond(conn, resp, head_request, http10, ConnHeader::None).await;
        if sent.is_err() {
            return Keep::Gone;
        }
        return Keep::Upgrade(tx);
    }

    // The request body must be back, read to its end, to reuse the
    // connection; one still streaming (or dropped unread) closes it.
    let body_done = reclaim(conn, buf);
    let close = !keep_alive || !body_done || *stop.borrow();
    let conn_header = if close {
        ConnHeader::Close
    } else if http10 {
        ConnHeader::KeepAlive
    } else {
        ConnHeader::None
    };
    let resp = http::Response::from_parts(parts, body);
    let (sent, framing, request_id) =
        respond_keeping_id(conn, resp, head_request, http10, conn_header).await;
    match sent {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            // The upstream body failed before a byte of this response went
            // out: the client gets a 502 instead of a truncated answer.
            let id = request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let resp = GatewayError::BadGateway.to_response(id);
            let _ = respond(conn, resp, head_request, http10, ConnHeader::Close).await;
            return Keep::Close;
        }
        Err(_) => return Keep::Gone,
    }
    if close || framing == Out::UntilClose {
        return Keep::Close;
    }
    if conn.read.is_none() && !reclaim(conn, buf) {
        return Keep::Close;
    }
    Keep::Open
}

/// Takes back the read half and buffer a finished request body returned.
/// `false`: the body has not finished (still streaming, or dropped).
fn reclaim(conn: &mut Conn, buf: &mut BytesMut) -> bool {
    if conn.read.is_some() {
        return true;
    }
    let Some(slot) = conn.slot.as_ref() else {
        return false;
    };
    let back = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match back {
        Some((lent, finished)) => {
            conn.read = Some(lent.read);
            *buf = lent.buf;
            finished
        }
        None => false,
    }
}

/// While a bodiless request runs: returns when the client closes its side
/// or the socket fails. Pipelined bytes are kept for the next head (up to
/// the head limit, then reading stops).
async fn watch_client(read: &mut OwnedReadHalf, buf: &mut BytesMut, max: usize) {
    loop {
        if buf.len() > max {
            return std::future::pending().await;
        }
        if buf.capacity() == 0 && read.readable().await.is_err() {
            return;
        }
        buffers::ready_to_read(buf);
        match read.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes the response body after the head in `out`: frames that are ready
/// together go out in one write.
async fn send_body(
    w: &mut OwnedWriteHalf,
    out: &mut Vec<u8>,
    body: &mut ProxyBody,
    framing: Out,
    stall: Duration,
) -> io::Result<()> {
    let chunked = framing == Out::Chunked;
    // Whether any byte of this response went out yet.
    let mut sent_any = false;
    let mut left = match framing {
        Out::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        let ready = poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(f) => Some(f),
                Poll::Pending => None,
            })
        })
        .await;
        let frame = match ready {
            Some(f) => f,
            None => {
                sent_any |= !out.is_empty();
                flush(w, out, stall).await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(_)) if !sent_any => {
                // InvalidData (never a socket error): nothing of this
                // response was sent, a 502 can still be written.
                out.clear();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "upstream response body failed",
                ));
            }
            Some(Err(_)) => return Err(io::Error::other("upstream response body failed")),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                // Trailers are not sent on HTTP/1.1.
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        if data.len() as u64 > left {
            return Err(io::Error::other("response body longer than its length"));
        }
        left = left.saturating_sub(data.len() as u64);
        if chunked {
            write::chunk_head(out, data.len());
        }
        if data.len() <= COPY_MAX {
            out.extend_from_slice(&data);
        } else {
            sent_any = true;
            write_two(w, out, &data, stall).await?;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= 4 * COPY_MAX {
            sent_any = true;
            flush(w, out, stall).await?;
        }
    }
    if let Out::Length(_) = framing {
        if left != 0 {
            flush(w, out, stall).await?;
            return Err(io::Error::other("response body shorter than its length"));
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    flush(w, out, stall).await
}

async fn flush(w: &mut OwnedWriteHalf, out: &mut Vec<u8>, stall: Duration) -> io::Result<()> {
    if !out.is_empty() {
        write_all(w, out, &[], stall).await?;
        out.clear();
    }
    Ok(())
}

/// `out` then `data`, vectored.
async fn write_two(
    w: &mut OwnedWriteHalf,
    out: &mut Vec<u8>,
    data: &Bytes,
    stall: Duration,
) -> io::Result<()> {
    write_all(w, out, data, stall).await?;
    out.clear();
    Ok(())
}

/// Writes `a` then `b`. The socket usually takes everything at once (no
/// timer); a client that takes nothing for `stall` (it stopped reading)
/// fails the write, so a slow reader holds neither the connection nor the
/// upstream response forever.
async fn write_all(w: &mut OwnedWriteHalf, a: &[u8], b: &[u8], stall: Duration) -> io::Result<()> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // One buffer goes out with `send`, which the kernel takes on a
        // shorter path than `writev` (most responses: head and a small body
        // copied after it).
        let res = match (&a[i..], &b[j..]) {
            (x, []) | ([], x) => w.try_write(x),
            (x, y) => w.try_write_vectored(&[IoSlice::new(x), IoSlice::new(y)]),
        };
        let n = match res {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Boxed: a full socket is the exception, and the timer's
                // state would otherwise be part of every response's future.
                match Box::pin(tokio::time::timeout(stall, w.writable())).await {
                    Ok(ready) => {
                        ready?;
                        continue;
                    }
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped reading",
                        ))
                    }
                }
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len() - i);
        i += from_a;
        j += n - from_a;
    }
    Ok(())
}

/// Writes a response: the head, then the body as framed (nothing after
/// the head for HEAD, 1xx, 204 and 304). Returns how the body was framed.
async fn respond(
    conn: &mut Conn,
    resp: http::Response<ProxyBody>,
    head_request: bool,
    http10: bool,
    conn_header: ConnHeader,
) -> (io::Result<()>, Out) {
    let (sent, framing, _) =
        respond_keeping_id(conn, resp, head_request, http10, conn_header).await;
    (sent, framing)
}

/// [`respond`], plus the response's `X-Request-Id` when the body failed
/// before anything was sent (`InvalidData`): the 502 that replaces it
/// carries the same id. (Looked up only then.)
async fn respond_keeping_id(
    conn: &mut Conn,
    resp: http::Response<ProxyBody>,
    head_request: bool,
    http10: bool,
    conn_header: ConnHeader,
) -> (io::Result<()>, Out, Option<http::HeaderValue>) {
    let (parts, mut body) = resp.into_parts();
    let framing = write::body_framing(head_request, http10, parts.status, &body.size_hint());
    buffers::ready_to_write(&mut conn.out);
    write::encode_head(
        &mut conn.out,
        parts.status,
        &parts.headers,
        body.raw_headers(),
        framing,
        conn_header,
    );
    let sent = match framing {
        Out::NoBody { .. } => flush(&mut conn.write, &mut conn.out, conn.stall).await,
        _ => {
            send_body(
                &mut conn.write,
                &mut conn.out,
                &mut body,
                framing,
                conn.stall,
            )
            .await
        }
    };
    let id = match &sent {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => parts
            .headers
            .get(&crate::proxy::headers::X_REQUEST_ID)
            .cloned(),
        _ => None,
    };
    buffers::recycle_map(parts.headers);
    (sent, framing, id)
}

/// Closes the connection: our side first, then whatever the client still
/// sends is read and dropped for a moment, so its pending request bytes do
/// not turn our last response into a reset.
async fn linger(conn: Conn) {
    let Conn {
        read,
        mut write,
        permit,
        slot,
        ..
    } = conn;
    let read = read.or_else(|| {
        slot.and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).take())
            .map(|(lent, _)| lent.read)
    });
    let _ = write.shutdown().await;
    if let Some(mut read) = read {
        // On the heap: the connection task's size is that of its largest
        // state, and every idle connection pays for it.
        let mut sink = vec![0u8; 4096];
        let mut total = 0;
        let drain = async {
            while total < LINGER_BYTES {
                match read.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
    drop(permit);
}
