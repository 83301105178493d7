//! Integration tests of ttyward-serial against real ptys, the simulations
//! and the fake, through the public API only.

// A test that meets an unexpected error should fail loudly, helpers included.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ttyward_serial::error::io_is_missing;
use ttyward_serial::fake::FakeHandle;
use ttyward_serial::pty::{PtyMaster, PtyPair, termios_snapshot};
use ttyward_serial::sim::SimKind;
use ttyward_serial::{
    BaudRate, DataBits, DeviceSpec, FlowControl, FlushDirection, Interface, Parity, SerialDevice,
    SerialError, SerialSettings, StopBits, open,
};

const WAIT: Duration = Duration::from_secs(5);

fn settings(
    baud: u32,
    data_bits: DataBits,
    parity: Parity,
    stop_bits: StopBits,
    flow: FlowControl,
) -> SerialSettings {
    SerialSettings {
        baud: BaudRate::new(baud).unwrap(),
        data_bits,
        parity,
        stop_bits,
        flow,
        ..Default::default()
    }
}

/// A pty master plus a ttyward device opened on its slave.
fn pty_device(s: &SerialSettings) -> (PtyMaster, Box<dyn SerialDevice>) {
    let master = PtyPair::open().unwrap().into_async().unwrap();
    let device = open(&DeviceSpec::Path(master.slave_path().to_owned()), s).unwrap();
    (master, device)
}

async fn read_exactly(device: &dyn SerialDevice, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    // Bounded: each round reads at least one byte or times out.
    while got.len() < n {
        let k = tokio::time::timeout(WAIT, device.read(&mut buf))
            .await
            .expect("device data in time")
            .unwrap();
        assert!(k > 0, "device reported gone");
        got.extend_from_slice(&buf[..k]);
    }
    got
}

