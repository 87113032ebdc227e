//! The `gwanmun` binary's command line: `check` on good and bad configs
//! (exit codes, `FILE:LINE:COLUMN`, field paths, expectations), `${VAR}`
//! expansion, `explain`, and `--help`.

mod support;
use support::bin::{run_cli, TempDir};

/// The head every bad-config case below shares (routes are appended).
const HEAD: &str = "listeners:
  - name: public
    bind: 127.0.0.1:8080
upstreams:
  task:
    endpoints: [\"127.0.0.1:9101\"]
routes:
";

/// One bad config and what `check` must say about it.
struct Bad {
    name: &'static str,
    yaml: String,
    /// `LINE:COLUMN` of the offending value.
    at: &'static str,
    field: &'static str,
    /// A fragment of the message saying what was wrong or expected.
    expect: &'static str,
}

fn with_routes(routes: &str) -> String {
    format!("{HEAD}{routes}")
}

fn bad_configs() -> Vec<Bad> {
    vec![
        Bad {
            name: "unknown_key",
            yaml: "listeners:\n  - name: public\n    bind: 127.0.0.1:8080\n    colour: blue\n"
                .into(),
            at: "4:5",
            field: "listeners[0].colour",
            expect: "unknown field `colour`, expected one of name, bind",
        },
        Bad {
            name: "undefined_upstream",
            yaml: with_routes("  - id: tasks\n    match: { path: /api/** }\n    upstream: tusk\n"),
            at: "10:15",
            field: "routes[0].upstream",
            expect: "undefined upstream `tusk`; defined: [task]",
        },
        Bad {
            name: "duplicate_route_id",
            yaml: with_routes(
                "  - id: tasks\n    match: { path: /a/** }\n    upstream: task\n  - id: tasks\n    match: { path: /b/** }\n    upstream: task\n",
            ),
            at: "11:9",
            field: "routes[1].id",
            expect: "duplicate route id `tasks`",
        },
        Bad {
            name: "bad_path_regex",
            yaml: with_routes("  - id: r\n    match: { path: \"~^/x/[0-9+$\" }\n    upstream: task\n"),
            at: "9:20",
            field: "routes[0].match.path",
            expect: "invalid regex",
        },
        Bad {
            name: "bad_header_regex",
            yaml: with_routes(
                "  - id: r\n    match:\n      path: /x\n      headers: { X-Canary: \"~(unclosed\" }\n    upstream: task\n",
            ),
            at: "11:28",
            field: "routes[0].match.headers.X-Canary",
            expect: "invalid regex",
        },
        Bad {
            name: "bad_duration",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x }\n    upstream: task\n    timeout: 15 parsecs\n",
            ),
            at: "11:14",
            field: "routes[0].timeout",
            expect: "invalid duration `15 parsecs`: expected e.g. 500ms, 15s",
        },
        Bad {
            name: "bad_size",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x }\n    upstream: task\n    max_body: 1TiB\n",
            ),
            at: "11:15",
            field: "routes[0].max_body",
            expect: "invalid size `1TiB`: expected e.g. 512, 64KiB, 1MiB",
        },
        Bad {
            name: "bad_cidr",
            yaml: format!(
                "trusted_proxies: [10.0.0.0/33]\n{}",
                with_routes("  - id: r\n    match: { path: /x }\n    upstream: task\n")
            ),
            at: "1:19",
            field: "trusted_proxies[0]",
            expect: "invalid CIDR `10.0.0.0/33`: expected e.g. 10.0.0.0/8",
        },
        Bad {
            name: "bad_listener_address",
            yaml: "listeners:\n  - name: public\n    bind: localhost:http\n".into(),
            at: "3:11",
            field: "listeners[0].bind",
            expect: "invalid address `localhost:http`: expected IP:PORT",
        },
        Bad {
            name: "invalid_endpoint",
            yaml: "listeners:\n  - name: public\n    bind: 127.0.0.1:8080\nupstreams:\n  task:\n    endpoints: [\"http://127.0.0.1:9101/x\"]\n".into(),
            at: "6:17",
            field: "upstreams.task.endpoints[0]",
            expect: "invalid endpoint `http://127.0.0.1:9101/x`: expected HOST:PORT",
        },
        Bad {
            name: "upstream_and_respond",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x }\n    upstream: task\n    respond: { status: 200, body: hi }\n",
            ),
            at: "11:14",
            field: "routes[0].respond",
            expect: "exactly one of `upstream`, `redirect`, `respond` or `health`",
        },
        Bad {
            name: "yaml_syntax",
            yaml: with_routes("  - id: r\n    match: { path: /x\n    upstream: task\n"),
            at: "10:13",
            field: "routes[0].match.path",
            expect: "did not find expected ',' or '}'",
        },
        Bad {
            name: "unset_variable",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x }\n    upstream: ${GWANMUN_A2_SURELY_UNSET}\n",
            ),
            at: "10:15",
            field: "routes[0].upstream",
            expect: "environment variable `GWANMUN_A2_SURELY_UNSET` is not set",
        },
        Bad {
            name: "empty_methods",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x, methods: [] }\n    upstream: task\n",
            ),
            at: "9:33",
            field: "routes[0].match.methods",
            expect: "an empty method list matches nothing",
        },
        Bad {
            name: "bad_redirect_status",
            yaml: with_routes(
                "  - id: r\n    match: { path: /old/** }\n    redirect: { to: /new/, status: 200 }\n",
            ),
            at: "10:36",
            field: "routes[0].redirect.status",
            expect: "invalid redirect status 200: expected 301, 302, 303, 307 or 308",
        },
        Bad {
            name: "bad_method",
            yaml: with_routes(
                "  - id: r\n    match: { path: /x, methods: [GET, \"FE TCH\"] }\n    upstream: task\n",
            ),
            at: "9:39",
            field: "routes[0].match.methods[1]",
            expect: "invalid method `FE TCH`: expected e.g. GET",
        },
    ]
}

