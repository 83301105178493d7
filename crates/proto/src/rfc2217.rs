//! RFC 2217 "Telnet Com Port Control Option": the sub-commands carried in
//! `IAC SB COM-PORT-OPTION ... IAC SE`, and a sans-IO server session.
//!
//! * [`ComPortCommand`] decodes and encodes one sub-command in either
//!   direction (client codes 0–12, server codes 100–112).
//! * [`Rfc2217Server`] is one client connection as seen by the access
//!   server: it negotiates the Telnet options (via [`OptionTable`]),
//!   answers what it can answer alone (signature queries, the state masks),
//!   tracks flow-control suspension, and hands serial data and port
//!   commands to the caller as [`ServerEvent`]s. The caller applies a SET-* to the real port and then
//!   calls [`Rfc2217Server::reply`] with the value actually in effect.
//!
//! Interoperability target is pyserial's `rfc2217://` client, which waits
//! for an echo of every SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE, every
//! SET-CONTROL and every PURGE-DATA and treats a different value as a
//! rejection. It does not do IO, timers, or the serial port itself.

use crate::telnet::{
    IAC, OptionTable, SB, SE, Side, TelnetDecoder, TelnetEvent, TelnetOption, escape_iac,
};

/// An RFC 2217 sub-command code, kept open so unknown codes survive.
/// Client → server codes are 0–12; the server's codes are the same plus
/// [`SubCommand::SERVER_OFFSET`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubCommand(pub u8);

impl SubCommand {
    /// Added to a client code to get the server's code for the same thing.
    pub const SERVER_OFFSET: u8 = 100;
    /// SIGNATURE: text identifying the peer; empty = "send me yours".
    pub const SIGNATURE: Self = Self(0x00);
    /// SET-BAUDRATE: 4 bytes big-endian, 0 = query.
    pub const SET_BAUDRATE: Self = Self(0x01);
    /// SET-DATASIZE: see [`data_size`].
    pub const SET_DATASIZE: Self = Self(0x02);
    /// SET-PARITY: see [`parity`].
    pub const SET_PARITY: Self = Self(0x03);
    /// SET-STOPSIZE: see [`stop_size`].
    pub const SET_STOPSIZE: Self = Self(0x04);
    /// SET-CONTROL: flow control, break, DTR, RTS; see [`control`].
    pub const SET_CONTROL: Self = Self(0x05);
    /// NOTIFY-LINESTATE: see [`line_state`].
    pub const NOTIFY_LINESTATE: Self = Self(0x06);
    /// NOTIFY-MODEMSTATE: see [`modem_state`].
    pub const NOTIFY_MODEMSTATE: Self = Self(0x07);
    /// FLOWCONTROL-SUSPEND: the sender cannot take more data for now.
    pub const FLOWCONTROL_SUSPEND: Self = Self(0x08);
    /// FLOWCONTROL-RESUME: the sender can take data again.
    pub const FLOWCONTROL_RESUME: Self = Self(0x09);
    /// SET-LINESTATE-MASK: which line-state bits the server reports.
    pub const SET_LINESTATE_MASK: Self = Self(0x0A);
    /// SET-MODEMSTATE-MASK: which modem-state bits the server reports.
    pub const SET_MODEMSTATE_MASK: Self = Self(0x0B);
    /// PURGE-DATA: see [`purge`].
    pub const PURGE_DATA: Self = Self(0x0C);
}

/// SET-DATASIZE values (RFC 2217 §3, "SET-DATASIZE").
pub mod data_size {
    /// Ask for the current value.
    pub const QUERY: u8 = 0;
    /// Five data bits.
    pub const FIVE: u8 = 5;
    /// Six data bits.
    pub const SIX: u8 = 6;
    /// Seven data bits.
    pub const SEVEN: u8 = 7;
    /// Eight data bits.
    pub const EIGHT: u8 = 8;
}

/// SET-PARITY values.
pub mod parity {
    /// Ask for the current value.
    pub const QUERY: u8 = 0;
    /// No parity bit.
    pub const NONE: u8 = 1;
    /// Odd parity.
    pub const ODD: u8 = 2;
    /// Even parity.
    pub const EVEN: u8 = 3;
    /// Parity bit always 1.
    pub const MARK: u8 = 4;
    /// Parity bit always 0.
    pub const SPACE: u8 = 5;
}

/// SET-STOPSIZE values.
pub mod stop_size {
    /// Ask for the current value.
    pub const QUERY: u8 = 0;
    /// One stop bit.
    pub const ONE: u8 = 1;
    /// Two stop bits.
    pub const TWO: u8 = 2;
    /// One and a half stop bits.
    pub const ONE_AND_HALF: u8 = 3;
}

/// SET-CONTROL values.
pub mod control {
    /// Ask for the outbound (or combined) flow control setting.
    pub const QUERY_FLOW: u8 = 0;
    /// No outbound/combined flow control.
    pub const FLOW_NONE: u8 = 1;
    /// XON/XOFF outbound/combined flow control.
    pub const FLOW_XON_XOFF: u8 = 2;
    /// RTS/CTS outbound/combined flow control.
    pub const FLOW_HARDWARE: u8 = 3;
    /// Ask for the BREAK state.
    pub const QUERY_BREAK: u8 = 4;
    /// Start sending BREAK.
    pub const BREAK_ON: u8 = 5;
    /// Stop sending BREAK.
    pub const BREAK_OFF: u8 = 6;
    /// Ask for the DTR state.
    pub const QUERY_DTR: u8 = 7;
    /// Raise DTR.
    pub const DTR_ON: u8 = 8;
    /// Drop DTR.
    pub const DTR_OFF: u8 = 9;
    /// Ask for the RTS state.
    pub const QUERY_RTS: u8 = 10;
    /// Raise RTS.
    pub const RTS_ON: u8 = 11;
    /// Drop RTS.
    pub const RTS_OFF: u8 = 12;
    /// Ask for the inbound flow control setting.
    pub const QUERY_INBOUND_FLOW: u8 = 13;
    /// No inbound flow control.
    pub const INBOUND_FLOW_NONE: u8 = 14;
    /// XON/XOFF inbound flow control.
    pub const INBOUND_FLOW_XON_XOFF: u8 = 15;
    /// Hardware inbound flow control.
    pub const INBOUND_FLOW_HARDWARE: u8 = 16;
    /// DCD outbound flow control.
    pub const FLOW_DCD: u8 = 17;
    /// DTR inbound flow control.
    pub const INBOUND_FLOW_DTR: u8 = 18;
    /// DSR outbound flow control.
    pub const FLOW_DSR: u8 = 19;
}

/// PURGE-DATA values.
pub mod purge {
    /// Purge the access server's receive buffer (data from the device).
    pub const RX: u8 = 1;
    /// Purge the access server's transmit buffer (data to the device).
    pub const TX: u8 = 2;
    /// Purge both.
    pub const BOTH: u8 = 3;
}

