//! Host → server commands: [`Request`], and the [`CommandDecoder`] that
//! splits the command stream into them (spec §3.1, §4, §13).

use super::{Code, Flow, FlushMode, LineMode};

/// `code len`, before the payload.
const HEADER_LEN: usize = 2;

/// PORT_INIT's payload is 8 bytes; Moxa accepts up to 63 and ignores the
/// rest (§3.1).
const PORT_INIT_LEN: usize = 8;
const PORT_INIT_MAX_LEN: usize = 63;

/// RESET's only accepted payload (§4.13).
const RESET_MAGIC: [u8; 3] = *b"16a";

/// The break lengths BREAK_SEND accepts; Moxa ignores others (§4.10).
const BREAK_SEND_MS: std::ops::RangeInclusive<u16> = 10..=1000;

/// A host → server command, decoded. Each carries what the server needs
/// to act on it; the reply is the caller's to send (see [`Reply`]).
///
/// [`Reply`]: super::Reply
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `2C 08 baud mode dtr rts cts rts ixon ixoff` (§4.1): the open-time
    /// configuration. Reply [`Reply::PortInit`](super::Reply::PortInit),
    /// then turn alive polling on. A `baud_index` of
    /// [`BAUD_NOT_IN_TABLE`](super::BAUD_NOT_IN_TABLE) means "keep the
    /// speed, a SETBAUD follows".
    PortInit {
        /// Index into the §5.1 table.
        baud_index: u8,
        /// Data bits, stop bits, parity.
        mode: LineMode,
        /// Assert DTR.
        dtr: bool,
        /// Assert RTS.
        rts: bool,
        /// Flow control.
        flow: Flow,
    },
    /// `10 02 baud mode` (§4.6). Reply OK.
    Ioctl {
        /// Index into the §5.1 table.
        baud_index: u8,
        /// Data bits, stop bits, parity.
        mode: LineMode,
    },
    /// `11 04 cts rts ixon ixoff` (§4.6). Reply OK.
    FlowCtl(Flow),
    /// `12 02 dtr rts`, the full state (§4.5). Reply OK.
    LineCtrl {
        /// Assert DTR.
        dtr: bool,
        /// Assert RTS.
        rts: bool,
    },
    /// `13 00` (§4.7). Reply [`Reply::LineStatus`](super::Reply::LineStatus).
    LineStatus,
    /// `14 01 mode` (§4.8). Reply OK.
    Flush(FlushMode),
    /// `15 00`. Reply [`Reply::InputQueue`](super::Reply::InputQueue).
    InputQueue,
    /// `16 00`. Reply [`Reply::OutputQueue`](super::Reply::OutputQueue).
    OutputQueue,
    /// `17 04 <u32 LE>` (§4.2). Reply OK, or
    /// [`Reply::Refused`](super::Reply::Refused) for a rate the server
    /// will not take (Moxa: outside
    /// [`MOXA_BAUD_RANGE`](super::MOXA_BAUD_RANGE)).
    SetBaud(u32),
    /// `18 02 xon xoff` (§4.3). Reply OK.
    XonXoff {
        /// The XON character (termios `VSTART`).
        xon: u8,
        /// The XOFF character (termios `VSTOP`).
        xoff: u8,
    },
    /// `20 03 31 36 61` (§4.13). Reply OK; nothing is reset.
    Reset,
    /// `21 00` (§4.10). Reply OK.
    BreakOn,
    /// `22 00`. Reply OK.
    BreakOff,
    /// `23 02 <u16 BE ms>`, only for 10..=1000 ms (§4.10). Break for that
    /// long, then reply OK.
    BreakSend {
        /// Break length in milliseconds.
        ms: u16,
    },
    /// `24 00` (§4.12). Reply OK and turn alive polling on.
    NotifyOn,
    /// `25 00`. Reply OK and turn alive polling off.
    NotifyOff,
    /// `28 01 id`, the answer to a POLL (§4.15). No reply.
    Alive {
        /// The echoed poll id (nobody checks it).
        id: u8,
    },
    /// `2F 04 <u32 LE>` (§4.9): reply
    /// [`Reply::WaitOutputQueue`](super::Reply::WaitOutputQueue) once the
    /// output is drained or the timeout ran out. The timeout is as sent:
    /// the Linux driver means jiffies, Moxa reads milliseconds.
    WaitOutputQueue {
        /// Timeout, as sent.
        timeout: u32,
    },
    /// `30 01 n` (§4.4): n ≤ 1 turns the UART FIFO off. Reply OK.
    TxFifo(u8),
    /// `32 01 x` (§4.13). Reply OK; the value is unused.
    DsrSensitivity(u8),
    /// `33 00` (§4.11): resume transmission as if XON arrived. Reply OK.
    SetXon,
    /// `34 00`: hold transmission as if XOFF arrived. Reply OK.
    SetXoff,
    /// `35 05 mode <u32 LE ms>` (§4.13): flush, later reply
    /// [`Reply::FlushStart`](super::Reply::FlushStart).
    FlushStart {
        /// Which buffers to flush.
        mode: FlushMode,
        /// Timeout in milliseconds.
        timeout_ms: u32,
    },
    /// `36 00`. Reply OK.
    FlushStop,
    /// `37 00`. Reply [`Reply::BreakCount`](super::Reply::BreakCount), then
    /// reset the count.
    BreakCount,
    /// `38 00`. Reply [`Reply::DataStatus`](super::Reply::DataStatus), then
    /// reset the bits.
    DataStatus,
}

