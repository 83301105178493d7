//! RFC 2217 mode: a telnet server with the COM-PORT-OPTION. The protocol
//! state machine is `ttyward_proto::rfc2217` (no IO); this module wires it
//! to a socket and the port actor: SET requests become [`Control`]s and are
//! answered with the value actually in force afterwards (RFC 2217 §3: the
//! server replies with what it set, so a client learns when a request was
//! not honoured). A device without modem lines (a pty) still answers every
//! request with the state it has — pyserial waits for those answers.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_util::sync::CancellationToken;
use ttyward_proto::rfc2217::{ComPortCommand, Rfc2217Server, ServerEvent};
use ttyward_serial::{
    BaudRate, DataBits, FlowControl, FlushDirection, Parity, SerialSettings, StopBits,
};

use crate::net::{Conn, NET_READ};
use crate::port::{Control, PortSnapshot, SerialChange, Session};

/// How long a telnet BREAK command holds the line in break.
const TELNET_BREAK: std::time::Duration = std::time::Duration::from_millis(250);

/// Serve one RFC 2217 client until it leaves; returns why, in words.
pub(crate) async fn serve(conn: Conn, session: &Session, cancel: &CancellationToken) -> String {
    match conn {
        Conn::Plain(mut s) => {
            let (rd, wr) = s.split();
            serve_halves(rd, wr, session, cancel).await
        }
        Conn::Tls(tls) => {
            let (rd, wr) = tokio::io::split(*tls);
            serve_halves(rd, wr, session, cancel).await
        }
    }
}

async fn serve_halves<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut rd: R,
    mut wr: W,
    session: &Session,
    cancel: &CancellationToken,
) -> String {
    let signature = format!(
        "ttyward {} port {}",
        env!("CARGO_PKG_VERSION"),
        session.port().number()
    );
    let mut server = Rfc2217Server::new(&signature);
    let mut out = Vec::with_capacity(256);
    server.start(&mut out);
    let mut modem = session.port().watch_modem();
    let mut rbuf = BytesMut::with_capacity(NET_READ);
    let mut events = Vec::new();
    let mut chunks: Vec<Bytes> = Vec::new();
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        if !out.is_empty() {
            let mut pending = vec![Bytes::from(std::mem::take(&mut out))];
            if let Err(why) = session.write_out(&mut wr, &mut pending).await {
                return why;
            }
        }
        tokio::select! {
            _ = &mut cancelled => return "port stopped".into(),
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) => return "closed by peer".into(),
                Ok(n) => {
                    server.handle_input(&rbuf[..n], &mut out, &mut events);
                    rbuf.clear();
                    for event in events.drain(..) {
                        if let Err(why) = handle_event(&mut server, session, event, &mut out).await {
                            return why;
                        }
                    }
                }
                Err(e) => return format!("read error: {e}"),
            },
            r = session.recv(&mut chunks), if !server.output_suspended() => match r {
                Ok(()) => {
                    for chunk in chunks.drain(..) {
                        server.encode_data(&chunk, &mut out);
                    }
                }
                Err(reason) => return reason.to_string(),
            },
            r = modem.changed() => {
                if r.is_ok() {
                    let bits = modem.borrow_and_update().rfc2217_bits();
                    server.modem_state_update(bits, &mut out);
                }
            }
        }
    }
}

async fn handle_event(
    server: &mut Rfc2217Server,
    session: &Session,
    event: ServerEvent,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match event {
        ServerEvent::Data(data) => session
            .send(Bytes::from(data))
            .await
            .map_err(|e| e.to_string()),
        ServerEvent::Break => {
            // Best effort: a device that cannot break is not a reason to drop the client.
            let _ = session.control(Control::Break(true)).await;
            tokio::time::sleep(TELNET_BREAK).await;
            let _ = session.control(Control::Break(false)).await;
            Ok(())
        }
        ServerEvent::Command(cmd) => {
            if let Some(reply) = answer(session, &cmd).await {
                server.reply(&reply, out);
            }
            Ok(())
        }
    }
}

