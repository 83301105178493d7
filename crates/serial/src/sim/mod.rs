//! Simulated devices inside ttyward: an echo plug, a Modbus RTU slave and a
//! line console. They let a port be tried, demonstrated and tested without
//! hardware or ptys.
//!
//! A [`SimDevice`] has no file descriptor. Written bytes are processed
//! synchronously in `poll_write` and the answer is queued; `poll_read`
//! returns queued output or waits. The queue is bounded by
//! [`OUTPUT_CAPACITY`]: while it is full `poll_write` returns `Pending`
//! until a read makes room (backpressure, like a real port whose peer does
//! not read). The echo accepts a write only up to the free space; the Modbus
//! slave and the console, whose answers can be longer than the input, take
//! input in chunks of 16 bytes while the queue is below the bound, so it
//! exceeds the bound by at most the answers to 16 input bytes.
//!
//! `apply` stores the settings without checking them (any baud rate, DTR/DSR
//! flow and RS-485 are fine). Modem lines behave like a loopback plug: CTS
//! follows RTS, DSR and DCD follow DTR, RI stays off. A simulated device is
//! never "gone". See [`modbus`] and [`console`] for the protocols.

pub mod console;
pub mod modbus;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::device::SerialDevice;
use crate::error::SerialError;
use crate::modem::{FlushDirection, ModemStatus};
use crate::settings::SerialSettings;

use self::console::{Console, ConsoleStatus};
use self::modbus::ModbusSlave;

/// Bytes of device output queued before writes wait.
pub const OUTPUT_CAPACITY: usize = 64 * 1024;
/// Input bytes a Modbus or console simulation processes between two checks
/// of the output queue.
const PROCESS_CHUNK: usize = 16;

/// Which simulation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SimKind {
    /// Sends back every byte (a loopback plug).
    Echo,
    /// A Modbus RTU slave with this unit id (1..=247).
    Modbus {
        /// The unit id it answers to.
        unit: u8,
    },
    /// A line console with a prompt.
    Console,
}

/// `sim:echo`, `sim:modbus:UNIT`, `sim:console`, as
/// [`crate::DeviceSpec::parse`] reads them.
impl fmt::Display for SimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimKind::Echo => f.write_str("sim:echo"),
            SimKind::Modbus { unit } => write!(f, "sim:modbus:{unit}"),
            SimKind::Console => f.write_str("sim:console"),
        }
    }
}

enum Behaviour {
    Echo,
    Modbus(Box<ModbusSlave>),
    Console(Console),
}

struct SimState {
    behaviour: Behaviour,
    settings: SerialSettings,
    dtr: bool,
    rts: bool,
    break_on: bool,
    output: VecDeque<u8>,
    /// Responses are built here, then queued; kept to avoid an allocation
    /// per write.
    scratch: Vec<u8>,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl SimState {
    fn modem(&self) -> ModemStatus {
        ModemStatus {
            cts: self.rts,
            dsr: self.dtr,
            dcd: self.dtr,
            ri: false,
            dtr: self.dtr,
            rts: self.rts,
        }
    }
}

/// A simulated device.
pub struct SimDevice {
    kind: SimKind,
    // A std Mutex: held only for the synchronous processing of one call,
    // never across an await.
    state: Mutex<SimState>,
}

impl fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDevice")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    /// A freshly powered-on simulation with `settings` applied. DTR and RTS
    /// start on, as the kernel raises them when a tty is opened. A console
    /// queues its banner.
    pub fn open(kind: SimKind, settings: &SerialSettings) -> Result<SimDevice, SerialError> {
        let now = Instant::now();
        let mut output = VecDeque::new();
        let behaviour = match kind {
            SimKind::Echo => Behaviour::Echo,
            SimKind::Modbus { unit } => Behaviour::Modbus(Box::new(ModbusSlave::new(unit))),
            SimKind::Console => {
                let console = Console::new(now);
                let mut banner = Vec::new();
                console.banner(&mut banner);
                output.extend(banner);
                Behaviour::Console(console)
            }
        };
        Ok(SimDevice {
            kind,
            state: Mutex::new(SimState {
                behaviour,
                settings: settings.clone(),
                dtr: true,
                rts: true,
                break_on: false,
                output,
                scratch: Vec::new(),
                reader: None,
                writer: None,
            }),
        })
    }

    /// Which simulation this is.
    pub fn kind(&self) -> &SimKind {
        &self.kind
    }

    /// The settings last applied.
    pub fn settings(&self) -> SerialSettings {
        self.lock().settings.clone()
    }

