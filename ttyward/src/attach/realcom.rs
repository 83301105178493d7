//! One Real COM session of `ttyward attach`: a command connection (ASPP
//! commands, always plain TCP) and a data connection (raw bytes, TLS with
//! `--tls`, spec §10), driven the way Moxa's npreal2 driver drives them
//! (spec §6), with the host-side encoder and reply decoder of
//! [`ttyward_proto::realcom`].
//!
//! | program | command |
//! |---|---|
//! | connect (and every reconnect) | PORT_INIT from the pty's termios, DTR (off while `B0`) and RTS on; SETBAUD when the speed is not in the index table; XONXOFF when `IXON`/`IXOFF`; TX_FIFO 16; SETXOFF if the program's output is stopped |
//! | speed, character format, flow control | PORT_INIT again, with SETBAUD / XONXOFF as needed (§6.2) |
//! | `B0` / a speed again | LINECTRL with DTR off / on |
//! | `tcflush` | FLUSH 2 (both buffers), as npreal2 always sends |
//! | `tcflow(TCOOFF/TCOON)` | SETXOFF / SETXON |
//!
//! The server's POLL is answered with ALIVE at once; NOTIFY (the remote
//! modem inputs) is logged, since a pty has no modem lines to show it on.
//! Each PORT_INIT reply prints a `{"event":"settings","confirmation":"ack"}`
//! line with what that PORT_INIT set. Commands are sent without waiting for
//! each reply, as npreal2's session recovery does (§6.7).

use std::collections::VecDeque;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use ttyward_proto::realcom::{
    self, Flow, FlushMode, HostEvent, LineMode, Reply, ReplyDecoder, Request, WireParity,
};
use ttyward_serial::host_pty::PtyEvent;
use ttyward_serial::{FlowControl, FlushDirection, Parity, SerialSettings, StopBits};

use super::{
    BoxConn, End, Local, Outgoing, QUEUE_LIMIT, READ_SIZE, Report, Stop, pty_failure, write_some,
};
use crate::serve::Failure;

/// What npreal2 sends in TX_FIFO for a 16550 (§4.4).
const TX_FIFO: u8 = 16;

pub(super) async fn session(
    command: TcpStream,
    data: BoxConn,
    local: &mut Local,
    report: &Report,
    stop: &mut Stop,
) -> Result<End, Failure> {
    let (mut cmd_rd, cmd_wr) = command.into_split();
    let (mut data_rd, data_wr) = tokio::io::split(data);
    let mut cmd = Outgoing::new(cmd_wr);
    let mut out = Outgoing::new(data_wr);
    let mut replies = ReplyDecoder::new();
    let mut line = Line {
        settings: local.pty.settings().clone(),
        dtr: local.pty.dtr(),
        rts: true,
    };
    // Settings each outstanding PORT_INIT set, oldest first.
    let mut port_inits: VecDeque<(SerialSettings, bool)> = VecDeque::new();
    port_init(&line, local.pty.flow_chars(), &mut cmd.buf);
    port_inits.push_back((line.settings.clone(), line.dtr));
    Request::TxFifo(TX_FIFO).encode(&mut cmd.buf);
    if local.held {
        Request::SetXoff.encode(&mut cmd.buf);
    }
    let mut cmd_buf = vec![0u8; 256];
    let mut rbuf = vec![0u8; READ_SIZE];
    let mut events = Vec::new();
    loop {
        tokio::select! {
            _ = &mut *stop => return Ok(End::Stopped),
            event = local.pty.next_event(), if !out.full() && !cmd.full() => {
                match event.map_err(pty_failure)? {
                    PtyEvent::Data(d) => out.buf.extend_from_slice(&d),
                    PtyEvent::Settings(s) => {
                        line.settings = s;
                        port_init(&line, local.pty.flow_chars(), &mut cmd.buf);
                        port_inits.push_back((line.settings.clone(), line.dtr));
                    }
                    PtyEvent::Dtr(on) => {
                        line.dtr = on;
                        Request::LineCtrl { dtr: line.dtr, rts: line.rts }.encode(&mut cmd.buf);
                    }
                    PtyEvent::Flush(dir) => {
                        if dir != FlushDirection::Output {
                            local.to_pty.clear();
                        }
                        Request::Flush(FlushMode::Both).encode(&mut cmd.buf);
                    }
                    PtyEvent::Stop => {
                        local.held = true;
                        Request::SetXoff.encode(&mut cmd.buf);
                    }
                    PtyEvent::Start => {
                        local.held = false;
                        Request::SetXon.encode(&mut cmd.buf);
                    }
                }
            }
            n = cmd_rd.read(&mut cmd_buf) => {
                let n = match n {
                    Ok(0) => return Ok(End::Lost("the server closed the command connection".into())),
                    Ok(n) => n,
                    Err(e) => return Ok(End::Lost(format!("reading the command connection: {e}"))),
                };
                events.clear();
                replies.push(cmd_buf.get(..n).unwrap_or_default(), &mut events);
                for event in events.drain(..) {
                    match event {
                        HostEvent::Reply(Reply::Poll { id }) => {
                            Request::Alive { id }.encode(&mut cmd.buf);
                        }
                        HostEvent::Reply(Reply::PortInit { dsr, cts, dcd }) => {
                            tracing::debug!("remote inputs: DSR {dsr}, CTS {cts}, DCD {dcd}");
                            if let Some((s, dtr)) = port_inits.pop_front() {
                                report.settings(&s, dtr, "ack");
                            }
                        }
                        HostEvent::Reply(Reply::Refused(code)) => {
                            tracing::warn!("the remote port refused {code} (baud rate {})", line.settings.baud);
                        }
                        HostEvent::Reply(Reply::Notify { events, msr, .. }) => {
                            tracing::debug!("remote NOTIFY: events {events:#04x}, MSR {msr:#04x}");
                        }
                        HostEvent::Reply(_) => {}
                        HostEvent::Unknown(code) => {
                            tracing::warn!("the server sent {code}, which a Real COM host does not expect; the rest of that read was dropped");
                        }
                    }
                }
            }
            n = data_rd.read(&mut rbuf), if local.to_pty.len() < QUEUE_LIMIT => {
                match n {
                    Ok(0) => return Ok(End::Lost("the server closed the data connection".into())),
                    Ok(n) => local.to_pty.extend_from_slice(rbuf.get(..n).unwrap_or_default()),
                    Err(e) => return Ok(End::Lost(format!("reading the data connection: {e}"))),
                }
            }
            r = cmd.progress(), if cmd.busy() => {
                if let Err(e) = r {
                    return Ok(End::Lost(format!("writing the command connection: {e}")));
                }
            }
            r = out.progress(), if out.busy() => {
                if let Err(e) = r {
                    return Ok(End::Lost(format!("writing the data connection: {e}")));
                }
            }
            r = write_some(&local.writer, &mut local.to_pty), if !local.to_pty.is_empty() => {
                r.map_err(pty_failure)?
            }
        }
    }
}

