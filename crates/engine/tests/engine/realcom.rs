//! Real COM (ASPP) on the engine against the fake device, driven by an
//! independent host ([`client`], written from
//! `../shared/spec/realcom-protocol.md`, not from ttyward's code). Each test
//! compares the exact reply bytes with the spec (§4, §13) and checks on the
//! fake what the server did to the port: settings, DTR/RTS, breaks,
//! flushes; the fake's input lines drive NOTIFY.
//!
//! Alive polling runs with a shortened `AliveTiming` in its own tests; the
//! others keep the 40 s default so that polls never interleave. These tests
//! do not cover what the fake cannot show (a real UART's drain time, breaks
//! received) nor TLS or IPv6.

#[path = "realcom_client.rs"]
mod client;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::time::Instant;
use ttyward_proto::realcom::AliveTiming;
use ttyward_serial::{FlowControl, FlushDirection, Parity, StopBits};

use self::client::{CommandChannel, Flow, RealComClient, cmd, code, hex, ok, parity};
use super::*;

/// A second host on loopback (Linux routes all of 127/8 to `lo`).
const SECOND_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The spec's "within about 100 ms", with room for a loaded machine.
const NOTIFY_WAIT: Duration = Duration::from_secs(1);
/// How long the fake may take to show a change the reply announced.
const SETTLE: Duration = Duration::from_secs(2);
/// 9600 baud, 8N1 (§5.1 index 6, §5.2 mode 0x03).
const B9600: u8 = 6;
const MODE_8N1: u8 = 0x03;

fn realcom(alive: AliveTiming) -> RealComMode {
    RealComMode {
        bind: vec![LOOPBACK.into()],
        data_port: 0,
        command_port: 0,
        max_connections: 1,
        alive_check_min: 7,
        allow_driver_control: false,
        connection_down_rts: LineOnDown::AlwaysHigh,
        connection_down_dtr: LineOnDown::AlwaysHigh,
        alive,
    }
}

/// The alive timing of §13.4 shrunk a hundredfold: poll after 300 ms
/// without data, then every 100 ms, close after 4 misses.
fn short_alive() -> AliveTiming {
    AliveTiming {
        idle: Duration::from_millis(300),
        interval: Duration::from_millis(100),
        max_misses: 4,
    }
}

/// An engine serving one Real COM port on loopback.
struct Server {
    running: Running,
    data: SocketAddr,
    command: SocketAddr,
}

impl Server {
    fn start(fake: &FakeHandle, mode: RealComMode) -> Server {
        let running = Running::start(vec![port_config(fake, OperationMode::RealCom(mode))]);
        let listeners = running.engine.listeners();
        let find = |channel: &str| {
            listeners
                .iter()
                .find(|l| l.channel == channel && l.transport == "tcp")
                .unwrap_or_else(|| panic!("no {channel} listener in {listeners:?}"))
                .addr
        };
        let (data, command) = (find("data"), find("command"));
        assert_ne!(data, command, "data and command need their own ports");
        Server {
            running,
            data,
            command,
        }
    }

    async fn host(&self) -> RealComClient {
        self.host_from(None).await
    }

    async fn host_from(&self, local: Option<IpAddr>) -> RealComClient {
        RealComClient::connect_from(local, self.data, self.command)
            .await
            .expect("connect command, then data")
    }
}

/// `2C 03 <dsr> <cts> <dcd>` (§4.1).
fn port_init_reply(dsr: bool, cts: bool, dcd: bool) -> Vec<u8> {
    vec![code::PORT_INIT, 0x03, dsr.into(), cts.into(), dcd.into()]
}

/// PORT_INIT 9600 8N1, no flow, DTR and RTS on; the reply's shape only.
async fn open_9600_8n1(host: &mut RealComClient) {
    let reply = host
        .port_init(B9600, MODE_8N1, true, true, Flow::NONE)
        .await
        .expect("PORT_INIT reply");
    assert!(
        matches!(reply[..], [code::PORT_INIT, 0x03, 0 | 1, 0 | 1, 0 | 1]),
        "PORT_INIT reply {}",
        hex(&reply)
    );
}

async fn settled(fake: &FakeHandle, what: &str, condition: impl FnMut(&FakeHandle) -> bool) {
    assert!(fake.wait_for(SETTLE, condition).await, "device: {what}");
}

