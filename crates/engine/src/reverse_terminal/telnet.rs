//! Reverse Telnet: a telnet server (RFC 854) in front of a port's serial
//! console, with a login prompt.
//!
//! We offer WILL ECHO and WILL SGA, which puts common clients into
//! character-at-a-time mode: we echo the account name while it is typed,
//! not the password, and after login the device's own echo shows what is
//! typed (as on a serial terminal). Other options are refused, except
//! BINARY when the client asks for it. Three failed logins end the
//! connection; each failure counts toward the lockout (the authenticator's
//! business). On the console, data goes both ways with IAC escaped, a
//! telnet BREAK becomes a line break on the serial side, and `map_crlf`
//! applies to what is typed.
//!
//! Telnet sends the password in clear: this mode exists for the NPort's
//! sake and for trusted networks; reverse SSH is the one to use.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;
use ttyward_core::service::Interface;
use ttyward_proto::telnet::{
    BRK, OptionTable, Side, TelnetDecoder, TelnetEvent, TelnetOption, escape_iac,
};

use super::{
    CR_HOLD, Connection, Console, CrLfMap, HALF_CLOSE_LINGER, Identity, LOGIN_GRACE, crlf_text,
};
use crate::net::NET_READ;
use crate::port::Control;

/// Logins tried per connection.
const MAX_TRIES: u32 = 3;
/// Longest account name or password taken at the prompt (bytes).
const MAX_FIELD: usize = 256;
/// How long a telnet BREAK holds the serial line in break.
const TELNET_BREAK: Duration = Duration::from_millis(250);
/// Stands for "never" in timers that are off.
const FAR: Duration = Duration::from_secs(86_400 * 365);

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0x00;
const BS: u8 = 0x08;
const DEL: u8 = 0x7F;
const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;

/// Serve one reverse telnet connection until it ends.
pub(super) async fn serve(stream: TcpStream, mut conn: Connection) {
    let mut t = Telnet::new(stream);
    let message = conn.authenticator().login_message();
    if !message.is_empty() {
        t.text(&crlf_text(&message));
        t.text("\r\n");
    }
    let cancel = conn.shared.cancel.clone();
    let identity = tokio::select! {
        _ = cancel.cancelled() => return,
        r = tokio::time::timeout(LOGIN_GRACE, login(&mut t, &conn)) => match r {
            Ok(Ok(Some(identity))) => identity,
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => {
                t.text("\r\nlogin timed out\r\n");
                t.flush_briefly().await;
                return;
            }
        },
    };
    match conn.admit(&identity).await {
        Ok(console) => {
            let _active = crate::ActiveConnection::new(conn.shared.port.counters());
            let reason = run_console(&mut t, &conn, &console, &identity).await;
            conn.closed(reason);
        }
        Err(refusal) => {
            t.text(&format!("\r\n{refusal}\r\n"));
            t.flush_briefly().await;
        }
    }
    conn.authenticator().logout(&identity, conn.peer).await;
}

/// Prompt for a name and password until the authenticator accepts them
/// (`Some`), the peer leaves or [`MAX_TRIES`] failed (`None`).
async fn login(t: &mut Telnet, conn: &Connection) -> io::Result<Option<Identity>> {
    let mut failures = 0;
    while failures < MAX_TRIES {
        t.text("login: ");
        t.flush().await?;
        let Some(name) = t.read_line(true).await? else {
            return Ok(None);
        };
        let name = String::from_utf8_lossy(&name).trim().to_owned();
        if name.is_empty() {
            continue;
        }
        t.text("Password: ");
        t.flush().await?;
        let Some(password) = t.read_line(false).await? else {
            return Ok(None);
        };
        let password = String::from_utf8_lossy(&password).into_owned();
        match conn
            .authenticator()
            .password(&name, &password, conn.peer, Interface::Telnet)
            .await
        {
            Ok(identity) => return Ok(Some(identity)),
            Err(denied) => {
                failures += 1;
                t.text(&format!("\r\n{}\r\n\r\n", crlf_text(&denied.message)));
            }
        }
    }
    t.text("too many failed logins\r\n");
    t.flush().await?;
    Ok(None)
}