/// NOTIFY-LINESTATE bits.
pub mod line_state {
    /// Time-out error.
    pub const TIMEOUT: u8 = 0x80;
    /// Transfer shift register empty.
    pub const SHIFT_REGISTER_EMPTY: u8 = 0x40;
    /// Transfer holding register empty.
    pub const HOLDING_REGISTER_EMPTY: u8 = 0x20;
    /// Break detected.
    pub const BREAK_DETECT: u8 = 0x10;
    /// Framing error.
    pub const FRAMING_ERROR: u8 = 0x08;
    /// Parity error.
    pub const PARITY_ERROR: u8 = 0x04;
    /// Overrun error.
    pub const OVERRUN_ERROR: u8 = 0x02;
    /// Data ready.
    pub const DATA_READY: u8 = 0x01;
}

/// NOTIFY-MODEMSTATE bits: line levels in the upper nibble, "changed since
/// the last notification" in the lower one.
pub mod modem_state {
    /// Carrier detect (receive line signal detect).
    pub const CD: u8 = 0x80;
    /// Ring indicator.
    pub const RI: u8 = 0x40;
    /// Data set ready.
    pub const DSR: u8 = 0x20;
    /// Clear to send.
    pub const CTS: u8 = 0x10;
    /// CD changed.
    pub const DELTA_CD: u8 = 0x08;
    /// RI went from on to off.
    pub const TRAILING_EDGE_RI: u8 = 0x04;
    /// DSR changed.
    pub const DELTA_DSR: u8 = 0x02;
    /// CTS changed.
    pub const DELTA_CTS: u8 = 0x01;
    /// The four line levels.
    pub const LINES: u8 = CD | RI | DSR | CTS;
}

/// A sub-command payload that cannot be understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    what: &'static str,
}

impl DecodeError {
    const fn new(what: &'static str) -> Self {
        Self { what }
    }

    /// What was wrong, for logs.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed RFC 2217 sub-command: {}", self.what)
    }
}

impl std::error::Error for DecodeError {}

/// Which way a sub-command travels, told by its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Codes 0–12 (and unknown codes below 100).
    ClientToServer,
    /// Codes 100–112 (and unknown codes from 100 up).
    ServerToClient,
}

/// One COM-PORT-OPTION sub-command. Values are kept as raw bytes so that
/// anything the peer sends survives; compare them with the constants in
/// [`parity`], [`stop_size`], [`control`], [`purge`], [`line_state`],
/// [`modem_state`]. A value of 0 in a SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE
/// is a query for the current setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComPortCommand {
    /// Signature text; empty asks the peer for its own.
    Signature(Vec<u8>),
    /// Baud rate (0 = query).
    SetBaud(u32),
    /// Data bits (0 = query).
    SetDataSize(u8),
    /// Parity, see [`parity`] (0 = query).
    SetParity(u8),
    /// Stop bits, see [`stop_size`] (0 = query).
    SetStopSize(u8),
    /// Flow control, break, DTR or RTS, see [`control`].
    SetControl(u8),
    /// Line state, see [`line_state`]. From a client (no value, or any
    /// value) it is a poll; pyserial sends such polls.
    NotifyLineState(u8),
    /// Modem state, see [`modem_state`]. From a client it is a poll.
    NotifyModemState(u8),
    /// Stop sending data to the sender of this command.
    FlowControlSuspend,
    /// Resume sending data.
    FlowControlResume,
    /// Line-state bits to report.
    SetLineStateMask(u8),
    /// Modem-state bits to report.
    SetModemStateMask(u8),
    /// Which buffers to purge, see [`purge`].
    PurgeData(u8),
    /// A code this crate does not know, kept raw (not offset by 100).
    Unknown {
        /// The code as received.
        code: u8,
        /// Everything after the code.
        data: Vec<u8>,
    },
}

impl ComPortCommand {
    /// Decode the SB payload after the option byte (`code value...`, IAC
    /// already unescaped). Both client and server codes are accepted; use
    /// [`decode_with_direction`](Self::decode_with_direction) to tell them
    /// apart. Trailing bytes after a value are ignored (sredird sends 8-byte
    /// baud rates). An empty payload is an error.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_direction(payload).map(|(cmd, _)| cmd)
    }

    /// Like [`decode`](Self::decode), also saying which direction the code
    /// belongs to.
    pub fn decode_with_direction(payload: &[u8]) -> Result<(Self, Direction), DecodeError> {
        let Some((&raw, value)) = payload.split_first() else {
            return Err(DecodeError::new("empty payload, no sub-command code"));
        };
        let (code, direction) = match raw {
            0..=12 => (raw, Direction::ClientToServer),
            100..=112 => (raw - SubCommand::SERVER_OFFSET, Direction::ServerToClient),
            _ => {
                let direction = if raw < SubCommand::SERVER_OFFSET {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                let data = value.to_vec();
                return Ok((Self::Unknown { code: raw, data }, direction));
            }
        };
        let byte = |what| value.first().copied().ok_or(DecodeError::new(what));
        let cmd = match SubCommand(code) {
            SubCommand::SIGNATURE => Self::Signature(value.to_vec()),
            SubCommand::SET_BAUDRATE => {
                let Some(&[a, b, c, d]) = value.first_chunk::<4>() else {
                    return Err(DecodeError::new("SET-BAUDRATE needs a 4-byte value"));
                };
                Self::SetBaud(u32::from_be_bytes([a, b, c, d]))
            }
            SubCommand::SET_DATASIZE => Self::SetDataSize(byte("SET-DATASIZE needs a value")?),
            SubCommand::SET_PARITY => Self::SetParity(byte("SET-PARITY needs a value")?),
            SubCommand::SET_STOPSIZE => Self::SetStopSize(byte("SET-STOPSIZE needs a value")?),
            SubCommand::SET_CONTROL => Self::SetControl(byte("SET-CONTROL needs a value")?),
            // pyserial polls with an empty value.
            SubCommand::NOTIFY_LINESTATE => {
                Self::NotifyLineState(value.first().copied().unwrap_or(0))
            }
            SubCommand::NOTIFY_MODEMSTATE => {
                Self::NotifyModemState(value.first().copied().unwrap_or(0))
            }
            SubCommand::FLOWCONTROL_SUSPEND => Self::FlowControlSuspend,
            SubCommand::FLOWCONTROL_RESUME => Self::FlowControlResume,
            SubCommand::SET_LINESTATE_MASK => {
                Self::SetLineStateMask(byte("SET-LINESTATE-MASK needs a value")?)
            }
            SubCommand::SET_MODEMSTATE_MASK => {
                Self::SetModemStateMask(byte("SET-MODEMSTATE-MASK needs a value")?)
            }
            SubCommand::PURGE_DATA => Self::PurgeData(byte("PURGE-DATA needs a value")?),
            _ => {
                return Err(DecodeError::new("sub-command code out of range"));
            }
        };
        Ok((cmd, direction))
    }

    /// The client-side code of this sub-command (for `Unknown`, the raw
    /// code).
    pub fn code(&self) -> SubCommand {
        match self {
            Self::Signature(_) => SubCommand::SIGNATURE,
            Self::SetBaud(_) => SubCommand::SET_BAUDRATE,
            Self::SetDataSize(_) => SubCommand::SET_DATASIZE,
            Self::SetParity(_) => SubCommand::SET_PARITY,
            Self::SetStopSize(_) => SubCommand::SET_STOPSIZE,
            Self::SetControl(_) => SubCommand::SET_CONTROL,
            Self::NotifyLineState(_) => SubCommand::NOTIFY_LINESTATE,
            Self::NotifyModemState(_) => SubCommand::NOTIFY_MODEMSTATE,
            Self::FlowControlSuspend => SubCommand::FLOWCONTROL_SUSPEND,
            Self::FlowControlResume => SubCommand::FLOWCONTROL_RESUME,
            Self::SetLineStateMask(_) => SubCommand::SET_LINESTATE_MASK,
            Self::SetModemStateMask(_) => SubCommand::SET_MODEMSTATE_MASK,
            Self::PurgeData(_) => SubCommand::PURGE_DATA,
            Self::Unknown { code, .. } => SubCommand(*code),
        }
    }

    /// Append the complete `IAC SB 44 code value IAC SE` to `out`, with the
    /// server's code (+100) if `server_to_client`, and IAC doubled inside.
    /// `Unknown` codes are written as they are.
    pub fn encode(&self, server_to_client: bool, out: &mut Vec<u8>) {
        let code = match self {
            Self::Unknown { code, .. } => *code,
            _ if server_to_client => self.code().0 + SubCommand::SERVER_OFFSET,
            _ => self.code().0,
        };
        out.extend_from_slice(&[IAC, SB, TelnetOption::COM_PORT_OPTION.0]);
        escape_iac(&[code], out);
        match self {
            Self::Signature(data) | Self::Unknown { data, .. } => escape_iac(data, out),
            Self::SetBaud(baud) => escape_iac(&baud.to_be_bytes(), out),
            Self::SetDataSize(v)
            | Self::SetParity(v)
            | Self::SetStopSize(v)
            | Self::SetControl(v)
            | Self::NotifyLineState(v)
            | Self::NotifyModemState(v)
            | Self::SetLineStateMask(v)
            | Self::SetModemStateMask(v)
            | Self::PurgeData(v) => escape_iac(&[*v], out),
            Self::FlowControlSuspend | Self::FlowControlResume => {}
        }
        out.extend_from_slice(&[IAC, SE]);
    }
}

