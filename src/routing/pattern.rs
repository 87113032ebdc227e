//! Path patterns as written in `match.path`, parsed once:
//! exact `/x`, prefix `/x/**`, template `/x/{id}` (optionally ending in
//! `/**`), regex `~^/x/[0-9]+$`.

use regex::Regex;

use super::path::{normalize, PathPolicy};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Literal(String),
    /// `{name}`: exactly one non-empty segment.
    Param(String),
}

#[derive(Debug, Clone)]
pub enum PathPattern {
    /// Segments, then optionally `/**` (zero or more further segments).
    Segments { segs: Vec<Seg>, catch_all: bool },
    /// A regex on the whole normalized path, plus the literal segments every
    /// match must start with (used to place it in the trie).
    Regex { regex: Regex, prefix: Vec<String> },
}

/// How specific a pattern is; compared after `priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    pub literal_segments: u16,
    /// exact 3, template 2, prefix (catch-all) 1, regex 0.
    pub kind: u8,
}

impl PathPattern {
    pub fn parse(raw: &str) -> Result<PathPattern, String> {
        if let Some(re) = raw.strip_prefix('~') {
            let regex = Regex::new(re).map_err(|e| format!("invalid regex: {e}"))?;
            return Ok(PathPattern::Regex {
                prefix: literal_prefix(re),
                regex,
            });
        }
        if !raw.starts_with('/') {
            return Err(format!(
                "path pattern `{raw}` must start with `/` (or `~` for a regex)"
            ));
        }
        let (body, catch_all) = match raw.strip_suffix("/**") {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let mut segs = Vec::new();
        if !(catch_all && body.is_empty()) {
            let parts: Vec<&str> = body[1..].split('/').collect();
            for (i, s) in parts.iter().enumerate() {
                // An empty segment is only meaningful last (a trailing slash,
                // or the root `/`).
                if s.is_empty() && (i + 1 < parts.len() || catch_all) {
                    return Err(format!(
                        "empty segment (`//`) in `{raw}` can never match a normalized path"
                    ));
                }
                segs.push(parse_seg(s, raw)?);
            }
        }
        Ok(PathPattern::Segments { segs, catch_all })
    }

    pub fn specificity(&self) -> Specificity {
        match self {
            PathPattern::Segments { segs, catch_all } => {
                let literal = segs.iter().filter(|s| matches!(s, Seg::Literal(_))).count();
                let has_param = literal != segs.len();
                Specificity {
                    literal_segments: literal.min(u16::MAX as usize) as u16,
                    kind: match (catch_all, has_param) {
                        (false, false) => 3,
                        (false, true) => 2,
                        (true, _) => 1,
                    },
                }
            }
            PathPattern::Regex { prefix, .. } => Specificity {
                literal_segments: prefix.len().min(u16::MAX as usize) as u16,
                kind: 0,
            },
        }
    }

    /// The literal segments at the start of every path this pattern matches.
    pub fn literal_prefix(&self) -> Vec<&str> {
        match self {
            PathPattern::Segments { segs, .. } => segs
                .iter()
                .map_while(|s| match s {
                    Seg::Literal(l) => Some(l.as_str()),
                    Seg::Param(_) => None,
                })
                .collect(),
            PathPattern::Regex { prefix, .. } => prefix.iter().map(String::as_str).collect(),
        }
    }
}

fn parse_seg(s: &str, raw: &str) -> Result<Seg, String> {
    if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("invalid parameter `{{{name}}}` in `{raw}`"));
        }
        return Ok(Seg::Param(name.to_owned()));
    }
    if s.contains(['{', '}', '*']) {
        return Err(format!(
            "invalid segment `{s}` in `{raw}`: use `{{name}}` for a parameter and end with `/**` for a prefix"
        ));
    }
    if s == "." || s == ".." {
        return Err(format!(
            "dot segment in `{raw}` can never match a normalized path"
        ));
    }
    let probe = format!("/{s}");
    match normalize(&probe, PathPolicy::default()) {
        Ok(n) if n == probe => Ok(Seg::Literal(s.to_owned())),
        _ => Err(format!(
            "segment `{s}` in `{raw}` is not in normalized form (decode unreserved escapes, upper-case the others)"
        )),
    }
}

/// The complete literal segments at the start of an anchored regex:
/// `^/api/v1/[0-9]+$` -> `["api", "v1"]`. Conservative: stops at the first
/// metacharacter and drops a partial segment.
fn literal_prefix(re: &str) -> Vec<String> {
    let Some(body) = re.strip_prefix('^') else {
        return Vec::new();
    };
    let lit: String = body
        .chars()
        .take_while(|c| !"\\.+*?()|[]{}^$".contains(*c))
        .collect();
    let Some(stripped) = lit.strip_prefix('/') else {
        return Vec::new();
    };
    match stripped.rfind('/') {
        Some(end) => stripped[..end].split('/').map(str::to_owned).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> (Vec<Seg>, bool) {
        match PathPattern::parse(p).expect("valid") {
            PathPattern::Segments { segs, catch_all } => (segs, catch_all),
            PathPattern::Regex { .. } => panic!("regex"),
        }
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(segs("/ping"), (vec![Seg::Literal("ping".into())], false));
        assert!(segs("/api/**").1);
        assert_eq!(segs("/**"), (vec![], true));
        assert_eq!(segs("/"), (vec![Seg::Literal(String::new())], false));
        assert_eq!(
            segs("/x/{id}").0,
            vec![Seg::Literal("x".into()), Seg::Param("id".into())]
        );
        assert!(matches!(
            PathPattern::parse("~^/x/[0-9]+$"),
            Ok(PathPattern::Regex { .. })
        ));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "api", "/a//b", "/a/*", "/a/{}", "/a/{b", "/a/../b", "~(", "/a%2fb", "/a/**/b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regex_literal_prefix() {
        assert_eq!(literal_prefix("^/api/v1/[0-9]+$"), vec!["api", "v1"]);
        assert_eq!(literal_prefix("^/api/v1.0/x"), vec!["api"]);
        assert_eq!(literal_prefix("^/x"), Vec::<String>::new());
        assert_eq!(literal_prefix("/x/y/"), Vec::<String>::new());
    }

    #[test]
    fn specificity_orders_kinds() {
        let s = |p: &str| PathPattern::parse(p).expect("valid").specificity();
        assert!(s("/api/tasks") > s("/api/{id}"));
        assert!(s("/api/{id}") > s("/api/**"));
        assert!(s("/api/tasks/**") > s("/api/{id}"));
        assert!(s("/api/**") > s("~^/api/.*"));
    }
}
