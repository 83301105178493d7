//! The [`SerialDevice`] trait the engine drives, [`DeviceSpec`] (which
//! device a port uses) and [`open`].
//!
//! Three kinds of device implement the trait: a real tty ([`crate::tty`],
//! also a pty slave), in-process simulations ([`crate::sim`]) and a fake for
//! tests ([`crate::fake`]). This module does not reopen devices: when a read
//! fails or returns 0 the engine drops the device and calls [`open`] again
//! later.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::path::PathBuf;
use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::error::SerialError;
use crate::fake::FakeHandle;
use crate::modem::{FlushDirection, ModemStatus};
use crate::settings::SerialSettings;
use crate::sim::SimKind;

/// A serial device.
///
/// IO methods take `&self` so that a reader and a writer can be polled
/// concurrently in one task (`tokio::select!`). At most one task may wait in
/// `poll_read` and one in `poll_write` at a time: a second waiter replaces
/// the first one's wake-up (as with tokio's `AsyncFd::poll_read_ready`).
pub trait SerialDevice: Send + Sync + 'static {
    /// Read device output. `Ok(0)` or an `Err` means the device is gone
    /// (unplugged / pty closed): the engine reopens later. Use
    /// [`crate::error::io_is_missing`] to tell "gone" from other errors.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// As [`SerialDevice::poll_read`], appending at most `max` bytes to
    /// `buf` (which must have that much spare capacity reserved). The engine
    /// reads this way so each chunk can be passed on as `Bytes` without a
    /// copy. The default zero-fills and reads; the tty reads into the spare
    /// capacity directly.
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let start = buf.len();
        buf.resize(start + max, 0);
        let r = self.poll_read(cx, &mut buf[start..]);
        let n = match &r {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        r
    }
    /// Wait until a read would not block: data, end of file or an error.
    /// The engine waits for this before it sets a read buffer aside, so an
    /// idle port holds none. The default is ready at once.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Write to the device; returns how many bytes were accepted (at least 1
    /// for a non-empty buffer) or `Pending` while the device buffer is full.
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// As [`SerialDevice::poll_write`], from several buffers in order. The
    /// engine hands over every chunk it has queued, so a device whose
    /// queue has room for more than the first chunk takes it in one system
    /// call instead of one per chunk. The default writes the first
    /// non-empty buffer.
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(buf) => self.poll_write(cx, buf),
            None => Poll::Ready(Ok(0)),
        }
    }
    /// Apply all settings (termios + RS-485). A real tty reads the settings
    /// back and fails if the driver changed the baud rate or dropped RTS/CTS
    /// or mark/space parity; on failure the previous line settings stay.
    fn apply(&self, settings: &SerialSettings) -> Result<(), SerialError>;
    /// Set DTR. Devices without modem lines (a pty) keep the requested state
    /// in software and return `Ok`.
    fn set_dtr(&self, on: bool) -> Result<(), SerialError>;
    /// Set RTS. Devices without modem lines (a pty) keep the requested state
    /// in software and return `Ok`.
    fn set_rts(&self, on: bool) -> Result<(), SerialError>;
    /// Input and output line state. Devices without modem lines (a pty)
    /// return `Ok` with the software DTR/RTS and all inputs false; check
    /// [`SerialDevice::has_modem_lines`] to know whether the inputs are real.
    fn modem_status(&self) -> Result<ModemStatus, SerialError>;
    /// Start (`true`) or stop (`false`) sending a break.
    fn set_break(&self, on: bool) -> Result<(), SerialError>;
    /// Discard buffered data.
    fn flush(&self, dir: FlushDirection) -> Result<(), SerialError>;
    /// Suspend (`true`) or resume (`false`) transmission, as if XOFF or XON
    /// had been received (`tcflow`; Real COM's SETXOFF/SETXON). Devices
    /// that cannot hold their output ignore it.
    fn hold_output(&self, _on: bool) -> Result<(), SerialError> {
        Ok(())
    }
    /// Bytes the driver has received and not yet handed over (`TIOCINQ`);
    /// 0 where unknown.
    fn input_queued(&self) -> Result<u32, SerialError> {
        Ok(0)
    }
    /// Bytes written and not yet sent on the line (`TIOCOUTQ`); 0 where
    /// unknown. Real COM's drain (WAIT_OQUEUE) waits for this to reach 0.
    fn output_queued(&self) -> Result<u32, SerialError> {
        Ok(0)
    }
    /// False when modem lines are emulated in software (a pty).
    fn has_modem_lines(&self) -> bool;
    /// For logs and the UI: the path, or "sim:echo".
    fn describe(&self) -> String;
}

impl dyn SerialDevice {
    /// Reads some bytes; see [`SerialDevice::poll_read`].
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Writes some bytes; see [`SerialDevice::poll_write`].
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes the whole buffer.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }
}

