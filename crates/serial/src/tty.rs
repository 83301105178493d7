//! A real serial port: a Linux tty device node (`/dev/ttyS0`,
//! `/dev/ttyUSB0`, ...), which also works on a pty slave for tests.
//!
//! # Opening
//!
//! The device is opened with `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC` and held
//! exclusively, like ser2net does, so that two programs never share a port:
//!
//! * `flock(LOCK_EX|LOCK_NB)` on the open file: a second ttyward port, or
//!   pyserial with `exclusive=True`, fails with [`SerialError::Busy`]. This
//!   binds root too.
//! * `TIOCEXCL`: further `open(2)` calls of the device by other programs fail
//!   with `EBUSY` (the kernel lets root through, hence the lock above).
//!
//! UUCP lock files (`/var/lock/LCK..ttyS0`) are not used.
//!
//! The port is put in raw mode (as `cfmakeraw(3)`, plus `CLOCAL|CREAD`,
//! `VMIN` 1, `VTIME` 0; no input parity check, a received break reads as a
//! NUL byte) and the settings are applied. The kernel raises DTR and RTS on
//! open and, with `HUPCL` left set, drops them on close. Dropping the device
//! closes it; a driver may wait up to its `closing_wait` (30 s by default)
//! for unsent output, so flush [`FlushDirection::Output`] first when the data
//! is not wanted.
//!
//! # Settings
//!
//! Everything goes through `termios2` (`TCGETS2`/`TCSETS2`) with `BOTHER`,
//! so any baud rate in range can be requested. Data bits map to `CSIZE`,
//! parity to `PARENB`/`PARODD`/`CMSPAR` (mark = `CMSPAR|PARODD`, space =
//! `CMSPAR`), 1.5 and 2 stop bits both to `CSTOPB` (the UART sends 1.5 with 5
//! data bits), RTS/CTS to `CRTSCTS`, XON/XOFF to `IXON|IXOFF`. Linux termios
//! has no DTR/DSR flow control, so [`FlowControl::DtrDsr`] is refused with
//! [`SerialError::Unsupported`] before anything changes (nothing is
//! emulated). After setting, the termios are read back: if the driver changed
//! the baud rate by more than 3 % or dropped `CRTSCTS` or `CMSPAR`, the
//! previous settings are restored and `apply` fails.
//!
//! RS-422/485 use `TIOCSRS485`: 2-wire = `SER_RS485_ENABLED`, 4-wire adds
//! `SER_RS485_RX_DURING_TX`, RS-422 adds `SER_RS485_MODE_RS422` (Linux 6.8+;
//! older kernels drop that flag and run it as 4-wire RS-485), plus the RTS
//! flags and delays of [`Rs485Settings`](crate::Rs485Settings). A driver
//! without RS-485 support (a pty, most USB adapters) gives
//! [`SerialError::Unsupported`]; this step runs before the termios, so then
//! nothing changed. RS-232 switches RS-485 off if the driver has it on.
//!
//! # Modem lines
//!
//! `TIOCMGET`/`TIOCMBIS`/`TIOCMBIC`. A pty has none (`ENOTTY`/`EINVAL`): then
//! [`SerialDevice::has_modem_lines`] is false, DTR/RTS are kept in software
//! and [`SerialDevice::modem_status`] reports them with all inputs false.
//!
//! # IO
//!
//! Through tokio's `AsyncFd`, registered for reads only: one `read(2)` per
//! readiness, into the caller's buffer, readiness cleared on `EAGAIN`.
//! Writes go straight to `write(2)` and wait for writability only when the
//! output queue is full (`WriteWatch`): a tty sends a write wake-up after
//! nearly every write, and watching for it would wake us for nothing.
//! `EIO` (a pty slave whose master
//! closed, an unplugged USB adapter after hangup) is returned as the error;
//! [`crate::error::io_is_missing`] classifies it as "device gone".

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::device::SerialDevice;
use crate::error::SerialError;
use crate::modem::{FlushDirection, ModemStatus};
use crate::settings::{DataBits, FlowControl, Interface, Parity, SerialSettings, StopBits};
use crate::sys;
use crate::write_watch::WriteWatch;

