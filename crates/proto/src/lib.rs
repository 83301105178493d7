//! Sans-IO protocol codecs for ttyward.
//!
//! This crate turns bytes into events and events into bytes, and keeps the
//! protocol state in between. It covers:
//!
//! * [`telnet`]: the Telnet byte stream (RFC 854), option negotiation
//!   (RFC 855 with the RFC 1143 "Q method"), IAC escaping.
//! * [`rfc2217`]: the COM-PORT-OPTION (RFC 2217) sub-commands and a server
//!   session that pyserial's `rfc2217://` client can open.
//! * [`packing`]: NPort data packing for the serial → network direction
//!   (packet length, delimiters, force transmit).
//! * [`realcom`]: Moxa's Real COM (ASPP) command channel: commands,
//!   replies, NOTIFY generation and alive polling.
//! * [`dsci`]: the UDP 4800 "DSCI" probes the Real COM driver sends, and
//!   their answers.
//! * [`pair`]: the frames two ttyward ports in Pair Connection mode
//!   exchange (data, modem lines, hello).
//!
//! What it does **not** do: no sockets, no tokio, no reading of the clock.
//! Callers feed received bytes in, collect bytes to send from `out` buffers,
//! and pass the current time as a [`std::time::Instant`] where timing
//! matters. Nothing in here panics on input from the network: the
//! [`fuzzing`] bodies exercise every parser with arbitrary bytes, both under
//! `cargo test` and under `cargo fuzz`.

pub mod dsci;
pub mod packing;
pub mod pair;
pub mod realcom;
pub mod rfc2217;
pub mod rfc2217_client;
pub mod telnet;

#[doc(hidden)]
pub mod fuzzing;
