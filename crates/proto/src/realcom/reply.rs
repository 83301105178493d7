//! Server → host messages: [`Reply`], and the host side's
//! [`ReplyDecoder`] (spec §3.2, §4, §13).

use super::Code;

/// Bytes 1–2 of a positive acknowledgement.
const OK: [u8; 2] = *b"OK";
/// Bytes 1–2 of a refusal (Moxa: SETBAUD out of range).
const NA: [u8; 2] = *b"NA";

/// A server → host message. Each encodes to a fixed length the Linux
/// driver knows for its code (§3.2); write each with one `write()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `code 4F 4B`: the command was done.
    Ok(Code),
    /// `code 4E 41`: refused. Moxa sends it only for SETBAUD out of range;
    /// the driver turns it into `EIO`.
    Refused(Code),
    /// `2C 03 dsr cts dcd`, each 0 or 1 (§4.1). The decoder reads any
    /// non-zero byte as 1, except all three `FF`: [`Reply::PortInitRefused`].
    PortInit {
        /// DSR is high.
        dsr: bool,
        /// CTS is high.
        cts: bool,
        /// DCD is high.
        dcd: bool,
    },
    /// `2C 03 FF FF FF`: the PORT_INIT was refused. The Linux driver then
    /// puts the old baud rate back into termios (§4.1). Moxa never sends
    /// it; a server can use it for a baud rate it cannot set.
    PortInitRefused,
    /// `13 03 dsr cts dcd` (§4.7).
    LineStatus {
        /// DSR is high.
        dsr: bool,
        /// CTS is high.
        cts: bool,
        /// DCD is high.
        dcd: bool,
    },
    /// `15 02 lo hi`: bytes in the serial input queue.
    InputQueue(u16),
    /// `16 02 lo hi`: bytes in the serial output queue.
    OutputQueue(u16),
    /// `2F 02 lo hi`: bytes still pending when the drain ended (0 =
    /// drained; the driver only trusts zero / non-zero, §4.9).
    WaitOutputQueue(u16),
    /// `35 04 lo hi 00 00`: unread bytes at the end of a FLUSH_START.
    FlushStart(u16),
    /// `37 02 hi lo`: breaks since the last query. **Big-endian**, unlike
    /// every other count (§4.13).
    BreakCount(u16),
    /// `38 01 bits`: error bits (0x0F) since the last query.
    DataStatus(u8),
    /// `26 events msr hold` (§4.14); see [`events`](super::events),
    /// [`msr`](super::msr), [`hold`](super::hold).
    Notify {
        /// Event bits.
        events: u8,
        /// Line levels (high nibble) and delta bits (low nibble).
        msr: u8,
        /// Why transmission is held, ORed with 0x80.
        hold: u8,
    },
    /// `27 01 id`: "are you alive?" (§4.15).
    Poll {
        /// Poll id, never 0.
        id: u8,
    },
}

impl Reply {
    /// The code the reply starts with.
    pub fn code(&self) -> Code {
        match self {
            Self::Ok(code) | Self::Refused(code) => *code,
            Self::PortInit { .. } | Self::PortInitRefused => Code::PORT_INIT,
            Self::LineStatus { .. } => Code::LSTATUS,
            Self::InputQueue(_) => Code::IQUEUE,
            Self::OutputQueue(_) => Code::OQUEUE,
            Self::WaitOutputQueue(_) => Code::WAIT_OQUEUE,
            Self::FlushStart(_) => Code::FLUSH_START,
            Self::BreakCount(_) => Code::BREAK_COUNT,
            Self::DataStatus(_) => Code::DATA_STATUS,
            Self::Notify { .. } => Code::NOTIFY,
            Self::Poll { .. } => Code::POLL,
        }
    }

