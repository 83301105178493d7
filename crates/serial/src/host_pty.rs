//! The host side of `ttyward attach`: a pseudo-terminal that programs open
//! like a local serial port, and that reports what they do to it.
//!
//! [`HostPty::open`] creates a master/slave pair in raw mode, sets `EXTPROC`
//! on the slave and packet mode (`TIOCPKT`) on the master, and keeps one
//! slave descriptor open so the master never reads `EIO` while no program
//! has the slave open. Packet mode puts a status byte in front of every read
//! of the master: 0 for data, otherwise the bits below. With `EXTPROC` set,
//! the kernel adds `TIOCPKT_IOCTL` whenever a program changes the slave's
//! termios (`tcsetattr`, `stty`), and [`HostPty::next_event`] then reads the
//! new termios (through the master, with `TCGETS2`, so custom `BOTHER` rates
//! come out exactly) and turns them into [`PtyEvent`]s:
//!
//! | what the program does | status bit | event |
//! |---|---|---|
//! | `write` | data | [`PtyEvent::Data`] |
//! | `tcsetattr` with a new speed, stop bits, flow, parity | `TIOCPKT_IOCTL` | [`PtyEvent::Settings`] |
//! | `tcsetattr` with speed `B0` (the termios way to hang up) | `TIOCPKT_IOCTL` | [`PtyEvent::Dtr`]`(false)`; a non-zero speed later gives `Dtr(true)` |
//! | `tcflush(TCIFLUSH)` / `tcflush(TCOFLUSH)` | `TIOCPKT_FLUSHREAD` / `FLUSHWRITE` | [`PtyEvent::Flush`] with [`FlushDirection::Input`] / `Output` / `Both` |
//! | `tcflow(TCOOFF)` / `tcflow(TCOON)`, or ^S / ^Q with `IXON` | `TIOCPKT_STOP` / `START` | [`PtyEvent::Stop`] / [`PtyEvent::Start`] |
//!
//! # What a pty can not report
//!
//! Checked on Linux 6.18 with a small test program (and pinned by the tests
//! at the bottom of this module):
//!
//! * **Data bits and parity enable.** The pty driver's `set_termios` clears
//!   `PARENB` and forces `CS8` before anyone can read them, so 7E1 and 8N1
//!   look the same. What survives is `PARODD`, `CMSPAR` and `INPCK` (input
//!   parity checking, which libmodbus — so mbpoll — sets whenever parity is
//!   on). The parity is therefore inferred: `CMSPAR` → mark or space,
//!   `PARODD` → odd, `INPCK` alone → even, none of them → the caller's
//!   [`Assumptions::parity`]; data bits come from [`Assumptions::data_bits`].
//!   pyserial (like any program that does not check parity on input) sets
//!   even parity without `INPCK`: give `--parity even` to `ttyward attach`
//!   for it.
//! * **DTR and RTS.** `TIOCMGET`, `TIOCMSET`, `TIOCMBIS` and `TIOCMBIC` on
//!   a pty slave fail with `ENOTTY` and leave no trace on the master.
//!   Only hanging up with speed `B0` is seen (as `Dtr(false)`).
//! * **Break.** `tcsendbreak` and `TIOCSBRK`/`TIOCCBRK` succeed on a pty
//!   slave and do nothing: no status bit, nothing to read.
//! * **Changes that keep `EXTPROC` off.** A program that clears `EXTPROC`
//!   (some write `c_lflag = 0`) is reported once, for that change; the
//!   reader then sets `EXTPROC` again through the master. A second change
//!   made before that is not reported.
//! * **Order against data.** A status byte is returned before data the
//!   program wrote earlier and that is still unread, so a settings change
//!   can overtake the last bytes written at the old settings.
//!
//! What this module does not do: networking, reconnecting, symlinks.
//! Inputs the program could read (CTS, DSR, DCD, RI) cannot be shown on a
//! pty either.

use std::fs::{File, OpenOptions};
use std::future::poll_fn;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

use crate::modem::FlushDirection;
use crate::settings::{BaudRate, DataBits, FlowControl, Parity, SerialSettings, StopBits};
use crate::sys;
use crate::write_watch::WriteWatch;

