//! Fuzz bodies, shared by the `cargo fuzz` targets in `fuzz/` and by the
//! property tests of this crate, so both exercise exactly the same code.
//!
//! Each body takes arbitrary bytes, must never panic on them, and checks
//! invariants with `assert!` (a failed assertion is a bug the fuzzer
//! found): chunking does not change decoded events, escaping round-trips,
//! replies stay proportional to input, frames stay within the buffer size.
//! Not part of the public API.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::dsci;
use crate::packing::{BUFFER_SIZE, DelimiterProcess, Packer, PackingConfig};
use crate::pair;
use crate::realcom::{
    AliveAction, AlivePoller, AliveTiming, CommandDecoder, Decoded, HostEvent, ModemInputs,
    NotifyTracker, Reply, ReplyDecoder,
};
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

/// The Real COM command decoder (server side). The first byte picks a
/// chunk size; chunking must not change what is decoded, and every decoded
/// request must encode back to bytes that decode to itself.
pub fn realcom_commands(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) + 1;
    let whole = realcom_decode_in_chunks(stream, stream.len().max(1));
    let chunked = realcom_decode_in_chunks(stream, chunk);
    assert_eq!(whole, chunked);
    // Each command takes at least its two header bytes.
    assert!(whole.len() <= stream.len() / 2);

    for decoded in &whole {
        if let Decoded::Request(request) = decoded {
            let mut wire = Vec::new();
            request.encode(&mut wire);
            assert_eq!(wire.first(), Some(&request.code().0));
            let again = realcom_decode_in_chunks(&wire, wire.len());
            assert_eq!(again, vec![decoded.clone()]);
        }
    }
}

fn realcom_decode_in_chunks(stream: &[u8], chunk: usize) -> Vec<Decoded> {
    let mut decoder = CommandDecoder::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece, &mut out);
        assert!(decoder.buffered() <= 257);
    }
    out
}

/// The server → host direction: the host's reply decoder on arbitrary
/// bytes, then the NOTIFY tracker and the alive poller driven by them. The
/// first byte picks a chunk size.
pub fn realcom_replies(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x1F) + 1;

    // Whatever the decoder makes of the bytes re-encodes to a stream that
    // decodes to the same replies, in any chunking.
    let mut decoder = ReplyDecoder::new();
    let mut events = Vec::new();
    for piece in stream.chunks(chunk) {
        decoder.push(piece, &mut events);
    }
    assert!(events.len() <= stream.len());
    let replies: Vec<Reply> = events
        .into_iter()
        .filter_map(|e| match e {
            HostEvent::Reply(r) => Some(r),
            HostEvent::Unknown(_) => None,
        })
        .collect();
    let mut wire = Vec::new();
    for reply in &replies {
        reply.encode(&mut wire);
    }
    let mut decoder = ReplyDecoder::new();
    let mut again = Vec::new();
    for piece in wire.chunks(chunk) {
        decoder.push(piece, &mut again);
    }
    let expected: Vec<HostEvent> = replies.into_iter().map(HostEvent::Reply).collect();
    assert_eq!(again, expected);

    // NOTIFY tracker: (levels, events, hold) triples.
    let mut tracker = NotifyTracker::new();
    let mut reported = 0u8;
    let mut reported_hold = 0u8;
    for triple in stream.chunks_exact(3) {
        let &[levels, events, hold] = triple else {
            continue;
        };
        let lines = ModemInputs::from_msr(levels);
        let delta = ((levels & 0xF0) ^ reported) >> 4;
        let hold_changed = hold & 0x7F != reported_hold;
        match tracker.update(lines, events, hold) {
            Some(Reply::Notify {
                events: e,
                msr,
                hold: h,
            }) => {
                assert_eq!(msr, (levels & 0xF0) | delta);
                assert_eq!(e & !0x20, events & !0x20);
                assert_eq!(e & 0x20 != 0, delta != 0 || events & 0x20 != 0);
                assert_eq!(h, hold | 0x80);
            }
            Some(other) => panic!("the tracker produced {other:?}"),
            None => assert!(delta == 0 && events == 0 && !hold_changed),
        }
        reported = levels & 0xF0;
        reported_hold = hold & 0x7F;
    }

    // Alive poller: a schedule of (op) bytes.
    let timing = AliveTiming {
        idle: Duration::from_millis(u64::from(ctl >> 5) * 1000 + 500),
        interval: Duration::from_millis(300),
        max_misses: ctl & 0x03,
    };
    let start = Instant::now();
    let mut now = start;
    let mut poller = AlivePoller::new(timing, now);
    let mut last_poll: Option<Instant> = None;
    for &op in stream {
        match op & 0x03 {
            0 => {
                now += Duration::from_millis(u64::from(op >> 2) * 50);
                let deadline = poller.next_deadline();
                match poller.poll(now) {
                    AliveAction::Send(Reply::Poll { id }) => {
                        assert_ne!(id, 0);
                        assert!(poller.is_enabled());
                        assert!(deadline.is_some_and(|d| d <= now));
                        if let Some(prev) = last_poll {
                            assert!(now.duration_since(prev) >= timing.interval);
                        }
                        last_poll = Some(now);
                    }
                    AliveAction::Send(other) => panic!("the poller produced {other:?}"),
                    AliveAction::Dead => assert_eq!(poller.next_deadline(), None),
                    AliveAction::Nothing => {
                        assert!(deadline.is_none_or(|d| d > now));
                    }
                }
                assert!(poller.misses() <= timing.max_misses.max(1));
            }
            1 => poller.activity(now),
            2 => poller.alive_reply(now),
            _ => poller.set_enabled(op & 0x04 != 0, now),
        }
    }
}

