//! Request path normalization: the one place where a client's path becomes
//! the path that routing, policies and the upstream all see.
//!
//! The rule, applied before any decision (and the upstream receives its
//! result):
//! 1. Only origin-form paths (`/...`) are accepted.
//! 2. Every byte must be a `pchar` or `/`; anything else (space, `\`, `"`,
//!    `<`, `{`, non-ASCII, control bytes) is rejected.
//! 3. `;` (path parameters, a classic Tomcat/Spring bypass), raw or as
//!    `%3B`, is rejected unless `paths.allow_semicolon` is set.
//! 4. Percent-escapes: unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!    decoded; other escapes are kept, with upper-case hex. `%2F` (unless
//!    `paths.allow_encoded_slash`), `%5C`, `%00` and other control bytes,
//!    malformed escapes, and double encoding (`%25` followed by two hex
//!    digits, e.g. `%252e`) are rejected. The decoded bytes must be valid
//!    UTF-8, which also rejects overlong forms such as `%C0%AE`.
//! 5. Duplicate slashes are merged and dot segments removed (RFC 3986
//!    5.2.4); `..` never climbs above the root. A trailing slash is kept.
//!
//! Matching is case-sensitive; nothing is lower-cased.

use std::borrow::Cow;

/// What path normalization tolerates beyond the strict default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathPolicy {
    /// Keep `%2F` encoded inside a segment instead of rejecting it.
    pub allow_encoded_slash: bool,
    /// Accept `;` as an ordinary character instead of rejecting it.
    pub allow_semicolon: bool,
}

/// Why a path was refused; each maps to a 400 with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotOriginForm,
    ForbiddenByte,
    Semicolon,
    BadEscape,
    EncodedSlash,
    EncodedBackslash,
    EncodedControl,
    DoubleEncoding,
    InvalidUtf8,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "request target must be an absolute path",
            PathError::ForbiddenByte => "path contains a forbidden character",
            PathError::Semicolon => "path parameters (;) are not allowed",
            PathError::BadEscape => "path contains an invalid percent-escape",
            PathError::EncodedSlash => "encoded slash (%2F) is not allowed in paths",
            PathError::EncodedBackslash => "encoded backslash (%5C) is not allowed in paths",
            PathError::EncodedControl => "encoded control character in path",
            PathError::DoubleEncoding => "double percent-encoding is not allowed in paths",
            PathError::InvalidUtf8 => "path does not decode to valid UTF-8",
        }
    }
}

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes allowed raw in a path: pchar (unreserved, sub-delims, `:`, `@`),
/// `/`, and `%` (checked separately).
#[inline]
fn is_path_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Normalizes `path` (the raw path of the request target, without query).
/// Returns the input unchanged (borrowed) when it is already normal.
pub fn normalize(path: &str, policy: PathPolicy) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    let mut needs_work = false;
    let mut prev = 0u8;
    for &b in bytes {
        if !is_path_byte(b) {
            return Err(PathError::ForbiddenByte);
        }
        if b == b';' && !policy.allow_semicolon {
            return Err(PathError::Semicolon);
        }
        if b == b'%' || (prev == b'/' && (b == b'/' || b == b'.')) {
            needs_work = true;
        }
        prev = b;
    }
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(bytes, policy)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
}

/// Step 4: decode unreserved escapes, keep (upper-cased) the others, reject
/// the dangerous ones, and check that the decoded bytes are UTF-8.
fn decode(bytes: &[u8], policy: PathPolicy) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    // The bytes as a backend that fully decodes would see them.
    let mut raw: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b as char);
            raw.push(b);
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = h << 4 | l;
        match v {
            b'/' if !policy.allow_encoded_slash => return Err(PathError::EncodedSlash),
            // A backend that decodes before stripping path parameters would
            // read `/admin%3Bx` as `/admin`: refuse it like a raw `;`.
            b';' if !policy.allow_semicolon => return Err(PathError::Semicolon),
            b'\\' => return Err(PathError::EncodedBackslash),
            0..=0x1F | 0x7F => return Err(PathError::EncodedControl),
            b'%' => {
                let next_is_escape = bytes.get(i + 3).copied().and_then(hex).is_some()
                    && bytes.get(i + 4).copied().and_then(hex).is_some();
                if next_is_escape {
                    return Err(PathError::DoubleEncoding);
                }
            }
            _ => {}
        }
        if is_unreserved(v) {
            out.push(v as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(v >> 4) as usize] as char);
            out.push(HEX_UPPER[(v & 0xF) as usize] as char);
        }
        raw.push(v);
        i += 3;
    }
    if std::str::from_utf8(&raw).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    // Decoding the unreserved escapes can itself produce a new escape
    // (`%25%32%65` -> `%252e`): refuse what would decode again.
    if has_double_escape(out.as_bytes()) {
        return Err(PathError::DoubleEncoding);
    }
    Ok(out)
}

fn has_double_escape(b: &[u8]) -> bool {
    b.windows(5).any(|w| {
        w[0] == b'%' && w[1] == b'2' && w[2] == b'5' && hex(w[3]).is_some() && hex(w[4]).is_some()
    })
}

