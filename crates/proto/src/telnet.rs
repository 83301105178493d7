//! The Telnet byte stream: a streaming decoder, IAC escaping and option
//! negotiation.
//!
//! * [`TelnetDecoder`] splits a received byte stream (RFC 854) into data,
//!   commands, option negotiations and subnegotiations. It keeps its state
//!   between calls, so the stream may arrive in chunks of any size; data
//!   bytes are coalesced into one [`TelnetEvent::Data`] per run instead of one
//!   event per byte.
//! * [`escape_iac`] doubles every 0xFF in outgoing data.
//! * [`OptionTable`] runs the option negotiation of RFC 855 with the
//!   "Q method" of RFC 1143, for both directions of every option, so that a
//!   misbehaving peer can never drive us into a negotiation loop.
//!
//! It does not implement any option's own semantics (that is the caller's
//! business, e.g. [`crate::rfc2217`]), the Telnet "synch" (urgent data and
//! DM), or go-ahead handling: the server always suppresses go-ahead.

/// Interpret As Command: introduces every Telnet command.
pub const IAC: u8 = 0xFF;
/// "Please stop performing the option" / "I confirm you stop".
pub const DONT: u8 = 0xFE;
/// "Please start performing the option" / "I confirm you perform it".
pub const DO: u8 = 0xFD;
/// "I will not (any longer) perform the option".
pub const WONT: u8 = 0xFC;
/// "I want to / confirm I will perform the option".
pub const WILL: u8 = 0xFB;
/// Subnegotiation Begin.
pub const SB: u8 = 0xFA;
/// Go Ahead.
pub const GA: u8 = 0xF9;
/// Erase Line.
pub const EL: u8 = 0xF8;
/// Erase Character.
pub const EC: u8 = 0xF7;
/// Are You There.
pub const AYT: u8 = 0xF6;
/// Abort Output.
pub const AO: u8 = 0xF5;
/// Interrupt Process.
pub const IP: u8 = 0xF4;
/// Break: for a serial port, a line break on the wire.
pub const BRK: u8 = 0xF3;
/// Data Mark (the end of a Telnet "synch").
pub const DM: u8 = 0xF2;
/// No Operation.
pub const NOP: u8 = 0xF1;
/// Subnegotiation End.
pub const SE: u8 = 0xF0;

/// Carriage return; see [`TelnetDecoder::set_binary`] for the CR NUL rule.
const CR: u8 = 0x0D;
/// The byte RFC 854 puts after a CR that means "just a carriage return".
const NUL: u8 = 0x00;

/// The largest subnegotiation payload (after the option byte) the decoder
/// keeps. A longer one is discarded whole, so a peer cannot make us buffer
/// without bound. RFC 2217 payloads are at most a few bytes; a signature
/// text is the longest thing we expect.
pub const MAX_SUBNEGOTIATION_LEN: usize = 1024;

/// A Telnet option code (RFC 855), kept open: unknown codes survive
/// decoding and can be refused by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TelnetOption(pub u8);

impl TelnetOption {
    /// Binary transmission (RFC 856).
    pub const BINARY: Self = Self(0x00);
    /// Echo (RFC 857).
    pub const ECHO: Self = Self(0x01);
    /// Suppress Go Ahead (RFC 858).
    pub const SGA: Self = Self(0x03);
    /// Status (RFC 859).
    pub const STATUS: Self = Self(0x05);
    /// Timing mark (RFC 860).
    pub const TIMING_MARK: Self = Self(0x06);
    /// Terminal type (RFC 1091).
    pub const TERMINAL_TYPE: Self = Self(0x18);
    /// Negotiate About Window Size (RFC 1073).
    pub const NAWS: Self = Self(0x1F);
    /// Terminal speed (RFC 1079).
    pub const TERMINAL_SPEED: Self = Self(0x20);
    /// Remote flow control (RFC 1372).
    pub const TOGGLE_FLOW_CONTROL: Self = Self(0x21);
    /// Linemode (RFC 1184).
    pub const LINEMODE: Self = Self(0x22);
    /// New environment (RFC 1572).
    pub const NEW_ENVIRON: Self = Self(0x27);
    /// Com Port Control (RFC 2217).
    pub const COM_PORT_OPTION: Self = Self(0x2C);
}

/// One unit of a decoded Telnet stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelnetEvent {
    /// Application data, IAC IAC already turned into one 0xFF.
    Data(Vec<u8>),
    /// A two-byte command such as [`NOP`], [`BRK`] or [`AYT`] (also any
    /// unassigned byte after IAC, so the caller can log it).
    Command(u8),
    /// `IAC verb option`, verb being one of [`WILL`], [`WONT`], [`DO`],
    /// [`DONT`]. Feed it to [`OptionTable::handle`].
    Negotiate {
        /// [`WILL`], [`WONT`], [`DO`] or [`DONT`].
        verb: u8,
        /// The option the verb is about.
        option: TelnetOption,
    },
    /// `IAC SB option data IAC SE`, with IAC IAC in the data unescaped.
    Subnegotiation {
        /// The first byte after IAC SB.
        option: TelnetOption,
        /// The rest, at most [`MAX_SUBNEGOTIATION_LEN`] bytes.
        data: Vec<u8>,
    },
}

