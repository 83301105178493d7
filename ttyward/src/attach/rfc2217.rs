//! One RFC 2217 session of `ttyward attach`: the pty's events become
//! COM-PORT-OPTION requests through the sans-IO
//! [`ttyward_proto::rfc2217_client::Rfc2217Client`].
//!
//! | program | request |
//! |---|---|
//! | connect (and every reconnect) | SET-BAUDRATE, SET-DATASIZE, SET-PARITY, SET-STOPSIZE, SET-CONTROL flow, DTR (off while `B0`), RTS on |
//! | speed, character format, flow control | the SET-* that changed |
//! | `B0` / a speed again | SET-CONTROL DTR off / on |
//! | `tcflush` | PURGE-DATA: input → receive buffer (1), output → transmit buffer (2), both (3) |
//! | `tcflow(TCOOFF/TCOON)` | nothing: RFC 2217 has no "hold the output" request, and the pty already holds the program's output |
//!
//! The server answers every SET with the value in effect; once all five
//! line settings are known, and whenever they change, a
//! `{"event":"settings","confirmation":"echo",...}` line is printed. A
//! FLOWCONTROL-SUSPEND from the server stops reading the program until the
//! RESUME.

use ttyward_proto::rfc2217::{ComPortCommand, control, parity, purge, stop_size};
use ttyward_proto::rfc2217_client::{ClientEvent, Rfc2217Client};
use ttyward_serial::host_pty::PtyEvent;
use ttyward_serial::{
    BaudRate, DataBits, FlowControl, FlushDirection, Parity, SerialSettings, StopBits,
};

use super::{
    BoxConn, End, Local, Outgoing, QUEUE_LIMIT, READ_SIZE, Report, Stop, pty_failure, write_some,
};
use crate::serve::Failure;
use tokio::io::AsyncReadExt;

/// What we answer a server's SIGNATURE query with.
const SIGNATURE: &str = concat!("ttyward attach ", env!("CARGO_PKG_VERSION"));

