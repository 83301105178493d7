//! Safe wrappers around the Linux tty ioctls that neither std nor nix offer:
//! `termios2` (arbitrary baud rates), modem lines, break, exclusive mode and
//! RS-485; and the few other calls of `resident` and `busy_poll` (`madvise`,
//! `fcntl`, `kcmp`, `sched_yield`). All `unsafe` of the crate is in this
//! module, one call per block.
//!
//! Each wrapper borrows the descriptor for the duration of the call, so the
//! descriptor is always open, and passes a pointer to a local of exactly the
//! type the ioctl reads or writes.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct serial_rs485` from `<linux/serial.h>` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SerialRs485 {
    pub flags: u32,
    pub delay_rts_before_send: u32,
    pub delay_rts_after_send: u32,
    pub padding: [u32; 5],
}

pub(crate) const SER_RS485_ENABLED: u32 = 1 << 0;
pub(crate) const SER_RS485_RTS_ON_SEND: u32 = 1 << 1;
pub(crate) const SER_RS485_RTS_AFTER_SEND: u32 = 1 << 2;
pub(crate) const SER_RS485_RX_DURING_TX: u32 = 1 << 4;
/// Linux 6.8+; older kernels clear unknown flags with a warning.
pub(crate) const SER_RS485_MODE_RS422: u32 = 1 << 9;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A zeroed `termios2`.
pub(crate) fn termios2_zeroed() -> libc::termios2 {
    // SAFETY: termios2 is a C struct of integers and an integer array, for
    // which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// `TCGETS2`: the terminal settings with the real baud rates.
pub(crate) fn tcgets2(fd: BorrowedFd<'_>) -> io::Result<libc::termios2> {
    let mut t = termios2_zeroed();
    // SAFETY: TCGETS2 writes one struct termios2 through the pointer, which
    // points to a live local of that type.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS2, &mut t) })?;
    Ok(t)
}

/// `TCSETS2`: set the terminal settings now, without draining output.
pub(crate) fn tcsets2(fd: BorrowedFd<'_>, t: &libc::termios2) -> io::Result<()> {
    // SAFETY: TCSETS2 reads one struct termios2 through the pointer, which
    // points to a live value of that type.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCSETS2, t) })
}

/// An ioctl without argument: `TIOCEXCL`, `TIOCNXCL`, `TIOCSBRK`, `TIOCCBRK`.
pub(crate) fn ioctl_no_arg(fd: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<()> {
    debug_assert!(matches!(
        request,
        libc::TIOCEXCL | libc::TIOCNXCL | libc::TIOCSBRK | libc::TIOCCBRK
    ));
    // SAFETY: the requests allowed here take no argument and touch no user
    // memory.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request) })
}

/// `TIOCMGET`: the `TIOCM_*` bits of the modem lines.
pub(crate) fn tiocmget(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut bits: libc::c_int = 0;
    // SAFETY: TIOCMGET writes one int through the pointer to a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCMGET, &mut bits) })?;
    Ok(bits)
}

/// `TIOCMBIS` (set) or `TIOCMBIC` (clear) the given `TIOCM_*` bits.
pub(crate) fn tiocm_set(fd: BorrowedFd<'_>, on: bool, bits: libc::c_int) -> io::Result<()> {
    let request = if on { libc::TIOCMBIS } else { libc::TIOCMBIC };
    // SAFETY: TIOCMBIS/TIOCMBIC read one int through the pointer to a live
    // local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request, &bits) })
}

/// `TIOCINQ` (bytes received, not yet read) or `TIOCOUTQ` (bytes written,
/// not yet sent on the line).
pub(crate) fn queued(fd: BorrowedFd<'_>, output: bool) -> io::Result<u32> {
    let request = if output {
        libc::TIOCOUTQ
    } else {
        libc::FIONREAD
    };
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ/FIONREAD (= TIOCINQ) write one int through the
    // pointer to a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut n) })?;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// `TIOCPKT`: packet mode on a pty master (every read then starts with a
/// status byte; see `host_pty`).
pub(crate) fn tiocpkt(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let arg: libc::c_int = on.into();
    // SAFETY: TIOCPKT reads one int through the pointer to a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCPKT, &arg) })
}

/// `TIOCGRS485`: the driver's RS-485 configuration.
pub(crate) fn get_rs485(fd: BorrowedFd<'_>) -> io::Result<SerialRs485> {
    let mut conf = SerialRs485::default();
    // SAFETY: TIOCGRS485 writes one struct serial_rs485, which SerialRs485
    // mirrors with #[repr(C)], through the pointer to a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGRS485, &mut conf) })?;
    Ok(conf)
}

/// `TIOCSRS485`: set the RS-485 configuration; the driver writes back what
/// it actually applied.
pub(crate) fn set_rs485(fd: BorrowedFd<'_>, conf: &mut SerialRs485) -> io::Result<()> {
    // SAFETY: TIOCSRS485 reads and writes back one struct serial_rs485 through
    // the pointer to a live, exclusively borrowed value of the mirrored type.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSRS485, conf as *mut SerialRs485) })
}

/// Registers a descriptor with the current tokio reactor for `interest`.
pub(crate) fn register_async<T: AsRawFd>(
    inner: T,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "serial devices must be opened inside a tokio runtime",
        ));
    }
    // SAFETY: every T given here (File, OwnedFd) owns its descriptor, which
    // stays open until T is dropped, and the AsyncFd owns T and drops it only
    // when it is dropped itself. Neither type ever changes the descriptor it
    // returns from as_raw_fd.
    let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(inner, interest) };
    Ok(registered?)
}

