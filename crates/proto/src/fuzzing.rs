//! Fuzz bodies, shared by the `cargo fuzz` targets in `fuzz/` and by the
//! property tests of this crate, so both exercise exactly the same code.
//!
//! Each body takes arbitrary bytes, must never panic on them, and checks
//! invariants with `assert!` (a failed assertion is a bug the fuzzer
//! found): chunking does not change decoded events, escaping round-trips,
//! replies stay proportional to input, frames stay within the buffer size.
//! Not part of the public API.

use std::time::{Duration, Instant};

use crate::packing::{BUFFER_SIZE, DelimiterProcess, Packer, PackingConfig};
use crate::rfc2217::{ComPortCommand, Rfc2217Server, ServerEvent};
use crate::telnet::{OptionTable, TelnetDecoder, TelnetEvent, TelnetOption, escape_iac};

/// Telnet decoder and option table. The first byte picks binary mode and a
/// chunk size.
pub fn telnet(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let binary = ctl & 0x01 != 0;
    let chunk = usize::from(ctl >> 1) + 1;

    let whole = decode_in_chunks(stream, binary, stream.len().max(1));
    let chunked = decode_in_chunks(stream, binary, chunk);
    assert_eq!(merge_data(whole.clone()), merge_data(chunked));

    // The option table answers each negotiation with at most one command.
    let mut table = OptionTable::new(
        &[TelnetOption::BINARY, TelnetOption::SGA],
        &[TelnetOption::BINARY, TelnetOption::COM_PORT_OPTION],
    );
    let mut out = Vec::new();
    let mut negotiations = 0;
    for event in &whole {
        if let TelnetEvent::Negotiate { verb, option } = *event {
            negotiations += 1;
            table.handle(verb, option, &mut out);
        }
    }
    assert!(out.len() <= 3 * negotiations);

    // Escaped data decodes back to itself.
    let mut escaped = Vec::new();
    escape_iac(stream, &mut escaped);
    let mut decoder = TelnetDecoder::new();
    let mut events = Vec::new();
    decoder.decode(&escaped, &mut events);
    let expected: Vec<TelnetEvent> = if stream.is_empty() {
        Vec::new()
    } else {
        vec![TelnetEvent::Data(stream.to_vec())]
    };
    assert_eq!(events, expected);
}

/// An RFC 2217 server session fed with arbitrary client bytes. The first
/// byte picks a chunk size.
pub fn rfc2217_server(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) + 1;
    let mut server = Rfc2217Server::new("ttyward fuzz");
    let mut out = Vec::new();
    server.start(&mut out);
    out.clear();
    let mut events = Vec::new();
    let mut replies = Vec::new();
    for piece in stream.chunks(chunk) {
        server.handle_input(piece, &mut out, &mut events);
        for event in events.drain(..) {
            match event {
                ServerEvent::Command(cmd) => match cmd {
                    ComPortCommand::NotifyModemState(_) => {
                        server.notify_modem_state(ctl, &mut replies)
                    }
                    ComPortCommand::NotifyLineState(_) => {
                        server.notify_line_state(ctl, &mut replies)
                    }
                    other => server.reply(&other, &mut replies),
                },
                ServerEvent::Data(d) => server.encode_data(&d, &mut replies),
                ServerEvent::Break => {}
            }
        }
        server.modem_state_update(piece.first().copied().unwrap_or(0), &mut replies);
        server.line_state_update(piece.last().copied().unwrap_or(0), &mut replies);
    }
    // What the session says by itself stays proportional to what it heard:
    // no reply storms from negotiation games.
    assert!(out.len() <= 4 * stream.len() + 64);
}

/// The packer with a configuration and a schedule taken from the input:
/// 7 bytes of configuration, then (op, argument) pairs.
pub fn packing(data: &[u8]) {
    let Some((cfg_bytes, ops)) = data.split_first_chunk::<7>() else {
        return;
    };
    let [len_hi, len_lo, d1, d2, flags, force_hi, force_lo] = *cfg_bytes;
    let cfg = PackingConfig {
        length: u16::from_be_bytes([len_hi & 0x07, len_lo]),
        delimiter1: (flags & 0x01 != 0).then_some(d1),
        delimiter2: (flags & 0x02 != 0).then_some(d2),
        process: match (flags >> 2) & 0x03 {
            0 => DelimiterProcess::DoNothing,
            1 => DelimiterProcess::PlusOne,
            2 => DelimiterProcess::PlusTwo,
            _ => DelimiterProcess::Strip,
        },
        force_transmit_ms: u16::from_be_bytes([force_hi & 0x03, force_lo]),
    };
    // A base instant is needed to build instants at all; only offsets from
    // it matter.
    let start = Instant::now();
    let mut now = start;
    let mut packer = Packer::new(cfg.clone());
    let mut frames = Vec::new();
    let mut pushed = 0usize;
    let mut rest = ops;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op & 0x03 {
            // Push the next `op >> 2` bytes, shortly after the previous ones.
            0 | 1 => {
                let n = usize::from(op >> 2).min(rest.len());
                let (chunk, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
                rest = tail;
                now += Duration::from_millis(u64::from(op & 0x01));
                pushed += chunk.len();
                packer.push(chunk, now, &mut frames);
            }
            // Let time pass and honour the timer.
            2 => {
                now += Duration::from_millis(u64::from(op >> 2) * 8);
                if let Some(deadline) = packer.poll_timeout()
                    && deadline <= now
                {
                    packer.handle_timeout(now, &mut frames);
                    assert_eq!(packer.buffered(), 0);
                }
            }
            _ => packer.flush(&mut frames),
        }
        assert!(packer.buffered() < BUFFER_SIZE || cfg.is_passthrough());
        assert_eq!(
            packer.poll_timeout().is_some(),
            cfg.force_transmit_ms > 0 && packer.buffered() > 0
        );
    }
    packer.flush(&mut frames);
    assert!(
        frames
            .iter()
            .all(|f| !f.is_empty() && f.len() <= BUFFER_SIZE)
    );
    let sent: usize = frames.iter().map(|f| f.len()).sum();
    assert!(sent <= pushed);
    if cfg.process != DelimiterProcess::Strip || cfg.length > 0 || cfg.delimiter1.is_none() {
        assert_eq!(sent, pushed);
    }

    // Chunking does not matter when the time does not change.
    let mut one = Packer::new(cfg.clone());
    let mut in_one = Vec::new();
    one.push(ops, start, &mut in_one);
    one.flush(&mut in_one);
    let mut many = Packer::new(cfg);
    let mut in_many = Vec::new();
    for chunk in ops.chunks(usize::from(len_lo % 7) + 1) {
        many.push(chunk, start, &mut in_many);
    }
    many.flush(&mut in_many);
    if !one.config().is_passthrough() {
        assert_eq!(in_one, in_many);
    }
}