/// What a client connection asks of the access server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// Serial data to write to the device, unescaped, in order relative to
    /// the commands around it.
    Data(Vec<u8>),
    /// A COM-PORT-OPTION command from the client. For every SET-* (and
    /// PURGE-DATA, NOTIFY-* polls) the caller answers with
    /// [`Rfc2217Server::reply`] (or [`Rfc2217Server::notify_modem_state`] /
    /// [`Rfc2217Server::notify_line_state`] for polls). Signature queries
    /// and the two masks are already answered.
    ///
    /// When COM-PORT-OPTION first comes into effect the session emits a
    /// `NotifyModemState(0)` of its own, exactly like a client poll, so the
    /// caller sends the initial modem state the client needs.
    Command(ComPortCommand),
    /// Telnet `IAC BRK`: send a line break on the serial port.
    Break,
}

/// Options the server agrees to perform (local) and lets the client perform
/// (remote). ECHO is refused: the device echoes, if anything.
const SUPPORTED: [TelnetOption; 3] = [
    TelnetOption::BINARY,
    TelnetOption::SGA,
    TelnetOption::COM_PORT_OPTION,
];

/// One RFC 2217 client connection, server side, without IO.
///
/// Methods: [`start`](Self::start) once after accept;
/// [`handle_input`](Self::handle_input) for every chunk received;
/// [`reply`](Self::reply), [`encode_data`](Self::encode_data),
/// [`modem_state_update`](Self::modem_state_update) and
/// [`line_state_update`](Self::line_state_update) to produce output; the
/// rest are getters. Every method that produces bytes appends them to an
/// `out` buffer the caller writes to the socket.
///
/// Incoming data is decoded binary-safe once the client agreed to
/// transmit in BINARY (pyserial always does); before that, RFC 854's
/// CR NUL → CR rule applies. Outgoing data is only IAC-escaped.
#[derive(Clone, Debug)]
pub struct Rfc2217Server {
    signature: Vec<u8>,
    decoder: TelnetDecoder,
    options: OptionTable,
    /// Scratch space reused across calls.
    telnet_events: Vec<TelnetEvent>,
    line_state_mask: u8,
    modem_state_mask: u8,
    /// Line levels (upper nibble) in the last NOTIFY-MODEMSTATE we sent.
    last_modem_state: Option<u8>,
    /// Masked value of the last NOTIFY-LINESTATE we sent.
    last_line_state: u8,
    output_suspended: bool,
    /// The synthetic modem-state poll has been emitted.
    announced: bool,
}

impl Rfc2217Server {
    /// A session that answers signature queries with `signature`.
    pub fn new(signature: &str) -> Self {
        let mut decoder = TelnetDecoder::new();
        decoder.set_binary(false);
        Self {
            signature: signature.as_bytes().to_vec(),
            decoder,
            options: OptionTable::new(&SUPPORTED, &SUPPORTED),
            telnet_events: Vec::new(),
            // RFC 2217: "the initial value of the mask is 0" for line state
            // and 255 for modem state.
            line_state_mask: 0x00,
            modem_state_mask: 0xFF,
            last_modem_state: None,
            last_line_state: 0,
            output_suspended: false,
            announced: false,
        }
    }