/// An open tty device.
#[derive(Debug)]
pub struct TtyDevice {
    /// Registered for reads only.
    fd: AsyncFd<File>,
    writes: WriteWatch,
    path: PathBuf,
    has_lines: bool,
    /// Software DTR/RTS, used when the device has no modem lines.
    dtr: AtomicBool,
    rts: AtomicBool,
}

impl TtyDevice {
    /// Opens `path` exclusively, sets raw mode and applies `settings`.
    /// Must be called inside a tokio runtime.
    pub fn open(path: &Path, settings: &SerialSettings) -> Result<TtyDevice, SerialError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SerialError::NoRuntime);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EBUSY) => SerialError::Busy {
                    path: path.to_owned(),
                },
                _ => SerialError::Open {
                    path: path.to_owned(),
                    source,
                },
            })?;
        match sys::tcgets2(file.as_fd()) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => {
                return Err(SerialError::NotATty {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(SerialError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(SerialError::Busy {
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(SerialError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        sys::ioctl_no_arg(file.as_fd(), libc::TIOCEXCL).map_err(|source| SerialError::Open {
            path: path.to_owned(),
            source,
        })?;
        let has_lines = sys::tiocmget(file.as_fd()).is_ok();
        // Reads only: writes go straight to write(2), see WriteWatch.
        let fd =
            sys::register_async(file, Interest::READABLE).map_err(|source| SerialError::Open {
                path: path.to_owned(),
                source,
            })?;
        let device = TtyDevice {
            fd,
            writes: WriteWatch::default(),
            path: path.to_owned(),
            has_lines,
            dtr: AtomicBool::new(true),
            rts: AtomicBool::new(true),
        };
        device.apply(settings)?;
        Ok(device)
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    fn apply_rs485(&self, settings: &SerialSettings) -> Result<(), SerialError> {
        let fd = self.raw();
        let Some(mut conf) = rs485_config(settings) else {
            // RS-232: switch RS-485 off if another program or an earlier
            // configuration left it on. Drivers without RS-485 support fail
            // TIOCGRS485, and then there is nothing to switch off.
            if let Ok(mut conf) = sys::get_rs485(fd)
                && conf.flags & sys::SER_RS485_ENABLED != 0
            {
                conf.flags = 0;
                sys::set_rs485(fd, &mut conf).map_err(|source| SerialError::Rejected {
                    what: "RS-232 mode",
                    source,
                })?;
            }
            return Ok(());
        };
        let what = match settings.interface {
            Interface::Rs422 => "RS-422 mode",
            _ => "RS-485 mode",
        };
        match sys::set_rs485(fd, &mut conf) {
            Ok(()) if conf.flags & sys::SER_RS485_ENABLED != 0 => Ok(()),
            // The driver sanitised the request down to "disabled".
            Ok(()) => Err(SerialError::Unsupported { what }),
            Err(e) if is_unsupported_ioctl(&e) => Err(SerialError::Unsupported { what }),
            Err(source) => Err(SerialError::Rejected { what, source }),
        }
    }

    fn apply_termios(&self, settings: &SerialSettings) -> Result<(), SerialError> {
        let fd = self.raw();
        let old = sys::tcgets2(fd)?;
        let new = encode_termios(&old, settings);
        sys::tcsets2(fd, &new).map_err(|source| match source.raw_os_error() {
            Some(libc::EINVAL) => SerialError::InvalidSetting {
                field: "baud",
                reason: format!(
                    "the driver refused {settings}: {source}; choose settings this port supports"
                ),
            },
            _ => SerialError::Rejected {
                what: "line settings",
                source,
            },
        })?;
        let got = sys::tcgets2(fd)?;
        let problem = check_read_back(&new, &got, settings);
        if let Some(err) = problem {
            // Best effort: the error to report is the one above.
            let _ = sys::tcsets2(fd, &old);
            return Err(err);
        }
        Ok(())
    }
}

impl Drop for TtyDevice {
    fn drop(&mut self) {
        // TIOCEXCL lives on the tty, not on this file: a pty slave kept open
        // elsewhere would stay exclusive after we close. Best effort.
        let _ = sys::ioctl_no_arg(self.raw(), libc::TIOCNXCL);
    }
}

impl AsFd for TtyDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.raw()
    }
}

impl SerialDevice for TtyDevice {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            // try_io clears the readiness when read(2) says EAGAIN; the next
            // poll_read_ready then registers the waker.
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Ok(n)) if n > 0 && n < buf.len() => {
                    // A short read emptied the input queue: skip the read(2)
                    // that would only say EAGAIN and wait for the next
                    // readiness event instead (as tokio does for sockets).
                    guard.clear_ready();
                    return Poll::Ready(Ok(n));
                }
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The guard is dropped without clearing: the readiness stays for
        // the read that follows.
        let _guard = ready!(self.fd.poll_read_ready(cx))?;
        Poll::Ready(Ok(()))
    }

    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| sys::read_append(fd.get_ref().as_fd(), buf, max)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Ok(n)) if n > 0 && n < max => {
                    // As in poll_read: a short read emptied the queue.
                    guard.clear_ready();
                    return Poll::Ready(Ok(n));
                }
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writes.poll_write(cx, self.fd.get_ref(), buf)
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.writes.poll_write_vectored(cx, self.fd.get_ref(), bufs)
    }

    fn apply(&self, settings: &SerialSettings) -> Result<(), SerialError> {
        settings.check_for_apply()?;
        if settings.flow == FlowControl::DtrDsr {
            return Err(SerialError::Unsupported {
                what: "DTR/DSR flow control (Linux termios has none)",
            });
        }
        self.apply_rs485(settings)?;
        self.apply_termios(settings)
    }

    fn set_dtr(&self, on: bool) -> Result<(), SerialError> {
        if self.has_lines {
            sys::tiocm_set(self.raw(), on, libc::TIOCM_DTR)?;
        }
        self.dtr.store(on, Ordering::Relaxed);
        Ok(())
    }

    fn set_rts(&self, on: bool) -> Result<(), SerialError> {
        if self.has_lines {
            sys::tiocm_set(self.raw(), on, libc::TIOCM_RTS)?;
        }
        self.rts.store(on, Ordering::Relaxed);
        Ok(())
    }

    fn modem_status(&self) -> Result<ModemStatus, SerialError> {
        if !self.has_lines {
            return Ok(ModemStatus {
                dtr: self.dtr.load(Ordering::Relaxed),
                rts: self.rts.load(Ordering::Relaxed),
                ..ModemStatus::default()
            });
        }
        let bits = sys::tiocmget(self.raw())?;
        Ok(ModemStatus {
            cts: bits & libc::TIOCM_CTS != 0,
            dsr: bits & libc::TIOCM_DSR != 0,
            dcd: bits & libc::TIOCM_CAR != 0,
            ri: bits & libc::TIOCM_RNG != 0,
            dtr: bits & libc::TIOCM_DTR != 0,
            rts: bits & libc::TIOCM_RTS != 0,
        })
    }

    fn set_break(&self, on: bool) -> Result<(), SerialError> {
        let request = if on { libc::TIOCSBRK } else { libc::TIOCCBRK };
        sys::ioctl_no_arg(self.raw(), request)?;
        Ok(())
    }

    fn flush(&self, dir: FlushDirection) -> Result<(), SerialError> {
        use nix::sys::termios::{FlushArg, tcflush};
        let arg = match dir {
            FlushDirection::Input => FlushArg::TCIFLUSH,
            FlushDirection::Output => FlushArg::TCOFLUSH,
            FlushDirection::Both => FlushArg::TCIOFLUSH,
        };
        tcflush(self.raw(), arg).map_err(io::Error::from)?;
        Ok(())
    }

    fn hold_output(&self, on: bool) -> Result<(), SerialError> {
        use nix::sys::termios::{FlowArg, tcflow};
        let arg = if on { FlowArg::TCOOFF } else { FlowArg::TCOON };
        tcflow(self.raw(), arg).map_err(io::Error::from)?;
        Ok(())
    }

    fn input_queued(&self) -> Result<u32, SerialError> {
        Ok(sys::queued(self.raw(), false)?)
    }

    fn output_queued(&self) -> Result<u32, SerialError> {
        Ok(sys::queued(self.raw(), true)?)
    }

    fn has_modem_lines(&self) -> bool {
        self.has_lines
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Errors that mean "this driver has no such ioctl".
fn is_unsupported_ioctl(e: &io::Error) -> bool {
    // 515 is the kernel-internal ENOIOCTLCMD, which leaks from some drivers.
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTTY | libc::EOPNOTSUPP | 515)
    )
}

