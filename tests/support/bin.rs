//! The built `gwanmun` binary as a child process: for tests that need the
//! gateway's own process (memory, signals, exit codes, the CLI).
//!
//! Each spawned gateway gets a private temp directory holding its config and
//! its log; the directory is removed and the process killed on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Path of the binary cargo built for this test run.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_gwanmun")
}

/// A private directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "gwanmun-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `text` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, drop it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs `gwanmun ARGS...` to completion (for `check`, `explain`, `--help`).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gwanmun")
}

/// A `gwanmun run` child process listening on `addr`.
pub struct GwProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl GwProcess {
    /// Writes `yaml` (where every `{PORT}` is replaced by a free port) and
    /// starts `gwanmun run -c` on it, waiting (bounded) until it accepts
    /// connections.
    pub async fn start(yaml: &str) -> GwProcess {
        GwProcess::start_with(yaml, &[]).await
    }

    /// As [`GwProcess::start`], with more `run` arguments (e.g. `--threads`).
    pub async fn start_with(yaml: &str, extra: &[&str]) -> GwProcess {
        // The free port can be taken by someone else between the check and
        // the bind; retry a few times with a fresh port in that case.
        for _ in 0..5 {
            let port = free_port();
            let dir = TempDir::new("run");
            let cfg = dir.write("gwanmun.yaml", &yaml.replace("{PORT}", &port.to_string()));
            let log = std::fs::File::create(dir.path().join("gwanmun.log")).expect("log file");
            let child = Command::new(exe())
                .arg("run")
                .arg("-c")
                .arg(&cfg)
                .args(["--log-level", "warn", "--log-format", "text"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn gwanmun");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut p = GwProcess { child, addr, dir };
            if p.wait_ready().await {
                return p;
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
            eprintln!("gwanmun did not start on {addr}; log:\n{}", p.log());
        }
        panic!("could not start the gwanmun binary");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls until the gateway accepts a TCP connection (or exits).
    async fn wait_ready(&mut self) -> bool {
        for _ in 0..1000 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// The gateway's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gwanmun.log")).unwrap_or_default()
    }

    /// Sends a signal (`TERM`, `INT`, ...) with `kill`.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A field of /proc/PID/status in KiB, e.g. `VmRSS` or `VmHWM`.
    pub fn status_kib(&self, field: &str) -> u64 {
        proc_status_kib(self.pid(), field)
    }
}

impl Drop for GwProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `FIELD:   123 kB` from /proc/PID/status.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system) the process has used so far, from /proc/PID/stat.
pub fn proc_cpu(pid: u32) -> Duration {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(100)
        .max(1);
    Duration::from_millis(ticks * 1000 / hz)
}
