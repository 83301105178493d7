//! Pair Connection wire format, sans-IO: what two ttyward ports in Pair
//! Connection mode (master and slave) say to each other over TCP.
//!
//! Moxa's own pair protocol is not documented (the spec,
//! `nport-operation-modes.md`, names the mode and its parameters only), so
//! a ttyward pairs with another ttyward, not with an NPort. A link carries
//! frames:
//!
//! ```text
//! [type u8][length u16, big-endian][payload: length bytes]
//! ```
//!
//! * `0x01` data: 1 to [`MAX_DATA`] bytes of serial data, in order;
//! * `0x02` lines: one byte, the sender's modem *inputs*: bit 0 CTS,
//!   bit 1 DSR, bit 2 DCD. Other bits are reserved: sent as 0, ignored;
//! * `0x03` hello: [`HELLO`], the first frame each way.
//!
//! A stream that does not start with hello, a hello of another protocol or
//! version, a second hello, a type not listed here, or a length out of
//! range for its type is a [`DecodeError`]: the peer is dropped. Errors are
//! found as soon as the header is in (an unknown type at its first byte),
//! so nothing waits for a payload it will refuse, and a decoder's caller
//! never holds more than one incomplete frame ([`HEADER_LEN`] +
//! [`MAX_DATA`] bytes).
//!
//! What it does **not** do: no sockets, no timers (the engine bounds how
//! long a peer may take to say hello), no authentication and no encryption
//! (the NPort's "secure" pair option is not offered).

use bytes::{Buf, Bytes, BytesMut};

/// The hello payload: protocol name and version.
pub const HELLO: &[u8] = b"ttyward-pair/1";
/// Largest data payload in one frame.
pub const MAX_DATA: usize = 4096;
/// Type and length.
pub const HEADER_LEN: usize = 3;
/// Longest hello read: room for another version's name in the error.
const MAX_HELLO: usize = 64;

/// Frame types.
pub mod kind {
    /// Serial data.
    pub const DATA: u8 = 0x01;
    /// The sender's modem inputs.
    pub const LINES: u8 = 0x02;
    /// Protocol name and version, first frame each way.
    pub const HELLO: u8 = 0x03;
}

/// Line bits in a lines frame.
mod bit {
    pub const CTS: u8 = 0x01;
    pub const DSR: u8 = 0x02;
    pub const DCD: u8 = 0x04;
}

/// The modem inputs of the sender's device. The receiver drives its own
/// outputs from them, null-modem fashion: RTS := peer CTS, DTR := peer DSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lines {
    /// Clear To Send.
    pub cts: bool,
    /// Data Set Ready.
    pub dsr: bool,
    /// Data Carrier Detect.
    pub dcd: bool,
}

impl Lines {
    /// The wire byte; reserved bits 0.
    pub fn to_byte(self) -> u8 {
        let mut b = 0;
        if self.cts {
            b |= bit::CTS;
        }
        if self.dsr {
            b |= bit::DSR;
        }
        if self.dcd {
            b |= bit::DCD;
        }
        b
    }

    /// From the wire byte; reserved bits are ignored (a later version may
    /// use them).
    pub fn from_byte(b: u8) -> Lines {
        Lines {
            cts: b & bit::CTS != 0,
            dsr: b & bit::DSR != 0,
            dcd: b & bit::DCD != 0,
        }
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// [`HELLO`].
    Hello,
    /// Serial data.
    Data(Bytes),
    /// The sender's modem inputs.
    Lines(Lines),
}

impl Frame {
    /// Append the wire form to `out`. Data longer than [`MAX_DATA`] becomes
    /// several frames, empty data none (see [`encode_data`]).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Hello => put_frame(kind::HELLO, HELLO, out),
            Frame::Data(data) => encode_data(data, out),
            Frame::Lines(lines) => put_frame(kind::LINES, &[lines.to_byte()], out),
        }
    }
}

/// Append `data` as data frames of at most [`MAX_DATA`] bytes; nothing for
/// empty data (a data frame is never empty).
pub fn encode_data(data: &[u8], out: &mut BytesMut) {
    out.reserve(data.len() + HEADER_LEN * data.len().div_ceil(MAX_DATA));
    for piece in data.chunks(MAX_DATA) {
        put_frame(kind::DATA, piece, out);
    }
}