/// §13.1 open 9600 7E1 with RTS/CTS: the reply reports the fake's inputs,
/// a NOTIFY follows for the inputs that are high (the change detector
/// starts "all low", §4.14), and the fake gets the settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_init_configures_the_device_and_reports_the_lines() {
    let fake = FakeHandle::new();
    fake.set_cts(true);
    fake.set_dcd(true);
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;

    let mode_7e1 = client::mode(7, false, parity::EVEN);
    assert_eq!(mode_7e1, 0x0A);
    let reply = host
        .port_init(B9600, mode_7e1, true, true, Flow::RTS_CTS)
        .await
        .expect("PORT_INIT reply");
    assert_eq!(
        reply,
        port_init_reply(false, true, true),
        "2C 03 dsr cts dcd"
    );
    let notify = host
        .command
        .notify(NOTIFY_WAIT)
        .await
        .expect("a NOTIFY for CTS and DCD high");
    // msr: levels CTS 0x10 | DCD 0x80, deltas ΔCTS 0x01 | ΔDCD 0x08.
    assert!(
        matches!(notify, [code::NOTIFY, events, 0x99, hold] if events & 0x20 != 0 && hold & 0x80 != 0),
        "NOTIFY {}",
        hex(&notify)
    );
    settled(&fake, "9600 7E1 RTS/CTS", |h| {
        h.settings().is_some_and(|s| {
            (
                s.baud.get(),
                s.data_bits.bits(),
                s.parity,
                s.stop_bits,
                s.flow,
            ) == (9600, 7, Parity::Even, StopBits::One, FlowControl::RtsCts)
        })
    })
    .await;
    assert!(
        fake.dtr() && fake.rts(),
        "PORT_INIT asked for DTR and RTS on"
    );
    assert!(host.command.split_messages().is_empty());
}

/// §2.4: the port is opened with its stored settings when the first data
/// connection comes, *before* any command is processed; a PORT_INIT that
/// was waiting on the command connection must not be undone by that
/// opening. Several fresh servers, to give a race a chance to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_init_is_not_undone_by_the_opening_of_the_port() {
    let mode_7e1 = client::mode(7, false, parity::EVEN);
    let init = cmd::port_init(B9600, mode_7e1, true, true, Flow::NONE);
    for round in 0..5 {
        let fake = FakeHandle::new();
        let server = Server::start(&fake, realcom(AliveTiming::default()));
        let mut host =
            RealComClient::connect_sending_first(None, server.data, server.command, &init)
                .await
                .expect("connect");
        let reply = host.command.reply(REPLY).await.expect("PORT_INIT reply");
        assert_eq!(reply.get(..2), Some(&[code::PORT_INIT, 0x03][..]));
        let is_9600_7e1 = |h: &FakeHandle| {
            h.settings().is_some_and(|s| {
                (s.baud.get(), s.data_bits.bits(), s.parity) == (9600, 7, Parity::Even)
            })
        };
        assert!(
            is_9600_7e1(&fake),
            "round {round}: PORT_INIT answered before it was applied: {:?}",
            fake.settings()
        );
        // Nothing to await: a late opening would change the settings back.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            is_9600_7e1(&fake),
            "round {round}: PORT_INIT undone by the port's opening: {:?}",
            fake.settings()
        );
        assert!(
            fake.dtr() && fake.rts(),
            "round {round}: DTR/RTS as PORT_INIT set them"
        );
    }
}

