//! The ttyward domain: everything the daemon knows and decides, without the
//! sockets.
//!
//! * [`config`]: the typed configuration (ports, security settings, event
//!   log settings) with validation that reports every bad field at once;
//! * [`password`], [`login`], [`access`]: password policy and hashing, login
//!   messages / lockout / session control, allowlist and DoS settings;
//! * [`event_log`]: the seed's event catalog and the local log.
//! * [`system`]: the device's identity and the time zone times are shown in.
//!
//! The data plane (`ttyward-engine`) and the management plane use these;
//! this crate opens no sockets.

pub mod access;
pub mod account;
pub mod api_token;
pub mod config;
pub mod event_log;
pub mod lockout;
pub mod login;
pub mod password;
pub mod permission;
pub mod service;
pub mod services;
pub mod session;
pub mod store;
pub mod system;

/// Fixtures shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};

    /// A fresh, empty directory under the system temp dir, removed when
    /// dropped.
    pub(crate) struct TempDir(PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// See [`TempDir`].
    pub(crate) fn tempdir() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ttyward-core-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tempdir");
        TempDir(dir)
    }
}
