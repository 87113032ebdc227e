//! Secrets never reach the logs: tokens, cookies and query strings sent by
//! clients do not appear in the gateway's output even at debug level, while
//! the access log still records each request.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::bin::{exe, free_port, TempDir};
use support::*;

#[tokio::test]
async fn tokens_cookies_and_queries_stay_out_of_logs() {
    let up = echo_upstream("svc").await;
    let port = free_port();
    let dir = TempDir::new("logging");
    let cfg = dir.write(
        "gwanmun.yaml",
        &format!(
            "listeners: [{{ name: p, bind: \"127.0.0.1:{port}\" }}]
auth:
  providers:
    - name: main
      issuer: https://auth.test
      audiences: [api]
      algorithms: [HS256]
      secret: \"0123456789abcdef0123456789abcdef-not-in-logs\"
upstreams:
  svc: {{ endpoints: [\"{}\"] }}
routes:
  - {{ id: public, match: {{ path: /public/** }}, upstream: svc }}
  - {{ id: private, match: {{ path: /private/** }}, upstream: svc, auth: required }}
",
            up.addr
        ),
    );
    let log_path = dir.path().join("gwanmun.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(exe())
        .args(["run", "-c"])
        .arg(&cfg)
        .args(["--log-level", "debug", "--log-format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(
            || std::net::TcpStream::connect(addr).is_ok(),
            Duration::from_secs(10)
        )
        .await,
        "gateway did not start"
    );
    for path in ["/public/a", "/private/b"] {
        let req = format!(
            "GET {path}?access_token=QUERYSECRET42 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.TOKENSECRET42.c2ln\r\nCookie: session=COOKIESECRET42\r\nConnection: close\r\n\r\n"
        );
        let reply = raw(addr, req.as_bytes()).await;
        assert!(raw_status(&reply) > 0, "{reply}");
    }
    // A head the parser refuses is logged too, without its secrets.
    let bad = "GET /public/c?access_token=QUERYSECRET42 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKENSECRET42\r\nX A: b\r\n\r\n";
    let reply = raw(addr, bad.as_bytes()).await;
    assert_eq!(raw_status(&reply), 400, "{reply}");
    let logged = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // Two access-log lines prove logging was on while the secrets passed.
    assert!(
        wait_until(
            || logged().matches("gwanmun::access").count() >= 3,
            Duration::from_secs(5)
        )
        .await,
        "access log lines missing:\n{}",
        logged()
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = logged();
    for secret in [
        "QUERYSECRET42",
        "TOKENSECRET42",
        "COOKIESECRET42",
        "not-in-logs",
        "eyJhbGci",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` leaked into the log:\n{text}"
        );
    }
    assert!(text.contains("\"path\":\"/public/a\""), "{text}");
    assert!(text.contains("\"status\":401"), "{text}");
    assert!(text.contains("\"status\":400"), "{text}");
    assert!(text.contains("\"error\":\"bad_request\""), "{text}");
}
