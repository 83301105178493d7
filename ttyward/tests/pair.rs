//! Pair Connection through the real binary: two `ttyward bridge` processes,
//! a master and a slave, each serving a pty as its serial port. Bytes
//! written on one pty come out of the other, both ways; after the slave
//! process is killed and started again on the same TCP port, the master
//! links again by itself. A pty has no modem lines, so the lines are
//! checked by the engine tests on the fake device.

use std::time::Duration;

use ttyward_serial::pty::PtyPair;

use crate::support::*;

fn pair_bridge(pty: &PtyPair, target: &str, mode: &str) -> Ttyward {
    Ttyward::bridge(&[
        &format!("{}@{target}", pty.slave_path.display()),
        "--mode",
        mode,
    ])
}

/// Write markers into `from` until one comes out of `to`: then the link is
/// up (what a port's device says while it is unlinked is dropped, as on any
/// port with nobody connected).
fn wait_linked(from: &PtyPair, to: &PtyPair) {
    let mut seen = Vec::new();
    for attempt in 0..100 {
        let marker = format!("<link check {attempt}>");
        write_fd_all(&from.master, marker.as_bytes(), Duration::from_secs(2));
        seen.extend(read_fd_exact(&to.master, 4096, Duration::from_millis(300)));
        if seen.ends_with(marker.as_bytes()) {
            return;
        }
    }
    panic!("the pair never linked; the far side saw {seen:?}");
}

/// 64 KiB in which every byte value occurs.
fn all_bytes(seed: u8) -> Vec<u8> {
    (0..64 * 1024usize)
        .map(|i| (i as u8) ^ ((i >> 8) as u8).wrapping_mul(seed | 1))
        .collect()
}

fn crosses(from: &PtyPair, to: &PtyPair, data: &[u8]) {
    write_fd_all(&from.master, data, Duration::from_secs(20));
    let got = read_fd_exact(&to.master, data.len(), Duration::from_secs(20));
    assert_eq!(got.len(), data.len(), "bytes lost");
    assert!(got == data, "bytes corrupted");
}

#[test]
fn pair_bridges_link_two_ptys_and_relink_after_the_slave_restarts() {
    let (a, b) = (PtyPair::open().expect("pty"), PtyPair::open().expect("pty"));
    let slave = pair_bridge(&b, "127.0.0.1:0", "pair-slave");
    let port = slave.listeners.first().expect("slave listens").1;
    let master = pair_bridge(&a, &format!("127.0.0.1:{port}"), "pair-master");
    assert!(master.listeners.is_empty(), "a master listens on nothing");

    wait_linked(&a, &b);
    crosses(&a, &b, &all_bytes(3));
    crosses(&b, &a, &all_bytes(101));

    slave.kill9();
    let slave = pair_bridge(&b, &format!("127.0.0.1:{port}"), "pair-slave");
    assert_eq!(slave.listeners.first().map(|l| l.1), Some(port));
    wait_linked(&b, &a);
    crosses(&a, &b, b"master to slave, after the restart");
    crosses(&b, &a, &all_bytes(7));
    assert_eq!(master.stop(), Some(0), "master exits cleanly");
    assert_eq!(slave.stop(), Some(0), "slave exits cleanly");
}

/// Secure Connection on both ends: the link is TLS (each bridge makes its
/// own self-signed certificate; "encrypted" does not check it), bytes cross
/// both ways, and a plain TCP peer is refused by the slave.
#[test]
fn pair_link_over_tls() {
    let (a, b) = (PtyPair::open().expect("pty"), PtyPair::open().expect("pty"));
    let secure = |pty: &PtyPair, target: &str, mode: &str| {
        Ttyward::bridge(&[
            &format!("{}@{target}", pty.slave_path.display()),
            "--mode",
            mode,
            "--secure",
            "encrypted",
        ])
    };
    let slave = secure(&b, "127.0.0.1:0", "pair-slave");
    let port = slave.listeners.first().expect("slave listens").1;
    // A plain peer gets nothing: the slave waits for a TLS ClientHello,
    // and a hello frame is not one.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(&mut plain, b"\x03\x00\x0ettyward-pair/1").expect("write");
    plain
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut got = Vec::new();
    // The slave's TLS alert and close, or nothing within the timeout.
    let _ = std::io::Read::read_to_end(&mut plain, &mut got);
    assert!(
        !got.windows(12).any(|w| w == b"ttyward-pair"),
        "the slave answered a plain hello: {got:?}"
    );
    drop(plain);
    let master = secure(&a, &format!("127.0.0.1:{port}"), "pair-master");
    wait_linked(&a, &b);
    crosses(&a, &b, &all_bytes(5));
    crosses(&b, &a, &all_bytes(9));
    assert_eq!(master.stop(), Some(0));
    assert_eq!(slave.stop(), Some(0));
}