pub(super) async fn session(
    conn: BoxConn,
    local: &mut Local,
    report: &Report,
    stop: &mut Stop,
) -> Result<End, Failure> {
    let (mut rd, wr) = tokio::io::split(conn);
    let mut out = Outgoing::new(wr);
    let mut client = Rfc2217Client::new(SIGNATURE);
    client.start(&mut out.buf);
    let mut sent = local.pty.settings().clone();
    let dtr = local.pty.dtr();
    send_settings(&mut client, &sent, None, &mut out.buf);
    client.request(ComPortCommand::SetControl(dtr_value(dtr)), &mut out.buf);
    client.request(ComPortCommand::SetControl(control::RTS_ON), &mut out.buf);
    let mut remote = Confirmed::default();
    let mut printed: Option<(SerialSettings, bool)> = None;
    let mut rbuf = vec![0u8; READ_SIZE];
    let mut events = Vec::new();
    loop {
        let take_pty = !out.full() && client.held_data_len() < QUEUE_LIMIT && !client.suspended();
        tokio::select! {
            _ = &mut *stop => return Ok(End::Stopped),
            event = local.pty.next_event(), if take_pty => {
                match event.map_err(pty_failure)? {
                    PtyEvent::Data(d) => client.encode_data(&d, &mut out.buf),
                    PtyEvent::Settings(s) => {
                        send_settings(&mut client, &s, Some(&sent), &mut out.buf);
                        sent = s;
                    }
                    PtyEvent::Dtr(on) => {
                        client.request(ComPortCommand::SetControl(dtr_value(on)), &mut out.buf);
                    }
                    PtyEvent::Flush(dir) => {
                        let which = match dir {
                            FlushDirection::Input => purge::RX,
                            FlushDirection::Output => purge::TX,
                            FlushDirection::Both => purge::BOTH,
                        };
                        if dir != FlushDirection::Output {
                            local.to_pty.clear();
                        }
                        client.request(ComPortCommand::PurgeData(which), &mut out.buf);
                    }
                    PtyEvent::Stop => local.held = true,
                    PtyEvent::Start => local.held = false,
                }
            }
            n = rd.read(&mut rbuf), if local.to_pty.len() < QUEUE_LIMIT => {
                let n = match n {
                    Ok(0) => return Ok(End::Lost("the server closed the connection".into())),
                    Ok(n) => n,
                    Err(e) => return Ok(End::Lost(format!("reading from the server: {e}"))),
                };
                events.clear();
                client.handle_input(rbuf.get(..n).unwrap_or_default(), &mut out.buf, &mut events);
                for event in events.drain(..) {
                    match event {
                        ClientEvent::Data(d) => local.to_pty.extend_from_slice(&d),
                        ClientEvent::Confirmed(cmd) => remote.update(&cmd),
                        ClientEvent::ModemState(v) => tracing::debug!("remote modem state {v:#04x}"),
                        ClientEvent::LineState(v) => tracing::debug!("remote line state {v:#04x}"),
                        ClientEvent::Suspend => tracing::debug!("the server suspends our data"),
                        ClientEvent::Resume => tracing::debug!("the server takes data again"),
                        ClientEvent::Signature(s) => {
                            tracing::info!("server: {}", String::from_utf8_lossy(&s));
                        }
                        ClientEvent::ComPortReady => tracing::debug!("COM-PORT-OPTION agreed"),
                    }
                }
                if let Some(now) = remote.settings()
                    && printed.as_ref() != Some(&now)
                {
                    report.settings(&now.0, now.1, "echo");
                    printed = Some(now);
                }
            }
            r = out.progress(), if out.busy() => {
                if let Err(e) = r {
                    return Ok(End::Lost(format!("writing to the server: {e}")));
                }
            }
            r = write_some(&local.writer, &mut local.to_pty), if !local.to_pty.is_empty() => {
                r.map_err(pty_failure)?
            }
        }
    }
}

fn dtr_value(on: bool) -> u8 {
    if on {
        control::DTR_ON
    } else {
        control::DTR_OFF
    }
}

/// The SET-* for what differs from `before` (everything without it).
fn send_settings(
    client: &mut Rfc2217Client,
    s: &SerialSettings,
    before: Option<&SerialSettings>,
    out: &mut Vec<u8>,
) {
    let changed = |f: fn(&SerialSettings) -> u32| before.is_none_or(|b| f(b) != f(s));
    use ComPortCommand as C;
    if changed(|s| s.baud.get()) {
        client.request(C::SetBaud(s.baud.get()), out);
    }
    if changed(|s| s.data_bits.bits().into()) {
        client.request(C::SetDataSize(s.data_bits.bits()), out);
    }
    if changed(|s| parity_to_wire(s.parity).into()) {
        client.request(C::SetParity(parity_to_wire(s.parity)), out);
    }
    if changed(|s| stop_to_wire(s.stop_bits).into()) {
        client.request(C::SetStopSize(stop_to_wire(s.stop_bits)), out);
    }
    if changed(|s| flow_to_wire(s.flow).into()) {
        client.request(C::SetControl(flow_to_wire(s.flow)), out);
    }
}

fn parity_to_wire(p: Parity) -> u8 {
    match p {
        Parity::None => parity::NONE,
        Parity::Odd => parity::ODD,
        Parity::Even => parity::EVEN,
        Parity::Mark => parity::MARK,
        Parity::Space => parity::SPACE,
    }
}

fn stop_to_wire(s: StopBits) -> u8 {
    match s {
        StopBits::One => stop_size::ONE,
        StopBits::Two => stop_size::TWO,
        StopBits::OnePointFive => stop_size::ONE_AND_HALF,
    }
}

fn flow_to_wire(f: FlowControl) -> u8 {
    match f {
        FlowControl::None => control::FLOW_NONE,
        FlowControl::XonXoff => control::FLOW_XON_XOFF,
        FlowControl::RtsCts => control::FLOW_HARDWARE,
        FlowControl::DtrDsr => control::FLOW_DSR,
    }
}

