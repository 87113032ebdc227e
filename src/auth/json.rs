//! A strict JSON (RFC 8259) reader for a token's header and payload: one
//! pass over the bytes, no value built. It returns where each top-level
//! member's name and value sit; callers read values in place.
//!
//! Stricter than plain JSON parsers on purpose, because two readers of one
//! token must never see two different things in it: a member name repeated
//! in any object at any depth (compared after unescaping), a lone UTF-16
//! surrogate in a `\u` escape, a number that is not a finite double, or
//! nesting deeper than [`MAX_DEPTH`] is refused. Everything else follows
//! the RFC's grammar exactly (no comments, no trailing commas, no leading
//! zeros, no raw control characters in strings).

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

/// Objects and arrays nest at most this deep (a real token: two or three).
pub const MAX_DEPTH: usize = 64;

/// The input is not JSON this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// A top-level member: its name (in place when written without escapes)
/// and the byte range of its value's JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: Name,
    pub value: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// The name's text in the input (it has no escapes).
    At(Range<usize>),
    /// A name written with escapes, decoded.
    Escaped(Box<str>),
}

impl Name {
    /// The name, given the text it was read from.
    pub fn as_str<'a>(&'a self, text: &'a str) -> &'a str {
        match self {
            Name::At(r) => text.get(r.clone()).unwrap_or(""),
            Name::Escaped(n) => n,
        }
    }
}

/// Reads `text` as one JSON object; its members in order, at most `limit`.
pub fn object_members(text: &str, limit: usize) -> Result<Vec<Member>, Refused> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut out = Vec::with_capacity(8);
    r.ws();
    r.expect(b'{')?;
    r.object(1, Some((&mut out, limit)))?;
    r.ws();
    if r.i != r.b.len() {
        return Err(Refused);
    }
    Ok(out)
}

/// The value of a JSON string literal (quotes included in `text`);
/// borrowed when it holds no escapes. `None` for any other JSON text.
pub fn string_value(text: &str) -> Option<Cow<'_, str>> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    if r.peek() != Some(b'"') {
        return None;
    }
    let s = r.string(true).ok()?;
    if r.i != r.b.len() {
        return None;
    }
    Some(match s {
        Str::Plain(range) => Cow::Borrowed(r.slice(range).ok()?),
        Str::Decoded(d) => Cow::Owned(d),
    })
}

struct Reader<'j> {
    text: &'j str,
    b: &'j [u8],
    i: usize,
}

enum Str {
    /// No escapes: the range between the quotes.
    Plain(Range<usize>),
    /// Escapes, decoded (only when asked for; else an empty string).
    Decoded(String),
}

/// Member names of one object seen so far: the first few compared
/// pairwise (no allocation for a usual object), past that a hash set.
/// Each of the few is compared first by a word holding its length and
/// first seven bytes, which for the usual short names (`sub`, `exp`) is
/// the whole name: no byte comparison unless two such words are equal.
struct Seen<'j> {
    few: [&'j str; FEW],
    words: [u64; FEW],
    count: usize,
    set: Option<HashSet<Cow<'j, str>>>,
}

const FEW: usize = 16;

/// A name's length (top byte, saturated) and first seven bytes, put
/// together in a register (a copy through memory would stall the load).
fn name_word(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut w = (b.len().min(255) as u64) << 56;
    for (i, &c) in b.iter().take(7).enumerate() {
        w |= u64::from(c) << (8 * i);
    }
    w
}

impl<'j> Seen<'j> {
    fn new() -> Seen<'j> {
        Seen {
            few: [""; FEW],
            words: [0; FEW],
            count: 0,
            set: None,
        }
    }

    /// False when `name` was seen before.
    fn add(&mut self, name: Cow<'j, str>) -> bool {
        if self.set.is_none() {
            if let Cow::Borrowed(n) = name {
                if self.count < FEW {
                    let word = name_word(n);
                    let seen = &self.few[..self.count];
                    let repeated = self.words[..self.count]
                        .iter()
                        .zip(seen)
                        .any(|(w, s)| *w == word && *s == n);
                    self.few[self.count] = n;
                    self.words[self.count] = word;
                    self.count += 1;
                    return !repeated;
                }
            }
            let mut set = HashSet::with_capacity(self.count * 2 + 1);
            set.extend(self.few[..self.count].iter().map(|n| Cow::Borrowed(*n)));
            self.set = Some(set);
        }
        self.count += 1;
        self.set.as_mut().is_some_and(|s| s.insert(name))
    }
}

