//! A Modbus RTU slave, sans IO: bytes in, response bytes out, the time
//! passed in by the caller.
//!
//! Follows the Modbus Application Protocol v1.1b3 and "Modbus over serial
//! line" v1.02 for the subset a demo or an interop test needs:
//!
//! * 10 000 holding registers (0..=9999), all 0 at start, and 10 000 input
//!   registers whose value is their address (register 42 reads 42);
//! * functions 0x03 read holding registers and 0x04 read input registers
//!   (quantity 1..=125), 0x06 write single register, 0x10 write multiple
//!   registers (quantity 1..=123, byte count = 2 × quantity);
//! * exceptions 0x01 illegal function (any other function code, coils
//!   included), 0x02 illegal data address, 0x03 illegal data value, checked
//!   in the order of the specification's state diagrams (function, then
//!   quantity, then address);
//! * only frames for its own unit id get an answer; broadcast (unit 0)
//!   writes are applied and never answered; frames with a bad CRC are
//!   ignored, like a real slave does.
//!
//! Framing: a real slave finds frame ends by 3.5 characters of silence.
//! Over a network the bytes of one request arrive in chunks at arbitrary
//! times, so this slave finds the length from the function code (8 bytes for
//! 0x01..=0x06, 9 + N for 0x0F/0x10, 13 + N for 0x17), and drops a partial
//! frame whose last byte is older than [`FRAME_GAP`] (50 ms, generous on
//! purpose). When the bytes at the head are not a valid frame, one byte is
//! dropped and parsing starts again (resynchronisation).
//!
//! Not implemented: coils, discrete inputs, diagnostics, device
//! identification, Modbus ASCII.

use std::time::{Duration, Instant};

/// Number of holding and of input registers.
pub const REGISTER_COUNT: usize = 10_000;
/// A partial frame older than this is dropped.
pub const FRAME_GAP: Duration = Duration::from_millis(50);
/// Largest RTU frame (address + PDU + CRC) per the specification.
const MAX_FRAME: usize = 256;

/// Exception code: function not supported.
pub const ILLEGAL_FUNCTION: u8 = 0x01;
/// Exception code: register address out of range.
pub const ILLEGAL_DATA_ADDRESS: u8 = 0x02;
/// Exception code: quantity or byte count out of range.
pub const ILLEGAL_DATA_VALUE: u8 = 0x03;

const CRC_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF). On
/// the wire it is sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter()
        .fold(0xFFFF_u16, |crc, &byte| crc_step(crc, byte))
}

fn crc_step(crc: u16, byte: u8) -> u16 {
    (crc >> 8) ^ CRC_TABLE[usize::from((crc ^ u16::from(byte)) as u8)]
}

/// Appends the CRC of `frame` to it, low byte first.
pub fn append_crc(frame: &mut Vec<u8>) {
    let crc = crc16(frame);
    frame.extend_from_slice(&crc.to_le_bytes());
}

