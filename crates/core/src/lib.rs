//! The ttyward domain.
//!
//! For now this is the typed configuration model of the data plane
//! ([`config`]): what a serial port is set to and which NPort operation mode
//! serves it, with NPort defaults and validation that reports every bad field
//! at once. The store, accounts and the event log join it in later issues.
//! This crate does no IO of its own.

pub mod config;