/// DSCI answers: arbitrary datagrams, and the same with our device id
/// stamped in, so the checks past the device id are reached.
pub fn dsci(data: &[u8]) {
    let me = dsci::Identity {
        id: dsci::DeviceId {
            apid: 0x8000_6650,
            hwid: 0x6650,
            mac: [0x00, 0x90, 0xE8, 0x01, 0x02, 0x03],
        },
        ipv4: std::net::Ipv4Addr::new(127, 0, 0, 1),
    };
    let mut stamped = data.to_vec();
    if let Some(id) = stamped.get_mut(8..20) {
        id.copy_from_slice(&me.id.encode());
    }
    for request in [data, &stamped[..]] {
        let Some(reply) = dsci::answer(request, &me) else {
            continue;
        };
        // Bit 7 set on the request's opcode, the id echoed, the declared
        // length true and one the driver's receive filter accepts.
        assert_eq!(
            reply.first().copied(),
            request.first().map(|op| op | dsci::opcode::REPLY)
        );
        assert_eq!(reply.get(1), Some(&0));
        assert_eq!(reply.get(4..8), request.get(4..8));
        let declared = match reply.get(2..4) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => 0,
        };
        assert_eq!(declared, reply.len());
        assert!(reply.len() == 24 || reply.len() == 36);
        assert_eq!(reply.get(8..20), Some(&me.id.encode()[..]));
    }
}

/// Pair Connection frames: the stream decoded whole and in chunks (the
/// first byte picks the chunk size) gives the same frames and the same
/// error; decoded frames encode and decode back to themselves; nothing
/// more than one frame is ever held. Fed twice: as given (almost always
/// refused for lacking a hello) and after a valid hello, so the checks past
/// the handshake are reached.
pub fn pair(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl) * 17 + 1;
    let mut greeted = BytesMut::new();
    pair::Frame::Hello.encode(&mut greeted);
    greeted.extend_from_slice(stream);
    for input in [stream, &greeted[..]] {
        let whole = pair_decode_in_chunks(input, input.len().max(1));
        let chunked = pair_decode_in_chunks(input, chunk);
        assert_eq!(whole, chunked);
        let (frames, _) = whole;
        let mut again = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut again);
        }
        assert_eq!(
            pair_decode_in_chunks(&again, again.len().max(1)),
            (frames, None)
        );
    }
}