/// The `struct serial_rs485` for `settings`, or `None` for RS-232.
fn rs485_config(settings: &SerialSettings) -> Option<sys::SerialRs485> {
    let mode = match settings.interface {
        Interface::Rs232 => return None,
        Interface::Rs485TwoWire => 0,
        Interface::Rs485FourWire => sys::SER_RS485_RX_DURING_TX,
        Interface::Rs422 => sys::SER_RS485_RX_DURING_TX | sys::SER_RS485_MODE_RS422,
    };
    let rs485 = &settings.rs485;
    let mut flags = sys::SER_RS485_ENABLED | mode;
    if rs485.rts_on_send {
        flags |= sys::SER_RS485_RTS_ON_SEND;
    }
    if rs485.rts_after_send {
        flags |= sys::SER_RS485_RTS_AFTER_SEND;
    }
    Some(sys::SerialRs485 {
        flags,
        delay_rts_before_send: rs485.delay_rts_before_send_ms,
        delay_rts_after_send: rs485.delay_rts_after_send_ms,
        padding: [0; 5],
    })
}

/// `base` in raw mode with `settings` applied.
pub(crate) fn encode_termios(base: &libc::termios2, settings: &SerialSettings) -> libc::termios2 {
    let mut t = *base;
    // Raw mode as cfmakeraw(3), and no software flow or parity checking
    // unless asked for below.
    t.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IUCLC
        | libc::IXON
        | libc::IXOFF
        | libc::IXANY
        | libc::INPCK);
    t.c_oflag &= !libc::OPOST;
    t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
    t.c_cflag &= !(libc::CSIZE
        | libc::PARENB
        | libc::PARODD
        | libc::CMSPAR
        | libc::CSTOPB
        | libc::CRTSCTS
        | libc::CBAUD
        | libc::CIBAUD);
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;

    // BOTHER for both directions: the driver takes the rate from
    // c_ospeed/c_ispeed, standard or not.
    t.c_cflag |= libc::BOTHER | (libc::BOTHER << libc::IBSHIFT);
    t.c_ospeed = settings.baud.get();
    t.c_ispeed = settings.baud.get();

    t.c_cflag |= match settings.data_bits {
        DataBits::Five => libc::CS5,
        DataBits::Six => libc::CS6,
        DataBits::Seven => libc::CS7,
        DataBits::Eight => libc::CS8,
    };
    t.c_cflag |= match settings.parity {
        Parity::None => 0,
        Parity::Odd => libc::PARENB | libc::PARODD,
        Parity::Even => libc::PARENB,
        Parity::Mark => libc::PARENB | libc::CMSPAR | libc::PARODD,
        Parity::Space => libc::PARENB | libc::CMSPAR,
    };
    if settings.stop_bits != StopBits::One {
        t.c_cflag |= libc::CSTOPB;
    }
    match settings.flow {
        FlowControl::None | FlowControl::DtrDsr => {}
        FlowControl::RtsCts => t.c_cflag |= libc::CRTSCTS,
        FlowControl::XonXoff => t.c_iflag |= libc::IXON | libc::IXOFF,
    }
    t
}

