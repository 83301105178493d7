//! NOTIFY generation (spec §4.14): [`NotifyTracker`] remembers what the
//! host was last told and says when a `26 events msr hold` is due. It also
//! keeps the BREAK_COUNT and DATA_STATUS counters (§4.13), which Moxa
//! derives from the same events.

use super::Reply;

/// The `events` byte of a NOTIFY.
pub mod events {
    /// Parity error.
    pub const PARITY_ERROR: u8 = 0x01;
    /// Framing error.
    pub const FRAMING_ERROR: u8 = 0x02;
    /// Hardware (UART) overrun.
    pub const HARDWARE_OVERRUN: u8 = 0x04;
    /// Software (buffer) overrun.
    pub const SOFTWARE_OVERRUN: u8 = 0x08;
    /// Break received: the Linux driver inserts a NUL flagged TTY_BREAK.
    pub const BREAK: u8 = 0x10;
    /// Modem status changed: the driver reloads CTS/DSR/DCD from `msr`.
    pub const MODEM_CHANGED: u8 = 0x20;
    /// Line status changed, with data (server-defined, unused by Linux).
    pub const LINE_CHANGED_WITH_DATA: u8 = 0x40;
    /// Line status changed, no data (server-defined, unused by Linux).
    pub const LINE_CHANGED_NO_DATA: u8 = 0x80;
    /// The error bits DATA_STATUS reports.
    pub const ERRORS: u8 = PARITY_ERROR | FRAMING_ERROR | HARDWARE_OVERRUN | SOFTWARE_OVERRUN;
}

/// The `msr` byte of a NOTIFY, in the 16550 MSR layout.
pub mod msr {
    /// CTS is high.
    pub const CTS: u8 = 0x10;
    /// DSR is high.
    pub const DSR: u8 = 0x20;
    /// RI is high (the Linux driver ignores it).
    pub const RI: u8 = 0x40;
    /// DCD is high.
    pub const DCD: u8 = 0x80;
    /// CTS changed since the last NOTIFY.
    pub const DELTA_CTS: u8 = 0x01;
    /// DSR changed.
    pub const DELTA_DSR: u8 = 0x02;
    /// RI changed.
    pub const DELTA_RI: u8 = 0x04;
    /// DCD changed.
    pub const DELTA_DCD: u8 = 0x08;
}

/// The `hold` byte of a NOTIFY: why our transmission to the serial line is
/// held. Linux ignores it.
pub mod hold {
    /// Held by CTS low.
    pub const BY_CTS: u8 = 0x01;
    /// Held by DSR low.
    pub const BY_DSR: u8 = 0x02;
    /// Held by DCD low.
    pub const BY_DCD: u8 = 0x04;
    /// Held because XOFF was received.
    pub const BY_XOFF_RECEIVED: u8 = 0x08;
    /// We sent XOFF.
    pub const XOFF_SENT: u8 = 0x10;
    /// Always set by Moxa: "new-version format".
    pub const NEW_FORMAT: u8 = 0x80;
}

/// Modem-line input levels (16550 MSR high nibble: 0x10 CTS, 0x20 DSR,
/// 0x40 RI, 0x80 DCD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModemInputs {
    /// Clear to send.
    pub cts: bool,
    /// Data set ready.
    pub dsr: bool,
    /// Ring indicator.
    pub ri: bool,
    /// Data carrier detect.
    pub dcd: bool,
}

impl ModemInputs {
    /// The levels as an MSR high nibble (delta bits clear).
    pub fn msr_levels(&self) -> u8 {
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        bit(self.cts, msr::CTS)
            | bit(self.dsr, msr::DSR)
            | bit(self.ri, msr::RI)
            | bit(self.dcd, msr::DCD)
    }

    /// From an MSR byte; the delta bits are ignored.
    pub fn from_msr(byte: u8) -> Self {
        Self {
            cts: byte & msr::CTS != 0,
            dsr: byte & msr::DSR != 0,
            ri: byte & msr::RI != 0,
            dcd: byte & msr::DCD != 0,
        }
    }
}

/// Remembers the last reported MSR and hold state (both start "all low",
/// as Moxa's detector does, so the first PORT_INIT reply is followed by a
/// NOTIFY when any input is high) and builds the NOTIFY when something
/// changed. One per command connection.
#[derive(Debug, Default)]
pub struct NotifyTracker {
    /// High nibble of the last reported MSR.
    levels: u8,
    /// Last reported hold bits, without [`hold::NEW_FORMAT`].
    hold: u8,
    /// Breaks seen since the last BREAK_COUNT.
    breaks: u16,
    /// Error bits seen since the last DATA_STATUS.
    errors: u8,
}