    /// Appends the reply's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let code = self.code().0;
        let status = |dsr, cts, dcd| [0x03, u8::from(dsr), u8::from(cts), u8::from(dcd)];
        let count = |n: u16| {
            let [lo, hi] = n.to_le_bytes();
            [0x02, lo, hi]
        };
        out.push(code);
        match *self {
            Self::Ok(_) => out.extend_from_slice(&OK),
            Self::Refused(_) => out.extend_from_slice(&NA),
            Self::PortInit { dsr, cts, dcd } | Self::LineStatus { dsr, cts, dcd } => {
                out.extend_from_slice(&status(dsr, cts, dcd));
            }
            Self::PortInitRefused => out.extend_from_slice(&[0x03, 0xFF, 0xFF, 0xFF]),
            Self::InputQueue(n) | Self::OutputQueue(n) | Self::WaitOutputQueue(n) => {
                out.extend_from_slice(&count(n));
            }
            Self::FlushStart(n) => {
                let [lo, hi] = n.to_le_bytes();
                out.extend_from_slice(&[0x04, lo, hi, 0x00, 0x00]);
            }
            Self::BreakCount(n) => {
                let [hi, lo] = n.to_be_bytes();
                out.extend_from_slice(&[0x02, hi, lo]);
            }
            Self::DataStatus(bits) => out.extend_from_slice(&[0x01, bits]),
            Self::Notify { events, msr, hold } => out.extend_from_slice(&[events, msr, hold]),
            Self::Poll { id } => out.extend_from_slice(&[0x01, id]),
        }
    }
}

/// What the host side makes of the server's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// A well-formed reply.
    Reply(Reply),
    /// A code the host does not expect (the rest of that read was thrown
    /// away, as npreal2 does), or a known code whose fixed bytes are wrong
    /// (e.g. `12 58 58` instead of `12 4F 4B`; only its fixed length was
    /// consumed). Either way the command it answers failed.
    Unknown(Code),
}

/// Host side: splits the server → host stream with a fixed length per code
/// (§3.2), reassembling a reply split across reads (npreal2 does not). An
/// unknown code yields [`HostEvent::Unknown`] and discards the rest of that
/// input, as npreal2 does: there is no length field to resynchronise on.
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    /// The start of a reply a previous push did not complete (≤ 5 bytes).
    partial: Vec<u8>,
}

impl ReplyDecoder {
    /// A decoder at the start of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes read from the command connection; appends one
    /// [`HostEvent`] per reply to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<HostEvent>) {
        if let Some(&code) = self.partial.first() {
            // Only known codes are ever kept, so the length is known.
            let total = reply_len(Code(code)).unwrap_or(1);
            let want = total.saturating_sub(self.partial.len()).min(input.len());
            let (take, rest) = input.split_at(want);
            self.partial.extend_from_slice(take);
            input = rest;
            if self.partial.len() < total {
                return;
            }
            out.push(parse(&self.partial));
            self.partial.clear();
        }
        while let Some(&code) = input.first() {
            let Some(total) = reply_len(Code(code)) else {
                out.push(HostEvent::Unknown(Code(code)));
                return;
            };
            let Some((reply, rest)) = input.split_at_checked(total) else {
                self.partial.extend_from_slice(input);
                return;
            };
            out.push(parse(reply));
            input = rest;
        }
    }
}

/// Total length of a reply by its code (§3.2, extended with the replies of
/// the Windows-era commands, which npreal2 never asks for).
fn reply_len(code: Code) -> Option<usize> {
    Some(match code {
        Code::NOTIFY | Code::WAIT_OQUEUE | Code::OQUEUE | Code::IQUEUE | Code::BREAK_COUNT => 4,
        Code::LSTATUS | Code::PORT_INIT => 5,
        Code::FLUSH_START => 6,
        Code::POLL | Code::DATA_STATUS => 3,
        code if is_acknowledged(code) => 3,
        _ => return None,
    })
}