/// Packet-mode status bits (`<asm-generic/ioctls.h>`), not exported by
/// `libc`.
const TIOCPKT_FLUSHREAD: u8 = 0x01;
const TIOCPKT_FLUSHWRITE: u8 = 0x02;
const TIOCPKT_STOP: u8 = 0x04;
const TIOCPKT_START: u8 = 0x08;
const TIOCPKT_IOCTL: u8 = 0x40;

/// Largest read from the master (status byte included).
const READ_SIZE: usize = 16 * 1024;

/// What to report for the settings a pty hides (see the module
/// documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Assumptions {
    /// Data bits: the pty always shows 8.
    pub data_bits: DataBits,
    /// Parity when the termios give no hint (`INPCK`, `PARODD`, `CMSPAR`
    /// all clear).
    pub parity: Parity,
}

/// One thing a program did to the pty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtyEvent {
    /// Bytes the program wrote.
    Data(Bytes),
    /// The line settings changed (speed, character format, flow control).
    /// Only sent when something differs from the last report.
    Settings(SerialSettings),
    /// `false`: the program set speed `B0` (hang up, drop DTR); `true`: it
    /// set a speed again after `B0`.
    Dtr(bool),
    /// The program discarded buffered data.
    Flush(FlushDirection),
    /// The program stopped its output (`tcflow(TCOOFF)`, ^S).
    Stop,
    /// The program restarted its output.
    Start,
}

/// A host-side pty in packet mode; see the module documentation.
#[derive(Debug)]
pub struct HostPty {
    master: Arc<AsyncFd<File>>,
    writes: Arc<WriteWatch>,
    slave_path: PathBuf,
    /// Keeps the master readable while no program has the slave open.
    _slave_keepalive: OwnedFd,
    assume: Assumptions,
    settings: SerialSettings,
    dtr: bool,
    flow_chars: (u8, u8),
    /// Events decoded from one read and not handed out yet.
    pending: std::collections::VecDeque<PtyEvent>,
}

/// The writing side of a [`HostPty`], to be used from another task.
#[derive(Clone, Debug)]
pub struct PtyWriter {
    master: Arc<AsyncFd<File>>,
    /// The master is registered for reads only (see `WriteWatch`); shared
    /// by the clones, as a Real COM or RFC 2217 session writes from one.
    writes: Arc<WriteWatch>,
}