/// `payload` is at most [`MAX_DATA`] bytes, so its length fits the header.
fn put_frame(kind: u8, payload: &[u8], out: &mut BytesMut) {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Why a peer's stream cannot be read. The link ends; the stream is not
/// resynchronised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The first frame is not hello: not a ttyward pair peer.
    NoHello {
        /// The type of the first frame.
        kind: u8,
    },
    /// A hello with another payload: another protocol or version.
    WrongHello {
        /// The payload received.
        said: Vec<u8>,
    },
    /// A second hello.
    RepeatedHello,
    /// A frame type this version does not know.
    UnknownType(u8),
    /// A length out of range for the frame's type (data 1–4096, lines 1,
    /// hello 1–64).
    BadLength {
        /// The frame type.
        kind: u8,
        /// The length received.
        len: u16,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NoHello { kind } => write!(
                f,
                "first frame is of type 0x{kind:02x}, not hello: the peer is not a ttyward pair port"
            ),
            DecodeError::WrongHello { said } => write!(
                f,
                "peer speaks \"{}\", not \"{}\": pair both sides with the same ttyward version",
                said.escape_ascii(),
                HELLO.escape_ascii()
            ),
            DecodeError::RepeatedHello => write!(f, "second hello in one link"),
            DecodeError::UnknownType(kind) => write!(f, "unknown frame type 0x{kind:02x}"),
            DecodeError::BadLength { kind, len } => {
                write!(f, "frame of type 0x{kind:02x} with bad length {len}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads frames off a byte buffer the caller fills from the socket, and
/// checks that the stream starts with hello.
#[derive(Debug, Default)]
pub struct Decoder {
    greeted: bool,
}

impl Decoder {
    /// A decoder expecting the peer's hello.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the peer's hello was read.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// Take the next complete frame off the front of `buf`. `Ok(None)`
    /// asks for more bytes and consumes nothing. After an error the stream
    /// is unusable: drop the peer.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(&kind) = buf.first() else {
            return Ok(None);
        };
        // The type is judged at its first byte: garbage is refused at once.
        let lengths = match kind {
            kind::DATA => 1..=MAX_DATA,
            kind::LINES => 1..=1,
            kind::HELLO => 1..=MAX_HELLO,
            other => return Err(DecodeError::UnknownType(other)),
        };
        match (self.greeted, kind == kind::HELLO) {
            (false, false) => return Err(DecodeError::NoHello { kind }),
            (true, true) => return Err(DecodeError::RepeatedHello),
            _ => {}
        }
        let Some(&[_, hi, lo]) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u16::from_be_bytes([hi, lo]);
        if !lengths.contains(&usize::from(len)) {
            return Err(DecodeError::BadLength { kind, len });
        }
        if buf.len() < HEADER_LEN + usize::from(len) {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(usize::from(len)).freeze();
        let frame = match kind {
            kind::DATA => Frame::Data(payload),
            kind::LINES => Frame::Lines(Lines::from_byte(payload.first().copied().unwrap_or(0))),
            _ if payload == HELLO => {
                self.greeted = true;
                Frame::Hello
            }
            _ => {
                return Err(DecodeError::WrongHello {
                    said: payload.to_vec(),
                });
            }
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Decode everything `bytes` holds: the frames, then the error if any.
    fn decode_all(bytes: &[u8]) -> (Vec<Frame>, Option<DecodeError>, usize) {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        loop {
            match d.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, None, buf.len()),
                Err(e) => return (frames, Some(e), buf.len()),
            }
        }
    }

    fn encoded(frames: &[Frame]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out);
        }
        out.to_vec()
    }

    #[test]
    fn golden_hello_lines_and_data() {
        let hello = [&[0x03, 0x00, 0x0E][..], b"ttyward-pair/1"].concat();
        assert_eq!(encoded(&[Frame::Hello]), hello);
        let lines = Frame::Lines(Lines {
            cts: true,
            dsr: false,
            dcd: true,
        });
        assert_eq!(
            encoded(std::slice::from_ref(&lines)),
            [0x02, 0x00, 0x01, 0x05]
        );
        let data = Frame::Data(Bytes::from_static(b"AB"));
        assert_eq!(
            encoded(std::slice::from_ref(&data)),
            [0x01, 0x00, 0x02, 0x41, 0x42]
        );

        let stream = [
            hello,
            vec![0x02, 0x00, 0x01, 0x05, 0x01, 0x00, 0x02, 0x41, 0x42],
        ]
        .concat();
        assert_eq!(
            decode_all(&stream),
            (vec![Frame::Hello, lines, data], None, 0)
        );
    }

    #[test]
    fn long_data_is_cut_into_4096_byte_frames() {
        let data = vec![0xAA; 5000];
        let mut out = BytesMut::new();
        encode_data(&data, &mut out);
        assert_eq!(out.len(), 5000 + 2 * HEADER_LEN);
        assert_eq!(out[..3], [0x01, 0x10, 0x00]);
        assert_eq!(out[3 + 4096..3 + 4096 + 3], [0x01, 0x03, 0x88]);
        out.clear();
        encode_data(&[], &mut out);
        assert!(out.is_empty(), "empty data makes no frame");
    }

    #[test]
    fn reserved_line_bits_are_ignored() {
        assert_eq!(
            Lines::from_byte(0xF8 | 0x02),
            Lines {
                dsr: true,
                ..Lines::default()
            }
        );
    }

    #[test]
    fn refuses_a_peer_that_does_not_say_hello_first() {
        let (frames, err, _) = decode_all(&[0x01, 0x00, 0x01, 0x41]);
        assert!(frames.is_empty());
        assert_eq!(err, Some(DecodeError::NoHello { kind: kind::DATA }));
        // Refused at the first byte, before the header is complete.
        assert_eq!(
            decode_all(&[0x02]).1,
            Some(DecodeError::NoHello { kind: kind::LINES })
        );
    }

    #[test]
    fn refuses_another_version_and_a_second_hello() {
        let other = [&[0x03, 0x00, 0x0E][..], b"ttyward-pair/2"].concat();
        let (_, err, _) = decode_all(&other);
        assert_eq!(
            err,
            Some(DecodeError::WrongHello {
                said: b"ttyward-pair/2".to_vec()
            })
        );
        assert!(
            err.is_some_and(|e| e.to_string().contains("ttyward-pair/2")),
            "the error names what the peer said"
        );
        let twice = encoded(&[Frame::Hello, Frame::Hello]);
        assert_eq!(
            decode_all(&twice),
            (
                vec![Frame::Hello],
                Some(DecodeError::RepeatedHello),
                HEADER_LEN + HELLO.len()
            )
        );
    }

    #[test]
    fn refuses_unknown_types_and_bad_lengths_from_the_header() {
        let hello = encoded(&[Frame::Hello]);
        let with = |tail: &[u8]| decode_all(&[&hello[..], tail].concat()).1;
        // "GET / HTTP/1.1": 'G' is no frame type.
        assert_eq!(
            decode_all(b"GET / HTTP/1.1\r\n").1,
            Some(DecodeError::UnknownType(b'G'))
        );
        assert_eq!(with(&[0x04]), Some(DecodeError::UnknownType(0x04)));
        assert_eq!(with(&[0x00]), Some(DecodeError::UnknownType(0x00)));
        // An oversized data frame is refused with only its header in.
        assert_eq!(
            with(&[0x01, 0x10, 0x01]),
            Some(DecodeError::BadLength {
                kind: kind::DATA,
                len: 4097
            })
        );
        assert_eq!(
            with(&[0x01, 0x00, 0x00]),
            Some(DecodeError::BadLength {
                kind: kind::DATA,
                len: 0
            })
        );
        assert_eq!(
            with(&[0x02, 0x00, 0x02, 0x01, 0x00]),
            Some(DecodeError::BadLength {
                kind: kind::LINES,
                len: 2
            })
        );
        assert_eq!(
            decode_all(&[0x03, 0x00, 0x41]).1,
            Some(DecodeError::BadLength {
                kind: kind::HELLO,
                len: 0x41
            })
        );
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            vec(any::<u8>(), 1..=MAX_DATA).prop_map(|d| Frame::Data(Bytes::from(d))),
            (any::<bool>(), any::<bool>(), any::<bool>())
                .prop_map(|(cts, dsr, dcd)| Frame::Lines(Lines { cts, dsr, dcd })),
        ]
    }

    fn any_link() -> impl Strategy<Value = Vec<Frame>> {
        vec(any_frame(), 0..24).prop_map(|mut frames| {
            frames.insert(0, Frame::Hello);
            frames
        })
    }

    proptest! {
        #[test]
        fn frames_round_trip(frames in any_link()) {
            prop_assert_eq!(decode_all(&encoded(&frames)), (frames, None, 0));
        }

        #[test]
        fn any_chunking_gives_the_same_frames(frames in any_link(), cuts in vec(1usize..600, 1..40)) {
            let bytes = encoded(&frames);
            let mut d = Decoder::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                buf.extend_from_slice(piece);
                while let Some(f) = d.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(f);
                }
                prop_assert!(buf.len() < HEADER_LEN + MAX_DATA);
            }
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn every_prefix_asks_for_more_bytes(frames in any_link(), at in any::<prop::sample::Index>()) {
            let bytes = encoded(&frames);
            let prefix = &bytes[..at.index(bytes.len() + 1)];
            let (got, err, _) = decode_all(prefix);
            prop_assert_eq!(err, None);
            prop_assert!(got.len() <= frames.len());
            prop_assert_eq!(&got[..], &frames[..got.len()]);
        }
    }
}