/// Compares what the driver kept with what was set. Data bits and parity
/// enable are not compared: the pty driver forces CS8 and clears PARENB.
fn check_read_back(
    wanted: &libc::termios2,
    got: &libc::termios2,
    settings: &SerialSettings,
) -> Option<SerialError> {
    let requested = u64::from(wanted.c_ospeed);
    let actual = u64::from(got.c_ospeed);
    // Within 3 %: what a UART's divisor can be off and still work.
    if actual.abs_diff(requested) * 100 > requested * 3 {
        return Some(SerialError::InvalidSetting {
            field: "baud",
            reason: format!(
                "the driver set {actual} instead of {requested} baud; choose a rate this port supports"
            ),
        });
    }
    if wanted.c_cflag & libc::CRTSCTS != 0 && got.c_cflag & libc::CRTSCTS == 0 {
        return Some(SerialError::Unsupported {
            what: "RTS/CTS flow control",
        });
    }
    if matches!(settings.parity, Parity::Mark | Parity::Space) && got.c_cflag & libc::CMSPAR == 0 {
        return Some(SerialError::Unsupported {
            what: "mark and space parity",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{BaudRate, Rs485Settings};

    fn cooked() -> libc::termios2 {
        let mut t = sys::termios2_zeroed();
        t.c_iflag = libc::ICRNL | libc::IXON | libc::BRKINT;
        t.c_oflag = libc::OPOST | libc::ONLCR;
        t.c_lflag = libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN;
        t.c_cflag = libc::B9600 | libc::CS7 | libc::PARENB | libc::HUPCL;
        t
    }

    #[test]
    fn encodes_raw_mode_and_keeps_hupcl() {
        let t = encode_termios(&cooked(), &SerialSettings::default());
        assert_eq!(t.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG), 0);
        assert_eq!(t.c_oflag & libc::OPOST, 0);
        assert_eq!(t.c_iflag & (libc::ICRNL | libc::IXON | libc::BRKINT), 0);
        assert_eq!(t.c_cflag & libc::CSIZE, libc::CS8);
        assert_eq!(t.c_cflag & (libc::PARENB | libc::CSTOPB | libc::CRTSCTS), 0);
        assert_ne!(t.c_cflag & libc::HUPCL, 0);
        assert_ne!(t.c_cflag & libc::CLOCAL, 0);
        assert_ne!(t.c_cflag & libc::CREAD, 0);
        assert_eq!((t.c_cc[libc::VMIN], t.c_cc[libc::VTIME]), (1, 0));
    }

    #[test]
    fn encodes_any_baud_rate_with_bother() {
        let s = SerialSettings {
            baud: BaudRate::new(250_000).unwrap(),
            ..Default::default()
        };
        let t = encode_termios(&cooked(), &s);
        assert_eq!(t.c_cflag & libc::CBAUD, libc::BOTHER);
        assert_eq!((t.c_cflag >> libc::IBSHIFT) & libc::CBAUD, libc::BOTHER);
        assert_eq!((t.c_ispeed, t.c_ospeed), (250_000, 250_000));
    }

    #[test]
    fn encodes_character_format() {
        let s = SerialSettings {
            data_bits: DataBits::Seven,
            parity: Parity::Even,
            stop_bits: StopBits::Two,
            ..Default::default()
        };
        let t = encode_termios(&cooked(), &s);
        assert_eq!(t.c_cflag & libc::CSIZE, libc::CS7);
        assert_eq!(
            t.c_cflag & (libc::PARENB | libc::PARODD | libc::CMSPAR),
            libc::PARENB
        );
        assert_ne!(t.c_cflag & libc::CSTOPB, 0);

        let five = SerialSettings {
            data_bits: DataBits::Five,
            stop_bits: StopBits::OnePointFive,
            ..Default::default()
        };
        let t = encode_termios(&cooked(), &five);
        assert_eq!(t.c_cflag & libc::CSIZE, libc::CS5);
        assert_ne!(t.c_cflag & libc::CSTOPB, 0);
    }

    #[test]
    fn encodes_mark_and_space_parity() {
        let parity_bits = |parity| {
            let t = encode_termios(
                &cooked(),
                &SerialSettings {
                    parity,
                    ..Default::default()
                },
            );
            t.c_cflag & (libc::PARENB | libc::PARODD | libc::CMSPAR)
        };
        assert_eq!(parity_bits(Parity::Odd), libc::PARENB | libc::PARODD);
        assert_eq!(
            parity_bits(Parity::Mark),
            libc::PARENB | libc::PARODD | libc::CMSPAR
        );
        assert_eq!(parity_bits(Parity::Space), libc::PARENB | libc::CMSPAR);
        assert_eq!(parity_bits(Parity::None), 0);
    }

    #[test]
    fn encodes_flow_control() {
        let flow_bits = |flow| {
            let t = encode_termios(
                &cooked(),
                &SerialSettings {
                    flow,
                    ..Default::default()
                },
            );
            (
                t.c_cflag & libc::CRTSCTS != 0,
                t.c_iflag & (libc::IXON | libc::IXOFF),
            )
        };
        assert_eq!(flow_bits(FlowControl::RtsCts), (true, 0));
        assert_eq!(
            flow_bits(FlowControl::XonXoff),
            (false, libc::IXON | libc::IXOFF)
        );
        assert_eq!(flow_bits(FlowControl::None), (false, 0));
    }

    #[test]
    fn maps_interfaces_to_rs485_flags() {
        let conf = |interface| {
            rs485_config(&SerialSettings {
                interface,
                ..Default::default()
            })
        };
        assert_eq!(conf(Interface::Rs232), None);
        let two = conf(Interface::Rs485TwoWire).unwrap();
        assert_eq!(
            two.flags,
            sys::SER_RS485_ENABLED | sys::SER_RS485_RTS_ON_SEND
        );
        let four = conf(Interface::Rs485FourWire).unwrap();
        assert_ne!(four.flags & sys::SER_RS485_RX_DURING_TX, 0);
        let rs422 = conf(Interface::Rs422).unwrap();
        assert_ne!(rs422.flags & sys::SER_RS485_MODE_RS422, 0);

        let s = SerialSettings {
            interface: Interface::Rs485TwoWire,
            rs485: Rs485Settings {
                rts_on_send: false,
                rts_after_send: true,
                delay_rts_before_send_ms: 3,
                delay_rts_after_send_ms: 7,
            },
            ..Default::default()
        };
        let c = rs485_config(&s).unwrap();
        assert_eq!(
            c.flags,
            sys::SER_RS485_ENABLED | sys::SER_RS485_RTS_AFTER_SEND
        );
        assert_eq!((c.delay_rts_before_send, c.delay_rts_after_send), (3, 7));
    }

    #[test]
    fn read_back_detects_a_changed_baud_rate() {
        let s = SerialSettings {
            baud: BaudRate::new(3_000_000).unwrap(),
            ..Default::default()
        };
        let wanted = encode_termios(&cooked(), &s);
        let mut got = wanted;
        assert!(check_read_back(&wanted, &got, &s).is_none());
        got.c_ospeed = 2_950_000; // within 3 %
        assert!(check_read_back(&wanted, &got, &s).is_none());
        got.c_ospeed = 115_200;
        let err = check_read_back(&wanted, &got, &s).unwrap();
        assert!(matches!(
            err,
            SerialError::InvalidSetting { field: "baud", .. }
        ));
    }

    #[test]
    fn read_back_detects_dropped_flow_and_mark_parity() {
        let s = SerialSettings {
            flow: FlowControl::RtsCts,
            parity: Parity::Mark,
            ..Default::default()
        };
        let wanted = encode_termios(&cooked(), &s);
        let mut got = wanted;
        got.c_cflag &= !libc::CRTSCTS;
        assert!(matches!(
            check_read_back(&wanted, &got, &s),
            Some(SerialError::Unsupported { .. })
        ));
        let mut got = wanted;
        got.c_cflag &= !libc::CMSPAR;
        assert!(matches!(
            check_read_back(&wanted, &got, &s),
            Some(SerialError::Unsupported { .. })
        ));
        // The pty driver's CS8 / no PARENB is not an error.
        let mut got = wanted;
        got.c_cflag &= !(libc::PARENB | libc::CSIZE);
        got.c_cflag |= libc::CS8;
        assert!(check_read_back(&wanted, &got, &s).is_none());
    }
}
