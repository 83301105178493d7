//! The web console in a real browser: headless Chromium (Debian's
//! `/usr/bin/chromium`) driven by `tests/browser/console.mjs` through
//! playwright-core, both installed by `scripts/test`. Each test starts
//! `ttyward run` on a fresh data directory, runs one scenario of the script
//! against its console (the script checks what a person would see and
//! saves a screenshot of every page under `target/browser-screenshots/`),
//! then checks on this side what only the host can see: the pty's termios,
//! the event log, the stored configuration.

use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use ttyward_serial::pty::PtyPair;

use super::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "Copper-Kettle-Whistle-83";
const OPERATOR: &str = "op";
const OPERATOR_PASSWORD: &str = "Maple-Lighthouse-Drift-27";
const LOGIN_MESSAGE: &str = "Authorised use only";
const FAILURE_MESSAGE: &str =
    "Wrong account or password; three failures lock the account for a minute.";
const MAX_FAILURES: u64 = 3;
/// One scenario's bound (the script's own watchdog fires at 75 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// The configuration every test imports: the console on loopback, a login
/// message and failure message, lockout after three failures, one port.
fn console_config(device: &str) -> String {
    format!(
        r#"
[services.web]
bind = ["127.0.0.1"]
https_port = 0

[security.login]
message = "{LOGIN_MESSAGE}"
failure_message = "{FAILURE_MESSAGE}"

[security.login.lockout]
max_failures = {MAX_FAILURES}
lockout_s = 60

[[ports]]
number = 1
device = "{device}"
[ports.serial]
baud = 9600
flow = "none"
[ports.mode]
type = "tcp-server"
bind = ["127.0.0.1"]
local_port = 0
"#
    )
}

/// A running daemon with its console, on its own data directory.
struct Console {
    dir: TempDir,
    daemon: Ttyward,
    /// `https://127.0.0.1:PORT`.
    base: String,
}

