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
    pub auth: Option<crate::auth::raw::RawAuth>,
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
    pub balance: Option<RawBalance>,
    pub health_check: Option<RawHealthCheck>,
    pub outlier: Option<RawOutlier>,
    pub limits: Option<RawUpstreamLimits>,
    pub discovery: Option<RawDiscovery>,
}

/// `"host:port"` or `{ address: "host:port", weight: N }`.
#[derive(Debug)]
pub enum RawEndpoint {
    Address(Text),
    Weighted(RawWeightedEndpoint),
}

impl<'de> Deserialize<'de> for RawEndpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEndpoint;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"host:port\" or { address: \"host:port\", weight: N }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEndpoint, E> {
                super::units::expand_env(v, |k| std::env::var(k).ok())
                    .map(|s| RawEndpoint::Address(Text(s)))
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEndpoint, A::Error> {
                RawWeightedEndpoint::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawEndpoint::Weighted)
            }
        }
        d.deserialize_any(V)
    }
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
    /// `live` or `ready`: a built-in probe answer.
    pub health: Option<Text>,
    pub strip_prefix: Option<u32>,
    pub prefix_path: Option<Text>,
    pub rewrite: Option<RawRewrite>,
    pub request_headers: Option<RawHeaderRules>,
    pub response_headers: Option<RawHeaderRules>,
    pub timeout: Option<Dur>,
    pub max_body: Option<Size>,
    pub retry: Option<RawRetry>,
    pub auth: Option<crate::auth::raw::RawRouteAuth>,
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
/// `{ regex: r }`. Unquoted booleans and integers (`X-Canary: true`) mean
/// their text; other unquoted numbers must be quoted (`"1.10"` would
/// otherwise read as 1.1).
#[derive(Debug)]
pub enum RawValueMatch {
    Text(Text),
    Spec(RawValueSpec),
}

impl<'de> Deserialize<'de> for RawValueMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValueMatch;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value to match, `~regex`, or one of { present: true }, { exact: v }, { regex: r }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValueMatch, E> {
                super::units::expand_env(v, |k| std::env::var(k).ok())
                    .map(|s| RawValueMatch::Text(Text(s)))
                    .map_err(E::custom)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValueMatch, E> {
                Ok(RawValueMatch::Text(Text(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValueMatch, E> {
                Ok(RawValueMatch::Text(Text(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValueMatch, E> {
                Ok(RawValueMatch::Text(Text(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawValueMatch, E> {
                Err(E::custom(
                    "quote this value: an unquoted decimal number loses its exact text",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawValueMatch, A::Error> {
                RawValueSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawValueMatch::Spec)
            }
        }
        d.deserialize_any(V)
    }
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

/// `balance: least_request` or `balance: { ring_hash: { key: header:X-User-Id } }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBalance {
    Name(Text),
    RingHash(RawRingHashBalance),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRingHashBalance {
    pub ring_hash: RawRingHash,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRingHash {
    pub key: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: Text,
    pub interval: Option<Dur>,
    pub timeout: Option<Dur>,
    pub healthy: Option<u32>,
    pub unhealthy: Option<u32>,
    pub expect: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlier {
    pub consecutive_failures: Option<u32>,
    pub base_ejection: Option<Dur>,
    pub max_ejection: Option<Dur>,
    pub max_ejected: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamLimits {
    pub max_requests: Option<u32>,
    pub max_pending: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    pub dns: Option<Text>,
    pub srv: Option<Text>,
    pub refresh: Option<Dur>,
    pub resolver: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub attempts: Option<u32>,
    pub on: Option<Vec<Text>>,
    pub backoff: Option<Dur>,
    pub max_backoff: Option<Dur>,
    pub budget: Option<Text>,
    pub per_try_timeout: Option<Dur>,
    pub buffer: Option<Size>,
    pub non_idempotent: Option<bool>,
}
