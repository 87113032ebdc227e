//! gwanmun (관문, "gateway"): an API gateway for microservices.
//!
//! Module map, one folder per concern:
//! - [`config`]: YAML -> raw serde mirror -> compiled immutable [`config::Snapshot`]
//! - [`routing`]: path normalization, patterns, predicates, the route trie
//! - [`auth`]: JWT verification, key sets, claim-based authorization
//! - [`proxy`]: header hygiene, forwarding headers, bodies, rewriting, the upstream call
//! - [`upstream`]: pooled clients and endpoint choice (runtime state beside the snapshot)
//! - [`server`]: listeners, connection limits, timeouts, graceful drain
//! - [`pipeline`]: the ordered request steps, one screen long
//! - [`errors`]: the request-path error enum and its one status/JSON mapping
//! - [`observability`]: logs and the access log
//! - [`cli`]: `run`, `check`, `explain`
//!
//! Pipeline order (see [`pipeline`]): sanitize -> route -> local answer ->
//! authenticate -> authorize -> rate limit -> rewrite -> forward -> respond -> record.

pub mod auth;
pub mod cli;
pub mod config;
pub mod errors;
pub mod observability;
pub mod pipeline;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod upstream;
