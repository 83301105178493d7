//! The client side of RFC 2217, without IO: what `ttyward attach` runs to
//! drive a remote serial port (ttyward's own, an NPort's, ser2net's).
//!
//! [`Rfc2217Client`] negotiates the Telnet options through an
//! [`OptionTable`] (it offers `WILL COM-PORT-OPTION`, BINARY in both
//! directions and SGA in both directions, and refuses everything else, ECHO
//! included), encodes the COM-PORT-OPTION requests (SET-BAUDRATE,
//! SET-DATASIZE, SET-PARITY, SET-STOPSIZE, SET-CONTROL for flow control, DTR,
//! RTS and break, PURGE-DATA, the state masks) with the client's codes,
//! escapes IAC in data, and decodes what the server sends into
//! [`ClientEvent`]s: data, the values it confirms after a SET (RFC 2217
//! servers answer every SET with the value in effect, code + 100), modem-
//! and line-state notifications, and flow-control suspend/resume.
//!
//! Requests made before the server has agreed to COM-PORT-OPTION are held
//! (the latest per setting) and sent the moment it agrees, because RFC 2217
//! does not allow them earlier and some servers drop them.
//!
//! It does not retry, time out or compare the confirmed values with the
//! requested ones: that is the caller's business, as are sockets and TLS.

use crate::rfc2217::{ComPortCommand, Direction, control};
use crate::telnet::{OptionTable, Side, TelnetDecoder, TelnetEvent, TelnetOption, escape_iac};

/// Options we perform (local) and let the server perform (remote).
const SUPPORTED: [TelnetOption; 3] = [
    TelnetOption::BINARY,
    TelnetOption::SGA,
    TelnetOption::COM_PORT_OPTION,
];

/// Carriage return and the NUL RFC 854 wants after a bare one.
const CR: u8 = 0x0D;
const NUL: u8 = 0x00;

/// What the server sent, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Serial data from the remote port, IAC IAC already undone.
    Data(Vec<u8>),
    /// COM-PORT-OPTION is now in effect; requests held until now have been
    /// appended to `out` already.
    ComPortReady,
    /// The server's answer to a SET-* (or PURGE-DATA, or a state mask): the
    /// value now in effect on the remote port, with the client's code.
    Confirmed(ComPortCommand),
    /// NOTIFY-MODEMSTATE: line levels in the upper nibble, changes in the
    /// lower (see [`crate::rfc2217::modem_state`]).
    ModemState(u8),
    /// NOTIFY-LINESTATE (see [`crate::rfc2217::line_state`]).
    LineState(u8),
    /// FLOWCONTROL-SUSPEND: the server can take no more data for now.
    Suspend,
    /// FLOWCONTROL-RESUME: the server takes data again.
    Resume,
    /// The server's signature text.
    Signature(Vec<u8>),
}

/// One RFC 2217 connection, client side, without IO.
///
/// Methods: [`start`](Self::start) once after connecting;
/// [`handle_input`](Self::handle_input) for every chunk received;
/// [`request`](Self::request) and [`encode_data`](Self::encode_data) to
/// produce output; the rest are getters. Every method that produces bytes
/// appends them to an `out` buffer the caller writes to the socket.
#[derive(Clone, Debug)]
pub struct Rfc2217Client {
    signature: Vec<u8>,
    decoder: TelnetDecoder,
    options: OptionTable,
    /// Scratch space reused across calls.
    telnet_events: Vec<TelnetEvent>,
    /// Requests made before COM-PORT-OPTION was agreed, one per setting.
    held: Vec<ComPortCommand>,
    /// Data given while our BINARY request awaited its answer.
    held_data: Vec<u8>,
    /// [`ClientEvent::ComPortReady`] has been emitted.
    ready: bool,
    suspended: bool,
}

impl Rfc2217Client {
    /// A session that answers the server's signature query with
    /// `signature`.
    pub fn new(signature: &str) -> Self {
        let mut decoder = TelnetDecoder::new();
        // Until the server agrees to send BINARY, CR NUL means CR.
        decoder.set_binary(false);
        Self {
            signature: signature.as_bytes().to_vec(),
            decoder,
            options: OptionTable::new(&SUPPORTED, &SUPPORTED),
            telnet_events: Vec::new(),
            held: Vec::new(),
            held_data: Vec::new(),
            ready: false,
            suspended: false,
        }
    }