impl Request {
    /// The command's code.
    pub fn code(&self) -> Code {
        match self {
            Self::PortInit { .. } => Code::PORT_INIT,
            Self::Ioctl { .. } => Code::IOCTL,
            Self::FlowCtl(_) => Code::FLOWCTL,
            Self::LineCtrl { .. } => Code::LINECTRL,
            Self::LineStatus => Code::LSTATUS,
            Self::Flush(_) => Code::FLUSH,
            Self::InputQueue => Code::IQUEUE,
            Self::OutputQueue => Code::OQUEUE,
            Self::SetBaud(_) => Code::SETBAUD,
            Self::XonXoff { .. } => Code::XONXOFF,
            Self::Reset => Code::RESET,
            Self::BreakOn => Code::BREAK_ON,
            Self::BreakOff => Code::BREAK_OFF,
            Self::BreakSend { .. } => Code::BREAK_SEND,
            Self::NotifyOn => Code::NOTIFY_ON,
            Self::NotifyOff => Code::NOTIFY_OFF,
            Self::Alive { .. } => Code::ALIVE,
            Self::WaitOutputQueue { .. } => Code::WAIT_OQUEUE,
            Self::TxFifo(_) => Code::TX_FIFO,
            Self::DsrSensitivity(_) => Code::DSR_SEN,
            Self::SetXon => Code::SETXON,
            Self::SetXoff => Code::SETXOFF,
            Self::FlushStart { .. } => Code::FLUSH_START,
            Self::FlushStop => Code::FLUSH_STOP,
            Self::BreakCount => Code::BREAK_COUNT,
            Self::DataStatus => Code::DATA_STATUS,
        }
    }