/// §13.1: index FF then SETBAUD 250000, XONXOFF, TX_FIFO; an out-of-range
/// SETBAUD is either refused (Moxa) or applied, never left unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_baud_xon_xoff_and_tx_fifo_are_acknowledged() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    let reply = host
        .port_init(0xFF, MODE_8N1, true, true, Flow::XON_XOFF)
        .await
        .expect("PORT_INIT reply");
    assert_eq!(reply.get(..2), Some(&[code::PORT_INIT, 0x03][..]));
    assert_eq!(
        host.set_baud(250_000).await.expect("SETBAUD reply"),
        ok(code::SETBAUD)
    );
    assert_eq!(cmd::set_baud(250_000), [0x17, 0x04, 0x90, 0xD0, 0x03, 0x00]);
    settled(&fake, "250000 baud, XON/XOFF", |h| {
        h.settings()
            .is_some_and(|s| s.baud.get() == 250_000 && s.flow == FlowControl::XonXoff)
    })
    .await;
    assert_eq!(
        host.xon_xoff(0x11, 0x13).await.expect("XONXOFF reply"),
        ok(code::XONXOFF)
    );
    assert_eq!(
        host.tx_fifo(16).await.expect("TX_FIFO reply"),
        ok(code::TX_FIFO)
    );

    let reply = host.set_baud(2_000_000).await.expect("SETBAUD reply");
    if reply == client::refused(code::SETBAUD) {
        settled(&fake, "refused rate not applied", |h| {
            h.settings().is_some_and(|s| s.baud.get() == 250_000)
        })
        .await;
    } else {
        assert_eq!(reply, ok(code::SETBAUD), "SETBAUD 2000000");
        settled(&fake, "2000000 baud", |h| {
            h.settings().is_some_and(|s| s.baud.get() == 2_000_000)
        })
        .await;
    }
}

/// §13.2: LINECTRL drives DTR/RTS, BREAK_ON/OFF the break state, a timed
/// break is answered after it, and a 5 ms one gets no reply at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_ctrl_and_breaks_drive_the_device() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    for (dtr, rts) in [(true, false), (false, true), (false, false), (true, true)] {
        assert_eq!(
            host.line_ctrl(dtr, rts).await.expect("LINECTRL reply"),
            ok(code::LINECTRL)
        );
        settled(&fake, &format!("DTR {dtr} RTS {rts}"), |h| {
            h.dtr() == dtr && h.rts() == rts
        })
        .await;
    }

    assert_eq!(
        host.break_on().await.expect("BREAK_ON reply"),
        ok(code::BREAK_ON)
    );
    settled(&fake, "break on", FakeHandle::break_state).await;
    assert_eq!(
        host.break_off().await.expect("BREAK_OFF reply"),
        ok(code::BREAK_OFF)
    );
    settled(&fake, "break off", |h| !h.break_state()).await;

    let breaks = fake.breaks_on();
    let start = Instant::now();
    assert_eq!(
        host.break_send(250).await.expect("BREAK_SEND reply"),
        ok(code::BREAK_SEND)
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(240),
        "BREAK_SEND 250 ms answered after {took:?}, before the break ended"
    );
    assert_eq!(fake.breaks_on(), breaks + 1, "one break sent");
    assert!(!fake.break_state(), "break still on after BREAK_SEND");

    // 5 ms is outside 10..=1000: no reply, no break; the next command's
    // reply is the next thing on the wire.
    host.command
        .send(&cmd::break_send(5))
        .await
        .expect("send BREAK_SEND");
    assert_eq!(
        host.tx_fifo(16).await.expect("TX_FIFO reply"),
        ok(code::TX_FIFO),
        "BREAK_SEND 5 ms must not be answered"
    );
    assert_eq!(fake.breaks_on(), breaks + 1, "BREAK_SEND 5 ms sent a break");
}

/// §4.11: SETXOFF holds the device's transmission (on a tty, `tcflow`
/// keeps the bytes in the kernel; the fake records the hold), SETXON
/// resumes it. The binary's pty test checks the bytes really wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setxoff_holds_output_until_setxon() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    assert!(!fake.output_held());
    assert_eq!(
        host.set_xoff().await.expect("SETXOFF reply"),
        ok(code::SETXOFF)
    );
    assert!(fake.output_held(), "SETXOFF answered, output not held");
    assert_eq!(
        host.set_xon().await.expect("SETXON reply"),
        ok(code::SETXON)
    );
    assert!(!fake.output_held(), "SETXON answered, output still held");
    host.write_data(b"flowing").await.expect("write");
    assert_eq!(fake.wait_device_input(7, WAIT).await, b"flowing");
}