impl<'j> Reader<'j> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn rest(&self) -> &'j [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), Refused> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// The members of an object whose `{` has been read; with `out`, the
    /// top level's members are recorded (at most `limit` of them).
    fn object(
        &mut self,
        depth: usize,
        mut out: Option<(&mut Vec<Member>, usize)>,
    ) -> Result<(), Refused> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut seen = Seen::new();
        loop {
            self.ws();
            let (text, name) = match self.string(true)? {
                Str::Plain(range) => (Cow::Borrowed(self.slice(range.clone())?), Name::At(range)),
                // The decoded name is kept twice only when it is recorded.
                Str::Decoded(d) if out.is_some() => {
                    let boxed: Box<str> = d.as_str().into();
                    (Cow::Owned(d), Name::Escaped(boxed))
                }
                Str::Decoded(d) => (Cow::Owned(d), Name::At(0..0)),
            };
            if !seen.add(text) {
                return Err(Refused);
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            let start = self.i;
            self.value(depth)?;
            if let Some((out, limit)) = out.as_mut() {
                if out.len() >= *limit {
                    return Err(Refused);
                }
                out.push(Member {
                    name,
                    value: start..self.i,
                });
            }
            if self.closes(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Refused> {
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            if self.closes(b']')? {
                return Ok(());
            }
        }
    }

    /// After a container's element: `,` (false: another follows) or the
    /// container's `close` (true).
    fn closes(&mut self, close: u8) -> Result<bool, Refused> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(Refused),
        }
    }

    /// One value inside a container at `depth`.
    fn value(&mut self, depth: usize) -> Result<(), Refused> {
        match self.peek() {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => Err(Refused),
            Some(b'{') => {
                self.i += 1;
                self.object(depth + 1, None)
            }
            Some(b'[') => {
                self.i += 1;
                self.array(depth + 1)
            }
            Some(b'"') => self.string(false).map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Refused),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Refused> {
        if self.rest().starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Refused)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as a
    /// double.
    fn number(&mut self) -> Result<(), Refused> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int = match self.peek() {
            Some(b'0') => {
                self.i += 1;
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Refused),
        };
        let mut plain = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            plain = false;
            if self.digits() == 0 {
                return Err(Refused);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            plain = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Refused);
            }
        }
        // An integer of up to 300 digits is below f64::MAX (about 1.8e308).
        if plain && int <= 300 {
            return Ok(());
        }
        match self.slice(start..self.i)?.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(()),
            _ => Err(Refused),
        }
    }

    /// A string whose `"` is next. With `decode`, escapes are decoded into
    /// `Str::Decoded`; without, they are only checked.
    #[inline]
    fn string(&mut self, decode: bool) -> Result<Str, Refused> {
        self.expect(b'"')?;
        let start = self.i;
        self.plain_run();
        if self.peek() == Some(b'"') {
            self.i += 1;
            return Ok(Str::Plain(start..self.i - 1));
        }
        self.escaped(start, decode)
    }

    /// The rest of a string from `start` (after its `"`) whose first run
    /// stopped short of its closing quote: an escape, or an error. Out of
    /// line: a token's strings rarely hold escapes.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize, decode: bool) -> Result<Str, Refused> {
        if self.peek() != Some(b'\\') {
            return Err(Refused);
        }
        let mut out = String::new();
        if decode {
            out.push_str(self.slice(start..self.i)?);
        }
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Str::Decoded(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.escape()?;
                    if decode {
                        out.push(c);
                    }
                }
                _ => return Err(Refused),
            }
            let run = self.i;
            self.plain_run();
            if decode {
                out.push_str(self.slice(run..self.i)?);
            }
        }
    }

    /// Moves to the next `"`, `\` or control character (or the end): eight
    /// bytes a step, then byte by byte.
    #[inline]
    fn plain_run(&mut self) {
        let b = self.b;
        let mut i = self.i;
        while let Some(chunk) = b.get(i..i + 8) {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            let stops = stops(u64::from_le_bytes(word));
            if stops != 0 {
                self.i = i + stops.trailing_zeros() as usize / 8;
                return;
            }
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            i += 1;
        }
        self.i = i;
    }

    /// Input ranges start and end at ASCII bytes, so they fall on character
    /// boundaries; checked anyway, never assumed.
    fn slice(&self, range: Range<usize>) -> Result<&'j str, Refused> {
        self.text.get(range).ok_or(Refused)
    }

    /// The character of an escape whose `\` has been read.
    fn escape(&mut self) -> Result<char, Refused> {
        let c = self.peek().ok_or(Refused)?;
        self.i += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if !self.rest().starts_with(b"\\u") {
                            return Err(Refused);
                        }
                        self.i += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(Refused);
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Refused),
                    n => n,
                };
                char::from_u32(code).ok_or(Refused)?
            }
            _ => return Err(Refused),
        })
    }

    fn hex4(&mut self) -> Result<u32, Refused> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Refused)?;
        let mut n = 0u32;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Refused),
            };
            n = n * 16 + u32::from(v);
        }
        self.i += 4;
        Ok(n)
    }
}

