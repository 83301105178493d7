//! Write readiness on demand, for descriptors registered for reads only.
//!
//! A descriptor registered with the reactor for writes as well as reads
//! wakes the process on every write wake-up the driver sends, and ttys send
//! one after nearly every write: a UART when its transmit buffer drains, a
//! pty whenever the other side reads (`n_tty_check_unthrottle`). With one
//! request and one reply in flight, that wake-up lands just before the reply
//! does, so the reply waits behind a wake-up that had nothing to do; on the
//! 1-byte round trip of the benchmark it was a third of all wake-ups.
//!
//! So a device is registered for reads only and written to directly. Only a
//! write that finds the output queue full (`EAGAIN`, or a short write)
//! registers a duplicate of the descriptor for writes and waits on it.
//! [`CALM_WRITES`] writes in a row taken whole drop that registration again.
//! A sustained transfer, which keeps finding the queue full, keeps it:
//! registering costs 4 system calls, and dropping it at the first write
//! taken whole re-registered it every 18 KiB of a 64 MiB transfer. An
//! interactive exchange never makes it, and after a transfer it is gone
//! again within a few messages.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys;

/// The write side of a read-registered descriptor; see the module
/// documentation.
#[derive(Debug, Default)]
pub(crate) struct WriteWatch {
    watch: Mutex<Option<Watch>>,
}

/// Writes taken whole in a row that end the watch.
pub(crate) const CALM_WRITES: u8 = 16;

/// A duplicate of the descriptor, registered for writes, while the output
/// queue keeps filling up.
#[derive(Debug)]
struct Watch {
    fd: AsyncFd<OwnedFd>,
    /// Writes taken whole since the queue was last full.
    calm: u8,
}

impl WriteWatch {
    /// Writes `buf` to `file` (non-blocking): at once while the queue has
    /// room, after a writability event once it was full. Pending only while
    /// the queue is full.
    pub(crate) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, file, buf.len(), |f| f.write(buf))
    }

    /// As [`WriteWatch::poll_write`], gathering `bufs` into one `writev`.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.poll_write_with(cx, file, len, |f| f.write_vectored(bufs))
    }

    /// The watch around one write of `len` bytes made by `write`.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        len: usize,
        write_to: impl Fn(&mut &File) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let write = || write_to(&mut &*file);
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let Some(registered) = watch.as_mut() else {
                match write() {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        *watch = Some(register(file)?);
                        continue;
                    }
                    Ok(n) if n < len => {
                        // The queue is full now: the next write would only
                        // say EAGAIN, so start watching already.
                        *watch = Some(register(file)?);
                        return Poll::Ready(Ok(n));
                    }
                    other => return Poll::Ready(other),
                }
            };
            let mut guard = ready!(registered.fd.poll_write_ready(cx))?;
            match write() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Clears only the readiness this guard saw: an event
                    // that came in since is kept.
                    guard.clear_ready();
                    registered.calm = 0;
                    continue;
                }
                Ok(n) if n < len => {
                    guard.clear_ready();
                    registered.calm = 0;
                    return Poll::Ready(Ok(n));
                }
                Ok(n) => {
                    drop(guard);
                    registered.calm += 1;
                    if registered.calm >= CALM_WRITES {
                        *watch = None;
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// A duplicate of `file`'s descriptor registered for writes. A duplicate
/// because epoll keeps one registration per descriptor, and the original
/// stays registered for reads.
fn register(file: &File) -> io::Result<Watch> {
    Ok(Watch {
        fd: sys::register_async(file.as_fd().try_clone_to_owned()?, Interest::WRITABLE)?,
        calm: 0,
    })
}
