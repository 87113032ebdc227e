//! Route selection. Routes are indexed in a segment trie built once per
//! config, so the cost of a lookup depends on the depth of the path and the
//! number of routes that could match it, not on how many routes exist.
//!
//! Choice among the routes that match a request: the highest `priority`,
//! then the most literal segments, then the pattern kind (exact > template >
//! prefix > regex), then the most predicates, then the earliest in the file.

pub mod path;
pub mod pattern;
pub mod predicates;
pub mod route;

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue, Method};

use pattern::{PathPattern, Seg};
use predicates::{headers_match, query_match};
pub use route::{Action, Probe, Rank, Route};

/// What a lookup sees of the request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The normalized path.
    pub path: &'a str,
    /// Lower-cased host without port, if any.
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
}

#[derive(Debug)]
pub enum Selection<'a> {
    Found(&'a Route),
    NotFound,
    /// Some route matches everything but the method; `Allow` lists theirs.
    MethodNotAllowed(HeaderValue),
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    /// Routes whose pattern ends exactly at this node.
    exact: Vec<u32>,
    /// Routes with `/**` at this node: they match here and everything below.
    catch_all: Vec<u32>,
    /// Regex routes whose literal prefix ends here.
    regex: Vec<u32>,
}

#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
    ranks: Vec<Rank>,
    root: Node,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let mut root = Node::default();
        for (i, r) in routes.iter().enumerate() {
            let idx = i as u32;
            match &r.pattern {
                PathPattern::Segments { segs, catch_all } => {
                    let mut node = &mut root;
                    for s in segs {
                        node = match s {
                            Seg::Literal(l) => node.literal.entry(l.as_str().into()).or_default(),
                            Seg::Param(_) => node.param.get_or_insert_with(Box::default),
                        };
                    }
                    if *catch_all {
                        node.catch_all.push(idx);
                    } else {
                        node.exact.push(idx);
                    }
                }
                PathPattern::Regex { prefix, .. } => {
                    let mut node = &mut root;
                    for l in prefix {
                        node = node.literal.entry(l.as_str().into()).or_default();
                    }
                    node.regex.push(idx);
                }
            }
        }
        let ranks = routes.iter().map(Route::rank).collect();
        Router {
            routes,
            ranks,
            root,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn select(&self, req: &RequestView<'_>) -> Selection<'_> {
        let mut walk = Walk {
            router: self,
            req,
            best: None,
            method_mismatch: false,
            allow: None,
        };
        let rest = Some(req.path.get(1..).unwrap_or(""));
        walk.visit(&self.root, rest);
        if let Some(i) = walk.best {
            return Selection::Found(&self.routes[i as usize]);
        }
        if !walk.method_mismatch {
            return Selection::NotFound;
        }
        // Slow path, only for 405: walk again collecting the methods allowed.
        let mut allowed: Vec<Method> = Vec::new();
        walk.allow = Some(&mut allowed);
        walk.visit(&self.root, rest);
        let list = allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        match HeaderValue::from_str(&list) {
            Ok(v) => Selection::MethodNotAllowed(v),
            Err(_) => Selection::NotFound,
        }
    }

    /// Every route that matches the path, with the reason each other
    /// predicate does or does not hold; for `gwanmun explain`.
    pub fn candidates(&self, req: &RequestView<'_>) -> Vec<(&Route, Option<&'static str>)> {
        let mut out = Vec::new();
        for r in &self.routes {
            if !path_matches(r, req.path) {
                continue;
            }
            out.push((r, mismatch(r, req)));
        }
        out.sort_by(|a, b| {
            self.ranks[b.0.index]
                .cmp(&self.ranks[a.0.index])
                .then(a.0.index.cmp(&b.0.index))
        });
        out
    }
}

struct Walk<'r, 'q, 'a> {
    router: &'r Router,
    req: &'q RequestView<'q>,
    best: Option<u32>,
    method_mismatch: bool,
    allow: Option<&'a mut Vec<Method>>,
}

impl Walk<'_, '_, '_> {
    /// `rest` is the path after the segments consumed so far (without its
    /// leading `/`), or `None` once every segment is consumed.
    fn visit(&mut self, node: &Node, rest: Option<&str>) {
        for &i in &node.catch_all {
            self.consider(i, false);
        }
        for &i in &node.regex {
            self.consider(i, true);
        }
        let Some(rest) = rest else {
            for &i in &node.exact {
                self.consider(i, false);
            }
            return;
        };
        let (seg, next) = match rest.split_once('/') {
            Some((seg, next)) => (seg, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = node.literal.get(seg) {
            self.visit(child, next);
        }
        if let Some(child) = &node.param {
            if !seg.is_empty() {
                self.visit(child, next);
            }
        }
    }

    fn consider(&mut self, i: u32, is_regex: bool) {
        let route = &self.router.routes[i as usize];
        if is_regex && !path_matches(route, self.req.path) {
            return;
        }
        if !others_match(route, self.req) {
            return;
        }
        if let Some(methods) = &route.methods {
            if let Some(allow) = self.allow.as_deref_mut() {
                for m in methods.iter() {
                    if !allow.contains(m) {
                        allow.push(m.clone());
                    }
                }
            }
            if !methods.contains(self.req.method) {
                self.method_mismatch = true;
                return;
            }
        }
        let better = match self.best {
            None => true,
            Some(b) => {
                let (rb, ri) = (self.router.ranks[b as usize], self.router.ranks[i as usize]);
                ri > rb || (ri == rb && i < b)
            }
        };
        if better {
            self.best = Some(i);
        }
    }
}

fn others_match(r: &Route, req: &RequestView<'_>) -> bool {
    mismatch_except_method(r, req).is_none()
}

/// The first predicate other than the path that fails, if any.
fn mismatch(r: &Route, req: &RequestView<'_>) -> Option<&'static str> {
    mismatch_except_method(r, req).or_else(|| match &r.methods {
        Some(m) if !m.contains(req.method) => Some("method"),
        _ => None,
    })
}

fn mismatch_except_method(r: &Route, req: &RequestView<'_>) -> Option<&'static str> {
    if let Some(h) = &r.host {
        if !req.host.is_some_and(|host| h.matches(host)) {
            return Some("host");
        }
    }
    if !headers_match(&r.headers, req.headers) {
        return Some("headers");
    }
    if !query_match(&r.query, req.query) {
        return Some("query");
    }
    None
}

/// Direct (non-trie) path test; the reference the trie must agree with.
pub fn path_matches(r: &Route, path: &str) -> bool {
    match &r.pattern {
        PathPattern::Regex { regex, .. } => regex.is_match(path),
        PathPattern::Segments { segs, catch_all } => {
            let parts: Vec<&str> = path.get(1..).unwrap_or("").split('/').collect();
            if parts.len() < segs.len() || (!catch_all && parts.len() != segs.len()) {
                return false;
            }
            segs.iter().zip(&parts).all(|(s, p)| match s {
                Seg::Literal(l) => l == p,
                Seg::Param(_) => !p.is_empty(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