    /// Bytes waiting to be read.
    pub fn queued_output(&self) -> usize {
        self.lock().output.len()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SerialDevice for SimDevice {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if state.output.is_empty() {
            if !buf.is_empty() {
                state.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(state.output.len());
        for (slot, byte) in buf.iter_mut().zip(state.output.drain(..n)) {
            *slot = byte;
        }
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut guard = self.lock();
        let state = &mut *guard;
        let free = OUTPUT_CAPACITY.saturating_sub(state.output.len());
        if free == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let now = Instant::now();
        let modem = state.modem();
        let accepted = match &mut state.behaviour {
            Behaviour::Echo => {
                let accepted = buf.get(..free.min(buf.len())).unwrap_or(buf);
                state.output.extend(accepted);
                accepted.len()
            }
            // Requests and commands can answer with more than they take:
            // feed small chunks while there is room.
            Behaviour::Modbus(slave) => {
                let mut accepted = 0;
                for chunk in buf.chunks(PROCESS_CHUNK) {
                    if state.output.len() >= OUTPUT_CAPACITY {
                        break;
                    }
                    slave.receive(chunk, now, &mut state.scratch);
                    state.output.extend(state.scratch.drain(..));
                    accepted += chunk.len();
                }
                accepted
            }
            Behaviour::Console(console) => {
                let status = ConsoleStatus {
                    settings: &state.settings,
                    modem,
                    break_on: state.break_on,
                };
                let mut accepted = 0;
                for chunk in buf.chunks(PROCESS_CHUNK) {
                    if state.output.len() >= OUTPUT_CAPACITY {
                        break;
                    }
                    console.receive(chunk, &status, now, &mut state.scratch);
                    state.output.extend(state.scratch.drain(..));
                    accepted += chunk.len();
                }
                accepted
            }
        };
        let reader = if state.output.is_empty() {
            None
        } else {
            state.reader.take()
        };
        drop(guard);
        if let Some(reader) = reader {
            reader.wake();
        }
        Poll::Ready(Ok(accepted))
    }

    fn apply(&self, settings: &SerialSettings) -> Result<(), SerialError> {
        self.lock().settings = settings.clone();
        Ok(())
    }

    fn set_dtr(&self, on: bool) -> Result<(), SerialError> {
        self.lock().dtr = on;
        Ok(())
    }

    fn set_rts(&self, on: bool) -> Result<(), SerialError> {
        self.lock().rts = on;
        Ok(())
    }

    fn modem_status(&self) -> Result<ModemStatus, SerialError> {
        Ok(self.lock().modem())
    }

    fn set_break(&self, on: bool) -> Result<(), SerialError> {
        self.lock().break_on = on;
        Ok(())
    }

    fn flush(&self, dir: FlushDirection) -> Result<(), SerialError> {
        let mut state = self.lock();
        if matches!(dir, FlushDirection::Output | FlushDirection::Both)
            && let Behaviour::Modbus(slave) = &mut state.behaviour
        {
            slave.clear_partial();
        }
        let mut writer = None;
        if matches!(dir, FlushDirection::Input | FlushDirection::Both) {
            state.output.clear();
            writer = state.writer.take();
        }
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
        Ok(())
    }

    fn has_modem_lines(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.kind.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn read_some(device: &dyn SerialDevice) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), device.read(&mut buf))
            .await
            .expect("device output within 5 s")
            .unwrap();
        buf[..n].to_vec()
    }

    /// Reads until `pattern` shows up, at most `limit` bytes.
    async fn read_until(device: &dyn SerialDevice, pattern: &str) -> String {
        let mut text = String::new();
        for _ in 0..64 {
            if text.contains(pattern) {
                return text;
            }
            text.push_str(&String::from_utf8_lossy(&read_some(device).await));
        }
        panic!("{pattern:?} not in {text:?}");
    }

    #[tokio::test]
    async fn echo_sends_back_what_is_written() {
        let device: Box<dyn SerialDevice> =
            Box::new(SimDevice::open(SimKind::Echo, &SerialSettings::default()).unwrap());
        device.write_all(b"hello").await.unwrap();
        assert_eq!(read_some(&*device).await, b"hello");
        assert_eq!(device.describe(), "sim:echo");
    }

    #[tokio::test]
    async fn read_waits_for_a_write() {
        let device: std::sync::Arc<SimDevice> = std::sync::Arc::new(
            SimDevice::open(SimKind::Echo, &SerialSettings::default()).unwrap(),
        );
        let reader = {
            let device = device.clone();
            tokio::spawn(async move {
                let device: &dyn SerialDevice = &*device;
                read_some(device).await
            })
        };
        tokio::task::yield_now().await;
        let writer: &dyn SerialDevice = &*device;
        writer.write_all(b"x").await.unwrap();
        assert_eq!(reader.await.unwrap(), b"x");
    }

    #[tokio::test]
    async fn echo_applies_backpressure_when_nobody_reads() {
        let device = SimDevice::open(SimKind::Echo, &SerialSettings::default()).unwrap();
        let dev: &dyn SerialDevice = &device;
        let chunk = vec![0x55u8; 16 * 1024];
        let mut written = 0;
        // Bounded: at most capacity / chunk + 1 successful writes.
        for _ in 0..(OUTPUT_CAPACITY / chunk.len() + 2) {
            match tokio::time::timeout(Duration::from_millis(20), dev.write(&chunk)).await {
                Ok(n) => written += n.unwrap(),
                Err(_pending) => break,
            }
        }
        assert_eq!(written, OUTPUT_CAPACITY);
        assert_eq!(device.queued_output(), OUTPUT_CAPACITY);
        // A read makes room and wakes the writer.
        let write = dev.write(&chunk);
        let mut buf = vec![0u8; 1000];
        let (w, r) = tokio::join!(write, dev.read(&mut buf));
        assert_eq!(r.unwrap(), 1000);
        assert_eq!(w.unwrap(), 1000);
    }

    #[tokio::test]
    async fn console_output_stays_bounded_under_a_flood() {
        let device = SimDevice::open(SimKind::Console, &SerialSettings::default()).unwrap();
        let dev: &dyn SerialDevice = &device;
        let flood = b"help\r".repeat(20_000);
        let mut offered = &flood[..];
        // Bounded: each accepted write takes at least one byte.
        for _ in 0..flood.len() {
            match tokio::time::timeout(Duration::from_millis(20), dev.write(offered)).await {
                Ok(n) => offered = &offered[n.unwrap()..],
                Err(_pending) => break,
            }
            if offered.is_empty() {
                break;
            }
        }
        assert!(
            !offered.is_empty(),
            "the console took a 100 kB flood without backpressure"
        );
        assert!(
            device.queued_output() < OUTPUT_CAPACITY + 16 * 1024,
            "{}",
            device.queued_output()
        );
    }

    #[tokio::test]
    async fn modbus_answers_a_read() {
        let device =
            SimDevice::open(SimKind::Modbus { unit: 1 }, &SerialSettings::default()).unwrap();
        let dev: &dyn SerialDevice = &device;
        dev.write_all(&[0x01, 0x04, 0x00, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        let mut crc = modbus::crc16(&[0x01, 0x04, 0x00, 0x02, 0x00, 0x01])
            .to_le_bytes()
            .to_vec();
        dev.write_all(&crc).await.unwrap();
        let response = read_some(dev).await;
        let mut expected = vec![0x01, 0x04, 0x02, 0x00, 0x02];
        crc = modbus::crc16(&expected).to_le_bytes().to_vec();
        expected.extend(crc);
        assert_eq!(response, expected);
        assert_eq!(dev.describe(), "sim:modbus:1");
    }

    #[tokio::test]
    async fn console_prints_banner_and_status() {
        let device = SimDevice::open(SimKind::Console, &SerialSettings::default()).unwrap();
        let dev: &dyn SerialDevice = &device;
        read_until(dev, console::PROMPT).await;
        let settings = SerialSettings {
            baud: crate::BaudRate::new(9600).unwrap(),
            ..Default::default()
        };
        dev.apply(&settings).unwrap();
        dev.set_rts(false).unwrap();
        dev.write_all(b"status\r\n").await.unwrap();
        let text = read_until(dev, "break:").await;
        assert!(text.contains("serial: 9600 8N1"), "{text:?}");
        assert!(text.contains("RTS off CTS off DSR on"), "{text:?}");
    }

    #[test]
    fn modem_lines_loop_back() {
        let device = SimDevice::open(SimKind::Echo, &SerialSettings::default()).unwrap();
        let m = device.modem_status().unwrap();
        assert!(m.dtr && m.rts && m.cts && m.dsr && m.dcd && !m.ri);
        device.set_rts(false).unwrap();
        device.set_dtr(false).unwrap();
        let m = device.modem_status().unwrap();
        assert!(!m.cts && !m.dsr && !m.dcd && !m.rts && !m.dtr);
        assert!(device.has_modem_lines());
    }

    #[test]
    fn records_settings_and_flushes_input() {
        let device = SimDevice::open(SimKind::Console, &SerialSettings::default()).unwrap();
        assert!(device.queued_output() > 0);
        device.flush(FlushDirection::Input).unwrap();
        assert_eq!(device.queued_output(), 0);
        let s = SerialSettings {
            flow: crate::FlowControl::DtrDsr,
            ..Default::default()
        };
        device.apply(&s).unwrap();
        assert_eq!(device.settings(), s);
    }
}