/// §13.3: FLUSH is acknowledged and flushes the device; WAIT_OQUEUE
/// answers `2F 02 00 00` once the output is on the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_wait_oqueue() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    let before = fake.flushes().len();
    assert_eq!(host.flush(2).await.expect("FLUSH reply"), ok(code::FLUSH));
    settled(&fake, "flushed both ways", |h| {
        let flushes = h.flushes();
        let new = flushes.get(before..).unwrap_or_default();
        new.contains(&FlushDirection::Both)
            || (new.contains(&FlushDirection::Input) && new.contains(&FlushDirection::Output))
    })
    .await;

    let out = pattern(1000, 5);
    host.write_data(&out).await.expect("write");
    assert_eq!(fake.wait_device_input(out.len(), WAIT).await, out);
    let start = Instant::now();
    assert_eq!(
        host.wait_oqueue(2000).await.expect("WAIT_OQUEUE reply"),
        [code::WAIT_OQUEUE, 0x02, 0x00, 0x00]
    );
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "drained output, yet WAIT_OQUEUE waited {:?}",
        start.elapsed()
    );
    assert_eq!(
        host.oqueue().await.expect("OQUEUE reply"),
        [code::OQUEUE, 0x02, 0x00, 0x00]
    );
}

/// §4.14, §13.4: each change of CTS, DSR or DCD on the device gives
/// `26 20 <levels | deltas> <hold | 80>` well within a second; LSTATUS
/// reports the levels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_line_changes_are_notified() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    let reply = host
        .port_init(B9600, MODE_8N1, true, true, Flow::NONE)
        .await
        .expect("PORT_INIT reply");
    assert_eq!(reply, port_init_reply(false, false, false));

    type Toggle = fn(&FakeHandle);
    let steps: [(&str, Toggle, u8); 5] = [
        ("CTS on", |h| h.set_cts(true), 0x10 | 0x01),
        ("DSR on", |h| h.set_dsr(true), 0x30 | 0x02),
        ("DCD on", |h| h.set_dcd(true), 0xB0 | 0x08),
        ("CTS off", |h| h.set_cts(false), 0xA0 | 0x01),
        ("DCD off", |h| h.set_dcd(false), 0x20 | 0x08),
    ];
    for (what, toggle, msr) in steps {
        host.command.drain_now().await;
        let stale = host.command.take_notifies();
        assert!(stale.is_empty(), "NOTIFY without a change: {stale:02X?}");
        let start = Instant::now();
        toggle(&fake);
        let notify = host
            .command
            .notify(NOTIFY_WAIT)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            matches!(notify, [code::NOTIFY, events, m, hold] if events & 0x20 != 0 && m == msr && hold & 0x80 != 0),
            "{what}: NOTIFY {}, want 26 20 {msr:02X} 80",
            hex(&notify)
        );
        assert!(start.elapsed() < NOTIFY_WAIT);
    }
    // Now DSR only.
    let status = host.line_status().await.expect("LSTATUS reply");
    assert_eq!(status, [code::LSTATUS, 0x03, 0x01, 0x00, 0x00]);
}

/// §13.4 data path: all 256 byte values, 64 KiB each way, no escaping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_both_ways_byte_exact() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    let down = pattern(64 * 1024, 11);
    assert!((0..=255u8).all(|b| down.contains(&b)));
    host.write_data(&down).await.expect("write");
    let got = fake.wait_device_input(down.len(), WAIT).await;
    assert!(
        got == down,
        "network → device: {} bytes, corrupted",
        got.len()
    );

    let up = pattern(64 * 1024, 200);
    for chunk in up.chunks(3000) {
        fake.device_output(chunk);
    }
    let got = host.read_data(up.len(), WAIT).await.expect("device output");
    assert!(got == up, "device → network corrupted");
}

/// §12.9: what the device sends before the host's first PORT_INIT is
/// answered waits (npreal2's tty may not be ready for it), then arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_output_waits_for_the_first_port_init() {
    let fake = FakeHandle::new();
    let mut server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    server
        .running
        .event("session opened", |k| {
            matches!(k, EventKind::SessionOpened { .. })
        })
        .await;
    fake.device_output(b"early");
    let early = host.data_within(Duration::from_millis(300)).await;
    assert!(early.is_empty(), "sent before PORT_INIT: {early:?}");
    open_9600_8n1(&mut host).await;
    assert_eq!(
        host.read_data(5, WAIT).await.expect("held output"),
        b"early"
    );
}

/// §4.15 with short timing: a host that answers polls stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answering_polls_stays_connected() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(short_alive()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    // Nothing to await: the point is that nothing happens for 2 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    host.command.drain_now().await;
    assert!(!host.command.is_closed(), "server closed an answering host");
    assert!(
        !host.command.polls().is_empty(),
        "no poll in 2 s with a 300 ms idle time"
    );
    let status = host.line_status().await.expect("LSTATUS after 2 s");
    assert_eq!(status.get(..2), Some(&[code::LSTATUS, 0x03][..]));
    fake.device_output(b"still here");
    assert_eq!(
        host.read_data(10, WAIT).await.expect("data after 2 s"),
        b"still here"
    );
}