    /// The bytes to send right after accept: `WILL COM-PORT-OPTION`,
    /// `WILL BINARY`, `DO BINARY`, `WILL SGA`, `DO SGA`. The client's
    /// `WILL COM-PORT-OPTION` is answered with `DO` when it arrives.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.options
            .request_local(TelnetOption::COM_PORT_OPTION, true, out);
        self.options.request_local(TelnetOption::BINARY, true, out);
        self.options.request_remote(TelnetOption::BINARY, true, out);
        self.options.request_local(TelnetOption::SGA, true, out);
        self.options.request_remote(TelnetOption::SGA, true, out);
    }

    /// Decode bytes received from the client. Negotiation replies and
    /// answers the session gives by itself are appended to `out`; data and
    /// commands for the port are appended to `events`, in stream order,
    /// with adjacent data merged.
    pub fn handle_input(&mut self, input: &[u8], out: &mut Vec<u8>, events: &mut Vec<ServerEvent>) {
        let first_new = events.len();
        let mut scratch = std::mem::take(&mut self.telnet_events);
        let mut rest = input;
        while !rest.is_empty() {
            scratch.clear();
            let used = self.decoder.decode_until_negotiation(rest, &mut scratch);
            rest = rest.get(used..).unwrap_or_default();
            for event in scratch.drain(..) {
                self.on_telnet_event(event, out, events, first_new);
            }
            if used == 0 {
                break;
            }
        }
        self.telnet_events = scratch;
    }

    fn on_telnet_event(
        &mut self,
        event: TelnetEvent,
        out: &mut Vec<u8>,
        events: &mut Vec<ServerEvent>,
        first_new: usize,
    ) {
        match event {
            TelnetEvent::Data(data) => {
                if events.len() > first_new
                    && let Some(ServerEvent::Data(prev)) = events.last_mut()
                {
                    prev.extend_from_slice(&data);
                } else {
                    events.push(ServerEvent::Data(data));
                }
            }
            TelnetEvent::Command(crate::telnet::BRK) => events.push(ServerEvent::Break),
            // NOP, AYT, IP, ... mean nothing for a serial line.
            TelnetEvent::Command(_) => {}
            TelnetEvent::Negotiate { verb, option } => {
                let change = self.options.handle(verb, option, out);
                if let Some(change) = change
                    && change.option == TelnetOption::BINARY
                    && change.side == Side::Remote
                {
                    self.decoder.set_binary(change.enabled);
                }
                if !self.announced && self.com_port_enabled() {
                    // pyserial cannot read CTS/DSR/RI/CD until it has had
                    // one NOTIFY-MODEMSTATE; ask the caller for the first
                    // one as if the client had polled.
                    self.announced = true;
                    events.push(ServerEvent::Command(ComPortCommand::NotifyModemState(0)));
                }
            }
            TelnetEvent::Subnegotiation { option, data } => {
                if option == TelnetOption::COM_PORT_OPTION {
                    self.on_com_port(&data, out, events);
                }
            }
        }
    }

    fn on_com_port(&mut self, payload: &[u8], out: &mut Vec<u8>, events: &mut Vec<ServerEvent>) {
        // A malformed command, or one with a server code sent by a client,
        // has no sensible answer; RFC 2217 says to ignore what is not
        // understood.
        let Ok((cmd, Direction::ClientToServer)) = ComPortCommand::decode_with_direction(payload)
        else {
            return;
        };
        match cmd {
            ComPortCommand::Signature(ref text) if text.is_empty() => {
                ComPortCommand::Signature(self.signature.clone()).encode(true, out);
                return;
            }
            ComPortCommand::SetLineStateMask(mask) => {
                self.line_state_mask = mask;
                cmd.encode(true, out);
            }
            ComPortCommand::SetModemStateMask(mask) => {
                self.modem_state_mask = mask;
                cmd.encode(true, out);
            }
            ComPortCommand::FlowControlSuspend => self.output_suspended = true,
            ComPortCommand::FlowControlResume => self.output_suspended = false,
            _ => {}
        }
        events.push(ServerEvent::Command(cmd));
    }

    /// Send `cmd` to the client with the server's code (+100), e.g. the
    /// value now in effect after a SET-*. pyserial compares the echoed value
    /// with what it asked for and fails `open()` if they differ. A
    /// NOTIFY-MODEMSTATE / NOTIFY-LINESTATE sent this way also becomes the
    /// reference for the next [`modem_state_update`](Self::modem_state_update)
    /// / [`line_state_update`](Self::line_state_update).
    pub fn reply(&mut self, cmd: &ComPortCommand, out: &mut Vec<u8>) {
        match *cmd {
            ComPortCommand::NotifyModemState(v) => {
                self.last_modem_state = Some(v & modem_state::LINES);
            }
            ComPortCommand::NotifyLineState(v) => self.last_line_state = v & self.line_state_mask,
            _ => {}
        }
        cmd.encode(true, out);
    }

    /// Append serial data for the client, with IAC doubled.
    pub fn encode_data(&self, data: &[u8], out: &mut Vec<u8>) {
        escape_iac(data, out);
    }

    /// Report the device's modem lines (`state`: any of the
    /// [`modem_state`] line bits; the lower nibble is ignored and computed
    /// here). Sends NOTIFY-MODEMSTATE with the level bits and the delta bits
    /// relative to the last notification, ANDed with the client's mask,
    /// when a bit allowed by the mask changed. The first call after the
    /// COM-PORT-OPTION is agreed always sends, because pyserial cannot read
    /// CTS/DSR/RI/CD before it has had one notification. Does nothing (and
    /// returns false) before the option is agreed. Returns whether it sent.
    pub fn modem_state_update(&mut self, state: u8, out: &mut Vec<u8>) -> bool {
        if !self.com_port_enabled() {
            return false;
        }
        let (value, changed) = self.modem_value(state);
        if self.last_modem_state.is_some() && changed & self.modem_state_mask == 0 {
            return false;
        }
        self.last_modem_state = Some(state & modem_state::LINES);
        ComPortCommand::NotifyModemState(value & self.modem_state_mask).encode(true, out);
        true
    }

    /// Answer a client's NOTIFY-MODEMSTATE poll: always sends the current
    /// levels with the delta bits since the last notification (not masked:
    /// the client asked explicitly).
    pub fn notify_modem_state(&mut self, state: u8, out: &mut Vec<u8>) {
        let (value, _) = self.modem_value(state);
        self.last_modem_state = Some(state & modem_state::LINES);
        ComPortCommand::NotifyModemState(value).encode(true, out);
    }

    /// The NOTIFY-MODEMSTATE value for `state`, and the bits that changed
    /// (levels and deltas) since the last notification.
    fn modem_value(&self, state: u8) -> (u8, u8) {
        use modem_state::*;
        let levels = state & LINES;
        let last = self.last_modem_state.unwrap_or(0);
        let flipped = levels ^ last;
        let mut delta = 0;
        if flipped & CD != 0 {
            delta |= DELTA_CD;
        }
        // RFC 2217: "trailing-edge ring detector", i.e. RI went off.
        if flipped & RI != 0 && levels & RI == 0 {
            delta |= TRAILING_EDGE_RI;
        }
        if flipped & DSR != 0 {
            delta |= DELTA_DSR;
        }
        if flipped & CTS != 0 {
            delta |= DELTA_CTS;
        }
        (levels | delta, flipped | delta)
    }

    /// Report the line state (`state`: [`line_state`] bits). Sends
    /// NOTIFY-LINESTATE with `state` ANDed with the client's mask when that
    /// differs from the last one sent. The mask starts at 0 (RFC 2217), so
    /// nothing is sent until the client sets one. Returns whether it sent.
    pub fn line_state_update(&mut self, state: u8, out: &mut Vec<u8>) -> bool {
        if !self.com_port_enabled() {
            return false;
        }
        let masked = state & self.line_state_mask;
        if masked == self.last_line_state {
            return false;
        }
        self.last_line_state = masked;
        ComPortCommand::NotifyLineState(masked).encode(true, out);
        true
    }

    /// Answer a client's NOTIFY-LINESTATE poll with `state`, unmasked.
    pub fn notify_line_state(&mut self, state: u8, out: &mut Vec<u8>) {
        self.last_line_state = state & self.line_state_mask;
        ComPortCommand::NotifyLineState(state).encode(true, out);
    }

    /// Whether COM-PORT-OPTION is in effect in either direction (the client
    /// answered our WILL with DO, or we answered its WILL with DO). Like
    /// pyserial's own server, one direction is enough.
    pub fn com_port_enabled(&self) -> bool {
        self.options.local_enabled(TelnetOption::COM_PORT_OPTION)
            || self.options.remote_enabled(TelnetOption::COM_PORT_OPTION)
    }

    /// Whether the client sent FLOWCONTROL-SUSPEND (and no RESUME since):
    /// hold serial data for it until it resumes.
    pub fn output_suspended(&self) -> bool {
        self.output_suspended
    }

    /// The line-state mask set by the client (initially 0).
    pub fn line_state_mask(&self) -> u8 {
        self.line_state_mask
    }

    /// The modem-state mask set by the client (initially 0xFF).
    pub fn modem_state_mask(&self) -> u8 {
        self.modem_state_mask
    }

    /// The Telnet option state of this connection.
    pub fn options(&self) -> &OptionTable {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::{DO, DONT, TelnetDecoder, WILL, WONT};
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn encoded(cmd: &ComPortCommand, server: bool) -> Vec<u8> {
        let mut out = Vec::new();
        cmd.encode(server, &mut out);
        out
    }

    /// Every command with its value bytes (client code; server = +100).
    fn golden() -> Vec<(ComPortCommand, u8, Vec<u8>)> {
        use ComPortCommand::*;
        vec![
            (Signature(b"ttyward".to_vec()), 0x00, b"ttyward".to_vec()),
            (Signature(vec![]), 0x00, vec![]),
            (SetBaud(115_200), 0x01, vec![0x00, 0x01, 0xC2, 0x00]),
            (SetDataSize(data_size::EIGHT), 0x02, vec![0x08]),
            (SetParity(parity::EVEN), 0x03, vec![0x03]),
            (SetStopSize(stop_size::ONE_AND_HALF), 0x04, vec![0x03]),
            (SetControl(control::DTR_ON), 0x05, vec![0x08]),
            (NotifyLineState(line_state::BREAK_DETECT), 0x06, vec![0x10]),
            (
                NotifyModemState(modem_state::CD | modem_state::DELTA_CD),
                0x07,
                vec![0x88],
            ),
            (FlowControlSuspend, 0x08, vec![]),
            (FlowControlResume, 0x09, vec![]),
            (SetLineStateMask(0x1E), 0x0A, vec![0x1E]),
            (SetModemStateMask(0xF0), 0x0B, vec![0xF0]),
            (PurgeData(purge::BOTH), 0x0C, vec![0x03]),
        ]
    }

    #[test]
    fn encodes_and_decodes_every_command_in_both_directions() {
        for (cmd, code, value) in golden() {
            for server in [false, true] {
                let code = if server { code + 100 } else { code };
                let mut wire = vec![0xFF, 0xFA, 0x2C, code];
                wire.extend(&value);
                wire.extend([0xFF, 0xF0]);
                assert_eq!(encoded(&cmd, server), wire, "{cmd:?} server={server}");

                let mut payload = vec![code];
                payload.extend(&value);
                let direction = if server {
                    Direction::ServerToClient
                } else {
                    Direction::ClientToServer
                };
                assert_eq!(
                    ComPortCommand::decode_with_direction(&payload),
                    Ok((cmd.clone(), direction))
                );
            }
        }
    }

    #[test]
    fn escapes_iac_in_a_baud_rate() {
        let cmd = ComPortCommand::SetBaud(0x0000_FFFF);
        assert_eq!(
            encoded(&cmd, false),
            [
                0xFF, 0xFA, 0x2C, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0
            ]
        );
        assert_eq!(
            encoded(&cmd, true),
            [
                0xFF, 0xFA, 0x2C, 0x65, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0
            ]
        );
    }

    #[test]
    fn rejects_truncated_values() {
        assert!(ComPortCommand::decode(&[]).is_err());
        assert!(ComPortCommand::decode(&[0x01, 0x00, 0x00, 0x25]).is_err());
        assert!(ComPortCommand::decode(&[0x05]).is_err());
        assert!(ComPortCommand::decode(&[0x6C]).is_ok());
        let err = ComPortCommand::decode(&[0x0C]).err();
        assert_eq!(err.map(|e| e.what()), Some("PURGE-DATA needs a value"));
    }

    #[test]
    fn ignores_trailing_bytes_like_sredird_sends() {
        assert_eq!(
            ComPortCommand::decode(&[0x65, 0x00, 0x00, 0x25, 0x80, 0x00, 0x00, 0x00, 0x00]),
            Ok(ComPortCommand::SetBaud(9600))
        );
    }

    #[test]
    fn decodes_an_empty_modem_state_notification_as_a_poll() {
        assert_eq!(
            ComPortCommand::decode(&[0x07]),
            Ok(ComPortCommand::NotifyModemState(0))
        );
        assert_eq!(
            ComPortCommand::decode(&[0x06]),
            Ok(ComPortCommand::NotifyLineState(0))
        );
    }

    #[test]
    fn keeps_unknown_codes_raw() {
        let cmd = ComPortCommand::decode(&[0x2A, 0x01, 0x02]);
        assert_eq!(
            cmd,
            Ok(ComPortCommand::Unknown {
                code: 0x2A,
                data: vec![0x01, 0x02]
            })
        );
        let unknown = ComPortCommand::Unknown {
            code: 0x2A,
            data: vec![0xFF],
        };
        assert_eq!(
            encoded(&unknown, true),
            [0xFF, 0xFA, 0x2C, 0x2A, 0xFF, 0xFF, 0xFF, 0xF0]
        );
    }

    // ---- server session ----

    struct Session {
        server: Rfc2217Server,
        out: Vec<u8>,
        events: Vec<ServerEvent>,
    }

    impl Session {
        fn started() -> Self {
            let mut server = Rfc2217Server::new("ttyward");
            let mut out = Vec::new();
            server.start(&mut out);
            Self {
                server,
                out,
                events: Vec::new(),
            }
        }

        /// Feed client bytes; return (bytes the server sent, events).
        fn feed(&mut self, input: &[u8]) -> (Vec<u8>, Vec<ServerEvent>) {
            self.server
                .handle_input(input, &mut self.out, &mut self.events);
            (
                std::mem::take(&mut self.out),
                std::mem::take(&mut self.events),
            )
        }

        /// A session past pyserial's option negotiation.
        fn negotiated() -> Self {
            let mut s = Self::started();
            s.out.clear();
            s.feed(PYSERIAL_OPEN_OPTIONS);
            s.feed(PYSERIAL_OPTION_ANSWERS);
            s
        }
    }

    fn sb(code: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xFA, 0x2C, code];
        v.extend(value);
        v.extend([0xFF, 0xF0]);
        v
    }

    /// What pyserial 3.5 `Serial.open()` sends first: for each option in
    /// `_telnet_options` in REQUESTED state, its `send_yes`: DO ECHO,
    /// WILL SGA, DO SGA, DO COM-PORT, WILL COM-PORT.
    const PYSERIAL_OPEN_OPTIONS: &[u8] = &[
        0xFF, 0xFD, 0x01, 0xFF, 0xFB, 0x03, 0xFF, 0xFD, 0x03, 0xFF, 0xFD, 0x2C, 0xFF, 0xFB, 0x2C,
    ];

    /// pyserial's answers to our `start()`: its BINARY options are INACTIVE,
    /// so our WILL BINARY / DO BINARY make it send DO BINARY / WILL BINARY;
    /// the others were REQUESTED by itself and are acknowledged silently.
    const PYSERIAL_OPTION_ANSWERS: &[u8] = &[0xFF, 0xFD, 0x00, 0xFF, 0xFB, 0x00];

    #[test]
    fn start_offers_com_port_binary_and_sga() {
        let s = Session::started();
        assert_eq!(
            s.out,
            [
                0xFF, 0xFB, 0x2C, 0xFF, 0xFB, 0x00, 0xFF, 0xFD, 0x00, 0xFF, 0xFB, 0x03, 0xFF, 0xFD,
                0x03
            ]
        );
        assert!(!s.server.com_port_enabled());
    }

    #[test]
    fn answers_the_pyserial_open_sequence() {
        let mut s = Session::started();
        s.out.clear();

        // Options: ECHO is refused, its WILL COM-PORT is accepted; the rest
        // acknowledges our own requests and needs no answer.
        let (out, events) = s.feed(PYSERIAL_OPEN_OPTIONS);
        assert_eq!(out, [0xFF, 0xFC, 0x01, 0xFF, 0xFD, 0x2C]);
        assert!(s.server.com_port_enabled());
        // The session asks for the first modem state, as if polled.
        assert_eq!(
            events,
            vec![ServerEvent::Command(ComPortCommand::NotifyModemState(0))]
        );
        let (out, events) = s.feed(PYSERIAL_OPTION_ANSWERS);
        assert!(out.is_empty() && events.is_empty());
        let options = s.server.options();
        for opt in [TelnetOption::BINARY, TelnetOption::SGA] {
            assert!(options.local_enabled(opt) && options.remote_enabled(opt));
        }

        // The first modem-state notification pyserial needs before it can
        // report CTS/DSR/RI/CD.
        let mut note = Vec::new();
        s.server.reply(
            &ComPortCommand::NotifyModemState(modem_state::CTS | modem_state::DSR),
            &mut note,
        );
        assert_eq!(note, sb(0x6B, &[0x30]));
        note.clear();
        assert!(
            !s.server
                .modem_state_update(modem_state::CTS | modem_state::DSR, &mut note)
        );

        // _reconfigure_port(): four SETs at once, 9600 8N1.
        let mut sets = sb(0x01, &[0x00, 0x00, 0x25, 0x80]);
        sets.extend(sb(0x02, &[0x08]));
        sets.extend(sb(0x03, &[0x01]));
        sets.extend(sb(0x04, &[0x01]));
        let (out, events) = s.feed(&sets);
        assert!(out.is_empty());
        use ComPortCommand::*;
        assert_eq!(
            events,
            [SetBaud(9600), SetDataSize(8), SetParity(1), SetStopSize(1)]
                .map(ServerEvent::Command)
                .to_vec()
        );
        // The engine applies them and echoes the values in effect.
        let mut answers = Vec::new();
        for event in &events {
            if let ServerEvent::Command(cmd) = event {
                s.server.reply(cmd, &mut answers);
            }
        }
        let mut expected = sb(0x65, &[0x00, 0x00, 0x25, 0x80]);
        expected.extend(sb(0x66, &[0x08]));
        expected.extend(sb(0x67, &[0x01]));
        expected.extend(sb(0x68, &[0x01]));
        assert_eq!(answers, expected);

        // Then one at a time, each waiting for its echo: flow control none,
        // DTR on, RTS on, purge receive buffer, purge transmit buffer.
        for (request, cmd, answer) in [
            (
                sb(0x05, &[0x01]),
                SetControl(control::FLOW_NONE),
                sb(0x69, &[0x01]),
            ),
            (
                sb(0x05, &[0x08]),
                SetControl(control::DTR_ON),
                sb(0x69, &[0x08]),
            ),
            (
                sb(0x05, &[0x0B]),
                SetControl(control::RTS_ON),
                sb(0x69, &[0x0B]),
            ),
            (sb(0x0C, &[0x01]), PurgeData(purge::RX), sb(0x70, &[0x01])),
            (sb(0x0C, &[0x02]), PurgeData(purge::TX), sb(0x70, &[0x02])),
        ] {
            let (out, events) = s.feed(&request);
            assert!(out.is_empty());
            assert_eq!(events, vec![ServerEvent::Command(cmd.clone())]);
            let mut reply = Vec::new();
            s.server.reply(&cmd, &mut reply);
            assert_eq!(reply, answer);
        }

        // Data then flows, binary-clean.
        let (out, events) = s.feed(&[0x0D, 0x00, 0xFF, 0xFF, 0x0A]);
        assert!(out.is_empty());
        assert_eq!(
            events,
            vec![ServerEvent::Data(vec![0x0D, 0x00, 0xFF, 0x0A])]
        );
    }

    /// pyserial's `TelnetOption`, transcribed from rfc2217.py, to check
    /// that our negotiation satisfies its open() and stops.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum PyState {
        Requested,
        Active,
        Inactive,
    }

    struct PyOption {
        option: u8,
        send_yes: u8,
        send_no: u8,
        ack_yes: u8,
        ack_no: u8,
        state: PyState,
    }

    impl PyOption {
        fn process_incoming(&mut self, command: u8, out: &mut Vec<u8>) {
            use PyState::*;
            if command == self.ack_yes {
                match self.state {
                    Requested => self.state = Active,
                    Active => {}
                    Inactive => {
                        self.state = Active;
                        out.extend([0xFF, self.send_yes, self.option]);
                    }
                }
            } else if command == self.ack_no {
                match self.state {
                    Requested | Inactive => self.state = Inactive,
                    Active => {
                        self.state = Inactive;
                        out.extend([0xFF, self.send_no, self.option]);
                    }
                }
            }
        }
    }

    fn pyserial_client_options() -> Vec<PyOption> {
        let o = |option, send_yes, send_no, ack_yes, ack_no, state| PyOption {
            option,
            send_yes,
            send_no,
            ack_yes,
            ack_no,
            state,
        };
        use PyState::*;
        vec![
            o(0x01, DO, DONT, WILL, WONT, Requested), // ECHO
            o(0x03, WILL, WONT, DO, DONT, Requested), // we-SGA
            o(0x03, DO, DONT, WILL, WONT, Requested), // they-SGA
            o(0x00, DO, DONT, WILL, WONT, Inactive),  // they-BINARY
            o(0x2C, DO, DONT, WILL, WONT, Requested), // they-RFC2217
            o(0x00, WILL, WONT, DO, DONT, Inactive),  // we-BINARY (mandatory)
            o(0x2C, WILL, WONT, DO, DONT, Requested), // we-RFC2217 (mandatory)
        ]
    }

    #[test]
    fn pyserial_negotiation_completes_and_falls_silent() {
        let mut client = pyserial_client_options();
        let mut to_server: Vec<u8> = Vec::new();
        for o in &client {
            if o.state == PyState::Requested {
                to_server.extend([0xFF, o.send_yes, o.option]);
            }
        }
        assert_eq!(to_server, PYSERIAL_OPEN_OPTIONS);
        let mut s = Session::started();
        let mut to_client = std::mem::take(&mut s.out);
        let mut rounds = 0;
        while !(to_server.is_empty() && to_client.is_empty()) {
            rounds += 1;
            assert!(rounds < 10, "negotiation does not settle");
            let (out, _) = s.feed(&std::mem::take(&mut to_server));
            let mut decoder = TelnetDecoder::new();
            let mut events = Vec::new();
            decoder.decode(&std::mem::take(&mut to_client), &mut events);
            for e in events {
                if let TelnetEvent::Negotiate { verb, option } = e {
                    let mut known = false;
                    for o in client.iter_mut().filter(|o| o.option == option.0) {
                        known = true;
                        o.process_incoming(verb, &mut to_server);
                    }
                    assert!(
                        known,
                        "server offered {option:?}, which pyserial would refuse"
                    );
                }
            }
            to_client = out;
        }
        // pyserial's open() condition: every mandatory option that is not
        // INACTIVE must be active.
        let mandatory = &client[5..];
        assert!(mandatory.iter().all(|o| o.state == PyState::Active));
        assert!(s.server.com_port_enabled());
        assert!(s.server.options().remote_enabled(TelnetOption::BINARY));
    }

    #[test]
    fn answers_signature_query_itself() {
        let mut s = Session::negotiated();
        let (out, events) = s.feed(&sb(0x00, &[]));
        assert_eq!(out, sb(0x64, b"ttyward"));
        assert!(events.is_empty());
        // A client announcing its own signature is passed on.
        let (out, events) = s.feed(&sb(0x00, b"pyserial"));
        assert!(out.is_empty());
        assert_eq!(
            events,
            vec![ServerEvent::Command(ComPortCommand::Signature(
                b"pyserial".to_vec()
            ))]
        );
    }

    #[test]
    fn stores_and_acknowledges_state_masks() {
        let mut s = Session::negotiated();
        let (out, events) = s.feed(&sb(0x0B, &[0x30]));
        assert_eq!(out, sb(0x6F, &[0x30]));
        assert_eq!(events.len(), 1);
        assert_eq!(s.server.modem_state_mask(), 0x30);
        let (out, _) = s.feed(&sb(0x0A, &[0xFF, 0xFF]));
        assert_eq!(out, sb(0x6E, &[0xFF, 0xFF]));
        assert_eq!(s.server.line_state_mask(), 0xFF);
    }

    #[test]
    fn tracks_flow_control_suspend_and_resume() {
        let mut s = Session::negotiated();
        assert!(!s.server.output_suspended());
        let (_, events) = s.feed(&sb(0x08, &[]));
        assert!(s.server.output_suspended());
        assert_eq!(
            events,
            vec![ServerEvent::Command(ComPortCommand::FlowControlSuspend)]
        );
        s.feed(&sb(0x09, &[]));
        assert!(!s.server.output_suspended());
    }

    #[test]
    fn passes_modem_state_polls_to_the_caller() {
        let mut s = Session::negotiated();
        let (out, events) = s.feed(&sb(0x07, &[]));
        assert!(out.is_empty());
        assert_eq!(
            events,
            vec![ServerEvent::Command(ComPortCommand::NotifyModemState(0))]
        );
        let mut answer = Vec::new();
        s.server.notify_modem_state(modem_state::CD, &mut answer);
        assert_eq!(answer, sb(0x6B, &[0x88]));
        // The poll answer is the reference for the next update.
        answer.clear();
        assert!(!s.server.modem_state_update(modem_state::CD, &mut answer));
        assert!(answer.is_empty());
    }

    #[test]
    fn sends_modem_state_changes_with_delta_bits() {
        use modem_state::*;
        let mut s = Session::started();
        let mut out = Vec::new();
        // Not before the client agreed to COM-PORT-OPTION.
        assert!(!s.server.modem_state_update(CTS, &mut out));
        s.feed(&[0xFF, 0xFD, 0x2C]);
        assert!(s.server.com_port_enabled());
        // The first one always goes out, even with nothing set.
        assert!(s.server.modem_state_update(0x00, &mut out));
        assert_eq!(out, sb(0x6B, &[0x00]));
        out.clear();
        assert!(!s.server.modem_state_update(0x00, &mut out));
        assert!(s.server.modem_state_update(CTS | DSR | 0x0F, &mut out));
        assert_eq!(out, sb(0x6B, &[CTS | DSR | DELTA_CTS | DELTA_DSR]));
        out.clear();
        // RI rising: level only; RI falling: trailing-edge bit.
        assert!(s.server.modem_state_update(CTS | DSR | RI, &mut out));
        assert_eq!(out, sb(0x6B, &[CTS | DSR | RI]));
        out.clear();
        assert!(s.server.modem_state_update(CTS | DSR, &mut out));
        assert_eq!(out, sb(0x6B, &[CTS | DSR | TRAILING_EDGE_RI]));
    }

    #[test]
    fn applies_the_modem_state_mask() {
        use modem_state::*;
        let mut s = Session::negotiated();
        let mut out = Vec::new();
        s.server.modem_state_update(0, &mut out);
        s.feed(&sb(0x0B, &[CD | DELTA_CD]));
        out.clear();
        // CTS is masked out: no notification.
        assert!(!s.server.modem_state_update(CTS, &mut out));
        assert!(out.is_empty());
        assert!(s.server.modem_state_update(CTS | CD, &mut out));
        assert_eq!(out, sb(0x6B, &[CD | DELTA_CD]));
    }

    #[test]
    fn line_state_is_silent_until_the_client_sets_a_mask() {
        use line_state::*;
        let mut s = Session::negotiated();
        let mut out = Vec::new();
        assert!(!s.server.line_state_update(FRAMING_ERROR, &mut out));
        s.feed(&sb(0x0A, &[FRAMING_ERROR | BREAK_DETECT]));
        assert!(
            s.server
                .line_state_update(FRAMING_ERROR | DATA_READY, &mut out)
        );
        assert_eq!(out, sb(0x6A, &[FRAMING_ERROR]));
        out.clear();
        assert!(!s.server.line_state_update(FRAMING_ERROR, &mut out));
        assert!(s.server.line_state_update(0, &mut out));
        assert_eq!(out, sb(0x6A, &[0x00]));
    }

    #[test]
    fn telnet_break_becomes_a_break_event_in_order() {
        let mut s = Session::negotiated();
        let mut input = b"ab".to_vec();
        input.extend([0xFF, 0xF3]);
        input.extend(b"c");
        input.extend(sb(0x05, &[0x05]));
        input.extend(b"d");
        let (_, events) = s.feed(&input);
        assert_eq!(
            events,
            vec![
                ServerEvent::Data(b"ab".to_vec()),
                ServerEvent::Break,
                ServerEvent::Data(b"c".to_vec()),
                ServerEvent::Command(ComPortCommand::SetControl(control::BREAK_ON)),
                ServerEvent::Data(b"d".to_vec()),
            ]
        );
    }

    #[test]
    fn merges_data_around_negotiations() {
        let mut s = Session::negotiated();
        let (out, events) = s.feed(&[0x61, 0xFF, 0xFD, 0x03, 0x62]);
        assert!(out.is_empty());
        assert_eq!(events, vec![ServerEvent::Data(b"ab".to_vec())]);
    }

    #[test]
    fn translates_cr_nul_only_until_the_client_goes_binary() {
        let mut s = Session::started();
        let mut input = vec![0x0D, 0x00];
        input.extend([0xFF, 0xFB, 0x00]); // WILL BINARY, in the same chunk
        input.extend([0x0D, 0x00]);
        let (_, events) = s.feed(&input);
        assert_eq!(events, vec![ServerEvent::Data(vec![0x0D, 0x0D, 0x00])]);
    }

    #[test]
    fn ignores_server_codes_and_malformed_commands_from_the_client() {
        let mut s = Session::negotiated();
        let mut input = sb(0x65, &[0x00, 0x00, 0x25, 0x80]);
        input.extend(sb(0x01, &[0x25]));
        input.extend(sb(0x05, &[]));
        let (out, events) = s.feed(&input);
        assert!(out.is_empty() && events.is_empty());
    }

    #[test]
    fn encodes_data_with_iac_doubled() {
        let s = Session::started();
        let mut out = Vec::new();
        s.server.encode_data(&[0x01, 0xFF, 0x02], &mut out);
        assert_eq!(out, [0x01, 0xFF, 0xFF, 0x02]);
    }

    #[test]
    fn option_flip_flops_do_not_make_the_server_chatter() {
        let mut s = Session::negotiated();
        let mut input = Vec::new();
        for _ in 0..10_000 {
            input.extend([
                0xFF, 0xFB, 0x2C, 0xFF, 0xFC, 0x2C, 0xFF, 0xFD, 0x01, 0xFF, 0xFE, 0x01,
            ]);
        }
        let (out, _) = s.feed(&input);
        // At most one 3-byte answer per 3-byte request (RFC 1143), and
        // nothing for the requests that do not change anything.
        assert!(out.len() <= input.len() * 3 / 4);
        // Nothing more comes out afterwards: sans-IO has no timers.
        let (out, events) = s.feed(&[]);
        assert!(out.is_empty() && events.is_empty());
    }

    #[test]
    fn survives_malformed_streams() {
        let mut oversized = vec![0xFF, 0xFA, 0x2C, 0x00];
        oversized.extend([0x41; 5000]);
        oversized.extend([0xFF, 0xF0]);
        let streams: [&[u8]; 7] = [
            &[0xFF],
            &[0xFF, 0xFA, 0x2C, 0x01, 0x00],
            &oversized,
            &[0xFF, 0xF0, 0xFF, 0xF0],
            &[
                0xFF, 0xFB, 0x99, 0xFF, 0xFD, 0x98, 0xFF, 0xFA, 0x99, 0x01, 0xFF, 0xF0,
            ],
            &[0xFF, 0xFA, 0xFF, 0xFF, 0xFF, 0xF0],
            &[0xFF, 0xFA, 0x2C, 0xFF, 0xFA, 0x2C, 0x0C, 0x03, 0xFF, 0xF0],
        ];
        for stream in streams {
            let mut s = Session::negotiated();
            s.feed(stream);
            crate::fuzzing::rfc2217_server(stream);
            crate::fuzzing::telnet(stream);
        }
        // SB restarted inside an SB: the inner one wins.
        let mut s = Session::negotiated();
        let (_, events) = s.feed(streams[6]);
        assert_eq!(
            events,
            vec![ServerEvent::Command(ComPortCommand::PurgeData(3))]
        );
        // Unknown options are refused.
        let mut s = Session::negotiated();
        let (out, _) = s.feed(streams[4]);
        assert_eq!(out, [0xFF, 0xFE, 0x99, 0xFF, 0xFC, 0x98]);
    }

    fn any_command() -> impl Strategy<Value = ComPortCommand> {
        use ComPortCommand::*;
        prop_oneof![
            vec(any::<u8>(), 0..64).prop_map(Signature),
            any::<u32>().prop_map(SetBaud),
            any::<u8>().prop_map(SetDataSize),
            any::<u8>().prop_map(SetParity),
            any::<u8>().prop_map(SetStopSize),
            any::<u8>().prop_map(SetControl),
            any::<u8>().prop_map(NotifyLineState),
            any::<u8>().prop_map(NotifyModemState),
            Just(FlowControlSuspend),
            Just(FlowControlResume),
            any::<u8>().prop_map(SetLineStateMask),
            any::<u8>().prop_map(SetModemStateMask),
            any::<u8>().prop_map(PurgeData),
            (prop_oneof![13u8..100, 113u8..=255], vec(any::<u8>(), 0..16))
                .prop_map(|(code, data)| Unknown { code, data }),
        ]
    }

    proptest! {
        #[test]
        fn every_command_round_trips_through_the_wire(cmd in any_command(), server in any::<bool>()) {
            let wire = encoded(&cmd, server);
            let mut decoder = TelnetDecoder::new();
            let mut events = Vec::new();
            decoder.decode(&wire, &mut events);
            let [TelnetEvent::Subnegotiation { option, data }] = events.as_slice() else {
                return Err(TestCaseError::fail(format!("not one SB: {events:?}")));
            };
            prop_assert_eq!(*option, TelnetOption::COM_PORT_OPTION);
            let (decoded, direction) = ComPortCommand::decode_with_direction(data)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&decoded, &cmd);
            if !matches!(cmd, ComPortCommand::Unknown { .. }) {
                prop_assert_eq!(direction == Direction::ServerToClient, server);
            }
        }

        #[test]
        fn any_chunking_gives_the_same_server_events(
            input in vec(prop_oneof![any::<u8>(), Just(0xFF), Just(0xFA), Just(0xF0), Just(0x2C)], 0..512),
            chunk in 1usize..32,
        ) {
            let mut whole = Session::negotiated();
            let (out_whole, events_whole) = whole.feed(&input);
            let mut chunked = Session::negotiated();
            let mut out_chunked = Vec::new();
            let mut events_chunked: Vec<ServerEvent> = Vec::new();
            for piece in input.chunks(chunk) {
                let (out, events) = chunked.feed(piece);
                out_chunked.extend(out);
                for e in events {
                    match (events_chunked.last_mut(), e) {
                        (Some(ServerEvent::Data(prev)), ServerEvent::Data(d)) => prev.extend(d),
                        (_, e) => events_chunked.push(e),
                    }
                }
            }
            prop_assert_eq!(out_whole, out_chunked);
            prop_assert_eq!(events_whole, events_chunked);
        }
    }
}
