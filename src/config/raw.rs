//! The serde mirror of the YAML file. Unknown keys are rejected everywhere;
//! nothing here is validated beyond its scalar type (see `compile`), and
//! nothing here reaches the request path.

use indexmap::IndexMap;
use serde::Deserialize;

use super::units::{Dur, Size, Text};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    #[serde(default)]
    pub trusted_proxies: Vec<Text>,
    pub trusted_hops: Option<u32>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub upstreams: IndexMap<Text, RawUpstream>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Text,
    pub bind: Text,
    pub max_connections: Option<u32>,
    pub http2: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub header_read_timeout: Option<Dur>,
    pub body_read_timeout: Option<Dur>,
    pub idle_timeout: Option<Dur>,
    pub drain_timeout: Option<Dur>,
    pub request_timeout: Option<Dur>,
    pub max_header_bytes: Option<Size>,
    pub max_body: Option<Size>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub allow_encoded_slash: Option<bool>,
    pub allow_semicolon: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    pub protocol: Option<Text>,
    pub connect_timeout: Option<Dur>,
    pub pool: Option<RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawEndpoint {
    Address(Text),
    Weighted(RawWeightedEndpoint),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeightedEndpoint {
    pub address: Text,
    pub weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub max_idle_per_endpoint: Option<usize>,
    pub idle_timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub id: Text,
    pub priority: Option<i32>,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    pub upstream: Option<Text>,
    pub redirect: Option<RawRedirect>,
    pub respond: Option<RawRespond>,
    pub strip_prefix: Option<u32>,
    pub prefix_path: Option<Text>,
    pub rewrite: Option<RawRewrite>,
    pub request_headers: Option<RawHeaderRules>,
    pub response_headers: Option<RawHeaderRules>,
    pub timeout: Option<Dur>,
    pub max_body: Option<Size>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub path: Text,
    pub methods: Option<Vec<Text>>,
    pub host: Option<Text>,
    pub headers: Option<IndexMap<Text, RawValueMatch>>,
    pub query: Option<IndexMap<Text, RawValueMatch>>,
}

/// `"value"` (exact), `"~regex"`, or `{ present: true }` / `{ exact: v }` /
/// `{ regex: r }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawValueMatch {
    Text(Text),
    Spec(RawValueSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueSpec {
    pub present: Option<bool>,
    pub exact: Option<Text>,
    pub regex: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    pub to: Text,
    pub status: Option<u16>,
    pub append_path: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRespond {
    pub status: Option<u16>,
    pub body: Option<Text>,
    pub content_type: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    pub regex: Text,
    pub to: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderRules {
    #[serde(default)]
    pub set: IndexMap<Text, Text>,
    #[serde(default)]
    pub add: IndexMap<Text, Text>,
    #[serde(default)]
    pub remove: Vec<Text>,
}
