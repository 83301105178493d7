//! Fixtures for the binary tests: start `ttyward` and wait for its ready
//! line, temporary directories, bounded reads and writes on pty masters and
//! sockets. Every wait has a deadline; processes are stopped by pid.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A running `ttyward`, stopped with SIGTERM when dropped.
pub struct Ttyward {
    child: Child,
    /// (serial port number, bound TCP/UDP port) from the ready line.
    pub listeners: Vec<(u16, u16)>,
    /// The whole ready line.
    pub ready: serde_json::Value,
    /// Later stdout lines (`ttyward run` prints `{"event":"applied",...}`
    /// after each live configuration change).
    lines: std::sync::mpsc::Receiver<String>,
}

/// (serial port number, bound port) of every listener in a ready/applied line.
pub fn listeners_of(line: &serde_json::Value) -> Vec<(u16, u16)> {
    line["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| {
            let addr: std::net::SocketAddr = l["addr"]
                .as_str()
                .expect("addr")
                .parse()
                .expect("socket address");
            (l["port"].as_u64().expect("port") as u16, addr.port())
        })
        .collect()
}

impl Ttyward {
    pub fn bridge(args: &[&str]) -> Ttyward {
        let mut all = vec!["bridge"];
        all.extend_from_slice(args);
        Ttyward::start(&all)
    }

    /// `ttyward --data-dir DIR run`.
    pub fn run(data_dir: &Path) -> Ttyward {
        let dir = data_dir.to_str().expect("utf-8 path");
        Ttyward::start(&["--data-dir", dir, "run"])
    }

    /// [`Ttyward::run`] with `TTYWARD_LOG=filter` (e.g. "warn"), for tests
    /// whose thousands of sessions would flood the terminal at "info".
    pub fn run_with_log(data_dir: &Path, filter: &str) -> Ttyward {
        let dir = data_dir.to_str().expect("utf-8 path");
        Ttyward::start_with_log(&["--data-dir", dir, "run"], filter)
    }

    /// [`Ttyward::run`] with the log (stderr) going to `log`, e.g. a file.
    pub fn run_logging_to(data_dir: &Path, log: Stdio) -> Ttyward {
        let dir = data_dir.to_str().expect("utf-8 path");
        Ttyward::spawn(&["--data-dir", dir, "run"], "info", log)
    }

    /// `ttyward ARGS...` with `TTYWARD_LOG=filter` and the log going to `log`.
    pub fn start_logging_to(args: &[&str], filter: &str, log: Stdio) -> Ttyward {
        Ttyward::spawn(args, filter, log)
    }

    pub fn start(args: &[&str]) -> Ttyward {
        Ttyward::start_with_log(args, "info")
    }

    fn start_with_log(args: &[&str], filter: &str) -> Ttyward {
        Ttyward::spawn(args, filter, Stdio::inherit())
    }