impl HostPty {
    /// Creates the pair (raw mode, `EXTPROC`, packet mode). Must be called
    /// inside a tokio runtime.
    pub fn open(assume: Assumptions) -> io::Result<HostPty> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let slave_path = PathBuf::from(ptsname_r(&master)?);
        let master = OwnedFd::from(master);
        // Termios set through the master are the slave's (one set per pair).
        let mut termios = tcgetattr(&master)?;
        cfmakeraw(&mut termios);
        tcsetattr(&master, SetArg::TCSANOW, &termios)?;
        set_extproc(&master)?;
        sys::tiocpkt(master.as_fd(), true)?;
        let keepalive = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&slave_path)?;
        let file = File::from(master);
        set_nonblocking(&file)?;
        let t = sys::tcgets2(file.as_fd())?;
        let settings = decode_termios(&t, &assume, BaudRate::default()).unwrap_or_default();
        Ok(HostPty {
            master: Arc::new(sys::register_async(file, tokio::io::Interest::READABLE)?),
            writes: Arc::default(),
            slave_path,
            _slave_keepalive: keepalive.into(),
            assume,
            dtr: !is_hangup(&t),
            flow_chars: flow_chars(&t),
            settings,
            pending: Default::default(),
        })
    }

    /// The slave device node, e.g. `/dev/pts/7`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The settings as last read (the pty's own at first).
    pub fn settings(&self) -> &SerialSettings {
        &self.settings
    }

    /// False while the program has speed `B0` set.
    pub fn dtr(&self) -> bool {
        self.dtr
    }

    /// The program's XON and XOFF characters (`VSTART`, `VSTOP`) as last
    /// read.
    pub fn flow_chars(&self) -> (u8, u8) {
        self.flow_chars
    }

    /// A handle that writes to the program's input.
    pub fn writer(&self) -> PtyWriter {
        PtyWriter {
            master: Arc::clone(&self.master),
            writes: Arc::clone(&self.writes),
        }
    }

    /// The next thing the program did. Cancel-safe: an event is either
    /// returned or kept for the next call.
    pub async fn next_event(&mut self) -> io::Result<PtyEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let packet = poll_fn(|cx| self.poll_read_packet(cx)).await?;
            self.decode_packet(&packet)?;
        }
    }

    fn poll_read_packet(&self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<u8>>> {
        loop {
            let mut guard = ready!(self.master.poll_read_ready(cx))?;
            let mut buf = vec![0u8; READ_SIZE];
            match guard.try_io(|fd| fd.get_ref().read(&mut buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the pty master reported end of file",
                    )));
                }
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    return Poll::Ready(Ok(buf));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Turns one packet (status byte first) into pending events.
    fn decode_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        let Some((&status, data)) = packet.split_first() else {
            return Ok(());
        };
        if status == 0 {
            if !data.is_empty() {
                self.pending
                    .push_back(PtyEvent::Data(Bytes::copy_from_slice(data)));
            }
            return Ok(());
        }
        let flush = match (
            status & TIOCPKT_FLUSHREAD != 0,
            status & TIOCPKT_FLUSHWRITE != 0,
        ) {
            (true, true) => Some(FlushDirection::Both),
            (true, false) => Some(FlushDirection::Input),
            (false, true) => Some(FlushDirection::Output),
            (false, false) => None,
        };
        if let Some(dir) = flush {
            self.pending.push_back(PtyEvent::Flush(dir));
        }
        if status & TIOCPKT_STOP != 0 {
            self.pending.push_back(PtyEvent::Stop);
        }
        if status & TIOCPKT_START != 0 {
            self.pending.push_back(PtyEvent::Start);
        }
        if status & TIOCPKT_IOCTL != 0 {
            self.reread_termios()?;
        }
        Ok(())
    }

    /// After `TIOCPKT_IOCTL`: read the termios, queue what changed, and put
    /// `EXTPROC` back if the program cleared it.
    fn reread_termios(&mut self) -> io::Result<()> {
        let fd = self.master.get_ref().as_fd();
        let t = sys::tcgets2(fd)?;
        if t.c_lflag & libc::EXTPROC == 0 {
            let mut with = t;
            with.c_lflag |= libc::EXTPROC;
            sys::tcsets2(fd, &with)?;
        }
        self.flow_chars = flow_chars(&t);
        match decode_termios(&t, &self.assume, self.settings.baud) {
            None => {
                if self.dtr {
                    self.dtr = false;
                    self.pending.push_back(PtyEvent::Dtr(false));
                }
            }
            Some(settings) => {
                if settings != self.settings {
                    self.settings = settings.clone();
                    self.pending.push_back(PtyEvent::Settings(settings));
                }
                if !self.dtr {
                    self.dtr = true;
                    self.pending.push_back(PtyEvent::Dtr(true));
                }
            }
        }
        Ok(())
    }
}

impl PtyWriter {
    /// Writes some of `buf` to the program's input and says how much; waits
    /// while the pty's input buffer is full (the program is not reading).
    /// Cancel-safe: nothing is written unless it returns.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    /// Writes everything to the program's input; waits while the pty's
    /// input buffer is full (the program is not reading).
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write(cx, buf)).await?;
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writes.poll_write(cx, self.master.get_ref(), buf)
    }
}

fn set_extproc(fd: &OwnedFd) -> io::Result<()> {
    let mut t = sys::tcgets2(fd.as_fd())?;
    t.c_lflag |= libc::EXTPROC;
    sys::tcsets2(fd.as_fd(), &t)
}

