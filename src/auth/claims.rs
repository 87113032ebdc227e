//! Verified claims, kept as the token's own JSON text plus where each
//! top-level member sits in it. Nothing is built per member: a claim is
//! read in place when asked for (`iss`, `exp`, the identity claim), and a
//! JSON value is made only for what needs one (arrays, nested paths).
//!
//! The identity headers of the verifying provider are worked out once,
//! when the token is verified, and kept here: a cached token hands them
//! on without reading its claims again.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::json::{self, Member};
use super::provider::ClaimPath;
use super::reason::Reason;

/// A token's verified payload.
pub struct Claims {
    /// As decoded (not shrunk to fit: that would copy it once more).
    json: String,
    members: Vec<Member>,
    /// Where the registered claims every verification reads are in
    /// `members` (index + 1; 0: absent), found once while parsing.
    registered: [u8; REGISTERED.len()],
    /// The provider's identity headers for these claims.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// `Debug` names the members, never their values.
impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.members.iter().map(|m| self.name(m)).collect();
        f.debug_struct("Claims").field("members", &names).finish()
    }
}

/// The claims every verification reads.
const REGISTERED: [&str; 6] = ["exp", "nbf", "iat", "iss", "aud", "sub"];

/// A registered claim's slot in [`REGISTERED`]: a `match` the compiler
/// turns into a length test and one comparison (and resolves outright for
/// the literal names the checks ask for), not a walk over six names.
#[inline]
fn registered_slot(name: &str) -> Option<usize> {
    Some(match name {
        "exp" => 0,
        "nbf" => 1,
        "iat" => 2,
        "iss" => 3,
        "aud" => 4,
        "sub" => 5,
        _ => return None,
    })
}

impl Claims {
    /// Reads a decoded payload: a JSON object with no member name repeated
    /// at any depth (plain JSON parsers keep the last one, which would let
    /// a token say two things).
    pub fn parse(json: String) -> Result<Claims, Reason> {
        let members = json::object_members(&json, usize::MAX).map_err(|_| Reason::Malformed)?;
        let mut claims = Claims {
            json,
            members,
            registered: [0; REGISTERED.len()],
            headers: Vec::new(),
        };
        for i in 0..claims.members.len().min(usize::from(u8::MAX) - 1) {
            let name = claims.name(&claims.members[i]);
            if let Some(slot) = registered_slot(name) {
                claims.registered[slot] = i as u8 + 1;
            }
        }
        Ok(claims)
    }

    /// The payload exactly as it was signed.
    pub fn json(&self) -> &str {
        &self.json
    }

    fn name<'a>(&'a self, m: &'a Member) -> &'a str {
        m.name.as_str(&self.json)
    }

    /// The JSON text of a top-level member.
    pub fn text(&self, name: &str) -> Option<&str> {
        let m = match registered_slot(name) {
            Some(slot) => match self.registered[slot] {
                0 if self.members.len() < usize::from(u8::MAX) - 1 => return None,
                0 => self.members.iter().find(|m| self.name(m) == name)?,
                i => &self.members[usize::from(i) - 1],
            },
            None => self.members.iter().find(|m| self.name(m) == name)?,
        };
        Some(&self.json[m.value.clone()])
    }

