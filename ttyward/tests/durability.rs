//! Durability: the store survives kill -9 of any of its processes at any
//! moment, the event log keeps exactly its capacity, and a full disk costs
//! event-log entries (counted and reported) but never serial data.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::*;
use ttyward_serial::pty::PtyPair;

const PASSWORD: &str = "durable-pass-42";

/// The web console is not what these tests are about (and would listen on
/// every address).
const NO_WEB: &str = "[services.web]\nenabled = false\n";

/// A configuration with one `sim:echo` TCP Server port on 127.0.0.1 (any
/// free port), no web console, and `extra` TOML after it.
fn echo_port_config(max_connections: u16, extra: &str) -> String {
    format!(
        r#"
[[ports]]
number = 1
device = "sim:echo"
mode = {{ type = "tcp-server", bind = ["127.0.0.1"], local_port = 0, max_connections = {max_connections} }}

{NO_WEB}
{extra}
"#
    )
}

/// The first `SELECT` column of every row of `sql` on the SQLite database
/// `db`, through python3's sqlite3 module (a reader nobody here wrote).
fn sqlite(db: &Path, sql: &str) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], timeout=10)\n\
             for row in c.execute(sys.argv[2]): print(row[0])\n",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn database(dir: &Path) -> PathBuf {
    dir.join("ttyward.db")
}

/// The newest event-log sequence number stored (0 when none).
fn newest_seq(dir: &Path) -> i64 {
    sqlite(&database(dir), "SELECT COALESCE(MAX(seq), 0) FROM events")
        .first()
        .and_then(|s| s.parse().ok())
        .expect("MAX(seq) is a number")
}

fn assert_integrity_ok(dir: &Path) {
    assert_eq!(
        sqlite(&database(dir), "PRAGMA integrity_check"),
        ["ok"],
        "integrity_check of {}",
        database(dir).display()
    );
}

/// The first whitespace-separated word of `s` as a number.
fn leading_number(s: &str) -> Option<u64> {
    s.split_whitespace().next()?.parse().ok()
}

/// Sequence numbers of `events` (as returned by `events_json`).
fn seqs(events: &[serde_json::Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Whether process `pid` still exists.
fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// The stored configuration as `ttyward config export` prints it.
fn export_config(dir: &Path) -> String {
    let out = ttyward_cmd(dir, &["config", "export"], b"");
    assert!(
        out.status.success(),
        "config export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("export is UTF-8")
}

/// One echo round trip through `port` on 127.0.0.1.
fn assert_echoes(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the echo port");
    s.write_all(b"still here").expect("write");
    assert_eq!(
        read_exact_timeout(&mut s, 10, Duration::from_secs(5)),
        b"still here"
    );
}

/// The next byte `s` will read, left unread, within `timeout`.
fn peek_byte(s: &TcpStream, timeout: Duration) -> u8 {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "nothing to peek within {timeout:?}");
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.peek(&mut buf) {
            Ok(1) => return buf[0],
            Ok(_) => panic!("closed by the peer"),
            // A receive with a timeout is not restarted after a signal
            // (or a stop and continue) of this process.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("peek: {e}"),
        }
    }
}

/// How one `ttyward config import` ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Import {
    /// Exit 0: stored as this revision.
    Committed { revision: i64 },
    /// SIGKILL arrived first (it may or may not have committed).
    Killed,
}

fn spawn_import(dir: &Path, file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ttyward"))
        .arg("--data-dir")
        .arg(dir)
        .args(["config", "import"])
        .arg(file)
        .env("TTYWARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start config import")
}

/// Let `child` run for `delay` (less if it ends first), then SIGKILL it
/// and say how it ended.
fn kill_after(mut child: Child, delay: Duration) -> Import {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // A no-op when it has already ended.
    let _ = child.kill();
    let out = child.wait_with_output().expect("reap config import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32) {
        return Import::Killed;
    }
    assert!(
        out.status.success(),
        "config import failed by itself ({:?}): {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    Import::Committed {
        revision: imported_revision(&stdout),
    }
}

