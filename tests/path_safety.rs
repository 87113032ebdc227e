//! Issue 2, path safety: raw request targets over a socket. Routing and the
//! upstream see one normalized path; every trick that could make them
//! disagree is refused with 400 and never reaches an upstream.

mod support;

use support::*;

struct Setup {
    gw: Gw,
    public: Upstream,
    tasks: Upstream,
}

/// `/auth/**` is a public route, `/api/tasks/**` a protected one: a path
/// trick that moved a request from one to the other would show here.
async fn setup() -> Setup {
    let public = echo_upstream("public").await;
    let tasks = echo_upstream("tasks").await;
    let ups = format!(
        "  public: {{ endpoints: [\"{}\"] }}\n  tasks: {{ endpoints: [\"{}\"] }}\n",
        public.addr, tasks.addr
    );
    let routes = "  - { id: public, match: { path: /auth/** }, upstream: public }\n  - { id: tasks, match: { path: /api/tasks/** }, upstream: tasks }\n";
    let gw = start_gateway(&config(&ups, routes)).await;
    Setup { gw, public, tasks }
}

impl Setup {
    fn total(&self) -> usize {
        self.public.count() + self.tasks.count()
    }

    /// Sends `GET <target>` as raw bytes; returns the raw reply.
    async fn get_raw(&self, target: &[u8]) -> String {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
        raw(self.gw.addr, &req).await
    }

    /// The target must reach the tasks upstream as exactly `want`.
    async fn to_tasks(&self, target: &str, want: &str) {
        let before = (self.public.count(), self.tasks.count());
        let r = self.get_raw(target.as_bytes()).await;
        assert_eq!(raw_status(&r), 200, "{target}: {r}");
        assert!(r.ends_with("tasks"), "{target}: {r}");
        assert_eq!(
            (self.public.count(), self.tasks.count()),
            (before.0, before.1 + 1),
            "{target}"
        );
        assert_eq!(self.tasks.last().uri, want, "{target}");
    }

    /// The target must be refused with 400 and reach no upstream.
    async fn refused(&self, target: &[u8]) -> String {
        let before = self.total();
        let r = self.get_raw(target).await;
        let shown = String::from_utf8_lossy(target);
        assert_eq!(raw_status(&r), 400, "{shown}: {r}");
        assert_eq!(self.total(), before, "{shown} reached an upstream");
        r
    }

    /// Refused by the gateway's own normalization: the JSON error body.
    async fn refused_json(&self, target: &str) {
        let r = self.refused(target.as_bytes()).await;
        let body = r.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{target}: {e}: {r}"));
        assert_eq!(v["error"], "bad_request", "{target}");
        assert_eq!(v["status"], 400);
        assert!(r.to_ascii_lowercase().contains("\r\nx-request-id: "), "{r}");
    }
}

#[tokio::test]
async fn dot_segments_are_resolved_before_routing() {
    let s = setup().await;
    s.to_tasks("/auth/../api/tasks", "/api/tasks").await;
    s.to_tasks("/auth/../api/tasks/7?x=1", "/api/tasks/7?x=1")
        .await;
    s.to_tasks("/auth/./../api/./tasks/", "/api/tasks/").await;
    s.to_tasks("/../../api/tasks/1", "/api/tasks/1").await;
    s.to_tasks("/api/tasks/x/..", "/api/tasks/").await;
    // and the reverse: out of the protected prefix into the public one
    let r = s.get_raw(b"/api/tasks/../../auth/login").await;
    assert_eq!(raw_status(&r), 200, "{r}");
    assert_eq!(s.public.last().uri, "/auth/login");
    assert_eq!(s.public.count(), 1);
}

#[tokio::test]
async fn encoded_dots_are_decoded_then_resolved() {
    let s = setup().await;
    s.to_tasks("/auth/%2e%2e/api/tasks", "/api/tasks").await;
    s.to_tasks("/auth/%2E%2e/api/tasks/3", "/api/tasks/3").await;
    s.to_tasks("/auth/.%2e/api/tasks", "/api/tasks").await;
    s.to_tasks("/auth/%2e./api/%2e/tasks", "/api/tasks").await;
    // other unreserved escapes are decoded too, so they route like the plain form
    s.to_tasks("/%61pi/t%61sks/%7Eme", "/api/tasks/~me").await;
    // reserved escapes are kept, with upper-case hex
    s.to_tasks("/api/tasks/a%3ab%40c", "/api/tasks/a%3Ab%40c")
        .await;
    assert_eq!(s.public.count(), 0);
}

#[tokio::test]
async fn duplicate_slashes_are_merged() {
    let s = setup().await;
    s.to_tasks("//api///tasks//7", "/api/tasks/7").await;
    s.to_tasks("/api/tasks//", "/api/tasks/").await;
    s.to_tasks("//auth//..//api//tasks", "/api/tasks").await;
    assert_eq!(s.public.count(), 0);
}

