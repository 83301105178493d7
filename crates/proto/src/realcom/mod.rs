//! Moxa "Real COM" (ASPP) command channel, sans-IO: the codec a Real COM
//! server needs on its command connection, and the host side of it for
//! `ttyward attach` and for tests. Follows `spec/realcom-protocol.md`.
//!
//! * [`Code`], [`Request`], [`CommandDecoder`]: host → server commands
//!   (`code len data…`, §3.1, §4), reassembled across reads (Moxa's own
//!   server does not). Unknown codes, wrong lengths and invalid values come
//!   out as [`Decoded::Ignored`]: Moxa sends no reply to them, and neither
//!   should we.
//! * [`Reply`], [`ReplyDecoder`]: server → host messages, split with the
//!   fixed length per code that the Linux driver uses (§3.2), `OK`/`NA`
//!   acknowledgements included.
//! * The encodings of §5: the baud-rate index table ([`baud_from_index`],
//!   [`index_for_baud`]), the mode byte ([`LineMode`]), the flow-control
//!   bytes ([`Flow`]).
//! * [`NotifyTracker`]: when to send a NOTIFY and with which delta bits
//!   (§4.14), plus the BREAK_COUNT and DATA_STATUS counters (§4.13).
//! * [`AlivePoller`]: the server's alive polling (§4.15), 40 s idle, then a
//!   poll every 3 s, dead after 4 misses.
//!
//! What it does **not** do: no sockets, no clock (time is passed in as an
//! [`Instant`](std::time::Instant)), no serial port. It does not decide
//! what a command *does*: the caller applies it to the port and sends the
//! [`Reply`] (immediately, or later for WAIT_OQUEUE and FLUSH_START). It
//! does not handle the data connection (raw bytes, no framing), the IPv6
//! 16-byte preamble (§2.3) or TLS (§10). The UDP "DSCI" probes of §9.2 are
//! in [`crate::dsci`].

mod alive;
mod command;
mod notify;
mod reply;

pub use alive::{AliveAction, AlivePoller, AliveTiming};
pub use command::{CommandDecoder, Decoded, Request};
pub use notify::{ModemInputs, NotifyTracker, events, hold, msr};
pub use reply::{HostEvent, Reply, ReplyDecoder};

use std::fmt;
use std::ops::RangeInclusive;

/// A command or reply code, kept open so unknown codes survive decoding
/// (§4). Host → server commands and server → host replies share the code
/// space: a reply carries the code of the command it answers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u8);

impl Code {
    /// IOCTL: baud index and mode byte (Windows drivers; Linux sends PORT_INIT).
    pub const IOCTL: Self = Self(0x10);
    /// FLOWCTL: the four flow-control booleans.
    pub const FLOWCTL: Self = Self(0x11);
    /// LINECTRL: the full DTR/RTS state.
    pub const LINECTRL: Self = Self(0x12);
    /// LSTATUS: query DSR/CTS/DCD.
    pub const LSTATUS: Self = Self(0x13);
    /// FLUSH: discard input, output or both.
    pub const FLUSH: Self = Self(0x14);
    /// IQUEUE: query the serial input queue.
    pub const IQUEUE: Self = Self(0x15);
    /// OQUEUE: query the serial output queue.
    pub const OQUEUE: Self = Self(0x16);
    /// SETBAUD: any baud rate, little-endian u32.
    pub const SETBAUD: Self = Self(0x17);
    /// XONXOFF: the software flow-control characters.
    pub const XONXOFF: Self = Self(0x18);
    /// RESET: `20 03 '1' '6' 'a'`, a no-op on Moxa servers.
    pub const RESET: Self = Self(0x20);
    /// BREAK_ON: start sending break.
    pub const BREAK_ON: Self = Self(0x21);
    /// BREAK_OFF: stop sending break.
    pub const BREAK_OFF: Self = Self(0x22);
    /// BREAK_SEND: a timed break, big-endian milliseconds.
    pub const BREAK_SEND: Self = Self(0x23);
    /// NOTIFY_ON: turn alive polling on for this connection.
    pub const NOTIFY_ON: Self = Self(0x24);
    /// NOTIFY_OFF: turn alive polling off.
    pub const NOTIFY_OFF: Self = Self(0x25);
    /// NOTIFY: server → host line and modem events (§4.14).
    pub const NOTIFY: Self = Self(0x26);
    /// POLL: server → host "are you alive" (§4.15).
    pub const POLL: Self = Self(0x27);
    /// ALIVE: host → server answer to a POLL.
    pub const ALIVE: Self = Self(0x28);
    /// GETCHID: legacy password feature; layout unknown, ignored.
    pub const GETCHID: Self = Self(0x29);
    /// PSWDCHK: legacy password feature; layout unknown, ignored.
    pub const PSWDCHK: Self = Self(0x2A);
    /// LINKNAME: "set connection remote name"; ignored, but the Linux
    /// driver's reply table knows it as a 3-byte acknowledgement.
    pub const LINKNAME: Self = Self(0x2B);
    /// PORT_INIT (Moxa: SETPORT): the open-time configuration (§4.1).
    pub const PORT_INIT: Self = Self(0x2C);
    /// DATAOUT: "output queue free"; must never be sent (§3.2).
    pub const DATAOUT: Self = Self(0x2D);
    /// REXMITTIME: not implemented by Moxa; ignored.
    pub const REXMITTIME: Self = Self(0x2E);
    /// WAIT_OQUEUE: drain, with a delayed reply (§4.9).
    pub const WAIT_OQUEUE: Self = Self(0x2F);
    /// TX_FIFO: UART transmit FIFO size.
    pub const TX_FIFO: Self = Self(0x30);
    /// SET_COMM: not implemented by Moxa; ignored.
    pub const SET_COMM: Self = Self(0x31);
    /// DSR_SEN: DSR sensitivity; acknowledged, value unused.
    pub const DSR_SEN: Self = Self(0x32);
    /// SETXON: act as if XON had been received (resume transmission).
    pub const SETXON: Self = Self(0x33);
    /// SETXOFF: act as if XOFF had been received (hold transmission).
    pub const SETXOFF: Self = Self(0x34);
    /// FLUSH_START: flush, then report unread bytes (delayed reply).
    pub const FLUSH_START: Self = Self(0x35);
    /// FLUSH_STOP: clear the pending flush flags.
    pub const FLUSH_STOP: Self = Self(0x36);
    /// BREAK_COUNT: breaks received since the last query.
    pub const BREAK_COUNT: Self = Self(0x37);
    /// DATA_STATUS: error bits seen since the last query.
    pub const DATA_STATUS: Self = Self(0x38);
    /// "Open", seen only in captures; layout unknown, ignored.
    pub const OPEN: Self = Self(0x39);