/// R from `config import`'s "imported as revision R: what changed".
fn imported_revision(stdout: &str) -> i64 {
    stdout
        .strip_prefix("imported as revision ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected config import output: {stdout}"))
}

/// Iteration `i`'s configuration: the login message names it.
fn iteration_config(i: usize) -> String {
    echo_port_config(
        1,
        &format!("[security.login]\nmessage = \"revision {i}\"\n"),
    )
}

/// Which iteration's message the stored configuration carries.
fn stored_iteration(dir: &Path) -> usize {
    let text = export_config(dir);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("message = \"revision "))
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no login message \"revision N\" in:\n{text}"))
}

/// The revision `ttyward config show` reports.
fn stored_revision(dir: &Path) -> i64 {
    let out = ttyward_cmd(dir, &["config", "show"], b"");
    assert!(out.status.success(), "config show");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("configuration revision "))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("no revision in config show:\n{text}"))
}

/// 40 imports, each SIGKILLed after a deterministic 0–30 ms (scaled up on
/// a slow machine), and the daemon SIGKILLed once halfway while an import
/// runs: the store keeps the last committed configuration (or a later one
/// that committed just before its kill), hands out no revision twice,
/// passes SQLite's integrity check, and the daemon comes back up.
#[test]
fn kill_9_during_config_writes_loses_no_committed_change() {
    const ITERATIONS: usize = 40;
    const KILL_DAEMON_AT: usize = 20;
    let dir = TempDir::new("kill9");
    let d = dir.path();
    create_admin(d, "admin", PASSWORD);
    let started = Instant::now();
    let out = import_config(d, &iteration_config(0));
    let one_import = started.elapsed();
    assert!(
        out.status.success(),
        "first import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 1 ms per step when an import takes up to 15 ms, as here; on a
    // loaded machine the same sequence of delays is stretched so that
    // some imports still finish.
    let unit = (one_import / 15).max(Duration::from_millis(1));
    let mut daemon = Ttyward::run(d);

    let mut outcomes = vec![Import::Committed {
        revision: imported_revision(&String::from_utf8_lossy(&out.stdout)),
    }];
    for i in 1..=ITERATIONS {
        let file = d.join(format!("import-{i}.toml"));
        std::fs::write(&file, iteration_config(i)).expect("write config file");
        let child = spawn_import(d, &file);
        let delay = unit * u32::try_from(i * 7 % 31).expect("small");
        if i == KILL_DAEMON_AT {
            daemon.kill9();
            outcomes.push(kill_after(child, delay));
            daemon = Ttyward::run(d);
            assert_eq!(daemon.ready["setup_required"], false);
        } else {
            outcomes.push(kill_after(child, delay));
        }
    }
    let committed: Vec<(usize, i64)> = (1..=ITERATIONS)
        .filter_map(|i| match outcomes[i] {
            Import::Committed { revision } => Some((i, revision)),
            Import::Killed => None,
        })
        .collect();
    eprintln!(
        "one import took {one_import:?}; {} of {ITERATIONS} finished, the rest were killed",
        committed.len()
    );
    assert!(
        !committed.is_empty() && committed.len() < ITERATIONS,
        "want both finished and killed imports: {outcomes:?}"
    );
    let (last, last_revision) = *committed.last().expect("one committed");
    assert_eq!(daemon.stop(), Some(0), "daemon stops cleanly");

    // The configuration: the last committed change or a later one that
    // committed just before its kill, never an earlier one.
    let found = stored_iteration(d);
    let revision = stored_revision(d);
    eprintln!(
        "last finished import: iteration {last} (revision {last_revision}); stored: iteration {found} (revision {revision})"
    );
    if found == last {
        assert_eq!(revision, last_revision, "{outcomes:?}");
    } else {
        assert!(
            found > last && outcomes[found] == Import::Killed,
            "stored iteration {found}, but iteration {last} was the last committed: {outcomes:?}"
        );
        assert!(revision > last_revision, "{outcomes:?}");
    }
    assert_integrity_ok(d);

    // The event log: readable, ordered, every finished import recorded,
    // and no revision handed out twice.
    let events = events_json(d);
    let seq = seqs(&events);
    assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
    let imported: Vec<i64> = named(&events, "config-imported")
        .iter()
        .map(|e| {
            let m = e["message"].as_str().expect("message");
            m.strip_prefix("configuration imported as revision ")
                .and_then(|r| r.parse().ok())
                .unwrap_or_else(|| panic!("config-imported message: {m}"))
        })
        .collect();
    assert!(
        imported.windows(2).all(|w| w[0] < w[1]),
        "a revision was handed out twice: {imported:?}"
    );
    for (i, o) in outcomes.iter().enumerate() {
        if let Import::Committed { revision } = o {
            assert!(
                imported.contains(revision),
                "iteration {i} exited 0 as revision {revision}, but its event is missing: {imported:?}"
            );
        }
    }

    let daemon = Ttyward::run(d);
    assert_eq!(daemon.ready["setup_required"], false);
    let listeners = daemon.listeners.clone();
    assert_eq!(listeners.len(), 1, "{:?}", daemon.ready);
    assert_echoes(listeners[0].1);
    assert_eq!(
        daemon.stop(),
        Some(0),
        "SIGTERM soon after the ready line stops the daemon cleanly"
    );
    assert_integrity_ok(d);
    let events = events_json(d);
    assert!(
        named(&events, "system-start").len() >= 3,
        "three daemon starts recorded"
    );
}

/// 6,100 connections (12,200 port events) through a daemon whose log keeps
/// the default 10,000: exactly the newest 10,000 remain, with consecutive
/// sequence numbers, the newest being the last connection's.
#[test]
fn event_log_keeps_the_newest_10000_of_12000() {
    const CONNECTIONS: usize = 6_100;
    let dir = TempDir::new("capacity");
    let d = dir.path();
    create_admin(d, "admin", PASSWORD);
    let out = import_config(
        d,
        &echo_port_config(64, "[security.dos]\nenabled = false\n"),
    );
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 12,000 session lines at "info" would flood the terminal.
    let daemon = Ttyward::run_with_log(d, "warn");
    let port = daemon.listeners[0].1;

    let started = Instant::now();
    for n in 0..CONNECTIONS {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connection {n}: {e}"));
        let byte = (n % 251) as u8;
        s.write_all(&[byte]).expect("write");
        // The echo proves the session exists. Peek, not read: closing with
        // unread data sends a reset, so the session ends at once instead of
        // lingering as a half-closed one would (and no TIME_WAIT is left).
        assert_eq!(
            peek_byte(&s, Duration::from_secs(5)),
            byte,
            "connection {n}"
        );
    }
    let churn = started.elapsed();

    // Wait until everything is stored: past 12,000 and no longer growing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = -1;
    let newest = loop {
        let now = newest_seq(d);
        if now >= 12_000 && now == last {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "newest seq {now} after {CONNECTIONS} connections"
        );
        last = now;
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!(
        "{CONNECTIONS} connections in {churn:?} ({:.0}/s); newest seq {newest} after {:?}",
        CONNECTIONS as f64 / churn.as_secs_f64(),
        started.elapsed()
    );

    let events = events_json(d);
    let dropped = named(&events, "events-dropped");
    if !dropped.is_empty() {
        eprintln!("events were dropped under load: {dropped:?}");
    }
    assert_eq!(events.len(), 10_000, "the log keeps exactly its capacity");
    let seq = seqs(&events);
    assert!(
        seq.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers not consecutive"
    );
    assert_eq!(seq.last(), Some(&newest));
    assert_eq!(seq.first(), Some(&(newest - 9_999)));
    assert!(newest - 9_999 > 2_000, "the oldest 2,000+ are gone");
    assert_eq!(newest_seq(d), newest, "nothing recorded since");
    let tail = &events[events.len() - 100..];
    assert!(
        tail.iter().all(|e| {
            (e["event"] == "port-connected" || e["event"] == "port-disconnected")
                && e["source"] == "127.0.0.1"
        }),
        "the newest are the latest port events: {tail:?}"
    );
    assert_eq!(events.last().expect("newest")["event"], "port-disconnected");
    let port_events = events
        .iter()
        .filter(|e| e["event"] == "port-connected" || e["event"] == "port-disconnected")
        .count();
    assert!(
        port_events + dropped.len() == 10_000,
        "only port events (and loss reports) are this recent: {port_events} port events"
    );
    assert_eq!(daemon.stop(), Some(0));
}

/// `prlimit --pid PID --fsize=LIMIT` (soft limit only), asserting success.
fn set_fsize(pid: u32, limit: &str) {
    let out = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
        .output()
        .expect("prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit --fsize={limit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The soft and hard RLIMIT_FSIZE of `pid`, as prlimit prints them.
fn fsize_limits(pid: u32) -> (String, String) {
    let out = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            "--fsize",
            "--raw",
            "--noheadings",
            "--output",
            "SOFT,HARD",
        ])
        .output()
        .expect("prlimit (util-linux)");
    assert!(out.status.success(), "prlimit --fsize");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(str::to_owned);
    (
        words.next().expect("soft limit"),
        words.next().expect("hard limit"),
    )
}

/// A second client connects, sends one byte the device receives, and
/// leaves: a port-connected and a port-disconnected event.
fn visit(port: u16, pty: &PtyPair, byte: u8) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("second client connects");
    s.write_all(&[byte]).expect("second client writes");
    assert_eq!(
        read_fd_exact(&pty.master, 1, Duration::from_secs(20)),
        [byte],
        "the second client's byte reaches the device"
    );
}

/// `bridge` too: its log (stderr) is a file past RLIMIT_FSIZE, so every log
/// line — each session's "opened" and "closed" — fails with EFBIG. SIGXFSZ
/// would kill it at the first one; the bridge lives on and serves.
#[test]
fn a_bridge_logging_to_a_full_file_keeps_serving() {
    let dir = TempDir::new("bridge-fsize");
    let log_path = dir.path().join("bridge.log");
    std::fs::write(&log_path, "earlier log lines\n".repeat(512)).expect("log file");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .expect("open log");
    let pty = PtyPair::open().expect("pty");
    let pair = format!("{}@127.0.0.1:0", pty.slave_path.display());
    // Room for a client whose predecessor's close is still being noticed.
    let bridge = Ttyward::start_logging_to(
        &["bridge", &pair, "--max-connections", "8"],
        "info",
        log.into(),
    );
    let pid = bridge.pid();
    let port = bridge.listeners[0].1;
    let hard = fsize_limits(pid).1;
    set_fsize(pid, &format!("4096:{hard}"));
    let before = std::fs::metadata(&log_path).expect("log").len();
    for n in 0..3 {
        visit(port, &pty, b'a' + n);
    }
    let mut client = connect_when_served(("127.0.0.1", port), &pty);
    write_fd_all(&pty.master, b"from the device", Duration::from_secs(20));
    assert_eq!(
        read_exact_timeout(&mut client, 15, Duration::from_secs(20)),
        b"from the device"
    );
    assert_eq!(
        std::fs::metadata(&log_path).expect("log").len(),
        before,
        "no log line got past the limit"
    );
    assert_eq!(bridge.stop(), Some(0), "the bridge was still running");
}

/// With RLIMIT_FSIZE below the database's size every event-log write fails
/// (EFBIG, SIGXFSZ ignored): the daemon lives on and 1 MiB device → client
/// and 256 KiB client → device arrive intact; once the limit is lifted the
/// log reports how many events it lost.
#[test]
fn a_full_disk_never_stops_serial_forwarding() {
    let dir = TempDir::new("fulldisk");
    let d = dir.path();
    let pty = PtyPair::open().expect("pty");
    create_admin(d, "admin", PASSWORD);
    let config = format!(
        r#"
[[ports]]
number = 1
device = "{}"
serial = {{ baud = 115200, flow = "none" }}
mode = {{ type = "tcp-server", bind = ["127.0.0.1"], local_port = 0, max_connections = 16 }}

{NO_WEB}
"#,
        pty.slave_path.display()
    );
    let out = import_config(d, &config);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The log is a file on the same "disk", already past the limit set
    // below: from then on every log line fails with EFBIG. (A log write
    // failure once panicked every new session's task.)
    let log_path = d.join("ttyward.log");
    std::fs::write(&log_path, "earlier log lines\n".repeat(512)).expect("log file");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .expect("open log");
    let daemon = Ttyward::run_logging_to(d, log.into());
    let pid = daemon.pid();
    let port = daemon.listeners[0].1;

    // Data flows both ways before the disk fills.
    let mut client = connect_when_served(("127.0.0.1", port), &pty);
    client.write_all(b"to the device").expect("write");
    assert_eq!(
        read_fd_exact(&pty.master, 13, Duration::from_secs(20)),
        b"to the device"
    );

    // "Full disk": no file of the daemon may grow past 4 KiB, less than
    // the store already holds (until a checkpoint most of it is in the
    // WAL). A write at or past the limit fails whatever the file's size,
    // so neither a WAL frame (a 4 KiB page after a 32-byte header) nor a
    // checkpoint into the database can be written.
    let limit = 4096;
    let size = |f: &str| std::fs::metadata(d.join(f)).map_or(0, |m| m.len());
    let (db, wal) = (size("ttyward.db"), size("ttyward.db-wal"));
    eprintln!("database {db} bytes, WAL {wal} bytes; file-size limit {limit}");
    assert!(db + wal > limit, "the store is larger than the limit");
    let (soft, hard) = fsize_limits(pid);
    set_fsize(pid, &format!("{limit}:{hard}"));
    assert_eq!(fsize_limits(pid).0, limit.to_string());

    // Events the log cannot store.
    for n in 0..5 {
        visit(port, &pty, b'a' + n);
    }

    // Bulk data both ways at once.
    let down: Vec<u8> = (0..1usize << 20)
        .map(|i| ((i * 31 + (i >> 12)) & 0xFF) as u8)
        .collect();
    let up: Vec<u8> = (0..256usize << 10)
        .map(|i| ((i * 13 + (i >> 9)) & 0xFF) as u8)
        .collect();
    let mut sender = client.try_clone().expect("clone client");
    let (got_down, got_up) = std::thread::scope(|s| {
        let device_writer = s.spawn(|| write_fd_all(&pty.master, &down, Duration::from_secs(30)));
        let client_writer = s.spawn(|| sender.write_all(&up).expect("client writes"));
        let device_reader =
            s.spawn(|| read_fd_exact(&pty.master, up.len(), Duration::from_secs(30)));
        let got_down = read_exact_timeout(&mut client, down.len(), Duration::from_secs(30));
        device_writer.join().expect("device writer");
        client_writer.join().expect("client writer");
        (got_down, device_reader.join().expect("device reader"))
    });
    assert!(
        got_down == down,
        "device → client corrupted ({} bytes)",
        got_down.len()
    );
    assert!(
        got_up == up,
        "client → device corrupted ({} of {} bytes)",
        got_up.len(),
        up.len()
    );
    for n in 0..3 {
        visit(port, &pty, b'k' + n);
    }
    assert!(alive(pid), "the daemon survived the full disk");

    // Space again: the next event is stored behind a report of the loss.
    set_fsize(pid, &format!("{soft}:{hard}"));
    visit(port, &pty, b'z');
    let deadline = Instant::now() + Duration::from_secs(15);
    let report = loop {
        let events = events_json(d);
        if let Some(e) = named(&events, "events-dropped").first() {
            break (*e).clone();
        }
        assert!(
            Instant::now() < deadline,
            "no events-dropped entry after the limit was lifted; newest: {:?}",
            events.last()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let message = report["message"].as_str().expect("message");
    eprintln!("after the full disk: {message}");
    assert!(
        leading_number(message).is_some_and(|n| n > 0),
        "the report gives the lost count: {message}"
    );
    assert!(message.contains("store failed"), "{message}");
    assert!(alive(pid));
    // The client that was connected all along is still served.
    client.write_all(b"after").expect("write");
    assert_eq!(
        read_fd_exact(&pty.master, 5, Duration::from_secs(20)),
        b"after"
    );
    assert_eq!(daemon.stop(), Some(0));
    assert_integrity_ok(d);
}