/// §4.15 with short timing: polls with ids going up by one, then both
/// connections closed after the 4th miss (~300 + 4 × 100 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_ignoring_polls_is_disconnected() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(short_alive()));
    let mut host = server.host().await;
    host.command.set_answer_polls(false);
    let start = Instant::now();
    open_9600_8n1(&mut host).await;

    assert!(
        host.command.wait_closed(Duration::from_secs(3)).await,
        "command connection still open after 3 s of unanswered polls ({} polls)",
        host.command.polls().len()
    );
    let took = start.elapsed();
    assert!(
        host.data_closed(Duration::from_secs(1)).await,
        "data connection left open"
    );
    let polls = host.command.polls().to_vec();
    assert!(polls.len() >= 4, "closed after only {} polls", polls.len());
    for pair in polls.windows(2) {
        if let [a, b] = pair {
            let next = if *a == 255 { 1 } else { a + 1 };
            assert_eq!(*b, next, "poll ids {polls:?} must go up by one, skipping 0");
        }
    }
    assert!(!polls.contains(&0), "poll id 0: {polls:?}");
    assert!(
        took >= Duration::from_millis(600),
        "closed after {took:?}, before 4 polls could be missed"
    );
}

/// §6.7: close both, reconnect, the recovery batch in one write: one reply
/// per command in order, LINECTRL's last, and the port is set up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_recovery_batch_is_answered_in_order() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    host.port_init(0xFF, MODE_8N1, true, true, Flow::XON_XOFF)
        .await
        .expect("PORT_INIT reply");
    host.set_baud(250_000).await.expect("SETBAUD reply");
    host.xon_xoff(0x11, 0x13).await.expect("XONXOFF reply");
    host.tx_fifo(16).await.expect("TX_FIFO reply");
    host.line_ctrl(true, false).await.expect("LINECTRL reply");

    let batch = host.recover().await.expect("reconnect");
    assert_eq!(
        hex(&batch),
        "2C 08 FF 03 01 00 00 00 01 01 17 04 90 D0 03 00 18 02 11 13 30 01 10 12 02 01 00"
    );
    let mut replies = Vec::new();
    for i in 0..5 {
        match host.command.reply(REPLY).await {
            Ok(reply) => replies.push(reply),
            Err(e) => {
                // Say whether the server refused the new data connection.
                let refused = host.data_closed(Duration::from_millis(100)).await;
                panic!(
                    "recovery reply {i} after {replies:02X?}: {e}; new data connection closed by the server: {refused}"
                );
            }
        }
    }
    assert_eq!(replies[0].get(..2), Some(&[code::PORT_INIT, 0x03][..]));
    assert_eq!(
        replies[1..],
        [
            ok(code::SETBAUD),
            ok(code::XONXOFF),
            ok(code::TX_FIFO),
            ok(code::LINECTRL)
        ]
    );
    settled(&fake, "recovered 250000, XON/XOFF, DTR on, RTS off", |h| {
        h.dtr()
            && !h.rts()
            && h.settings()
                .is_some_and(|s| s.baud.get() == 250_000 && s.flow == FlowControl::XonXoff)
    })
    .await;
    assert!(
        host.command.split_messages().is_empty(),
        "replies split across reads: {:02X?}",
        host.command.split_messages()
    );
}

const REPLY: Duration = client::REPLY_WAIT;