/// The high bit of each byte of `word` that is `"`, `\` or below 0x20.
/// Bytes above the first such byte may be flagged wrongly (a borrow carries
/// upwards), never the first: read it with `trailing_zeros`.
fn stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (zero_byte(quote) | zero_byte(backslash) | control) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Result<Vec<String>, Refused> {
        Ok(object_members(text, usize::MAX)?
            .into_iter()
            .map(|m| match m.name {
                Name::At(r) => text[r].to_owned(),
                Name::Escaped(n) => n.into(),
            })
            .collect())
    }

    #[test]
    fn reads_members_and_value_spans() {
        let text = r#" {"a": 1 , "b\u0063":[true,{"x":null}],"":"s\"t"} "#;
        let m = object_members(text, usize::MAX).expect("object");
        assert_eq!(names(text).expect("names"), ["a", "bc", ""]);
        let values: Vec<&str> = m.iter().map(|m| &text[m.value.clone()]).collect();
        assert_eq!(values, ["1", r#"[true,{"x":null}]"#, r#""s\"t""#]);
        assert_eq!(object_members("{}", 0), Ok(vec![]));
        assert_eq!(object_members(r#"{"a":1}"#, 0), Err(Refused));
    }

    #[test]
    fn refuses_what_json_does_not_allow() {
        for bad in [
            "",
            "[]",
            "1",
            "{",
            "{}x",
            "{} {}",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{a:1}"#,
            r#"{'a':1}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":1e400}"#,
            r#"{"a":[-1e309]}"#,
            r#"{"a":NaN}"#,
            r#"{"a":tru}"#,
            r#"{"a":True}"#,
            "{\"a\":\"x\ny\"}",
            "{\"a\":\"\t\"}",
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"x}"#,
            "{\"a\":1}\u{a0}",
            "/*c*/{}",
        ] {
            assert_eq!(object_members(bad, usize::MAX), Err(Refused), "{bad:?}");
        }
    }

    #[test]
    fn refuses_repeated_names_at_any_depth() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":{"b":1,"b":1}}"#,
            r#"{"x":[{"c":[{"d":1,"d":2}]}]}"#,
        ] {
            assert_eq!(object_members(bad, usize::MAX), Err(Refused), "{bad}");
        }
        // Past the pairwise few, through the set; escaped names too.
        let many: Vec<String> = (0..40).map(|i| format!(r#""n{i}":{i}"#)).collect();
        let text = format!("{{{}}}", many.join(","));
        assert_eq!(names(&text).expect("many").len(), 40);
        let text = format!(r#"{{{},"n\u0033":0}}"#, many.join(","));
        assert_eq!(object_members(&text, usize::MAX), Err(Refused));
        let text = format!(r#"{{"\u0061":0,{}}}"#, many.join(","));
        assert!(object_members(&text, usize::MAX).is_ok());
        assert_eq!(
            object_members(&format!(r#"{{"\u0061":0,{},"a":1}}"#, many.join(",")), 99),
            Err(Refused)
        );
        // The same name in different objects is fine.
        assert!(object_members(r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#, 9).is_ok());
        // Long names that share their length and first seven bytes are
        // compared in full: different, accepted; equal, refused.
        let long = r#"{"permissions_read":1,"permissions_edit":2,"permission":3}"#;
        assert_eq!(names(long).expect("distinct").len(), 3);
        let repeated = r#"{"permissions_read":1,"permission":2,"permissions_read":3}"#;
        assert_eq!(object_members(repeated, usize::MAX), Err(Refused));
        let empty = r#"{"":1,"x":2,"":3}"#;
        assert_eq!(object_members(empty, usize::MAX), Err(Refused));
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        assert!(object_members(&nest(MAX_DEPTH - 1), 1).is_ok());
        assert_eq!(object_members(&nest(MAX_DEPTH), 1), Err(Refused));
    }

    #[test]
    fn numbers_as_the_grammar_says() {
        for good in [
            "0", "-0", "1", "-12", "1.5", "0.0", "1e5", "1E+5", "1e-5", "-0.5e-3", "17e8",
        ] {
            assert!(
                object_members(&format!(r#"{{"n":{good}}}"#), 1).is_ok(),
                "{good}"
            );
        }
        let long = "9".repeat(300);
        assert!(object_members(&format!(r#"{{"n":{long}}}"#), 1).is_ok());
        let too_long = "9".repeat(309);
        assert_eq!(
            object_members(&format!(r#"{{"n":{too_long}}}"#), 1),
            Err(Refused)
        );
    }

    #[test]
    fn string_runs_stop_at_every_position() {
        // Every position of the stopping byte relative to the 8-byte steps,
        // and bytes just around the stopping ranges.
        for len in 0..20 {
            for stop in ["", "\\n", "\\u0041", "\n", "\u{1f}", "\\"] {
                let s = format!(
                    "{{\"a\":\"{}{stop}\"}}",
                    "\u{20}!#[]~\u{7f}"
                        .repeat(3)
                        .chars()
                        .take(len)
                        .collect::<String>()
                );
                let want = serde_json::from_str::<serde_json::Value>(&s).is_ok();
                assert_eq!(object_members(&s, 1).is_ok(), want, "{s:?}");
                assert_eq!(want, !stop.starts_with(['\n', '\u{1f}']) && stop != "\\");
            }
        }
        let mut w = [b'a'; 8];
        for i in 0..8 {
            for c in [b'"', b'\\', 0, 0x1f] {
                w[i] = c;
                let s = stops(u64::from_le_bytes(w));
                assert_eq!(s.trailing_zeros() / 8, i as u32);
                w[i] = b'a';
            }
            for c in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff] {
                w[i] = c;
                assert_eq!(stops(u64::from_le_bytes(w)), 0, "{c}");
                w[i] = b'a';
            }
        }
    }

    #[test]
    fn string_values() {
        assert_eq!(string_value(r#""abc""#), Some(Cow::Borrowed("abc")));
        assert_eq!(
            string_value(r#""a\/b\u00e9\ud83d\ude00\n""#).as_deref(),
            Some("a/bé😀\n")
        );
        for not in ["abc", r#""a"x"#, "1", r#""\ud800""#, "\"a", ""] {
            assert_eq!(string_value(not), None, "{not}");
        }
    }

    /// Against serde_json on generated JSON: the same verdict (serde_json
    /// plus a duplicate-name check), the same names and value spans.
    mod against_serde_json {
        use super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        fn leaf() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| format!("{f:e}")),
                "[a-c\\\\\"/\u{e9}\u{1F600} ]{0,6}"
                    .prop_map(|s| serde_json::to_string(&s).expect("s")),
                Just(r#""\u0041\n\/""#.to_owned()),
            ]
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(r#""a""#.to_owned()),
                Just(r#""b""#.to_owned()),
                Just(r#""\u0061""#.to_owned()),
                Just(r#""c""#.to_owned()),
            ]
        }

        fn json() -> impl Strategy<Value = String> {
            leaf().prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((name(), inner), 0..4).prop_map(|v| {
                        let m: Vec<String> =
                            v.into_iter().map(|(k, v)| format!("{k} : {v}")).collect();
                        format!("{{{}}}", m.join(","))
                    }),
                ]
            })
        }

        /// serde_json's verdict with repeated names (after unescaping)
        /// refused, as the reader does.
        fn reference(text: &str) -> Option<Vec<(String, String)>> {
            fn no_repeats(v: &Value) -> bool {
                match v {
                    Value::Array(a) => a.iter().all(no_repeats),
                    Value::Object(o) => o.values().all(no_repeats),
                    _ => true,
                }
            }
            let v: Value = serde_json::from_str(text).ok()?;
            let obj = v.as_object()?;
            // serde_json keeps the last of a repeated name: count names in
            // the text's own top-level members through RawValue.
            let raw: Vec<(String, Box<serde_json::value::RawValue>)> =
                serde_json::from_str::<RawObject>(text).ok()?.0;
            let distinct: std::collections::HashSet<&String> = raw.iter().map(|(k, _)| k).collect();
            if distinct.len() != raw.len() || !no_repeats(&v) || obj.len() != raw.len() {
                return None;
            }
            Some(
                raw.into_iter()
                    .map(|(k, v)| (k, v.get().to_owned()))
                    .collect(),
            )
        }

        struct RawObject(Vec<(String, Box<serde_json::value::RawValue>)>);
        impl<'de> serde::Deserialize<'de> for RawObject {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = RawObject;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<RawObject, A::Error> {
                        let mut out = Vec::new();
                        while let Some((k, v)) = m.next_entry()? {
                            out.push((k, v));
                        }
                        Ok(RawObject(out))
                    }
                }
                d.deserialize_map(V)
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn same_verdict_names_and_values(body in prop::collection::vec((name(), json()), 0..5)) {
                let m: Vec<String> = body.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                let text = format!("{{{}}}", m.join(","));
                // Nested repeats only reach serde_json's Value as one
                // entry; compare through a re-serialization-free check:
                // refuse if any object in the text repeats a name.
                let ours = object_members(&text, usize::MAX).ok().map(|ms| {
                    ms.into_iter()
                        .map(|m| {
                            let n = match m.name {
                                Name::At(r) => text[r].to_owned(),
                                Name::Escaped(n) => n.into(),
                            };
                            (n, text[m.value].to_owned())
                        })
                        .collect::<Vec<_>>()
                });
                let theirs = reference_strict(&text);
                prop_assert_eq!(ours, theirs, "{}", text);
            }

            #[test]
            fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    let _ = object_members(text, 8);
                    let _ = string_value(text);
                }
            }
        }

        /// `reference`, with repeated names inside nested values found
        /// through serde_json too (each nested object read as raw members).
        fn reference_strict(text: &str) -> Option<Vec<(String, String)>> {
            fn nested_ok(raw: &str) -> bool {
                let t = raw.trim_start();
                if t.starts_with('{') {
                    match serde_json::from_str::<RawObject>(raw) {
                        Ok(o) => {
                            let d: std::collections::HashSet<&String> =
                                o.0.iter().map(|(k, _)| k).collect();
                            d.len() == o.0.len() && o.0.iter().all(|(_, v)| nested_ok(v.get()))
                        }
                        Err(_) => false,
                    }
                } else if t.starts_with('[') {
                    match serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(raw) {
                        Ok(items) => items.iter().all(|v| nested_ok(v.get())),
                        Err(_) => false,
                    }
                } else {
                    true
                }
            }
            let top = reference(text)?;
            top.iter().all(|(_, v)| nested_ok(v)).then_some(top)
        }
    }
}
