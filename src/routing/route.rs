//! A compiled route: what it matches and what it does. Built once by
//! `config::compile`, immutable afterwards.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use super::pattern::{PathPattern, Specificity};
use super::predicates::{HostMatch, MethodSet, ValueMatch};
use crate::proxy::rewrite::{HeaderRules, PathRewrite};

#[derive(Debug)]
pub struct Route {
    pub id: Arc<str>,
    /// Position in the config; the last tie-breaker (earlier wins).
    pub index: usize,
    pub priority: i32,
    pub pattern: PathPattern,
    pub methods: Option<MethodSet>,
    pub host: Option<HostMatch>,
    pub headers: Vec<(HeaderName, ValueMatch)>,
    pub query: Vec<(String, ValueMatch)>,
    pub action: Action,
    pub rewrite: PathRewrite,
    pub request_headers: HeaderRules,
    pub response_headers: HeaderRules,
    /// Time allowed for the upstream's response head.
    pub timeout: Duration,
    /// Largest request body accepted, chunked or not.
    pub max_body: u64,
    /// How failed upstream tries are retried; `None`: one try.
    pub retry: Option<crate::upstream::spec::RetryPolicy>,
    /// Authentication and authorization (pipeline steps 4 and 5).
    pub auth: crate::auth::RouteAuth,
}

/// What a matched route does.
#[derive(Debug)]
pub enum Action {
    /// Forward to the upstream at this index of `Snapshot::upstreams`.
    Proxy { upstream: usize },
    Redirect {
        location: String,
        status: StatusCode,
        /// Append the part of the path after the matched prefix (and the query).
        append_path: bool,
    },
    Respond {
        status: StatusCode,
        body: Bytes,
        content_type: HeaderValue,
    },
    /// A built-in probe answered by the gateway itself (pipeline step 3).
    Health(Probe),
}

/// Which probe a `health:` route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// 200 while the process serves.
    Live,
    /// 200 once every auth provider has a usable key set, else 503.
    Ready,
}

impl Probe {
    pub fn parse(s: &str) -> Option<Probe> {
        match s {
            "live" => Some(Probe::Live),
            "ready" => Some(Probe::Ready),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Probe::Live => "live",
            Probe::Ready => "ready",
        }
    }
}

/// Ordering key between routes matching the same request: higher wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    pub priority: i32,
    pub specificity: Specificity,
    /// Host, header and query predicates and a method list each count one.
    pub predicates: u8,
}

impl Route {
    pub fn rank(&self) -> Rank {
        let predicates = u8::from(self.host.is_some())
            + u8::from(self.methods.is_some())
            + self.headers.len().min(100) as u8
            + self.query.len().min(100) as u8;
        Rank {
            priority: self.priority,
            specificity: self.pattern.specificity(),
            predicates,
        }
    }
}