    /// The spec's name for a known code, for logs.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::IOCTL => "IOCTL",
            Self::FLOWCTL => "FLOWCTL",
            Self::LINECTRL => "LINECTRL",
            Self::LSTATUS => "LSTATUS",
            Self::FLUSH => "FLUSH",
            Self::IQUEUE => "IQUEUE",
            Self::OQUEUE => "OQUEUE",
            Self::SETBAUD => "SETBAUD",
            Self::XONXOFF => "XONXOFF",
            Self::RESET => "RESET",
            Self::BREAK_ON => "BREAK_ON",
            Self::BREAK_OFF => "BREAK_OFF",
            Self::BREAK_SEND => "BREAK_SEND",
            Self::NOTIFY_ON => "NOTIFY_ON",
            Self::NOTIFY_OFF => "NOTIFY_OFF",
            Self::NOTIFY => "NOTIFY",
            Self::POLL => "POLL",
            Self::ALIVE => "ALIVE",
            Self::GETCHID => "GETCHID",
            Self::PSWDCHK => "PSWDCHK",
            Self::LINKNAME => "LINKNAME",
            Self::PORT_INIT => "PORT_INIT",
            Self::DATAOUT => "DATAOUT",
            Self::REXMITTIME => "REXMITTIME",
            Self::WAIT_OQUEUE => "WAIT_OQUEUE",
            Self::TX_FIFO => "TX_FIFO",
            Self::SET_COMM => "SET_COMM",
            Self::DSR_SEN => "DSR_SEN",
            Self::SETXON => "SETXON",
            Self::SETXOFF => "SETXOFF",
            Self::FLUSH_START => "FLUSH_START",
            Self::FLUSH_STOP => "FLUSH_STOP",
            Self::BREAK_COUNT => "BREAK_COUNT",
            Self::DATA_STATUS => "DATA_STATUS",
            Self::OPEN => "OPEN",
            _ => return None,
        })
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Code(0x{:02X} {name})", self.0),
            None => write!(f, "Code(0x{:02X})", self.0),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:02X} {name}", self.0),
            None => write!(f, "0x{:02X}", self.0),
        }
    }
}

/// The baud index that means "not in the table": a SETBAUD follows, or the
/// host asked for B0 (§5.1). A server should keep the current speed.
pub const BAUD_NOT_IN_TABLE: u8 = 0xFF;

/// The rates Moxa accepts in SETBAUD; it refuses others with `NA` (§4.2).
/// The Linux driver never asks for more than 921600.
pub const MOXA_BAUD_RANGE: RangeInclusive<u32> = 50..=921_600;