    /// Host-side encoding (what npreal2 sends), for `ttyward attach` and
    /// round-trip tests. Appends `code len data…` to `out`. A BREAK_SEND
    /// outside 10..=1000 ms is encoded as given, and a server ignores it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut frame = |data: &[u8]| {
            out.push(self.code().0);
            // Every payload here is at most 8 bytes.
            out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(data);
        };
        match *self {
            Self::PortInit {
                baud_index,
                mode,
                dtr,
                rts,
                flow,
            } => {
                let [cts_out, rts_in, ixon, ixoff] = flow.to_wire();
                frame(&[
                    baud_index,
                    mode.encode(),
                    u8::from(dtr),
                    u8::from(rts),
                    cts_out,
                    rts_in,
                    ixon,
                    ixoff,
                ]);
            }
            Self::Ioctl { baud_index, mode } => frame(&[baud_index, mode.encode()]),
            Self::FlowCtl(flow) => frame(&flow.to_wire()),
            Self::LineCtrl { dtr, rts } => frame(&[u8::from(dtr), u8::from(rts)]),
            Self::Flush(mode) => frame(&[mode.to_wire()]),
            Self::SetBaud(baud) => frame(&baud.to_le_bytes()),
            Self::XonXoff { xon, xoff } => frame(&[xon, xoff]),
            Self::Reset => frame(&RESET_MAGIC),
            Self::BreakSend { ms } => frame(&ms.to_be_bytes()),
            Self::Alive { id } => frame(&[id]),
            Self::WaitOutputQueue { timeout } => frame(&timeout.to_le_bytes()),
            Self::TxFifo(n) | Self::DsrSensitivity(n) => frame(&[n]),
            Self::FlushStart { mode, timeout_ms } => {
                let [a, b, c, d] = timeout_ms.to_le_bytes();
                frame(&[mode.to_wire(), a, b, c, d]);
            }
            Self::LineStatus
            | Self::InputQueue
            | Self::OutputQueue
            | Self::BreakOn
            | Self::BreakOff
            | Self::NotifyOn
            | Self::NotifyOff
            | Self::SetXon
            | Self::SetXoff
            | Self::FlushStop
            | Self::BreakCount
            | Self::DataStatus => frame(&[]),
        }
    }

    /// Decode one complete command. `None` is Moxa's "no reply": unknown
    /// code, wrong length, or a value out of range.
    fn decode(code: Code, payload: &[u8]) -> Option<Self> {
        let request = match (code, payload) {
            (Code::PORT_INIT, p) if (PORT_INIT_LEN..=PORT_INIT_MAX_LEN).contains(&p.len()) => {
                let &[baud_index, mode, dtr, rts, cts_out, rts_in, ixon, ixoff] =
                    p.first_chunk::<PORT_INIT_LEN>()?;
                Self::PortInit {
                    baud_index,
                    mode: LineMode::decode(mode)?,
                    dtr: dtr != 0,
                    rts: rts != 0,
                    flow: Flow::from_wire([cts_out, rts_in, ixon, ixoff]),
                }
            }
            (Code::IOCTL, &[baud_index, mode]) => Self::Ioctl {
                baud_index,
                mode: LineMode::decode(mode)?,
            },
            (Code::FLOWCTL, &[a, b, c, d]) => Self::FlowCtl(Flow::from_wire([a, b, c, d])),
            (Code::LINECTRL, &[dtr, rts]) => Self::LineCtrl {
                dtr: dtr != 0,
                rts: rts != 0,
            },
            (Code::LSTATUS, []) => Self::LineStatus,
            (Code::FLUSH, &[mode]) => Self::Flush(FlushMode::from_wire(mode)?),
            (Code::IQUEUE, []) => Self::InputQueue,
            (Code::OQUEUE, []) => Self::OutputQueue,
            (Code::SETBAUD, &[a, b, c, d]) => Self::SetBaud(u32::from_le_bytes([a, b, c, d])),
            (Code::XONXOFF, &[xon, xoff]) => Self::XonXoff { xon, xoff },
            (Code::RESET, p) if p == RESET_MAGIC => Self::Reset,
            (Code::BREAK_ON, []) => Self::BreakOn,
            (Code::BREAK_OFF, []) => Self::BreakOff,
            (Code::BREAK_SEND, &[hi, lo]) => {
                let ms = u16::from_be_bytes([hi, lo]);
                if !BREAK_SEND_MS.contains(&ms) {
                    return None;
                }
                Self::BreakSend { ms }
            }
            (Code::NOTIFY_ON, []) => Self::NotifyOn,
            (Code::NOTIFY_OFF, []) => Self::NotifyOff,
            (Code::ALIVE, &[id]) => Self::Alive { id },
            (Code::WAIT_OQUEUE, &[a, b, c, d]) => Self::WaitOutputQueue {
                timeout: u32::from_le_bytes([a, b, c, d]),
            },
            (Code::TX_FIFO, &[n]) => Self::TxFifo(n),
            (Code::DSR_SEN, &[x]) => Self::DsrSensitivity(x),
            (Code::SETXON, []) => Self::SetXon,
            (Code::SETXOFF, []) => Self::SetXoff,
            (Code::FLUSH_START, &[mode, a, b, c, d]) => Self::FlushStart {
                mode: FlushMode::from_wire(mode)?,
                timeout_ms: u32::from_le_bytes([a, b, c, d]),
            },
            (Code::FLUSH_STOP, []) => Self::FlushStop,
            (Code::BREAK_COUNT, []) => Self::BreakCount,
            (Code::DATA_STATUS, []) => Self::DataStatus,
            _ => return None,
        };
        Some(request)
    }
}

