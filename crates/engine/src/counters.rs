//! Per-port traffic counters, updated lock-free on the data path and read by
//! the dashboard and metrics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one port. Monotonic except `connections_active`.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Bytes read from the serial device.
    pub device_rx_bytes: AtomicU64,
    /// Bytes written to the serial device.
    pub device_tx_bytes: AtomicU64,
    /// Frames (after packing) handed to the network sessions.
    pub net_tx_frames: AtomicU64,
    /// Chunks received from the network and queued for the device.
    pub net_rx_frames: AtomicU64,
    /// Device bytes read while no session was attached (dropped, as on the NPort).
    pub device_rx_discarded: AtomicU64,
    /// Sessions ever accepted or connected.
    pub connections_total: AtomicU64,
    /// Sessions open now.
    pub connections_active: AtomicU64,
    /// Connections refused (max connections reached, device missing).
    pub connections_refused: AtomicU64,
    /// Sessions dropped because they did not keep up.
    pub sessions_jammed: AtomicU64,
    /// Times the device went missing.
    pub device_lost: AtomicU64,
}

/// A copy of [`PortCounters`] at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // same fields as PortCounters
pub struct CountersSnapshot {
    pub device_rx_bytes: u64,
    pub device_tx_bytes: u64,
    pub net_tx_frames: u64,
    pub net_rx_frames: u64,
    pub device_rx_discarded: u64,
    pub connections_total: u64,
    pub connections_active: u64,
    pub connections_refused: u64,
    pub sessions_jammed: u64,
    pub device_lost: u64,
}

impl PortCounters {
    /// Read every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            device_rx_bytes: self.device_rx_bytes.load(Relaxed),
            device_tx_bytes: self.device_tx_bytes.load(Relaxed),
            net_tx_frames: self.net_tx_frames.load(Relaxed),
            net_rx_frames: self.net_rx_frames.load(Relaxed),
            device_rx_discarded: self.device_rx_discarded.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            sessions_jammed: self.sessions_jammed.load(Relaxed),
            device_lost: self.device_lost.load(Relaxed),
        }
    }
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

/// Bytes to and from every device of the process since [`take_moved`] was
/// last called: how bulky the runtime's last spell of work was, which
/// decides whether it busy-polls before sleeping
/// (`ttyward_serial::busy_poll`).
static MOVED: AtomicU64 = AtomicU64::new(0);

/// Bytes to and from devices since the last call (process-wide).
pub fn take_moved() -> u64 {
    MOVED.swap(0, Relaxed)
}

/// [`add`] for a device byte counter, counted in [`take_moved`] as well.
pub(crate) fn add_device_bytes(counter: &AtomicU64, n: usize) {
    add(counter, n);
    MOVED.fetch_add(n as u64, Relaxed);
}