/// §5.1, by index. The driver, the server and the independent Go client
/// agree on it; Moxa's configuration UI uses a different table.
const BAUD_TABLE: [u32; 19] = [
    300, 600, 1200, 2400, 4800, 7200, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800,
    921_600, 150, 134, 110, 75, 50,
];

/// The baud rate of a PORT_INIT / IOCTL index; `None` for
/// [`BAUD_NOT_IN_TABLE`] and for indexes the table does not have.
pub fn baud_from_index(index: u8) -> Option<u32> {
    BAUD_TABLE.get(usize::from(index)).copied()
}

/// The index of a baud rate, or [`BAUD_NOT_IN_TABLE`] when the host would
/// send the rate with SETBAUD instead.
pub fn index_for_baud(baud: u32) -> u8 {
    BAUD_TABLE
        .iter()
        .position(|&b| b == baud)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(BAUD_NOT_IN_TABLE)
}

/// Parity as the mode byte carries it (§5.2, mask 0x38). Not Moxa's
/// internal serial-library encoding, which differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireParity {
    /// 0x00.
    None,
    /// 0x08.
    Even,
    /// 0x10.
    Odd,
    /// 0x18 (Linux: `CMSPAR | PARODD`).
    Mark,
    /// 0x20 (Linux: `CMSPAR` without `PARODD`).
    Space,
}

/// Data bits, stop bits and parity: the mode byte of PORT_INIT and IOCTL
/// (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineMode {
    /// 5..=8.
    pub data_bits: u8,
    /// Two stop bits (1.5 with 5 data bits on a 16550).
    pub two_stop_bits: bool,
    /// Parity.
    pub parity: WireParity,
}

impl LineMode {
    const DATA_BITS_MASK: u8 = 0x03;
    const TWO_STOP_BITS: u8 = 0x04;
    const PARITY_MASK: u8 = 0x38;

    /// Decode a mode byte. `None` when the parity bits hold a value the
    /// spec does not define (0x28, 0x30, 0x38). Bits 6–7 have no meaning
    /// and are ignored, as a mode byte with them set is otherwise usable.
    pub fn decode(byte: u8) -> Option<LineMode> {
        let parity = match byte & Self::PARITY_MASK {
            0x00 => WireParity::None,
            0x08 => WireParity::Even,
            0x10 => WireParity::Odd,
            0x18 => WireParity::Mark,
            0x20 => WireParity::Space,
            _ => return None,
        };
        Some(LineMode {
            data_bits: 5 + (byte & Self::DATA_BITS_MASK),
            two_stop_bits: byte & Self::TWO_STOP_BITS != 0,
            parity,
        })
    }

    /// Encode as a mode byte. Data bits outside 5..=8 are clamped into it,
    /// so that encoding cannot fail.
    pub fn encode(&self) -> u8 {
        let data = self.data_bits.clamp(5, 8) - 5;
        let stop = if self.two_stop_bits {
            Self::TWO_STOP_BITS
        } else {
            0
        };
        let parity = match self.parity {
            WireParity::None => 0x00,
            WireParity::Even => 0x08,
            WireParity::Odd => 0x10,
            WireParity::Mark => 0x18,
            WireParity::Space => 0x20,
        };
        data | stop | parity
    }
}

/// The four flow-control booleans of PORT_INIT bytes 6–9 and FLOWCTL (§5.3).
/// There is no DTR/DSR flow control in ASPP: that is a server-side setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Hold transmission while CTS is low (`CRTSCTS`).
    pub cts_out: bool,
    /// Drop RTS when our receive buffer fills (`CRTSCTS`).
    pub rts_in: bool,
    /// Obey received XON/XOFF (`IXON`).
    pub ixon: bool,
    /// Send XON/XOFF (`IXOFF`).
    pub ixoff: bool,
}

impl Flow {
    /// From the four wire bytes; any non-zero byte is "on".
    fn from_wire(bytes: [u8; 4]) -> Self {
        let [cts_out, rts_in, ixon, ixoff] = bytes.map(|b| b != 0);
        Self {
            cts_out,
            rts_in,
            ixon,
            ixoff,
        }
    }

    fn to_wire(self) -> [u8; 4] {
        [self.cts_out, self.rts_in, self.ixon, self.ixoff].map(u8::from)
    }
}

/// Which buffers FLUSH and FLUSH_START discard (§4.8): 0, 1, 2 on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushMode {
    /// 0: data received from the serial line, not yet sent to the host.
    Input,
    /// 1: data from the host, not yet sent on the serial line.
    Output,
    /// 2: both (what the Linux driver always sends).
    Both,
}

