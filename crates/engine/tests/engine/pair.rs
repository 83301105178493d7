//! Pair Connection on the engine: a master port and a slave port, each with
//! a fake device, linked over loopback. The tests play both devices: bytes
//! written by one come out of the other, byte-exact; one device's CTS/DSR
//! inputs appear as the other's RTS/DTR; the link comes back after the
//! slave restarts; peers that are not pair ports are dropped while the
//! port keeps serving. Peers written here by hand (garbage, no hello) use
//! the frame layout of `ttyward_proto::pair`'s module documentation.

use tokio::time::Instant;

use super::*;

/// 64 KiB in which every byte value occurs, in no simple order.
fn all_bytes(seed: u8) -> Vec<u8> {
    (0..64 * 1024usize)
        .map(|i| (i as u8) ^ ((i >> 8) as u8).wrapping_mul(seed | 1))
        .collect()
}

const HELLO: &[u8] = b"\x03\x00\x0ettyward-pair/1";

fn pair_port(fake: &FakeHandle, number: u16, mode: OperationMode) -> PortConfig {
    PortConfig {
        number,
        ..port_config(fake, mode)
    }
}

fn slave(local_port: u16) -> OperationMode {
    OperationMode::PairSlave(PairSlaveMode {
        bind: vec![LOOPBACK.into()],
        local_port,
        alive_check_min: 0,
    })
}

fn master(slave: SocketAddr) -> OperationMode {
    OperationMode::PairMaster(PairMasterMode {
        host: slave.ip().to_string(),
        port: slave.port(),
        alive_check_min: 0,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
    })
}

impl Running {
    /// Wait for an event of port `port` matching `pred`.
    async fn port_event(
        &mut self,
        port: u16,
        what: &str,
        pred: impl Fn(&EventKind) -> bool,
    ) -> EventKind {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.events.recv().await {
                    Ok(e) if e.port == port && pred(&e.kind) => return e.kind,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} event of port {port} within {WAIT:?}"))
    }

    async fn linked(&mut self, port: u16) {
        self.port_event(port, "session opened", |k| {
            matches!(k, EventKind::SessionOpened { .. })
        })
        .await;
    }

