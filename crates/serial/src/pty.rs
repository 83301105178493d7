//! Pseudo-terminal pairs: the stand-in for a serial port in tests, and the
//! host side of a future `ttyward attach` (a local `/dev/pts/N` that
//! programs open like a serial port).
//!
//! [`PtyPair::open`] creates a master with `posix_openpt`, unlocks it, puts
//! the pair in raw mode and keeps one slave descriptor open
//! ("keep-alive") so that the master does not read `EIO` while no one else
//! has the slave open. [`PtyPair::into_async`] turns it into a [`PtyMaster`]
//! with tokio `AsyncRead`/`AsyncWrite`.
//!
//! # What the master shows of the slave's settings
//!
//! A pty pair has one set of termios, the slave's: Linux routes termios
//! ioctls made on the master to the slave. So [`PtyPair::master_termios`]
//! reads back what a program (ttyward's [`crate::tty::TtyDevice`]) set on
//! the slave. Checked on this kernel by the integration tests
//! (`pty_master_sees_slave_settings`, `pty_master_sees_custom_baud_rate`):
//!
//! * visible: input and output speed, standard and custom (`BOTHER`, e.g.
//!   250000), `CSTOPB`, `PARODD`, `CMSPAR`, `CRTSCTS`, `IXON`/`IXOFF`;
//! * not visible: data bits and parity enable. The pty driver's
//!   `set_termios` forces `CS8` and clears `PARENB`, so the snapshot always
//!   says 8 bits, no parity enable, whatever was set. Those two are covered
//!   by [`crate::fake`] instead.
//!
//! A pty has no modem lines and no RS-485 (`TIOCMGET` and `TIOCSRS485` fail
//! with `ENOTTY`); break requests succeed and do nothing.

use std::fs::{File, OpenOptions};
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::sys;

/// A pty master and the path of its slave.
#[derive(Debug)]
pub struct PtyPair {
    /// The master side (blocking, raw mode).
    pub master: OwnedFd,
    /// The slave device node, e.g. `/dev/pts/3`.
    pub slave_path: PathBuf,
    slave_keepalive: Option<OwnedFd>,
}

impl PtyPair {
    /// Creates a pty pair in raw mode with a blocking master.
    pub fn open() -> io::Result<PtyPair> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let slave_path = PathBuf::from(ptsname_r(&master)?);
        let master = OwnedFd::from(master);
        // The pair's termios are the slave's; setting them through the master
        // is the same as setting them on the slave.
        let mut termios = tcgetattr(&master)?;
        cfmakeraw(&mut termios);
        tcsetattr(&master, SetArg::TCSANOW, &termios)?;
        let keepalive = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&slave_path)?;
        Ok(PtyPair {
            master,
            slave_path,
            slave_keepalive: Some(keepalive.into()),
        })
    }

    /// The slave's settings as seen through the master (see the module
    /// documentation for what is visible).
    pub fn master_termios(&self) -> io::Result<TermiosSnapshot> {
        termios_snapshot(self.master.as_fd())
    }

    /// Closes the keep-alive slave descriptor: once every other slave
    /// descriptor is closed too, reads on the master fail with `EIO`.
    pub fn drop_slave_keepalive(&mut self) {
        self.slave_keepalive = None;
    }

    /// Makes the master non-blocking and registers it with the tokio
    /// reactor. Must be called inside a tokio runtime.
    pub fn into_async(self) -> io::Result<PtyMaster> {
        let flags = OFlag::from_bits_truncate(fcntl(&self.master, FcntlArg::F_GETFL)?);
        fcntl(&self.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(PtyMaster {
            fd: sys::register_async(
                File::from(self.master),
                tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
            )?,
            slave_path: self.slave_path,
            slave_keepalive: self.slave_keepalive,
        })
    }
}

/// The non-blocking, async master side of a [`PtyPair`]. Dropping it closes
/// the master: the slave then reads `EIO`.
#[derive(Debug)]
pub struct PtyMaster {
    fd: AsyncFd<File>,
    slave_path: PathBuf,
    slave_keepalive: Option<OwnedFd>,
}

impl PtyMaster {
    /// The slave device node.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// See [`PtyPair::master_termios`].
    pub fn termios(&self) -> io::Result<TermiosSnapshot> {
        termios_snapshot(self.fd.get_ref().as_fd())
    }

    /// See [`PtyPair::drop_slave_keepalive`].
    pub fn drop_slave_keepalive(&mut self) {
        self.slave_keepalive = None;
    }

    /// Reads what the slave side wrote. `EIO` once every slave descriptor
    /// is closed.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_slice(cx, buf)).await
    }

    /// Writes everything to the slave side's input.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write_slice(cx, buf)).await?;
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    fn poll_read_slice(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_write_slice(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsFd for PtyMaster {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(self.poll_read_slice(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_slice(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The termios fields tests check, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermiosSnapshot {
    /// Input speed in baud (`c_ispeed`).
    pub ispeed: u32,
    /// Output speed in baud (`c_ospeed`).
    pub ospeed: u32,
    /// Two stop bits (or 1.5 with 5 data bits).
    pub cstopb: bool,
    /// Odd parity (mark parity with `cmspar`).
    pub parodd: bool,
    /// Mark/space ("stick") parity.
    pub cmspar: bool,
    /// RTS/CTS flow control.
    pub crtscts: bool,
    /// XON/XOFF on output.
    pub ixon: bool,
    /// XON/XOFF on input.
    pub ixoff: bool,
    /// Data bits, 5..=8 (always 8 on a pty).
    pub csize_bits: u8,
    /// Parity enabled (always false on a pty).
    pub parenb: bool,
}

/// Reads the termios of any tty descriptor (on a pty master: the slave's).
pub fn termios_snapshot(fd: BorrowedFd<'_>) -> io::Result<TermiosSnapshot> {
    let t = sys::tcgets2(fd)?;
    let csize_bits = match t.c_cflag & libc::CSIZE {
        libc::CS5 => 5,
        libc::CS6 => 6,
        libc::CS7 => 7,
        _ => 8,
    };
    Ok(TermiosSnapshot {
        ispeed: t.c_ispeed,
        ospeed: t.c_ospeed,
        cstopb: t.c_cflag & libc::CSTOPB != 0,
        parodd: t.c_cflag & libc::PARODD != 0,
        cmspar: t.c_cflag & libc::CMSPAR != 0,
        crtscts: t.c_cflag & libc::CRTSCTS != 0,
        ixon: t.c_iflag & libc::IXON != 0,
        ixoff: t.c_iflag & libc::IXOFF != 0,
        csize_bits,
        parenb: t.c_cflag & libc::PARENB != 0,
    })
}