/// Which device a port uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A tty device node, e.g. `/dev/ttyUSB0` or a pty slave `/dev/pts/3`.
    Path(PathBuf),
    /// A simulated device inside ttyward ("sim:echo", "sim:modbus:1",
    /// "sim:console").
    Sim(SimKind),
    /// A test double driven through its handle.
    Fake(FakeHandle),
}

impl DeviceSpec {
    /// Parses a device as written in the configuration:
    ///
    /// * `sim:echo`, `sim:console`, `sim:modbus` (unit 1) or
    ///   `sim:modbus:UNIT` (UNIT 1..=247);
    /// * anything else is a device path.
    ///
    /// Fake devices exist only in tests and cannot be written as text.
    pub fn parse(s: &str) -> Result<Self, SerialError> {
        let invalid = |reason: String| SerialError::InvalidSetting {
            field: "device",
            reason,
        };
        if s.trim().is_empty() {
            return Err(invalid(
                "the device is empty; use a path such as /dev/ttyUSB0 or sim:echo".into(),
            ));
        }
        if s.contains('\0') {
            return Err(invalid(format!(
                "{s:?} contains a NUL byte; use a device path"
            )));
        }
        let Some(kind) = s.strip_prefix("sim:") else {
            return Ok(DeviceSpec::Path(PathBuf::from(s)));
        };
        let sim = match kind {
            "echo" => SimKind::Echo,
            "console" => SimKind::Console,
            "modbus" => SimKind::Modbus { unit: 1 },
            other => match other.strip_prefix("modbus:") {
                Some(unit) => match unit.parse::<u8>() {
                    Ok(unit @ 1..=247) => SimKind::Modbus { unit },
                    _ => {
                        return Err(invalid(format!(
                            "{unit:?} is not a Modbus unit id; use 1 to 247, e.g. sim:modbus:1"
                        )));
                    }
                },
                None => {
                    return Err(invalid(format!(
                        "unknown simulated device {s:?}; use sim:echo, sim:modbus, sim:modbus:UNIT or sim:console"
                    )));
                }
            },
        };
        Ok(DeviceSpec::Sim(sim))
    }
}

/// The text [`DeviceSpec::parse`] reads back (a fake shows as `fake:N`).
impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Path(path) => write!(f, "{}", path.display()),
            DeviceSpec::Sim(kind) => write!(f, "{kind}"),
            DeviceSpec::Fake(handle) => write!(f, "{}", handle.describe()),
        }
    }
}

/// Opens and configures a device.
///
/// Must be called inside a tokio runtime (ttys register with its reactor);
/// returns [`SerialError::NoRuntime`] otherwise. A tty is opened exclusively
/// (see [`crate::tty`]). A fake opens a new [`crate::fake::FakeDevice`]
/// connected to its handle, or fails with a "missing" error while the handle
/// is unplugged.
pub fn open(
    spec: &DeviceSpec,
    settings: &SerialSettings,
) -> Result<Box<dyn SerialDevice>, SerialError> {
    match spec {
        DeviceSpec::Path(path) => Ok(Box::new(crate::tty::TtyDevice::open(path, settings)?)),
        DeviceSpec::Sim(kind) => Ok(Box::new(crate::sim::SimDevice::open(
            kind.clone(),
            settings,
        )?)),
        DeviceSpec::Fake(handle) => Ok(Box::new(handle.open_device(settings)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics_and_display_round_trips(text in "(sim:)?[a-z0-9:/]{0,12}") {
            if let Ok(spec) = DeviceSpec::parse(&text) {
                prop_assert_eq!(DeviceSpec::parse(&spec.to_string()).unwrap(), spec);
            }
        }
    }

    #[test]
    fn parses_sim_devices() {
        assert_eq!(
            DeviceSpec::parse("sim:echo").unwrap(),
            DeviceSpec::Sim(SimKind::Echo)
        );
        assert_eq!(
            DeviceSpec::parse("sim:console").unwrap(),
            DeviceSpec::Sim(SimKind::Console)
        );
        assert_eq!(
            DeviceSpec::parse("sim:modbus").unwrap(),
            DeviceSpec::Sim(SimKind::Modbus { unit: 1 })
        );
        assert_eq!(
            DeviceSpec::parse("sim:modbus:17").unwrap(),
            DeviceSpec::Sim(SimKind::Modbus { unit: 17 })
        );
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            DeviceSpec::parse("/dev/ttyUSB0").unwrap(),
            DeviceSpec::Path("/dev/ttyUSB0".into())
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "  ",
            "sim:",
            "sim:foo",
            "sim:modbus:0",
            "sim:modbus:248",
            "sim:modbus:x",
            "a\0b",
        ] {
            let err = DeviceSpec::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    SerialError::InvalidSetting {
                        field: "device",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "sim:echo",
            "sim:console",
            "sim:modbus:1",
            "sim:modbus:247",
            "/dev/ttyS0",
        ] {
            let spec = DeviceSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(DeviceSpec::parse(&spec.to_string()).unwrap(), spec);
        }
        assert_eq!(
            DeviceSpec::parse("sim:modbus").unwrap().to_string(),
            "sim:modbus:1"
        );
    }
}