/// What the [`CommandDecoder`] yields, one per command on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A command to act on and answer.
    Request(Request),
    /// Unknown code, wrong length for a known code, or an invalid value
    /// (mode byte, flush mode, break length out of range, RESET without
    /// "16a"): Moxa sends no reply (§3.1). Skipped, the stream continues.
    Ignored {
        /// The code as received.
        code: Code,
        /// The length byte as received (that many bytes were skipped).
        len: u8,
    },
}

/// Server side: reassembles the command stream (`code len payload`) across
/// reads, which Moxa's own server does not (it drops a command split over
/// two segments). Holds at most one incomplete command, ≤ 257 bytes.
#[derive(Debug, Default)]
pub struct CommandDecoder {
    /// The start of a command a previous push did not complete.
    partial: Vec<u8>,
}

impl CommandDecoder {
    /// A decoder at the start of a command.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes read from the command connection; appends one
    /// [`Decoded`] per complete command to `out`, in order.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<Decoded>) {
        // Complete the command a previous push left unfinished: header
        // first, then as much payload as the length byte asks for.
        while !self.partial.is_empty() && !input.is_empty() {
            let total = match self.partial.get(1) {
                Some(&len) => HEADER_LEN + usize::from(len),
                None => HEADER_LEN,
            };
            let want = total.saturating_sub(self.partial.len()).min(input.len());
            let (take, rest) = input.split_at(want);
            self.partial.extend_from_slice(take);
            input = rest;
            if let [code, len, payload @ ..] = self.partial.as_slice()
                && payload.len() == usize::from(*len)
            {
                out.push(decode(Code(*code), *len, payload));
                self.partial.clear();
            }
        }
        while let [code, len, rest @ ..] = input {
            let Some((payload, tail)) = rest.split_at_checked(usize::from(*len)) else {
                break;
            };
            out.push(decode(Code(*code), *len, payload));
            input = tail;
        }
        self.partial.extend_from_slice(input);
    }

    /// Bytes of an incomplete command held until the next push.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

