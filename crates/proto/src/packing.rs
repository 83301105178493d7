//! NPort data packing for the serial → network direction: decides when
//! bytes read from the device leave as one network frame.
//!
//! Follows `spec/nport-operation-modes.md` §5 "Data packing" (Moxa's
//! `delimit.c` behaviour):
//!
//! * packet length L > 0: a frame every L bytes; delimiters are ignored;
//! * otherwise delimiter 1 (optionally followed in sequence by delimiter 2)
//!   ends a frame, with the delimiter process deciding what happens to the
//!   delimiter bytes (keep, wait for 1 or 2 more bytes, strip);
//! * force transmit: a frame leaves once the serial line was idle for that
//!   many milliseconds (a gap timer, restarted by every byte);
//! * the buffer holds [`BUFFER_SIZE`] bytes; when it is full it is sent,
//!   delimiters or not.
//!
//! Network → serial data is never packed. This module does no IO and reads
//! no clock: the caller passes the time of arrival to
//! [`Packer::push`] and calls [`Packer::handle_timeout`] at
//! [`Packer::poll_timeout`].

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// The per-port serial buffer of an NPort (`DK_BUFFER_SIZE_S2E`): no frame
/// is ever longer.
pub const BUFFER_SIZE: usize = 1024;

/// What to do with the delimiter byte(s) once they arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum DelimiterProcess {
    /// Send the buffer including the delimiter(s).
    #[default]
    DoNothing,
    /// Wait for one more byte after the delimiter(s), then send.
    PlusOne,
    /// Wait for two more bytes after the delimiter(s), then send.
    PlusTwo,
    /// Send the buffer without the delimiter byte(s).
    Strip,
}

/// Packing settings of one port.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PackingConfig {
    /// Packet length, 0..=1024; 0 = off. Values above 1024 act as 1024.
    pub length: u16,
    /// Delimiter 1; only used when `length` is 0.
    pub delimiter1: Option<u8>,
    /// Delimiter 2, which must follow delimiter 1 directly; ignored
    /// without delimiter 1.
    pub delimiter2: Option<u8>,
    /// What happens to the delimiter byte(s).
    #[cfg_attr(feature = "serde", serde(rename = "delimiter_process"))]
    pub process: DelimiterProcess,
    /// Idle gap in milliseconds after which the buffer is sent; 0 = off.
    pub force_transmit_ms: u16,
}

impl PackingConfig {
    /// Nothing enabled: every read from the device leaves at once.
    pub fn is_passthrough(&self) -> bool {
        self.length == 0 && self.delimiter1.is_none() && self.force_transmit_ms == 0
    }
}

/// The packing state machine of one port.
#[derive(Clone, Debug)]
pub struct Packer {
    cfg: PackingConfig,
    /// Emit when the buffer reaches this size: the packet length, or the
    /// buffer size.
    limit: usize,
    buf: BytesMut,
    /// Arrival time of the last byte, for the force-transmit gap.
    last_input: Option<Instant>,
    /// The last buffered byte is a delimiter 1 that delimiter 2 may follow.
    after_d1: bool,
    /// Bytes still to take after a delimiter (process +1 / +2).
    tail: usize,
}