impl NotifyTracker {
    /// A tracker that believes every line is low.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a Notify when the lines changed (event bit 0x20, delta bits
    /// in the low nibble), the hold state changed, or `events` (error and
    /// break bits, see [`events`]) is non-zero. `hold` is ORed with 0x80.
    /// Call it when the port reports new levels or events, and after
    /// answering LSTATUS, NOTIFY_ON and PORT_INIT (whose reply the NOTIFY
    /// may follow in the same write).
    pub fn update(&mut self, lines: ModemInputs, events: u8, hold: u8) -> Option<Reply> {
        let levels = lines.msr_levels();
        let delta = (levels ^ self.levels) >> 4;
        let events = if delta != 0 {
            events | events::MODEM_CHANGED
        } else {
            events
        };
        let hold = hold & !hold::NEW_FORMAT;
        let hold_changed = hold != self.hold;
        self.levels = levels;
        self.hold = hold;
        self.errors |= events & events::ERRORS;
        if events & events::BREAK != 0 {
            self.breaks = self.breaks.saturating_add(1);
        }
        (events != 0 || hold_changed).then_some(Reply::Notify {
            events,
            msr: levels | delta,
            hold: hold | hold::NEW_FORMAT,
        })
    }

    /// The lines as last reported to the host.
    pub fn reported(&self) -> ModemInputs {
        ModemInputs::from_msr(self.levels)
    }

    /// The BREAK_COUNT answer: breaks reported since the last call, which
    /// resets the count.
    pub fn take_break_count(&mut self) -> u16 {
        std::mem::take(&mut self.breaks)
    }

    /// The DATA_STATUS answer: error bits (0x0F) reported since the last
    /// call, which clears them.
    pub fn take_error_bits(&mut self) -> u8 {
        std::mem::take(&mut self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(events: u8, msr: u8, hold: u8) -> Option<Reply> {
        Some(Reply::Notify { events, msr, hold })
    }

    const CTS: ModemInputs = ModemInputs {
        cts: true,
        dsr: false,
        ri: false,
        dcd: false,
    };

    #[test]
    fn first_update_with_cts_high_reports_it_as_a_change() {
        let mut tracker = NotifyTracker::new();
        let reply = tracker.update(CTS, 0, 0);
        assert_eq!(reply, notify(0x20, 0x11, 0x80));
        let mut wire = Vec::new();
        if let Some(reply) = reply {
            reply.encode(&mut wire);
        }
        assert_eq!(wire, [0x26, 0x20, 0x11, 0x80]);
        assert_eq!(tracker.reported(), CTS);
    }

    #[test]
    fn no_change_gives_nothing() {
        let mut tracker = NotifyTracker::new();
        assert_eq!(tracker.update(ModemInputs::default(), 0, 0), None);
        tracker.update(CTS, 0, 0);
        assert_eq!(tracker.update(CTS, 0, 0), None);
        assert_eq!(tracker.update(CTS, 0, hold::NEW_FORMAT), None);
    }

    #[test]
    fn falling_dsr_sets_its_delta_bit() {
        let mut tracker = NotifyTracker::new();
        let all = ModemInputs {
            cts: true,
            dsr: true,
            ri: false,
            dcd: true,
        };
        assert_eq!(tracker.update(all, 0, 0), notify(0x20, 0xB0 | 0x0B, 0x80));
        let dsr_low = ModemInputs { dsr: false, ..all };
        assert_eq!(
            tracker.update(dsr_low, 0, 0),
            notify(0x20, 0x90 | msr::DELTA_DSR, 0x80)
        );
    }

    #[test]
    fn ri_changes_are_reported_too() {
        let mut tracker = NotifyTracker::new();
        let ring = ModemInputs {
            ri: true,
            ..ModemInputs::default()
        };
        assert_eq!(tracker.update(ring, 0, 0), notify(0x20, 0x44, 0x80));
        assert_eq!(
            tracker.update(ModemInputs::default(), 0, 0),
            notify(0x20, 0x04, 0x80)
        );
    }

    #[test]
    fn events_are_reported_without_a_line_change() {
        let mut tracker = NotifyTracker::new();
        tracker.update(CTS, 0, 0);
        assert_eq!(
            tracker.update(CTS, events::BREAK, 0),
            notify(0x10, 0x10, 0x80)
        );
        assert_eq!(
            tracker.update(CTS, events::PARITY_ERROR | events::FRAMING_ERROR, 0),
            notify(0x03, 0x10, 0x80)
        );
    }

    #[test]
    fn hold_changes_are_reported() {
        let mut tracker = NotifyTracker::new();
        assert_eq!(
            tracker.update(ModemInputs::default(), 0, hold::BY_CTS),
            notify(0, 0, 0x81)
        );
        assert_eq!(
            tracker.update(ModemInputs::default(), 0, hold::BY_CTS),
            None
        );
        assert_eq!(
            tracker.update(ModemInputs::default(), 0, 0),
            notify(0, 0, 0x80)
        );
    }

    #[test]
    fn counts_breaks_and_collects_error_bits_until_asked() {
        let mut tracker = NotifyTracker::new();
        let none = ModemInputs::default();
        tracker.update(none, events::BREAK, 0);
        tracker.update(none, events::BREAK | events::PARITY_ERROR, 0);
        tracker.update(none, events::HARDWARE_OVERRUN, 0);
        assert_eq!(tracker.take_break_count(), 2);
        assert_eq!(tracker.take_break_count(), 0);
        assert_eq!(tracker.take_error_bits(), 0x05);
        assert_eq!(tracker.take_error_bits(), 0);
    }

    #[test]
    fn modem_inputs_map_to_msr_bits() {
        for byte in 0..=0xFFu8 {
            let lines = ModemInputs::from_msr(byte);
            assert_eq!(lines.msr_levels(), byte & 0xF0);
        }
    }
}