#[tokio::test]
async fn encoded_slash_and_backslashes_are_refused() {
    let s = setup().await;
    s.refused_json("/auth%2F..%2Fapi/tasks").await;
    s.refused_json("/api/tasks%2f7").await;
    s.refused_json("/auth/..%2Fapi/tasks").await;
    s.refused_json("/auth/..%5Capi/tasks").await;
    s.refused_json("/api/tasks/%5c").await;
    // a raw backslash is refused too (by the parser or by the gateway)
    s.refused(b"/auth/..\\api/tasks").await;
    s.refused(b"/api\\tasks").await;
}

#[tokio::test]
async fn nul_control_and_invalid_escapes_are_refused() {
    let s = setup().await;
    for t in [
        "/api/tasks/%00",
        "/api/tasks/a%00.json",
        "/api/tasks/%0d%0aX-Injected:%201",
        "/api/tasks/%7f",
        "/api/tasks/%zz",
        "/api/tasks/%2",
        "/api/tasks/%",
        "/api/tasks/%g0",
    ] {
        s.refused_json(t).await;
    }
    // raw NUL / control bytes never get past the request line
    s.refused(b"/api/tasks/\x00").await;
    s.refused(b"/api/tasks/\x01").await;
}

#[tokio::test]
async fn double_encoding_is_refused() {
    let s = setup().await;
    for t in [
        "/auth/%252e%252e/api/tasks",
        "/api/tasks/%252e",
        "/api/tasks/%252F",
        "/api/tasks/%255c",
        // decodes (unreserved %32 -> '2', %65 -> 'e') to %252e
        "/api/tasks/%25%32%65",
    ] {
        s.refused_json(t).await;
    }
    // a lone %25 (a literal percent sign) is fine and stays encoded
    s.to_tasks("/api/tasks/100%25", "/api/tasks/100%25").await;
}

#[tokio::test]
async fn overlong_and_invalid_utf8_are_refused() {
    let s = setup().await;
    for t in [
        "/auth/%c0%ae%c0%ae/api/tasks",
        "/api/tasks/%c0%af",
        "/api/tasks/%e0%80%ae",
        "/api/tasks/%ff",
        "/api/tasks/%c3",
    ] {
        s.refused_json(t).await;
    }
    // valid UTF-8, percent-encoded, passes (and stays encoded)
    s.to_tasks("/api/tasks/%ED%95%9C", "/api/tasks/%ED%95%9C")
        .await;
    // raw non-ASCII bytes in the request line are refused
    s.refused("/api/tasks/한".as_bytes()).await;
}

#[tokio::test]
async fn path_parameters_are_refused() {
    let s = setup().await;
    s.refused_json("/api/tasks;jsessionid=abc").await;
    s.refused_json("/auth;/../api/tasks").await;
    s.refused_json("/api/tasks/..;/..;/auth").await;
    s.refused_json("/api/tasks/%3B").await;
}

#[tokio::test]
async fn absolute_and_asterisk_forms_are_refused() {
    let s = setup().await;
    s.refused_json("http://evil/x").await;
    s.refused_json("http://gw.test/api/tasks").await;
    s.refused_json("https://gw.test/api/tasks/1").await;
    // asterisk-form and authority-form are not origin-form either
    let before = s.total();
    for req in [
        &b"OPTIONS * HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"[..],
        b"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(s.gw.addr, req).await;
        let status = raw_status(&r);
        assert!(status == 400 || status == 404, "{r}");
    }
    assert_eq!(s.total(), before);
}

/// A `#` can not be sent in a request target legitimately; the URI parser
/// (the `http` crate's) ends the path there and drops the fragment. The gateway then
/// routes and forwards the path before `#`, so routing and the upstream
/// still agree: nothing after `#` is ever seen by either.
#[tokio::test]
async fn fragment_is_never_routed_or_forwarded() {
    let s = setup().await;
    let r = s.get_raw(b"/api/tasks/1#/../../auth/x").await;
    match raw_status(&r) {
        200 => {
            assert_eq!(s.tasks.last().uri, "/api/tasks/1");
            assert_eq!(s.public.count(), 0);
        }
        400 => assert_eq!(s.total(), 0),
        other => panic!("unexpected {other}: {r}"),
    }
    let r = s.get_raw(b"/auth/x#/../../api/tasks").await;
    match raw_status(&r) {
        200 => {
            assert_eq!(s.public.last().uri, "/auth/x");
            assert!(s.tasks.requests().iter().all(|q| !q.uri.contains('#')));
        }
        400 => {}
        other => panic!("unexpected {other}: {r}"),
    }
    // an encoded hash is an ordinary (kept) escape
    s.to_tasks("/api/tasks/a%23b", "/api/tasks/a%23b").await;
}

#[tokio::test]
async fn routes_are_case_sensitive() {
    let s = setup().await;
    for t in [
        "/API/tasks",
        "/Api/Tasks/1",
        "/api/TASKS",
        "/AUTH/../api/Tasks",
    ] {
        let r = s.get_raw(t.as_bytes()).await;
        assert_eq!(raw_status(&r), 404, "{t}: {r}");
    }
    assert_eq!(s.total(), 0);
    // escapes are case-insensitive hex, but the decoded letters are not folded
    s.to_tasks("/%61pi/tasks", "/api/tasks").await;
    let r = s.get_raw(b"/%41pi/tasks").await;
    assert_eq!(raw_status(&r), 404, "{r}");
    assert_eq!(s.total(), 1);
}
