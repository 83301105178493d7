//! Reverse Terminal: the real `ttyward run` with a `sim:console` behind
//! Reverse SSH (port 1) and Reverse Telnet (port 2), reached with OpenSSH's
//! client (a key, or a password through sshpass) and with a real telnet
//! client driven through a pty. Accounts are made with `ttyward admin`.
//! Each test has its own data directory: the lockout counts per source, and
//! every peer here is 127.0.0.1.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ttyward_serial::pty::PtyPair;

use super::support::*;

const ADMIN: &str = "alice";
const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-9";
const OPERATOR: &str = "olga";
const OPERATOR_PASSWORD: &str = "Operator-Passphrase-77";
const LOGIN_MESSAGE: &str = "Authorised use only.\nAll access is logged.";
const PROMPT: &str = "ttyward-sim> ";
/// Every child process (ssh, telnet) must end within this.
const CHILD: Duration = Duration::from_secs(30);

/// A data directory with `alice` (Administrator) and `olga` (Operator), a
/// login message, Reverse SSH on port 1 and Reverse Telnet on port 2 (both
/// `sim:console`, 127.0.0.1, any free port, Administrators only) and the
/// web console on loopback.
fn device(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    create_admin(dir.path(), ADMIN, ADMIN_PASSWORD);
    let out = ttyward_cmd(
        dir.path(),
        &[
            "admin",
            "create",
            "--name",
            OPERATOR,
            "--group",
            "Operator",
            "--password-stdin",
        ],
        format!("{OPERATOR_PASSWORD}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = format!(
        r#"
[services.web]
bind = ["127.0.0.1"]
https_port = 0

[security.login]
message = "{}"

[[ports]]
number = 1
device = "sim:console"
mode = {{ type = "reverse-ssh", bind = ["127.0.0.1"], local_port = 0, max_connections = 1 }}

[[ports]]
number = 2
device = "sim:console"
mode = {{ type = "reverse-telnet", bind = ["127.0.0.1"], local_port = 0, map_crlf = "cr" }}
"#,
        LOGIN_MESSAGE.replace('\n', "\\n")
    );
    let out = import_config(dir.path(), &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The TCP port serial port `number` listens on.
fn port_of(daemon: &Ttyward, number: u16) -> u16 {
    daemon
        .listeners
        .iter()
        .find(|(p, _)| *p == number)
        .map(|(_, tcp)| *tcp)
        .unwrap_or_else(|| panic!("port {number} does not listen: {:?}", daemon.ready))
}

/// A new Ed25519 key pair (`ssh-keygen`) in `dir`; returns the private
/// key's path (the public one is beside it, `.pub`).
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let (code, _, err) = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@ttyward", "-f"])
            .arg(&key),
        b"",
        CHILD,
    );
    assert_eq!(code, Some(0), "ssh-keygen: {err}");
    key
}

/// `ssh` to port `port` as `user`, no user configuration, host key not
/// checked (unless `extra` says otherwise), no pty: the console's bytes
/// arrive unchanged on stdout.
fn ssh(port: u16, user: &str, extra: &[&str]) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-F", "/dev/null", "-T", "-p", &port.to_string()])
        .args(["-o", "ConnectTimeout=10"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(extra)
        .arg(format!("{user}@127.0.0.1"));
    c
}

/// Key login options: only this key, never a password prompt.
fn with_key(key: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
    ]
}

/// `sshpass -p PASSWORD ssh ...`: a password login, one try.
fn ssh_password(port: u16, user: &str, password: &str, extra: &[&str]) -> Command {
    let inner = ssh(
        port,
        user,
        &[
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
            ][..],
            extra,
        ]
        .concat(),
    );
    let mut c = Command::new("sshpass");
    c.args(["-p", password])
        .arg(inner.get_program())
        .args(inner.get_args());
    c
}

/// Poll the event log until `found` holds for it; returns the events.
fn wait_events(
    dir: &Path,
    what: &str,
    found: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = events_json(dir);
        if found(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the event log: {:#?}",
            summary(&events)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One line per event (for failure messages).
fn summary(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["event"], e["user"], e["source"], e["message"]
            )
        })
        .collect()
}

fn count(events: &[serde_json::Value], name: &str, user: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == name && e["user"] == user)
        .count()
}