/// §3.1, §13.4: several commands in one write, a command cut in two,
/// unknown codes and a wrong length (no reply, the stream goes on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_stream_is_reassembled_and_bad_commands_are_ignored() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    let c = &mut host.command;

    c.send(&[
        0x2C, 0x08, 0x06, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x30, 0x01, 0x10, 0x12, 0x02,
        0x01, 0x01,
    ])
    .await
    .expect("send");
    let first = c.reply(REPLY).await.expect("PORT_INIT reply");
    assert_eq!(first.get(..2), Some(&[code::PORT_INIT, 0x03][..]));
    assert_eq!(c.reply(REPLY).await.expect("TX_FIFO"), ok(code::TX_FIFO));
    assert_eq!(c.reply(REPLY).await.expect("LINECTRL"), ok(code::LINECTRL));

    c.send(&[0x2C, 0x08, 0x06, 0x03]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(&[0x01, 0x01, 0x00, 0x00, 0x00, 0x00])
        .await
        .expect("send");
    let split = c.reply(REPLY).await.expect("PORT_INIT reply");
    assert_eq!(split.get(..2), Some(&[code::PORT_INIT, 0x03][..]));
    // Exactly one: the next reply is the next command's.
    assert_eq!(
        c.call(&cmd::line_status()).await.expect("LSTATUS").get(..2),
        Some(&[code::LSTATUS, 0x03][..])
    );

    for bad in [
        &[0x2B, 0x02, 0x41, 0x42][..],
        &[0x39, 0x00],
        &[0x12, 0x01, 0x01],
    ] {
        c.send(bad).await.expect("send");
        assert_eq!(
            c.call(&cmd::tx_fifo(16)).await.expect("TX_FIFO"),
            ok(code::TX_FIFO),
            "after {}",
            hex(bad)
        );
    }
    // The same in one write.
    c.send(&[
        0x2B, 0x02, 0x41, 0x42, 0x39, 0x00, 0x12, 0x01, 0x01, 0x30, 0x01, 0x10,
    ])
    .await
    .expect("send");
    assert_eq!(c.reply(REPLY).await.expect("TX_FIFO"), ok(code::TX_FIFO));
    let extra = c.replies_within(Duration::from_millis(200)).await;
    assert!(
        extra.is_empty(),
        "replies to ignored commands: {extra:02X?}"
    );
    assert!(
        fake.dtr() && fake.rts(),
        "LINECTRL with a wrong length applied"
    );
}

/// §4.6, §4.7, §4.12, §4.13 (the commands only Windows drivers send):
/// each gets its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_era_commands_are_answered() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;

    let mode_7e2 = client::mode(7, true, parity::EVEN);
    assert_eq!(
        host.ioctl(7, mode_7e2).await.expect("IOCTL"),
        ok(code::IOCTL)
    );
    assert_eq!(
        host.flow_ctl(Flow::RTS_CTS).await.expect("FLOWCTL"),
        ok(code::FLOWCTL)
    );
    settled(&fake, "19200 7E2 RTS/CTS", |h| {
        h.settings().is_some_and(|s| {
            (
                s.baud.get(),
                s.data_bits.bits(),
                s.parity,
                s.stop_bits,
                s.flow,
            ) == (19_200, 7, Parity::Even, StopBits::Two, FlowControl::RtsCts)
        })
    })
    .await;
    assert_eq!(
        host.iqueue().await.expect("IQUEUE").get(..2),
        Some(&[code::IQUEUE, 0x02][..])
    );
    assert_eq!(
        host.oqueue().await.expect("OQUEUE").get(..2),
        Some(&[code::OQUEUE, 0x02][..])
    );
    assert_eq!(
        host.notify_on().await.expect("NOTIFYON"),
        ok(code::NOTIFY_ON)
    );
    assert_eq!(
        host.notify_off().await.expect("NOTIFYOFF"),
        ok(code::NOTIFY_OFF)
    );
    assert_eq!(host.reset().await.expect("RESET"), ok(code::RESET));
    assert_eq!(host.dsr_sen(1).await.expect("DSR_SEN"), ok(code::DSR_SEN));
    let reply = host.flush_start(2, 1000).await.expect("FLUSH_START");
    assert!(
        matches!(reply[..], [code::FLUSH_START, 0x04, _, _, 0x00, 0x00]),
        "FLUSH_START reply {}",
        hex(&reply)
    );
    assert_eq!(
        host.flush_stop().await.expect("FLUSH_STOP"),
        ok(code::FLUSH_STOP)
    );
    assert_eq!(
        host.break_count().await.expect("BREAK_COUNT"),
        [code::BREAK_COUNT, 0x02, 0x00, 0x00]
    );
    assert_eq!(
        host.data_status().await.expect("DATA_STATUS"),
        [code::DATA_STATUS, 0x01, 0x00]
    );
    // RESET with another payload: no reply.
    host.command
        .send(&[code::RESET, 0x03, b'x', b'y', b'z'])
        .await
        .expect("send");
    assert_eq!(host.tx_fifo(1).await.expect("TX_FIFO"), ok(code::TX_FIFO));
}