impl Console {
    /// Import [`console_config`] with `device`, create `accounts` (name,
    /// group, password) with the CLI, start `ttyward run`.
    fn start(tag: &str, device: &str, accounts: &[(&str, &str, &str)]) -> Console {
        let dir = TempDir::new(tag);
        let out = import_config(dir.path(), &console_config(device));
        assert!(
            out.status.success(),
            "config import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (name, group, password) in accounts {
            let out = ttyward_cmd(
                dir.path(),
                &[
                    "admin",
                    "create",
                    "--name",
                    name,
                    "--group",
                    group,
                    "--password-stdin",
                ],
                format!("{password}\n").as_bytes(),
            );
            assert!(
                out.status.success(),
                "admin create {name} ({group}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let daemon = Ttyward::run(dir.path());
        let web = daemon.ready["web"][0]
            .as_str()
            .unwrap_or_else(|| panic!("no web address in the ready line {}", daemon.ready))
            .to_owned();
        Console {
            dir,
            daemon,
            base: format!("https://{web}"),
        }
    }

    /// Run `scenario` of console.mjs against this console.
    fn browse(&self, scenario: &str, args: Value) -> Value {
        run_console(scenario, &self.base, args)
    }

    fn events(&self) -> Vec<Value> {
        events_json(self.dir.path())
    }

    fn export(&self) -> String {
        let out = ttyward_cmd(self.dir.path(), &["config", "export"], b"");
        assert!(
            out.status.success(),
            "config export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 export")
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/browser-screenshots/` of the workspace (a CI artifact).
fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target/browser-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Node, Chromium and playwright-core must be there: these tests fail,
/// never skip, without them.
fn require_browser() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(o) if o.status.success()),
        "node is not installed ({node:?}); run scripts/test, which installs what the browser tests need"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing; run scripts/test, which installs Debian's chromium"
    );
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "{} is missing; run scripts/test, which installs playwright-core there",
        playwright.display()
    );
}

/// `node console.mjs SCENARIO BASE ARGS` (ARGS gains `shots`), bounded by
/// [`SCENARIO_TIMEOUT`]; asserts success and returns the JSON object the
/// script printed last.
fn run_console(scenario: &str, base: &str, mut args: Value) -> Value {
    require_browser();
    args["shots"] = json!(screenshots_dir());
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .arg(scenario)
        .arg(base)
        .arg(args.to_string())
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node (scripts/test installs what the browser tests need)");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let status = child.wait();
        let _ = tx.send(());
        (status, out, err.join().unwrap_or_default())
    });
    let mut timed_out = false;
    if rx.recv_timeout(SCENARIO_TIMEOUT).is_err() {
        // SIGTERM first: playwright then closes Chromium itself.
        timed_out = true;
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if rx.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let (status, out, err) = waiter.join().expect("node waiter");
    let status = status.expect("node exit status");
    eprintln!(
        "browser scenario {scenario}: {:.1} s, {status}\n{err}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        !timed_out,
        "browser scenario {scenario} did not finish within {SCENARIO_TIMEOUT:?}\nstderr:\n{err}"
    );
    assert!(
        status.success(),
        "browser scenario {scenario} failed ({status})\nstderr:\n{err}\nstdout:\n{out}"
    );
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("scenario {scenario} printed no JSON result ({e}): {out}"))
}

fn named<'a>(events: &'a [Value], event: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == event).collect()
}

/// The pty's output speed once it equals `want`, or panic with the last
/// one seen after `timeout`.
fn wait_for_ospeed(pty: &PtyPair, want: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let t = ttyward_serial::pty::termios_snapshot(pty.master.as_fd()).expect("termios");
        if t.ospeed == want && t.ispeed == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pty's speed never became {want} within {timeout:?}: termios {t:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The `[security.allowlist]` part of a TOML export (its table and entries).
fn allowlist_section(export: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in export.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.starts_with("[security.allowlist") || t.starts_with("[[security.allowlist");
        }
        if inside {
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

/// First use in the browser: "/" leads to Create Account, a wrong setup
/// code and differing passwords are refused, the right code creates the
/// Administrator (the ports, off until then, start), the login page shows
/// the login message, and every page of the Administrator's menu opens.
#[test]
fn first_use_creates_the_administrator_with_the_setup_code_and_every_menu_page_opens() {
    let mut c = Console::start("browser-first-use", "sim:echo", &[]);
    assert_eq!(c.daemon.ready["setup_required"], true, "{}", c.daemon.ready);
    assert!(
        c.daemon.listeners.is_empty(),
        "ports serve before any account exists"
    );
    let code_file = c.dir.path().join("setup-code");
    let code = std::fs::read_to_string(&code_file).expect("DIR/setup-code while no account exists");

    let result = c.browse(
        "first-use",
        json!({
            "setup_code": code.trim(),
            "name": ADMIN,
            "password": ADMIN_PASSWORD,
            "login_message": LOGIN_MESSAGE,
        }),
    );

    let visited: Vec<&str> = result["visited"]
        .as_array()
        .expect("visited pages")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for page in [
        "/dashboard",
        "/serial/parameters",
        "/security/allowlist",
        "/accounts",
        "/log",
    ] {
        assert!(
            visited.contains(&page),
            "{page} not in the Administrator's menu: {visited:?}"
        );
    }
    let applied = c.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["setup_required"], false, "{applied}");
    assert_eq!(
        listeners_of(&applied)
            .iter()
            .map(|l| l.0)
            .collect::<Vec<_>>(),
        [1],
        "port 1 starts once the Administrator exists: {applied}"
    );
    assert!(!code_file.exists(), "the setup code outlives its use");

    let events = c.events();
    assert_eq!(named(&events, "setup-code-refused").len(), 1, "{events:#?}");
    let created = named(&events, "first-admin-created");
    assert_eq!(created.len(), 1, "{events:#?}");
    assert!(
        created[0]["source"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1"),
        "first-admin-created should name the browser's address: {}",
        created[0]
    );
    assert!(
        named(&events, "login-succeeded")
            .iter()
            .any(|e| e["user"] == ADMIN),
        "no login-succeeded for {ADMIN}: {events:#?}"
    );
}

/// The login page shows the login message; each wrong password shows the
/// configured failure message; after three failures even the right
/// password is refused (with the same message), and the log says so.
#[test]
fn login_shows_the_login_and_failure_messages_and_locks_out_after_three_failures() {
    let c = Console::start(
        "browser-login",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    c.browse(
        "login",
        json!({
            "name": ADMIN,
            "password": ADMIN_PASSWORD,
            "login_message": LOGIN_MESSAGE,
            "failure_message": FAILURE_MESSAGE,
            "max_failures": MAX_FAILURES,
        }),
    );
    let events = c.events();
    let failed = named(&events, "login-failed");
    assert_eq!(failed.len() as u64, MAX_FAILURES + 1, "{events:#?}");
    assert!(
        failed
            .iter()
            .all(|e| e["user"] == ADMIN && e["source"] == "127.0.0.1"),
        "{failed:#?}"
    );
    assert!(
        failed
            .last()
            .and_then(|e| e["message"].as_str())
            .is_some_and(|m| m.contains("locked out")),
        "the last attempt (right password) should be refused as locked out: {failed:#?}"
    );
    assert_eq!(named(&events, "account-locked").len(), 1, "{events:#?}");
    assert!(named(&events, "login-succeeded").is_empty(), "{events:#?}");
}

/// An Operator's menu has no Security, Account Management or Maintenance
/// page; those pages answer 403 when asked for directly, a forged
/// Allowlist POST is refused, and the Log View hides Security events.
#[test]
fn operator_sees_no_security_pages_and_gets_403_asking_for_them() {
    let c = Console::start(
        "browser-operator",
        "sim:echo",
        &[
            (ADMIN, "Administrator", ADMIN_PASSWORD),
            (OPERATOR, "Operator", OPERATOR_PASSWORD),
        ],
    );
    let before = allowlist_section(&c.export());
    let result = c.browse(
        "operator",
        json!({"name": OPERATOR, "password": OPERATOR_PASSWORD}),
    );
    let visited = result["visited"].as_array().expect("visited pages");
    assert!(
        visited.iter().any(|p| p == "/serial/parameters") && visited.iter().any(|p| p == "/log"),
        "{visited:?}"
    );
    assert_eq!(
        allowlist_section(&c.export()),
        before,
        "the Operator changed the allowlist"
    );
    let events = c.events();
    let shown: Vec<i64> = result["log"]
        .as_array()
        .expect("log rows")
        .iter()
        .map(|v| v.as_i64().expect("seq"))
        .collect();
    let newest = shown.first().copied().unwrap_or(0);
    let mut expected: Vec<i64> = events
        .iter()
        .filter(|e| e["category"] != "security")
        .filter_map(|e| e["seq"].as_i64())
        .filter(|s| *s <= newest)
        .collect();
    expected.reverse();
    assert_eq!(
        shown, expected,
        "the Operator's Log View: every event but Security ones"
    );
    assert!(
        named(&events, "login-succeeded")
            .iter()
            .any(|e| e["user"] == OPERATOR),
        "{events:#?}"
    );
    assert!(
        named(&events, "allowlist-changed").is_empty(),
        "{events:#?}"
    );
}

/// The Administrator sets port 1 from 9600 to 115200 baud on Serial
/// Parameters: the port restarts and the pty's termios says 115200.
#[test]
fn administrator_baud_rate_change_reaches_the_pty() {
    let pty = PtyPair::open().expect("pty");
    let device = pty.slave_path.to_str().expect("UTF-8 pty path").to_owned();
    let mut c = Console::start(
        "browser-serial",
        &device,
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    assert_eq!(c.daemon.listeners.len(), 1, "{}", c.daemon.ready);
    wait_for_ospeed(&pty, 9600, Duration::from_secs(10));

    c.browse(
        "serial",
        json!({
            "name": ADMIN,
            "password": ADMIN_PASSWORD,
            "port": 1,
            "from_baud": 9600,
            "to_baud": 115_200,
        }),
    );
    let applied = c.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(
        listeners_of(&applied).len(),
        1,
        "port 1 serves again: {applied}"
    );
    wait_for_ospeed(&pty, 115_200, Duration::from_secs(10));
    assert!(c.export().contains("baud = 115200"), "{}", c.export());
    let events = c.events();
    assert!(
        named(&events, "config-changed")
            .iter()
            .any(|e| e["user"] == ADMIN),
        "no config-changed by {ADMIN}: {events:#?}"
    );
}

/// Allowlist changes that would lock out the Administrator's own address
/// (another network only; the own address for serial data only) are
/// refused with a message naming it and change nothing; one that keeps
/// the address in is saved.
#[test]
fn allowlist_change_locking_out_the_administrator_is_refused_and_changes_nothing() {
    let c = Console::start(
        "browser-allowlist",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let before = allowlist_section(&c.export());
    assert!(before.contains("enabled = false"), "{before}");
    c.browse(
        "allowlist",
        json!({"name": ADMIN, "password": ADMIN_PASSWORD}),
    );
    let after = allowlist_section(&c.export());
    assert!(after.contains("enabled = true"), "{after}");
    for address in ["127.0.0.0", "255.0.0.0", "192.0.2.0", "255.255.255.0"] {
        assert!(after.contains(address), "{address} not stored: {after}");
    }
    assert!(
        !after.contains("127.0.0.1"),
        "a refused entry was stored: {after}"
    );
    let events = c.events();
    let changed = named(&events, "allowlist-changed");
    assert_eq!(
        changed.len(),
        1,
        "only the accepted change is recorded: {events:#?}"
    );
    assert_eq!(changed[0]["user"], ADMIN, "{}", changed[0]);
}

/// The System Log's filters in the browser: category, severity, text,
/// from/to and all at once; each view holds exactly the stored events
/// that match (checked against `ttyward events`), newest first.
#[test]
fn log_view_filters_by_category_severity_text_and_time() {
    let c = Console::start(
        "browser-log",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let result = c.browse("log", json!({"name": ADMIN, "password": ADMIN_PASSWORD}));
    let events = c.events();
    let seqs = |key: &str| -> Vec<i64> {
        result[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {result}"))
            .iter()
            .map(|v| v.as_i64().expect("seq"))
            .collect()
    };
    // What the store holds up to the newest row a view showed, newest
    // first, that matches `keep`.
    let stored = |shown: &[i64], keep: &dyn Fn(&Value) -> bool| -> Vec<i64> {
        let newest = shown.iter().copied().max().unwrap_or(0);
        let mut v: Vec<i64> = events
            .iter()
            .filter(|e| e["seq"].as_i64().is_some_and(|s| s <= newest) && keep(e))
            .map(|e| e["seq"].as_i64().expect("seq"))
            .collect();
        v.reverse();
        v
    };
    let text = |e: &Value, needle: &str| {
        ["message", "user", "source"].iter().any(|k| {
            e[k].as_str()
                .is_some_and(|s| s.to_lowercase().contains(needle))
        })
    };
    let all = seqs("all");
    assert!(
        all.len() < 100,
        "more than one page of events: {}",
        all.len()
    );
    assert_eq!(all, stored(&all, &|_| true), "unfiltered view");
    let security = seqs("security");
    assert_eq!(
        security,
        stored(&security, &|e| e["category"] == "security"),
        "category view"
    );
    let warning = seqs("warning");
    assert_eq!(
        warning,
        stored(&warning, &|e| e["severity"] == "warning"),
        "severity view"
    );
    let texts = seqs("text");
    assert_eq!(
        texts,
        stored(&texts, &|e| text(e, "wrong account")),
        "text view"
    );
    let combined = seqs("combined");
    assert_eq!(
        combined,
        stored(&combined, &|e| e["category"] == "security"
            && e["severity"] == "warning"
            && text(e, ADMIN)),
        "combined view"
    );
}

/// Every stored event, once one matches `done` (the event log's writer
/// stores asynchronously), or panic after `timeout`.
fn events_once(c: &Console, done: &dyn Fn(&Value) -> bool, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = c.events();
        if events.iter().any(done) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the awaited event was not stored within {timeout:?}: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Administrator's settings forms in the browser: the password policy
/// (min length 16 and a digit; 200 refused and named), a custom group
/// with two permissions, an account refused for too short a password then
/// created and moved into the group, the last Administrator's deletion
/// refused, the lockout time set in minutes, port-connected events
/// switched off, the configuration exported and imported back (a bad
/// import refused first); then the new account sees only its group's
/// menu and changes its own password. Checked here: the stored
/// configuration, the events naming who did what, and that a connection
/// to port 1 is no longer recorded as port-connected.
#[test]
fn administrator_settings_forms_change_policy_accounts_groups_lockout_log_and_config() {
    const OP: &str = "auditor1";
    const OP_PASSWORD: &str = "Quartz-Harbor-Lantern-42";
    const OP_NEW_PASSWORD: &str = "Velvet-Orchard-Compass-91";
    const GROUP: &str = "auditors";
    let c = Console::start(
        "browser-forms",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let result = c.browse(
        "forms",
        json!({
            "name": ADMIN,
            "password": ADMIN_PASSWORD,
            "min_length": 16,
            "group": GROUP,
            "group_permissions": ["system.view", "log.view"],
            "op_name": OP,
            "short_password": "Short-pw-1",
            "op_password": OP_PASSWORD,
            "op_new_password": OP_NEW_PASSWORD,
            "op_sections": ["Dashboard", "System Settings", "Diagnostics"],
            "login_message": LOGIN_MESSAGE,
            "lockout_min_before": 1,
            "lockout_min": 10,
            "unrecorded": "port-connected",
            "capacity": 20_000,
        }),
    );
    assert_eq!(
        result["sections"],
        json!(["Dashboard", "System Settings", "Diagnostics"]),
        "{result}"
    );

    let export = c.export();
    for want in [
        "min_length = 16",
        "require_digit = true",
        "lockout_s = 600",
        "capacity = 20000",
        "disabled = [\"port-connected\"]",
    ] {
        assert!(export.contains(want), "{want} not stored:\n{export}");
    }

    let events = events_once(
        &c,
        &|e| e["event"] == "password-changed" && e["user"] == OP,
        Duration::from_secs(5),
    );
    let by_admin = |event: &str| -> Vec<&Value> {
        named(&events, event)
            .into_iter()
            .filter(|e| e["user"] == ADMIN)
            .collect()
    };
    // The import changed the log's capacity: a second
    // event-log-settings-changed, after the Log Settings form's.
    for (event, times) in [
        ("password-policy-changed", 1),
        ("group-created", 1),
        ("account-created", 1),
        ("account-group-changed", 1),
        ("login-settings-changed", 1),
        ("event-log-settings-changed", 2),
        ("config-import-refused", 1),
        ("config-imported", 1),
    ] {
        assert_eq!(
            by_admin(event).len(),
            times,
            "{event} by {ADMIN}: {events:#?}"
        );
    }
    let message = |event: &str| {
        by_admin(event)[0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        message("group-created").contains("log.view")
            && message("group-created").contains("system.view"),
        "{}",
        message("group-created")
    );
    assert!(
        message("account-group-changed").contains(&format!("from Operator to {GROUP}")),
        "{}",
        message("account-group-changed")
    );
    assert!(
        named(&events, "account-deleted").is_empty(),
        "the last Administrator was deleted: {events:#?}"
    );
    assert!(
        named(&events, "login-succeeded")
            .iter()
            .any(|e| e["user"] == OP),
        "{OP} never logged in: {events:#?}"
    );

    // port-connected is off now; port-disconnected still recorded: a
    // connection leaves the one and not the other.
    let newest = events
        .iter()
        .filter_map(|e| e["seq"].as_i64())
        .max()
        .unwrap_or(0);
    let port = c
        .daemon
        .listeners
        .iter()
        .find(|l| l.0 == 1)
        .map(|l| l.1)
        .expect("port 1 listens");
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to port 1");
    drop(stream);
    let later = |e: &Value| e["seq"].as_i64().is_some_and(|s| s > newest);
    let events = events_once(
        &c,
        &|e| later(e) && e["event"] == "port-disconnected",
        Duration::from_secs(5),
    );
    assert!(
        !events
            .iter()
            .any(|e| later(e) && e["event"] == "port-connected"),
        "port-connected still recorded: {events:#?}"
    );
}

/// A TCP port on 127.0.0.1 that nothing listens on now, below the
/// ephemeral range (which outgoing connections of parallel tests draw
/// from) and apart from `free_port_base`'s 20000 and up; each call gives
/// another one.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..1_000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 10_000 + ((std::process::id() + n) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 between 10000 and 19999");
}

/// The console's address from a ready or applied line.
fn web_addr(line: &Value) -> std::net::SocketAddr {
    line["web"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no web address in {line}"))
}

/// The Administrator moves the console to another HTTPS port on the
/// Services page: the page names the new address, the browser follows it
/// and is still logged in there (cookies belong to the host, not the
/// port, and the session lives in the store, not in the restarted web
/// server), then logs out and in again. The daemon serves the console on
/// the new port only, and the stored configuration has it.
#[test]
fn services_moves_the_console_to_another_port_and_the_browser_follows() {
    let mut c = Console::start(
        "browser-services",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let old = web_addr(&c.daemon.ready);
    let new_port = free_port();
    assert_ne!(old.port(), new_port);
    let result = c.browse(
        "services",
        json!({"name": ADMIN, "password": ADMIN_PASSWORD, "https_port": new_port}),
    );
    assert_eq!(
        result["origin"],
        format!("https://127.0.0.1:{new_port}"),
        "{result}"
    );

    let applied = c.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(
        applied["web"],
        json!([format!("127.0.0.1:{new_port}")]),
        "the console listens on the new port only: {applied}"
    );
    assert_eq!(applied["failed"], json!([]), "{applied}");
    let refused = std::net::TcpStream::connect_timeout(&old, Duration::from_secs(5));
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the old address {old} still answers: {refused:?}"
    );
    let new = std::net::SocketAddr::from(([127, 0, 0, 1], new_port));
    let login = https::Client::new(new, c.dir.path()).get("/login", None);
    assert_eq!(login.status, 200, "GET /login at {new}: {}", login.text());
    assert!(
        c.export().contains(&format!("https_port = {new_port}")),
        "{}",
        c.export()
    );

    // The configuration import before the start recorded one too.
    let events = c.events();
    let moved: Vec<&Value> = named(&events, "services-changed")
        .into_iter()
        .filter(|e| e["user"] == ADMIN)
        .collect();
    assert_eq!(moved.len(), 1, "{events:#?}");
    assert!(
        moved[0]["source"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1"),
        "{}",
        moved[0]
    );
    assert_eq!(
        named(&events, "login-succeeded")
            .iter()
            .filter(|e| e["user"] == ADMIN)
            .count(),
        2,
        "a login at each address: {events:#?}"
    );
}

/// Security > Certificate > Regenerate: the server presents a new
/// certificate from the next handshake on, the one whose fingerprint the
/// page shows.
#[test]
fn certificate_regenerated_in_the_console_is_the_one_served() {
    let c = Console::start(
        "browser-cert-regenerate",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let addr = web_addr(&c.daemon.ready);
    let before = https::served_certificate(addr).expect("TLS handshake before");
    let result = c.browse(
        "certificate-regenerate",
        json!({"name": ADMIN, "password": ADMIN_PASSWORD}),
    );
    let after = https::served_certificate(addr).expect("TLS handshake after");
    assert_ne!(before, after, "the served certificate did not change");
    assert_eq!(
        result["before"],
        https::sha256_fingerprint(&before),
        "the page showed another certificate than the one served: {result}"
    );
    assert_eq!(
        result["after"],
        https::sha256_fingerprint(&after),
        "the regenerated certificate the page shows is not the one served: {result}"
    );
    let events = c.events();
    let changed = named(&events, "certificate-changed");
    assert_eq!(changed.len(), 1, "{events:#?}");
    assert_eq!(changed[0]["user"], ADMIN, "{}", changed[0]);
    assert!(
        changed[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("regenerated")
                && m.contains(result["after"].as_str().unwrap_or("?"))),
        "{}",
        changed[0]
    );
}

/// A self-signed TLS server certificate for localhost and 127.0.0.1 and
/// its key, made by `openssl req -x509` in `dir`, as (certificate PEM,
/// key PEM); `key` is `-newkey`'s argument and its options
/// (`rsa:1024`; `ec -pkeyopt ec_paramgen_curve:P-384`).
fn openssl_certificate(dir: &Path, tag: &str, subject: &str, key: &[&str]) -> (String, String) {
    let (cert, key_file) = (
        dir.join(format!("{tag}.crt")),
        dir.join(format!("{tag}.key")),
    );
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-nodes", "-days", "30", "-newkey"])
        .args(key)
        .arg("-keyout")
        .arg(&key_file)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={subject}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"]);
    let (code, out, err) = run_bounded(&mut cmd, b"", Duration::from_secs(30));
    assert_eq!(code, Some(0), "openssl req for {tag}: {out}{err}");
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (read(&cert), read(&key_file))
}

/// Security > Certificate > Import: an RSA-1024 certificate is refused
/// with the page naming why (and the served certificate stays); an ECDSA
/// P-384 certificate and key made by openssl are installed, and the
/// server presents exactly that certificate.
#[test]
fn certificate_imported_in_the_console_is_served_and_rsa_1024_is_refused() {
    const SUBJECT: &str = "ttyward browser import P-384";
    let c = Console::start(
        "browser-cert-import",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let addr = web_addr(&c.daemon.ready);
    let pems = TempDir::new("browser-cert-pems");
    let (certificate, key) = openssl_certificate(
        pems.path(),
        "p384",
        SUBJECT,
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let (weak_certificate, weak_key) =
        openssl_certificate(pems.path(), "rsa1024", "ttyward weak", &["rsa:1024"]);
    let imported = CertificateDer::from_pem_slice(certificate.as_bytes())
        .expect("openssl's certificate is PEM");
    let before = https::served_certificate(addr).expect("TLS handshake before");

    let result = c.browse(
        "certificate-import",
        json!({
            "name": ADMIN,
            "password": ADMIN_PASSWORD,
            "certificate": certificate,
            "key": key,
            "common_name": SUBJECT,
            "fingerprint": https::sha256_fingerprint(&imported),
            "weak_certificate": weak_certificate,
            "weak_key": weak_key,
        }),
    );
    assert_eq!(
        result["before"],
        https::sha256_fingerprint(&before),
        "{result}"
    );
    let served = https::served_certificate(addr).expect("TLS handshake after");
    assert!(
        served == imported,
        "the server presents {} rather than the imported {}",
        https::sha256_fingerprint(&served),
        https::sha256_fingerprint(&imported)
    );
    let events = c.events();
    let changed = named(&events, "certificate-changed");
    assert_eq!(
        changed.len(),
        1,
        "only the accepted import is recorded: {events:#?}"
    );
    assert_eq!(changed[0]["user"], ADMIN, "{}", changed[0]);
    assert!(
        changed[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("imported") && m.contains(SUBJECT)),
        "{}",
        changed[0]
    );
}

/// Serial Port Settings > Operation Modes: a local port of 70000 and max
/// connections of 0 are refused with the field named and change nothing;
/// then port 1 becomes an RFC 2217 server on a chosen port, where
/// pyserial's `rfc2217://` client sets 19200 baud on the pty and data
/// crosses both ways.
#[test]
fn operation_mode_changed_to_rfc2217_serves_pyserial_and_bad_values_are_refused() {
    let pty = PtyPair::open().expect("pty");
    let device = pty.slave_path.to_str().expect("UTF-8 pty path").to_owned();
    let mut c = Console::start(
        "browser-modes",
        &device,
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    assert_eq!(c.daemon.listeners.len(), 1, "{}", c.daemon.ready);
    wait_for_ospeed(&pty, 9600, Duration::from_secs(10));
    let port = free_port();

    let result = c.browse(
        "modes",
        json!({"name": ADMIN, "password": ADMIN_PASSWORD, "port": 1, "local_port": port}),
    );
    let refusals = result["refusals"].to_string();
    for field in ["ports[0].mode.local_port", "ports[0].mode.max_connections"] {
        assert!(refusals.contains(field), "{field} not named: {refusals}");
    }
    let applied = c.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(
        listeners_of(&applied),
        [(1, port)],
        "port 1 serves RFC 2217 on {port}: {applied}"
    );
    let export = c.export();
    assert!(
        export.contains("type = \"rfc2217\"") && export.contains(&format!("local_port = {port}")),
        "{export}"
    );
    // The configuration import before the start recorded one of its own.
    let events = c.events();
    let changed: Vec<&Value> = named(&events, "config-changed")
        .into_iter()
        .filter(|e| e["user"] == ADMIN)
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "the refused changes were stored: {events:#?}"
    );
    assert!(
        changed[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("port 1 (rfc2217)")),
        "{}",
        changed[0]
    );

    let script = format!(
        r#"
import serial, sys, faulthandler
faulthandler.dump_traceback_later(30, exit=True)
s = serial.serial_for_url("rfc2217://127.0.0.1:{port}", baudrate=19200, timeout=10)
print("open", flush=True)
if sys.stdin.readline().strip() != "ok":
    sys.exit("test refused")
s.write(b"to the device\n"); s.flush()
got = s.read(16)
print("received " + got.decode(errors="replace").strip(), flush=True)
s.close()
"#
    );
    let mut py = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with pyserial (scripts/test installs it)");
    let mut to_py = py.stdin.take().expect("stdin");
    let mut from_py = std::io::BufReader::new(py.stdout.take().expect("stdout"));
    let mut line = String::new();
    // python's faulthandler ends it within 30 s: these reads end too.
    from_py.read_line(&mut line).expect("read python");
    assert_eq!(line.trim(), "open", "pyserial could not open the port");
    wait_for_ospeed(&pty, 19_200, Duration::from_secs(10));
    writeln!(to_py, "ok").expect("answer python");
    assert_eq!(
        read_fd_exact(&pty.master, 14, Duration::from_secs(10)),
        b"to the device\n"
    );
    write_fd_all(&pty.master, b"from the device\n", Duration::from_secs(10));
    line.clear();
    from_py.read_line(&mut line).expect("read python");
    assert_eq!(line.trim(), "received from the device");
    assert!(py.wait().expect("python exit").success());
}

/// The listeners of `line` (ready or applied) with this channel.
fn channel_addrs(line: &Value, channel: &str) -> Vec<std::net::SocketAddr> {
    line["listeners"]
        .as_array()
        .unwrap_or_else(|| panic!("no listeners in {line}"))
        .iter()
        .filter(|l| l["channel"] == channel)
        .map(|l| {
            l["addr"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("a listener without an address: {l}"))
        })
        .collect()
}

/// Real COM from the console: Security > Services moves the discovery
/// responder to a port the system picks, Operation Modes turns port 1
/// (the echo simulator) into a Real COM port on any free data and command
/// ports. A driver's first steps then work on the ports the daemon
/// reports: data connection, command connection from the same address,
/// PORT_INIT (9600 8N1, DTR and RTS on) answered with its 5-byte reply,
/// and the device's echo held until then arrives on the data connection.
#[test]
fn real_com_chosen_in_the_console_answers_a_drivers_port_init() {
    let mut c = Console::start(
        "browser-realcom",
        "sim:echo",
        &[(ADMIN, "Administrator", ADMIN_PASSWORD)],
    );
    let (default_data_port, default_command_port) = ttyward_core::config::default_realcom_ports(1);
    let result = c.browse(
        "real-com",
        json!({"name": ADMIN, "password": ADMIN_PASSWORD, "port": 1,
            "default_data_port": default_data_port, "default_command_port": default_command_port}),
    );
    assert_eq!(result["modes"][1], "real-com", "{result}");

    // Two changes, two applied lines: the discovery port, then the mode.
    let deadline = Instant::now() + Duration::from_secs(10);
    let applied = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = c.daemon.wait_event("applied", left);
        if !channel_addrs(&line, "command").is_empty() {
            break line;
        }
    };
    assert_eq!(applied["failed"], json!([]), "{applied}");
    let (data, command, dsci) = (
        channel_addrs(&applied, "data"),
        channel_addrs(&applied, "command"),
        channel_addrs(&applied, "dsci"),
    );
    assert!(
        data.len() == 1 && command.len() == 1,
        "one data and one command listener: {applied}"
    );
    assert!(
        dsci.len() == 1 && dsci[0].ip() == data[0].ip() && dsci[0].port() != 0,
        "discovery answers on the Real COM port's address: {applied}"
    );
    let export = c.export();
    for want in [
        "type = \"real-com\"",
        "data_port = 0",
        "command_port = 0",
        "connection_down_rts = \"goes-low\"",
        "[services.realcom_discovery]",
    ] {
        assert!(export.contains(want), "the export lacks {want}:\n{export}");
    }

    // The driver's order: data first, then command from the same address.
    let mut data = std::net::TcpStream::connect(data[0]).expect("data connection");
    let mut command = std::net::TcpStream::connect(command[0]).expect("command connection");
    data.write_all(b"held until PORT_INIT")
        .expect("write on the data connection");
    command
        .write_all(&[0x2C, 0x08, 0x06, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00])
        .expect("PORT_INIT");
    let reply = read_exact_timeout(&mut command, 5, Duration::from_secs(10));
    assert_eq!(reply[..2], [0x2C, 0x03], "PORT_INIT's reply: {reply:02X?}");
    assert_eq!(
        read_exact_timeout(&mut data, 20, Duration::from_secs(10)),
        b"held until PORT_INIT"
    );
}

/// Reverse SSH from the console, as an Operator: Operation Modes turns
/// port 1 into a Reverse SSH port on a chosen port for Administrators and
/// Operators (the script checks which fields each reverse mode shows,
/// and Reverse Telnet's warning); the daemon listens there and the export
/// has the groups. The Operator then adds its own key (made by
/// `ssh-keygen`) on the SSH keys page, which `ttyward admin ssh-key list`
/// shows with the same fingerprint.
#[test]
fn operator_sets_up_reverse_ssh_and_adds_its_own_key_in_the_console() {
    let mut c = Console::start(
        "browser-reverse",
        "sim:echo",
        &[
            (ADMIN, "Administrator", ADMIN_PASSWORD),
            (OPERATOR, "Operator", OPERATOR_PASSWORD),
        ],
    );
    let port = free_port();
    let key = c.dir.path().join("id_ed25519");
    let (code, _, err) = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "op@laptop", "-f"])
            .arg(&key),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "ssh-keygen: {err}");
    let line = std::fs::read_to_string(key.with_extension("pub")).expect("the .pub file");
    let (code, listing, err) = run_bounded(
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(key.with_extension("pub")),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "ssh-keygen -l: {err}");
    let fingerprint = listing
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {listing:?}"))
        .to_owned();

    let result = c.browse(
        "reverse-ssh",
        json!({"name": OPERATOR, "password": OPERATOR_PASSWORD, "port": 1,
            "local_port": port, "key": line.trim(), "fingerprint": fingerprint}),
    );
    assert_eq!(
        result["offered"],
        json!(["Administrator+", "Operator"]),
        "{result}"
    );

    let applied = c.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["failed"], json!([]), "{applied}");
    assert_eq!(
        listeners_of(&applied),
        [(1, port)],
        "port 1 serves Reverse SSH on {port}: {applied}"
    );
    let export = c.export();
    for want in [
        "type = \"reverse-ssh\"",
        &format!("local_port = {port}"),
        "map_crlf = \"cr\"",
        "inactivity_min = 5",
        "groups = [\"Administrator\", \"Operator\"]",
    ] {
        assert!(export.contains(want), "the export lacks {want}:\n{export}");
    }
    let out = ttyward_cmd(c.dir.path(), &["admin", "ssh-key", "list", OPERATOR], b"");
    let keys = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && keys.contains(&fingerprint) && keys.contains("op@laptop"),
        "ttyward admin ssh-key list: {keys}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
