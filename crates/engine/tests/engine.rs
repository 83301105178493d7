//! Engine tests on real loopback sockets with the fake serial device, whose
//! handle lets a test play the device: send output, read what was written,
//! drive modem lines, unplug it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast;
use ttyward_core::config::*;
use ttyward_engine::{Engine, EngineEvent, EventKind, EventSink};
use ttyward_serial::fake::FakeHandle;
use ttyward_serial::{DeviceSpec, SerialSettings};

#[path = "engine/pair.rs"]
mod pair;
#[path = "engine/realcom.rs"]
mod realcom;

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
const WAIT: Duration = Duration::from_secs(10);

fn port_config(fake: &FakeHandle, mode: OperationMode) -> PortConfig {
    PortConfig {
        number: 1,
        alias: String::new(),
        device: DeviceSpec::Fake(fake.clone()),
        serial: SerialSettings::default(),
        packing: Packing::default(),
        sessions: SessionPolicy::default(),
        mode,
        secure: SecureConnection::Off,
    }
}

fn tcp_server(max_connections: u16) -> OperationMode {
    OperationMode::TcpServer(TcpServerMode {
        bind: vec![LOOPBACK.into()],
        local_port: 0,
        max_connections,
        alive_check_min: 7,
        inactivity_ms: 0,
        command_port: None,
    })
}

struct Running {
    engine: Engine,
    events: broadcast::Receiver<EngineEvent>,
}

impl Running {
    fn start(ports: Vec<PortConfig>) -> Running {
        let sink = EventSink::new(1024);
        let events = sink.subscribe();
        let engine = Engine::start(
            &Config {
                ports,
                ..Config::default()
            },
            sink,
        )
        .expect("engine starts");
        Running { engine, events }
    }

    fn addr(&self) -> SocketAddr {
        self.engine.listeners()[0].addr
    }

    /// Wait for the first event matching `pred`.
    async fn event(&mut self, what: &str, pred: impl Fn(&EventKind) -> bool) -> EventKind {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.events.recv().await {
                    Ok(e) if pred(&e.kind) => return e.kind,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event stream ended: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} event within {WAIT:?}"))
    }

    async fn opened(&mut self) {
        self.event("device opened", |k| {
            matches!(k, EventKind::DeviceOpened { .. })
        })
        .await;
    }