fn set_nonblocking(file: &File) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    fcntl(file, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Speed `B0`: the program hangs up.
fn is_hangup(t: &libc::termios2) -> bool {
    t.c_cflag & libc::CBAUD == libc::B0 || t.c_ospeed == 0
}

fn flow_chars(t: &libc::termios2) -> (u8, u8) {
    let cc = |i: usize| t.c_cc.get(i).copied().unwrap_or(0);
    (cc(libc::VSTART), cc(libc::VSTOP))
}

/// The settings a termios stands for, `None` for speed `B0`. `previous` is
/// kept when the speed is outside what [`BaudRate`] accepts. See the module
/// documentation for the inference of parity and data bits.
fn decode_termios(
    t: &libc::termios2,
    assume: &Assumptions,
    previous: BaudRate,
) -> Option<SerialSettings> {
    if is_hangup(t) {
        return None;
    }
    let cflag = t.c_cflag;
    let baud = BaudRate::new(t.c_ospeed).unwrap_or(previous);
    let csize = match cflag & libc::CSIZE {
        libc::CS5 => DataBits::Five,
        libc::CS6 => DataBits::Six,
        libc::CS7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let odd = cflag & libc::PARODD != 0;
    let stick = cflag & libc::CMSPAR != 0;
    // A kernel that keeps PARENB (a real tty, or a future pty driver) is
    // trusted as it is; the pty we know clears it and forces CS8.
    let (data_bits, parity) = if cflag & libc::PARENB != 0 {
        let parity = match (stick, odd) {
            (true, true) => Parity::Mark,
            (true, false) => Parity::Space,
            (false, true) => Parity::Odd,
            (false, false) => Parity::Even,
        };
        (csize, parity)
    } else {
        let parity = match (stick, odd, t.c_iflag & libc::INPCK != 0) {
            (true, true, _) => Parity::Mark,
            (true, false, _) => Parity::Space,
            (false, true, _) => Parity::Odd,
            (false, false, true) => Parity::Even,
            (false, false, false) => assume.parity,
        };
        let bits = if csize == DataBits::Eight {
            assume.data_bits
        } else {
            csize
        };
        (bits, parity)
    };
    let stop_bits = match (cflag & libc::CSTOPB != 0, data_bits) {
        (false, _) => StopBits::One,
        (true, DataBits::Five) => StopBits::OnePointFive,
        (true, _) => StopBits::Two,
    };
    let flow = if cflag & libc::CRTSCTS != 0 {
        FlowControl::RtsCts
    } else if t.c_iflag & (libc::IXON | libc::IXOFF) != 0 {
        FlowControl::XonXoff
    } else {
        FlowControl::None
    };
    Some(SerialSettings {
        baud,
        data_bits,
        parity,
        stop_bits,
        flow,
        ..SerialSettings::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    use nix::sys::termios::{BaudRate as NixBaud, FlowArg, FlushArg, tcflow, tcflush};

    /// What the Linux pty driver does to a termios it is given.
    fn as_pty_keeps_it(mut t: libc::termios2) -> libc::termios2 {
        t.c_cflag &= !(libc::CSIZE | libc::PARENB);
        t.c_cflag |= libc::CS8;
        t
    }

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

    fn base() -> libc::termios2 {
        sys::termios2_zeroed()
    }

    #[test]
    fn decodes_what_a_pty_keeps_of_tty_settings() {
        use DataBits::*;
        use FlowControl as F;
        use Parity as P;
        use StopBits as S;
        let assume = Assumptions::default();
        for s in [
            settings(19_200, Eight, P::Odd, S::One, F::None),
            settings(250_000, Eight, P::Mark, S::Two, F::RtsCts),
            settings(9600, Eight, P::Space, S::One, F::XonXoff),
            settings(115_200, Eight, P::None, S::Two, F::None),
        ] {
            let t = as_pty_keeps_it(crate::tty::encode_termios(&base(), &s));
            assert_eq!(
                decode_termios(&t, &assume, BaudRate::default()),
                Some(s.clone()),
                "{s}"
            );
        }
    }

    #[test]
    fn even_parity_is_seen_through_inpck() {
        let s = settings(
            19_200,
            DataBits::Eight,
            Parity::Even,
            StopBits::One,
            FlowControl::None,
        );
        let mut t = as_pty_keeps_it(crate::tty::encode_termios(&base(), &s));
        // Without INPCK, even parity looks like none...
        assert_eq!(
            decode_termios(&t, &Assumptions::default(), BaudRate::default()).map(|s| s.parity),
            Some(Parity::None)
        );
        // ...unless told, or INPCK is set as libmodbus does.
        let told = Assumptions {
            parity: Parity::Even,
            ..Default::default()
        };
        assert_eq!(
            decode_termios(&t, &told, BaudRate::default()),
            Some(s.clone())
        );
        t.c_iflag |= libc::INPCK;
        assert_eq!(
            decode_termios(&t, &Assumptions::default(), BaudRate::default()),
            Some(s)
        );
    }

    #[test]
    fn data_bits_come_from_the_assumption_on_a_pty_and_from_a_tty_otherwise() {
        let seven = Assumptions {
            data_bits: DataBits::Seven,
            parity: Parity::Even,
        };
        let s = settings(
            9600,
            DataBits::Seven,
            Parity::Even,
            StopBits::One,
            FlowControl::None,
        );
        let real = crate::tty::encode_termios(&base(), &s);
        assert_eq!(
            decode_termios(&as_pty_keeps_it(real), &seven, BaudRate::default()),
            Some(s.clone())
        );
        // A termios that kept PARENB and CS7 is taken as it is.
        assert_eq!(
            decode_termios(&real, &Assumptions::default(), BaudRate::default()),
            Some(s)
        );
    }

    #[test]
    fn b0_is_a_hangup_and_odd_speeds_keep_the_previous_rate() {
        let mut t = crate::tty::encode_termios(&base(), &SerialSettings::default());
        t.c_cflag &= !libc::CBAUD;
        t.c_ospeed = 0;
        assert_eq!(
            decode_termios(&t, &Assumptions::default(), BaudRate::default()),
            None
        );
        t.c_cflag |= libc::BOTHER;
        t.c_ospeed = 20_000_000;
        let previous = BaudRate::new(4800).unwrap();
        assert_eq!(
            decode_termios(&t, &Assumptions::default(), previous).map(|s| s.baud),
            Some(previous)
        );
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    async fn next(pty: &mut HostPty) -> PtyEvent {
        tokio::time::timeout(Duration::from_secs(5), pty.next_event())
            .await
            .expect("an event within 5 s")
            .expect("read")
    }

    fn open_slave(pty: &HostPty) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(pty.slave_path())
            .unwrap()
    }

    #[test]
    fn reports_data_settings_hangup_flush_and_stop() {
        runtime().block_on(async {
            let mut pty = HostPty::open(Assumptions::default()).unwrap();
            let slave = open_slave(&pty);

            (&slave).write_all(b"hello").unwrap();
            assert_eq!(
                next(&mut pty).await,
                PtyEvent::Data(Bytes::from_static(b"hello"))
            );

            // 19200 8E1 the libmodbus way (PARENB and INPCK), custom rate next.
            let mut t = tcgetattr(&slave).unwrap();
            nix::sys::termios::cfsetspeed(&mut t, NixBaud::B19200).unwrap();
            t.control_flags |= nix::sys::termios::ControlFlags::PARENB;
            t.input_flags |= nix::sys::termios::InputFlags::INPCK;
            tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
            let expected = settings(
                19_200,
                DataBits::Eight,
                Parity::Even,
                StopBits::One,
                FlowControl::None,
            );
            assert_eq!(next(&mut pty).await, PtyEvent::Settings(expected.clone()));
            assert_eq!(pty.settings(), &expected);

            let mut t2 = sys::tcgets2(slave.as_fd()).unwrap();
            t2.c_cflag = (t2.c_cflag & !libc::CBAUD) | libc::BOTHER | libc::CSTOPB;
            t2.c_ospeed = 250_000;
            t2.c_ispeed = 250_000;
            sys::tcsets2(slave.as_fd(), &t2).unwrap();
            match next(&mut pty).await {
                PtyEvent::Settings(s) => {
                    assert_eq!((s.baud.get(), s.stop_bits), (250_000, StopBits::Two))
                }
                other => panic!("{other:?}"),
            }

            // B0 drops DTR, a speed raises it again.
            nix::sys::termios::cfsetspeed(&mut t, NixBaud::B0).unwrap();
            tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
            assert_eq!(next(&mut pty).await, PtyEvent::Dtr(false));
            assert!(!pty.dtr());
            nix::sys::termios::cfsetspeed(&mut t, NixBaud::B19200).unwrap();
            tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
            assert_eq!(next(&mut pty).await, PtyEvent::Settings(expected));
            assert_eq!(next(&mut pty).await, PtyEvent::Dtr(true));

            tcflush(&slave, FlushArg::TCIFLUSH).unwrap();
            assert_eq!(next(&mut pty).await, PtyEvent::Flush(FlushDirection::Input));
            tcflush(&slave, FlushArg::TCOFLUSH).unwrap();
            assert_eq!(
                next(&mut pty).await,
                PtyEvent::Flush(FlushDirection::Output)
            );
            tcflow(&slave, FlowArg::TCOOFF).unwrap();
            assert_eq!(next(&mut pty).await, PtyEvent::Stop);
            tcflow(&slave, FlowArg::TCOON).unwrap();
            assert_eq!(next(&mut pty).await, PtyEvent::Start);

            // And the other way: bytes for the program.
            pty.writer().write_all(b"world").await.unwrap();
            let mut buf = [0u8; 5];
            (&slave).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"world");
        });
    }

    #[test]
    fn extproc_is_put_back_when_a_program_clears_it() {
        runtime().block_on(async {
            let mut pty = HostPty::open(Assumptions::default()).unwrap();
            let slave = open_slave(&pty);
            let mut t = tcgetattr(&slave).unwrap();
            t.local_flags = nix::sys::termios::LocalFlags::empty();
            nix::sys::termios::cfsetspeed(&mut t, NixBaud::B9600).unwrap();
            tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
            match next(&mut pty).await {
                PtyEvent::Settings(s) => assert_eq!(s.baud.get(), 9600),
                other => panic!("{other:?}"),
            }
            // Re-arming EXTPROC is itself a termios change: it may be
            // reported, with nothing changed, which gives no event.
            let mut t = tcgetattr(&slave).unwrap();
            nix::sys::termios::cfsetspeed(&mut t, NixBaud::B4800).unwrap();
            tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
            match next(&mut pty).await {
                PtyEvent::Settings(s) => assert_eq!(s.baud.get(), 4800),
                other => panic!("{other:?}"),
            }
        });
    }

    /// What a pty can not report, pinned: the driver drops PARENB and CS7.
    #[test]
    fn pty_driver_hides_data_bits_and_parity_enable() {
        runtime().block_on(async {
            let pty = HostPty::open(Assumptions::default()).unwrap();
            let slave = open_slave(&pty);
            let mut t = sys::tcgets2(slave.as_fd()).unwrap();
            t.c_cflag = (t.c_cflag & !libc::CSIZE) | libc::CS7 | libc::PARENB | libc::PARODD;
            sys::tcsets2(slave.as_fd(), &t).unwrap();
            let seen = sys::tcgets2(pty.master.get_ref().as_fd()).unwrap();
            assert_eq!(seen.c_cflag & libc::CSIZE, libc::CS8);
            assert_eq!(seen.c_cflag & libc::PARENB, 0);
            assert_ne!(seen.c_cflag & libc::PARODD, 0);
        });
    }

    /// What a pty can not report, pinned: modem-line ioctls fail on the
    /// slave, break succeeds and leaves nothing on the master.
    #[test]
    fn modem_lines_and_break_are_invisible() {
        runtime().block_on(async {
            let mut pty = HostPty::open(Assumptions::default()).unwrap();
            let slave = open_slave(&pty);
            let err = sys::tiocm_set(slave.as_fd(), true, libc::TIOCM_DTR).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
            assert!(sys::tiocmget(slave.as_fd()).is_err());
            nix::sys::termios::tcsendbreak(&slave, 0).unwrap();
            sys::ioctl_no_arg(slave.as_fd(), libc::TIOCSBRK).unwrap();
            sys::ioctl_no_arg(slave.as_fd(), libc::TIOCCBRK).unwrap();
            // Nothing was reported: the next event is this data.
            (&slave).write_all(b"x").unwrap();
            assert_eq!(
                next(&mut pty).await,
                PtyEvent::Data(Bytes::from_static(b"x"))
            );
        });
    }
}