/// Forward between the telnet peer and the console until one side ends;
/// returns why, in words.
async fn run_console(
    t: &mut Telnet,
    conn: &Connection,
    console: &Console,
    identity: &Identity,
) -> String {
    let session = &console.session;
    let params = &conn.shared.params;
    let mut map = CrLfMap::new(params.map_crlf);
    // What was typed ahead during the login goes to the device, as on a
    // terminal (the LF of the password's CR LF excepted).
    let mut ahead: Vec<u8> = t.typed.drain(..).collect();
    if std::mem::take(&mut t.after_cr) && matches!(ahead.first(), Some(&(LF | NUL))) {
        ahead.remove(0);
    }
    let mut to_device = Vec::new();
    map.map(&ahead, &mut to_device);
    map.flush(&mut to_device);
    if let Err(why) = send(session, &mut to_device).await {
        return why;
    }
    let inactivity = params.inactivity;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut peer_done = false;
    let idle = tokio::time::sleep(inactivity.unwrap_or(FAR));
    let hold = tokio::time::sleep(FAR);
    let linger = tokio::time::sleep(FAR);
    let ended = conn.authenticator().ended(identity);
    let cancelled = conn.shared.cancel.cancelled();
    tokio::pin!(idle, hold, linger, ended, cancelled);
    loop {
        if !t.out.is_empty() {
            let mut pending = vec![Bytes::from(std::mem::take(&mut t.out))];
            if let Err(why) = session.write_out(&mut t.wr, &mut pending).await {
                return why;
            }
        }
        let mut moved = false;
        tokio::select! {
            _ = &mut cancelled => return "port stopped".into(),
            why = &mut ended => {
                let mut bye = vec![Bytes::from(format!("\r\n{why}\r\n"))];
                let _ = session.write_out(&mut t.wr, &mut bye).await;
                return why;
            }
            r = t.rd.read_buf(&mut t.rbuf), if !peer_done => match r {
                Ok(0) => {
                    peer_done = true;
                    linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                }
                Ok(_) => {
                    moved = true;
                    for event in t.decode() {
                        match event {
                            TelnetEvent::Data(data) => map.map(&data, &mut to_device),
                            TelnetEvent::Command(BRK) => {
                                if let Err(why) = send(session, &mut to_device).await {
                                    return why;
                                }
                                // Best effort: a device that cannot break is
                                // no reason to drop the person.
                                let _ = session.control(Control::Break(true)).await;
                                tokio::time::sleep(TELNET_BREAK).await;
                                let _ = session.control(Control::Break(false)).await;
                            }
                            _ => {}
                        }
                    }
                    if let Err(why) = send(session, &mut to_device).await {
                        return why;
                    }
                    if map.holding() {
                        hold.as_mut().reset(Instant::now() + CR_HOLD);
                    }
                }
                Err(e) => return format!("read error: {e}"),
            },
            _ = &mut hold, if map.holding() => {
                map.flush(&mut to_device);
                if let Err(why) = send(session, &mut to_device).await {
                    return why;
                }
            }
            r = session.recv(&mut chunks) => match r {
                Ok(()) => {
                    moved = true;
                    let mut escaped = Vec::new();
                    for chunk in chunks.drain(..) {
                        escape_iac(&chunk, &mut escaped);
                    }
                    let mut pending = vec![Bytes::from(escaped)];
                    if let Err(why) = session.write_out(&mut t.wr, &mut pending).await {
                        return why;
                    }
                    if peer_done {
                        linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                    }
                }
                Err(reason) => return reason.to_string(),
            },
            _ = &mut idle, if inactivity.is_some() => return "inactivity timeout".into(),
            _ = &mut linger, if peer_done => return "closed by peer".into(),
        }
        if let (true, Some(d)) = (moved, inactivity) {
            idle.as_mut().reset(Instant::now() + d);
        }
    }
}

/// Send what the person typed to the device.
async fn send(session: &crate::port::Session, data: &mut Vec<u8>) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    session
        .send(Bytes::from(std::mem::take(data)))
        .await
        .map_err(|e| e.to_string())
}

/// The telnet side of a connection: socket halves, decoder, options.
struct Telnet {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    decoder: TelnetDecoder,
    options: OptionTable,
    rbuf: BytesMut,
    /// Decoded data the login prompt has not used yet.
    typed: VecDeque<u8>,
    /// Bytes to send (negotiation, prompts, echo), already IAC-escaped.
    out: Vec<u8>,
    /// The last line ended with CR: an LF or NUL right after belongs to it.
    after_cr: bool,
}