    async fn connect(&mut self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).await.expect("connect");
        self.event("session opened", |k| {
            matches!(k, EventKind::SessionOpened { .. })
        })
        .await;
        s
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, s.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_both_ways_byte_exact() {
    let fake = FakeHandle::new();
    let mut r = Running::start(vec![port_config(&fake, tcp_server(1))]);
    r.opened().await;
    let mut client = r.connect().await;

    let down = pattern(256 * 1024, 1);
    client.write_all(&down).await.expect("write");
    let got = fake.wait_device_input(down.len(), WAIT).await;
    assert_eq!(got.len(), down.len());
    assert!(got == down, "network → device corrupted");

    let up = pattern(256 * 1024, 7);
    for chunk in up.chunks(5000) {
        fake.device_output(chunk);
    }
    assert!(
        read_exactly(&mut client, up.len()).await == up,
        "device → network corrupted"
    );
    let c = r.engine.port(1).expect("port 1").counters().snapshot();
    assert_eq!(
        (c.device_rx_bytes, c.device_tx_bytes),
        (up.len() as u64, down.len() as u64)
    );
    assert!(r.engine.shutdown(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_all_receive_and_a_stalled_one_is_dropped() {
    let fake = FakeHandle::new();
    let mut cfg = port_config(&fake, tcp_server(8));
    cfg.sessions = SessionPolicy {
        queue_bytes: 256 * 1024,
        jam_timeout_ms: 500,
    };
    let mut r = Running::start(vec![cfg]);
    r.opened().await;

    // The stalled client: a tiny receive window, and it never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stalled = socket.connect(r.addr()).await.expect("connect");
    r.event("session opened", |k| {
        matches!(k, EventKind::SessionOpened { .. })
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..7 {
        clients.push(r.connect().await);
    }

    let total = 4 * 1024 * 1024;
    let data = pattern(total, 3);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { read_exactly(&mut c, total).await }))
        .collect();
    let start = tokio::time::Instant::now();
    let feeder = {
        let (fake, data) = (fake.clone(), data.clone());
        tokio::spawn(async move {
            for chunk in data.chunks(4096) {
                fake.device_output(chunk);
                tokio::task::yield_now().await;
            }
        })
    };
    r.event("session jammed", |k| *k == EventKind::SessionJammed)
        .await;
    let dropped_after = start.elapsed();
    feeder.await.expect("feeder");
    for reader in readers {
        assert!(
            reader.await.expect("reader") == data,
            "a healthy client lost or reordered data"
        );
    }
    assert!(
        dropped_after < Duration::from_secs(3),
        "stalled client dropped only after {dropped_after:?}"
    );
    // The stalled client gets what was queued for it, then the end.
    let mut sink = Vec::new();
    let end = tokio::time::timeout(WAIT, stalled.read_to_end(&mut sink))
        .await
        .expect("closed in time");
    assert!(
        end.is_err() || sink.len() < total,
        "stalled client was not cut off"
    );
    assert_eq!(
        r.engine
            .port(1)
            .expect("port")
            .counters()
            .snapshot()
            .sessions_jammed,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_extra_client() {
    let fake = FakeHandle::new();
    let mut r = Running::start(vec![port_config(&fake, tcp_server(1))]);
    r.opened().await;
    let _first = r.connect().await;
    let mut second = TcpStream::connect(r.addr()).await.expect("tcp accepts");
    r.event("refused", |k| {
        matches!(k, EventKind::ConnectionRefused { .. })
    })
    .await;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, second.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "extra client was served: {n:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_device_ends_sessions_and_recovers() {
    let fake = FakeHandle::new();
    let mut r = Running::start(vec![port_config(&fake, tcp_server(1))]);
    r.opened().await;
    let mut client = r.connect().await;
    fake.unplug();
    r.event("device missing", |k| {
        matches!(k, EventKind::DeviceMissing { .. })
    })
    .await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, client.read(&mut buf))
        .await
        .expect("told in time");
    assert!(matches!(n, Ok(0) | Err(_)), "session not closed: {n:?}");

    fake.plug();
    let kind = r
        .event("device opened", |k| {
            matches!(k, EventKind::DeviceOpened { .. })
        })
        .await;
    assert_eq!(kind, EventKind::DeviceOpened { recovered: true });
    let mut client = r.connect().await;
    fake.device_output(b"back");
    assert_eq!(read_exactly(&mut client, 4).await, b"back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactivity_time_closes_an_idle_connection() {
    let fake = FakeHandle::new();
    let mode = OperationMode::TcpServer(TcpServerMode {
        bind: vec![LOOPBACK.into()],
        local_port: 0,
        max_connections: 1,
        alive_check_min: 0,
        inactivity_ms: 200,
        command_port: None,
    });
    let mut r = Running::start(vec![port_config(&fake, mode)]);
    r.opened().await;
    let mut client = r.connect().await;
    let kind = r
        .event("closed", |k| matches!(k, EventKind::SessionClosed { .. }))
        .await;
    assert!(
        matches!(kind, EventKind::SessionClosed { reason, .. } if reason.contains("inactivity"))
    );
    let mut buf = [0u8; 1];
    assert!(matches!(client.read(&mut buf).await, Ok(0) | Err(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sends_packed_frames_as_datagrams() {
    let fake = FakeHandle::new();
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let peer_addr = peer.local_addr().expect("addr");
    let mode = OperationMode::Udp(UdpMode {
        bind: vec![LOOPBACK.into()],
        local_port: 0,
        destinations: vec![UdpRange {
            begin: peer_addr.ip(),
            end: peer_addr.ip(),
            port: peer_addr.port(),
        }],
    });
    let mut cfg = port_config(&fake, mode);
    cfg.packing = Packing {
        delimiter1: Some(b'\n'),
        ..Packing::default()
    };
    let mut r = Running::start(vec![cfg]);
    r.opened().await;
    let local = r.addr();

    // Datagram in → device; wait for it so the UDP session is surely attached.
    peer.send_to(b"cmd", local).await.expect("send");
    assert_eq!(fake.wait_device_input(3, WAIT).await, b"cmd");

    fake.device_output(b"abc\nde");
    fake.device_output(b"f\n");
    let mut buf = [0u8; 64];
    for want in [&b"abc\n"[..], b"def\n"] {
        let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
            .await
            .expect("datagram")
            .expect("recv");
        assert_eq!((&buf[..n], from), (want, local));
    }
}

async fn accept(listener: &TcpListener) -> TcpStream {
    tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("connected in time")
        .expect("accept")
        .0
}

fn tcp_client(
    dest: SocketAddr,
    connect_on: ConnectOn,
    disconnect_on: DisconnectOn,
) -> OperationMode {
    OperationMode::TcpClient(TcpClientMode {
        destinations: vec![TcpDestination {
            host: dest.ip().to_string(),
            port: dest.port(),
            local_port: None,
        }],
        connect_on,
        disconnect_on,
        alive_check_min: 0,
        inactivity_ms: 300,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_connects_at_startup_and_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let fake = FakeHandle::new();
    let mode = tcp_client(
        listener.local_addr().expect("addr"),
        ConnectOn::Startup,
        DisconnectOn::None,
    );
    let mut r = Running::start(vec![port_config(&fake, mode)]);
    let mut conn = accept(&listener).await;
    conn.write_all(b"ping").await.expect("write");
    assert_eq!(fake.wait_device_input(4, WAIT).await, b"ping");
    drop(conn);
    r.event("first session closed", |k| {
        matches!(k, EventKind::SessionClosed { .. })
    })
    .await;
    let mut again = accept(&listener).await;
    // The session attaches after the TCP handshake; output before it is dropped.
    r.event("second session", |k| {
        matches!(k, EventKind::SessionOpened { .. })
    })
    .await;
    fake.device_output(b"pong");
    assert_eq!(read_exactly(&mut again, 4).await, b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_any_character_connects_and_delivers_the_trigger() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let fake = FakeHandle::new();
    let mode = tcp_client(
        listener.local_addr().expect("addr"),
        ConnectOn::AnyCharacter,
        DisconnectOn::Inactivity,
    );
    let mut r = Running::start(vec![port_config(&fake, mode)]);
    r.opened().await;
    // Nothing connects before the device speaks.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err()
    );
    fake.device_output(b"X1");
    let mut conn = accept(&listener).await;
    assert_eq!(read_exactly(&mut conn, 2).await, b"X1");
    // Inactivity hangs up.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .expect("hung up in time");
    assert!(matches!(n, Ok(0) | Err(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_follows_dsr() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let fake = FakeHandle::new();
    let mode = tcp_client(
        listener.local_addr().expect("addr"),
        ConnectOn::DsrOn,
        DisconnectOn::DsrOff,
    );
    let mut r = Running::start(vec![port_config(&fake, mode)]);
    r.opened().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err()
    );
    fake.set_dsr(true);
    let mut conn = accept(&listener).await;
    fake.set_dsr(false);
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .expect("hung up in time");
    assert!(matches!(n, Ok(0) | Err(_)));
}

fn rfc2217_mode() -> OperationMode {
    OperationMode::Rfc2217(Rfc2217Mode {
        bind: vec![LOOPBACK.into()],
        local_port: 0,
        max_connections: 1,
        alive_check_min: 0,
    })
}

/// The `rfc2217` crate's client (written independently of ours) configures
/// the port, drives DTR/RTS/BREAK, and moves data both ways, IAC included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_rfc2217_client_configures_the_device() {
    use std::io::{Read, Write};
    let fake = FakeHandle::new();
    let mut r = Running::start(vec![port_config(&fake, rfc2217_mode())]);
    r.opened().await;
    let addr = r.addr();
    let client = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut client = rfc2217::Client::new(rfc2217::PortSettings {
            baud_rate: 19_200,
            data_bits: rfc2217::DataBits::Seven,
            parity: rfc2217::Parity::Even,
            stop_bits: rfc2217::StopBits::Two,
            flow_control: rfc2217::FlowControl::XonXoff,
        });
        let mut buf = [0u8; 4096];
        let mut payload = Vec::new();
        let deadline = std::time::Instant::now() + WAIT;
        let mut pump = |client: &mut rfc2217::Client, payload: &mut Vec<u8>| {
            sock.write_all(&client.take_output()).expect("send");
            match sock.read(&mut buf) {
                Ok(0) => panic!("server closed"),
                Ok(n) => payload.extend(client.receive(&buf[..n])),
                Err(_) => {}
            }
            while client.poll_event().is_some() {}
        };
        while client.readiness().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready: {:?}",
                client.readiness()
            );
            pump(&mut client, &mut payload);
        }
        client.set_dtr(false);
        client.set_rts(false);
        client.set_break(true);
        client.write_data(&[0x01, 0xFF, 0xFF, 0x02]);
        while payload.len() < 3 {
            assert!(std::time::Instant::now() < deadline, "no device output");
            pump(&mut client, &mut payload);
        }
        payload
    });
    assert!(
        fake.wait_for(WAIT, |h| !h.dtr() && !h.rts() && h.break_state())
            .await,
        "DTR/RTS/BREAK not applied"
    );
    let s = fake.settings().expect("settings applied");
    assert_eq!(
        (
            s.baud.get(),
            s.data_bits.bits(),
            s.parity,
            s.stop_bits,
            s.flow
        ),
        (
            19_200,
            7,
            ttyward_serial::Parity::Even,
            ttyward_serial::StopBits::Two,
            ttyward_serial::FlowControl::XonXoff
        )
    );
    assert_eq!(
        fake.wait_device_input(4, WAIT).await,
        [0x01, 0xFF, 0xFF, 0x02],
        "IAC must be unescaped"
    );
    fake.device_output(&[0xFF, b'o', b'k']);
    assert_eq!(client.await.expect("client"), [0xFF, b'o', b'k']);
}

/// pyserial's client drives what a pty cannot show: data bits, parity, DTR,
/// RTS and BREAK land on the fake device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyserial_drives_modem_lines_and_break() {
    use tokio::io::AsyncBufReadExt;
    let fake = FakeHandle::new();
    let mut r = Running::start(vec![port_config(&fake, rfc2217_mode())]);
    r.opened().await;
    let script = format!(
        r#"
import serial, sys
def step(tag):
    print(tag, flush=True)
    if sys.stdin.readline().strip() != "ok":
        sys.exit("test refused " + tag)
s = serial.serial_for_url("rfc2217://127.0.0.1:{}", baudrate=38400, bytesize=7, parity="E", timeout=5)
step("open 38400 7E1")
s.dtr = False; step("dtr off")
s.rts = False; step("rts off")
s.dtr = True; s.rts = True; step("both on")
s.break_condition = True; step("break on")
s.break_condition = False; step("break off")
"#,
        r.addr().port()
    );
    let mut py = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with pyserial (scripts/test installs it)");
    let mut to_py = py.stdin.take().expect("stdin");
    let mut lines = tokio::io::BufReader::new(py.stdout.take().expect("stdout")).lines();
    for _ in 0..6 {
        let tag = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("python in time")
            .expect("read");
        let tag = tag.expect("python ended early");
        let check: fn(&FakeHandle) -> bool = match tag.as_str() {
            "open 38400 7E1" => |h| {
                h.settings().is_some_and(|s| {
                    s.baud.get() == 38_400
                        && s.data_bits.bits() == 7
                        && s.parity == ttyward_serial::Parity::Even
                })
            },
            "dtr off" => |h| !h.dtr(),
            "rts off" => |h| !h.rts(),
            "both on" => |h| h.dtr() && h.rts(),
            "break on" => |h| h.break_state(),
            "break off" => |h| !h.break_state(),
            other => panic!("unexpected line from python: {other}"),
        };
        assert!(
            fake.wait_for(WAIT, check).await,
            "after {tag}: device state wrong"
        );
        to_py.write_all(b"ok\n").await.expect("answer python");
    }
    assert!(py.wait().await.expect("python exit").success());
}

/// One port listening on IPv4 and IPv6 loopback serves clients of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_server_listens_on_ipv4_and_ipv6() {
    let fake = FakeHandle::new();
    let mode = OperationMode::TcpServer(TcpServerMode {
        bind: vec![LOOPBACK.into(), std::net::Ipv6Addr::LOCALHOST.into()],
        local_port: 0,
        max_connections: 2,
        alive_check_min: 7,
        inactivity_ms: 0,
        command_port: None,
    });
    let mut r = Running::start(vec![port_config(&fake, mode)]);
    r.opened().await;
    let addrs: Vec<SocketAddr> = r.engine.listeners().iter().map(|l| l.addr).collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "{addrs:?}");
    let mut clients = Vec::new();
    for addr in &addrs {
        clients.push(TcpStream::connect(addr).await.expect("connect"));
        r.event("session opened", |k| {
            matches!(k, EventKind::SessionOpened { .. })
        })
        .await;
    }
    fake.device_output(b"both");
    for c in &mut clients {
        assert_eq!(read_exactly(c, 4).await, b"both");
    }
}