fn decode_in_chunks(stream: &[u8], binary: bool, chunk: usize) -> Vec<TelnetEvent> {
    let mut decoder = TelnetDecoder::new();
    decoder.set_binary(binary);
    let mut events = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.decode(piece, &mut events);
    }
    events
}

/// Merge adjacent data events, which chunk boundaries may split.
pub fn merge_data(events: Vec<TelnetEvent>) -> Vec<TelnetEvent> {
    let mut merged: Vec<TelnetEvent> = Vec::with_capacity(events.len());
    for event in events {
        if let (Some(TelnetEvent::Data(prev)), TelnetEvent::Data(next)) =
            (merged.last_mut(), &event)
        {
            prev.extend_from_slice(next);
        } else {
            merged.push(event);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Pieces of plausible Telnet / RFC 2217 traffic, so random streams
    /// reach deep states instead of being mostly plain data.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..16),
            (
                prop::sample::select(vec![0xFBu8, 0xFC, 0xFD, 0xFE]),
                prop_oneof![Just(0x00u8), Just(0x03), Just(0x2C), any::<u8>()]
            )
                .prop_map(|(verb, opt)| vec![0xFF, verb, opt]),
            (0u8..14, vec(any::<u8>(), 0..6)).prop_map(|(code, value)| {
                let mut v = vec![0xFF, 0xFA, 0x2C, code];
                escape_iac(&value, &mut v);
                v.extend([0xFF, 0xF0]);
                v
            }),
            Just(vec![0xFF]),
            Just(vec![0xFF, 0xFA]),
            Just(vec![0xFF, 0xF0]),
            Just(vec![0xFF, 0xF3]),
            Just(vec![0x0D, 0x00]),
        ]
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        vec(token(), 0..64).prop_map(|t| t.concat())
    }

    proptest! {
        #[test]
        fn fuzz_telnet_never_panics(data in vec(any::<u8>(), 0..4096)) {
            telnet(&data);
        }

        #[test]
        fn fuzz_telnet_never_panics_on_plausible_streams(ctl in any::<u8>(), data in stream()) {
            let mut input = vec![ctl];
            input.extend(data);
            telnet(&input);
        }

        #[test]
        fn fuzz_rfc2217_server_never_panics(data in vec(any::<u8>(), 0..4096)) {
            rfc2217_server(&data);
        }

        #[test]
        fn fuzz_rfc2217_server_never_panics_on_plausible_streams(ctl in any::<u8>(), data in stream()) {
            let mut input = vec![ctl];
            input.extend(data);
            rfc2217_server(&input);
        }

        #[test]
        fn fuzz_packing_never_panics(data in vec(any::<u8>(), 0..4096)) {
            packing(&data);
        }
    }

    #[test]
    fn fuzz_bodies_survive_hand_made_malformed_input() {
        let mut oversized_sb = vec![0x00, 0xFF, 0xFA, 0x2C, 0x00];
        oversized_sb.extend([0x41; 3000]);
        oversized_sb.extend([0xFF, 0xF0, 0x42]);
        let mut flip_flops = vec![0x00];
        for _ in 0..10_000 {
            flip_flops.extend([0xFF, 0xFB, 0x2C, 0xFF, 0xFC, 0x2C]);
        }
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x00, 0xFF],
            vec![0x00, 0x41, 0xFF, 0xFA],
            vec![0x00, 0xFF, 0xFA, 0x2C, 0x01, 0x00, 0x00],
            vec![0x00, 0xFF, 0xF0, 0x41],
            vec![
                0x00, 0xFF, 0xFB, 0x77, 0xFF, 0xFD, 0x78, 0xFF, 0xFA, 0x77, 0xFF, 0xF0,
            ],
            vec![0x00, 0xFF, 0xFA, 0x2C, 0x05, 0xFF, 0xFD],
            oversized_sb,
            flip_flops,
            vec![0xFF; 4096],
        ];
        for case in &cases {
            telnet(case);
            rfc2217_server(case);
            packing(case);
        }
    }
}