/// Where the decoder is inside the grammar of RFC 854.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Plain data.
    Data,
    /// Seen IAC in data.
    Iac,
    /// Seen IAC and one of WILL/WONT/DO/DONT; the option byte comes next.
    Verb(u8),
    /// Inside IAC SB ... (collecting option byte and payload).
    Sb,
    /// Seen IAC inside a subnegotiation.
    SbIac,
}

/// Streaming Telnet decoder (RFC 854).
///
/// Binary-safe by default: CR NUL is passed through untouched, which is what
/// a serial-port server wants once both sides agreed on BINARY (RFC 856).
/// Call [`set_binary(false)`](Self::set_binary) while the peer is *not* in
/// binary mode to get RFC 854's rule that CR NUL means a bare CR.
///
/// Malformed input never panics and never grows memory without bound:
/// `IAC SE` outside a subnegotiation is ignored; an IAC followed by anything
/// but IAC or SE inside a subnegotiation aborts it (the command is then
/// decoded as usual); an oversized subnegotiation is dropped whole.
#[derive(Clone, Debug)]
pub struct TelnetDecoder {
    state: State,
    /// No CR NUL translation when true.
    binary: bool,
    /// The last data byte consumed was a CR (only tracked outside binary).
    cr_seen: bool,
    /// Option byte followed by the payload of the current subnegotiation.
    sb: Vec<u8>,
    /// The current subnegotiation went over [`MAX_SUBNEGOTIATION_LEN`].
    sb_overflow: bool,
}

impl Default for TelnetDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TelnetDecoder {
    /// A decoder at the start of a stream, in binary-safe mode.
    pub fn new() -> Self {
        Self {
            state: State::Data,
            binary: true,
            cr_seen: false,
            sb: Vec::new(),
            sb_overflow: false,
        }
    }

    /// Tell the decoder whether the peer transmits in BINARY mode. Outside
    /// binary mode CR NUL is decoded as CR (RFC 854); CR LF and everything
    /// else always pass through unchanged.
    pub fn set_binary(&mut self, binary: bool) {
        self.binary = binary;
        if binary {
            self.cr_seen = false;
        }
    }

    /// Whether CR NUL is passed through untouched.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Decode all of `input`, appending events. Consecutive data bytes give
    /// one [`TelnetEvent::Data`] per run; a run only ends at a command.
    pub fn decode(&mut self, input: &[u8], events: &mut Vec<TelnetEvent>) {
        let mut rest = input;
        while !rest.is_empty() {
            let used = self.decode_until_negotiation(rest, events);
            rest = rest.get(used..).unwrap_or_default();
        }
    }

    /// Decode `input` up to and including the first negotiation
    /// (`IAC WILL/WONT/DO/DONT option`) and return how many bytes were used.
    ///
    /// A caller whose decoding depends on the outcome of a negotiation (the
    /// BINARY option changes CR NUL handling) handles the negotiation and
    /// then calls again with the rest, so the change applies from the very
    /// next byte.
    pub fn decode_until_negotiation(
        &mut self,
        input: &[u8],
        events: &mut Vec<TelnetEvent>,
    ) -> usize {
        let mut out = Emitter {
            events,
            data_open: false,
        };
        let mut rest = input;
        while let Some((&first, tail)) = rest.split_first() {
            match self.state {
                State::Data => {
                    if self.cr_seen {
                        self.cr_seen = false;
                        if first == NUL && !self.binary {
                            rest = tail;
                            continue;
                        }
                    }
                    let stop = if self.binary {
                        rest.iter().position(|&b| b == IAC)
                    } else {
                        rest.iter().position(|&b| b == IAC || b == CR)
                    };
                    let Some(n) = stop else {
                        out.data(rest);
                        rest = &[];
                        continue;
                    };
                    let (run, at) = split(rest, n);
                    out.data(run);
                    let Some((&special, after)) = at.split_first() else {
                        rest = &[];
                        continue;
                    };
                    if special == CR {
                        out.data(&[CR]);
                        self.cr_seen = true;
                    } else {
                        self.state = State::Iac;
                    }
                    rest = after;
                }
                State::Iac => {
                    rest = tail;
                    self.after_iac(first, &mut out);
                }
                State::Verb(verb) => {
                    rest = tail;
                    self.state = State::Data;
                    out.event(TelnetEvent::Negotiate {
                        verb,
                        option: TelnetOption(first),
                    });
                    return input.len() - rest.len();
                }
                State::Sb => {
                    let n = rest.iter().position(|&b| b == IAC).unwrap_or(rest.len());
                    let (run, at) = split(rest, n);
                    self.sb_push(run);
                    if let Some((_iac, after)) = at.split_first() {
                        self.state = State::SbIac;
                        rest = after;
                    } else {
                        rest = &[];
                    }
                }
                State::SbIac => {
                    rest = tail;
                    match first {
                        IAC => {
                            self.sb_push(&[IAC]);
                            self.state = State::Sb;
                        }
                        SE => {
                            self.state = State::Data;
                            self.finish_sb(&mut out);
                        }
                        other => {
                            // RFC 854 allows nothing else here: the peer
                            // forgot IAC SE. Drop the subnegotiation and
                            // treat this as an ordinary command so e.g. a
                            // following IAC WILL is not lost.
                            self.sb.clear();
                            self.after_iac(other, &mut out);
                        }
                    }
                }
            }
        }
        input.len()
    }

