//! `ttyward attach` against the real `ttyward bridge`, with real programs
//! on the local end: Debian's mbpoll (libmodbus) reads the simulated Modbus
//! RTU slave through the link, pyserial changes the line settings and the
//! remote pty's termios follow, socat puts TLS in front of a bridge, and a
//! bridge that stops and comes back is reconnected. Everything on
//! 127.0.0.1, every wait bounded; scripts/test installs mbpoll, socat,
//! openssl and pyserial.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use serde_json::Value;
use ttyward_serial::pty::{PtyPair, TermiosSnapshot, termios_snapshot};

use super::support::*;

/// Every wait for attach, a program or the remote side ends within this.
const STEP: Duration = Duration::from_secs(20);

/// A running `ttyward attach`, stopped with SIGTERM when dropped.
struct Attach {
    child: Child,
    lines: Receiver<String>,
    link: PathBuf,
}

impl Attach {
    /// `ttyward attach ARGS... --link LINK`; does not wait for anything.
    fn start(link: &Path, args: &[&str]) -> Attach {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ttyward"))
            .arg("attach")
            .args(args)
            .arg("--link")
            .arg(link)
            .env("TTYWARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ttyward attach");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Attach {
            child,
            lines: rx,
            link: link.to_path_buf(),
        }
    }

    /// The next stdout line for which `want` holds (others are skipped).
    fn wait(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("attach printed no {what} line within {STEP:?}"));
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && want(&v)
            {
                return v;
            }
        }
    }

    fn wait_state(&self, state: &str) -> Value {
        self.wait(state, |v| v["event"] == "attach" && v["state"] == state)
    }

    /// The remote port's settings as attach reports them confirmed.
    fn wait_settings(&self, baud: u64, parity: &str, stop: &str, flow: &str) -> Value {
        self.wait(&format!("settings {baud} {parity} {stop} {flow}"), |v| {
            v["event"] == "settings"
                && v["baud"] == baud
                && v["data_bits"] == 8
                && v["parity"] == parity
                && v["stop_bits"] == stop
                && v["flow"] == flow
        })
    }

    /// SIGTERM, then the exit code (killed after the deadline: `None`).
    fn stop(mut self) -> Option<i32> {
        terminate(&mut self.child)
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
        }
    }
}

fn terminate(child: &mut Child) -> Option<i32> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The two protocols attach speaks, with the bridge that serves each.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Rfc2217,
    RealCom,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Rfc2217 => "rfc2217",
            Mode::RealCom => "realcom",
        }
    }

    /// `ttyward bridge DEVICE@127.0.0.1:0` in this mode.
    fn bridge(self, device: &str) -> Ttyward {
        let spec = format!("{device}@127.0.0.1:0");
        match self {
            Mode::Rfc2217 => Ttyward::bridge(&[&spec, "--mode", "rfc2217"]),
            Mode::RealCom => Ttyward::bridge(&[&spec, "--mode", "realcom", "--dsci-port", "0"]),
        }
    }

    /// The attach arguments for `bridge`'s port.
    fn attach_args(self, bridge: &Ttyward) -> Vec<String> {
        let port_of = |channel: &str| {
            bridge.ready["listeners"]
                .as_array()
                .expect("listeners")
                .iter()
                .find(|l| l["channel"] == channel && l["transport"] == "tcp")
                .and_then(|l| l["addr"].as_str())
                .and_then(|a| a.rsplit_once(':'))
                .map(|(_, p)| p.to_owned())
                .unwrap_or_else(|| panic!("no {channel} listener in {}", bridge.ready))
        };
        let mut args = vec![
            format!("127.0.0.1:{}", port_of("data")),
            "--mode".into(),
            self.name().into(),
        ];
        if let Mode::RealCom = self {
            args.extend(["--command-port".into(), port_of("command")]);
        }
        args
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether mbpoll can run here. Outside CI a missing mbpoll skips the test
/// with a message; in CI it is a failure (scripts/test installs it).
fn mbpoll_available() -> bool {
    if Command::new("mbpoll").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "mbpoll is not installed, and CI must run this test: scripts/test installs it (apt-get install mbpoll)"
    );
    eprintln!("skipping: mbpoll is not installed (apt-get install mbpoll, or run scripts/test)");
    false
}