/// Step 5: merge slashes, resolve `.` and `..`, keep a trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in path.split('/').skip(1) {
        trailing = false;
        match seg {
            "" => trailing = true,
            "." => trailing = true,
            ".." => {
                out.pop();
                trailing = true;
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if trailing || out.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize(p, PathPolicy::default()).map(|c| c.into_owned())
    }

    #[test]
    fn leaves_normal_paths_alone() {
        for p in [
            "/",
            "/api/tasks",
            "/api/tasks/",
            "/a-b_c~d.e/f:g@h",
            "/x.y/..z",
        ] {
            assert_eq!(n(p).as_deref(), Ok(p));
        }
        assert!(matches!(
            normalize("/api/tasks", PathPolicy::default()),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn removes_dot_segments_and_duplicate_slashes() {
        let cases = [
            ("/auth/../api/tasks", "/api/tasks"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("//api///tasks//7", "/api/tasks/7"),
            ("/api/tasks//", "/api/tasks/"),
            ("/..", "/"),
            ("/.", "/"),
            ("//", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(n(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn decodes_unreserved_escapes_then_resolves_dots() {
        assert_eq!(n("/auth/%2e%2e/api/tasks").as_deref(), Ok("/api/tasks"));
        assert_eq!(n("/auth/%2E./api").as_deref(), Ok("/api"));
        assert_eq!(n("/%61pi/t%61sks").as_deref(), Ok("/api/tasks"));
        assert_eq!(n("/a%7eb").as_deref(), Ok("/a~b"));
    }

    #[test]
    fn keeps_reserved_escapes_upper_cased() {
        assert_eq!(n("/a%3fb").as_deref(), Ok("/a%3Fb"));
        assert_eq!(n("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
        assert_eq!(n("/100%25").as_deref(), Ok("/100%25"));
        assert_eq!(n("/a%20b").as_deref(), Ok("/a%20b"));
    }

    #[test]
    fn rejects_tricks() {
        let cases = [
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%5Cb", PathError::EncodedBackslash),
            ("/a\\b", PathError::ForbiddenByte),
            ("/a%00b", PathError::EncodedControl),
            ("/a%0d%0ab", PathError::EncodedControl),
            ("/a%zzb", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/%252e%252e/admin", PathError::DoubleEncoding),
            ("/a%25%32%65", PathError::DoubleEncoding),
            ("/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
            ("/%ff", PathError::InvalidUtf8),
            ("/admin;/x", PathError::Semicolon),
            ("/api/tasks;jsessionid=1", PathError::Semicolon),
            ("/admin%3Bx", PathError::Semicolon),
            ("/admin%3b", PathError::Semicolon),
            ("*", PathError::NotOriginForm),
            ("http://evil/x", PathError::NotOriginForm),
            ("", PathError::NotOriginForm),
            ("/a b", PathError::ForbiddenByte),
            ("/a\u{e9}", PathError::ForbiddenByte),
            ("/a#b", PathError::ForbiddenByte),
            ("/a{b}", PathError::ForbiddenByte),
        ];
        for (input, want) in cases {
            assert_eq!(n(input), Err(want), "{input}");
        }
    }

    #[test]
    fn policy_relaxations() {
        let p = PathPolicy {
            allow_encoded_slash: true,
            allow_semicolon: true,
        };
        assert_eq!(normalize("/a%2fb", p).as_deref(), Ok("/a%2Fb"));
        assert_eq!(normalize("/a;v=1/b", p).as_deref(), Ok("/a;v=1/b"));
        assert_eq!(normalize("/a%3bv/b", p).as_deref(), Ok("/a%3Bv/b"));
    }

    /// A slow, obviously-correct reference for dot-segment removal over
    /// plain segments (RFC 3986 5.2.4 with merged slashes).
    fn reference(path: &str) -> String {
        let mut stack: Vec<String> = Vec::new();
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        for s in &segs {
            match *s {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                s => stack.push(s.to_string()),
            }
        }
        let last = segs.last().copied().unwrap_or("");
        let trailing = matches!(last, "" | "." | "..");
        let mut out = format!("/{}", stack.join("/"));
        if trailing && !stack.is_empty() {
            out.push('/');
        }
        out
    }

    proptest! {
        #[test]
        fn matches_reference_and_is_idempotent(segs in proptest::collection::vec(
            prop_oneof![Just("".to_string()), Just(".".to_string()), Just("..".to_string()),
                        "[a-z0-9]{1,3}", Just("%2e".to_string()), Just("%2E%2e".to_string())], 0..8)) {
            let path = format!("/{}", segs.join("/"));
            let got = n(&path).expect("only safe characters");
            let plain = path.replace("%2e", ".").replace("%2E", ".");
            prop_assert_eq!(&got, &reference(&plain));
            prop_assert_eq!(n(&got).expect("normal"), got.clone());
            prop_assert!(!got.contains("//"));
            prop_assert!(!got.split('/').any(|s| s == "." || s == ".."));
        }

        #[test]
        fn never_panics_and_output_is_safe(path in "/[ -~]{0,40}") {
            if let Ok(out) = n(&path) {
                prop_assert!(out.starts_with('/'));
                prop_assert!(!out.contains('\\'));
                prop_assert!(!out.to_ascii_lowercase().contains("%2f"));
                prop_assert!(!out.split('/').any(|s| s == "." || s == ".."));
            }
        }
    }
}