impl FlushMode {
    /// From the wire byte; `None` for values other than 0, 1, 2.
    pub fn from_wire(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Input),
            1 => Some(Self::Output),
            2 => Some(Self::Both),
            _ => None,
        }
    }

    /// The wire byte.
    pub fn to_wire(self) -> u8 {
        match self {
            Self::Input => 0,
            Self::Output => 1,
            Self::Both => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baud_table_maps_both_ways() {
        let table: [(u8, u32); 19] = [
            (0, 300),
            (1, 600),
            (2, 1200),
            (3, 2400),
            (4, 4800),
            (5, 7200),
            (6, 9600),
            (7, 19_200),
            (8, 38_400),
            (9, 57_600),
            (10, 115_200),
            (11, 230_400),
            (12, 460_800),
            (13, 921_600),
            (14, 150),
            (15, 134),
            (16, 110),
            (17, 75),
            (18, 50),
        ];
        for (index, baud) in table {
            assert_eq!(baud_from_index(index), Some(baud), "index {index}");
            assert_eq!(index_for_baud(baud), index, "baud {baud}");
        }
        for index in 19..=0xFF {
            assert_eq!(baud_from_index(index), None, "index {index}");
        }
        for baud in [0, 1800, 200, 250_000, 1_000_000, u32::MAX] {
            assert_eq!(index_for_baud(baud), BAUD_NOT_IN_TABLE, "baud {baud}");
        }
    }

    #[test]
    fn mode_byte_decodes_every_parity_data_size_and_stop_bits() {
        let parities = [
            (0x00, WireParity::None),
            (0x08, WireParity::Even),
            (0x10, WireParity::Odd),
            (0x18, WireParity::Mark),
            (0x20, WireParity::Space),
        ];
        for (parity_bits, parity) in parities {
            for (size_bits, data_bits) in [(0, 5), (1, 6), (2, 7), (3, 8)] {
                for (stop_bit, two_stop_bits) in [(0x00, false), (0x04, true)] {
                    let byte = parity_bits | size_bits | stop_bit;
                    let mode = LineMode {
                        data_bits,
                        two_stop_bits,
                        parity,
                    };
                    assert_eq!(LineMode::decode(byte), Some(mode), "byte {byte:#04x}");
                    assert_eq!(mode.encode(), byte);
                }
            }
        }
    }

    #[test]
    fn mode_byte_golden_vectors_from_the_spec() {
        // §13.1: 8N1 = 0x03, 8E1 = 0x0B, 7M2 = 2 | 4 | 0x18 = 0x1E.
        let eight_n_one = LineMode {
            data_bits: 8,
            two_stop_bits: false,
            parity: WireParity::None,
        };
        assert_eq!(LineMode::decode(0x03), Some(eight_n_one));
        assert_eq!(
            LineMode::decode(0x0B).map(|m| m.parity),
            Some(WireParity::Even)
        );
        assert_eq!(
            LineMode::decode(0x1E),
            Some(LineMode {
                data_bits: 7,
                two_stop_bits: true,
                parity: WireParity::Mark,
            })
        );
    }

    #[test]
    fn mode_byte_rejects_undefined_parity_and_ignores_high_bits() {
        for bits in [0x28, 0x30, 0x38] {
            assert_eq!(LineMode::decode(bits | 0x03), None, "parity {bits:#04x}");
        }
        assert_eq!(LineMode::decode(0xC3), LineMode::decode(0x03));
    }

    #[test]
    fn mode_byte_encoding_clamps_data_bits() {
        let mode = |data_bits| LineMode {
            data_bits,
            two_stop_bits: false,
            parity: WireParity::None,
        };
        assert_eq!(mode(9).encode(), 0x03);
        assert_eq!(mode(0).encode(), 0x00);
    }

    #[test]
    fn flush_mode_wire_values() {
        for (byte, mode) in [
            (0, FlushMode::Input),
            (1, FlushMode::Output),
            (2, FlushMode::Both),
        ] {
            assert_eq!(FlushMode::from_wire(byte), Some(mode));
            assert_eq!(mode.to_wire(), byte);
        }
        assert_eq!(FlushMode::from_wire(3), None);
        assert_eq!(FlushMode::from_wire(0xFF), None);
    }

    #[test]
    fn codes_print_with_their_names() {
        assert_eq!(format!("{:?}", Code::PORT_INIT), "Code(0x2C PORT_INIT)");
        assert_eq!(format!("{}", Code(0x99)), "0x99");
        assert_eq!(Code(0x17), Code::SETBAUD);
    }
}