/// Runs mbpoll in RTU mode at 19200 8E1 on `link` (then `writes`, the
/// values to write, if any); returns its stdout.
fn mbpoll(link: &Path, args: &[&str], writes: &[&str]) -> String {
    let mut cmd = Command::new("mbpoll");
    cmd.args(["-m", "rtu", "-a", "1", "-b", "19200", "-d", "8", "-s", "1"])
        .args(["-P", "even", "-o", "2"])
        .args(args)
        .arg(link)
        .args(writes);
    let (code, stdout, stderr) = run_bounded(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(code, Some(0), "mbpoll {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// The `[N]: value` lines of mbpoll's output.
fn registers(output: &str) -> Vec<(u32, i64)> {
    output
        .lines()
        .filter_map(|l| {
            let (n, v) = l.trim().strip_prefix('[')?.split_once("]:")?;
            Some((n.parse().ok()?, v.trim().parse().ok()?))
        })
        .collect()
}

/// mbpoll writes four holding registers of the simulated slave through the
/// link and reads them back, then reads input registers (whose value is
/// their address, see crates/serial/src/sim/modbus.rs); attach reports the
/// remote port at 19200 8E1 (mbpoll's libmodbus sets INPCK, which tells
/// even parity on a pty).
fn mbpoll_reads_the_simulated_slave(mode: Mode) {
    if !mbpoll_available() {
        return;
    }
    let dir = TempDir::new("attach-mbpoll");
    let link = dir.path().join("ttyNP0");
    let bridge = mode.bridge("sim:modbus");
    let attach = Attach::start(&link, &strs(&mode.attach_args(&bridge)));
    attach.wait_state("connected");

    let out = mbpoll(
        &link,
        &["-t", "4", "-r", "1"],
        &["1111", "2222", "3333", "4444"],
    );
    assert!(out.contains("Written 4 references"), "{out}");
    attach.wait_settings(19_200, "even", "1", "none");

    let out = mbpoll(&link, &["-t", "4", "-r", "1", "-c", "4", "-1"], &[]);
    assert_eq!(
        registers(&out),
        [(1, 1111), (2, 2222), (3, 3333), (4, 4444)],
        "{out}"
    );
    let out = mbpoll(&link, &["-t", "3", "-r", "11", "-c", "4", "-1"], &[]);
    assert_eq!(
        registers(&out),
        [(11, 10), (12, 11), (13, 12), (14, 13)],
        "{out}"
    );
    attach.wait_settings(19_200, "even", "1", "none");
    assert_eq!(attach.stop(), Some(0));
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link must be gone after SIGTERM"
    );
}

#[test]
fn rfc2217_mbpoll_reads_the_simulated_slave() {
    mbpoll_reads_the_simulated_slave(Mode::Rfc2217);
}

#[test]
fn realcom_mbpoll_reads_the_simulated_slave() {
    mbpoll_reads_the_simulated_slave(Mode::RealCom);
}

/// Waits until the remote pty's termios satisfy `want`; panics with the
/// last snapshot at the deadline. Polled: a pty gives no event when its
/// termios change.
fn remote_termios(pty: &PtyPair, what: &str, want: impl Fn(&TermiosSnapshot) -> bool) {
    let deadline = Instant::now() + STEP;
    loop {
        let t = termios_snapshot(std::os::fd::AsFd::as_fd(&pty.master)).expect("termios");
        if want(&t) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {what}: remote termios {t:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// pyserial opens the link at 19200 8E1 and changes stop bits, parity,
/// flow control and speed; each change shows on the remote pty (what a pty
/// can show: speed, CSTOPB, PARODD, CMSPAR, CRTSCTS) and in attach's
/// confirmed settings. Then 64 KiB cross each way byte-exact. attach runs
/// with `--parity even` because pyserial's even parity leaves no trace on a
/// pty (docs/attach.md).
fn termios_travel_to_the_remote_pty(mode: Mode) {
    let dir = TempDir::new("attach-termios");
    let link = dir.path().join("ttyNP0");
    let remote = PtyPair::open().expect("pty");
    let bridge = mode.bridge(&remote.slave_path.display().to_string());
    let mut args = mode.attach_args(&bridge);
    args.extend(["--parity".into(), "even".into()]);
    let attach = Attach::start(&link, &strs(&args));
    attach.wait_state("connected");

    let script = format!(
        r#"
import serial, sys, faulthandler
faulthandler.dump_traceback_later(60, exit=True)
def step(tag):
    print(tag, flush=True)
    if sys.stdin.readline().strip() != "ok":
        sys.exit("test refused " + tag)
s = serial.Serial({link:?}, baudrate=19200, bytesize=8, parity="E", stopbits=1, timeout=10)
step("19200 8E1")
s.stopbits = 2; step("stopbits 2")
s.parity = "O"; step("parity odd")
s.parity = "M"; step("parity mark")
s.parity = "E"; s.stopbits = 1; s.rtscts = True; step("rtscts")
s.rtscts = False; s.baudrate = 250000; step("baud 250000")
data = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 16))
step("sending")
s.write(data); s.flush()
got = bytearray()
while len(got) < len(data):
    chunk = s.read(len(data) - len(got))
    if not chunk:
        sys.exit("timed out after %d bytes" % len(got))
    got += chunk
print("received ok" if bytes(got) == data[::-1] else "received CORRUPT", flush=True)
s.close()
"#,
        link = link.display().to_string()
    );
    let mut py = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with pyserial (scripts/test installs it)");
    let mut to_py = py.stdin.take().expect("stdin");
    let mut from_py = BufReader::new(py.stdout.take().expect("stdout"));
    let data: Vec<u8> = (0..1usize << 16)
        .map(|i| ((i * 7 + (i >> 8)) & 0xFF) as u8)
        .collect();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            from_py.read_line(&mut line).expect("read python") > 0,
            "python ended early"
        );
        let tag = line.trim().to_owned();
        eprintln!("python: {tag}");
        match tag.as_str() {
            "19200 8E1" => {
                attach.wait_settings(19_200, "even", "1", "none");
                remote_termios(&remote, &tag, |t| {
                    t.ospeed == 19_200 && !t.cstopb && !t.parodd && !t.cmspar && !t.crtscts
                });
            }
            "stopbits 2" => {
                attach.wait_settings(19_200, "even", "2", "none");
                remote_termios(&remote, &tag, |t| t.cstopb);
            }
            "parity odd" => {
                attach.wait_settings(19_200, "odd", "2", "none");
                remote_termios(&remote, &tag, |t| t.parodd && !t.cmspar);
            }
            "parity mark" => {
                attach.wait_settings(19_200, "mark", "2", "none");
                remote_termios(&remote, &tag, |t| t.parodd && t.cmspar);
            }
            "rtscts" => {
                attach.wait_settings(19_200, "even", "1", "rts-cts");
                remote_termios(&remote, &tag, |t| {
                    t.crtscts && !t.cstopb && !t.parodd && !t.cmspar
                });
            }
            "baud 250000" => {
                attach.wait_settings(250_000, "even", "1", "none");
                remote_termios(&remote, &tag, |t| {
                    t.ospeed == 250_000 && t.ispeed == 250_000 && !t.crtscts
                });
            }
            "sending" => {
                writeln(&mut to_py);
                let got = read_fd_exact(&remote.master, data.len(), STEP);
                assert!(
                    got == data,
                    "link → remote data corrupted ({} of {} bytes)",
                    got.len(),
                    data.len()
                );
                let reversed: Vec<u8> = data.iter().rev().copied().collect();
                write_fd_all(&remote.master, &reversed, STEP);
                continue;
            }
            "received ok" => break,
            "received CORRUPT" => panic!("remote → link data corrupted"),
            other => panic!("unexpected line from python: {other}"),
        }
        writeln(&mut to_py);
    }
    assert!(py.wait().expect("python exit").success());
    drop(bridge);
}

fn writeln(to: &mut std::process::ChildStdin) {
    use std::io::Write;
    to.write_all(b"ok\n").expect("answer python");
}

#[test]
fn rfc2217_termios_travel_to_the_remote_pty() {
    termios_travel_to_the_remote_pty(Mode::Rfc2217);
}

#[test]
fn realcom_termios_travel_to_the_remote_pty() {
    termios_travel_to_the_remote_pty(Mode::RealCom);
}

/// The link opened in raw mode, non-blocking (for the support helpers).
fn open_raw(link: &Path) -> OwnedFd {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
        .open(link)
        .unwrap_or_else(|e| panic!("open {}: {e}", link.display()));
    let mut t = tcgetattr(&file).expect("tcgetattr");
    cfmakeraw(&mut t);
    tcsetattr(&file, SetArg::TCSANOW, &t).expect("tcsetattr");
    OwnedFd::from(file)
}

/// Read holding registers 0..10 of unit 1 (golden frame with its CRC) and
/// check the head of the answer.
fn modbus_round_trip(link: &Path) {
    let fd = open_raw(link);
    write_fd_all(&fd, &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD], STEP);
    let reply = read_fd_exact(&fd, 25, STEP);
    assert_eq!(reply.get(..3), Some(&[0x01, 0x03, 20][..]), "{reply:02x?}");
}

