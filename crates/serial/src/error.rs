//! Errors of the serial layer.
//!
//! Every variant says what went wrong and what the user can do about it, in
//! one sentence. [`SerialError::is_missing`] tells the engine whether the
//! device is gone (unplugged USB adapter, closed pty) so that it reopens it
//! later instead of giving up.

use std::io;
use std::path::PathBuf;

/// What can go wrong while opening, configuring or using a serial device.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SerialError {
    /// The device could not be opened.
    #[error(
        "cannot open serial device {}: {source}; check that the path exists and that ttyward may read and write it (group dialout)",
        path.display()
    )]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// Why the kernel refused.
        source: io::Error,
    },
    /// Another process (or another ttyward port) holds the device.
    #[error(
        "serial device {} is in use by another program; stop that program or configure another device",
        path.display()
    )]
    Busy {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The path exists but is not a terminal device.
    #[error("{} is not a serial device (not a tty); check the device path", path.display())]
    NotATty {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The device or its driver cannot do what was asked.
    #[error("{what} is not supported by this serial device or its driver; choose another setting")]
    Unsupported {
        /// The feature, e.g. "RS-485 mode".
        what: &'static str,
    },
    /// A setting has a value outside what ttyward or the driver accepts.
    #[error("invalid serial setting {field}: {reason}")]
    InvalidSetting {
        /// The setting, e.g. "baud".
        field: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The driver refused a request with an unexpected error.
    #[error(
        "the serial driver refused to set {what}: {source}; check the kernel log for the driver's reason"
    )]
    Rejected {
        /// What was being set, e.g. "line settings".
        what: &'static str,
        /// The error returned by the ioctl.
        source: io::Error,
    },
    /// Devices with file descriptors register with the tokio reactor.
    #[error("serial devices must be opened inside a tokio runtime; this is a bug in the caller")]
    NoRuntime,
    /// Any other I/O error on an open device.
    #[error("serial device I/O failed: {0}")]
    Io(#[from] io::Error),
}

impl SerialError {
    /// True when the error means "the device is gone or not there yet":
    /// ENOENT, ENXIO, ENODEV or EIO (what a tty returns after its USB adapter
    /// is unplugged, or a pty slave after its master closed). The engine keeps
    /// the port and retries the open later.
    pub fn is_missing(&self) -> bool {
        match self {
            SerialError::Open { source, .. }
            | SerialError::Rejected { source, .. }
            | SerialError::Io(source) => io_is_missing(source),
            _ => false,
        }
    }
}

/// The "device gone" test of [`SerialError::is_missing`] for a bare
/// `io::Error`, e.g. one returned by [`crate::SerialDevice::poll_read`].
pub fn io_is_missing(e: &io::Error) -> bool {
    match e.raw_os_error() {
        Some(code) => matches!(code, libc::ENOENT | libc::ENXIO | libc::ENODEV | libc::EIO),
        None => e.kind() == io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_gone_errnos_are_missing() {
        for code in [libc::ENOENT, libc::ENXIO, libc::ENODEV, libc::EIO] {
            let e = SerialError::Io(io::Error::from_raw_os_error(code));
            assert!(e.is_missing(), "{code}");
        }
        let open = SerialError::Open {
            path: "/dev/ttyUSB0".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(open.is_missing());
    }

    #[test]
    fn other_errors_are_not_missing() {
        assert!(!SerialError::Io(io::Error::from_raw_os_error(libc::EACCES)).is_missing());
        assert!(
            !SerialError::Busy {
                path: "/dev/ttyS0".into()
            }
            .is_missing()
        );
        assert!(!SerialError::Unsupported { what: "x" }.is_missing());
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = SerialError::Busy {
            path: "/dev/ttyS1".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("/dev/ttyS1") && text.contains("in use"),
            "{text}"
        );
    }
}
