//! `ttyward run`, the daemon, on a real data directory: first use, live
//! configuration changes made by other processes, the Gate (allowlist and
//! DoS defence) against real sockets from 127.0.0.2 / 127.0.0.3, refused
//! imports, a corrupt store and shutdown with clients connected.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::*;

const PASSWORD: &str = "long-enough-passphrase-42";

/// The web console on loopback, any free port: a test never listens on
/// public addresses (the default is every address, port 443).
const WEB_LOCAL: &str = "[services.web]\nbind = [\"127.0.0.1\"]\nhttps_port = 0\n";

/// Two `sim:echo` TCP Server ports (1 and 2) on 127.0.0.1, any free port,
/// up to 8 clients each; port 2's alias is `port2_alias`; `extra` is
/// appended (more table sections, e.g. `[security.allowlist]`).
fn echo_config(port2_alias: &str, extra: &str) -> String {
    let port = |number: u16, alias: &str| {
        format!(
            r#"
[[ports]]
number = {number}
alias = "{alias}"
device = "sim:echo"

[ports.mode]
type = "tcp-server"
bind = ["127.0.0.1"]
local_port = 0
max_connections = 8
"#
        )
    };
    format!(
        "{}{}\n{WEB_LOCAL}\n{extra}",
        port(1, "one"),
        port(2, port2_alias)
    )
}

/// `config import -` that must succeed; returns its stdout.
fn import_ok(dir: &Path, toml: &str) -> String {
    let out = import_config(dir, toml);
    assert!(
        out.status.success(),
        "config import failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A data directory with `toml` imported and an Administrator, and the
/// daemon running on it (its ready line already shows the listeners).
fn serving(tag: &str, toml: &str) -> (TempDir, PathBuf, Ttyward) {
    let tmp = TempDir::new(tag);
    let dir = tmp.path().join("data");
    import_ok(&dir, toml);
    create_admin(&dir, "boss", PASSWORD);
    let daemon = Ttyward::run(&dir);
    assert_eq!(daemon.ready["setup_required"], false, "{}", daemon.ready);
    (tmp, dir, daemon)
}

/// The bound TCP port of serial port `number` in a listener list.
fn bound(listeners: &[(u16, u16)], number: u16) -> u16 {
    listeners
        .iter()
        .find(|(n, _)| *n == number)
        .unwrap_or_else(|| panic!("no listener for port {number} in {listeners:?}"))
        .1
}

/// A TCP connection to 127.0.0.1:`port` from source address `from`.
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into(),
        Duration::from_secs(2),
    )?;
    Ok(socket.into())
}

/// Send `data` and assert the same bytes come back within 5 s.
fn assert_echoes(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("write to the port");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got)
        .expect("echo within 5 s (the session must still be served)");
    assert!(got == data, "echo differs from what was sent");
}

/// Send `marker` and assert it comes back within 5 s, after whatever
/// other device output was still on its way to this client.
fn assert_echo_arrives(s: &mut TcpStream, marker: &[u8]) {
    s.write_all(marker).expect("write to the port");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(marker) && got.len() < 1 << 20 {
        assert!(
            Instant::now() < deadline,
            "echo of {marker:?} did not arrive"
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("the session was closed"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("session read: {e}"),
        }
    }
    assert!(got.ends_with(marker), "echo of {marker:?} did not arrive");
}

/// What a peer did within a deadline.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// It closed the connection (EOF or reset).
    Closed,
    /// It sent this many bytes.
    Data(usize),
    /// Nothing before the deadline.
    Silent,
}

fn reply_within(s: &mut TcpStream, timeout: Duration) -> Reply {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => Reply::Closed,
        Ok(n) => Reply::Data(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Reply::Silent,
        Err(_) => Reply::Closed,
    }
}

