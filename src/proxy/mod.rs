//! Proxying: what the upstream receives and what the client gets back.
//! Header hygiene, forwarding headers and client address, request ids,
//! streaming bodies with limits, path and header rewriting, and the
//! upstream call itself.

pub mod body;
pub mod forward;
pub mod forwarded;
pub mod h1;
pub mod headers;
pub mod request_id;
pub mod rewrite;
pub mod sanitize;