impl Packer {
    /// A packer with an empty buffer.
    pub fn new(cfg: PackingConfig) -> Self {
        let limit = match usize::from(cfg.length) {
            0 => BUFFER_SIZE,
            n => n.min(BUFFER_SIZE),
        };
        Self {
            cfg,
            limit,
            buf: BytesMut::with_capacity(BUFFER_SIZE),
            last_input: None,
            after_d1: false,
            tail: 0,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &PackingConfig {
        &self.cfg
    }

    /// Take bytes read from the device at `now`; append every frame that is
    /// complete to `frames`. If the force-transmit gap already passed before
    /// `now`, the old buffer leaves first as its own frame.
    pub fn push(&mut self, data: &[u8], now: Instant, frames: &mut Vec<Bytes>) {
        if data.is_empty() {
            return;
        }
        if self.cfg.is_passthrough() {
            frames.extend(data.chunks(BUFFER_SIZE).map(Bytes::copy_from_slice));
            return;
        }
        self.handle_timeout(now, frames);
        match (self.cfg.length, self.cfg.delimiter1) {
            (0, Some(d1)) => self.push_delimited(data, d1, frames),
            _ => self.push_counted(data, frames),
        }
        self.last_input = Some(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// the end of the force-transmit gap, if anything is buffered. The
    /// +1/+2 wait after a delimiter is not time-based.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.cfg.force_transmit_ms == 0 || self.buf.is_empty() {
            return None;
        }
        self.last_input?
            .checked_add(Duration::from_millis(u64::from(self.cfg.force_transmit_ms)))
    }

    /// Send the buffer if the force-transmit gap has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant, frames: &mut Vec<Bytes>) {
        if let Some(deadline) = self.poll_timeout()
            && now >= deadline
        {
            self.emit(frames);
        }
    }

    /// Send whatever is buffered (e.g. when the connection closes).
    pub fn flush(&mut self, frames: &mut Vec<Bytes>) {
        self.emit(frames);
    }

    /// How many bytes wait in the buffer.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Packet length (or force transmit only): cut every `limit` bytes.
    fn push_counted(&mut self, data: &[u8], frames: &mut Vec<Bytes>) {
        let mut rest = data;
        while !rest.is_empty() {
            rest = self.take(rest, rest.len(), frames);
        }
    }

    /// Delimiter mode (packet length 0, delimiter 1 set).
    fn push_delimited(&mut self, data: &[u8], d1: u8, frames: &mut Vec<Bytes>) {
        let d2 = self.cfg.delimiter2;
        let mut rest = data;
        while let Some((&byte, after)) = rest.split_first() {
            if self.tail > 0 {
                let before = rest.len();
                rest = self.take(rest, self.tail, frames);
                // `take` already sent the buffer (and reset `tail`) if it
                // filled up.
                if self.tail > 0 {
                    self.tail = self.tail.saturating_sub(before - rest.len());
                    if self.tail == 0 {
                        self.emit(frames);
                    }
                }
                continue;
            }
            if std::mem::replace(&mut self.after_d1, false) && Some(byte) == d2 {
                rest = after;
                self.delimiter_complete(byte, true, frames);
                continue;
            }
            if byte != d1 {
                let run = rest.iter().position(|&b| b == d1).unwrap_or(rest.len());
                rest = self.take(rest, run, frames);
                continue;
            }
            rest = after;
            if d2.is_some() {
                // Maybe the start of the D1 D2 sequence: keep it for now.
                self.buf.extend_from_slice(&[d1]);
                if self.buf.len() >= self.limit {
                    self.emit(frames);
                } else {
                    self.after_d1 = true;
                }
            } else {
                self.delimiter_complete(d1, false, frames);
            }
        }
    }

    /// Buffer up to `n` bytes of `rest` (fewer if the buffer fills first,
    /// which sends it), return what is left.
    fn take<'a>(&mut self, rest: &'a [u8], n: usize, frames: &mut Vec<Bytes>) -> &'a [u8] {
        let room = self.limit.saturating_sub(self.buf.len());
        let n = n.min(room).min(rest.len());
        let (now, later) = rest.split_at_checked(n).unwrap_or((rest, &[]));
        self.buf.extend_from_slice(now);
        if self.buf.len() >= self.limit {
            self.emit(frames);
        }
        later
    }

    /// The delimiter (`byte` = D1 alone, or D2 completing D1 D2 with `pair`)
    /// has arrived and is not yet buffered.
    fn delimiter_complete(&mut self, byte: u8, pair: bool, frames: &mut Vec<Bytes>) {
        let wait = match self.cfg.process {
            DelimiterProcess::Strip => {
                if pair {
                    // Drop the D1 buffered when it arrived.
                    let keep = self.buf.len().saturating_sub(1);
                    self.buf.truncate(keep);
                }
                self.emit(frames);
                return;
            }
            DelimiterProcess::DoNothing => 0,
            DelimiterProcess::PlusOne => 1,
            DelimiterProcess::PlusTwo => 2,
        };
        self.buf.extend_from_slice(&[byte]);
        if wait == 0 || self.buf.len() >= self.limit {
            self.emit(frames);
        } else {
            self.tail = wait;
        }
    }

    /// Send the buffer as one frame (if not empty) and forget any pending
    /// delimiter state: a frame boundary ends a D1 D2 sequence or a +1/+2
    /// wait.
    fn emit(&mut self, frames: &mut Vec<Bytes>) {
        self.after_d1 = false;
        self.tail = 0;
        if !self.buf.is_empty() {
            frames.push(self.buf.split().freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn t0() -> Instant {
        // Tests need some instant; only offsets from it matter.
        Instant::now()
    }

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    fn frames_of(frames: &[Bytes]) -> Vec<&[u8]> {
        frames.iter().map(|f| f.as_ref()).collect()
    }

    fn delim(d1: u8, d2: Option<u8>, process: DelimiterProcess) -> PackingConfig {
        PackingConfig {
            delimiter1: Some(d1),
            delimiter2: d2,
            process,
            ..PackingConfig::default()
        }
    }

    #[test]
    fn passthrough_emits_every_push_at_once() {
        let cfg = PackingConfig::default();
        assert!(cfg.is_passthrough());
        let mut p = Packer::new(cfg);
        let mut frames = Vec::new();
        p.push(b"ab", t0(), &mut frames);
        p.push(b"c", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"ab"[..], b"c"]);
        assert_eq!(p.buffered(), 0);
        assert_eq!(p.poll_timeout(), None);
        // Still never a frame over the buffer size.
        frames.clear();
        p.push(&[0u8; 2500], t0(), &mut frames);
        assert_eq!(
            frames.iter().map(|f| f.len()).collect::<Vec<_>>(),
            [1024, 1024, 452]
        );
    }

    #[test]
    fn delimiter_two_alone_is_still_passthrough() {
        let cfg = PackingConfig {
            delimiter2: Some(0x0A),
            ..PackingConfig::default()
        };
        assert!(cfg.is_passthrough());
    }

    #[test]
    fn packet_length_cuts_every_l_bytes_and_ignores_delimiters() {
        let mut p = Packer::new(PackingConfig {
            length: 4,
            delimiter1: Some(0x0D),
            ..PackingConfig::default()
        });
        let mut frames = Vec::new();
        p.push(b"a\rbcdef", t0(), &mut frames);
        p.push(b"gh\ri", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"a\rbc"[..], b"defg"]);
        assert_eq!(p.buffered(), 3);
        p.push(b"x", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"a\rbc"[..], b"defg", b"h\rix"]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn packet_length_above_the_buffer_acts_as_the_buffer_size() {
        let mut p = Packer::new(PackingConfig {
            length: 5000,
            ..PackingConfig::default()
        });
        let mut frames = Vec::new();
        p.push(&[7u8; 2049], t0(), &mut frames);
        assert_eq!(
            frames.iter().map(|f| f.len()).collect::<Vec<_>>(),
            [1024, 1024]
        );
        assert_eq!(p.buffered(), 1);
    }

    #[test]
    fn delimiter_do_nothing_keeps_the_delimiter() {
        let mut p = Packer::new(delim(0x0D, None, DelimiterProcess::DoNothing));
        let mut frames = Vec::new();
        p.push(b"ab\rcd\r\re", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"ab\r"[..], b"cd\r", b"\r"]);
        assert_eq!(p.buffered(), 1);
    }

    #[test]
    fn delimiter_strip_removes_the_delimiter_and_sends_no_empty_frame() {
        let mut p = Packer::new(delim(0x0D, None, DelimiterProcess::Strip));
        let mut frames = Vec::new();
        p.push(b"\rab\r\rcd\r", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"ab"[..], b"cd"]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn delimiter_plus_one_and_plus_two_wait_for_more_bytes() {
        let mut p = Packer::new(delim(0x03, None, DelimiterProcess::PlusOne));
        let mut frames = Vec::new();
        p.push(b"ab\x03", t0(), &mut frames);
        assert!(frames.is_empty());
        p.push(b"X\x03", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"ab\x03X"[..]]);

        let mut p = Packer::new(delim(0x03, None, DelimiterProcess::PlusTwo));
        let mut frames = Vec::new();
        // The bytes after the delimiter are taken as they are, even another
        // delimiter.
        p.push(b"ab\x03\x03", t0(), &mut frames);
        assert!(frames.is_empty());
        p.push(b"Yc", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"ab\x03\x03Y"[..]]);
        assert_eq!(p.buffered(), 1);
    }

    #[test]
    fn two_delimiters_must_arrive_in_sequence() {
        let mut p = Packer::new(delim(0x0D, Some(0x0A), DelimiterProcess::DoNothing));
        let mut frames = Vec::new();
        p.push(b"a\nb\rc\r", t0(), &mut frames);
        assert!(frames.is_empty());
        p.push(b"\nd", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"a\nb\rc\r\n"[..]]);
        assert_eq!(p.buffered(), 1);
    }

    #[test]
    fn strip_removes_both_delimiters() {
        let mut p = Packer::new(delim(0x0D, Some(0x0A), DelimiterProcess::Strip));
        let mut frames = Vec::new();
        p.push(b"one\r", t0(), &mut frames);
        p.push(b"\ntwo\r\r\n\r\n", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"one"[..], b"two\r"]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn same_byte_for_both_delimiters_needs_two_of_them() {
        let mut p = Packer::new(delim(0x7E, Some(0x7E), DelimiterProcess::DoNothing));
        let mut frames = Vec::new();
        p.push(b"a~b~~~c", t0(), &mut frames);
        assert_eq!(frames_of(&frames), [&b"a~b~~"[..]]);
        assert_eq!(p.buffered(), 2);
    }

    #[test]
    fn full_buffer_is_sent_even_with_delimiters() {
        let mut p = Packer::new(delim(0x0D, None, DelimiterProcess::DoNothing));
        let mut frames = Vec::new();
        p.push(&[0x41; 1000], t0(), &mut frames);
        p.push(&[0x42; 100], t0(), &mut frames);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames.first().map(Bytes::len), Some(BUFFER_SIZE));
        assert_eq!(p.buffered(), 1100 - BUFFER_SIZE);
    }

    #[test]
    fn force_transmit_sends_after_an_idle_gap() {
        let base = t0();
        let mut p = Packer::new(PackingConfig {
            force_transmit_ms: 20,
            delimiter1: Some(0x0D),
            ..PackingConfig::default()
        });
        let mut frames = Vec::new();
        assert_eq!(p.poll_timeout(), None);
        p.push(b"ab", base, &mut frames);
        assert_eq!(p.poll_timeout(), Some(ms(base, 20)));
        // Every byte restarts the gap.
        p.push(b"c", ms(base, 15), &mut frames);
        assert_eq!(p.poll_timeout(), Some(ms(base, 35)));
        p.handle_timeout(ms(base, 34), &mut frames);
        assert!(frames.is_empty());
        p.handle_timeout(ms(base, 35), &mut frames);
        assert_eq!(frames_of(&frames), [&b"abc"[..]]);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn late_push_sends_the_old_buffer_first() {
        let base = t0();
        let mut p = Packer::new(PackingConfig {
            force_transmit_ms: 10,
            ..PackingConfig::default()
        });
        let mut frames = Vec::new();
        p.push(b"old", base, &mut frames);
        // The caller did not get to handle_timeout before new data came.
        p.push(b"new", ms(base, 50), &mut frames);
        assert_eq!(frames_of(&frames), [&b"old"[..]]);
        assert_eq!(p.buffered(), 3);
    }

    #[test]
    fn force_transmit_ends_a_plus_two_wait() {
        let base = t0();
        let mut p = Packer::new(PackingConfig {
            force_transmit_ms: 10,
            ..delim(0x03, None, DelimiterProcess::PlusTwo)
        });
        let mut frames = Vec::new();
        p.push(b"a\x03b", base, &mut frames);
        p.handle_timeout(ms(base, 10), &mut frames);
        p.push(b"cd\x03ef", ms(base, 11), &mut frames);
        assert_eq!(frames_of(&frames), [&b"a\x03b"[..], b"cd\x03ef"]);
    }

    #[test]
    fn flush_sends_what_is_buffered() {
        let mut p = Packer::new(delim(0x0D, Some(0x0A), DelimiterProcess::Strip));
        let mut frames = Vec::new();
        p.push(b"abc\r", t0(), &mut frames);
        p.flush(&mut frames);
        p.flush(&mut frames);
        assert_eq!(frames_of(&frames), [&b"abc\r"[..]]);
        // The flush ended the D1 D2 sequence.
        p.push(b"\n", t0(), &mut frames);
        assert_eq!(p.buffered(), 1);
    }

    /// A byte-at-a-time model of the rules, written independently of the
    /// bulk implementation.
    fn model(cfg: &PackingConfig, input: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let limit = match usize::from(cfg.length) {
            0 => BUFFER_SIZE,
            n => n.min(BUFFER_SIZE),
        };
        let delimited = cfg.length == 0 && cfg.delimiter1.is_some();
        let extra = match cfg.process {
            DelimiterProcess::PlusOne => 1,
            DelimiterProcess::PlusTwo => 2,
            _ => 0,
        };
        let mut frames = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut after_d1 = false;
        let mut tail = 0;
        let mut emit = |buf: &mut Vec<u8>, after_d1: &mut bool, tail: &mut usize| {
            *after_d1 = false;
            *tail = 0;
            if !buf.is_empty() {
                frames.push(std::mem::take(buf));
            }
        };
        for &b in input {
            if !delimited {
                buf.push(b);
                if buf.len() == limit {
                    emit(&mut buf, &mut after_d1, &mut tail);
                }
                continue;
            }
            if tail > 0 {
                buf.push(b);
                tail -= 1;
                if tail == 0 || buf.len() == limit {
                    emit(&mut buf, &mut after_d1, &mut tail);
                }
                continue;
            }
            let pair = std::mem::replace(&mut after_d1, false) && Some(b) == cfg.delimiter2;
            let single = !pair && Some(b) == cfg.delimiter1 && cfg.delimiter2.is_none();
            if pair || single {
                if cfg.process == DelimiterProcess::Strip {
                    if pair {
                        buf.pop();
                    }
                    emit(&mut buf, &mut after_d1, &mut tail);
                    continue;
                }
                buf.push(b);
                if extra == 0 || buf.len() == limit {
                    emit(&mut buf, &mut after_d1, &mut tail);
                } else {
                    tail = extra;
                }
                continue;
            }
            buf.push(b);
            if buf.len() == limit {
                emit(&mut buf, &mut after_d1, &mut tail);
            } else if Some(b) == cfg.delimiter1 && cfg.delimiter2.is_some() {
                after_d1 = true;
            }
        }
        (frames, buf)
    }

    fn any_config() -> impl Strategy<Value = PackingConfig> {
        (
            prop_oneof![Just(0u16), 1u16..8, Just(1024), 1020u16..1100],
            prop::option::of(prop_oneof![Just(0x0Du8), Just(0x0A), any::<u8>()]),
            prop::option::of(prop_oneof![Just(0x0Au8), Just(0x0D), any::<u8>()]),
            prop::sample::select(vec![
                DelimiterProcess::DoNothing,
                DelimiterProcess::PlusOne,
                DelimiterProcess::PlusTwo,
                DelimiterProcess::Strip,
            ]),
            prop_oneof![Just(0u16), 1u16..100],
        )
            .prop_map(
                |(length, delimiter1, delimiter2, process, force_transmit_ms)| PackingConfig {
                    length,
                    delimiter1,
                    delimiter2,
                    process,
                    force_transmit_ms,
                },
            )
    }

    fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Long enough to fill the buffer now and then.
        vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(0x0D), 1 => Just(0x0A)],
            0..2600,
        )
    }

    fn run(cfg: &PackingConfig, input: &[u8], chunk: usize) -> (Vec<Bytes>, usize) {
        let now = t0();
        let mut p = Packer::new(cfg.clone());
        let mut frames = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            p.push(piece, now, &mut frames);
        }
        (frames, p.buffered())
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_frames(
            cfg in any_config(),
            input in input_bytes(),
            chunk in 1usize..300,
        ) {
            prop_assume!(!cfg.is_passthrough());
            let whole = run(&cfg, &input, input.len());
            let chunked = run(&cfg, &input, chunk);
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn frames_follow_the_byte_by_byte_model(
            cfg in any_config(),
            input in input_bytes(),
            chunk in 1usize..300,
        ) {
            prop_assume!(!cfg.is_passthrough());
            let (frames, buffered) = run(&cfg, &input, chunk);
            let (expected, rest) = model(&cfg, &input);
            prop_assert_eq!(frames_of(&frames), expected.iter().map(Vec::as_slice).collect::<Vec<_>>());
            prop_assert_eq!(buffered, rest.len());
        }

        #[test]
        fn frames_are_the_input_minus_stripped_delimiters(
            cfg in any_config(),
            input in input_bytes(),
            chunk in 1usize..300,
        ) {
            let now = t0();
            let mut p = Packer::new(cfg.clone());
            let mut frames = Vec::new();
            for piece in input.chunks(chunk) {
                p.push(piece, now, &mut frames);
            }
            p.flush(&mut frames);
            prop_assert!(frames.iter().all(|f| !f.is_empty() && f.len() <= BUFFER_SIZE));
            let sent: Vec<u8> = frames.concat();
            let strips = cfg.length == 0 && cfg.process == DelimiterProcess::Strip;
            match (strips, cfg.delimiter1, cfg.delimiter2) {
                (true, Some(d1), None) => {
                    let expected: Vec<u8> = input.iter().copied().filter(|&b| b != d1).collect();
                    prop_assert_eq!(sent, expected);
                }
                (true, Some(_), Some(_)) => prop_assert!(sent.len() <= input.len()),
                _ => prop_assert_eq!(sent, input),
            }
        }
    }
}