#[test]
fn reverse_ssh_with_a_key_or_a_password_reaches_the_console_and_shows_the_login_message() {
    let dir = device("reverse-ssh");
    let keys = TempDir::new("reverse-ssh-keys");
    let key = keygen(keys.path(), "id_ed25519");
    let out = ttyward_cmd(
        dir.path(),
        &["admin", "ssh-key", "add", ADMIN, "-"],
        &std::fs::read(key.with_extension("pub")).expect("public key"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ttyward_cmd(dir.path(), &["admin", "ssh-key", "list", ADMIN], b"");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("test@ttyward"));
    let daemon = Ttyward::run(dir.path());
    let port = port_of(&daemon, 1);

    // A key: the console answers byte for byte; the login message is the
    // banner, before authentication.
    let key_opts = with_key(&key);
    let key_opts: Vec<&str> = key_opts.iter().map(String::as_str).collect();
    let (code, stdout, stderr) =
        run_bounded(&mut ssh(port, ADMIN, &key_opts), b"echo hello\r", CHILD);
    assert_eq!(code, Some(0), "ssh with a key: {stderr}");
    assert_eq!(
        stdout,
        format!("echo hello\r\nhello\r\n{PROMPT}"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Authorised use only.\r\nAll access is logged."),
        "no banner: {stderr}"
    );

    // A password, through sshpass (OpenSSH reads it from a terminal only).
    let (code, stdout, stderr) = run_bounded(
        &mut ssh_password(port, ADMIN, ADMIN_PASSWORD, &[]),
        b"echo by password\r",
        CHILD,
    );
    assert_eq!(code, Some(0), "ssh with a password: {stderr}");
    assert_eq!(
        stdout,
        format!("echo by password\r\nby password\r\n{PROMPT}")
    );

    // No command runs on a serial console.
    let (code, _, stderr) = run_bounded(ssh(port, ADMIN, &key_opts).arg("uname"), b"", CHILD);
    assert_ne!(code, Some(0), "exec must be refused: {stderr}");
    assert!(stderr.contains("exec request failed"), "{stderr}");

    let events = wait_events(dir.path(), "both logins", |e| {
        count(e, "login-succeeded", ADMIN) >= 3 && count(e, "logout", ADMIN) >= 3
    });
    assert!(
        events.iter().any(|e| e["event"] == "login-succeeded"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("public key SHA256:"))),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| e["event"] == "ssh-key-added"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "port-connected" && e["source"] == "127.0.0.1")
    );
}

#[test]
fn wrong_ssh_passwords_lock_the_account_and_the_right_one_is_then_refused() {
    let dir = device("reverse-lockout");
    let daemon = Ttyward::run(dir.path());
    let port = port_of(&daemon, 1);
    // The default lockout: 5 failures.
    for i in 0..5 {
        let (code, stdout, stderr) = run_bounded(
            &mut ssh_password(port, ADMIN, &format!("wrong-password-{i}"), &[]),
            b"echo in\r",
            CHILD,
        );
        assert_ne!(code, Some(0), "wrong password {i} let in: {stdout}");
        assert!(!stdout.contains(PROMPT), "{stdout} {stderr}");
    }
    let (code, stdout, stderr) = run_bounded(
        &mut ssh_password(port, ADMIN, ADMIN_PASSWORD, &[]),
        b"echo in\r",
        CHILD,
    );
    assert_ne!(code, Some(0), "a locked account got in: {stdout} {stderr}");
    assert!(!stdout.contains("in\r\n"), "{stdout}");
    let events = wait_events(dir.path(), "the lockout", |e| {
        count(e, "login-failed", ADMIN) >= 6 && e.iter().any(|x| x["event"] == "account-locked")
    });
    let refused = events
        .iter()
        .filter(|e| e["event"] == "login-failed" && e["user"] == ADMIN)
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("locked out"))
        })
        .count();
    assert!(
        refused >= 1,
        "the right password was not refused as locked: {events:#?}"
    );
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "login-failed")
            .all(|e| e["source"] == "127.0.0.1")
    );
    assert_eq!(count(&events, "login-succeeded", ADMIN), 0, "{events:#?}");
}

#[test]
fn a_user_whose_group_may_not_use_the_port_is_refused_on_ssh_and_telnet() {
    let dir = device("reverse-permission");
    let daemon = Ttyward::run(dir.path());
    let (code, stdout, stderr) = run_bounded(
        &mut ssh_password(port_of(&daemon, 1), OPERATOR, OPERATOR_PASSWORD, &[]),
        b"echo in\r",
        CHILD,
    );
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(stderr.contains("no permission for port 1"), "{stderr}");
    assert!(!stdout.contains(PROMPT), "{stdout}");

    let mut t = TelnetClient::start(port_of(&daemon, 2));
    t.expect("login: ");
    t.send(&format!("{OPERATOR}\r"));
    t.expect("Password: ");
    t.send(&format!("{OPERATOR_PASSWORD}\r"));
    t.expect("no permission for port 2");
    t.expect_closed();

    let events = wait_events(dir.path(), "both refusals", |e| {
        count(e, "console-access-refused", OPERATOR) >= 2
    });
    let messages: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "console-access-refused")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("port 1")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("port 2")),
        "{messages:?}"
    );
    assert_eq!(count(&events, "port-connected", OPERATOR), 0);
}