/// Whether the peer has closed `s` (without waiting): pending data is
/// read and discarded.
fn closed_now(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..1_000 {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

/// Stored events named `name` (optionally from `source`), polled until at
/// least one exists or `timeout` passes (the daemon's writer stores them
/// a moment after they happen).
fn events_named(
    dir: &Path,
    name: &str,
    source: Option<&str>,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let found: Vec<serde_json::Value> = events_json(dir)
            .into_iter()
            .filter(|e| e["event"] == name && source.is_none_or(|s| e["source"] == s))
            .collect();
        if !found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn export(dir: &Path) -> Vec<u8> {
    let out = ttyward_cmd(dir, &["config", "export"], b"");
    assert!(
        out.status.success(),
        "config export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run `ttyward --data-dir DIR ARGS` that is expected to exit by itself;
/// killed (by pid) and reported if it is still running after 10 s.
fn exits_within(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ttyward"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("TTYWARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ttyward");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ttyward {args:?} was still running after 10 s; it should have exited");
}

#[test]
fn fresh_data_dir_starts_with_every_port_off_and_a_private_setup_code() {
    let tmp = TempDir::new("fresh");
    let dir = tmp.path().join("not-yet");
    assert!(!dir.exists());
    // The only thing done before the first start: keep the web console
    // on loopback (an import creates the data directory like `run` does).
    import_ok(&dir, WEB_LOCAL);
    let daemon = Ttyward::run(&dir);
    assert_eq!(daemon.ready["setup_required"], true, "{}", daemon.ready);
    assert!(daemon.listeners.is_empty(), "{}", daemon.ready);

    assert_eq!(mode_of(&dir), 0o700, "data directory mode");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("read data dir") {
        let path = entry.expect("entry").path();
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode_of(&path), want, "{}", path.display());
        files += 1;
    }
    assert!(files >= 2, "expected the database and the setup code");
    let code = std::fs::read_to_string(dir.join("setup-code")).expect("setup-code file");
    assert!(!code.trim().is_empty(), "setup code is empty");

    let show = ttyward_cmd(&dir, &["config", "show"], b"");
    assert!(
        show.status.success(),
        "config show: {}",
        String::from_utf8_lossy(&show.stderr)
    );

    assert_eq!(daemon.stop(), Some(0), "SIGTERM must be a clean stop");
    let names: Vec<String> = events_json(&dir)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    for wanted in ["system-start", "system-stop"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing: {names:?}"
        );
    }
}

#[test]
fn ports_start_once_an_administrator_exists() {
    let tmp = TempDir::new("first-admin");
    let dir = tmp.path().join("data");
    let mut daemon = Ttyward::run(&dir);
    assert_eq!(daemon.ready["setup_required"], true);
    assert!(dir.join("setup-code").exists());

    import_ok(&dir, &echo_config("two", ""));
    let applied = daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["setup_required"], true, "{applied}");
    assert!(
        listeners_of(&applied).is_empty(),
        "no port may serve before an Administrator exists: {applied}"
    );

    create_admin(&dir, "boss", PASSWORD);
    let applied = daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["setup_required"], false, "{applied}");
    let listeners = listeners_of(&applied);
    assert_eq!(listeners.len(), 2, "{applied}");
    for number in [1, 2] {
        let mut s = TcpStream::connect(("127.0.0.1", bound(&listeners, number))).expect("connect");
        assert_echoes(&mut s, format!("hello port {number}").as_bytes());
    }
    assert!(
        !dir.join("setup-code").exists(),
        "the setup code must be gone once an Administrator exists"
    );
}

#[test]
fn live_change_restarts_only_the_changed_port() {
    let (_tmp, dir, mut daemon) = serving("live", &echo_config("two", ""));
    let before = daemon.listeners.clone();
    assert_eq!(before.len(), 2, "{}", daemon.ready);
    let mut held1 =
        TcpStream::connect(("127.0.0.1", bound(&before, 1))).expect("connect to port 1");
    assert_echoes(&mut held1, b"before the change");
    let mut held2 =
        TcpStream::connect(("127.0.0.1", bound(&before, 2))).expect("connect to port 2");
    assert_echoes(&mut held2, b"port 2 before");

    let out = import_ok(&dir, &echo_config("renamed", ""));
    assert!(out.contains("port 2"), "{out}");
    assert!(!out.contains("port 1"), "only port 2 changed: {out}");
    let applied = daemon.wait_event("applied", Duration::from_secs(10));
    let after = listeners_of(&applied);
    assert_eq!(after.len(), 2, "{applied}");
    assert_eq!(
        bound(&after, 1),
        bound(&before, 1),
        "port 1 must keep its listener"
    );

    // Same socket, no reconnect: port 1 was not touched.
    assert_echoes(&mut held1, b"after the change");
    // Port 2 restarted: its old session ended, a new one is served.
    assert_eq!(
        reply_within(&mut held2, Duration::from_secs(5)),
        Reply::Closed,
        "port 2 restarted, its session must have been closed"
    );
    let mut new2 =
        TcpStream::connect(("127.0.0.1", bound(&after, 2))).expect("connect to new port 2");
    assert_echoes(&mut new2, b"port 2 after");

    let out = import_ok(&dir, &echo_config("renamed", ""));
    assert!(out.contains("nothing changed"), "{out}");
    assert_echoes(&mut held1, b"still there");
}

