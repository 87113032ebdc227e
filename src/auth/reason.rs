//! Why a request failed authentication or authorization, with a fixed,
//! token-free description for clients and a counter per reason for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// The stable reason codes of issue 3. Every rejection has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Missing,
    Malformed,
    BadSignature,
    Expired,
    NotYetValid,
    BadIssuer,
    BadAudience,
    UnknownKid,
    AlgNotAllowed,
    InsufficientScope,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::BadIssuer,
        Reason::BadAudience,
        Reason::UnknownKid,
        Reason::AlgNotAllowed,
        Reason::InsufficientScope,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadIssuer => "bad_issuer",
            Reason::BadAudience => "bad_audience",
            Reason::UnknownKid => "unknown_kid",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::InsufficientScope => "insufficient_scope",
        }
    }

    /// Client-facing text: fixed, never derived from the token.
    pub fn description(self) -> &'static str {
        match self {
            Reason::Missing => "a bearer token is required",
            Reason::Malformed => "the token is malformed",
            Reason::BadSignature => "the token signature is invalid",
            Reason::Expired => "the token has expired",
            Reason::NotYetValid => "the token is not yet valid",
            Reason::BadIssuer => "the token issuer is not accepted",
            Reason::BadAudience => "the token audience is not accepted",
            Reason::UnknownKid => "the token signing key is unknown",
            Reason::AlgNotAllowed => "the token algorithm is not allowed",
            Reason::InsufficientScope => "the token lacks a required scope, role or claim",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counted outcomes beyond the rejection reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Rejected(Reason),
    /// Verified with a signature check.
    Verified,
    /// Accepted from the verified-token cache.
    Cached,
    /// 503: no usable signing keys.
    KeysUnavailable,
}

const SLOTS: usize = Reason::ALL.len() + 3;
static COUNTS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

fn slot(o: Outcome) -> usize {
    match o {
        Outcome::Rejected(r) => r.index(),
        Outcome::Verified => Reason::ALL.len(),
        Outcome::Cached => Reason::ALL.len() + 1,
        Outcome::KeysUnavailable => Reason::ALL.len() + 2,
    }
}

pub fn count(o: Outcome) {
    COUNTS[slot(o)].fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the counters, process-wide, as `(code, count)` pairs.
pub fn counts() -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Reason::ALL
        .iter()
        .map(|r| {
            (
                r.code(),
                COUNTS[slot(Outcome::Rejected(*r))].load(Ordering::Relaxed),
            )
        })
        .collect();
    for (name, o) in [
        ("verified", Outcome::Verified),
        ("cached", Outcome::Cached),
        ("keys_unavailable", Outcome::KeysUnavailable),
    ] {
        out.push((name, COUNTS[slot(o)].load(Ordering::Relaxed)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_counted() {
        let codes: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
        let before = counts()
            .into_iter()
            .find(|(c, _)| *c == "expired")
            .map(|x| x.1);
        count(Outcome::Rejected(Reason::Expired));
        let after = counts()
            .into_iter()
            .find(|(c, _)| *c == "expired")
            .map(|x| x.1);
        assert!(after > before);
    }
}