    /// The bytes to send right after connecting: `WILL COM-PORT-OPTION`,
    /// `WILL BINARY`, `DO BINARY`, `WILL SGA`, `DO SGA`.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.options
            .request_local(TelnetOption::COM_PORT_OPTION, true, out);
        self.options.request_local(TelnetOption::BINARY, true, out);
        self.options.request_remote(TelnetOption::BINARY, true, out);
        self.options.request_local(TelnetOption::SGA, true, out);
        self.options.request_remote(TelnetOption::SGA, true, out);
    }

    /// Sends a COM-PORT-OPTION request (client code), or holds it until the
    /// option is agreed; a held request replaces an older one for the same
    /// setting (see [`slot`]).
    pub fn request(&mut self, cmd: ComPortCommand, out: &mut Vec<u8>) {
        if self.ready {
            cmd.encode(false, out);
            return;
        }
        let key = slot(&cmd);
        if let Some(held) = self.held.iter_mut().find(|h| slot(h) == key) {
            *held = cmd;
        } else {
            self.held.push(cmd);
        }
    }

    /// Appends serial data for the server, IAC doubled. While our request
    /// to transmit BINARY awaits its answer the data is held (a server that
    /// already asked for BINARY decodes it binary, one that refuses applies
    /// RFC 854's CR NUL rule: only the answer tells which), then encoded as
    /// the answer says. Outside BINARY every CR is followed by NUL, so a
    /// server that applies the CR NUL rule gets the bytes unchanged.
    pub fn encode_data(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.options.local_pending(TelnetOption::BINARY) {
            self.held_data.extend_from_slice(data);
            return;
        }
        self.encode_now(data, out);
    }

    fn encode_now(&self, data: &[u8], out: &mut Vec<u8>) {
        if self.options.local_enabled(TelnetOption::BINARY) {
            escape_iac(data, out);
            return;
        }
        for chunk in data.split_inclusive(|&b| b == CR) {
            escape_iac(chunk, out);
            if chunk.last() == Some(&CR) {
                out.push(NUL);
            }
        }
    }

    /// Decodes bytes received from the server. Negotiation answers (and
    /// requests held until COM-PORT-OPTION was agreed) are appended to
    /// `out`, everything else to `events` in stream order, adjacent data
    /// merged.
    pub fn handle_input(&mut self, input: &[u8], out: &mut Vec<u8>, events: &mut Vec<ClientEvent>) {
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
        events: &mut Vec<ClientEvent>,
        first_new: usize,
    ) {
        match event {
            TelnetEvent::Data(data) => {
                if events.len() > first_new
                    && let Some(ClientEvent::Data(prev)) = events.last_mut()
                {
                    prev.extend_from_slice(&data);
                } else {
                    events.push(ClientEvent::Data(data));
                }
            }
            // NOP, AYT, a BRK from a server: nothing a client port acts on.
            TelnetEvent::Command(_) => {}
            TelnetEvent::Negotiate { verb, option } => {
                let change = self.options.handle(verb, option, out);
                if let Some(change) = change
                    && change.option == TelnetOption::BINARY
                    && change.side == Side::Remote
                {
                    self.decoder.set_binary(change.enabled);
                }
                if !self.ready && self.com_port_enabled() {
                    self.ready = true;
                    for cmd in std::mem::take(&mut self.held) {
                        cmd.encode(false, out);
                    }
                    events.push(ClientEvent::ComPortReady);
                }
                if !self.held_data.is_empty() && !self.options.local_pending(TelnetOption::BINARY) {
                    let data = std::mem::take(&mut self.held_data);
                    self.encode_now(&data, out);
                }
            }
            TelnetEvent::Subnegotiation { option, data } => {
                if option == TelnetOption::COM_PORT_OPTION {
                    self.on_com_port(&data, out, events);
                }
            }
        }
    }

    fn on_com_port(&mut self, payload: &[u8], out: &mut Vec<u8>, events: &mut Vec<ClientEvent>) {
        // A client code from the server, or a malformed command: RFC 2217
        // says to ignore what is not understood.
        let Ok((cmd, Direction::ServerToClient)) = ComPortCommand::decode_with_direction(payload)
        else {
            return;
        };
        use ComPortCommand as C;
        let event = match cmd {
            C::Signature(text) if text.is_empty() => {
                C::Signature(self.signature.clone()).encode(false, out);
                return;
            }
            C::Signature(text) => ClientEvent::Signature(text),
            C::NotifyModemState(v) => ClientEvent::ModemState(v),
            C::NotifyLineState(v) => ClientEvent::LineState(v),
            C::FlowControlSuspend => {
                self.suspended = true;
                ClientEvent::Suspend
            }
            C::FlowControlResume => {
                self.suspended = false;
                ClientEvent::Resume
            }
            C::Unknown { .. } => return,
            other => ClientEvent::Confirmed(other),
        };
        events.push(event);
    }

    /// Whether COM-PORT-OPTION is in effect in either direction (like
    /// pyserial and [`crate::rfc2217::Rfc2217Server`], one is enough).
    pub fn com_port_enabled(&self) -> bool {
        self.options.local_enabled(TelnetOption::COM_PORT_OPTION)
            || self.options.remote_enabled(TelnetOption::COM_PORT_OPTION)
    }

    /// Whether the server sent FLOWCONTROL-SUSPEND (and no RESUME since):
    /// hold data for it until it resumes.
    pub fn suspended(&self) -> bool {
        self.suspended
    }

    /// Requests held until COM-PORT-OPTION is agreed.
    pub fn held(&self) -> &[ComPortCommand] {
        &self.held
    }

    /// Bytes of data held until the BINARY negotiation is answered (a
    /// caller stops reading its source while this grows).
    pub fn held_data_len(&self) -> usize {
        self.held_data.len()
    }

    /// The Telnet option state of this connection.
    pub fn options(&self) -> &OptionTable {
        &self.options
    }
}