    /// Handle the byte after an IAC outside a subnegotiation.
    fn after_iac(&mut self, byte: u8, out: &mut Emitter<'_>) {
        self.state = State::Data;
        match byte {
            IAC => out.data(&[IAC]),
            WILL | WONT | DO | DONT => self.state = State::Verb(byte),
            SB => {
                self.sb.clear();
                self.sb_overflow = false;
                self.state = State::Sb;
            }
            // A stray SE outside a subnegotiation carries no meaning.
            SE => {}
            other => out.event(TelnetEvent::Command(other)),
        }
    }

    /// Append subnegotiation bytes, honouring the size cap.
    fn sb_push(&mut self, bytes: &[u8]) {
        if self.sb_overflow || bytes.is_empty() {
            return;
        }
        // +1 for the option byte at the front.
        let room = (MAX_SUBNEGOTIATION_LEN + 1).saturating_sub(self.sb.len());
        if bytes.len() > room {
            self.sb_overflow = true;
            self.sb = Vec::new();
        } else {
            self.sb.extend_from_slice(bytes);
        }
    }

    /// IAC SE seen: emit the subnegotiation unless it was oversized or empty.
    fn finish_sb(&mut self, out: &mut Emitter<'_>) {
        let overflow = std::mem::replace(&mut self.sb_overflow, false);
        let body = std::mem::take(&mut self.sb);
        if overflow {
            return;
        }
        if let Some((&option, data)) = body.split_first() {
            out.event(TelnetEvent::Subnegotiation {
                option: TelnetOption(option),
                data: data.to_vec(),
            });
        }
    }
}

/// Appends events, merging runs of data into one [`TelnetEvent::Data`].
struct Emitter<'a> {
    events: &'a mut Vec<TelnetEvent>,
    /// The last event pushed by this call is a `Data` we may extend.
    data_open: bool,
}

impl Emitter<'_> {
    fn data(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.data_open
            && let Some(TelnetEvent::Data(d)) = self.events.last_mut()
        {
            d.extend_from_slice(bytes);
            return;
        }
        self.events.push(TelnetEvent::Data(bytes.to_vec()));
        self.data_open = true;
    }

    fn event(&mut self, event: TelnetEvent) {
        self.events.push(event);
        self.data_open = false;
    }
}

/// `split_at` that cannot panic: `n` comes from `position`, but never trust.
fn split(bytes: &[u8], n: usize) -> (&[u8], &[u8]) {
    bytes.split_at_checked(n).unwrap_or((bytes, &[]))
}

/// Append `data` to `out` with every 0xFF doubled (RFC 854), so the peer
/// reads it as data and not as a command. Data without 0xFF is copied with
/// a single `extend`.
pub fn escape_iac(data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while let Some(n) = rest.iter().position(|&b| b == IAC) {
        // The run includes the IAC itself; push its twin right after.
        let (run, tail) = split(rest, n + 1);
        out.extend_from_slice(run);
        out.push(IAC);
        rest = tail;
    }
    out.extend_from_slice(rest);
}

/// Which end of the connection performs an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// We perform it (we said WILL, the peer said DO).
    Local,
    /// The peer performs it (we said DO, the peer said WILL).
    Remote,
}

/// An option came into effect or went out of effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptionChange {
    /// Which option.
    pub option: TelnetOption,
    /// Who performs it.
    pub side: Side,
    /// Its new state (see [`OptionTable::local_enabled`]).
    pub enabled: bool,
}

/// The four states of RFC 1143 §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Q {
    #[default]
    No,
    Yes,
    WantNo,
    WantYes,
}

/// One option in one direction: a state and the "opposite" queue bit.
#[derive(Clone, Copy, Debug, Default)]
struct QEntry {
    state: Q,
    opposite: bool,
}

impl QEntry {
    /// In effect: agreed, or agreed and a disable is pending the peer's ack.
    fn enabled(self) -> bool {
        matches!(self.state, Q::Yes | Q::WantNo)
    }

