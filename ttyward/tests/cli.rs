//! The real `ttyward` binary against real peers: pyserial's `rfc2217://`
//! client, socat, plain sockets; pseudo-terminals play the serial devices.
//! One test binary for the crate (see style.md).

mod support;

mod attach;
mod browser;
mod daemon;
mod durability;
mod interop;
mod pair;
mod rate_limit;
mod realcom;
mod reverse;
mod secure;
mod system_settings;
mod web;

use std::io::{BufRead, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use ttyward_serial::pty::PtyPair;

/// pyserial's RFC 2217 client changes every parameter; after each change
/// the test reads the pty's termios back (what a pty can show: speed,
/// CSTOPB, PARODD, CRTSCTS, IXON/IXOFF), then 1 MiB crosses each way.
#[test]
fn pyserial_rfc2217_settings_land_on_the_pty_and_data_is_exact() {
    let pty = PtyPair::open().expect("pty");
    let daemon = Ttyward::bridge(&[
        &format!("{}@127.0.0.1:0", pty.slave_path.display()),
        "--mode",
        "rfc2217",
        "--baud",
        "115200",
    ]);
    let port = daemon.listeners[0].1;
    let script = format!(
        r#"
import serial, sys, faulthandler
faulthandler.dump_traceback_later(60, exit=True)
MiB = 1 << 20
def step(tag):
    print(tag, flush=True)
    if sys.stdin.readline().strip() != "ok":
        sys.exit("test refused " + tag)
s = serial.serial_for_url("rfc2217://127.0.0.1:{port}", baudrate=9600, timeout=10)
step("baud 9600")
s.baudrate = 250000; step("baud 250000")
s.stopbits = serial.STOPBITS_TWO; step("stopbits 2")
s.parity = serial.PARITY_ODD; step("parity odd")
s.bytesize = serial.SEVENBITS; step("bytesize 7")
s.rtscts = True; step("rtscts on")
s.rtscts = False; s.xonxoff = True; step("xonxoff on")
s.xonxoff = False; s.parity = serial.PARITY_NONE; s.bytesize = 8; s.stopbits = 1; step("8N1 no flow")
s.dtr = False; s.rts = False; s.dtr = True; s.rts = True
s.send_break(0.05)
s.reset_input_buffer(); s.reset_output_buffer()
data = bytes((i * 7 + (i >> 10)) & 0xFF for i in range(MiB))
step("sending")
s.write(data); s.flush()
got = bytearray()
while len(got) < MiB:
    chunk = s.read(MiB - len(got))
    if not chunk:
        sys.exit("timed out after %d bytes" % len(got))
    got += chunk
print("received ok" if bytes(got) == data[::-1] else "received CORRUPT", flush=True)
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
    let data: Vec<u8> = (0..1usize << 20)
        .map(|i| ((i * 7 + (i >> 10)) & 0xFF) as u8)
        .collect();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            from_py.read_line(&mut line).expect("read python") > 0,
            "python ended early"
        );
        let tag = line.trim();
        eprintln!("python: {tag}");
        if tag == "received ok" {
            break;
        }
        assert_ne!(tag, "received CORRUPT", "device → network data corrupted");
        let t = ttyward_serial::pty::termios_snapshot(pty.master.as_fd()).expect("termios");
        let ok = match tag {
            "baud 9600" => t.ospeed == 9600,
            "baud 250000" => t.ospeed == 250_000 && t.ispeed == 250_000,
            "stopbits 2" => t.cstopb,
            "parity odd" => t.parodd,
            "bytesize 7" => t.ospeed == 250_000, // CS7 is invisible on a pty; the line must still be intact
            "rtscts on" => t.crtscts,
            "xonxoff on" => t.ixon && t.ixoff && !t.crtscts,
            "8N1 no flow" => !t.cstopb && !t.parodd && !t.crtscts && !t.ixon,
            "sending" => {
                writeln!(to_py, "ok").expect("answer python");
                let got = read_fd_exact(&pty.master, data.len(), Duration::from_secs(20));
                assert!(
                    got == data,
                    "network → device data corrupted ({} bytes)",
                    got.len()
                );
                let reversed: Vec<u8> = data.iter().rev().copied().collect();
                write_fd_all(&pty.master, &reversed, Duration::from_secs(20));
                continue;
            }
            other => panic!("unexpected line from python: {other}"),
        };
        assert!(ok, "after {tag}: termios is {t:?}");
        writeln!(to_py, "ok").expect("answer python");
    }
    assert!(py.wait().expect("python exit").success());
}

/// "USB unplug": the device path disappears with the pty behind it, then
/// comes back as another pty. ttyward keeps running and serves it again.
#[test]
fn port_recovers_when_the_device_path_comes_back() {
    let dir = TempDir::new("unplug");
    let link = dir.path().join("ttyUSB0");
    let first = PtyPair::open().expect("pty");
    std::os::unix::fs::symlink(&first.slave_path, &link).expect("symlink");
    let daemon = Ttyward::bridge(&[&format!("{}@127.0.0.1:0", link.display())]);
    let addr = ("127.0.0.1", daemon.listeners[0].1);

    let mut client = connect_when_served(addr, &first);
    std::fs::remove_file(&link).expect("unplug");
    drop(first);
    assert_eq!(
        read_until_closed(&mut client, Duration::from_secs(10)),
        0,
        "session must be told: closed"
    );

    let second = PtyPair::open().expect("pty");
    std::os::unix::fs::symlink(&second.slave_path, &link).expect("replug");
    let mut client = connect_when_served(addr, &second);
    write_fd_all(&second.master, b"hello again", Duration::from_secs(5));
    assert_eq!(
        read_exact_timeout(&mut client, 11, Duration::from_secs(10)),
        b"hello again"
    );
    drop(daemon);
}

