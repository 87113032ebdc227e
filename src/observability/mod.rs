//! Logs: human-readable on a terminal, JSON lines otherwise; one access-log
//! line per request. Never logs header values, tokens, cookies, bodies or
//! query strings (which may carry credentials): only the normalized path.

use std::io::IsTerminal;
use std::time::Duration;

use http::{Method, StatusCode};
use tracing_subscriber::EnvFilter;

use crate::pipeline::RequestCtx;

/// Log format choice for `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

/// Keeps the background log writer running; dropping it flushes what is
/// still queued. Hold it for the life of the process.
#[must_use = "logs are flushed and the writer stops when the guard is dropped"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Log lines queued for the writer thread. tracing-appender's default
/// (128,000) allocates and touches its whole queue up front (~4 MiB of an
/// idle gateway's memory); this many lines still absorb a burst of access
/// log lines while the writer catches up.
const LOG_QUEUE_LINES: usize = 8_192;

/// Installs the global subscriber. `level` (e.g. "info", "gwanmun=debug")
/// wins over `RUST_LOG`, which wins over the default "info".
///
/// Lines are written by a background thread (one access-log line per
/// request would otherwise cost a `write` syscall on the request path). The
/// queue is not lossy: when it is full, logging waits rather than dropping.
pub fn init(level: Option<&str>, format: LogFormat) -> LogGuard {
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("gwanmun-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && std::io::stderr().is_terminal())
        .with_writer(writer);
    // A second init (tests, embedding) keeps the first subscriber.
    let installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    LogGuard {
        _writer: installed.is_ok().then_some(guard),
    }
}

/// Whether access-log lines would be emitted (so the pipeline can skip the
/// work of collecting their fields).
pub fn access_log_enabled() -> bool {
    tracing::enabled!(target: "gwanmun::access", tracing::Level::INFO)
}

/// The access line of a request refused before it could be parsed (bad
/// head, head too large, head not in time): no method, path or route.
pub fn access_log_refused(
    peer: std::net::SocketAddr,
    request_id: &http::HeaderValue,
    status: StatusCode,
    error: &'static str,
) {
    tracing::info!(
        target: "gwanmun::access",
        request_id = request_id.to_str().unwrap_or(""),
        client = %peer.ip(),
        method = "-",
        path = "-",
        status = status.as_u16(),
        route = "-",
        upstream = "-",
        error = error,
        duration_us = 0u64,
    );
}

/// One line per request, at info, target `gwanmun::access`.
pub fn access_log(ctx: &RequestCtx, method: &Method, status: StatusCode, elapsed: Duration) {
    tracing::info!(
        target: "gwanmun::access",
        request_id = ctx.request_id.to_str().unwrap_or(""),
        client = %ctx.client_ip,
        method = %method,
        path = ctx.path.as_deref().unwrap_or("-"),
        status = status.as_u16(),
        route = ctx.route.as_deref().unwrap_or("-"),
        upstream = ctx.upstream.as_deref().unwrap_or("-"),
        error = ctx.error.unwrap_or("-"),
        duration_us = elapsed.as_micros() as u64,
    );
}