impl Telnet {
    fn new(stream: TcpStream) -> Telnet {
        let (rd, wr) = stream.into_split();
        let mut decoder = TelnetDecoder::new();
        // The peer is not in BINARY until it says so: CR NUL is a CR.
        decoder.set_binary(false);
        let mut t = Telnet {
            rd,
            wr,
            decoder,
            options: OptionTable::new(
                &[TelnetOption::ECHO, TelnetOption::SGA, TelnetOption::BINARY],
                &[TelnetOption::SGA, TelnetOption::BINARY],
            ),
            rbuf: BytesMut::with_capacity(NET_READ),
            typed: VecDeque::new(),
            out: Vec::with_capacity(256),
            after_cr: false,
        };
        // Character mode: we echo (and so can hide the password), no
        // go-ahead.
        t.options
            .request_local(TelnetOption::ECHO, true, &mut t.out);
        t.options.request_local(TelnetOption::SGA, true, &mut t.out);
        t
    }

    /// Queue text for the peer.
    fn text(&mut self, text: &str) {
        escape_iac(text.as_bytes(), &mut self.out);
    }

    /// Send what is queued (login phase: bounded by the login grace).
    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.wr.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Send what is queued, giving up after a moment: the last words to a
    /// peer that may not read them.
    async fn flush_briefly(&mut self) {
        let _ = tokio::time::timeout(super::CLOSE_GRACE, self.flush()).await;
    }

    /// Decode what `rbuf` holds: negotiations are answered here (into
    /// `out`), data and commands returned.
    fn decode(&mut self) -> Vec<TelnetEvent> {
        let input = self.rbuf.split().freeze();
        let mut rest: &[u8] = &input;
        let mut events = Vec::new();
        let mut kept = Vec::new();
        while !rest.is_empty() {
            let used = self.decoder.decode_until_negotiation(rest, &mut events);
            rest = rest.get(used..).unwrap_or_default();
            for event in events.drain(..) {
                match event {
                    TelnetEvent::Negotiate { verb, option } => {
                        let change = self.options.handle(verb, option, &mut self.out);
                        // BINARY from the peer changes how CR NUL reads
                        // from the very next byte.
                        if let Some(c) = change
                            && c.option == TelnetOption::BINARY
                            && c.side == Side::Remote
                        {
                            self.decoder.set_binary(c.enabled);
                        }
                    }
                    TelnetEvent::Subnegotiation { .. } => {}
                    other => kept.push(other),
                }
            }
        }
        kept
    }

    /// Whether we echo (the peer agreed to WILL ECHO).
    fn echoing(&self) -> bool {
        self.options.local_enabled(TelnetOption::ECHO)
    }

    /// Read one line typed at a prompt, echoing it when `echo` (never the
    /// password). `None`: the peer left, or typed Ctrl-C, or Ctrl-D on an
    /// empty line.
    async fn read_line(&mut self, echo: bool) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            while let Some(b) = self.typed.pop_front() {
                let after_cr = std::mem::take(&mut self.after_cr);
                let echo = echo && self.echoing();
                match b {
                    LF | NUL if after_cr => {}
                    CR | LF => {
                        self.after_cr = b == CR;
                        if self.echoing() {
                            self.out.extend_from_slice(b"\r\n");
                        }
                        self.flush().await?;
                        return Ok(Some(line));
                    }
                    BS | DEL => {
                        // One character, not one byte, of UTF-8.
                        while line.pop().is_some_and(|c| c & 0xC0 == 0x80) {}
                        if echo {
                            self.out.extend_from_slice(b"\x08 \x08");
                        }
                    }
                    CTRL_U => {
                        if echo {
                            for _ in String::from_utf8_lossy(&line).chars() {
                                self.out.extend_from_slice(b"\x08 \x08");
                            }
                        }
                        line.clear();
                    }
                    CTRL_C => return Ok(None),
                    CTRL_D if line.is_empty() => return Ok(None),
                    b if b < 0x20 => {}
                    b if line.len() < MAX_FIELD => {
                        line.push(b);
                        if echo {
                            escape_iac(&[b], &mut self.out);
                        }
                    }
                    _ => {}
                }
            }
            self.flush().await?;
            if self.rd.read_buf(&mut self.rbuf).await? == 0 {
                return Ok(None);
            }
            for event in self.decode() {
                if let TelnetEvent::Data(data) = event {
                    self.typed.extend(data);
                }
            }
        }
    }
}