#[test]
fn allowlist_refuses_127_0_0_2_and_admits_127_0_0_1() {
    let allow = |enabled: bool| {
        format!(
            r#"
[security.allowlist]
enabled = {enabled}
entries = [{{ address = "127.0.0.1", netmask = "255.255.255.255", services = ["serial"] }}]
"#
        )
    };
    let (_tmp, dir, mut daemon) = serving("allowlist", &echo_config("two", &allow(true)));
    let port = bound(&daemon.listeners, 1);
    let stranger = Ipv4Addr::new(127, 0, 0, 2);

    let mut refused = connect_from(stranger, port).expect("TCP connect from 127.0.0.2");
    // The write may already meet a reset; only the reply matters.
    let _ = refused.write_all(b"let me in");
    assert_eq!(
        reply_within(&mut refused, Duration::from_secs(5)),
        Reply::Closed,
        "a source outside the allowlist must be closed without an echo"
    );

    let mut friend = connect_from(Ipv4Addr::LOCALHOST, port).expect("connect from 127.0.0.1");
    assert_echoes(&mut friend, b"allowed");

    let events = events_named(
        &dir,
        "allowlist-refused",
        Some("127.0.0.2"),
        Duration::from_secs(5),
    );
    assert!(
        !events.is_empty(),
        "no allowlist-refused event from 127.0.0.2"
    );

    // Every client of a port gets all the device's output: end this one
    // so the next echo check sees only its own bytes.
    drop(friend);
    import_ok(&dir, &echo_config("two", &allow(false)));
    let applied = daemon.wait_event("applied", Duration::from_secs(10));
    let port = bound(&listeners_of(&applied), 1);
    let mut welcome = connect_from(stranger, port).expect("connect from 127.0.0.2");
    assert_echoes(&mut welcome, b"allowlist off");
}