/// Which setting a request is about, so a newer held request replaces an
/// older one: the code, and for SET-CONTROL the group of its value
/// (outbound flow, break, DTR, RTS, inbound flow).
pub fn slot(cmd: &ComPortCommand) -> (u8, u8) {
    let code = cmd.code().0;
    let group = match *cmd {
        ComPortCommand::SetControl(v) => match v {
            control::QUERY_FLOW..=control::FLOW_HARDWARE
            | control::FLOW_DCD
            | control::FLOW_DSR => 0,
            control::QUERY_BREAK..=control::BREAK_OFF => 1,
            control::QUERY_DTR..=control::DTR_OFF => 2,
            control::QUERY_RTS..=control::RTS_OFF => 3,
            control::QUERY_INBOUND_FLOW..=control::INBOUND_FLOW_HARDWARE
            | control::INBOUND_FLOW_DTR => 4,
            other => other,
        },
        ComPortCommand::PurgeData(v) => v,
        _ => 0,
    };
    (code, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc2217::{Rfc2217Server, ServerEvent, modem_state, parity, purge, stop_size};
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn sb(code: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xFA, 0x2C, code];
        v.extend(value);
        v.extend([0xFF, 0xF0]);
        v
    }

    /// What ttyward's server and most others send on accept.
    const SERVER_START: &[u8] = &[
        0xFF, 0xFB, 0x2C, 0xFF, 0xFB, 0x00, 0xFF, 0xFD, 0x00, 0xFF, 0xFB, 0x03, 0xFF, 0xFD, 0x03,
    ];

    fn feed(client: &mut Rfc2217Client, input: &[u8]) -> (Vec<u8>, Vec<ClientEvent>) {
        let (mut out, mut events) = (Vec::new(), Vec::new());
        client.handle_input(input, &mut out, &mut events);
        (out, events)
    }

    #[test]
    fn start_offers_com_port_binary_and_sga() {
        let mut c = Rfc2217Client::new("ttyward attach");
        let mut out = Vec::new();
        c.start(&mut out);
        assert_eq!(
            out,
            [
                0xFF, 0xFB, 0x2C, 0xFF, 0xFB, 0x00, 0xFF, 0xFD, 0x00, 0xFF, 0xFB, 0x03, 0xFF, 0xFD,
                0x03
            ]
        );
        assert!(!c.com_port_enabled());
    }

    #[test]
    fn holds_requests_until_the_server_agrees_then_sends_them_in_order() {
        let mut c = Rfc2217Client::new("t");
        let mut out = Vec::new();
        c.start(&mut out);
        out.clear();
        c.request(ComPortCommand::SetBaud(9600), &mut out);
        c.request(ComPortCommand::SetParity(parity::EVEN), &mut out);
        c.request(ComPortCommand::SetControl(control::DTR_OFF), &mut out);
        c.request(ComPortCommand::SetBaud(19_200), &mut out);
        c.request(ComPortCommand::SetControl(control::RTS_ON), &mut out);
        c.request(ComPortCommand::SetControl(control::DTR_ON), &mut out);
        assert!(out.is_empty());
        assert_eq!(c.held().len(), 4);

        // The server's opening: its WILL COM-PORT is accepted (DO), its
        // WILL/DO BINARY and SGA acknowledge ours and need no answer.
        let (out, events) = feed(&mut c, SERVER_START);
        let mut expected = vec![0xFF, 0xFD, 0x2C];
        expected.extend(sb(0x01, &[0x00, 0x00, 0x4B, 0x00]));
        expected.extend(sb(0x03, &[0x03]));
        expected.extend(sb(0x05, &[0x08]));
        expected.extend(sb(0x05, &[0x0B]));
        assert_eq!(out, expected);
        assert_eq!(events, vec![ClientEvent::ComPortReady]);
        assert!(c.held().is_empty());
        for opt in [TelnetOption::BINARY, TelnetOption::SGA] {
            assert!(c.options().local_enabled(opt) && c.options().remote_enabled(opt));
        }

        // Later requests go out at once, with the client's codes.
        let mut out = Vec::new();
        c.request(ComPortCommand::SetStopSize(stop_size::TWO), &mut out);
        c.request(ComPortCommand::PurgeData(purge::BOTH), &mut out);
        let mut expected = sb(0x04, &[0x02]);
        expected.extend(sb(0x0C, &[0x03]));
        assert_eq!(out, expected);
    }

    #[test]
    fn refuses_echo_and_unknown_options() {
        let mut c = Rfc2217Client::new("t");
        let (out, _) = feed(&mut c, &[0xFF, 0xFB, 0x01, 0xFF, 0xFD, 0x18]);
        assert_eq!(out, [0xFF, 0xFE, 0x01, 0xFF, 0xFC, 0x18]);
    }

    #[test]
    fn decodes_confirmations_notifications_and_flow_control() {
        let mut c = Rfc2217Client::new("t");
        feed(&mut c, SERVER_START);
        let mut input = sb(0x65, &[0x00, 0x00, 0x4B, 0x00]);
        input.extend(sb(0x66, &[0x08]));
        input.extend(sb(0x67, &[0x03]));
        input.extend(sb(0x68, &[0x01]));
        input.extend(sb(0x69, &[0x08]));
        input.extend(sb(0x70, &[0x03]));
        input.extend(sb(0x6B, &[0x11]));
        input.extend(sb(0x6A, &[0x10]));
        input.extend(sb(0x6C, &[]));
        input.extend(b"abc");
        input.extend(sb(0x6D, &[]));
        input.extend(sb(0x64, b"ttyward 0.1"));
        use ComPortCommand as C;
        let (out, events) = feed(&mut c, &input);
        assert!(out.is_empty());
        assert_eq!(
            events,
            vec![
                ClientEvent::Confirmed(C::SetBaud(19_200)),
                ClientEvent::Confirmed(C::SetDataSize(8)),
                ClientEvent::Confirmed(C::SetParity(parity::EVEN)),
                ClientEvent::Confirmed(C::SetStopSize(stop_size::ONE)),
                ClientEvent::Confirmed(C::SetControl(control::DTR_ON)),
                ClientEvent::Confirmed(C::PurgeData(purge::BOTH)),
                ClientEvent::ModemState(modem_state::CTS | modem_state::DELTA_CTS),
                ClientEvent::LineState(0x10),
                ClientEvent::Suspend,
                ClientEvent::Data(b"abc".to_vec()),
                ClientEvent::Resume,
                ClientEvent::Signature(b"ttyward 0.1".to_vec()),
            ]
        );
        assert!(!c.suspended());
    }

    #[test]
    fn answers_a_signature_query_and_ignores_client_codes() {
        let mut c = Rfc2217Client::new("attach");
        feed(&mut c, SERVER_START);
        let (out, events) = feed(&mut c, &sb(0x64, &[]));
        assert_eq!(out, sb(0x00, b"attach"));
        assert!(events.is_empty());
        // A client code (SET-BAUDRATE 9600) from a server means nothing.
        let (out, events) = feed(&mut c, &sb(0x01, &[0, 0, 0x25, 0x80]));
        assert!(out.is_empty() && events.is_empty());
    }

    #[test]
    fn holds_data_while_binary_is_negotiated_then_sends_it_binary() {
        let mut c = Rfc2217Client::new("t");
        let mut out = Vec::new();
        // Before any negotiation: RFC 854 rules, CR NUL.
        c.encode_data(&[0x41, 0x0D, 0x0A, 0xFF, 0x0D], &mut out);
        assert_eq!(out, [0x41, 0x0D, 0x00, 0x0A, 0xFF, 0xFF, 0x0D, 0x00]);
        c.start(&mut out);
        out.clear();
        c.encode_data(&[0x0D, 0xFF], &mut out);
        assert!(out.is_empty());
        assert_eq!(c.held_data_len(), 2);
        let (out, _) = feed(&mut c, SERVER_START);
        assert_eq!(out, [0xFF, 0xFD, 0x2C, 0x0D, 0xFF, 0xFF]);
        assert_eq!(c.held_data_len(), 0);
        let mut out = Vec::new();
        c.encode_data(&[0x41, 0x0D, 0x0A, 0xFF, 0x0D], &mut out);
        assert_eq!(out, [0x41, 0x0D, 0x0A, 0xFF, 0xFF, 0x0D]);
    }

    #[test]
    fn held_data_gets_cr_nul_when_the_server_refuses_binary() {
        let mut c = Rfc2217Client::new("t");
        let mut out = Vec::new();
        c.start(&mut out);
        out.clear();
        c.encode_data(&[0x0D, 0x41], &mut out);
        assert!(out.is_empty());
        let (out, _) = feed(&mut c, &[0xFF, 0xFE, 0x00]);
        assert_eq!(out, [0x0D, 0x00, 0x41]);
    }

    #[test]
    fn decodes_cr_nul_only_until_the_server_goes_binary() {
        let mut c = Rfc2217Client::new("t");
        let (_, events) = feed(&mut c, &[0x0D, 0x00, 0x41]);
        assert_eq!(events, vec![ClientEvent::Data(vec![0x0D, 0x41])]);
        feed(&mut c, SERVER_START);
        let (_, events) = feed(&mut c, &[0x0D, 0x00, 0xFF, 0xFF]);
        assert_eq!(events, vec![ClientEvent::Data(vec![0x0D, 0x00, 0xFF])]);
    }

    #[test]
    fn slots_group_set_control_values() {
        use ComPortCommand as C;
        assert_eq!(
            slot(&C::SetControl(control::DTR_ON)),
            slot(&C::SetControl(control::DTR_OFF))
        );
        assert_ne!(
            slot(&C::SetControl(control::DTR_ON)),
            slot(&C::SetControl(control::RTS_ON))
        );
        assert_eq!(
            slot(&C::SetControl(control::FLOW_NONE)),
            slot(&C::SetControl(control::FLOW_HARDWARE))
        );
        assert_ne!(slot(&C::SetBaud(1)), slot(&C::SetParity(1)));
        assert_ne!(slot(&C::PurgeData(1)), slot(&C::PurgeData(2)));
    }

    /// Both ends of ttyward, sans IO: the client's bytes go to the server
    /// and back until both fall silent.
    struct Pair {
        client: Rfc2217Client,
        server: Rfc2217Server,
        server_events: Vec<ServerEvent>,
        client_events: Vec<ClientEvent>,
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                client: Rfc2217Client::new("attach"),
                server: Rfc2217Server::new("ttyward"),
                server_events: Vec::new(),
                client_events: Vec::new(),
            }
        }

        /// Deliver `to_server` and `to_client` back and forth until silent;
        /// the server answers every SET with the value asked for.
        fn run(&mut self, mut to_server: Vec<u8>, mut to_client: Vec<u8>) {
            for _ in 0..20 {
                if to_server.is_empty() && to_client.is_empty() {
                    return;
                }
                let mut back = Vec::new();
                let mut events = Vec::new();
                self.server.handle_input(&to_server, &mut back, &mut events);
                for event in &events {
                    if let ServerEvent::Command(cmd) = event {
                        self.server.reply(cmd, &mut back);
                    }
                }
                self.server_events.extend(events);
                to_server.clear();
                back.splice(0..0, to_client.drain(..));
                self.client
                    .handle_input(&back, &mut to_server, &mut self.client_events);
            }
            panic!("the two sides never fell silent");
        }
    }

    #[test]
    fn talks_to_ttyward_s_server() {
        let mut p = Pair::new();
        let mut to_server = Vec::new();
        let mut to_client = Vec::new();
        p.client.start(&mut to_server);
        p.server.start(&mut to_client);
        use ComPortCommand as C;
        for cmd in [
            C::SetBaud(19_200),
            C::SetDataSize(8),
            C::SetParity(parity::EVEN),
            C::SetStopSize(stop_size::ONE),
            C::SetControl(control::FLOW_NONE),
            C::SetControl(control::DTR_ON),
        ] {
            p.client.request(cmd, &mut to_server);
        }
        p.client
            .encode_data(&[0x01, 0xFF, 0x0D, 0x00], &mut to_server);
        p.run(to_server, to_client);
        assert!(p.client.com_port_enabled() && p.server.com_port_enabled());
        let commands: Vec<_> = p
            .server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Command(C::NotifyModemState(_)) => None,
                ServerEvent::Command(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            commands,
            vec![
                C::SetBaud(19_200),
                C::SetDataSize(8),
                C::SetParity(parity::EVEN),
                C::SetStopSize(stop_size::ONE),
                C::SetControl(control::FLOW_NONE),
                C::SetControl(control::DTR_ON),
            ]
        );
        let data: Vec<u8> = p
            .server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, [0x01, 0xFF, 0x0D, 0x00]);
        let confirmed = p
            .client_events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Confirmed(_)))
            .count();
        assert_eq!(confirmed, 6);
    }

    /// Pieces of plausible server traffic mixed with anything.
    fn server_chunk() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..8),
            Just(vec![0xFF, 0xFF]),
            Just(vec![0x0D, 0x00]),
            Just(SERVER_START.to_vec()),
            (100u8..=113, vec(any::<u8>(), 0..5)).prop_map(|(code, v)| sb(code, &v)),
        ]
    }

    fn decode_chunked(input: &[u8], cuts: &[usize]) -> Vec<ClientEvent> {
        let mut c = Rfc2217Client::new("t");
        let (mut out, mut events) = (Vec::new(), Vec::new());
        let mut rest = input;
        for &cut in cuts {
            let (a, b) = rest.split_at(cut.min(rest.len()));
            c.handle_input(a, &mut out, &mut events);
            rest = b;
        }
        c.handle_input(rest, &mut out, &mut events);
        // Merge data split by the chunking.
        let mut merged: Vec<ClientEvent> = Vec::new();
        for e in events {
            if let (Some(ClientEvent::Data(prev)), ClientEvent::Data(next)) =
                (merged.last_mut(), &e)
            {
                prev.extend_from_slice(next);
            } else {
                merged.push(e);
            }
        }
        merged
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(
            chunks in vec(server_chunk(), 0..32),
            cuts in vec(0usize..32, 0..16),
        ) {
            let input: Vec<u8> = chunks.concat();
            prop_assert_eq!(decode_chunked(&input, &[]), decode_chunked(&input, &cuts));
        }

        #[test]
        fn data_round_trips_through_the_server(data in vec(any::<u8>(), 0..256), binary_first in any::<bool>()) {
            let mut p = Pair::new();
            let mut to_server = Vec::new();
            let mut to_client = Vec::new();
            p.client.start(&mut to_server);
            p.server.start(&mut to_client);
            if binary_first {
                p.run(std::mem::take(&mut to_server), std::mem::take(&mut to_client));
            }
            p.client.encode_data(&data, &mut to_server);
            p.run(to_server, to_client);
            let got: Vec<u8> = p.server_events.iter().filter_map(|e| match e {
                ServerEvent::Data(d) => Some(d.clone()),
                _ => None,
            }).flatten().collect();
            prop_assert_eq!(got, data);
        }
    }
}
