//! Configuration: YAML text -> `raw` (serde mirror, unknown keys rejected)
//! -> `compile` (every check, into an immutable [`Snapshot`]).
//!
//! Errors always carry the file, line, column, the field's path and what
//! was expected. A config that fails to load never replaces a running one.

pub mod compile;
pub mod locate;
pub mod raw;
pub mod units;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;

use crate::proxy::forwarded::TrustedProxies;
use crate::routing::path::PathPolicy;
use crate::routing::Router;
use locate::{Pos, SourceMap};

/// The compiled, validated, immutable configuration. Requests read one
/// snapshot from start to end.
#[derive(Debug)]
pub struct Snapshot {
    pub listeners: Vec<ListenerSpec>,
    pub trusted: TrustedProxies,
    pub limits: Limits,
    pub paths: PathPolicy,
    pub upstreams: Vec<UpstreamSpec>,
    pub router: Router,
    /// Auth providers; their runtime key state lives in `pipeline::Active`.
    pub auth: crate::auth::AuthConfig,
}

#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: Arc<str>,
    pub bind: SocketAddr,
    pub max_connections: usize,
    pub http2: bool,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Total time for a request's head to arrive (slowloris guard).
    pub header_read_timeout: Duration,
    /// Total time for a request's body to arrive.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and no traffic is closed after this.
    pub idle_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub drain_timeout: Duration,
    pub max_header_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    pub name: Arc<str>,
    pub endpoints: Vec<EndpointSpec>,
    pub protocol: Protocol,
    pub connect_timeout: Duration,
    pub pool_max_idle_per_endpoint: usize,
    pub pool_idle_timeout: Duration,
    pub balance: crate::upstream::spec::Balance,
    pub health_check: Option<crate::upstream::spec::HealthCheck>,
    pub outlier: Option<crate::upstream::spec::Outlier>,
    pub limits: Option<crate::upstream::spec::UpstreamLimits>,
    /// When set, `endpoints` is empty and filled from DNS at run time.
    pub discovery: Option<crate::upstream::spec::Discovery>,
}

#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub authority: Authority,
    pub weight: u32,
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub pos: Option<Pos>,
    /// Dotted field path, e.g. `routes[2].match.path`; empty for the document.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: ", self.file, p.line, p.column)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// All the errors of one config file (at least one).
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and compiles a config file.
pub fn load_file(path: &Path) -> Result<Snapshot, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: name.clone(),
            pos: None,
            field: String::new(),
            message: format!("cannot read file: {e}"),
        }])
    })?;
    load_str(&text, &name)
}

/// Parses and compiles config text; `file` names it in errors.
pub fn load_str(text: &str, file: &str) -> Result<Snapshot, ConfigErrors> {
    let map = SourceMap::build(text);
    let raw: raw::RawConfig = if text.trim().is_empty() {
        raw::RawConfig::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigErrors(vec![parse_error(&e, file, &map)]))?
    };
    compile::compile(raw).map_err(|errs| {
        ConfigErrors(
            errs.into_iter()
                .map(|(field, message)| ConfigError {
                    file: file.to_owned(),
                    pos: map.position_of(&field),
                    field,
                    message,
                })
                .collect(),
        )
    })
}

fn parse_error(e: &serde_saphyr::Error, file: &str, map: &SourceMap) -> ConfigError {
    let plain = e.without_snippet().to_string();
    // serde-saphyr appends " at line L, column C"; we print the position first.
    let message = match plain.rfind(" at line ") {
        Some(i) => plain[..i].to_owned(),
        None => plain,
    };
    let pos = e.location().map(|l| Pos {
        line: l.line() as usize,
        column: l.column() as usize,
    });
    let field = pos
        .and_then(|p| map.path_at(p))
        .unwrap_or_default()
        .to_owned();
    ConfigError {
        file: file.to_owned(),
        pos,
        field,
        message,
    }
}