    /// The peer says "yes" (WILL for him, DO for us). Returns the reply
    /// verb: `Some(true)` = positive, `Some(false)` = negative.
    fn receive_yes(&mut self, supported: bool) -> Option<bool> {
        match (self.state, self.opposite) {
            (Q::No, _) if supported => {
                self.state = Q::Yes;
                Some(true)
            }
            (Q::No, _) => Some(false),
            (Q::Yes, _) => None,
            // Error in the peer: our "no" was answered by "yes".
            (Q::WantNo, false) => {
                self.state = Q::No;
                None
            }
            (Q::WantNo, true) => {
                *self = QEntry {
                    state: Q::Yes,
                    opposite: false,
                };
                None
            }
            (Q::WantYes, false) => {
                self.state = Q::Yes;
                None
            }
            (Q::WantYes, true) => {
                *self = QEntry {
                    state: Q::WantNo,
                    opposite: false,
                };
                Some(false)
            }
        }
    }

    /// The peer says "no" (WONT for him, DONT for us).
    fn receive_no(&mut self) -> Option<bool> {
        match (self.state, self.opposite) {
            (Q::No, _) => None,
            (Q::Yes, _) => {
                self.state = Q::No;
                Some(false)
            }
            (Q::WantNo, false) => {
                self.state = Q::No;
                None
            }
            (Q::WantNo, true) => {
                *self = QEntry {
                    state: Q::WantYes,
                    opposite: false,
                };
                Some(true)
            }
            (Q::WantYes, _) => {
                *self = QEntry::default();
                None
            }
        }
    }

    /// We want the option on (`enable`) or off. Returns the verb to send.
    fn request(&mut self, enable: bool) -> Option<bool> {
        match (self.state, self.opposite, enable) {
            (Q::No, _, true) => {
                self.state = Q::WantYes;
                Some(true)
            }
            (Q::Yes, _, false) => {
                self.state = Q::WantNo;
                Some(false)
            }
            // Negotiating the other way: queue the wish (RFC 1143 §7).
            (Q::WantNo, false, true) | (Q::WantYes, false, false) => {
                self.opposite = true;
                None
            }
            // Queued the other way already: cancel the queued wish.
            (Q::WantNo, true, false) | (Q::WantYes, true, true) => {
                self.opposite = false;
                None
            }
            // Already there or already on the way.
            _ => None,
        }
    }
}

/// Option negotiation state for every option and both directions, per
/// RFC 1143's Q method. Never answers a request that would not change the
/// state, so two peers can never loop; a peer that flips an option back and
/// forth gets at most one reply per request it sends.
#[derive(Clone, Debug)]
pub struct OptionTable {
    local: [QEntry; 256],
    remote: [QEntry; 256],
    supported_local: [bool; 256],
    supported_remote: [bool; 256],
}

impl OptionTable {
    /// A table in which every option is off. The peer may turn on only the
    /// `supported_local` options on our side (DO) and the
    /// `supported_remote` options on its side (WILL); everything else is
    /// refused with WONT / DONT.
    pub fn new(supported_local: &[TelnetOption], supported_remote: &[TelnetOption]) -> Self {
        let mut table = Self {
            local: [QEntry::default(); 256],
            remote: [QEntry::default(); 256],
            supported_local: [false; 256],
            supported_remote: [false; 256],
        };
        for opt in supported_local {
            table.supported_local[usize::from(opt.0)] = true;
        }
        for opt in supported_remote {
            table.supported_remote[usize::from(opt.0)] = true;
        }
        table
    }

    /// Ask to perform (`enable`) or stop performing an option ourselves:
    /// appends `IAC WILL/WONT opt` to `out` when the state machine says so.
    pub fn request_local(&mut self, opt: TelnetOption, enable: bool, out: &mut Vec<u8>) {
        if let Some(yes) = self.local[usize::from(opt.0)].request(enable) {
            out.extend_from_slice(&[IAC, if yes { WILL } else { WONT }, opt.0]);
        }
    }

    /// Ask the peer to perform (`enable`) or stop performing an option:
    /// appends `IAC DO/DONT opt` to `out` when the state machine says so.
    pub fn request_remote(&mut self, opt: TelnetOption, enable: bool, out: &mut Vec<u8>) {
        if let Some(yes) = self.remote[usize::from(opt.0)].request(enable) {
            out.extend_from_slice(&[IAC, if yes { DO } else { DONT }, opt.0]);
        }
    }