/// `read(2)` of at most `max` bytes appended to `buf`, straight into its
/// spare capacity (reserved here), so device output can be handed on as
/// `Bytes` without a copy or a zero-fill.
pub(crate) fn read_append(
    fd: BorrowedFd<'_>,
    buf: &mut bytes::BytesMut,
    max: usize,
) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = max.min(spare.len());
    // SAFETY: the kernel writes at most `want` bytes, and `spare` is valid
    // for writes of at least that length (uninitialised memory is a fine
    // destination).
    let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let n = n.min(want);
    // SAFETY: read(2) initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `madvise(MADV_DONTNEED)` over `mapping`, if it is a private, read-only
/// file mapping all of whose resident pages are the file's own
/// ([`Mapping::is_clean_file`](crate::resident::Mapping::is_clean_file));
/// anything else is refused with `EINVAL` and left untouched.
pub(crate) fn release_clean_file_pages(mapping: &crate::resident::Mapping) -> io::Result<()> {
    if !mapping.is_clean_file() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the mapping comes from this process's /proc/self/smaps and is
    // private, not writable and file-backed, with no anonymous (copied on
    // write) page. Dropping the page table entries of such a mapping changes
    // no byte a program can observe: the next access faults the same file
    // bytes back in from the page cache, as it would after the kernel
    // reclaimed them under memory pressure. Without write permission no
    // page of it can be copied on write between the smaps read and this
    // call.
    check(unsafe {
        libc::madvise(
            mapping.start as *mut libc::c_void,
            mapping.end - mapping.start,
            libc::MADV_DONTNEED,
        )
    })
}

/// A descriptor of its own (close-on-exec) for the open file behind `fd`,
/// a descriptor this process has open but does not own as a Rust value.
pub(crate) fn dup_foreign(fd: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC reads nothing from memory; on a descriptor
    // that is not open it fails with EBADF. On success it returns a new
    // descriptor that nothing else in the process knows, so the OwnedFd is
    // its only owner.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above; `new` is open and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}

/// Whether descriptors `a` and `b` of this process refer to the same open
/// file (`kcmp(2)`, `KCMP_FILE`).
pub(crate) fn same_file(a: std::os::fd::RawFd, b: std::os::fd::RawFd) -> io::Result<bool> {
    /// `KCMP_FILE` from `<linux/kcmp.h>`.
    const KCMP_FILE: libc::c_long = 0;
    let pid = libc::c_long::from(std::process::id() as libc::pid_t);
    // SAFETY: kcmp only compares kernel objects named by plain integers and
    // touches no memory of ours; an fd that is not open gives EBADF.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            libc::c_long::from(a),
            libc::c_long::from(b),
        )
    };
    match rc {
        0 => Ok(true),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(false),
    }
}

/// `sched_yield(2)`: let another task runnable on this CPU go first.
pub(crate) fn yield_cpu() {
    // SAFETY: no arguments, no memory; it cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_rs485_has_the_kernel_size() {
        assert_eq!(std::mem::size_of::<SerialRs485>(), 32);
    }
}
