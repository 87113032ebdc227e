//! The command line: `run`, `check`, `explain`. `main.rs` only calls [`main`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{self, Snapshot};
use crate::observability::{self, LogFormat};
use crate::routing::path::normalize;
use crate::routing::{Action, RequestView, Selection};
use crate::server::{shards, Gateway};

const EXAMPLES: &str = "Examples:
  gwanmun run -c examples/gwanmun.yaml
  gwanmun check -c examples/gwanmun.yaml
  gwanmun explain -c examples/gwanmun.yaml GET /api/tasks/7 -H 'Host: api.example.com'
  RUST_LOG=debug gwanmun run -c gwanmun.yaml --log-format json";

#[derive(Parser, Debug)]
#[command(name = "gwanmun", version, about = "gwanmun (관문): an API gateway for microservices", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve traffic with the given config until SIGTERM/SIGINT.
    Run {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Log filter, e.g. `info` or `gwanmun=debug` (overrides RUST_LOG).
        #[arg(long)]
        log_level: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        log_format: Format,
        /// Worker threads, each a single-threaded runtime with its own copy
        /// of every listener (SO_REUSEPORT) (default: one per CPU).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Validate a config: print every error with file:line:column and exit 1,
    /// or a summary and exit 0.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Show which route a request would take and why the closest others do not.
    Explain {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// HTTP method, e.g. GET.
        method: String,
        /// Request target, e.g. /api/tasks/7?x=1.
        target: String,
        /// Request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Auto,
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            log_level,
            log_format,
            threads,
        } => {
            let format = match log_format {
                Format::Auto => LogFormat::Auto,
                Format::Text => LogFormat::Text,
                Format::Json => LogFormat::Json,
            };
            let _log = observability::init(log_level.as_deref(), format);
            run(config, threads)
        }
        Command::Check { config } => match config::load_file(&config) {
            Ok(snap) => {
                print!("{}", summary(&config.display().to_string(), &snap));
                ExitCode::SUCCESS
            }
            Err(errs) => {
                eprintln!("{errs}");
                eprintln!("{} error(s); config rejected", errs.0.len());
                ExitCode::from(1)
            }
        },
        Command::Explain {
            config,
            method,
            target,
            headers,
        } => match config::load_file(&config) {
            Ok(snap) => match explain(&snap, &method, &target, &headers) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            },
            Err(errs) => {
                eprintln!("{errs}");
                ExitCode::from(1)
            }
        },
    }
}

fn run(path: PathBuf, threads: Option<usize>) -> ExitCode {
    let snap = match config::load_file(&path) {
        Ok(s) => s,
        Err(errs) => {
            eprintln!("{errs}");
            return ExitCode::from(1);
        }
    };
    let threads = threads
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    crate::upstream::pool::set_workers(threads);
    // This thread's runtime serves the first shard and runs the background
    // tasks (health checks, discovery, JWKS refresh); see `server::shards`.
    let rt = match shards::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let shutdown = shutdown_signal();
        let gw = Gateway::new(snap);
        let bound = match shards::bind(gw, threads).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot bind");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = shards::serve(bound, shutdown).await {
            tracing::error!(error = %e, "cannot start the worker runtimes");
            return ExitCode::from(1);
        }
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Registers the SIGTERM and SIGINT handlers at once and returns a future
/// that resolves on either. Call it before binding: a signal that arrives
/// while the listeners are bound but before the future is first polled is
/// then a graceful shutdown, not the default (fatal) action.
/// Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The success output of `check`.
pub fn summary(file: &str, snap: &Snapshot) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{file}: OK");
    let _ = writeln!(s, "listeners ({}):", snap.listeners.len());
    for l in &snap.listeners {
        let _ = writeln!(
            s,
            "  {} {} (max {} connections{})",
            l.name,
            l.bind,
            l.max_connections,
            if l.http2 { ", h1+h2c" } else { ", h1 only" }
        );
    }
    let _ = writeln!(s, "upstreams ({}):", snap.upstreams.len());
    for u in &snap.upstreams {
        use crate::upstream::spec::DnsTarget;
        let eps = match &u.discovery {
            Some(d) => match &d.target {
                DnsTarget::Host { host, port } => {
                    format!("dns {host}:{port} every {:?}", d.refresh)
                }
                DnsTarget::Srv(name) => format!("dns srv {name} every {:?}", d.refresh),
            },
            None => u
                .endpoints
                .iter()
                .map(|e| format!("{} (w{})", e.authority, e.weight))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(s, "  {} [{:?}, {:?}] {eps}", u.name, u.protocol, u.balance);
    }
    let routes = snap.router.routes();
    let _ = writeln!(s, "routes ({}):", routes.len());
    for r in routes {
        let _ = writeln!(s, "  {} -> {}", r.id, action_text(snap, &r.action));
    }
    s
}