    /// Both ends of a link in this engine opened their sessions, in either
    /// order.
    async fn both_linked(&mut self) {
        let mut waiting = vec![1u16, 2];
        tokio::time::timeout(WAIT, async {
            while !waiting.is_empty() {
                match self.events.recv().await {
                    Ok(e) if matches!(e.kind, EventKind::SessionOpened { .. }) => {
                        waiting.retain(|p| *p != e.port)
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("ports {waiting:?} not linked within {WAIT:?}"));
    }
}

/// Master (port 1, device `a`) and slave (port 2, device `b`) in one engine:
/// the slave starts first so that the master can be given its port.
async fn linked_pair(a: &FakeHandle, b: &FakeHandle) -> Running {
    let slave_port = pair_port(b, 2, slave(0));
    let mut r = Running::start(vec![slave_port.clone()]);
    let addr = r.addr();
    let failures = r
        .engine
        .apply(&Config {
            ports: vec![pair_port(a, 1, master(addr)), slave_port],
            ..Config::default()
        })
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    r.both_linked().await;
    r
}

/// Device `from` says `data`; device `to` must receive exactly it.
async fn crosses(from: &FakeHandle, to: &FakeHandle, data: &[u8]) {
    from.device_output(data);
    let got = to.wait_device_input(data.len(), WAIT).await;
    assert_eq!(got.len(), data.len(), "bytes lost");
    assert!(got == data, "bytes corrupted");
}

async fn holds(fake: &FakeHandle, what: &str, condition: impl FnMut(&FakeHandle) -> bool) {
    assert!(
        fake.wait_for(WAIT, condition).await,
        "{what} within {WAIT:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_carries_64_kib_both_ways_at_once_byte_exact() {
    let (a, b) = (FakeHandle::new(), FakeHandle::new());
    let r = linked_pair(&a, &b).await;
    let (down, up) = (all_bytes(3), all_bytes(101));
    // Both directions at once: neither side may wait for the other.
    a.device_output(&down);
    b.device_output(&up);
    let (at_b, at_a) = tokio::join!(
        b.wait_device_input(down.len(), WAIT),
        a.wait_device_input(up.len(), WAIT)
    );
    assert!(
        at_b == down,
        "master → slave: {} of {} bytes",
        at_b.len(),
        down.len()
    );
    assert!(
        at_a == up,
        "slave → master: {} of {} bytes",
        at_a.len(),
        up.len()
    );
    let count = |n| r.engine.port(n).expect("port").counters().snapshot();
    assert_eq!(
        (count(1).connections_active, count(2).connections_active),
        (1, 1)
    );
    assert_eq!(
        (count(1).connections_total, count(2).connections_total),
        (1, 1),
        "one link, no reconnects"
    );
    assert!(r.engine.shutdown(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_lines_cross_null_modem_both_ways() {
    let (a, b) = (FakeHandle::new(), FakeHandle::new());
    let _r = linked_pair(&a, &b).await;
    // The fake opens with RTS and DTR up; the peer's inputs (all off)
    // bring them down.
    holds(&b, "slave's RTS/DTR low", |b| !b.rts() && !b.dtr()).await;
    holds(&a, "master's RTS/DTR low", |a| !a.rts() && !a.dtr()).await;

    a.set_cts(true);
    holds(&b, "A's CTS as B's RTS", |b| b.rts() && !b.dtr()).await;
    a.set_dsr(true);
    holds(&b, "A's DSR as B's DTR", |b| b.rts() && b.dtr()).await;
    b.set_dsr(true);
    holds(&a, "B's DSR as A's DTR", |a| !a.rts() && a.dtr()).await;
    b.set_cts(true);
    holds(&a, "B's CTS as A's RTS", |a| a.rts() && a.dtr()).await;
    a.set_cts(false);
    holds(&b, "A's CTS off as B's RTS off", |b| !b.rts() && b.dtr()).await;
    // DCD has no output to show it on; it changes nothing.
    a.set_dcd(true);
    crosses(&a, &b, b"after dcd").await;
    assert!(!b.rts() && b.dtr());
    // The lines travel in order with the data.
    crosses(&b, &a, b"still linked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_master_reconnects_after_the_slave_restarts() {
    let (a, b) = (FakeHandle::new(), FakeHandle::new());
    let mut slave_engine = Running::start(vec![pair_port(&b, 2, slave(0))]);
    let addr = slave_engine.addr();
    let mut master_engine = Running::start(vec![pair_port(&a, 1, master(addr))]);
    master_engine.linked(1).await;
    slave_engine.linked(2).await;
    crosses(&a, &b, b"first link").await;
    b.set_cts(true);
    b.set_dsr(true);
    holds(&a, "B's lines on A", |a| a.rts() && a.dtr()).await;

    // The slave goes away: the master's device is told by RTS/DTR low.
    assert!(slave_engine.engine.shutdown(WAIT).await);
    // Hold the port, bound but not listening (the master's dials are
    // refused), so that no other test's listener on an ephemeral port gets
    // it meanwhile and receives this master's link instead.
    let placeholder = hold_port(addr);
    master_engine
        .port_event(1, "link closed", |k| {
            matches!(k, EventKind::SessionClosed { .. })
        })
        .await;
    holds(&a, "A's RTS/DTR low while unlinked", |a| {
        !a.rts() && !a.dtr()
    })
    .await;
    master_engine
        .port_event(1, "reconnect refused", |k| {
            matches!(k, EventKind::ConnectFailed { .. })
        })
        .await;

    // Back on the same port: the master finds it and the link carries
    // data and lines again.
    drop(placeholder);
    let mut slave_engine = Running::start(vec![pair_port(&b, 2, slave(addr.port()))]);
    assert_eq!(slave_engine.addr(), addr);
    master_engine.linked(1).await;
    slave_engine.linked(2).await;
    holds(&a, "B's lines on A again", |a| a.rts() && a.dtr()).await;
    crosses(&a, &b, &all_bytes(7)).await;
    crosses(&b, &a, b"second link").await;
}

/// A socket bound to `addr` without listening: connections to it are
/// refused, and nobody else can bind it while it lives.
fn hold_port(addr: SocketAddr) -> socket2::Socket {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    // As tokio's listeners do, so that the slave can bind it again after.
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.bind(&addr.into()).expect("bind the slave's port");
    s
}

/// Read until the peer closes, within `WAIT`; returns what it sent.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match tokio::time::timeout(WAIT, s.read_to_end(&mut got)).await {
        Ok(_) => got,
        Err(_) => panic!("peer not dropped within {WAIT:?}; got {got:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_slave_drops_peers_that_are_not_pair_masters_and_keeps_serving() {
    let (a, b) = (FakeHandle::new(), FakeHandle::new());
    let mut slave_engine = Running::start(vec![pair_port(&b, 2, slave(0))]);
    slave_engine.opened().await;
    let addr = slave_engine.addr();
    let refused = |what: &'static str| move |k: &EventKind| matches!(k, EventKind::ConnectionRefused { reason, .. } if reason.contains(what));

    // An HTTP client: refused at its first byte, after our hello.
    let mut http = TcpStream::connect(addr).await.expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(until_closed(&mut http).await, HELLO);
    slave_engine
        .port_event(2, "garbage refused", refused("unknown frame type"))
        .await;

    // Data without a hello.
    let mut rude = TcpStream::connect(addr).await.expect("connect");
    rude.write_all(b"\x01\x00\x03abc").await.expect("write");
    assert_eq!(until_closed(&mut rude).await, HELLO);
    slave_engine
        .port_event(2, "no hello refused", refused("not hello"))
        .await;

    // Says nothing at all: dropped after the hello timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(until_closed(&mut silent).await, HELLO);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "dropped too early"
    );
    slave_engine
        .port_event(2, "silent peer refused", refused("no hello"))
        .await;
    assert!(
        b.take_device_input().is_empty(),
        "nothing reached the device"
    );

    // A real master still links, and a second connection meanwhile is
    // accepted and closed without a word.
    let mut master_engine = Running::start(vec![pair_port(&a, 1, master(addr))]);
    master_engine.linked(1).await;
    slave_engine.linked(2).await;
    let mut second = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(until_closed(&mut second).await, b"");
    slave_engine
        .port_event(2, "second link refused", refused("already up"))
        .await;
    crosses(&a, &b, b"the real master").await;
    crosses(&b, &a, b"answered").await;
    let c = slave_engine
        .engine
        .port(2)
        .expect("port")
        .counters()
        .snapshot();
    assert_eq!((c.connections_refused, c.connections_active), (4, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_master_drops_a_slave_that_is_not_one_and_retries() {
    let impostor = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let a = FakeHandle::new();
    let mut r = Running::start(vec![pair_port(
        &a,
        1,
        master(impostor.local_addr().expect("addr")),
    )]);
    let mut first = accept(&impostor).await;
    let mut hello = vec![0u8; HELLO.len()];
    tokio::time::timeout(WAIT, first.read_exact(&mut hello))
        .await
        .expect("hello in time")
        .expect("hello");
    assert_eq!(hello, HELLO, "the master says hello first");
    first
        .write_all(b"\x03\x00\x0ettyward-pair/9")
        .await
        .expect("write");
    let kind = r
        .port_event(1, "connect failed", |k| {
            matches!(k, EventKind::ConnectFailed { .. })
        })
        .await;
    assert!(
        matches!(&kind, EventKind::ConnectFailed { error, .. } if error.contains("ttyward-pair/9")),
        "{kind:?}"
    );
    assert_eq!(until_closed(&mut first).await, b"");
    // It dials again, after its backoff.
    let _second = accept(&impostor).await;
    assert_eq!(
        r.engine
            .port(1)
            .expect("port")
            .counters()
            .snapshot()
            .connections_total,
        0,
        "no session was opened for an impostor"
    );
}