    /// Handle a received `IAC verb opt`. Any reply is appended to `out`;
    /// the return value says whether the option went into or out of effect.
    /// Verbs other than WILL/WONT/DO/DONT are ignored.
    pub fn handle(
        &mut self,
        verb: u8,
        opt: TelnetOption,
        out: &mut Vec<u8>,
    ) -> Option<OptionChange> {
        let i = usize::from(opt.0);
        let (entry, side, reply_yes, reply_no) = match verb {
            WILL | WONT => (&mut self.remote[i], Side::Remote, DO, DONT),
            DO | DONT => (&mut self.local[i], Side::Local, WILL, WONT),
            _ => return None,
        };
        let before = entry.enabled();
        let reply = if verb == WILL || verb == DO {
            let supported = match side {
                Side::Local => self.supported_local[i],
                Side::Remote => self.supported_remote[i],
            };
            entry.receive_yes(supported)
        } else {
            entry.receive_no()
        };
        if let Some(yes) = reply {
            out.extend_from_slice(&[IAC, if yes { reply_yes } else { reply_no }, opt.0]);
        }
        let after = entry.enabled();
        (before != after).then_some(OptionChange {
            option: opt,
            side,
            enabled: after,
        })
    }

    /// Whether we perform `opt`. True once the peer agreed, and still true
    /// while our request to stop awaits its acknowledgement.
    pub fn local_enabled(&self, opt: TelnetOption) -> bool {
        self.local[usize::from(opt.0)].enabled()
    }

    /// Whether the peer performs `opt` (same rule as
    /// [`local_enabled`](Self::local_enabled)).
    pub fn remote_enabled(&self, opt: TelnetOption) -> bool {
        self.remote[usize::from(opt.0)].enabled()
    }

    /// Whether a negotiation we started for `opt` on our side still waits
    /// for the peer's answer.
    pub fn local_pending(&self, opt: TelnetOption) -> bool {
        matches!(self.local[usize::from(opt.0)].state, Q::WantNo | Q::WantYes)
    }

