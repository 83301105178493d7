//! Modem control lines and buffer flushing.
//!
//! [`ModemStatus`] is a snapshot of the inputs (CTS, DSR, DCD, RI) and the
//! outputs ttyward drives (DTR, RTS). It does not track changes over time:
//! the engine compares snapshots to produce RFC 2217 NOTIFY-MODEMSTATE and
//! Real COM line-state messages.

use serde::{Deserialize, Serialize};

/// State of the modem lines of a port, inputs and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct ModemStatus {
    /// Clear To Send (input).
    pub cts: bool,
    /// Data Set Ready (input).
    pub dsr: bool,
    /// Data Carrier Detect (input).
    pub dcd: bool,
    /// Ring Indicator (input).
    pub ri: bool,
    /// Data Terminal Ready (output).
    pub dtr: bool,
    /// Request To Send (output).
    pub rts: bool,
}

impl ModemStatus {
    /// The RFC 2217 modem-state bits of the inputs: CD 0x80, RI 0x40,
    /// DSR 0x20, CTS 0x10. The low "delta" nibble is left to the caller,
    /// which knows the previous state.
    pub fn rfc2217_bits(&self) -> u8 {
        let mut bits = 0;
        if self.dcd {
            bits |= 0x80;
        }
        if self.ri {
            bits |= 0x40;
        }
        if self.dsr {
            bits |= 0x20;
        }
        if self.cts {
            bits |= 0x10;
        }
        bits
    }
}

/// Which buffer [`crate::SerialDevice::flush`] discards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushDirection {
    /// Data received from the device and not read yet (`TCIFLUSH`).
    Input,
    /// Data written to the device and not sent yet (`TCOFLUSH`).
    Output,
    /// Both (`TCIOFLUSH`).
    Both,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2217_bits_map_each_input() {
        let none = ModemStatus::default();
        assert_eq!(none.rfc2217_bits(), 0);
        assert_eq!(ModemStatus { dcd: true, ..none }.rfc2217_bits(), 0x80);
        assert_eq!(ModemStatus { ri: true, ..none }.rfc2217_bits(), 0x40);
        assert_eq!(ModemStatus { dsr: true, ..none }.rfc2217_bits(), 0x20);
        assert_eq!(ModemStatus { cts: true, ..none }.rfc2217_bits(), 0x10);
        // outputs are not part of the RFC 2217 modem state
        assert_eq!(
            ModemStatus {
                dtr: true,
                rts: true,
                ..none
            }
            .rfc2217_bits(),
            0
        );
    }
}