async fn master_read_exactly(master: &PtyMaster, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < n {
        let k = tokio::time::timeout(WAIT, master.read(&mut buf))
            .await
            .expect("master data in time")
            .unwrap();
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    got
}

// --- what a pty shows of the settings ---

#[tokio::test]
async fn pty_master_sees_slave_settings() {
    let s = settings(
        9600,
        DataBits::Seven,
        Parity::Even,
        StopBits::Two,
        FlowControl::RtsCts,
    );
    let (master, device) = pty_device(&s);
    let seen = master.termios().unwrap();
    assert_eq!((seen.ispeed, seen.ospeed), (9600, 9600));
    assert!(seen.cstopb);
    assert!(seen.crtscts);
    assert!(!seen.parodd);
    assert!(!seen.ixon && !seen.ixoff);
    // The pty driver forces CS8 and clears PARENB: 7E cannot be observed.
    assert_eq!(seen.csize_bits, 8);
    assert!(!seen.parenb);

    device
        .apply(&settings(
            19200,
            DataBits::Eight,
            Parity::Odd,
            StopBits::One,
            FlowControl::XonXoff,
        ))
        .unwrap();
    let seen = master.termios().unwrap();
    assert_eq!(seen.ospeed, 19200);
    assert!(seen.parodd && !seen.cmspar && !seen.cstopb && !seen.crtscts);
    assert!(seen.ixon && seen.ixoff);

    device
        .apply(&settings(
            9600,
            DataBits::Eight,
            Parity::Mark,
            StopBits::One,
            FlowControl::None,
        ))
        .unwrap();
    let seen = master.termios().unwrap();
    assert!(seen.parodd && seen.cmspar);
    device
        .apply(&settings(
            9600,
            DataBits::Eight,
            Parity::Space,
            StopBits::One,
            FlowControl::None,
        ))
        .unwrap();
    let seen = master.termios().unwrap();
    assert!(!seen.parodd && seen.cmspar);
}

#[tokio::test]
async fn pty_master_sees_custom_baud_rate() {
    let s = settings(
        250_000,
        DataBits::Eight,
        Parity::None,
        StopBits::One,
        FlowControl::None,
    );
    let (master, device) = pty_device(&s);
    let seen = master.termios().unwrap();
    assert_eq!((seen.ispeed, seen.ospeed), (250_000, 250_000));
    // Also through the blocking PtyPair API and on any tty descriptor.
    let pair = PtyPair::open().unwrap();
    let slave = open(&DeviceSpec::Path(pair.slave_path.clone()), &s).unwrap();
    assert_eq!(pair.master_termios().unwrap().ospeed, 250_000);
    assert_eq!(
        termios_snapshot(std::os::fd::AsFd::as_fd(&pair.master))
            .unwrap()
            .ispeed,
        250_000
    );
    drop((slave, device));
}

#[tokio::test]
async fn five_data_bits_and_one_and_a_half_stop_bits_set_cstopb() {
    let s = settings(
        1200,
        DataBits::Five,
        Parity::None,
        StopBits::OnePointFive,
        FlowControl::None,
    );
    let (master, _device) = pty_device(&s);
    assert!(master.termios().unwrap().cstopb);
}

// --- data, break, lines, flush on a pty ---

#[tokio::test]
async fn data_flows_both_ways_through_a_pty() {
    let (master, device) = pty_device(&SerialSettings::default());
    // Raw mode: CR, LF, ^C, ^D and 0xFF pass unchanged.
    let payload: Vec<u8> = (0u8..=255).collect();
    master.write_all(&payload).await.unwrap();
    assert_eq!(read_exactly(&*device, payload.len()).await, payload);
    device.write_all(&payload).await.unwrap();
    assert_eq!(master_read_exactly(&master, payload.len()).await, payload);
}

#[tokio::test]
async fn a_waiting_read_wakes_when_data_arrives() {
    let (master, device) = pty_device(&SerialSettings::default());
    let mut buf = [0u8; 16];
    let (n, written) = tokio::join!(tokio::time::timeout(WAIT, device.read(&mut buf)), async {
        tokio::task::yield_now().await;
        master.write_all(b"late").await
    });
    written.unwrap();
    let n = n.expect("read woke up").unwrap();
    assert_eq!(&buf[..n], b"late");
}

/// How many of this process's descriptors are open on `path`.
fn descriptors_on(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[tokio::test]
async fn a_write_to_a_full_device_waits_for_room_then_stops_watching() {
    let (master, device) = pty_device(&SerialSettings::default());
    let slave = master.slave_path().to_owned();
    // The device's descriptor, and the pair's keep-alive one.
    let before = descriptors_on(&slave);
    // Fill the output queue without reading the master (bounded: a pty
    // holds well under 1 MiB).
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = Vec::new();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..256 {
        match device.poll_write(&mut cx, &block) {
            std::task::Poll::Ready(Ok(n)) => sent.extend_from_slice(&block[..n]),
            std::task::Poll::Ready(Err(e)) => panic!("write failed: {e}"),
            std::task::Poll::Pending => break,
        }
    }
    assert!(
        device.poll_write(&mut cx, &block).is_pending(),
        "the queue filled up"
    );
    // A full queue is watched for writability through a second descriptor.
    assert_eq!(descriptors_on(&slave), before + 1, "plus the write watch");
    // A waiting write completes once the other side reads.
    let total = sent.len() + block.len();
    let (written, got) = tokio::join!(
        tokio::time::timeout(WAIT, device.write_all(&block)),
        master_read_exactly(&master, total)
    );
    written.expect("the write woke up").unwrap();
    sent.extend_from_slice(&block);
    assert_eq!(got, sent);
    // Messages that fit end the watch again.
    for i in 0..40u8 {
        device.write_all(&[i]).await.unwrap();
        assert_eq!(master_read_exactly(&master, 1).await, [i]);
    }
    assert_eq!(descriptors_on(&slave), before, "the watch is gone");
}

#[tokio::test]
async fn a_vectored_write_sends_its_buffers_in_order_in_one_call() {
    let (master, device) = pty_device(&SerialSettings::default());
    let first: Vec<u8> = (0u8..=255).collect();
    let bufs = [
        std::io::IoSlice::new(b"abc"),
        std::io::IoSlice::new(b""),
        std::io::IoSlice::new(&first),
    ];
    let n = std::future::poll_fn(|cx| device.poll_write_vectored(cx, &bufs))
        .await
        .unwrap();
    // The queue has room for all of it: one call takes every buffer.
    assert_eq!(n, 3 + first.len());
    let mut want = b"abc".to_vec();
    want.extend_from_slice(&first);
    assert_eq!(master_read_exactly(&master, want.len()).await, want);

    // Into a full queue: whatever is taken is the front of the buffers, in
    // order, across the boundary between them.
    let a: Vec<u8> = (0..4096u32).map(|i| (i % 241) as u8).collect();
    let b: Vec<u8> = (0..4096u32).map(|i| (i % 239) as u8 ^ 0x55).collect();
    let mut sent = Vec::new();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..256 {
        let bufs = [std::io::IoSlice::new(&a), std::io::IoSlice::new(&b)];
        match device.poll_write_vectored(&mut cx, &bufs) {
            std::task::Poll::Ready(Ok(n)) => {
                let both: Vec<u8> = a.iter().chain(&b).copied().collect();
                sent.extend_from_slice(&both[..n]);
            }
            std::task::Poll::Ready(Err(e)) => panic!("write failed: {e}"),
            std::task::Poll::Pending => break,
        }
    }
    let bufs = [std::io::IoSlice::new(&a)];
    assert!(
        device.poll_write_vectored(&mut cx, &bufs).is_pending(),
        "the queue filled up"
    );
    assert_eq!(master_read_exactly(&master, sent.len()).await, sent);
}

#[tokio::test]
async fn break_on_a_pty_succeeds() {
    let (_master, device) = pty_device(&SerialSettings::default());
    device.set_break(true).unwrap();
    device.set_break(false).unwrap();
}

#[tokio::test]
async fn modem_lines_on_a_pty_fall_back_to_software() {
    let (_master, device) = pty_device(&SerialSettings::default());
    assert!(!device.has_modem_lines());
    let m = device.modem_status().unwrap();
    assert!(
        m.dtr && m.rts,
        "DTR and RTS start on, as the kernel raises them on open"
    );
    assert!(!m.cts && !m.dsr && !m.dcd && !m.ri);
    device.set_dtr(false).unwrap();
    device.set_rts(false).unwrap();
    let m = device.modem_status().unwrap();
    assert!(!m.dtr && !m.rts);
    device.set_rts(true).unwrap();
    assert!(device.modem_status().unwrap().rts);
}

#[tokio::test]
async fn flush_on_a_pty_discards_input() {
    let (master, device) = pty_device(&SerialSettings::default());
    master.write_all(b"stale").await.unwrap();
    // One master write reaches the line discipline in one piece: once its
    // first byte is readable, the rest is queued and can be flushed.
    let mut one = [0u8; 1];
    let n = tokio::time::timeout(WAIT, device.read(&mut one))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&one[..n], b"s");
    device.flush(FlushDirection::Both).unwrap();
    master.write_all(b"fresh").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, device.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"fresh");
}