/// Codes whose reply is `code 4F 4B` (or `code 4E 41`). The driver's table
/// (§3.2) plus RESET, BREAK_SEND, DSR_SEN and FLUSH_STOP.
pub(super) fn is_acknowledged(code: Code) -> bool {
    matches!(
        code,
        Code::IOCTL
            | Code::FLOWCTL
            | Code::LINECTRL
            | Code::FLUSH
            | Code::SETBAUD
            | Code::XONXOFF
            | Code::RESET
            | Code::BREAK_ON
            | Code::BREAK_OFF
            | Code::BREAK_SEND
            | Code::NOTIFY_ON
            | Code::NOTIFY_OFF
            | Code::LINKNAME
            | Code::TX_FIFO
            | Code::DSR_SEN
            | Code::SETXON
            | Code::SETXOFF
            | Code::FLUSH_STOP
    )
}

/// One complete reply of a known code's fixed length.
fn parse(bytes: &[u8]) -> HostEvent {
    let reply = match *bytes {
        [code, b'O', b'K'] if is_acknowledged(Code(code)) => Reply::Ok(Code(code)),
        [code, b'N', b'A'] if is_acknowledged(Code(code)) => Reply::Refused(Code(code)),
        [0x2C, 0x03, 0xFF, 0xFF, 0xFF] => Reply::PortInitRefused,
        [0x2C, 0x03, dsr, cts, dcd] => Reply::PortInit {
            dsr: dsr != 0,
            cts: cts != 0,
            dcd: dcd != 0,
        },
        [0x13, 0x03, dsr, cts, dcd] => Reply::LineStatus {
            dsr: dsr != 0,
            cts: cts != 0,
            dcd: dcd != 0,
        },
        [0x15, 0x02, lo, hi] => Reply::InputQueue(u16::from_le_bytes([lo, hi])),
        [0x16, 0x02, lo, hi] => Reply::OutputQueue(u16::from_le_bytes([lo, hi])),
        [0x2F, 0x02, lo, hi] => Reply::WaitOutputQueue(u16::from_le_bytes([lo, hi])),
        [0x35, 0x04, lo, hi, _, _] => Reply::FlushStart(u16::from_le_bytes([lo, hi])),
        [0x37, 0x02, hi, lo] => Reply::BreakCount(u16::from_be_bytes([hi, lo])),
        [0x38, 0x01, bits] => Reply::DataStatus(bits),
        [0x26, events, msr, hold] => Reply::Notify { events, msr, hold },
        [0x27, 0x01, id] => Reply::Poll { id },
        _ => return HostEvent::Unknown(Code(bytes.first().copied().unwrap_or(0))),
    };
    HostEvent::Reply(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    fn decode_all(input: &[u8]) -> Vec<HostEvent> {
        let mut decoder = ReplyDecoder::new();
        let mut out = Vec::new();
        decoder.push(input, &mut out);
        out
    }

    /// Every reply of §4 / §13 with its exact bytes.
    fn golden() -> Vec<(Reply, Vec<u8>)> {
        use Reply::*;
        vec![
            (
                PortInit {
                    dsr: true,
                    cts: false,
                    dcd: true,
                },
                vec![0x2C, 0x03, 0x01, 0x00, 0x01],
            ),
            (
                PortInit {
                    dsr: false,
                    cts: false,
                    dcd: false,
                },
                vec![0x2C, 0x03, 0x00, 0x00, 0x00],
            ),
            (PortInitRefused, vec![0x2C, 0x03, 0xFF, 0xFF, 0xFF]),
            (
                LineStatus {
                    dsr: false,
                    cts: true,
                    dcd: false,
                },
                vec![0x13, 0x03, 0x00, 0x01, 0x00],
            ),
            (Ok(Code::SETBAUD), vec![0x17, 0x4F, 0x4B]),
            (Refused(Code::SETBAUD), vec![0x17, 0x4E, 0x41]),
            (Ok(Code::XONXOFF), vec![0x18, 0x4F, 0x4B]),
            (Ok(Code::TX_FIFO), vec![0x30, 0x4F, 0x4B]),
            (Ok(Code::LINECTRL), vec![0x12, 0x4F, 0x4B]),
            (Ok(Code::BREAK_ON), vec![0x21, 0x4F, 0x4B]),
            (Ok(Code::BREAK_OFF), vec![0x22, 0x4F, 0x4B]),
            (Ok(Code::BREAK_SEND), vec![0x23, 0x4F, 0x4B]),
            (Ok(Code::SETXOFF), vec![0x34, 0x4F, 0x4B]),
            (Ok(Code::SETXON), vec![0x33, 0x4F, 0x4B]),
            (Ok(Code::NOTIFY_ON), vec![0x24, 0x4F, 0x4B]),
            (Ok(Code::NOTIFY_OFF), vec![0x25, 0x4F, 0x4B]),
            (Ok(Code::FLUSH), vec![0x14, 0x4F, 0x4B]),
            (Ok(Code::FLUSH_STOP), vec![0x36, 0x4F, 0x4B]),
            (Ok(Code::RESET), vec![0x20, 0x4F, 0x4B]),
            (Ok(Code::DSR_SEN), vec![0x32, 0x4F, 0x4B]),
            (Ok(Code::IOCTL), vec![0x10, 0x4F, 0x4B]),
            (Ok(Code::FLOWCTL), vec![0x11, 0x4F, 0x4B]),
            (InputQueue(0x0102), vec![0x15, 0x02, 0x02, 0x01]),
            (OutputQueue(1000), vec![0x16, 0x02, 0xE8, 0x03]),
            (WaitOutputQueue(0), vec![0x2F, 0x02, 0x00, 0x00]),
            (WaitOutputQueue(0x1234), vec![0x2F, 0x02, 0x34, 0x12]),
            (FlushStart(0x0201), vec![0x35, 0x04, 0x01, 0x02, 0x00, 0x00]),
            (BreakCount(0x0102), vec![0x37, 0x02, 0x01, 0x02]),
            (DataStatus(0x05), vec![0x38, 0x01, 0x05]),
            (
                Notify {
                    events: 0x20,
                    msr: 0x11,
                    hold: 0x80,
                },
                vec![0x26, 0x20, 0x11, 0x80],
            ),
            (
                Notify {
                    events: 0x10,
                    msr: 0x00,
                    hold: 0x81,
                },
                vec![0x26, 0x10, 0x00, 0x81],
            ),
            (Poll { id: 1 }, vec![0x27, 0x01, 0x01]),
        ]
    }

    #[test]
    fn encodes_and_decodes_every_reply() {
        for (reply, wire) in golden() {
            assert_eq!(encoded(&reply), wire, "{reply:?}");
            assert_eq!(Some(&reply.code().0), wire.first());
            assert_eq!(decode_all(&wire), vec![HostEvent::Reply(reply)]);
        }
    }

    #[test]
    fn splits_a_burst_of_replies_like_the_driver() {
        // §13.4: the answers to a recovery batch plus a NOTIFY, in one read.
        let wire = [
            0x2C, 0x03, 0x01, 0x01, 0x00, 0x26, 0x20, 0x33, 0x80, 0x30, 0x4F, 0x4B, 0x12, 0x4F,
            0x4B,
        ];
        assert_eq!(
            decode_all(&wire),
            vec![
                HostEvent::Reply(Reply::PortInit {
                    dsr: true,
                    cts: true,
                    dcd: false
                }),
                HostEvent::Reply(Reply::Notify {
                    events: 0x20,
                    msr: 0x33,
                    hold: 0x80
                }),
                HostEvent::Reply(Reply::Ok(Code::TX_FIFO)),
                HostEvent::Reply(Reply::Ok(Code::LINECTRL)),
            ]
        );
    }

    #[test]
    fn reassembles_a_reply_split_across_reads() {
        let mut decoder = ReplyDecoder::new();
        let mut out = Vec::new();
        decoder.push(&[0x35, 0x04], &mut out);
        decoder.push(&[0x10], &mut out);
        assert!(out.is_empty());
        decoder.push(&[0x00, 0x00, 0x00, 0x17, 0x4F], &mut out);
        decoder.push(&[0x4B], &mut out);
        assert_eq!(
            out,
            vec![
                HostEvent::Reply(Reply::FlushStart(0x10)),
                HostEvent::Reply(Reply::Ok(Code::SETBAUD)),
            ]
        );
    }

    #[test]
    fn an_unknown_code_discards_the_rest_of_that_read() {
        let mut decoder = ReplyDecoder::new();
        let mut out = Vec::new();
        decoder.push(&[0x12, 0x4F, 0x4B, 0x2D, 0x12, 0x4F, 0x4B], &mut out);
        assert_eq!(
            out,
            vec![
                HostEvent::Reply(Reply::Ok(Code::LINECTRL)),
                HostEvent::Unknown(Code::DATAOUT),
            ]
        );
        // The next read starts afresh.
        out.clear();
        decoder.push(&[0x21, 0x4F, 0x4B], &mut out);
        assert_eq!(out, vec![HostEvent::Reply(Reply::Ok(Code::BREAK_ON))]);
    }

    #[test]
    fn a_malformed_reply_of_a_known_code_consumes_its_length_only() {
        assert_eq!(
            decode_all(&[0x12, 0x58, 0x58, 0x21, 0x4F, 0x4B]),
            vec![
                HostEvent::Unknown(Code::LINECTRL),
                HostEvent::Reply(Reply::Ok(Code::BREAK_ON)),
            ]
        );
        assert_eq!(
            decode_all(&[0x2C, 0x02, 0x00, 0x00, 0x00]),
            vec![HostEvent::Unknown(Code::PORT_INIT)]
        );
        assert_eq!(
            decode_all(&[0x27, 0x02, 0x05]),
            vec![HostEvent::Unknown(Code::POLL)]
        );
    }

    // ---- property tests ----

    fn any_acknowledged_code() -> impl Strategy<Value = Code> {
        any::<u8>()
            .prop_map(Code)
            .prop_filter("acknowledged code", |c| is_acknowledged(*c))
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        use Reply::*;
        let status = any::<[bool; 3]>();
        prop_oneof![
            any_acknowledged_code().prop_map(Ok),
            any_acknowledged_code().prop_map(Refused),
            status.prop_map(|[dsr, cts, dcd]| PortInit { dsr, cts, dcd }),
            status.prop_map(|[dsr, cts, dcd]| LineStatus { dsr, cts, dcd }),
            Just(PortInitRefused),
            any::<u16>().prop_map(InputQueue),
            any::<u16>().prop_map(OutputQueue),
            any::<u16>().prop_map(WaitOutputQueue),
            any::<u16>().prop_map(FlushStart),
            any::<u16>().prop_map(BreakCount),
            any::<u8>().prop_map(DataStatus),
            any::<[u8; 3]>().prop_map(|[events, msr, hold]| Notify { events, msr, hold }),
            any::<u8>().prop_map(|id| Poll { id }),
        ]
    }

    proptest! {
        #[test]
        fn any_replies_round_trip_in_any_chunking(
            replies in vec(any_reply(), 0..32),
            chunk in 1usize..16,
        ) {
            let mut wire = Vec::new();
            for reply in &replies {
                reply.encode(&mut wire);
            }
            let mut decoder = ReplyDecoder::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                decoder.push(piece, &mut out);
            }
            let expected: Vec<HostEvent> = replies.into_iter().map(HostEvent::Reply).collect();
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn random_bytes_never_panic(data in vec(any::<u8>(), 0..1024), chunk in 1usize..100) {
            let mut decoder = ReplyDecoder::new();
            let mut out = Vec::new();
            for piece in data.chunks(chunk) {
                decoder.push(piece, &mut out);
            }
            prop_assert!(out.len() <= data.len());
        }
    }
}
