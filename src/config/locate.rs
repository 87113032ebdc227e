//! Maps field paths (`routes[2].match.path`) to source positions and back.
//!
//! serde reports type errors with a line and column but without the field's
//! path; `compile` reports semantic errors with a path but without a
//! position. One walk over the YAML events gives both directions, so every
//! config error carries file, line, column and field path.

use granit_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Default)]
pub struct SourceMap {
    /// (position, path) for every key and value node, in document order.
    entries: Vec<(Pos, String)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

impl SourceMap {
    /// Builds the map; a document that does not parse yields an empty map
    /// (serde reports the syntax error itself).
    pub fn build(text: &str) -> SourceMap {
        let mut entries = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        for ev in Parser::new_from_str(text) {
            let Ok((event, span)) = ev else { break };
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map { path, key }) = stack.last_mut() {
                        if key.is_none() {
                            let p = join_key(path, &value);
                            entries.push((pos, p));
                            *key = Some(value.into_owned());
                            continue;
                        }
                    }
                    let p = value_path(&mut stack);
                    entries.push((pos, p));
                }
                Event::MappingStart(..) => {
                    let p = value_path(&mut stack);
                    entries.push((pos, p.clone()));
                    stack.push(Frame::Map { path: p, key: None });
                }
                Event::SequenceStart(..) => {
                    let p = value_path(&mut stack);
                    entries.push((pos, p.clone()));
                    stack.push(Frame::Seq { path: p, index: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Alias(..) => {
                    let p = value_path(&mut stack);
                    entries.push((pos, p));
                }
                _ => {}
            }
        }
        SourceMap { entries }
    }

    /// Where the value (or key) at `path` starts. Falls back to the nearest
    /// ancestor that exists (a missing field is reported at its parent).
    pub fn position_of(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some((pos, _)) = self.entries.iter().rev().find(|(_, q)| q == p) {
                return Some(*pos);
            }
            p = parent(p)?;
        }
    }

    /// The deepest path whose node starts at or before `pos`.
    pub fn path_at(&self, pos: Pos) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(p, _)| *p <= pos)
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())))
            .map(|(_, path)| path.as_str())
    }
}

/// The path of the next value in the innermost collection, advancing it.
fn value_path(stack: &mut [Frame]) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { path, key }) => match key.take() {
            Some(k) => join_key(path, &k),
            // A complex (non-scalar) key: rare in our schema, reported at the map.
            None => path.clone(),
        },
        Some(Frame::Seq { path, index }) => {
            let p = format!("{path}[{index}]");
            *index += 1;
            p
        }
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "listeners:\n  - name: public\n    bind: 0.0.0.0:8080\nroutes:\n  - id: a\n    match: { path: /x }\n    upstream: nope\n";

    #[test]
    fn finds_positions_of_nested_fields() {
        let m = SourceMap::build(DOC);
        assert_eq!(
            m.position_of("listeners[0].bind"),
            Some(Pos {
                line: 3,
                column: 11
            })
        );
        assert_eq!(
            m.position_of("routes[0].upstream"),
            Some(Pos {
                line: 7,
                column: 15
            })
        );
        assert_eq!(
            m.position_of("routes[0].match.path"),
            Some(Pos {
                line: 6,
                column: 20
            })
        );
        // a missing field falls back to its parent
        assert_eq!(
            m.position_of("routes[0].match.host"),
            m.position_of("routes[0].match")
        );
    }

    #[test]
    fn finds_the_path_at_a_position() {
        let m = SourceMap::build(DOC);
        assert_eq!(
            m.path_at(Pos {
                line: 7,
                column: 15
            }),
            Some("routes[0].upstream")
        );
        assert_eq!(
            m.path_at(Pos { line: 3, column: 5 }),
            Some("listeners[0].bind")
        );
    }
}