/// Carry out one COM-PORT command and say what to answer (None: no answer).
async fn answer(session: &Session, cmd: &ComPortCommand) -> Option<ComPortCommand> {
    use ComPortCommand as C;
    let control = match *cmd {
        C::SetBaud(0) | C::SetDataSize(0) | C::SetParity(0) | C::SetStopSize(0) => Control::Query,
        C::SetBaud(b) => match BaudRate::new(b) {
            Ok(baud) => Control::Serial(SerialChange {
                baud: Some(baud),
                ..Default::default()
            }),
            Err(_) => Control::Query,
        },
        C::SetDataSize(n) => match DataBits::try_from(n) {
            Ok(bits) => Control::Serial(SerialChange {
                data_bits: Some(bits),
                ..Default::default()
            }),
            Err(_) => Control::Query,
        },
        C::SetParity(p) => match parity_from_wire(p) {
            Some(parity) => Control::Serial(SerialChange {
                parity: Some(parity),
                ..Default::default()
            }),
            None => Control::Query,
        },
        C::SetStopSize(s) => match stop_from_wire(s) {
            Some(stop) => Control::Serial(SerialChange {
                stop_bits: Some(stop),
                ..Default::default()
            }),
            None => Control::Query,
        },
        C::SetControl(v) => control_from_wire(v),
        C::PurgeData(1) => Control::Purge(FlushDirection::Input),
        C::PurgeData(2) => Control::Purge(FlushDirection::Output),
        C::PurgeData(3) => Control::Purge(FlushDirection::Both),
        C::NotifyLineState(_) | C::NotifyModemState(_) | C::PurgeData(_) => Control::Query,
        _ => return None,
    };
    // A refused setting is answered with the value still in force.
    let snap = match session.control(control).await {
        Ok(s) => s,
        Err(_) => session.control(Control::Query).await.ok()?,
    };
    Some(match *cmd {
        C::SetBaud(_) => C::SetBaud(snap.settings.baud.get()),
        C::SetDataSize(_) => C::SetDataSize(snap.settings.data_bits.bits()),
        C::SetParity(_) => C::SetParity(parity_to_wire(snap.settings.parity)),
        C::SetStopSize(_) => C::SetStopSize(stop_to_wire(snap.settings.stop_bits)),
        C::SetControl(v) => C::SetControl(control_reply(v, &snap)),
        C::NotifyLineState(_) => C::NotifyLineState(0),
        C::NotifyModemState(_) => C::NotifyModemState(snap.modem.rfc2217_bits()),
        C::PurgeData(v) => C::PurgeData(v),
        _ => return None,
    })
}

fn parity_from_wire(v: u8) -> Option<Parity> {
    Some(match v {
        1 => Parity::None,
        2 => Parity::Odd,
        3 => Parity::Even,
        4 => Parity::Mark,
        5 => Parity::Space,
        _ => return None,
    })
}

fn parity_to_wire(p: Parity) -> u8 {
    match p {
        Parity::None => 1,
        Parity::Odd => 2,
        Parity::Even => 3,
        Parity::Mark => 4,
        Parity::Space => 5,
    }
}

fn stop_from_wire(v: u8) -> Option<StopBits> {
    Some(match v {
        1 => StopBits::One,
        2 => StopBits::Two,
        3 => StopBits::OnePointFive,
        _ => return None,
    })
}

fn stop_to_wire(s: StopBits) -> u8 {
    match s {
        StopBits::One => 1,
        StopBits::Two => 2,
        StopBits::OnePointFive => 3,
    }
}

fn flow_change(flow: FlowControl) -> Control {
    Control::Serial(SerialChange {
        flow: Some(flow),
        ..Default::default()
    })
}

fn control_from_wire(v: u8) -> Control {
    match v {
        1 | 14 => flow_change(FlowControl::None),
        2 | 15 => flow_change(FlowControl::XonXoff),
        3 | 16 => flow_change(FlowControl::RtsCts),
        18 | 19 => flow_change(FlowControl::DtrDsr),
        5 => Control::Break(true),
        6 => Control::Break(false),
        8 => Control::Dtr(true),
        9 => Control::Dtr(false),
        11 => Control::Rts(true),
        12 => Control::Rts(false),
        _ => Control::Query,
    }
}

/// The SET-CONTROL answer: the state of the thing the request was about.
fn control_reply(request: u8, snap: &PortSnapshot) -> u8 {
    let s: &SerialSettings = &snap.settings;
    match request {
        0..=3 | 17..=19 => match s.flow {
            FlowControl::None => 1,
            FlowControl::XonXoff => 2,
            FlowControl::RtsCts => 3,
            FlowControl::DtrDsr => 19,
        },
        13..=16 => match s.flow {
            FlowControl::None => 14,
            FlowControl::XonXoff => 15,
            FlowControl::RtsCts => 16,
            FlowControl::DtrDsr => 18,
        },
        4..=6 => {
            if snap.break_on {
                5
            } else {
                6
            }
        }
        7..=9 => {
            if snap.modem.dtr {
                8
            } else {
                9
            }
        }
        10..=12 => {
            if snap.modem.rts {
                11
            } else {
                12
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for v in 1..=5 {
            assert_eq!(parity_to_wire(parity_from_wire(v).expect("valid")), v);
        }
        for v in 1..=3 {
            assert_eq!(stop_to_wire(stop_from_wire(v).expect("valid")), v);
        }
        assert_eq!(parity_from_wire(6), None);
    }

    #[test]
    fn set_control_answers_the_state_asked_about() {
        let mut snap = PortSnapshot {
            settings: SerialSettings::default(),
            modem: Default::default(),
            break_on: false,
            input_queued: 0,
            output_queued: 0,
        };
        snap.modem.dtr = true;
        assert_eq!(control_reply(8, &snap), 8);
        assert_eq!(control_reply(7, &snap), 8);
        assert_eq!(control_reply(11, &snap), 12, "RTS is off");
        assert_eq!(control_reply(0, &snap), 1, "no flow control");
        assert_eq!(control_reply(13, &snap), 14);
    }
}