#[test]
fn check_rejects_bad_configs_with_locations() {
    let dir = TempDir::new("cli");
    let cases = bad_configs();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in &cases {
        let file = dir.write(&format!("{}.yaml", case.name), &case.yaml);
        let file = file.to_str().expect("utf-8 path");
        let out = run_cli(&["check", "-c", file], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let located = format!("{file}:{}: field `{}`: ", case.at, case.field);
        let ok = out.status.code() == Some(1)
            && stderr.contains(&located)
            && stderr.contains(case.expect)
            && !stdout.contains(": OK");
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, wanted `{located}` and `{}` in stderr:\n{stderr}",
                case.name,
                out.status.code(),
                case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_reports_every_error_not_just_the_first() {
    let dir = TempDir::new("cli");
    let yaml = with_routes(
        "  - id: a\n    match: { path: /a }\n    upstream: nope\n  - id: b\n    match: { path: /b, methods: [] }\n    upstream: task\n    timeout: 0s\n",
    );
    let file = dir.write("multi.yaml", &yaml);
    let file = file.to_str().expect("utf-8 path");
    let out = run_cli(&["check", "-c", file], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        format!("{file}:10:15: field `routes[0].upstream`"),
        format!("{file}:12:33: field `routes[1].match.methods`"),
        format!("{file}:14:14: field `routes[1].timeout`: must be greater than zero"),
        "3 error(s)".to_owned(),
    ] {
        assert!(stderr.contains(&want), "missing `{want}` in:\n{stderr}");
    }
}

#[test]
fn check_a_missing_file_fails() {
    let dir = TempDir::new("cli");
    let path = dir.path().join("absent.yaml");
    let path = path.to_str().expect("utf-8 path");
    let out = run_cli(&["check", "-c", path], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(path) && stderr.contains("cannot read file"),
        "{stderr}"
    );
}

/// A good config using `${VAR}` and `${VAR:-default}`.
const GOOD: &str = "listeners:
  - name: public
    bind: ${GW_A2_BIND:-127.0.0.1:8080}
    max_connections: 100
  - name: internal
    bind: 127.0.0.1:8081
    http2: false
upstreams:
  task:
    endpoints: [\"${GW_A2_TASK_HOST}:9101\", { address: \"127.0.0.1:9102\", weight: 3 }]
  user:
    endpoints: [\"127.0.0.1:9201\"]
    protocol: http2
routes:
  - id: tasks
    match: { path: /api/tasks/** }
    upstream: task
    strip_prefix: 1
  - id: task-canary
    priority: 10
    match:
      path: /api/tasks/{id}
      headers: { X-Canary: \"true\" }
    upstream: task
  - id: tasks-example
    match:
      path: /api/tasks/{id}
      host: \"*.example.com\"
    upstream: user
  - id: users
    match: { path: /api/users/**, methods: [GET] }
    upstream: user
  - id: legacy
    match: { path: /old/** }
    redirect: { to: /api/, status: 308 }
  - id: ping
    match: { path: /ping }
    respond: { status: 200, body: pong }
";

#[test]
fn check_summarizes_a_good_config_and_expands_variables() {
    let dir = TempDir::new("cli");
    let file = dir.write("good.yaml", GOOD);
    let file = file.to_str().expect("utf-8 path");

    // ${VAR} set, ${VAR:-default} unset: the default applies.
    let out = run_cli(&["check", "-c", file], &[("GW_A2_TASK_HOST", "10.1.2.3")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        format!("{file}: OK"),
        "listeners (2):".into(),
        "public 127.0.0.1:8080 (max 100 connections, h1+h2c)".into(),
        "internal 127.0.0.1:8081".into(),
        "h1 only".into(),
        "upstreams (2):".into(),
        "task [Http1, RoundRobin] 10.1.2.3:9101 (w1), 127.0.0.1:9102 (w3)".into(),
        "user [Http2, RoundRobin] 127.0.0.1:9201".into(),
        "routes (6):".into(),
        "tasks -> upstream task".into(),
        "legacy -> redirect 308 /api/".into(),
        "ping -> respond 200".into(),
    ] {
        assert!(stdout.contains(&want), "missing `{want}` in:\n{stdout}");
    }

    // ${VAR:-default} with the variable set: the value wins.
    let out = run_cli(
        &["check", "-c", file],
        &[
            ("GW_A2_TASK_HOST", "task.svc"),
            ("GW_A2_BIND", "127.0.0.1:9999"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("public 127.0.0.1:9999"), "{stdout}");
    assert!(stdout.contains("task.svc:9101"), "{stdout}");

    // ${VAR} unset: rejected at the variable's position. (The message
    // itself is checked in `unset_variable` above: inside the untagged
    // endpoint enum serde currently replaces it with "did not match any
    // variant", so only the location is asserted here.)
    let out = run_cli(&["check", "-c", file], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:10:17: field `upstreams.task.endpoints[0]`"
        )),
        "{stderr}"
    );
}

#[test]
fn explain_names_the_route_the_near_misses_and_the_upstream_path() {
    let dir = TempDir::new("cli");
    let file = dir.write("good.yaml", GOOD);
    let file = file.to_str().expect("utf-8 path");
    let env = [("GW_A2_TASK_HOST", "10.1.2.3")];

    let out = run_cli(
        &[
            "explain",
            "-c",
            file,
            "GET",
            "/api/tasks/7",
            "-H",
            "Host: x",
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "matched route: tasks",
        "action: upstream task",
        "upstream path: /tasks/7",
        "task-canary : headers does not match",
        "tasks-example : host does not match",
        "tasks : all predicates hold",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }
    // The near misses are listed, the unrelated routes are not.
    assert!(
        !stdout.contains("users") && !stdout.contains("ping"),
        "{stdout}"
    );

    // With the canary header the higher-priority route wins; the path
    // is normalized first and the query is carried to the upstream.
    let out = run_cli(
        &[
            "explain",
            "-c",
            file,
            "GET",
            "/api/x/../tasks/7?full=1",
            "-H",
            "Host: x",
            "-H",
            "X-Canary: true",
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "normalized path: /api/x/../tasks/7 -> /api/tasks/7",
        "matched route: task-canary (priority 10",
        "upstream path: /api/tasks/7?full=1",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }

    // Only the method differs: 405 with Allow.
    let out = run_cli(
        &[
            "explain",
            "-c",
            file,
            "DELETE",
            "/api/users/1",
            "-H",
            "Host: x",
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("method not allowed: 405 (Allow: GET")
            && stdout.contains("users : method does not match"),
        "{stdout}"
    );

    // No route at all, and a path the gateway refuses.
    let out = run_cli(&["explain", "-c", file, "GET", "/nowhere"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no route matches: 404"));
    let out = run_cli(&["explain", "-c", file, "GET", "/api/tasks/a%2Fb"], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected: 400"));
}

#[test]
fn help_shows_examples() {
    let out = run_cli(&["--help"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for want in [
        "Examples:",
        "gwanmun run -c",
        "gwanmun check -c",
        "gwanmun explain -c",
        "run",
        "check",
        "explain",
    ] {
        assert!(stdout.contains(want), "missing `{want}` in:\n{stdout}");
    }
}