    fn spawn(args: &[&str], filter: &str, log: Stdio) -> Ttyward {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ttyward"))
            .args(args)
            .env("TTYWARD_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start ttyward");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("ttyward printed no ready line; args {args:?}")
            });
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        assert_eq!(ready["event"], "ready", "{line}");
        let listeners = listeners_of(&ready);
        Ttyward {
            child,
            listeners,
            ready,
            lines: rx,
        }
    }

    /// The next stdout line whose `event` is `event` (others are skipped),
    /// within `timeout`.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {event:?} line from ttyward within {timeout:?}"));
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["event"] == event
            {
                return v;
            }
        }
    }

    /// The process id (for signals the test sends itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.terminate()
    }

    fn terminate(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Ttyward {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Run a one-shot `ttyward --data-dir DIR ARGS...` with `stdin`, bounded
/// by a 60 s deadline; returns its output.
pub fn ttyward_cmd(data_dir: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ttyward"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("TTYWARD_LOG", "warn");
    output_within(&mut cmd, stdin, Duration::from_secs(60)).0
}

/// Run `cmd` with `stdin` (proxy variables removed: every peer is on
/// loopback), killed by its pid if it has not ended within `timeout`;
/// returns (exit code, stdout, stderr). Panics, with what it printed, when
/// it had to be killed.
pub fn run_bounded(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    let (out, timed_out) = output_within(cmd, stdin, timeout);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !timed_out,
        "{cmd:?} did not end within {timeout:?}; it printed:\n{stdout}\n{stderr}"
    );
    (out.status.code(), stdout, stderr)
}

/// Run `cmd` with `stdin` and collect its output; kill it by its pid at
/// `timeout`. The bool says whether it had to be killed.
fn output_within(
    cmd: &mut Command,
    stdin: &[u8],
    timeout: Duration,
) -> (std::process::Output, bool) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?} (scripts/test installs it): {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    let timed_out = rx.recv_timeout(timeout).is_err();
    if timed_out {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = writer.join();
    (waiter.join().expect("waiter").expect("output"), timed_out)
}

/// `ttyward admin create --name NAME --password-stdin` (Administrator),
/// asserting success.
pub fn create_admin(data_dir: &Path, name: &str, password: &str) {
    let out = ttyward_cmd(
        data_dir,
        &["admin", "create", "--name", name, "--password-stdin"],
        format!("{password}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "admin create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ttyward config import -` with `toml` on stdin.
pub fn import_config(data_dir: &Path, toml: &str) -> std::process::Output {
    ttyward_cmd(data_dir, &["config", "import", "-"], toml.as_bytes())
}

/// Every stored event, oldest first, via `ttyward events --format json`.
pub fn events_json(data_dir: &Path) -> Vec<serde_json::Value> {
    let out = ttyward_cmd(data_dir, &["events", "--format", "json"], b"");
    assert!(
        out.status.success(),
        "events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("events --format json is a JSON array")
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ttyward-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_ready(fd: &OwnedFd, flags: PollFlags, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), flags)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Read exactly `n` bytes from a pty master (or fewer if time runs out).
pub fn read_fd_exact(fd: &OwnedFd, n: usize, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < n && Instant::now() < deadline {
        if !wait_ready(fd, PollFlags::POLLIN, deadline) {
            continue;
        }
        let want = (n - out.len()).min(buf.len());
        match nix::unistd::read(fd, &mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => panic!("read from pty master: {e}"),
        }
    }
    out
}

/// Write everything to a pty master within `timeout`.
pub fn write_fd_all(fd: &OwnedFd, mut data: &[u8], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !data.is_empty() {
        assert!(
            Instant::now() < deadline,
            "pty write timed out with {} bytes left",
            data.len()
        );
        if !wait_ready(fd, PollFlags::POLLOUT, deadline) {
            continue;
        }
        match nix::unistd::write(fd, data) {
            Ok(k) => data = &data[k..],
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => panic!("write to pty master: {e}"),
        }
    }
}

pub fn read_exact_timeout(s: &mut TcpStream, n: usize, timeout: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read in time");
    buf
}

/// Read and discard until the peer closes; returns what the last read gave (0 = closed).
pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> usize {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
    }
    1
}

/// Connect until the port serves the device behind `pty` (it may still be
/// reopening it): proved by a marker written on the device side arriving.
pub fn connect_when_served(addr: (&str, u16), pty: &ttyward_serial::pty::PtyPair) -> TcpStream {
    for attempt in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let marker = format!("<marker {attempt}>");
            // Give the session a moment to attach before the device speaks.
            std::thread::sleep(Duration::from_millis(50));
            write_fd_all(&pty.master, marker.as_bytes(), Duration::from_secs(2));
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut buf = vec![0u8; marker.len()];
            if s.read_exact(&mut buf).is_ok() && buf == marker.as_bytes() {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port never served the device at {addr:?}");
}

/// A base B such that B+1 ..= B+n look free on 127.0.0.1 now.
pub fn free_port_base(n: u16) -> u16 {
    for attempt in 0..200u16 {
        let base = 20_000 + (std::process::id() as u16 % 5000) + attempt * 17;
        // BASE + 21: the demo's Real COM command port (port 5 + 16).
        let free = (1..=n + 104)
            .filter(|i| *i <= n || *i == 21 || *i == 104)
            .all(|i| {
                std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                    && std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()
            });
        if free {
            return base;
        }
    }
    panic!("no free port range");
}

pub mod https;
pub mod web_device;
