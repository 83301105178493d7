//! Serial devices for ttyward: real ttys (and pty slaves), pty pairs,
//! simulated devices and a fake for tests, all behind one
//! [`SerialDevice`] trait that the engine drives.
//!
//! This crate is the only one of ttyward with `unsafe` code, and that code
//! is confined to the private `sys` module: the termios2, modem-line, break,
//! exclusive-mode and RS-485 ioctls that std and nix do not wrap, plus the
//! one `madvise` of [`resident`], which gives back the executable's startup
//! pages, and the descriptor duplication, `kcmp` and `sched_yield` of
//! [`busy_poll`] (they live here to keep every `unsafe` block of ttyward in
//! one place). It does not
//! reopen devices, schedule anything or know about network protocols: the
//! engine calls [`open`] again when a device is gone
//! ([`SerialError::is_missing`]), and maps RFC 2217 / Real COM requests to
//! [`SerialSettings`], [`ModemStatus`] and the trait's methods. Serial
//! parameters follow `spec/nport-operation-modes.md` §6.

pub mod busy_poll;
pub mod device;
pub mod discover;
pub mod error;
pub mod fake;
pub mod host_pty;
pub mod modem;
pub mod pty;
pub mod resident;
pub mod settings;
pub mod sim;
mod sys;
pub mod tty;
mod write_watch;

pub use device::{DeviceSpec, SerialDevice, open};
pub use error::SerialError;
pub use modem::*;
pub use settings::*;