fn pair_decode_in_chunks(
    stream: &[u8],
    chunk: usize,
) -> (Vec<pair::Frame>, Option<pair::DecodeError>) {
    let mut decoder = pair::Decoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        assert!(buf.len() < pair::HEADER_LEN + pair::MAX_DATA);
    }
    (frames, None)
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

    /// Real COM commands with a known code and a length that is mostly
    /// right, so random streams decode to requests, not only to `Ignored`.
    fn realcom_command_stream() -> impl Strategy<Value = Vec<u8>> {
        let known = prop::sample::select(vec![
            (0x10u8, 2usize),
            (0x11, 4),
            (0x12, 2),
            (0x13, 0),
            (0x14, 1),
            (0x15, 0),
            (0x16, 0),
            (0x17, 4),
            (0x18, 2),
            (0x20, 3),
            (0x21, 0),
            (0x22, 0),
            (0x23, 2),
            (0x24, 0),
            (0x25, 0),
            (0x28, 1),
            (0x2C, 8),
            (0x2F, 4),
            (0x30, 1),
            (0x32, 1),
            (0x33, 0),
            (0x34, 0),
            (0x35, 5),
            (0x36, 0),
            (0x37, 0),
            (0x38, 0),
        ]);
        let frame = (known, 0usize..3, vec(prop_oneof![0u8..4, any::<u8>()], 70)).prop_map(
            |((code, len), skew, data)| {
                // Mostly the right length; sometimes one more or less.
                let len = match skew {
                    0 => len.saturating_sub(1),
                    1 => len + 1,
                    _ => len,
                };
                let mut v = vec![code, u8::try_from(len).unwrap_or(0)];
                v.extend(data.into_iter().take(len));
                v
            },
        );
        let frames = prop_oneof![4 => frame, 1 => vec(any::<u8>(), 0..6)];
        vec(frames, 0..48).prop_map(|f| f.concat())
    }

    /// Server → host messages, valid or with a wrong byte here and there.
    fn realcom_reply_stream() -> impl Strategy<Value = Vec<u8>> {
        let valid = prop_oneof![
            prop::sample::select(vec![0x10u8, 0x12, 0x14, 0x17, 0x21, 0x30, 0x33, 0x36])
                .prop_map(|c| vec![c, 0x4F, 0x4B]),
            Just(vec![0x17, 0x4E, 0x41]),
            any::<[u8; 3]>().prop_map(|[a, b, c]| vec![0x2C, 0x03, a & 1, b & 1, c & 1]),
            any::<[u8; 3]>().prop_map(|[e, m, h]| vec![0x26, e, m, h]),
            any::<u8>().prop_map(|id| vec![0x27, 0x01, id]),
            any::<[u8; 2]>().prop_map(|[lo, hi]| vec![0x2F, 0x02, lo, hi]),
            any::<[u8; 2]>().prop_map(|[lo, hi]| vec![0x35, 0x04, lo, hi, 0, 0]),
            any::<[u8; 2]>().prop_map(|[hi, lo]| vec![0x37, 0x02, hi, lo]),
        ];
        vec(prop_oneof![6 => valid, 1 => vec(any::<u8>(), 0..4)], 0..48).prop_map(|f| f.concat())
    }

    /// DSCI requests of the four kinds we answer, with lengths right or off.
    fn dsci_datagram() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![
                (0x01u8, 8u16),
                (0x16, 20),
                (0x14, 22),
                (0x1D, 24),
                (0x81, 24),
            ]),
            -2i32..3,
            any::<[u8; 4]>(),
            vec(any::<u8>(), 0..40),
        )
            .prop_map(|((op, len), skew, id, body)| {
                let declared = u16::try_from(i32::from(len) + skew).unwrap_or(0);
                let mut v = vec![op, 0];
                v.extend(declared.to_be_bytes());
                v.extend(id);
                v.extend(body);
                v.truncate(usize::from(len));
                v
            })
    }

    /// Pair frames with the right length mostly, a wrong type or length now
    /// and then.
    fn pair_stream() -> impl Strategy<Value = Vec<u8>> {
        let frame = (
            prop_oneof![4 => 1u8..4, 1 => any::<u8>()],
            prop_oneof![4 => 0u16..40, 1 => any::<u16>()],
            vec(any::<u8>(), 0..40),
        )
            .prop_map(|(kind, len, body)| {
                let mut v = vec![kind];
                v.extend(len.to_be_bytes());
                v.extend(body.into_iter().take(usize::from(len)));
                v
            });
        vec(frame, 0..32).prop_map(|f| f.concat())
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

        #[test]
        fn fuzz_realcom_commands_never_panics(data in vec(any::<u8>(), 0..4096)) {
            realcom_commands(&data);
        }

        #[test]
        fn fuzz_realcom_commands_never_panics_on_plausible_streams(ctl in any::<u8>(), data in realcom_command_stream()) {
            let mut input = vec![ctl];
            input.extend(data);
            realcom_commands(&input);
        }

        #[test]
        fn fuzz_realcom_replies_never_panics(data in vec(any::<u8>(), 0..4096)) {
            realcom_replies(&data);
        }

        #[test]
        fn fuzz_realcom_replies_never_panics_on_plausible_streams(ctl in any::<u8>(), data in realcom_reply_stream()) {
            let mut input = vec![ctl];
            input.extend(data);
            realcom_replies(&input);
        }

        #[test]
        fn fuzz_pair_never_panics(data in vec(any::<u8>(), 0..4096)) {
            pair(&data);
        }

        #[test]
        fn fuzz_pair_never_panics_on_plausible_streams(ctl in any::<u8>(), data in pair_stream()) {
            let mut input = vec![ctl];
            input.extend(data);
            pair(&input);
        }

        #[test]
        fn fuzz_dsci_never_panics(data in vec(any::<u8>(), 0..128)) {
            dsci(&data);
        }

        #[test]
        fn fuzz_dsci_never_panics_on_plausible_datagrams(data in dsci_datagram()) {
            dsci(&data);
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
            // Real COM: a maximal unknown command split in two, a reply
            // stream cut in the middle of a PORT_INIT answer, DSCI search.
            [vec![0x00, 0x77, 0xFF], vec![0xAB; 300]].concat(),
            vec![0x00, 0x12, 0x4F, 0x4B, 0x2C, 0x03, 0x01],
            vec![0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00],
        ];
        for case in &cases {
            telnet(case);
            rfc2217_server(case);
            packing(case);
            realcom_commands(case);
            realcom_replies(case);
            dsci(case);
            pair(case);
        }
    }
}