    /// A top-level string claim; `None` when absent or not a string.
    pub fn string(&self, name: &str) -> Option<Cow<'_, str>> {
        json::string_value(self.text(name)?)
    }

    /// A NumericDate claim: absent, or a finite number (else malformed).
    pub fn number(&self, name: &str) -> Result<Option<f64>, Reason> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(Reason::Malformed);
        }
        // The usual NumericDate is a plain integer of ten digits: read it
        // as one (exact below 2^53), not through the float parser.
        if text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
            let n = text.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
            return Ok(Some(n as f64));
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(Reason::Malformed),
        }
    }

    /// The claim at `path` as a JSON value: a top-level member named by the
    /// whole path (names may hold dots), else the path walked through
    /// nested objects.
    pub fn get(&self, path: &ClaimPath) -> Option<Value> {
        if let Some(text) = self.text(&path.full) {
            return serde_json::from_str(text).ok();
        }
        let (first, rest) = path.segments().split_first()?;
        let mut v: Value = serde_json::from_str(self.text(first)?).ok()?;
        for seg in rest {
            v = v.as_object_mut()?.remove(seg)?;
        }
        Some(v)
    }

    /// The claim at `path` when it is a string, read in place when it can be.
    pub fn get_str(&self, path: &ClaimPath) -> Option<Cow<'_, str>> {
        if let Some(text) = self.text(&path.full) {
            return json::string_value(text);
        }
        match self.get(path)? {
            Value::String(s) => Some(Cow::Owned(s)),
            _ => None,
        }
    }

    /// Whether the claim at `path` is present and not `null`.
    pub fn has(&self, path: &ClaimPath) -> bool {
        match self.text(&path.full) {
            Some(text) => text != "null",
            None => self.get(path).is_some_and(|v| !v.is_null()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Result<Claims, Reason> {
        Claims::parse(json.to_owned())
    }

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).expect("path")
    }

    #[test]
    fn reads_members_in_place() {
        let c = claims(
            r#"{"sub":"u1","exp":1700000000,"iss":"a\/b","roles":["x","y"],"realm":{"roles":["r"]},"a.b":"dotted","n":null}"#,
        )
        .expect("claims");
        assert!(matches!(c.string("sub"), Some(Cow::Borrowed("u1"))));
        assert_eq!(c.string("iss").as_deref(), Some("a/b"));
        assert_eq!(c.number("exp"), Ok(Some(1_700_000_000.0)));
        assert_eq!(c.number("nbf"), Ok(None));
        assert_eq!(c.number("sub"), Err(Reason::Malformed));
        assert_eq!(c.get(&path("roles")), Some(serde_json::json!(["x", "y"])));
        assert_eq!(c.get(&path("realm.roles")), Some(serde_json::json!(["r"])));
        assert_eq!(c.get_str(&path("a.b")).as_deref(), Some("dotted"));
        assert!(c.has(&path("realm.roles")) && !c.has(&path("n")) && !c.has(&path("zz")));
        assert_eq!(c.string("roles"), None);
        assert!(!format!("{c:?}").contains("u1"), "Debug shows names only");
    }

    #[test]
    fn every_registered_claim_has_its_slot() {
        for (i, name) in REGISTERED.iter().enumerate() {
            assert_eq!(registered_slot(name), Some(i));
        }
        assert_eq!(registered_slot("ex"), None);
        assert_eq!(registered_slot("subject"), None);
    }

    #[test]
    fn registered_claims_are_found_past_many_others() {
        let many: Vec<String> = (0..300).map(|i| format!(r#""c{i}":{i}"#)).collect();
        let c = claims(&format!(r#"{{{},"sub":"late","exp":5}}"#, many.join(","))).expect("claims");
        assert_eq!(c.string("sub").as_deref(), Some("late"));
        assert_eq!(c.number("exp"), Ok(Some(5.0)));
        assert_eq!(c.text("iss"), None);
        let few = claims(r#"{"exp":1,"c":2}"#).expect("claims");
        assert_eq!((few.text("sub"), few.text("c")), (None, Some("2")));
    }

    #[test]
    fn numeric_dates_integer_or_not() {
        for (json, want) in [
            (r#"{"exp":1700000000}"#, Some(1_700_000_000.0)),
            (r#"{"exp":1700000000.5}"#, Some(1_700_000_000.5)),
            (r#"{"exp":17e8}"#, Some(1_700_000_000.0)),
            (r#"{"exp":-5}"#, Some(-5.0)),
            (
                r#"{"exp":12345678901234567890}"#,
                Some(12_345_678_901_234_567_890.0),
            ),
        ] {
            assert_eq!(
                claims(json).expect("claims").number("exp"),
                Ok(want),
                "{json}"
            );
        }
        assert_eq!(
            claims(r#"{"exp":"1700000000"}"#)
                .expect("claims")
                .number("exp"),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn escaped_names_are_found() {
        let c = claims(r#"{"s\u0075b":"u1"}"#).expect("claims");
        assert_eq!(c.string("sub").as_deref(), Some("u1"));
    }

    #[test]
    fn refuses_repeated_names_and_non_objects() {
        for bad in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"sub":"a","s\u0075b":"b"}"#,
            r#"{"x":{"r":1,"r":2}}"#,
            r#"{"x":[{"r":1,"r":2}]}"#,
            r#"["sub"]"#,
            r#"{"sub":"a"} x"#,
            r#"{"sub":"a""#,
        ] {
            assert_eq!(claims(bad).err(), Some(Reason::Malformed), "{bad}");
        }
        let many: Vec<String> = (0..100).map(|i| format!(r#""c{i}":{i}"#)).collect();
        let c = claims(&format!("{{{}}}", many.join(","))).expect("100 claims");
        assert_eq!(c.number("c99"), Ok(Some(99.0)));
        let dup = format!(r#"{{{},"c42":0}}"#, many.join(","));
        assert_eq!(claims(&dup).err(), Some(Reason::Malformed));
        // Around the switch from pairwise comparison to the hash set.
        for n in 14..19 {
            let names = &many[..n];
            for again in ["c0", &format!("c{}", n - 1)] {
                let dup = format!(r#"{{{},"{again}":0}}"#, names.join(","));
                assert_eq!(claims(&dup).err(), Some(Reason::Malformed), "{n} {again}");
                let nested = format!(r#"{{"x":{{{},"{again}":0}}}}"#, names.join(","));
                assert_eq!(
                    claims(&nested).err(),
                    Some(Reason::Malformed),
                    "{n} {again}"
                );
            }
            assert!(claims(&format!("{{{}}}", names.join(","))).is_ok());
        }
    }
}