/// Runs `openssl ARGS` in `dir`, asserting success.
fn openssl(dir: &Path, args: &[&str]) {
    let (code, stdout, stderr) = run_bounded(
        Command::new("openssl").current_dir(dir).args(args),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "openssl {args:?}:\n{stdout}\n{stderr}");
}

/// A throwaway CA (`NAME-ca.pem`) and, signed by it, a certificate for
/// 127.0.0.1 (`NAME.pem`, `NAME.key`).
fn make_certificates(dir: &Path, name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj"]);
    let ca_subject = format!("/CN=ttyward test CA {name}");
    args.push(&ca_subject);
    openssl(dir, &args);
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    let cert = format!("{name}.pem");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// socat terminating TLS in front of an RFC 2217 bridge of the simulated
/// Modbus slave: attach with `--tls --ca` reads registers through it (with
/// mbpoll too where it is installed). The same with the CA of another
/// certificate fails at once with an error that says so, `--insecure`
/// connects, and `--tls` with neither `--ca` nor `--insecure` is refused
/// as a usage error.
#[test]
fn rfc2217_over_tls_checks_the_server_certificate() {
    let dir = TempDir::new("attach-tls");
    make_certificates(dir.path(), "server");
    make_certificates(dir.path(), "other");
    let bridge = Mode::Rfc2217.bridge("sim:modbus");
    let bridge_port = bridge.listeners[0].1;
    let tls_port = free_port();
    let mut socat = Command::new("socat")
        .current_dir(dir.path())
        .args([
            &format!("OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,key=server.key,verify=0"),
            &format!("TCP:127.0.0.1:{bridge_port}"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("socat (scripts/test installs it)");
    let remote = format!("127.0.0.1:{tls_port}");
    let ca = dir.path().join("server-ca.pem");
    let other_ca = dir.path().join("other-ca.pem");

    let link = dir.path().join("ttyNP0");
    let attach = Attach::start(
        &link,
        &[
            "--mode",
            "rfc2217",
            &remote,
            "--tls",
            "--ca",
            ca.to_str().expect("utf-8"),
        ],
    );
    attach.wait_state("connected");
    modbus_round_trip(&link);
    if mbpoll_available() {
        let out = mbpoll(&link, &["-t", "3", "-r", "101", "-c", "2", "-1"], &[]);
        assert_eq!(registers(&out), [(101, 100), (102, 101)], "{out}");
        attach.wait_settings(19_200, "even", "1", "none");
    }
    assert_eq!(attach.stop(), Some(0));

    let wrong_link = dir.path().join("ttyWRONG");
    let (code, _, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ttyward")).args([
            "attach",
            &remote,
            "--mode",
            "rfc2217",
            "--link",
            wrong_link.to_str().expect("utf-8"),
            "--tls",
            "--ca",
            other_ca.to_str().expect("utf-8"),
        ]),
        b"",
        STEP,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not trusted") && stderr.contains("other-ca.pem"),
        "{stderr}"
    );
    assert!(std::fs::symlink_metadata(&wrong_link).is_err());

    // --insecure takes any certificate.
    let attach = Attach::start(
        &wrong_link,
        &["--mode", "rfc2217", &remote, "--tls", "--insecure"],
    );
    attach.wait_state("connected");
    modbus_round_trip(&wrong_link);
    assert_eq!(attach.stop(), Some(0));

    let (code, _, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ttyward")).args([
            "attach",
            &remote,
            "--mode",
            "rfc2217",
            "--link",
            wrong_link.to_str().expect("utf-8"),
            "--tls",
        ]),
        b"",
        STEP,
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("--ca") && stderr.contains("--insecure"),
        "{stderr}"
    );
    let _ = socat.kill();
    let _ = socat.wait();
}