/// CVE-2026-10831: a command connection from a host without a data
/// connection gets no reply and changes nothing, even when another host's
/// data connection is open and driver control is allowed; a data
/// connection opened later from a third party's address does not pair with
/// it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_connection_without_data_connection_is_not_served() {
    let fake = FakeHandle::new();
    let server = Server::start(
        &fake,
        RealComMode {
            max_connections: 2,
            allow_driver_control: true,
            ..realcom(AliveTiming::default())
        },
    );
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;
    settled(&fake, "DTR and RTS on", |h| h.dtr() && h.rts()).await;

    // Settings no one else asks for (300 baud, 6 data bits, mark parity),
    // so that the check does not depend on when the port's own opening
    // applied its stored settings.
    let mut attacker = CommandChannel::connect(Some(SECOND_HOST), server.command)
        .await
        .expect("attacker connects");
    let mut attack = cmd::line_ctrl(false, false);
    attack.extend(cmd::port_init(
        0,
        client::mode(6, true, parity::MARK),
        false,
        false,
        Flow::NONE,
    ));
    attack.extend(cmd::break_on());
    attacker.send(&attack).await.expect("send");
    // The real host opens a second data connection: still not the attacker's.
    let _second_data = client::connect_tcp(None, server.data)
        .await
        .expect("second data connection");
    let answered = attacker.replies_within(Duration::from_millis(500)).await;
    assert!(
        answered.is_empty(),
        "unpaired command connection answered: {answered:02X?}"
    );
    assert!(
        fake.dtr() && fake.rts() && !fake.break_state() && fake.breaks_on() == 0,
        "unpaired command connection changed the lines"
    );
    let settings = fake.settings();
    assert!(
        !settings
            .as_ref()
            .is_some_and(|s| s.baud.get() == 300 || s.data_bits.bits() == 6),
        "unpaired PORT_INIT applied: {settings:?}"
    );
    // The paired host is still served.
    assert_eq!(
        host.line_status().await.expect("LSTATUS").get(..2),
        Some(&[code::LSTATUS, 0x03][..])
    );
}

/// §2.4: closing the data connection closes its command connection, and
/// the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_one_connection_closes_its_pair() {
    let fake = FakeHandle::new();
    let server = Server::start(&fake, realcom(AliveTiming::default()));

    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;
    host.data.shutdown().await.expect("close data");
    assert!(
        host.command.wait_closed(Duration::from_secs(3)).await,
        "command connection left open after its data connection closed"
    );

    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;
    host.command.shutdown().await.expect("close command");
    assert!(
        host.data_closed(Duration::from_secs(3)).await,
        "data connection left open after its command connection closed"
    );
}

