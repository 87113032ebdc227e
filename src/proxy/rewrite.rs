//! Request and response rewriting configured per route: the path sent
//! upstream and header set/add/remove rules.

use http::{HeaderMap, HeaderName, HeaderValue};
use regex::Regex;

/// How the normalized path becomes the upstream path:
/// `strip_prefix` segments are removed, then `prefix_path` is prepended;
/// or `rewrite` (regex with `$1`/`${name}` captures) replaces it.
#[derive(Debug, Default)]
pub struct PathRewrite {
    pub strip_prefix: u32,
    pub prefix_path: Option<String>,
    pub regex: Option<(Regex, String)>,
}

impl PathRewrite {
    pub fn is_identity(&self) -> bool {
        self.strip_prefix == 0 && self.prefix_path.is_none() && self.regex.is_none()
    }

    /// `path` is normalized and starts with `/`; so does the result.
    pub fn apply(&self, path: &str) -> String {
        if let Some((re, to)) = &self.regex {
            let out = re.replace(path, to.as_str());
            return if out.starts_with('/') {
                out.into_owned()
            } else {
                format!("/{out}")
            };
        }
        let mut rest = path;
        for _ in 0..self.strip_prefix {
            match rest[1..].find('/') {
                Some(i) => rest = &rest[i + 1..],
                None => {
                    rest = "/";
                    break;
                }
            }
        }
        match &self.prefix_path {
            Some(prefix) => {
                let p = prefix.trim_end_matches('/');
                format!("{p}{rest}")
            }
            None => rest.to_owned(),
        }
    }
}

/// Header rules for one direction, applied in this order: remove, set, add.
#[derive(Debug, Default)]
pub struct HeaderRules {
    pub remove: Vec<HeaderName>,
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderRules {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_and_prefix() {
        let r = PathRewrite {
            strip_prefix: 1,
            ..Default::default()
        };
        assert_eq!(r.apply("/api/tasks/7"), "/tasks/7");
        assert_eq!(r.apply("/api"), "/");
        assert_eq!(r.apply("/api/"), "/");
        let r2 = PathRewrite {
            strip_prefix: 2,
            prefix_path: Some("/v2/".into()),
            regex: None,
        };
        assert_eq!(r2.apply("/api/tasks/7"), "/v2/7");
        assert_eq!(r2.apply("/api/tasks"), "/v2/");
    }

    #[test]
    fn regex_rewrite_with_captures() {
        let r = PathRewrite {
            regex: Some((
                Regex::new("^/old/(?P<rest>.*)$").expect("re"),
                "/new/${rest}".into(),
            )),
            ..Default::default()
        };
        assert_eq!(r.apply("/old/a/b"), "/new/a/b");
        assert_eq!(r.apply("/other"), "/other");
    }

    #[test]
    fn header_rules_order() {
        let rules = HeaderRules {
            remove: vec![HeaderName::from_static("x-debug")],
            set: vec![(
                HeaderName::from_static("x-gateway"),
                HeaderValue::from_static("gwanmun"),
            )],
            add: vec![(
                HeaderName::from_static("x-tag"),
                HeaderValue::from_static("b"),
            )],
        };
        let mut h = HeaderMap::new();
        h.insert("x-debug", HeaderValue::from_static("1"));
        h.insert("x-gateway", HeaderValue::from_static("spoofed"));
        h.insert("x-tag", HeaderValue::from_static("a"));
        rules.apply(&mut h);
        assert!(h.get("x-debug").is_none());
        assert_eq!(h["x-gateway"], "gwanmun");
        assert_eq!(h.get_all("x-tag").iter().count(), 2);
    }
}