#[test]
fn bad_config_reports_all_five_fields_and_exits_64() {
    let dir = TempDir::new("config");
    let path = dir.path().join("ports.toml");
    std::fs::write(
        &path,
        r#"
[[ports]]
device = "/dev/ttyUSB0"
serial = { baud = 10, data_bits = 9, parity = "purple" }
packing = { length = 5000 }
mode = { type = "tcp-server", max_connections = 0 }
"#,
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_ttyward"))
        .args(["bridge", "--config"])
        .arg(&path)
        .output()
        .expect("run ttyward");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for field in [
        "ports[0].serial.baud",
        "ports[0].serial.data_bits",
        "ports[0].serial.parity",
        "ports[0].packing.length",
        "ports[0].mode.max_connections",
    ] {
        assert!(stderr.contains(field), "{field} not named in:\n{stderr}");
    }
    assert!(stderr.contains("5 problems"), "{stderr}");
}

/// socat, a peer nobody here wrote, as a raw TCP client of a simulated device.
#[test]
fn socat_talks_to_the_echo_simulator() {
    let daemon = Ttyward::bridge(&["sim:echo@127.0.0.1:0"]);
    let out = Command::new("socat")
        .args([
            "-t",
            "2",
            "-",
            &format!("TCP:127.0.0.1:{}", daemon.listeners[0].1),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"echo through socat\n")?;
            c.wait_with_output()
        })
        .expect("socat (scripts/test installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo through socat\n");
}

/// Busy polling (crates/serial/src/busy_poll.rs): in a quick
/// request/response exchange the bridge catches the next request while it
/// spins instead of sleeping; `--busy-poll 0` turns it off. The bridge's
/// debug log counts the spins.
#[test]
fn busy_polling_catches_quick_requests_and_can_be_turned_off() {
    let dir = TempDir::new("busy-poll");
    for (max_us, on) in [("1000", true), ("0", false)] {
        let path = dir.path().join(format!("log-{max_us}"));
        let log = std::fs::File::create(&path).expect("log file");
        let bridge = Ttyward::start_logging_to(
            &["--busy-poll", max_us, "bridge", "sim:echo@127.0.0.1:0"],
            "ttyward=debug",
            Stdio::from(log),
        );
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", bridge.listeners[0].1)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        for i in 0..300u32 {
            let byte = [(i % 251) as u8];
            s.write_all(&byte).expect("request");
            assert_eq!(read_exact_timeout(&mut s, 1, Duration::from_secs(5)), byte);
        }
        assert_eq!(bridge.stop(), Some(0));
        let text = std::fs::read_to_string(&path).expect("read log");
        if on {
            let line = text
                .lines()
                .find(|l| l.contains("busy polling: "))
                .unwrap_or_else(|| panic!("no busy polling figures in the log:\n{text}"));
            let figures: Vec<u64> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            let [.., spins, caught] = figures[..] else {
                panic!("{line}")
            };
            assert!(caught > 0 && caught <= spins, "{line}");
        } else {
            assert!(text.contains("busy polling off: turned off"), "{text}");
            assert!(!text.contains("busy polling: "), "{text}");
        }
    }
}

/// The README's first command starts, lists its ports and answers on them;
/// it keeps its state in its data directory, with an Administrator whose
/// password it made up (no default password).
#[test]
fn demo_serves_modbus_over_tcp() {
    let base = free_port_base(5);
    let dir = TempDir::new("demo");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8");
    let daemon = Ttyward::start(&[
        "--data-dir",
        data_arg,
        "demo",
        "--base-port",
        &base.to_string(),
        "--web-port",
        "0",
    ]);
    // Ports 1-4 one listener each, port 5 (Real COM) data and command; the
    // Real COM discovery responder (port 0) only if UDP 4800 was free.
    let ports: Vec<(u16, u16)> = daemon
        .listeners
        .iter()
        .copied()
        .filter(|(p, _)| *p != 0)
        .collect();
    assert_eq!(ports.len(), 6, "{:?}", daemon.listeners);
    assert!(
        ports.contains(&(5, base + 5)) && ports.contains(&(5, base + 21)),
        "{ports:?}"
    );
    assert_eq!(daemon.ready["setup_required"], false);
    // The REST API listens on loopback too.
    let web = daemon.ready["web"].as_array().expect("web addresses");
    assert!(
        !web.is_empty()
            && web
                .iter()
                .all(|a| a.as_str().is_some_and(|a| a.starts_with("127.0.0.1:"))),
        "{}",
        daemon.ready
    );
    let accounts = ttyward_cmd(&data, &["admin", "list"], b"");
    assert!(
        String::from_utf8_lossy(&accounts.stdout).contains("admin"),
        "{accounts:?}"
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", base + 1)).expect("connect");
    // Read holding registers 0..10 of unit 1 (golden frame with its CRC).
    s.write_all(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD])
        .expect("write");
    let reply = read_exact_timeout(&mut s, 25, Duration::from_secs(5));
    assert_eq!(&reply[..3], &[0x01, 0x03, 20]);
}