/// What PORT_INIT carries besides the flow characters.
struct Line {
    settings: SerialSettings,
    dtr: bool,
    rts: bool,
}

/// PORT_INIT, then SETBAUD when the speed has no index, then XONXOFF when
/// software flow control is on (§6.1, §6.2).
fn port_init(line: &Line, (xon, xoff): (u8, u8), out: &mut Vec<u8>) {
    let s = &line.settings;
    let baud_index = realcom::index_for_baud(s.baud.get());
    let soft = s.flow == FlowControl::XonXoff;
    let hard = s.flow == FlowControl::RtsCts;
    Request::PortInit {
        baud_index,
        mode: LineMode {
            data_bits: s.data_bits.bits(),
            two_stop_bits: s.stop_bits != StopBits::One,
            parity: match s.parity {
                Parity::None => WireParity::None,
                Parity::Even => WireParity::Even,
                Parity::Odd => WireParity::Odd,
                Parity::Mark => WireParity::Mark,
                Parity::Space => WireParity::Space,
            },
        },
        dtr: line.dtr,
        rts: line.rts,
        flow: Flow {
            cts_out: hard,
            rts_in: hard,
            ixon: soft,
            ixoff: soft,
        },
    }
    .encode(out);
    if baud_index == realcom::BAUD_NOT_IN_TABLE {
        Request::SetBaud(s.baud.get()).encode(out);
    }
    if soft {
        Request::XonXoff { xon, xoff }.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ttyward_serial::{BaudRate, DataBits};

    fn line(baud: u32, parity: Parity, flow: FlowControl) -> Line {
        Line {
            settings: SerialSettings {
                baud: BaudRate::new(baud).unwrap(),
                data_bits: DataBits::Eight,
                parity,
                stop_bits: StopBits::One,
                flow,
                ..SerialSettings::default()
            },
            dtr: true,
            rts: true,
        }
    }

    #[test]
    fn port_init_for_19200_8e1_golden() {
        let mut out = Vec::new();
        port_init(
            &line(19_200, Parity::Even, FlowControl::None),
            (0x11, 0x13),
            &mut out,
        );
        // Index 7 = 19200; mode 0x03 (8 bits) | 0x08 (even).
        assert_eq!(out, [0x2C, 0x08, 0x07, 0x0B, 1, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn custom_baud_adds_setbaud_and_xon_xoff_adds_the_characters() {
        let mut out = Vec::new();
        port_init(
            &line(250_000, Parity::None, FlowControl::XonXoff),
            (0x11, 0x13),
            &mut out,
        );
        assert_eq!(
            out,
            [
                0x2C, 0x08, 0xFF, 0x03, 1, 1, 0, 0, 1, 1, // PORT_INIT
                0x17, 0x04, 0x90, 0xD0, 0x03, 0x00, // SETBAUD 250000 LE
                0x18, 0x02, 0x11, 0x13, // XONXOFF
            ]
        );
    }
}