/// The remote port's settings as the server last confirmed them.
#[derive(Default)]
struct Confirmed {
    baud: Option<BaudRate>,
    data_bits: Option<DataBits>,
    parity: Option<Parity>,
    stop_bits: Option<StopBits>,
    flow: Option<FlowControl>,
    dtr: Option<bool>,
}

impl Confirmed {
    fn update(&mut self, cmd: &ComPortCommand) {
        use ComPortCommand as C;
        match *cmd {
            C::SetBaud(b) => self.baud = BaudRate::new(b).ok().or(self.baud),
            C::SetDataSize(n) => self.data_bits = DataBits::try_from(n).ok().or(self.data_bits),
            C::SetParity(p) => {
                self.parity = match p {
                    parity::NONE => Some(Parity::None),
                    parity::ODD => Some(Parity::Odd),
                    parity::EVEN => Some(Parity::Even),
                    parity::MARK => Some(Parity::Mark),
                    parity::SPACE => Some(Parity::Space),
                    _ => self.parity,
                }
            }
            C::SetStopSize(v) => {
                self.stop_bits = match v {
                    stop_size::ONE => Some(StopBits::One),
                    stop_size::TWO => Some(StopBits::Two),
                    stop_size::ONE_AND_HALF => Some(StopBits::OnePointFive),
                    _ => self.stop_bits,
                }
            }
            C::SetControl(v) => match v {
                control::FLOW_NONE => self.flow = Some(FlowControl::None),
                control::FLOW_XON_XOFF => self.flow = Some(FlowControl::XonXoff),
                control::FLOW_HARDWARE => self.flow = Some(FlowControl::RtsCts),
                control::FLOW_DSR => self.flow = Some(FlowControl::DtrDsr),
                control::DTR_ON => self.dtr = Some(true),
                control::DTR_OFF => self.dtr = Some(false),
                _ => {}
            },
            _ => {}
        }
    }

    /// All line settings, once each has been confirmed.
    fn settings(&self) -> Option<(SerialSettings, bool)> {
        Some((
            SerialSettings {
                baud: self.baud?,
                data_bits: self.data_bits?,
                parity: self.parity?,
                stop_bits: self.stop_bits?,
                flow: self.flow?,
                ..SerialSettings::default()
            },
            self.dtr?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_only_what_changed() {
        let mut client = Rfc2217Client::new("t");
        let before = SerialSettings::default();
        let after = SerialSettings {
            baud: BaudRate::new(19_200).unwrap_or_default(),
            parity: Parity::Even,
            ..SerialSettings::default()
        };
        // Not yet agreed: the requests are held, which shows them.
        let mut out = Vec::new();
        send_settings(&mut client, &after, Some(&before), &mut out);
        assert_eq!(
            client.held(),
            [
                ComPortCommand::SetBaud(19_200),
                ComPortCommand::SetParity(parity::EVEN)
            ]
        );
        let mut client = Rfc2217Client::new("t");
        send_settings(&mut client, &after, None, &mut out);
        assert_eq!(client.held().len(), 5);
    }

    #[test]
    fn confirmed_settings_need_every_field() {
        let mut c = Confirmed::default();
        use ComPortCommand as C;
        for cmd in [
            C::SetBaud(19_200),
            C::SetDataSize(8),
            C::SetParity(parity::EVEN),
            C::SetStopSize(stop_size::ONE),
            C::SetControl(control::FLOW_NONE),
        ] {
            assert!(c.settings().is_none());
            c.update(&cmd);
        }
        assert!(c.settings().is_none());
        c.update(&C::SetControl(control::DTR_ON));
        let (s, dtr) = c.settings().unwrap_or_default();
        assert_eq!(s.to_string(), "19200 8E1, flow none, rs232");
        assert!(dtr);
    }
}