fn action_text(snap: &Snapshot, a: &Action) -> String {
    match a {
        Action::Proxy { upstream } => format!("upstream {}", snap.upstreams[*upstream].name),
        Action::Redirect {
            location, status, ..
        } => format!("redirect {} {}", status.as_u16(), location),
        Action::Respond { status, .. } => format!("respond {}", status.as_u16()),
        Action::Health(probe) => format!("health {}", probe.name()),
    }
}

/// The output of `explain`.
pub fn explain(
    snap: &Snapshot,
    method: &str,
    target: &str,
    raw_headers: &[String],
) -> Result<String, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid method `{method}`"))?;
    let mut headers = HeaderMap::new();
    for h in raw_headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header `{h}` must look like `Name: value`"))?;
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("invalid header name `{k}`"))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|_| format!("invalid header value in `{h}`"))?;
        headers.append(name, value);
    }
    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = String::new();
    let path = match normalize(raw_path, snap.paths) {
        Ok(p) => p.into_owned(),
        Err(e) => {
            let _ = writeln!(out, "rejected: 400 {}", e.message());
            return Ok(out);
        }
    };
    if path != raw_path {
        let _ = writeln!(out, "normalized path: {raw_path} -> {path}");
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            let h = h.to_ascii_lowercase();
            match h.rsplit_once(':') {
                Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) => a.to_owned(),
                _ => h,
            }
        });
    let view = RequestView {
        method: &method,
        path: &path,
        host: host.as_deref(),
        headers: &headers,
        query,
    };
    match snap.router.select(&view) {
        Selection::Found(r) => {
            let _ = writeln!(
                out,
                "matched route: {} (priority {}, pattern {:?})",
                r.id,
                r.priority,
                pattern_text(r)
            );
            let _ = writeln!(out, "action: {}", action_text(snap, &r.action));
            if let Action::Proxy { .. } = r.action {
                let up = if r.rewrite.is_identity() {
                    path.clone()
                } else {
                    r.rewrite.apply(&path)
                };
                let _ = writeln!(
                    out,
                    "upstream path: {up}{}",
                    query.map(|q| format!("?{q}")).unwrap_or_default()
                );
                let _ = writeln!(
                    out,
                    "timeout: {:?}, max_body: {} bytes",
                    r.timeout, r.max_body
                );
                if !r.request_headers.is_empty() {
                    let _ = writeln!(out, "request headers: {:?}", r.request_headers);
                }
                if !r.response_headers.is_empty() {
                    let _ = writeln!(out, "response headers: {:?}", r.response_headers);
                }
            }
        }
        Selection::NotFound => {
            let _ = writeln!(out, "no route matches: 404");
        }
        Selection::MethodNotAllowed(allow) => {
            let _ = writeln!(
                out,
                "method not allowed: 405 (Allow: {})",
                allow.to_str().unwrap_or("")
            );
        }
    }
    let candidates = snap.router.candidates(&view);
    if !candidates.is_empty() {
        let _ = writeln!(out, "routes whose path matches (best first):");
        for (r, why) in candidates {
            match why {
                None => {
                    let _ = writeln!(out, "  {} : all predicates hold", r.id);
                }
                Some(w) => {
                    let _ = writeln!(out, "  {} : {w} does not match", r.id);
                }
            }
        }
    }
    Ok(out)
}

fn pattern_text(r: &crate::routing::Route) -> String {
    use crate::routing::pattern::{PathPattern, Seg};
    match &r.pattern {
        PathPattern::Regex { regex, .. } => format!("~{}", regex.as_str()),
        PathPattern::Segments { segs, catch_all } => {
            let mut s = String::new();
            for seg in segs {
                s.push('/');
                match seg {
                    Seg::Literal(l) => s.push_str(l),
                    Seg::Param(p) => {
                        s.push('{');
                        s.push_str(p);
                        s.push('}');
                    }
                }
            }
            if *catch_all {
                s.push_str("/**");
            }
            if s.is_empty() {
                s.push('/');
            }
            s
        }
    }
}