#[test]
fn reverse_telnet_with_a_telnet_client_hides_the_password_and_counts_a_wrong_one() {
    let dir = device("reverse-telnet");
    let daemon = Ttyward::run(dir.path());
    let mut t = TelnetClient::start(port_of(&daemon, 2));
    // The login message comes before the first prompt.
    let before = t.expect("login: ");
    assert!(
        before.contains("Authorised use only.\r\nAll access is logged.\r\n"),
        "{before:?}"
    );
    t.send(&format!("{ADMIN}\r"));
    let echoed = t.expect("Password: ");
    assert!(echoed.contains(ADMIN), "the name is echoed: {echoed:?}");
    t.send("not-the-password\r");
    let failed = t.expect("login: ");
    assert!(
        !failed.contains("not-the-password"),
        "password echoed: {failed:?}"
    );
    assert!(failed.contains("incorrect"), "{failed:?}");
    t.send(&format!("{ADMIN}\r"));
    t.expect("Password: ");
    t.send(&format!("{ADMIN_PASSWORD}\r"));
    // The console: what the device echoes and answers comes back.
    t.send("echo over telnet\r");
    let answer = t.expect(PROMPT);
    assert!(
        !answer.contains(ADMIN_PASSWORD),
        "password echoed: {answer:?}"
    );
    assert!(
        answer.contains("echo over telnet\r\nover telnet\r\n"),
        "{answer:?}"
    );
    drop(t);

    let events = wait_events(dir.path(), "the telnet logins", |e| {
        count(e, "login-failed", ADMIN) >= 1
            && e.iter().any(|x| {
                x["event"] == "login-succeeded"
                    && x["message"].as_str().is_some_and(|m| m.contains("telnet"))
            })
            && count(e, "logout", ADMIN) >= 1
    });
    assert!(events.iter().any(|e| e["event"] == "port-disconnected"));
}