/// The bridge goes away and comes back on the same port: attach reports
/// disconnected, then connected, and data flows again; the link stays
/// meanwhile.
#[test]
fn attach_reconnects_when_the_bridge_comes_back() {
    let dir = TempDir::new("attach-reconnect");
    let link = dir.path().join("ttyNP0");
    let bridge = Mode::Rfc2217.bridge("sim:echo");
    let port = bridge.listeners[0].1;
    let attach = Attach::start(&link, &strs(&Mode::Rfc2217.attach_args(&bridge)));
    attach.wait_state("connected");
    let fd = open_raw(&link);
    write_fd_all(&fd, b"ping 1", STEP);
    assert_eq!(read_fd_exact(&fd, 6, STEP), b"ping 1");

    assert_eq!(bridge.stop(), Some(0));
    let gone = attach.wait_state("disconnected");
    assert!(
        gone["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{gone}"
    );
    assert!(std::fs::symlink_metadata(&link).is_ok(), "the link stays");

    let _again = Ttyward::bridge(&[&format!("sim:echo@127.0.0.1:{port}"), "--mode", "rfc2217"]);
    attach.wait_state("connected");
    write_fd_all(&fd, b"ping 2", STEP);
    assert_eq!(read_fd_exact(&fd, 6, STEP), b"ping 2");
    drop(fd);
    assert!(attach.link.exists());
    assert_eq!(attach.stop(), Some(0));
    assert!(std::fs::symlink_metadata(&link).is_err());
}

/// A path that is not a symlink is never replaced.
#[test]
fn attach_refuses_to_replace_a_file() {
    let dir = TempDir::new("attach-file");
    let path = dir.path().join("ttyNP0");
    std::fs::write(&path, b"keep me").expect("write");
    let (code, _, stderr) = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ttyward")).args([
            "attach",
            "127.0.0.1:9",
            "--mode",
            "rfc2217",
            "--link",
            path.to_str().expect("utf-8"),
        ]),
        b"",
        STEP,
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("not a symlink"), "{stderr}");
    assert_eq!(std::fs::read(&path).expect("read"), b"keep me");
}