fn crc_ok(frame: &[u8]) -> bool {
    match frame.len().checked_sub(2) {
        Some(body_len) if body_len >= 2 => {
            let (body, crc) = frame.split_at(body_len);
            crc16(body).to_le_bytes() == crc
        }
        _ => false,
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let hi = *bytes.get(at)?;
    let lo = *bytes.get(at + 1)?;
    Some(u16::from_be_bytes([hi, lo]))
}

/// How long the frame at the head of a buffer is.
enum FrameLen {
    /// Not enough bytes to tell.
    NeedMore,
    /// This many bytes, CRC included.
    Known(usize),
    /// A function code whose length is unknown.
    Unknown,
}

fn frame_len(buf: &[u8]) -> FrameLen {
    let Some(&function) = buf.get(1) else {
        return FrameLen::NeedMore;
    };
    match function {
        0x01..=0x06 => FrameLen::Known(8),
        0x0F | 0x10 => match buf.get(6) {
            Some(&count) => FrameLen::Known(9 + usize::from(count)),
            None => FrameLen::NeedMore,
        },
        0x17 => match buf.get(10) {
            Some(&count) => FrameLen::Known(13 + usize::from(count)),
            None => FrameLen::NeedMore,
        },
        _ => FrameLen::Unknown,
    }
}

/// A complete frame with a valid CRC at the head of `buf`, if any.
fn valid_frame_at_head(buf: &[u8]) -> Option<usize> {
    match frame_len(buf) {
        FrameLen::Known(n) => known_frame_at_head(buf, n),
        FrameLen::Unknown => {
            // The shortest prefix that ends in its own CRC, in one pass.
            let limit = buf.len().min(MAX_FRAME).saturating_sub(2);
            let mut crc = 0xFFFF_u16;
            for (i, &byte) in buf.iter().enumerate().take(limit) {
                crc = crc_step(crc, byte);
                let body = i + 1;
                if body >= 2 && buf.get(body..body + 2) == Some(&crc.to_le_bytes()[..]) {
                    return Some(body + 2);
                }
            }
            None
        }
        FrameLen::NeedMore => None,
    }
}

fn known_frame_at_head(buf: &[u8], n: usize) -> Option<usize> {
    buf.get(..n).filter(|f| crc_ok(f)).map(<[u8]>::len)
}

/// The offset of the first frame of known length with a valid CRC after the
/// head.
fn next_known_frame(buf: &[u8]) -> Option<usize> {
    (1..buf.len()).find(|&k| {
        let rest = buf.get(k..).unwrap_or_default();
        matches!(frame_len(rest), FrameLen::Known(n) if known_frame_at_head(rest, n).is_some())
    })
}

/// The slave's registers and receive buffer.
#[derive(Clone, Debug)]
pub struct ModbusSlave {
    unit: u8,
    holding: Vec<u16>,
    rx: Vec<u8>,
    last_byte: Option<Instant>,
}

impl ModbusSlave {
    /// A slave answering to `unit` (1..=247), holding registers all 0.
    pub fn new(unit: u8) -> ModbusSlave {
        ModbusSlave {
            unit,
            holding: vec![0; REGISTER_COUNT],
            rx: Vec::with_capacity(MAX_FRAME),
            last_byte: None,
        }
    }

    /// The unit id it answers to.
    pub fn unit(&self) -> u8 {
        self.unit
    }

    /// A holding register, `None` past the last one.
    pub fn holding_register(&self, address: u16) -> Option<u16> {
        self.holding.get(usize::from(address)).copied()
    }

    /// An input register: its own address, `None` past the last one.
    pub fn input_register(&self, address: u16) -> Option<u16> {
        (usize::from(address) < REGISTER_COUNT).then_some(address)
    }

    /// Forgets a partially received request.
    pub fn clear_partial(&mut self) {
        self.rx.clear();
    }

    /// Feeds received bytes; appends the responses of every complete
    /// request to `out`.
    pub fn receive(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<u8>) {
        if let Some(last) = self.last_byte
            && now.saturating_duration_since(last) > FRAME_GAP
        {
            self.rx.clear();
        }
        self.last_byte = Some(now);
        self.rx.extend_from_slice(bytes);
        // Each round consumes at least one byte or stops.
        while !self.rx.is_empty() {
            if let Some(n) = valid_frame_at_head(&self.rx) {
                let frame: Vec<u8> = self.rx.drain(..n).collect();
                self.handle(&frame, out);
                continue;
            }
            let drop = match frame_len(&self.rx) {
                FrameLen::NeedMore => 0,
                // Complete but the CRC is wrong.
                FrameLen::Known(n) if self.rx.len() >= n => 1,
                FrameLen::Known(_) => 0,
                // An unknown function may still be arriving; skip to a valid
                // request further on, or drop a byte when no request can be
                // this long.
                FrameLen::Unknown => match next_known_frame(&self.rx) {
                    Some(k) => k,
                    None if self.rx.len() >= MAX_FRAME => 1,
                    None => 0,
                },
            };
            if drop == 0 {
                break;
            }
            self.rx.drain(..drop);
        }
    }

    fn handle(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        let (Some(&unit), Some(&function)) = (frame.first(), frame.get(1)) else {
            return;
        };
        let broadcast = unit == 0;
        if unit != self.unit && !broadcast {
            return;
        }
        let pdu = frame
            .get(1..frame.len().saturating_sub(2))
            .unwrap_or_default();
        let start = out.len();
        out.push(unit);
        let result = match function {
            0x03 if !broadcast => self.read(pdu, out, |slave, a| slave.holding_register(a)),
            0x04 if !broadcast => self.read(pdu, out, |slave, a| slave.input_register(a)),
            0x06 => self.write_single(pdu, out),
            0x10 => self.write_multiple(pdu, out),
            _ => Err(ILLEGAL_FUNCTION),
        };
        if broadcast {
            out.truncate(start);
            return;
        }
        if let Err(code) = result {
            out.truncate(start + 1);
            out.extend_from_slice(&[function | 0x80, code]);
        }
        let crc = crc16(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&crc.to_le_bytes());
    }

    fn read(
        &self,
        pdu: &[u8],
        out: &mut Vec<u8>,
        register: impl Fn(&Self, u16) -> Option<u16>,
    ) -> Result<(), u8> {
        let (function, address, quantity) = match (pdu.first(), be16(pdu, 1), be16(pdu, 3)) {
            (Some(&f), Some(a), Some(q)) => (f, a, q),
            _ => return Err(ILLEGAL_DATA_VALUE),
        };
        if !(1..=125).contains(&quantity) {
            return Err(ILLEGAL_DATA_VALUE);
        }
        if usize::from(address) + usize::from(quantity) > REGISTER_COUNT {
            return Err(ILLEGAL_DATA_ADDRESS);
        }
        out.push(function);
        out.push((quantity * 2) as u8);
        for a in address..address + quantity {
            let value = register(self, a).ok_or(ILLEGAL_DATA_ADDRESS)?;
            out.extend_from_slice(&value.to_be_bytes());
        }
        Ok(())
    }

    fn write_single(&mut self, pdu: &[u8], out: &mut Vec<u8>) -> Result<(), u8> {
        let (Some(address), Some(value)) = (be16(pdu, 1), be16(pdu, 3)) else {
            return Err(ILLEGAL_DATA_VALUE);
        };
        let slot = self
            .holding
            .get_mut(usize::from(address))
            .ok_or(ILLEGAL_DATA_ADDRESS)?;
        *slot = value;
        out.extend_from_slice(pdu);
        Ok(())
    }

    fn write_multiple(&mut self, pdu: &[u8], out: &mut Vec<u8>) -> Result<(), u8> {
        let (Some(address), Some(quantity), Some(&byte_count)) =
            (be16(pdu, 1), be16(pdu, 3), pdu.get(5))
        else {
            return Err(ILLEGAL_DATA_VALUE);
        };
        let values = pdu.get(6..).unwrap_or_default();
        if !(1..=123).contains(&quantity)
            || usize::from(byte_count) != usize::from(quantity) * 2
            || values.len() != usize::from(byte_count)
        {
            return Err(ILLEGAL_DATA_VALUE);
        }
        let first = usize::from(address);
        let slots = self
            .holding
            .get_mut(first..first + usize::from(quantity))
            .ok_or(ILLEGAL_DATA_ADDRESS)?;
        let (pairs, _) = values.as_chunks::<2>();
        for (slot, pair) in slots.iter_mut().zip(pairs) {
            *slot = u16::from_be_bytes(*pair);
        }
        out.extend_from_slice(pdu.get(..5).unwrap_or_default());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bitwise CRC-16/MODBUS, written independently of the table.
    fn reference_crc(data: &[u8]) -> u16 {
        let mut crc: u16 = 0xFFFF;
        for &byte in data {
            crc ^= u16::from(byte);
            for _ in 0..8 {
                let lsb = crc & 1;
                crc >>= 1;
                if lsb == 1 {
                    crc ^= 0xA001;
                }
            }
        }
        crc
    }

    fn with_crc(body: &[u8]) -> Vec<u8> {
        let mut frame = body.to_vec();
        let crc = reference_crc(body);
        frame.push((crc & 0xFF) as u8);
        frame.push((crc >> 8) as u8);
        frame
    }

    fn exchange(slave: &mut ModbusSlave, request: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        slave.receive(request, Instant::now(), &mut out);
        out
    }

    #[test]
    fn crc_matches_golden_frames() {
        // Read holding registers 0..10 of unit 1, from the Modbus literature.
        assert_eq!(
            crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]).to_le_bytes(),
            [0xC5, 0xCD]
        );
        // Read 2 holding registers at 0x006B of unit 0x11.
        assert_eq!(
            reference_crc(&[0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]).to_le_bytes(),
            [0x76, 0x87]
        );
        assert_eq!(
            crc16(&[0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]).to_le_bytes(),
            [0x76, 0x87]
        );
        // The CRC-16/MODBUS check value.
        assert_eq!(crc16(b"123456789"), 0x4B37);
        assert_eq!(reference_crc(b"123456789"), 0x4B37);
    }

    proptest! {
        #[test]
        fn table_crc_equals_bitwise_crc(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(crc16(&data), reference_crc(&data));
        }
    }

    #[test]
    fn reads_holding_registers_golden() {
        let mut slave = ModbusSlave::new(1);
        let response = exchange(
            &mut slave,
            &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD],
        );
        let mut expected = vec![0x01, 0x03, 0x14];
        expected.extend_from_slice(&[0; 20]);
        assert_eq!(response, with_crc(&expected));
    }

    #[test]
    fn reads_input_registers_as_their_address() {
        let mut slave = ModbusSlave::new(1);
        let response = exchange(&mut slave, &with_crc(&[0x01, 0x04, 0x01, 0x00, 0x00, 0x02]));
        assert_eq!(
            response,
            with_crc(&[0x01, 0x04, 0x04, 0x01, 0x00, 0x01, 0x01])
        );
    }

    #[test]
    fn writes_single_register_and_echoes() {
        let mut slave = ModbusSlave::new(1);
        let request = with_crc(&[0x01, 0x06, 0x00, 0x05, 0xAB, 0xCD]);
        assert_eq!(exchange(&mut slave, &request), request);
        assert_eq!(slave.holding_register(5), Some(0xABCD));
        let read = exchange(&mut slave, &with_crc(&[0x01, 0x03, 0x00, 0x05, 0x00, 0x01]));
        assert_eq!(read, with_crc(&[0x01, 0x03, 0x02, 0xAB, 0xCD]));
    }

    #[test]
    fn writes_multiple_registers() {
        let mut slave = ModbusSlave::new(7);
        let request = with_crc(&[
            0x07, 0x10, 0x00, 0x10, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02,
        ]);
        assert_eq!(
            exchange(&mut slave, &request),
            with_crc(&[0x07, 0x10, 0x00, 0x10, 0x00, 0x02])
        );
        assert_eq!(slave.holding_register(0x10), Some(0x000A));
        assert_eq!(slave.holding_register(0x11), Some(0x0102));
    }

    #[test]
    fn answers_exceptions() {
        let mut slave = ModbusSlave::new(1);
        // Coils are not implemented: illegal function.
        let coils = exchange(&mut slave, &with_crc(&[0x01, 0x01, 0x00, 0x00, 0x00, 0x08]));
        assert_eq!(coils, with_crc(&[0x01, 0x81, ILLEGAL_FUNCTION]));
        // Unknown function with unknown length: still answered.
        let unknown = exchange(&mut slave, &with_crc(&[0x01, 0x2B, 0x0E, 0x01, 0x00]));
        assert_eq!(unknown, with_crc(&[0x01, 0xAB, ILLEGAL_FUNCTION]));
        // Quantity 126 > 125.
        let too_many = exchange(&mut slave, &with_crc(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x7E]));
        assert_eq!(too_many, with_crc(&[0x01, 0x83, ILLEGAL_DATA_VALUE]));
        // Quantity 0.
        let zero = exchange(&mut slave, &with_crc(&[0x01, 0x04, 0x00, 0x00, 0x00, 0x00]));
        assert_eq!(zero, with_crc(&[0x01, 0x84, ILLEGAL_DATA_VALUE]));
        // 9999 + 2 registers runs past the end.
        let past_end = exchange(&mut slave, &with_crc(&[0x01, 0x03, 0x27, 0x0F, 0x00, 0x02]));
        assert_eq!(past_end, with_crc(&[0x01, 0x83, ILLEGAL_DATA_ADDRESS]));
        let write_past_end = exchange(&mut slave, &with_crc(&[0x01, 0x06, 0x27, 0x10, 0x00, 0x01]));
        assert_eq!(
            write_past_end,
            with_crc(&[0x01, 0x86, ILLEGAL_DATA_ADDRESS])
        );
        // Byte count does not match the quantity.
        let bad_count = exchange(
            &mut slave,
            &with_crc(&[0x01, 0x10, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x01]),
        );
        assert_eq!(bad_count, with_crc(&[0x01, 0x90, ILLEGAL_DATA_VALUE]));
    }

    #[test]
    fn ignores_other_units_and_bad_crc() {
        let mut slave = ModbusSlave::new(1);
        assert!(exchange(&mut slave, &with_crc(&[0x02, 0x03, 0x00, 0x00, 0x00, 0x01])).is_empty());
        assert!(
            exchange(
                &mut slave,
                &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCE]
            )
            .is_empty()
        );
        // And still answers the next good request.
        assert!(
            !exchange(
                &mut slave,
                &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]
            )
            .is_empty()
        );
    }

    #[test]
    fn applies_broadcast_writes_without_reply() {
        let mut slave = ModbusSlave::new(1);
        assert!(exchange(&mut slave, &with_crc(&[0x00, 0x06, 0x00, 0x01, 0x12, 0x34])).is_empty());
        assert_eq!(slave.holding_register(1), Some(0x1234));
        let multi = with_crc(&[0x00, 0x10, 0x00, 0x02, 0x00, 0x01, 0x02, 0x56, 0x78]);
        assert!(exchange(&mut slave, &multi).is_empty());
        assert_eq!(slave.holding_register(2), Some(0x5678));
        // Broadcast reads are not answered either.
        assert!(exchange(&mut slave, &with_crc(&[0x00, 0x03, 0x00, 0x00, 0x00, 0x01])).is_empty());
    }

    #[test]
    fn resyncs_after_garbage() {
        let mut slave = ModbusSlave::new(1);
        let mut stream = vec![0xFF, 0x42, 0x00, 0x13];
        stream.extend_from_slice(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]);
        let response = exchange(&mut slave, &stream);
        assert_eq!(response.get(..3), Some(&[0x01, 0x03, 0x14][..]));
        assert!(slave.rx.is_empty());
    }

    #[test]
    fn two_requests_in_one_chunk_get_two_answers() {
        let mut slave = ModbusSlave::new(1);
        let mut stream = with_crc(&[0x01, 0x04, 0x00, 0x07, 0x00, 0x01]);
        stream.extend(with_crc(&[0x01, 0x04, 0x00, 0x08, 0x00, 0x01]));
        let mut expected = with_crc(&[0x01, 0x04, 0x02, 0x00, 0x07]);
        expected.extend(with_crc(&[0x01, 0x04, 0x02, 0x00, 0x08]));
        assert_eq!(exchange(&mut slave, &stream), expected);
    }

    #[test]
    fn drops_a_partial_frame_after_the_gap() {
        let mut slave = ModbusSlave::new(1);
        let t0 = Instant::now();
        let request = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD];
        let mut out = Vec::new();
        slave.receive(&request[..3], t0, &mut out);
        // The rest arrives too late: the head was dropped, the tail alone is
        // not a request.
        slave.receive(
            &request[3..],
            t0 + FRAME_GAP + Duration::from_millis(1),
            &mut out,
        );
        assert!(out.is_empty());
        // Within the gap the pieces join.
        slave.clear_partial();
        let t1 = t0 + Duration::from_secs(1);
        slave.receive(&request[..3], t1, &mut out);
        slave.receive(&request[3..], t1 + Duration::from_millis(10), &mut out);
        assert!(!out.is_empty());
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_answers(
            splits in proptest::collection::vec(0usize..40, 0..6),
        ) {
            let mut stream = with_crc(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x02]);
            stream.extend(with_crc(&[0x01, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x09]));
            stream.extend(with_crc(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x01]));
            let whole = exchange(&mut ModbusSlave::new(1), &stream);

            let mut cuts: Vec<usize> = splits.into_iter().map(|s| s.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut slave = ModbusSlave::new(1);
            let mut out = Vec::new();
            let now = Instant::now();
            let mut from = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                slave.receive(&stream[from..cut], now, &mut out);
                from = cut;
            }
            prop_assert_eq!(out, whole);
        }

        #[test]
        fn never_panics_on_noise(noise in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut slave = ModbusSlave::new(1);
            let mut out = Vec::new();
            slave.receive(&noise, Instant::now(), &mut out);
            prop_assert!(slave.rx.len() < MAX_FRAME + 16);
        }
    }
}
