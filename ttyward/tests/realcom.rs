//! Real COM through the real binary: `ttyward bridge DEV@127.0.0.1:0 --mode
//! realcom --dsci-port 0`, driven by the independent host of the engine
//! tests (included by path; written from `../shared/spec/realcom-protocol.md`,
//! not from ttyward's code), with a pty as the serial port, and the DSCI
//! responder asked over UDP the way npreal2d asks it (spec §9.2, §13.5).
//!
//! What a pty shows of PORT_INIT is limited to speed, `CSTOPB`, `PARODD`
//! and `CRTSCTS` (data bits and parity enable are forced by the pty driver,
//! see `ttyward_serial::pty`); the engine tests check the rest on the fake.

#[path = "../../crates/engine/tests/engine/realcom_client.rs"]
mod client;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ttyward_serial::pty::PtyPair;

use crate::support::*;
use client::{Flow, RealComClient, code, hex, parity};

/// A bridge's Real COM listeners, from its ready line.
struct Bridge {
    daemon: Ttyward,
    data: SocketAddr,
    command: SocketAddr,
    dsci: SocketAddr,
}

impl Bridge {
    fn start(device: &str) -> Bridge {
        let daemon = Ttyward::bridge(&[
            &format!("{device}@127.0.0.1:0"),
            "--mode",
            "realcom",
            "--dsci-port",
            "0",
        ]);
        let find = |channel: &str, transport: &str| -> SocketAddr {
            let listeners = daemon.ready["listeners"].as_array().expect("listeners");
            let l = listeners
                .iter()
                .find(|l| l["channel"] == channel && l["transport"] == transport)
                .unwrap_or_else(|| panic!("no {channel} listener in {}", daemon.ready));
            l["addr"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("{channel} listener without an address: {l}"))
        };
        let (data, command, dsci) = (
            find("data", "tcp"),
            find("command", "tcp"),
            find("dsci", "udp"),
        );
        for l in daemon.ready["listeners"].as_array().expect("listeners") {
            match l["channel"].as_str() {
                Some("data" | "command") => {
                    assert!(l["port"] == 1 && l["mode"] == "real-com", "{l}")
                }
                Some("dsci") => assert_eq!(l["port"], 0, "{l}"),
                _ => panic!("unexpected listener {l}"),
            }
        }
        Bridge {
            daemon,
            data,
            command,
            dsci,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// §13.1 on a pty: PORT_INIT 9600 8O2 with RTS/CTS lands in the pty's
/// termios (read on the master), then 1 MiB crosses each way byte-exact.
#[test]
fn realcom_port_init_sets_the_pty_and_data_is_exact() {
    const MIB: usize = 1 << 20;
    let pty = Arc::new(PtyPair::open().expect("pty"));
    let bridge = Bridge::start(&pty.slave_path.display().to_string());
    runtime().block_on(async {
        let mut host = RealComClient::connect(bridge.data, bridge.command)
            .await
            .expect("connect command, then data");
        let mode = client::mode(8, true, parity::ODD);
        assert_eq!(mode, 0x17);
        let reply = host
            .port_init(6, mode, true, true, Flow::RTS_CTS)
            .await
            .expect("PORT_INIT reply");
        assert!(
            matches!(reply[..], [code::PORT_INIT, 0x03, 0 | 1, 0 | 1, 0 | 1]),
            "PORT_INIT reply {}",
            hex(&reply)
        );
        // §4.1: the settings are applied before the reply.
        let t = pty.master_termios().expect("termios");
        assert!(
            t.ospeed == 9600 && t.ispeed == 9600 && t.cstopb && t.parodd && t.crtscts,
            "termios after PORT_INIT 9600 8O2 RTS/CTS: {t:?}"
        );

        let down: Vec<u8> = (0..MIB)
            .map(|i| ((i * 7 + (i >> 10)) & 0xFF) as u8)
            .collect();
        let reader = {
            let pty = Arc::clone(&pty);
            tokio::task::spawn_blocking(move || {
                read_fd_exact(&pty.master, MIB, Duration::from_secs(30))
            })
        };
        host.write_data(&down).await.expect("write 1 MiB");
        let got = reader.await.expect("pty reader");
        assert!(
            got == down,
            "network → device corrupted ({} bytes arrived)",
            got.len()
        );

        let up: Vec<u8> = down.iter().rev().copied().collect();
        let writer = {
            let (pty, up) = (Arc::clone(&pty), up.clone());
            tokio::task::spawn_blocking(move || {
                write_fd_all(&pty.master, &up, Duration::from_secs(30))
            })
        };
        let got = host
            .read_data(MIB, Duration::from_secs(30))
            .await
            .expect("1 MiB from the device");
        writer.await.expect("pty writer");
        assert!(got == up, "device → network corrupted");
        assert!(host.command.split_messages().is_empty());
    });
    drop(bridge.daemon);
}

/// §4.11, §13.2 on a pty: bytes sent between SETXOFF and SETXON wait
/// (the tty is stopped, as by XOFF) and come out after SETXON.
#[test]
fn realcom_setxoff_holds_the_pty_output() {
    let pty = Arc::new(PtyPair::open().expect("pty"));
    let bridge = Bridge::start(&pty.slave_path.display().to_string());
    runtime().block_on(async {
        let mut host = RealComClient::connect(bridge.data, bridge.command)
            .await
            .expect("connect command, then data");
        let reply = host
            .port_init(
                6,
                client::mode(8, false, parity::NONE),
                true,
                true,
                Flow::NONE,
            )
            .await
            .expect("PORT_INIT reply");
        assert_eq!(reply.get(..2), Some(&[code::PORT_INIT, 0x03][..]));
        assert_eq!(
            host.set_xoff().await.expect("SETXOFF"),
            client::ok(code::SETXOFF)
        );
        host.write_data(b"held back").await.expect("write");
        let early = {
            let pty = Arc::clone(&pty);
            tokio::task::spawn_blocking(move || {
                read_fd_exact(&pty.master, 9, Duration::from_millis(300))
            })
        };
        let early = early.await.expect("pty reader");
        assert!(early.is_empty(), "sent while held by SETXOFF: {early:?}");
        assert_eq!(
            host.set_xon().await.expect("SETXON"),
            client::ok(code::SETXON)
        );
        let late = {
            let pty = Arc::clone(&pty);
            tokio::task::spawn_blocking(move || {
                read_fd_exact(&pty.master, 9, Duration::from_secs(5))
            })
        };
        assert_eq!(late.await.expect("pty reader"), b"held back");
    });
    drop(bridge.daemon);
}

/// §13.5: search, kernel info and both netstat requests against the
/// bridge's DSCI responder, byte for byte, each answered from the address
/// asked.
#[test]
fn realcom_dsci_answers_the_driver_s_polls() {
    let bridge = Bridge::start("sim:echo");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let ask = |request: &[u8]| -> Vec<u8> {
        socket.send_to(request, bridge.dsci).expect("send");
        let mut buf = [0u8; 1500];
        let (n, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no answer to {}: {e}", hex(request)));
        assert_eq!(from, bridge.dsci, "answer must come from the address asked");
        buf.get(..n).expect("datagram").to_vec()
    };

    let search = ask(&[0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(search.len(), 24, "search reply {}", hex(&search));
    assert_eq!(
        search[..8],
        [0x81, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00]
    );
    assert_ne!(search[8..12], [0, 0, 0, 0], "APID must not be zero");
    assert_eq!(search[20..24], [127, 0, 0, 1], "the address the host asked");
    let device_id = search[8..20].to_vec();

    let mut kernel_info = vec![0x16, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00];
    kernel_info.extend_from_slice(&device_id);
    let info = ask(&kernel_info);
    assert_eq!(info.len(), 36, "kernel info reply {}", hex(&info));
    assert_eq!(info[..8], [0x96, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(info[8..20], device_id[..]);
    assert_eq!(info[34..36], [0x00, 0x00], "DSCI version 0");

    let mut netstat = vec![0x14, 0x00, 0x00, 0x16, 0x00, 0x01, 0xE2, 0x40];
    netstat.extend_from_slice(&device_id);
    netstat.extend_from_slice(&[0x80, 0x00]);
    let mut want = vec![0x94, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40];
    want.extend_from_slice(&device_id);
    want.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
    assert_eq!(hex(&ask(&netstat)), hex(&want), "netstat 0x14");

    let mut netstat = vec![0x1D, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40];
    netstat.extend_from_slice(&device_id);
    netstat.extend_from_slice(&[0x00, 0xFF, 0x00, 0x00]);
    let mut want = vec![0x9D, 0x00, 0x00, 0x18, 0x00, 0x01, 0xE2, 0x40];
    want.extend_from_slice(&device_id);
    want.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
    assert_eq!(hex(&ask(&netstat)), hex(&want), "netstat 0x1D");
}