/// §2.4, §12.10: when the last connection closes, DTR and RTS end as
/// "connection goes down" says, whatever the host had set.
async fn lines_after_connection_down(
    dtr_down: LineOnDown,
    rts_down: LineOnDown,
    set: (bool, bool),
    want: (bool, bool),
) {
    let fake = FakeHandle::new();
    let server = Server::start(
        &fake,
        RealComMode {
            connection_down_dtr: dtr_down,
            connection_down_rts: rts_down,
            ..realcom(AliveTiming::default())
        },
    );
    let mut host = server.host().await;
    open_9600_8n1(&mut host).await;
    host.line_ctrl(set.0, set.1).await.expect("LINECTRL");
    settled(&fake, "lines as the host set them", |h| {
        (h.dtr(), h.rts()) == set
    })
    .await;
    assert!(host.close().await, "server did not close its ends");
    settled(
        &fake,
        &format!("DTR/RTS {want:?} after the connection went down"),
        |h| (h.dtr(), h.rts()) == want,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_down_drops_dtr_and_raises_rts() {
    lines_after_connection_down(
        LineOnDown::GoesLow,
        LineOnDown::AlwaysHigh,
        (true, false),
        (false, true),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_down_raises_dtr_and_drops_rts() {
    lines_after_connection_down(
        LineOnDown::AlwaysHigh,
        LineOnDown::GoesLow,
        (false, true),
        (true, false),
    )
    .await;
}

/// §7: with two connections and no "allow driver control", control
/// commands are acknowledged and not applied (PORT_INIT still reports the
/// real lines), WAIT_OQUEUE answers zero at once; data goes to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_host_without_driver_control_changes_nothing() {
    let fake = FakeHandle::new();
    fake.set_cts(true);
    let server = Server::start(
        &fake,
        RealComMode {
            max_connections: 2,
            ..realcom(AliveTiming::default())
        },
    );
    let mut first = server.host().await;
    open_9600_8n1(&mut first).await;
    let mut second = server.host_from(Some(SECOND_HOST)).await;
    open_9600_8n1(&mut second).await;
    settled(&fake, "DTR and RTS on", |h| h.dtr() && h.rts()).await;
    let (settings, applies, flushes) = (fake.settings(), fake.applies(), fake.flushes());

    let reply = second
        .port_init(
            7,
            client::mode(7, true, parity::ODD),
            false,
            false,
            Flow::RTS_CTS,
        )
        .await
        .expect("PORT_INIT reply");
    assert_eq!(reply, port_init_reply(false, true, false), "real lines");
    assert_eq!(
        second.set_baud(57_600).await.expect("SETBAUD"),
        ok(code::SETBAUD)
    );
    assert_eq!(
        second.line_ctrl(false, false).await.expect("LINECTRL"),
        ok(code::LINECTRL)
    );
    assert_eq!(
        second.break_on().await.expect("BREAK_ON"),
        ok(code::BREAK_ON)
    );
    assert_eq!(second.flush(2).await.expect("FLUSH"), ok(code::FLUSH));
    second.write_data(&pattern(4096, 1)).await.expect("write");
    let start = Instant::now();
    assert_eq!(
        second.wait_oqueue(3000).await.expect("WAIT_OQUEUE"),
        [code::WAIT_OQUEUE, 0x02, 0x00, 0x00]
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "WAIT_OQUEUE waited"
    );
    // Give a wrongly applied command time to show on the device.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.settings(), settings, "settings changed");
    assert_eq!(fake.applies(), applies, "settings applied again");
    assert!(fake.dtr() && fake.rts(), "DTR/RTS changed");
    assert!(!fake.break_state() && fake.breaks_on() == 0, "break sent");
    assert_eq!(fake.flushes(), flushes, "flushed");

    fake.device_output(b"to all");
    assert_eq!(first.read_data(6, WAIT).await.expect("first"), b"to all");
    assert_eq!(second.read_data(6, WAIT).await.expect("second"), b"to all");
}

/// TCP Server mode with its command port (spec §7, "IP-Serial Lib"): the
/// same commands reach the port, paired with the host's raw data
/// connection; no NOTIFY and no alive polling in this mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_server_command_port_applies_the_same_commands() {
    let fake = FakeHandle::new();
    fake.set_cts(true);
    let mode = OperationMode::TcpServer(TcpServerMode {
        bind: vec![LOOPBACK.into()],
        local_port: 0,
        max_connections: 1,
        alive_check_min: 7,
        inactivity_ms: 0,
        command_port: Some(0),
    });
    let running = Running::start(vec![port_config(&fake, mode)]);
    let listeners = running.engine.listeners();
    let find = |channel: &str| {
        listeners
            .iter()
            .find(|l| l.channel == channel)
            .unwrap_or_else(|| panic!("no {channel} listener in {listeners:?}"))
            .addr
    };
    let mut host = RealComClient::connect_from(None, find("data"), find("command"))
        .await
        .expect("connect command, then data");
    let mode_7e1 = client::mode(7, false, parity::EVEN);
    let reply = host
        .port_init(B9600, mode_7e1, true, false, Flow::NONE)
        .await
        .expect("PORT_INIT reply");
    assert_eq!(reply, port_init_reply(false, true, false));
    settled(&fake, "9600 7E1, RTS off", |h| {
        h.settings()
            .is_some_and(|s| (s.baud.get(), s.data_bits.bits()) == (9600, 7))
            && h.dtr()
            && !h.rts()
    })
    .await;
    assert!(
        host.command
            .notify(Duration::from_millis(300))
            .await
            .is_err(),
        "TCP Server mode sends no NOTIFY"
    );
    // Data still flows raw on the data connection.
    fake.device_output(b"raw bytes");
    assert_eq!(read_exactly(&mut host.data, 9).await, b"raw bytes");
}