// --- refusals on a pty ---

#[tokio::test]
async fn rs485_on_a_pty_is_unsupported_and_changes_nothing() {
    let (master, device) = pty_device(&settings(
        9600,
        DataBits::Eight,
        Parity::None,
        StopBits::One,
        FlowControl::None,
    ));
    for interface in [
        Interface::Rs485TwoWire,
        Interface::Rs485FourWire,
        Interface::Rs422,
    ] {
        let s = SerialSettings {
            baud: BaudRate::new(57600).unwrap(),
            interface,
            ..Default::default()
        };
        let err = device.apply(&s).unwrap_err();
        assert!(
            matches!(err, SerialError::Unsupported { .. }),
            "{interface}: {err}"
        );
    }
    assert_eq!(master.termios().unwrap().ospeed, 9600);
}

#[tokio::test]
async fn dtr_dsr_flow_is_unsupported_on_a_tty() {
    let (_master, device) = pty_device(&SerialSettings::default());
    let s = SerialSettings {
        flow: FlowControl::DtrDsr,
        ..Default::default()
    };
    assert!(matches!(
        device.apply(&s),
        Err(SerialError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn hardware_flow_on_rs485_is_an_invalid_setting() {
    let (_master, device) = pty_device(&SerialSettings::default());
    let s = SerialSettings {
        flow: FlowControl::RtsCts,
        interface: Interface::Rs485TwoWire,
        ..Default::default()
    };
    assert!(matches!(
        device.apply(&s),
        Err(SerialError::InvalidSetting { field: "flow", .. })
    ));
}

// --- open errors, exclusivity, device gone ---

#[tokio::test]
async fn closing_the_master_makes_the_device_missing() {
    let (master, device) = pty_device(&SerialSettings::default());
    drop(master);
    let mut buf = [0u8; 16];
    let result = tokio::time::timeout(WAIT, device.read(&mut buf))
        .await
        .expect("read returns");
    match result {
        Ok(0) => {}
        Ok(n) => panic!("read {n} bytes from a closed pty"),
        Err(e) => {
            assert!(io_is_missing(&e), "{e}");
            assert!(SerialError::from(e).is_missing());
        }
    }
}

#[tokio::test]
async fn a_tty_is_opened_exclusively() {
    let (master, device) = pty_device(&SerialSettings::default());
    let spec = DeviceSpec::Path(master.slave_path().to_owned());
    let err = open(&spec, &SerialSettings::default())
        .err()
        .expect("second open fails");
    assert!(matches!(err, SerialError::Busy { .. }), "{err}");
    assert!(!err.is_missing());
    // Closing releases the port.
    drop(device);
    let again = open(&spec, &SerialSettings::default()).unwrap();
    assert_eq!(again.describe(), master.slave_path().display().to_string());
}

#[tokio::test]
async fn a_missing_path_is_missing() {
    let err = open(
        &DeviceSpec::Path("/dev/ttyward-no-such-device".into()),
        &SerialSettings::default(),
    )
    .err()
    .expect("no such device");
    assert!(matches!(err, SerialError::Open { .. }));
    assert!(err.is_missing(), "{err}");
}

#[tokio::test]
async fn a_non_tty_is_refused() {
    let err = open(
        &DeviceSpec::Path("/dev/null".into()),
        &SerialSettings::default(),
    )
    .err()
    .expect("not a tty");
    assert!(matches!(err, SerialError::NotATty { .. }), "{err}");
}

#[test]
fn opening_a_tty_outside_a_runtime_is_an_error() {
    let pair = PtyPair::open().unwrap();
    let err = open(
        &DeviceSpec::Path(pair.slave_path.clone()),
        &SerialSettings::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SerialError::NoRuntime));
}

// --- simulations and fakes through open() ---

#[tokio::test]
async fn sim_devices_open_from_their_spec() {
    let echo = open(
        &DeviceSpec::parse("sim:echo").unwrap(),
        &SerialSettings::default(),
    )
    .unwrap();
    echo.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&*echo, 4).await, b"ping");

    let modbus = open(
        &DeviceSpec::parse("sim:modbus:5").unwrap(),
        &SerialSettings::default(),
    )
    .unwrap();
    assert_eq!(modbus.describe(), "sim:modbus:5");
    let mut request = vec![0x05, 0x03, 0x00, 0x00, 0x00, 0x01];
    request.extend(ttyward_serial::sim::modbus::crc16(&request).to_le_bytes());
    modbus.write_all(&request).await.unwrap();
    let response = read_exactly(&*modbus, 7).await;
    assert_eq!(&response[..5], &[0x05, 0x03, 0x02, 0x00, 0x00]);

    let console = open(
        &DeviceSpec::Sim(SimKind::Console),
        &SerialSettings::default(),
    )
    .unwrap();
    let banner = read_exactly(&*console, 10).await;
    assert!(banner.starts_with(b"\r\nttyward"));
}

#[tokio::test]
async fn fake_devices_open_from_their_handle() {
    let handle = FakeHandle::new();
    let spec = DeviceSpec::Fake(handle.clone());
    assert_eq!(spec.to_string(), handle.describe());
    let s = SerialSettings {
        interface: Interface::Rs485TwoWire,
        ..Default::default()
    };
    let device = open(&spec, &s).unwrap();
    assert_eq!(handle.settings(), Some(s));
    assert!(device.has_modem_lines());
    handle.device_output(b"hi");
    assert_eq!(read_exactly(&*device, 2).await, b"hi");
    device.write_all(b"yo").await.unwrap();
    assert_eq!(handle.wait_device_input(2, WAIT).await, b"yo");
    handle.unplug();
    let err = open(&spec, &SerialSettings::default())
        .err()
        .expect("unplugged");
    assert!(err.is_missing());
}