#[test]
fn one_console_place_refuses_a_second_ssh_session_until_an_administrator_ends_the_first() {
    let dir = device("reverse-max");
    let keys = TempDir::new("reverse-max-keys");
    let key = keygen(keys.path(), "id_ed25519");
    let out = ttyward_cmd(
        dir.path(),
        &[
            "admin",
            "ssh-key",
            "add",
            ADMIN,
            key.with_extension("pub").to_str().expect("utf-8"),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Ttyward::run(dir.path());
    let port = port_of(&daemon, 1);
    let key_opts = with_key(&key);
    let key_opts: Vec<&str> = key_opts.iter().map(String::as_str).collect();

    let mut first = Held::start(ssh(port, ADMIN, &key_opts));
    first.send(b"echo first\r");
    first.expect("first\r\n");

    let (code, stdout, stderr) =
        run_bounded(&mut ssh(port, ADMIN, &key_opts), b"echo second\r", CHILD);
    assert_eq!(code, Some(1), "{stdout} {stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(!stdout.contains("second"), "{stdout}");

    // An administrator ends the first console's session: it closes.
    let sessions = ttyward_cmd(dir.path(), &["admin", "sessions"], b"");
    let listing = String::from_utf8_lossy(&sessions.stdout).into_owned();
    let id = listing
        .lines()
        .find(|l| l.contains(" ssh "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no ssh session listed: {listing}"))
        .to_owned();
    let out = ttyward_cmd(dir.path(), &["admin", "end-session", &id], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, stderr) = first.wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("login session has ended"), "{stderr}");

    // The place is free again.
    let (code, stdout, stderr) =
        run_bounded(&mut ssh(port, ADMIN, &key_opts), b"echo third\r", CHILD);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("third\r\n"), "{stdout}");
    wait_events(dir.path(), "the refusal", |e| {
        e.iter().any(|x| {
            x["event"] == "port-connection-refused"
                && x["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("max connections"))
        })
    });
}

#[test]
fn the_ssh_host_key_is_made_once_private_and_kept_across_restarts() {
    let dir = device("reverse-hostkey");
    let keys = TempDir::new("reverse-hostkey-keys");
    let key = keygen(keys.path(), "id_ed25519");
    let public = key.with_extension("pub");
    let out = ttyward_cmd(
        dir.path(),
        &[
            "admin",
            "ssh-key",
            "add",
            ADMIN,
            public.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let known_hosts = keys.path().join("known_hosts");
    let key_opts = with_key(&key);
    let mut opts: Vec<&str> = key_opts.iter().map(String::as_str).collect();
    let known = format!("UserKnownHostsFile={}", known_hosts.display());
    // Named by an alias: the port changes from one start to the next.
    opts.extend(["-o", "HostKeyAlias=ttyward-reverse-test", "-o", &known]);

    let host_key = dir.path().join("ssh").join("host_ed25519");
    let mut first_key = Vec::new();
    for start in 0..2 {
        let daemon = Ttyward::run(dir.path());
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&host_key), 0o600);
        assert_eq!(mode(&dir.path().join("ssh")), 0o700);
        let bytes = std::fs::read(&host_key).expect("host key");
        let checking = if start == 0 {
            first_key = bytes;
            "StrictHostKeyChecking=accept-new"
        } else {
            assert_eq!(bytes, first_key, "the host key changed on restart");
            // Refuses any key but the one remembered at the first start.
            "StrictHostKeyChecking=yes"
        };
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-T",
            "-p",
            &port_of(&daemon, 1).to_string(),
        ])
        .args(["-o", checking])
        .args(&opts)
        .arg(format!("{ADMIN}@127.0.0.1"));
        let (code, stdout, stderr) = run_bounded(&mut cmd, b"version\r", CHILD);
        assert_eq!(code, Some(0), "start {start}: {stderr}");
        assert!(stdout.contains("ttyward-sim"), "{stdout}");
        assert_eq!(daemon.stop(), Some(0));
    }
    let remembered = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    assert_eq!(remembered.lines().count(), 1, "{remembered}");
}

/// A child (ssh) kept running while the test talks to it: stdin open,
/// stdout read by a thread.
struct Held {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Held {
    fn start(mut cmd: Command) -> Held {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Held {
            stdin: child.stdin.take(),
            child,
            out,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to ssh");
        stdin.flush().expect("flush");
    }

    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + CHILD;
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => panic!(
                    "no {text:?} from ssh; got {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// Wait for the child to end by itself; its exit code and stderr.
    fn wait(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + CHILD;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            assert!(Instant::now() < deadline, "ssh did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `telnet` client (inetutils) on a pty, as a person would run it.
struct TelnetClient {
    child: Child,
    pty: PtyPair,
    seen: Vec<u8>,
}

impl TelnetClient {
    fn start(port: u16) -> TelnetClient {
        let pty = PtyPair::open().expect("pty");
        let slave = || -> OwnedFd {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&pty.slave_path)
                .expect("pty slave")
                .into()
        };
        let child = Command::new("telnet")
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::from(slave()))
            .stdout(Stdio::from(slave()))
            .stderr(Stdio::from(slave()))
            .spawn()
            .expect("telnet (scripts/test installs inetutils-telnet)");
        TelnetClient {
            child,
            pty,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, text: &str) {
        write_fd_all(&self.pty.master, text.as_bytes(), CHILD);
    }

    /// Everything up to and including `text` (what was before it is
    /// returned; the rest stays for the next call).
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + CHILD;
        loop {
            let shown = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(i) = shown.find(text) {
                let end = i + text.len();
                self.seen = shown.as_bytes()[end..].to_vec();
                return shown[..end].to_owned();
            }
            assert!(
                self.read_some(deadline),
                "no {text:?} from telnet; got {shown:?}"
            );
        }
    }

    /// The server closes: telnet says so and ends.
    fn expect_closed(&mut self) {
        self.expect("Connection closed by foreign host");
    }

    /// Read what the pty has; false at the deadline or when it closed.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.pty.master.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
            return false;
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&self.pty.master, &mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.seen.extend_from_slice(&buf[..n]);
                true
            }
        }
    }
}

impl Drop for TelnetClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn bridge_refuses_reverse_terminal_ports_for_want_of_accounts() {
    let dir = TempDir::new("reverse-bridge");
    let file = dir.path().join("ports.toml");
    std::fs::write(
        &file,
        "[[ports]]\nnumber = 1\ndevice = \"sim:console\"\nmode = { type = \"reverse-ssh\", bind = [\"127.0.0.1\"], local_port = 0 }\n",
    )
    .expect("write");
    let (code, _, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ttyward"))
            .args(["bridge", "--config"])
            .arg(&file),
        b"",
        CHILD,
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("use `ttyward run`"), "{stderr}");
}