#[test]
fn connection_flood_from_one_source_does_not_stop_a_connected_session() {
    const PER_SOURCE: usize = 4;
    const FLOOD: usize = 300;
    const BURST: usize = 25;
    let dos = format!(
        r#"
[security.dos]
enabled = true
per_source_connections = {PER_SOURCE}
accept_rate = 5
accept_burst = 5
"#
    );
    let (_tmp, dir, daemon) = serving("flood", &echo_config("two", &dos));
    let port = bound(&daemon.listeners, 1);
    let mut session = connect_from(Ipv4Addr::LOCALHOST, port).expect("connect the session");
    assert_echoes(&mut session, b"before the flood");

    // The flood in bursts as fast as connect() goes, one 4 KiB echo after
    // each burst (so the session is seen working during the flood), then
    // the rest of 64 KiB after it.
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let chunk: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut flood = Vec::with_capacity(FLOOD);
    let mut connect_failures = 0;
    let mut echoed = 0;
    let started = Instant::now();
    for _ in 0..FLOOD / BURST {
        for _ in 0..BURST {
            match connect_from(attacker, port) {
                Ok(s) => flood.push(s),
                Err(_) => connect_failures += 1,
            }
        }
        assert_echoes(&mut session, &chunk);
        echoed += chunk.len();
    }
    eprintln!(
        "flood: {} connected, {connect_failures} failed to connect, {:?}",
        flood.len(),
        started.elapsed()
    );
    while echoed < 64 * 1024 {
        assert_echoes(&mut session, &chunk);
        echoed += chunk.len();
    }

    // The Gate admits at most PER_SOURCE of them; the rest are closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = flood.len();
    while Instant::now() < deadline {
        open = flood.iter().filter(|s| !closed_now(s)).count();
        if open <= PER_SOURCE {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        open <= PER_SOURCE,
        "{open} flood connections still open; at most {PER_SOURCE} may be admitted"
    );
    assert!(
        flood.len() > PER_SOURCE,
        "the flood did not reach the Gate: {} connected, {connect_failures} failed",
        flood.len()
    );

    let dos_events = events_named(
        &dir,
        "dos-triggered",
        Some("127.0.0.3"),
        Duration::from_secs(5),
    );
    assert!(
        (1..=3).contains(&dos_events.len()),
        "expected 1–3 rate-limited dos-triggered events, got {}: {dos_events:?}",
        dos_events.len()
    );
    assert_echoes(&mut session, b"after the flood");

    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = false;
    while !served && Instant::now() < deadline {
        if let Ok(mut s) = connect_from(attacker, port) {
            let _ = s.write_all(b"back");
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut buf = [0u8; 4];
            served = s.read_exact(&mut buf).is_ok() && &buf == b"back";
        }
        if !served {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        served,
        "127.0.0.3 was not served again after the flood ended"
    );
    // The session also got the echo of "back" (a port's clients all get
    // the device's output): it must still be served, behind that.
    assert_echo_arrives(&mut session, b"<the end>");
}

#[test]
fn bad_import_changes_nothing_and_names_every_field() {
    let tmp = TempDir::new("bad-import");
    let dir = tmp.path().join("data");
    import_ok(&dir, &echo_config("two", ""));
    let before = export(&dir);

    let bad = r#"
bogus_key = 1

[services.web]
bind = ["127.0.0.1"]
https_port = 0

[[ports]]
number = 1
device = "sim:echo"
serial = { baud = 7 }
mode = { type = "tcp-server", max_connections = 0 }

[security.password_policy]
min_length = 3

[security.dos]
accept_rate = 0
"#;
    let out = import_config(&dir, bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for field in [
        "ports[0].serial.baud",
        "ports[0].mode.max_connections",
        "security.password_policy.min_length",
        "security.dos.accept_rate",
        "bogus_key",
    ] {
        assert!(stderr.contains(field), "{field} not named in:\n{stderr}");
    }
    assert_eq!(
        export(&dir),
        before,
        "a refused import must not change the configuration"
    );
    assert!(
        !events_named(&dir, "config-import-refused", None, Duration::ZERO).is_empty(),
        "no config-import-refused event"
    );
}

#[test]
fn garbage_input_gets_one_line_errors() {
    let tmp = TempDir::new("garbage");
    let dir = tmp.path().join("data");
    import_ok(&dir, &echo_config("two", ""));
    let before = export(&dir);

    // Non-UTF-8 bytes throughout (0x80..=0xFF never start valid UTF-8 alone).
    let binary: Vec<u8> = (0..64 * 1024usize)
        .map(|i| 0x80 | (i * 37 % 128) as u8)
        .collect();
    let big = tmp.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).expect("write big file");
    let empty = tmp.path().join("empty.toml");
    std::fs::write(&empty, b"").expect("write empty file");
    let big = big.to_str().expect("utf-8 path");
    let empty = empty.to_str().expect("utf-8 path");
    let cases: [(&str, Vec<&str>, &[u8], bool); 4] = [
        (
            "64 KiB of binary",
            vec!["config", "import", "-"],
            &binary,
            true,
        ),
        ("a 2 MiB file", vec!["config", "import", big], b"", true),
        ("an empty file", vec!["config", "import", empty], b"", false),
        (
            "ports = 5",
            vec!["config", "import", "-"],
            b"ports = 5\n",
            false,
        ),
    ];

    let mut problems = Vec::new();
    for (what, args, stdin, one_line) in cases {
        let out = ttyward_cmd(&dir, &args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            problems.push(format!(
                "{what}: accepted, exit 0 (stdout {:?})",
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        } else if stderr.contains("panicked")
            || stderr.len() >= 2048
            || stderr.trim().is_empty()
            || (one_line && stderr.trim().lines().count() != 1)
        {
            problems.push(format!("{what}: not a short error: {stderr:?}"));
        }
        if export(&dir) != before {
            problems.push(format!("{what}: the stored configuration changed"));
            import_ok(&dir, &echo_config("two", ""));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn check_flag_validates_and_a_corrupt_stored_config_exits_64() {
    let tmp = TempDir::new("corrupt");
    let dir = tmp.path().join("data");
    import_ok(&dir, &echo_config("two", ""));
    let out = exits_within(&dir, &["run", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "run --check on a valid store: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The latest (and only) row of the config table gets a document that
    // parses as JSON but is no valid configuration.
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
doc = '{"ports":[{"number":1,"device":"sim:echo","serial":{"baud":7}}]}'
n = db.execute("UPDATE config SET document = ? WHERE revision = (SELECT MAX(revision) FROM config)", (doc,)).rowcount
db.commit()
sys.exit(0 if n == 1 else "no configuration row to corrupt")
"#;
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(dir.join("ttyward.db"))
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "corrupting the store: {}",
        String::from_utf8_lossy(&py.stderr)
    );

    for args in [&["run"][..], &["run", "--check"][..]] {
        let out = exits_within(&dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains("configuration") && stderr.contains("ports[0].serial.baud"),
            "{args:?} must name the problem: {stderr}"
        );
    }
}

#[test]
fn sigterm_drains_and_exits_zero_with_a_connected_client() {
    let (_tmp, _dir, daemon) = serving("drain", &echo_config("two", ""));
    let mut client =
        TcpStream::connect(("127.0.0.1", bound(&daemon.listeners, 1))).expect("connect");
    assert_echoes(&mut client, b"connected");

    let started = Instant::now();
    assert_eq!(daemon.stop(), Some(0), "SIGTERM must be a clean stop");
    let took = started.elapsed();
    // ttyward's drain grace is 3 s; allow scheduling slack on top.
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert_eq!(
        reply_within(&mut client, Duration::from_secs(2)),
        Reply::Closed,
        "the client must see the connection end"
    );
}