    /// Whether a negotiation we started for `opt` on the peer's side still
    /// waits for the peer's answer.
    pub fn remote_pending(&self, opt: TelnetOption) -> bool {
        matches!(
            self.remote[usize::from(opt.0)].state,
            Q::WantNo | Q::WantYes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn decode(input: &[u8]) -> Vec<TelnetEvent> {
        let mut decoder = TelnetDecoder::new();
        let mut events = Vec::new();
        decoder.decode(input, &mut events);
        events
    }

    fn data(bytes: &[u8]) -> TelnetEvent {
        TelnetEvent::Data(bytes.to_vec())
    }

    fn negotiate(verb: u8, option: u8) -> TelnetEvent {
        TelnetEvent::Negotiate {
            verb,
            option: TelnetOption(option),
        }
    }

    #[test]
    fn coalesces_plain_data_into_one_event() {
        assert_eq!(decode(b"hello world"), vec![data(b"hello world")]);
    }

    #[test]
    fn unescapes_iac_iac_in_data_without_splitting_the_event() {
        assert_eq!(
            decode(&[0x41, 0xFF, 0xFF, 0x42, 0xFF, 0xFF]),
            vec![data(&[0x41, 0xFF, 0x42, 0xFF])]
        );
    }

    #[test]
    fn escapes_iac_in_data() {
        let mut out = vec![0x99];
        escape_iac(&[0x01, 0xFF, 0x02, 0xFF, 0xFF], &mut out);
        assert_eq!(out, [0x99, 0x01, 0xFF, 0xFF, 0x02, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut plain = Vec::new();
        escape_iac(b"no iac here", &mut plain);
        assert_eq!(plain, b"no iac here");
    }

    #[test]
    fn decodes_commands_negotiations_and_subnegotiations_in_order() {
        let input = [
            0x61, 0xFF, 0xF1, 0x62, 0xFF, 0xFB, 0x2C, 0xFF, 0xFA, 0x2C, 0x01, 0x00, 0x00, 0xFF,
            0xFF, 0xFF, 0xF0, 0x63, 0xFF, 0xF3,
        ];
        assert_eq!(
            decode(&input),
            vec![
                data(b"a"),
                TelnetEvent::Command(NOP),
                data(b"b"),
                negotiate(WILL, 0x2C),
                TelnetEvent::Subnegotiation {
                    option: TelnetOption::COM_PORT_OPTION,
                    data: vec![0x01, 0x00, 0x00, 0xFF],
                },
                data(b"c"),
                TelnetEvent::Command(BRK),
            ]
        );
    }

    #[test]
    fn iac_at_end_of_input_is_completed_by_the_next_call() {
        let mut decoder = TelnetDecoder::new();
        let mut events = Vec::new();
        decoder.decode(&[0x41, 0xFF], &mut events);
        assert_eq!(events, vec![data(b"A")]);
        decoder.decode(&[0xFF, 0xFF], &mut events);
        decoder.decode(&[0xFD], &mut events);
        decoder.decode(&[0x03], &mut events);
        assert_eq!(events, vec![data(b"A"), data(&[0xFF]), negotiate(DO, 0x03)]);
    }

    #[test]
    fn stray_iac_se_is_ignored() {
        assert_eq!(decode(&[0x41, 0xFF, 0xF0, 0x42]), vec![data(b"AB")]);
    }

    #[test]
    fn subnegotiation_without_se_swallows_until_se() {
        let mut decoder = TelnetDecoder::new();
        let mut events = Vec::new();
        decoder.decode(&[0xFF, 0xFA, 0x2C, 0x00, 0x61, 0x62], &mut events);
        assert!(events.is_empty());
        decoder.decode(&[0x63, 0xFF, 0xF0, 0x64], &mut events);
        assert_eq!(
            events,
            vec![
                TelnetEvent::Subnegotiation {
                    option: TelnetOption::COM_PORT_OPTION,
                    data: vec![0x00, 0x61, 0x62, 0x63],
                },
                data(b"d"),
            ]
        );
    }

    #[test]
    fn command_inside_subnegotiation_aborts_it_and_is_decoded() {
        assert_eq!(
            decode(&[0xFF, 0xFA, 0x2C, 0x01, 0xFF, 0xFB, 0x00, 0x41]),
            vec![negotiate(WILL, 0x00), data(b"A")]
        );
    }

    #[test]
    fn empty_subnegotiation_is_dropped() {
        assert_eq!(decode(&[0xFF, 0xFA, 0xFF, 0xF0, 0x41]), vec![data(b"A")]);
    }

    #[test]
    fn oversized_subnegotiation_is_dropped_and_the_next_one_works() {
        let mut input = vec![0xFF, 0xFA, 0x2C];
        input.extend(std::iter::repeat_n(0x55, MAX_SUBNEGOTIATION_LEN + 1));
        input.extend([0xFF, 0xF0, 0xFF, 0xFA, 0x2C, 0x07, 0xFF, 0xF0]);
        assert_eq!(
            decode(&input),
            vec![TelnetEvent::Subnegotiation {
                option: TelnetOption::COM_PORT_OPTION,
                data: vec![0x07],
            }]
        );
        // Exactly at the cap is still fine.
        let mut input = vec![0xFF, 0xFA, 0x2C];
        input.extend(std::iter::repeat_n(0x55, MAX_SUBNEGOTIATION_LEN));
        input.extend([0xFF, 0xF0]);
        assert!(matches!(
            decode(&input).as_slice(),
            [TelnetEvent::Subnegotiation { data, .. }] if data.len() == MAX_SUBNEGOTIATION_LEN
        ));
    }

    #[test]
    fn endless_subnegotiation_does_not_grow_memory() {
        let mut decoder = TelnetDecoder::new();
        let mut events = Vec::new();
        decoder.decode(&[0xFF, 0xFA, 0x2C], &mut events);
        for _ in 0..1000 {
            decoder.decode(&[0x55; 1000], &mut events);
        }
        assert!(events.is_empty());
        assert!(decoder.sb.capacity() <= 2 * MAX_SUBNEGOTIATION_LEN);
    }

    #[test]
    fn keeps_cr_nul_in_binary_mode() {
        assert_eq!(decode(&[0x0D, 0x00, 0x41]), vec![data(&[0x0D, 0x00, 0x41])]);
    }

    #[test]
    fn turns_cr_nul_into_cr_outside_binary_mode() {
        let mut decoder = TelnetDecoder::new();
        decoder.set_binary(false);
        let mut events = Vec::new();
        decoder.decode(
            &[0x41, 0x0D, 0x00, 0x42, 0x0D, 0x0A, 0x00, 0x0D],
            &mut events,
        );
        // The trailing CR's NUL arrives in the next chunk.
        decoder.decode(&[0x00, 0x43], &mut events);
        assert_eq!(
            events,
            vec![
                data(&[0x41, 0x0D, 0x42, 0x0D, 0x0A, 0x00, 0x0D]),
                data(&[0x43])
            ]
        );
    }

    #[test]
    fn decode_until_negotiation_stops_after_the_negotiation() {
        let mut decoder = TelnetDecoder::new();
        let mut events = Vec::new();
        let input = [0x41, 0xFF, 0xFB, 0x00, 0x42];
        let used = decoder.decode_until_negotiation(&input, &mut events);
        assert_eq!(used, 4);
        assert_eq!(events, vec![data(b"A"), negotiate(WILL, 0x00)]);
    }

    fn table() -> OptionTable {
        OptionTable::new(
            &[TelnetOption::BINARY, TelnetOption::SGA],
            &[TelnetOption::BINARY, TelnetOption::COM_PORT_OPTION],
        )
    }

    #[test]
    fn accepts_supported_will_with_do() {
        let mut t = table();
        let mut out = Vec::new();
        let change = t.handle(WILL, TelnetOption::COM_PORT_OPTION, &mut out);
        assert_eq!(out, [0xFF, 0xFD, 0x2C]);
        assert_eq!(
            change,
            Some(OptionChange {
                option: TelnetOption::COM_PORT_OPTION,
                side: Side::Remote,
                enabled: true,
            })
        );
        assert!(t.remote_enabled(TelnetOption::COM_PORT_OPTION));
        // A repeated WILL is not answered again.
        out.clear();
        assert_eq!(
            t.handle(WILL, TelnetOption::COM_PORT_OPTION, &mut out),
            None
        );
        assert!(out.is_empty());
    }

    #[test]
    fn refuses_unsupported_options() {
        let mut t = table();
        let mut out = Vec::new();
        assert_eq!(t.handle(WILL, TelnetOption(0x18), &mut out), None);
        assert_eq!(t.handle(DO, TelnetOption::ECHO, &mut out), None);
        assert_eq!(out, [0xFF, 0xFE, 0x18, 0xFF, 0xFC, 0x01]);
        // Negative verbs about options that are off need no answer.
        out.clear();
        t.handle(WONT, TelnetOption(0x18), &mut out);
        t.handle(DONT, TelnetOption::ECHO, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn our_request_is_acknowledged_without_reply() {
        let mut t = table();
        let mut out = Vec::new();
        t.request_local(TelnetOption::BINARY, true, &mut out);
        t.request_remote(TelnetOption::BINARY, true, &mut out);
        assert_eq!(out, [0xFF, 0xFB, 0x00, 0xFF, 0xFD, 0x00]);
        assert!(!t.local_enabled(TelnetOption::BINARY));
        assert!(t.local_pending(TelnetOption::BINARY));
        out.clear();
        let change = t.handle(DO, TelnetOption::BINARY, &mut out);
        assert_eq!(
            change.map(|c| (c.side, c.enabled)),
            Some((Side::Local, true))
        );
        let change = t.handle(WILL, TelnetOption::BINARY, &mut out);
        assert_eq!(
            change.map(|c| (c.side, c.enabled)),
            Some((Side::Remote, true))
        );
        assert!(out.is_empty());
        assert!(t.local_enabled(TelnetOption::BINARY) && t.remote_enabled(TelnetOption::BINARY));
    }

    #[test]
    fn refused_request_is_not_retried() {
        let mut t = table();
        let mut out = Vec::new();
        t.request_local(TelnetOption::SGA, true, &mut out);
        out.clear();
        assert_eq!(t.handle(DONT, TelnetOption::SGA, &mut out), None);
        assert!(out.is_empty());
        assert!(!t.local_enabled(TelnetOption::SGA) && !t.local_pending(TelnetOption::SGA));
    }

    #[test]
    fn queues_the_opposite_request_while_negotiating() {
        let mut t = table();
        let mut out = Vec::new();
        t.request_remote(TelnetOption::BINARY, true, &mut out);
        t.request_remote(TelnetOption::BINARY, false, &mut out);
        assert_eq!(out, [0xFF, 0xFD, 0x00]);
        out.clear();
        // He agrees; we immediately ask him to stop, as queued.
        t.handle(WILL, TelnetOption::BINARY, &mut out);
        assert_eq!(out, [0xFF, 0xFE, 0x00]);
        out.clear();
        let change = t.handle(WONT, TelnetOption::BINARY, &mut out);
        assert_eq!(change.map(|c| c.enabled), Some(false));
        assert!(out.is_empty());
        assert!(!t.remote_pending(TelnetOption::BINARY));
    }

    #[test]
    fn peer_disabling_an_option_is_acknowledged_once() {
        let mut t = table();
        let mut out = Vec::new();
        t.handle(WILL, TelnetOption::BINARY, &mut out);
        out.clear();
        let change = t.handle(WONT, TelnetOption::BINARY, &mut out);
        assert_eq!(out, [0xFF, 0xFE, 0x00]);
        assert_eq!(change.map(|c| c.enabled), Some(false));
        out.clear();
        t.handle(WONT, TelnetOption::BINARY, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn ten_thousand_flip_flops_get_at_most_one_reply_each() {
        let mut t = table();
        let mut decoder = TelnetDecoder::new();
        let mut input = Vec::new();
        for _ in 0..10_000 {
            input.extend([
                0xFF, 0xFB, 0x00, 0xFF, 0xFC, 0x00, 0xFF, 0xFD, 0x03, 0xFF, 0xFE, 0x03,
            ]);
        }
        let mut events = Vec::new();
        decoder.decode(&input, &mut events);
        let mut out = Vec::new();
        for e in events {
            if let TelnetEvent::Negotiate { verb, option } = e {
                t.handle(verb, option, &mut out);
            }
        }
        assert!(out.len() <= input.len());
        assert!(!t.remote_enabled(TelnetOption::BINARY));
        assert!(!t.local_enabled(TelnetOption::SGA));
    }

    /// Bytes that make telnet streams interesting, mixed with anything.
    fn telnet_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            4 => any::<u8>(),
            3 => Just(IAC),
            1 => Just(SB),
            1 => Just(SE),
            1 => prop::sample::select(vec![WILL, WONT, DO, DONT]),
            1 => Just(0x0D),
            1 => Just(0x00),
            1 => Just(0x2C),
        ]
    }

    fn decode_chunked(input: &[u8], cuts: &[usize], binary: bool) -> Vec<TelnetEvent> {
        let mut decoder = TelnetDecoder::new();
        decoder.set_binary(binary);
        let mut events = Vec::new();
        let mut rest = input;
        for &cut in cuts {
            let (a, b) = rest.split_at(cut.min(rest.len()));
            decoder.decode(a, &mut events);
            rest = b;
        }
        decoder.decode(rest, &mut events);
        events
    }

    /// One side of a simulated connection: its table and its inbox.
    struct Peer {
        table: OptionTable,
        inbox: std::collections::VecDeque<[u8; 3]>,
    }

    fn to_messages(bytes: &[u8]) -> Vec<[u8; 3]> {
        bytes
            .chunks(3)
            .filter_map(|c| <[u8; 3]>::try_from(c).ok())
            .collect()
    }

    proptest! {
        #[test]
        fn escape_then_decode_gives_back_the_data(bytes in vec(telnet_byte(), 0..512)) {
            let mut escaped = Vec::new();
            escape_iac(&bytes, &mut escaped);
            let expected = if bytes.is_empty() { vec![] } else { vec![data(&bytes)] };
            prop_assert_eq!(decode(&escaped), expected);
        }

        #[test]
        fn any_chunking_gives_the_same_events(
            input in vec(telnet_byte(), 0..512),
            cuts in vec(0usize..64, 0..16),
            binary in any::<bool>(),
        ) {
            let whole = decode_chunked(&input, &[], binary);
            let chunked = decode_chunked(&input, &cuts, binary);
            prop_assert_eq!(
                crate::fuzzing::merge_data(whole.clone()),
                crate::fuzzing::merge_data(chunked)
            );
            // Within one call data is already merged.
            prop_assert!(whole.windows(2).all(|w| !matches!(w, [TelnetEvent::Data(_), TelnetEvent::Data(_)])));
        }

        #[test]
        fn two_tables_agree_and_fall_silent(
            supported in vec(any::<bool>(), 4),
            actions in vec((0u8..6, 0u8..2, any::<bool>()), 0..64),
        ) {
            let opts = [TelnetOption(0), TelnetOption(1), TelnetOption(3), TelnetOption(44)];
            let pick = |mask: &[bool]| -> Vec<TelnetOption> {
                opts.iter().zip(mask).filter(|(_, on)| **on).map(|(o, _)| *o).collect()
            };
            let a_local = pick(&supported[..2]);
            let b_local = pick(&supported[2..]);
            let mut peers = [
                Peer { table: OptionTable::new(&a_local, &b_local), inbox: Default::default() },
                Peer { table: OptionTable::new(&b_local, &a_local), inbox: Default::default() },
            ];
            let mut steps = 0;
            let run = |peers: &mut [Peer; 2], action: Option<(u8, u8, bool)>| {
                match action {
                    Some((kind @ 0..=3, opt, enable)) => {
                        let who = usize::from(kind & 1);
                        let opt = opts[usize::from(opt) * 2 + usize::from(kind >> 1) % 2];
                        let mut out = Vec::new();
                        if kind < 2 {
                            peers[who].table.request_local(opt, enable, &mut out);
                        } else {
                            peers[who].table.request_remote(opt, enable, &mut out);
                        }
                        peers[1 - who].inbox.extend(to_messages(&out));
                    }
                    Some((kind, _, _)) => {
                        let who = usize::from(kind & 1);
                        if let Some([_, verb, opt]) = peers[who].inbox.pop_front() {
                            let mut out = Vec::new();
                            peers[who].table.handle(verb, TelnetOption(opt), &mut out);
                            peers[1 - who].inbox.extend(to_messages(&out));
                        }
                    }
                    None => {}
                }
            };
            for action in actions {
                run(&mut peers, Some(action));
            }
            // Drain: deliver everything until both fall silent.
            while !(peers[0].inbox.is_empty() && peers[1].inbox.is_empty()) {
                steps += 1;
                prop_assert!(steps < 1000, "negotiation loop");
                run(&mut peers, Some((4, 0, false)));
                run(&mut peers, Some((5, 0, false)));
            }
            for opt in opts {
                prop_assert_eq!(peers[0].table.local_enabled(opt), peers[1].table.remote_enabled(opt));
                prop_assert_eq!(peers[0].table.remote_enabled(opt), peers[1].table.local_enabled(opt));
                for p in &peers {
                    prop_assert!(!p.table.local_pending(opt) && !p.table.remote_pending(opt));
                }
            }
        }
    }
}