fn decode(code: Code, len: u8, payload: &[u8]) -> Decoded {
    match Request::decode(code, payload) {
        Some(request) => Decoded::Request(request),
        None => Decoded::Ignored { code, len },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BAUD_NOT_IN_TABLE, WireParity};
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn decode_all(input: &[u8]) -> Vec<Decoded> {
        let mut decoder = CommandDecoder::new();
        let mut out = Vec::new();
        decoder.push(input, &mut out);
        out
    }

    fn encoded(request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        request.encode(&mut out);
        out
    }

    fn mode(data_bits: u8, two_stop_bits: bool, parity: WireParity) -> LineMode {
        LineMode {
            data_bits,
            two_stop_bits,
            parity,
        }
    }

    const RTS_CTS: Flow = Flow {
        cts_out: true,
        rts_in: true,
        ixon: false,
        ixoff: false,
    };

    /// Every command of §4 / §13 with its exact wire bytes.
    fn golden() -> Vec<(Vec<u8>, Request)> {
        use Request::*;
        let eight_n_one = mode(8, false, WireParity::None);
        vec![
            // §13.1
            (
                vec![0x2C, 0x08, 0x06, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00],
                PortInit {
                    baud_index: 6,
                    mode: eight_n_one,
                    dtr: true,
                    rts: true,
                    flow: Flow::default(),
                },
            ),
            (
                vec![0x2C, 0x08, 0x0A, 0x0B, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00],
                PortInit {
                    baud_index: 10,
                    mode: mode(8, false, WireParity::Even),
                    dtr: true,
                    rts: true,
                    flow: RTS_CTS,
                },
            ),
            (
                vec![0x2C, 0x08, 0x07, 0x1E, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00],
                PortInit {
                    baud_index: 7,
                    mode: mode(7, true, WireParity::Mark),
                    dtr: true,
                    rts: true,
                    flow: Flow::default(),
                },
            ),
            (
                vec![0x2C, 0x08, 0xFF, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00],
                PortInit {
                    baud_index: BAUD_NOT_IN_TABLE,
                    mode: eight_n_one,
                    dtr: true,
                    rts: true,
                    flow: Flow::default(),
                },
            ),
            (
                vec![0x2C, 0x08, 0x08, 0x22, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01],
                PortInit {
                    baud_index: 8,
                    mode: mode(7, false, WireParity::Space),
                    dtr: false,
                    rts: false,
                    flow: Flow {
                        ixon: true,
                        ixoff: true,
                        ..Flow::default()
                    },
                },
            ),
            (vec![0x17, 0x04, 0x90, 0xD0, 0x03, 0x00], SetBaud(250_000)),
            (vec![0x17, 0x04, 0x80, 0x84, 0x1E, 0x00], SetBaud(2_000_000)),
            (
                vec![0x18, 0x02, 0x11, 0x13],
                XonXoff {
                    xon: 0x11,
                    xoff: 0x13,
                },
            ),
            (vec![0x30, 0x01, 0x10], TxFifo(16)),
            // §13.2
            (
                vec![0x12, 0x02, 0x01, 0x00],
                LineCtrl {
                    dtr: true,
                    rts: false,
                },
            ),
            (vec![0x21, 0x00], BreakOn),
            (vec![0x22, 0x00], BreakOff),
            (vec![0x23, 0x02, 0x00, 0xFA], BreakSend { ms: 250 }),
            (vec![0x23, 0x02, 0x00, 0x0A], BreakSend { ms: 10 }),
            (vec![0x23, 0x02, 0x03, 0xE8], BreakSend { ms: 1000 }),
            (vec![0x34, 0x00], SetXoff),
            (vec![0x33, 0x00], SetXon),
            (vec![0x13, 0x00], LineStatus),
            (vec![0x24, 0x00], NotifyOn),
            (vec![0x25, 0x00], NotifyOff),
            // §13.3
            (vec![0x15, 0x00], InputQueue),
            (vec![0x16, 0x00], OutputQueue),
            (vec![0x14, 0x01, 0x00], Flush(FlushMode::Input)),
            (vec![0x14, 0x01, 0x01], Flush(FlushMode::Output)),
            (vec![0x14, 0x01, 0x02], Flush(FlushMode::Both)),
            (
                vec![0x2F, 0x04, 0xD0, 0x07, 0x00, 0x00],
                WaitOutputQueue { timeout: 2000 },
            ),
            (
                vec![0x2F, 0x04, 0xFF, 0xFF, 0xFF, 0x7F],
                WaitOutputQueue {
                    timeout: 0x7FFF_FFFF,
                },
            ),
            (
                vec![0x35, 0x05, 0x02, 0xE8, 0x03, 0x00, 0x00],
                FlushStart {
                    mode: FlushMode::Both,
                    timeout_ms: 1000,
                },
            ),
            (vec![0x36, 0x00], FlushStop),
            (vec![0x37, 0x00], BreakCount),
            (vec![0x38, 0x00], DataStatus),
            (vec![0x20, 0x03, 0x31, 0x36, 0x61], Reset),
            (vec![0x32, 0x01, 0x01], DsrSensitivity(1)),
            (
                vec![0x10, 0x02, 0x06, 0x03],
                Ioctl {
                    baud_index: 6,
                    mode: eight_n_one,
                },
            ),
            (vec![0x11, 0x04, 0x01, 0x01, 0x00, 0x00], FlowCtl(RTS_CTS)),
            // §4.15
            (vec![0x28, 0x01, 0x07], Alive { id: 7 }),
        ]
    }

    #[test]
    fn decodes_and_encodes_every_command() {
        for (wire, request) in golden() {
            assert_eq!(
                decode_all(&wire),
                vec![Decoded::Request(request.clone())],
                "{wire:02X?}"
            );
            assert_eq!(encoded(&request), wire, "{request:?}");
            assert_eq!(Some(&request.code().0), wire.first());
        }
    }

    #[test]
    fn golden_vectors_cover_every_request_variant() {
        let mut codes: Vec<Code> = golden().iter().map(|(_, r)| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 26);
    }

    #[test]
    fn several_commands_in_one_push_come_out_in_order() {
        // §13.4, session recovery.
        let input = [
            0x2C, 0x08, 0x06, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x30, 0x01, 0x10, 0x12,
            0x02, 0x01, 0x01,
        ];
        assert_eq!(
            decode_all(&input),
            vec![
                Decoded::Request(Request::PortInit {
                    baud_index: 6,
                    mode: mode(8, false, WireParity::None),
                    dtr: true,
                    rts: true,
                    flow: Flow::default(),
                }),
                Decoded::Request(Request::TxFifo(16)),
                Decoded::Request(Request::LineCtrl {
                    dtr: true,
                    rts: true
                }),
            ]
        );
    }

    #[test]
    fn a_command_split_across_pushes_yields_exactly_one_request() {
        let mut decoder = CommandDecoder::new();
        let mut out = Vec::new();
        decoder.push(&[0x2C, 0x08, 0x06, 0x03], &mut out);
        assert!(out.is_empty());
        assert_eq!(decoder.buffered(), 4);
        decoder.push(&[0x01, 0x01, 0x00, 0x00, 0x00, 0x00], &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(
            out.first(),
            Some(Decoded::Request(Request::PortInit { baud_index: 6, .. }))
        ));
        assert_eq!(decoder.buffered(), 0);

        // Split between code and length, and one byte at a time.
        out.clear();
        for byte in [0x17, 0x04, 0x90, 0xD0, 0x03, 0x00, 0x21, 0x00] {
            decoder.push(&[byte], &mut out);
        }
        assert_eq!(
            out,
            vec![
                Decoded::Request(Request::SetBaud(250_000)),
                Decoded::Request(Request::BreakOn)
            ]
        );
    }

    #[test]
    fn unknown_codes_are_ignored_and_the_next_command_works() {
        assert_eq!(
            decode_all(&[0x2B, 0x02, 0x41, 0x42, 0x21, 0x00]),
            vec![
                Decoded::Ignored {
                    code: Code::LINKNAME,
                    len: 2
                },
                Decoded::Request(Request::BreakOn)
            ]
        );
        assert_eq!(
            decode_all(&[0x39, 0x00, 0x13, 0x00]),
            vec![
                Decoded::Ignored {
                    code: Code::OPEN,
                    len: 0
                },
                Decoded::Request(Request::LineStatus)
            ]
        );
        // Server → host codes are not commands.
        for code in [0x26, 0x27] {
            assert!(matches!(
                decode_all(&[code, 0x01, 0x00]).as_slice(),
                [Decoded::Ignored { len: 1, .. }]
            ));
        }
    }

    #[test]
    fn wrong_lengths_and_bad_values_are_ignored() {
        let ignored = |code: u8, len: u8| {
            vec![Decoded::Ignored {
                code: Code(code),
                len,
            }]
        };
        assert_eq!(decode_all(&[0x12, 0x01, 0x01]), ignored(0x12, 1));
        assert_eq!(decode_all(&[0x13, 0x01, 0x00]), ignored(0x13, 1));
        // Break lengths outside 10..=1000 ms.
        assert_eq!(decode_all(&[0x23, 0x02, 0x00, 0x05]), ignored(0x23, 2));
        assert_eq!(decode_all(&[0x23, 0x02, 0x03, 0xE9]), ignored(0x23, 2));
        // Flush mode 3, RESET without "16a", undefined parity.
        assert_eq!(decode_all(&[0x14, 0x01, 0x03]), ignored(0x14, 1));
        assert_eq!(
            decode_all(&[0x35, 0x05, 0x07, 0, 0, 0, 0]),
            ignored(0x35, 5)
        );
        assert_eq!(
            decode_all(&[0x20, 0x03, 0x31, 0x36, 0x62]),
            ignored(0x20, 3)
        );
        assert_eq!(decode_all(&[0x20, 0x00]), ignored(0x20, 0));
        assert_eq!(decode_all(&[0x10, 0x02, 0x06, 0x2B]), ignored(0x10, 2));
        assert_eq!(
            decode_all(&[0x2C, 0x08, 0x06, 0x38, 1, 1, 0, 0, 0, 0]),
            ignored(0x2C, 8)
        );
    }

    #[test]
    fn port_init_accepts_lengths_8_to_63_and_ignores_the_extra() {
        let expected = Decoded::Request(Request::PortInit {
            baud_index: 6,
            mode: mode(8, false, WireParity::None),
            dtr: true,
            rts: true,
            flow: Flow::default(),
        });
        for len in 8u8..=63 {
            let mut wire = vec![0x2C, len, 0x06, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00];
            wire.resize(2 + usize::from(len), 0xEE);
            wire.extend([0x21, 0x00]);
            assert_eq!(
                decode_all(&wire),
                vec![expected.clone(), Decoded::Request(Request::BreakOn)],
                "len {len}"
            );
        }
        for len in [0u8, 7, 64, 255] {
            let mut wire = vec![0x2C, len];
            wire.extend(std::iter::repeat_n(0x01, usize::from(len)));
            assert_eq!(
                decode_all(&wire),
                vec![Decoded::Ignored {
                    code: Code::PORT_INIT,
                    len
                }],
                "len {len}"
            );
        }
    }

    #[test]
    fn the_largest_command_is_buffered_whole() {
        let mut decoder = CommandDecoder::new();
        let mut out = Vec::new();
        let mut wire = vec![0x77, 0xFF];
        wire.extend([0xAB; 255]);
        let (head, tail) = wire.split_at(256);
        decoder.push(head, &mut out);
        assert_eq!(decoder.buffered(), 256);
        assert!(out.is_empty());
        decoder.push(tail, &mut out);
        assert_eq!(
            out,
            vec![Decoded::Ignored {
                code: Code(0x77),
                len: 0xFF
            }]
        );
        assert_eq!(decoder.buffered(), 0);
    }

    // ---- property tests ----

    fn any_mode() -> impl Strategy<Value = LineMode> {
        (
            5u8..=8,
            any::<bool>(),
            prop::sample::select(vec![
                WireParity::None,
                WireParity::Even,
                WireParity::Odd,
                WireParity::Mark,
                WireParity::Space,
            ]),
        )
            .prop_map(|(d, s, p)| mode(d, s, p))
    }

    fn any_flow() -> impl Strategy<Value = Flow> {
        any::<[bool; 4]>().prop_map(|[cts_out, rts_in, ixon, ixoff]| Flow {
            cts_out,
            rts_in,
            ixon,
            ixoff,
        })
    }

    fn any_flush_mode() -> impl Strategy<Value = FlushMode> {
        prop::sample::select(vec![FlushMode::Input, FlushMode::Output, FlushMode::Both])
    }

    fn any_request() -> impl Strategy<Value = Request> {
        use Request::*;
        prop_oneof![
            (
                any::<u8>(),
                any_mode(),
                any::<bool>(),
                any::<bool>(),
                any_flow()
            )
                .prop_map(|(baud_index, mode, dtr, rts, flow)| PortInit {
                    baud_index,
                    mode,
                    dtr,
                    rts,
                    flow
                }),
            (any::<u8>(), any_mode()).prop_map(|(baud_index, mode)| Ioctl { baud_index, mode }),
            any_flow().prop_map(FlowCtl),
            (any::<bool>(), any::<bool>()).prop_map(|(dtr, rts)| LineCtrl { dtr, rts }),
            any_flush_mode().prop_map(Flush),
            any::<u32>().prop_map(SetBaud),
            (any::<u8>(), any::<u8>()).prop_map(|(xon, xoff)| XonXoff { xon, xoff }),
            (10u16..=1000).prop_map(|ms| BreakSend { ms }),
            any::<u8>().prop_map(|id| Alive { id }),
            any::<u32>().prop_map(|timeout| WaitOutputQueue { timeout }),
            any::<u8>().prop_map(TxFifo),
            any::<u8>().prop_map(DsrSensitivity),
            (any_flush_mode(), any::<u32>())
                .prop_map(|(mode, timeout_ms)| FlushStart { mode, timeout_ms }),
            prop::sample::select(vec![
                LineStatus,
                InputQueue,
                OutputQueue,
                Reset,
                BreakOn,
                BreakOff,
                NotifyOn,
                NotifyOff,
                SetXon,
                SetXoff,
                FlushStop,
                BreakCount,
                DataStatus,
            ]),
        ]
    }

    /// A command stream mixing valid commands, ignored ones and garbage
    /// frames with honest lengths.
    fn command_stream() -> impl Strategy<Value = Vec<u8>> {
        let frame = prop_oneof![
            3 => any_request().prop_map(|r| encoded(&r)),
            1 => (any::<u8>(), vec(any::<u8>(), 0..70)).prop_map(|(code, data)| {
                let mut v = vec![code, u8::try_from(data.len()).unwrap_or(0)];
                v.extend(data);
                v
            }),
        ];
        vec(frame, 0..24).prop_map(|frames| frames.concat())
    }

    proptest! {
        #[test]
        fn any_request_round_trips(request in any_request()) {
            let wire = encoded(&request);
            prop_assert_eq!(decode_all(&wire), vec![Decoded::Request(request)]);
        }

        #[test]
        fn any_chunking_gives_the_same_commands(
            stream in command_stream(),
            cuts in vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let whole = decode_all(&stream);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut decoder = CommandDecoder::new();
            let mut chunked = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                decoder.push(stream.get(start..cut).unwrap_or_default(), &mut chunked);
                start = cut;
            }
            prop_assert_eq!(whole, chunked);
            prop_assert_eq!(decoder.buffered(), 0);
        }

        #[test]
        fn a_prefix_of_a_command_yields_nothing_yet(request in any_request(), cut in any::<prop::sample::Index>()) {
            let wire = encoded(&request);
            let prefix = wire.get(..cut.index(wire.len())).unwrap_or_default();
            let mut decoder = CommandDecoder::new();
            let mut out = Vec::new();
            decoder.push(prefix, &mut out);
            prop_assert!(out.is_empty());
            prop_assert_eq!(decoder.buffered(), prefix.len());
        }

        #[test]
        fn random_bytes_never_panic_and_stay_bounded(data in vec(any::<u8>(), 0..2048), chunk in 1usize..300) {
            let mut decoder = CommandDecoder::new();
            let mut out = Vec::new();
            for piece in data.chunks(chunk) {
                decoder.push(piece, &mut out);
                prop_assert!(decoder.buffered() <= 257);
            }
            prop_assert!(out.len() <= data.len() / 2);
        }
    }
}
