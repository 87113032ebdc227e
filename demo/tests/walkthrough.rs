//! The README walk-through, run exactly as printed: starts the whole demo
//! (the real binary, every port ephemeral, data in memory), takes the `sh`
//! block from demo/WALKTHROUGH.md, points `GW` at the gateway, runs it with
//! `bash -e`, checks what it printed, then stops the demo with SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WALKTHROUGH: &str = include_str!("../WALKTHROUGH.md");
const GW_LINE: &str = "GW=http://127.0.0.1:8080";

/// Kills the demo if the test fails before stopping it.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README shows the same walk-through, so what runs here is what it prints.
#[test]
fn readme_carries_the_same_walkthrough() {
    let readme = include_str!("../../README.md");
    let at = readme
        .find("## Walk-through")
        .expect("a Walk-through section in README.md");
    assert_eq!(sh_block(&readme[at..]), sh_block(WALKTHROUGH));
}

/// The first fenced `sh` block.
fn sh_block(markdown: &str) -> String {
    let start = markdown.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let len = markdown[start..].find("```").expect("the block's end");
    markdown[start..start + len].to_owned()
}

/// Starts the demo and returns it with the gateway's base URL and the rest
/// of its standard output (lines, as they come).
fn start_demo() -> (Demo, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwanmun-demo"))
        .args(["--memory", "--port", "0", "--auth-port", "0"])
        .args(["--user-ports", "0,0", "--task-ports", "0,0"])
        .args(["--appointment-ports", "0,0", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start gwanmun-demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the demo prints `gwanmun is listening on` within 60 s");
        if let Some(url) = line.strip_prefix("gwanmun is listening on ") {
            return (demo, url.trim().to_owned(), rx);
        }
    }
}

/// Runs `child` to completion, failing after `limit`.
fn wait_output(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(limit)
        .expect("finished in time")
        .expect("output")
}

#[test]
fn walkthrough_runs_as_printed() {
    let block = sh_block(WALKTHROUGH);
    assert_eq!(
        block.matches(GW_LINE).count(),
        1,
        "the block sets GW once, to the default address"
    );
    let (mut demo, url, lines) = start_demo();
    let script = block.replace(GW_LINE, &format!("GW={url}"));

    let mut bash = Command::new("bash");
    bash.arg("-e").arg("-c").arg(&script);
    let out = wait_output(bash, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walk-through failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    check_output(&stdout);

    // Ctrl-C stops everything cleanly.
    let pid = demo.0.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stopped = false;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        stopped |= line.starts_with("stopped");
    }
    assert!(stopped, "the demo prints `stopped` on SIGINT");
    let exit = demo.0.wait().expect("wait");
    assert!(exit.success(), "the demo exits 0 on SIGINT: {exit}");
}

/// What the block must print, in this order.
fn check_output(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let find = |from: usize, what: &dyn Fn(&str) -> bool, name: &str| -> usize {
        let at = lines[from..]
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| {
                panic!("expected {name} after line {from} of the output:\n{stdout}")
            });
        from + at
    };
    let ids = find(
        0,
        &|l| l.starts_with("alice=") && l.contains(" bob="),
        "the ids",
    );
    let (alice, bob) = {
        let l = lines[ids];
        let (alice, bob) = l["alice=".len()..]
            .split_once(" bob=")
            .expect("alice=.. bob=..");
        assert!(!alice.is_empty() && !bob.is_empty() && alice != bob, "{l}");
        (alice.to_owned(), bob.to_owned())
    };
    let me = find(
        ids,
        &|l| l.contains(r#""email":"alice@example.com""#),
        "/users/me",
    );
    assert!(
        lines[me].contains(&format!(r#""id":"{alice}""#)),
        "{}",
        lines[me]
    );
    let t = find(
        me,
        &|l| l.contains(r#""title":"Book a room""#) && !l.contains("tasks"),
        "a task",
    );
    let list = find(t, &|l| l.starts_with(r#"{"tasks":["#), "the task list");
    assert!(lines[list].contains("Write the report") && lines[list].contains("Book a room"));
    let n = find(list, &|l| l == "Bob reads Alice's task: 404", "404 for Bob");
    let a = find(
        n,
        &|l| l.contains(r#""title":"Planning""#),
        "the appointment",
    );
    assert!(
        lines[a].contains(&format!(r#""participants":["{bob}"]"#)),
        "{}",
        lines[a]
    );
    assert!(
        lines[a].contains(&format!(r#""created_by":"{alice}""#)),
        "{}",
        lines[a]
    );
    let bl = find(
        a,
        &|l| l.starts_with(r#"{"appointments":["#),
        "Bob's appointments",
    );
    assert!(lines[bl].contains("Planning"), "{}", lines[bl]);
    let mut at = bl;
    for expected in [
        "ends before it starts: 422",
        "no token: 401",
        "not an admin: 403",
        "refresh: 200",
        "refresh again: 401",
    ] {
        at = find(at, &|l| l == expected, expected);
    }
    let replicas: Vec<&str> = lines[at..]
        .iter()
        .filter_map(|l| l.strip_prefix("answered by "))
        .collect();
    let mut sorted = replicas.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["task-1", "task-2"],
        "round robin over both replicas"
    );
}
