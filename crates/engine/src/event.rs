//! Events the data plane reports (device lost/recovered, sessions opened,
//! closed, dropped). The daemon turns them into event-log entries; `bridge`
//! prints them. They travel on a broadcast channel: a subscriber that falls
//! behind loses old events, the data path never waits for it.

use std::net::SocketAddr;
use std::time::SystemTime;

/// One thing that happened on a port.
#[derive(Clone, Debug)]
pub struct EngineEvent {
    /// When it happened.
    pub time: SystemTime,
    /// The serial port number.
    pub port: u16,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The device was opened (first time, or again after it was missing).
    DeviceOpened {
        /// True when it had been missing before.
        recovered: bool,
    },
    /// The device could not be opened or stopped answering.
    DeviceMissing {
        /// The error, for the log.
        error: String,
    },
    /// The port stopped serving because its configuration changed.
    PortStopped {
        /// `disabled`, `removed` or `reconfigured` (it starts again with
        /// the new settings).
        reason: &'static str,
    },
    /// A network session started.
    SessionOpened {
        /// The peer.
        peer: SocketAddr,
    },
    /// A network session ended.
    SessionClosed {
        /// The peer.
        peer: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// A connection was refused (max connections, device missing).
    ConnectionRefused {
        /// The peer.
        peer: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The Gate refused a connection or datagram (allowlist or DoS
    /// defence). Reported for the first refusal of a burst, then once per
    /// [`crate::gate::REPORT_EVERY`] with the count in between.
    GateRefused {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: crate::gate::Refusal,
        /// Refused for the same reason since the last report, not reported.
        suppressed: u64,
    },
    /// A session was dropped because it did not take data.
    SessionJammed,
    /// A TCP client connection attempt failed.
    ConnectFailed {
        /// Destination as configured.
        destination: String,
        /// The error.
        error: String,
    },
    /// A serial setting requested by a client could not be applied.
    SettingRefused {
        /// The error.
        error: String,
    },
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventKind::DeviceOpened { recovered: false } => write!(f, "device opened"),
            EventKind::DeviceOpened { recovered: true } => write!(f, "device recovered"),
            EventKind::DeviceMissing { error } => write!(f, "device missing: {error}"),
            EventKind::PortStopped { reason } => write!(f, "port stopped: {reason}"),
            EventKind::SessionOpened { peer } => write!(f, "session opened from {peer}"),
            EventKind::SessionClosed { peer, reason } => {
                write!(f, "session {peer} closed: {reason}")
            }
            EventKind::ConnectionRefused { peer, reason } => {
                write!(f, "connection from {peer} refused: {reason}")
            }
            EventKind::GateRefused {
                peer,
                reason,
                suppressed: 0,
            } => write!(f, "connection from {peer} refused: {reason}"),
            EventKind::GateRefused {
                peer,
                reason,
                suppressed,
            } => write!(
                f,
                "connection from {peer} refused: {reason} ({suppressed} more refused for this reason since the last report)"
            ),
            EventKind::SessionJammed => write!(f, "session dropped: not taking data"),
            EventKind::ConnectFailed { destination, error } => {
                write!(f, "connect to {destination} failed: {error}")
            }
            EventKind::SettingRefused { error } => write!(f, "serial setting refused: {error}"),
        }
    }
}

/// Sender side, cheap to clone.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: tokio::sync::broadcast::Sender<EngineEvent>,
}

impl EventSink {
    /// A sink keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        EventSink {
            tx: tokio::sync::broadcast::channel(capacity).0,
        }
    }

    /// Report an event; never blocks.
    pub fn emit(&self, port: u16, kind: EventKind) {
        match kind {
            EventKind::DeviceOpened { .. }
            | EventKind::PortStopped { .. }
            | EventKind::SessionOpened { .. }
            | EventKind::SessionClosed { .. } => {
                tracing::info!(port, "{kind}")
            }
            _ => tracing::warn!(port, "{kind}"),
        }
        let _ = self.tx.send(EngineEvent {
            time: SystemTime::now(),
            port,
            kind,
        });
    }

    /// Receive events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }
}
