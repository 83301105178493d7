//! The ttyward domain: everything the daemon knows and decides, without the
//! sockets.
//!
//! * [`config`]: the typed configuration (ports, security settings, event
//!   log settings) with validation that reports every bad field at once;
//! * [`password`], [`login`], [`access`]: password policy and hashing, login
//!   messages / lockout / session control, allowlist and DoS settings;
//! * [`event_log`]: the seed's event catalog and the local log.
//!
//! The data plane (`ttyward-engine`) and the management plane use these;
//! this crate opens no sockets.

pub mod access;
pub mod config;
pub mod event_log;
pub mod lockout;
pub mod login;
pub mod password;
pub mod permission;
pub mod store;
