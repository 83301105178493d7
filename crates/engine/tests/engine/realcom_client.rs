//! An independent Real COM (ASPP) host for tests, written from
//! `../shared/spec/realcom-protocol.md` alone, not from ttyward's codec or
//! server, so that the two cannot share a misreading.
//!
//! It behaves like the Linux driver npreal2 (spec §2.3, §6): it connects the
//! command port first and then the data port, with `SO_KEEPALIVE` and
//! without `TCP_NODELAY`; it encodes every command of §4 itself; it splits
//! the server's byte stream with the driver's fixed reply-length table
//! (§3.2), extended with the §4 layouts of the replies only Windows drivers
//! ask for; it answers alive polls `27 01 id` with `28 01 id` at once, by
//! itself, like npreal2d (§4.15), unless told not to; and [`RealComClient::recover`]
//! replays the driver's session-recovery batch in one write (§6.7).
//!
//! A background task reads the command connection (so polls are answered
//! while the test does something else) and hands over each message with its
//! exact bytes: replies in order, NOTIFYs (`26 xx xx xx`, which may follow
//! any reply) on their own queue. It also notes every reply that was split
//! across two reads: npreal2d would misparse those (§3.2 rule 2).
//!
//! What it does not do: TLS, the IPv6 16-byte preamble, DSCI (tests speak
//! UDP directly), and any check of the replies: it reports bytes, the tests
//! compare them with the spec. Shared by the engine tests and the binary's
//! tests (included by path), so it depends on tokio only.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a reply may take (npreal2 waits 10 s; loopback needs far less).
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// Command and reply codes (spec §4).
pub mod code {
    pub const IOCTL: u8 = 0x10;
    pub const FLOWCTL: u8 = 0x11;
    pub const LINECTRL: u8 = 0x12;
    pub const LSTATUS: u8 = 0x13;
    pub const FLUSH: u8 = 0x14;
    pub const IQUEUE: u8 = 0x15;
    pub const OQUEUE: u8 = 0x16;
    pub const SETBAUD: u8 = 0x17;
    pub const XONXOFF: u8 = 0x18;
    pub const RESET: u8 = 0x20;
    pub const BREAK_ON: u8 = 0x21;
    pub const BREAK_OFF: u8 = 0x22;
    pub const BREAK_SEND: u8 = 0x23;
    pub const NOTIFY_ON: u8 = 0x24;
    pub const NOTIFY_OFF: u8 = 0x25;
    pub const NOTIFY: u8 = 0x26;
    pub const POLL: u8 = 0x27;
    pub const ALIVE: u8 = 0x28;
    pub const LINKNAME: u8 = 0x2B;
    pub const PORT_INIT: u8 = 0x2C;
    pub const WAIT_OQUEUE: u8 = 0x2F;
    pub const TX_FIFO: u8 = 0x30;
    pub const DSR_SEN: u8 = 0x32;
    pub const SETXON: u8 = 0x33;
    pub const SETXOFF: u8 = 0x34;
    pub const FLUSH_START: u8 = 0x35;
    pub const FLUSH_STOP: u8 = 0x36;
    pub const BREAK_COUNT: u8 = 0x37;
    pub const DATA_STATUS: u8 = 0x38;
}

/// Parity field of the mode byte, on the wire (§5.2; not Moxa's internal
/// `P_*` values).
pub mod parity {
    pub const NONE: u8 = 0x00;
    pub const EVEN: u8 = 0x08;
    pub const ODD: u8 = 0x10;
    pub const MARK: u8 = 0x18;
    pub const SPACE: u8 = 0x20;
}

/// The mode byte of PORT_INIT and IOCTL (§5.2): data bits 5..=8 in bits
/// 0-1, two stop bits 0x04, parity one of [`parity`].
pub fn mode(data_bits: u8, two_stop_bits: bool, parity: u8) -> u8 {
    let size = data_bits.clamp(5, 8) - 5;
    size | if two_stop_bits { 0x04 } else { 0 } | parity
}

/// Index of the §5.1 table, or `FF` when the rate is not in it (a SETBAUD
/// must follow).
pub fn baud_index(baud: u32) -> u8 {
    const TABLE: [u32; 19] = [
        300, 600, 1200, 2400, 4800, 7200, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800,
        921_600, 150, 134, 110, 75, 50,
    ];
    TABLE
        .iter()
        .position(|b| *b == baud)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0xFF)
}

/// The four flow-control booleans of PORT_INIT and FLOWCTL (§5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Obey CTS (`CRTSCTS`).
    pub cts_out: bool,
    /// Drive RTS for input (`CRTSCTS`; Linux sets both together).
    pub rts_in: bool,
    /// Obey received XON/XOFF (`IXON`).
    pub ixon: bool,
    /// Send XON/XOFF (`IXOFF`).
    pub ixoff: bool,
}

impl Flow {
    pub const NONE: Flow = Flow {
        cts_out: false,
        rts_in: false,
        ixon: false,
        ixoff: false,
    };
    pub const RTS_CTS: Flow = Flow {
        cts_out: true,
        rts_in: true,
        ixon: false,
        ixoff: false,
    };
    pub const XON_XOFF: Flow = Flow {
        cts_out: false,
        rts_in: false,
        ixon: true,
        ixoff: true,
    };
}

/// Command encoders, `code len data...` (§3.1, §4), for tests that build
/// their own writes (several commands at once, a command cut in two).
pub mod cmd {
    use super::{Flow, code};

    pub fn port_init(baud_index: u8, mode: u8, dtr: bool, rts: bool, flow: Flow) -> Vec<u8> {
        vec![
            code::PORT_INIT,
            0x08,
            baud_index,
            mode,
            u8::from(dtr),
            u8::from(rts),
            u8::from(flow.cts_out),
            u8::from(flow.rts_in),
            u8::from(flow.ixon),
            u8::from(flow.ixoff),
        ]
    }

    /// Little-endian, as npreal2 sends it on x86 (§4.2).
    pub fn set_baud(baud: u32) -> Vec<u8> {
        let mut v = vec![code::SETBAUD, 0x04];
        v.extend_from_slice(&baud.to_le_bytes());
        v
    }

    pub fn xon_xoff(xon: u8, xoff: u8) -> Vec<u8> {
        vec![code::XONXOFF, 0x02, xon, xoff]
    }

    pub fn tx_fifo(n: u8) -> Vec<u8> {
        vec![code::TX_FIFO, 0x01, n]
    }

    pub fn line_ctrl(dtr: bool, rts: bool) -> Vec<u8> {
        vec![code::LINECTRL, 0x02, u8::from(dtr), u8::from(rts)]
    }

    /// `mode`: 0 input, 1 output, 2 both.
    pub fn flush(mode: u8) -> Vec<u8> {
        vec![code::FLUSH, 0x01, mode]
    }

    /// Little-endian timeout (ms for Moxa, jiffies for npreal2: §4.9).
    pub fn wait_oqueue(timeout: u32) -> Vec<u8> {
        let mut v = vec![code::WAIT_OQUEUE, 0x04];
        v.extend_from_slice(&timeout.to_le_bytes());
        v
    }

    pub fn break_on() -> Vec<u8> {
        vec![code::BREAK_ON, 0x00]
    }

    pub fn break_off() -> Vec<u8> {
        vec![code::BREAK_OFF, 0x00]
    }

    /// Big-endian milliseconds (§4.10).
    pub fn break_send(ms: u16) -> Vec<u8> {
        let [hi, lo] = ms.to_be_bytes();
        vec![code::BREAK_SEND, 0x02, hi, lo]
    }

    pub fn line_status() -> Vec<u8> {
        vec![code::LSTATUS, 0x00]
    }

    pub fn iqueue() -> Vec<u8> {
        vec![code::IQUEUE, 0x00]
    }

    pub fn oqueue() -> Vec<u8> {
        vec![code::OQUEUE, 0x00]
    }

    pub fn notify_on() -> Vec<u8> {
        vec![code::NOTIFY_ON, 0x00]
    }

    pub fn notify_off() -> Vec<u8> {
        vec![code::NOTIFY_OFF, 0x00]
    }

    pub fn set_xon() -> Vec<u8> {
        vec![code::SETXON, 0x00]
    }

    pub fn set_xoff() -> Vec<u8> {
        vec![code::SETXOFF, 0x00]
    }

    pub fn ioctl(baud_index: u8, mode: u8) -> Vec<u8> {
        vec![code::IOCTL, 0x02, baud_index, mode]
    }

    pub fn flow_ctl(flow: Flow) -> Vec<u8> {
        vec![
            code::FLOWCTL,
            0x04,
            u8::from(flow.cts_out),
            u8::from(flow.rts_in),
            u8::from(flow.ixon),
            u8::from(flow.ixoff),
        ]
    }

    /// The only payload Moxa answers: "16a".
    pub fn reset() -> Vec<u8> {
        vec![code::RESET, 0x03, b'1', b'6', b'a']
    }

    pub fn dsr_sen(value: u8) -> Vec<u8> {
        vec![code::DSR_SEN, 0x01, value]
    }

    pub fn flush_start(mode: u8, timeout_ms: u32) -> Vec<u8> {
        let mut v = vec![code::FLUSH_START, 0x05, mode];
        v.extend_from_slice(&timeout_ms.to_le_bytes());
        v
    }

    pub fn flush_stop() -> Vec<u8> {
        vec![code::FLUSH_STOP, 0x00]
    }

    pub fn break_count() -> Vec<u8> {
        vec![code::BREAK_COUNT, 0x00]
    }

    pub fn data_status() -> Vec<u8> {
        vec![code::DATA_STATUS, 0x00]
    }

    /// The host's answer to a poll (§4.15).
    pub fn alive(id: u8) -> Vec<u8> {
        vec![code::ALIVE, 0x01, id]
    }
}

/// `<code> 4F 4B`, the positive acknowledgement (§3.2).
pub fn ok(code: u8) -> Vec<u8> {
    vec![code, b'O', b'K']
}

/// `<code> 4E 41`, the refusal (SETBAUD out of range only).
pub fn refused(code: u8) -> Vec<u8> {
    vec![code, b'N', b'A']
}

/// How many bytes the host takes for a message starting with `code`.
///
/// npreal2d's table (§3.2), then the replies to the commands Linux never
/// sends, from their §4 layouts (RESET, BREAK_SEND, DSR_SEN and FLUSH_STOP
/// are "OK" replies; `35 04 lo hi 00 00`; `37 02 hi lo`; `38 01 x`). `None`:
/// npreal2d would throw the rest of its read away.
pub fn reply_len(code: u8) -> Option<usize> {
    use code::*;
    match code {
        POLL => Some(3),
        NOTIFY | WAIT_OQUEUE | OQUEUE | IQUEUE => Some(4),
        LSTATUS | PORT_INIT => Some(5),
        IOCTL | FLOWCTL | LINECTRL | FLUSH | SETBAUD | XONXOFF | BREAK_ON | BREAK_OFF
        | NOTIFY_ON | NOTIFY_OFF | LINKNAME | TX_FIFO | SETXON | SETXOFF => Some(3),
        RESET | BREAK_SEND | DSR_SEN | FLUSH_STOP | DATA_STATUS => Some(3),
        BREAK_COUNT => Some(4),
        FLUSH_START => Some(6),
        _ => None,
    }
}

/// Bytes as `2C 03 00 01 01`, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a reply did not come.
#[derive(Debug)]
pub enum ClientError {
    /// A socket call failed.
    Io(io::Error),
    /// Nothing arrived in time.
    Timeout(Duration),
    /// The server closed the command connection (or it failed).
    Closed(String),
    /// The server sent a code outside the host's table: npreal2d would
    /// have discarded this and everything after it in the same read.
    Unexpected(Vec<u8>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "socket error: {e}"),
            ClientError::Timeout(t) => write!(f, "no reply within {t:?}"),
            ClientError::Closed(why) => write!(f, "command connection closed: {why}"),
            ClientError::Unexpected(bytes) => write!(
                f,
                "server sent a code the host cannot parse (spec §3.2): {}",
                hex(bytes)
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// What the reader task hands over.
#[derive(Debug)]
enum Incoming {
    Reply { bytes: Vec<u8>, split: bool },
    Notify([u8; 4]),
    Poll(u8),
    Unexpected(Vec<u8>),
    Closed(String),
}

/// Connects from `local` (any port) when given: tests play a second host
/// from 127.0.0.2. `SO_KEEPALIVE` on, no `TCP_NODELAY`, as npreal2d.
pub async fn connect_tcp(local: Option<IpAddr>, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_keepalive(true)?;
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    tokio::time::timeout(REPLY_WAIT, socket.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {to}")))?
}

/// One command connection: writes commands, and a reader task that splits
/// what comes back (see the module documentation).
#[derive(Debug)]
pub struct CommandChannel {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    reader: JoinHandle<()>,
    answer_polls: Arc<AtomicBool>,
    replies: VecDeque<Vec<u8>>,
    notifies: VecDeque<[u8; 4]>,
    polls: Vec<u8>,
    split: Vec<Vec<u8>>,
    closed: Option<String>,
    /// Local address of the connection.
    pub local: SocketAddr,
}

impl CommandChannel {
    /// Connects a command connection (and nothing else).
    pub async fn connect(local: Option<IpAddr>, to: SocketAddr) -> io::Result<CommandChannel> {
        Ok(CommandChannel::new(connect_tcp(local, to).await?))
    }

    fn new(stream: TcpStream) -> CommandChannel {
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (read, write) = stream.into_split();
        let writer = Arc::new(Mutex::new(write));
        let answer_polls = Arc::new(AtomicBool::new(true));
        // Unbounded on purpose: the reader must never stop answering polls
        // because the test is busy elsewhere; a test produces few messages.
        let (tx, incoming) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_messages(
            read,
            Arc::clone(&writer),
            Arc::clone(&answer_polls),
            tx,
        ));
        CommandChannel {
            writer,
            incoming,
            reader,
            answer_polls,
            replies: VecDeque::new(),
            notifies: VecDeque::new(),
            polls: Vec::new(),
            split: Vec::new(),
            closed: None,
            local,
        }
    }

    /// Writes `bytes` with one write (one or several commands, or part of one).
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Sends one command and returns its reply.
    pub async fn call(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.send(bytes).await?;
        self.reply(REPLY_WAIT).await
    }

    /// The next reply (not a NOTIFY or poll), exact bytes.
    pub async fn reply(&mut self, timeout: Duration) -> Result<Vec<u8>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.replies.pop_front() {
                return Ok(r);
            }
            self.next(deadline, timeout).await?;
        }
    }

    /// The next NOTIFY (queued ones first).
    pub async fn notify(&mut self, timeout: Duration) -> Result<[u8; 4], ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.notifies.pop_front() {
                return Ok(n);
            }
            self.next(deadline, timeout).await?;
        }
    }

    /// Every reply arriving within `wait` (NOTIFYs and polls are kept
    /// aside); stops early when the connection closes.
    pub async fn replies_within(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        while self.closed.is_none() {
            match self.next(deadline, wait).await {
                Ok(()) => {}
                Err(ClientError::Unexpected(bytes)) => self.replies.push_back(bytes),
                Err(_) => break,
            }
        }
        self.replies.drain(..).collect()
    }

    /// Whether the server closed the connection within `timeout` (what
    /// arrives meanwhile is kept).
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.closed.is_none() {
            match self.next(deadline, timeout).await {
                Ok(()) | Err(ClientError::Unexpected(_)) => {}
                Err(_) => break,
            }
        }
        self.closed.is_some()
    }

    /// Takes one message from the reader into the queues.
    async fn next(&mut self, deadline: Instant, timeout: Duration) -> Result<(), ClientError> {
        if let Some(why) = &self.closed {
            return Err(ClientError::Closed(why.clone()));
        }
        match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
            Err(_) => Err(ClientError::Timeout(timeout)),
            Ok(None) => {
                let why = "reader ended".to_string();
                self.closed = Some(why.clone());
                Err(ClientError::Closed(why))
            }
            Ok(Some(Incoming::Reply { bytes, split })) => {
                if split {
                    self.split.push(bytes.clone());
                }
                self.replies.push_back(bytes);
                Ok(())
            }
            Ok(Some(Incoming::Notify(n))) => {
                self.notifies.push_back(n);
                Ok(())
            }
            Ok(Some(Incoming::Poll(id))) => {
                self.polls.push(id);
                Ok(())
            }
            Ok(Some(Incoming::Unexpected(bytes))) => Err(ClientError::Unexpected(bytes)),
            Ok(Some(Incoming::Closed(why))) => {
                self.closed = Some(why.clone());
                Err(ClientError::Closed(why))
            }
        }
    }

    /// Whether polls are answered (default yes, like npreal2d).
    pub fn set_answer_polls(&self, answer: bool) {
        self.answer_polls.store(answer, Ordering::Relaxed);
    }

    /// Ids of the polls taken from the queue so far, in order.
    pub fn polls(&self) -> &[u8] {
        &self.polls
    }

    /// NOTIFYs received and not taken yet (only those already handed
    /// over by [`CommandChannel::reply`] and friends).
    pub fn take_notifies(&mut self) -> Vec<[u8; 4]> {
        self.notifies.drain(..).collect()
    }

    /// Hands over everything the reader has now, without waiting.
    pub async fn drain_now(&mut self) {
        let now = Instant::now();
        while self.closed.is_none() && self.next(now, Duration::ZERO).await.is_ok() {}
    }

    /// Replies or notifications that were cut across two reads.
    pub fn split_messages(&self) -> &[Vec<u8>] {
        &self.split
    }

    /// Whether the server closed the connection (as far as seen).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Sends FIN (`shutdown(SHUT_WR)`), as a closing npreal2d does; the
    /// reader keeps reading until the server closes too.
    pub async fn shutdown(&self) -> io::Result<()> {
        self.writer.lock().await.shutdown().await
    }
}

impl Drop for CommandChannel {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The reader task: splits the stream per §3.2 and answers polls.
async fn read_messages(
    mut read: OwnedReadHalf,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    answer_polls: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(Incoming::Closed("end of stream".into()));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Incoming::Closed(e.to_string()));
                return;
            }
        };
        // A message that began in an earlier read was split across reads.
        let mut carried = !pending.is_empty();
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        while let Some(&first) = pending.first() {
            let Some(len) = reply_len(first) else {
                let _ = tx.send(Incoming::Unexpected(std::mem::take(&mut pending)));
                break;
            };
            if pending.len() < len {
                break;
            }
            let bytes: Vec<u8> = pending.drain(..len).collect();
            let split = std::mem::take(&mut carried);
            let message = match bytes[..] {
                [code::POLL, _, id] => {
                    if answer_polls.load(Ordering::Relaxed) {
                        let mut w = writer.lock().await;
                        // A failed answer shows up as the server closing.
                        let _ = w.write_all(&cmd::alive(id)).await;
                    }
                    Incoming::Poll(id)
                }
                [code::NOTIFY, events, msr, hold] => {
                    Incoming::Notify([code::NOTIFY, events, msr, hold])
                }
                _ => Incoming::Reply { bytes, split },
            };
            if tx.send(message).is_err() {
                return;
            }
        }
    }
}

/// What the host's kernel remembers to replay after a reconnect (§6.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    pub baud_index: u8,
    pub mode: u8,
    pub dtr: bool,
    pub rts: bool,
    pub flow: Flow,
    /// The rate of the last SETBAUD, sent again when the index is `FF`.
    pub baud: Option<u32>,
    pub xon: u8,
    pub xoff: u8,
    pub fifo: u8,
}

impl Default for HostState {
    fn default() -> Self {
        HostState {
            baud_index: 6,
            mode: 0x03,
            dtr: true,
            rts: true,
            flow: Flow::NONE,
            baud: None,
            xon: 0x11,
            xoff: 0x13,
            fifo: 16,
        }
    }
}

impl HostState {
    /// npreal2's recovery batch: PORT_INIT, [SETBAUD], [XONXOFF], TX_FIFO,
    /// LINECTRL, back to back.
    pub fn recovery_batch(&self) -> Vec<u8> {
        let mut batch = cmd::port_init(self.baud_index, self.mode, self.dtr, self.rts, self.flow);
        if let (0xFF, Some(baud)) = (self.baud_index, self.baud) {
            batch.extend(cmd::set_baud(baud));
        }
        if self.flow.ixon || self.flow.ixoff {
            batch.extend(cmd::xon_xoff(self.xon, self.xoff));
        }
        batch.extend(cmd::tx_fifo(self.fifo));
        batch.extend(cmd::line_ctrl(self.dtr, self.rts));
        batch
    }
}

/// A Real COM host: the data connection, the command connection, and the
/// state a driver would replay.
#[derive(Debug)]
pub struct RealComClient {
    /// Raw serial bytes both ways (§2.1).
    pub data: TcpStream,
    /// ASPP commands and replies.
    pub command: CommandChannel,
    /// What [`RealComClient::recover`] replays.
    pub state: HostState,
    local: Option<IpAddr>,
    data_addr: SocketAddr,
    command_addr: SocketAddr,
}

impl RealComClient {
    /// Connects command first, then data, like npreal2d (§2.3).
    pub async fn connect(data_addr: SocketAddr, command_addr: SocketAddr) -> io::Result<Self> {
        RealComClient::connect_from(None, data_addr, command_addr).await
    }

    /// [`RealComClient::connect`] from a chosen local address.
    pub async fn connect_from(
        local: Option<IpAddr>,
        data_addr: SocketAddr,
        command_addr: SocketAddr,
    ) -> io::Result<Self> {
        RealComClient::connect_sending_first(local, data_addr, command_addr, &[]).await
    }

    /// Connects the command connection, writes `early` on it, then
    /// connects the data connection: the server must keep those commands
    /// until the port is open (spec §2.4).
    pub async fn connect_sending_first(
        local: Option<IpAddr>,
        data_addr: SocketAddr,
        command_addr: SocketAddr,
        early: &[u8],
    ) -> io::Result<Self> {
        let command = CommandChannel::connect(local, command_addr).await?;
        if !early.is_empty() {
            command.send(early).await?;
        }
        let data = connect_tcp(local, data_addr).await?;
        Ok(RealComClient {
            data,
            command,
            state: HostState::default(),
            local,
            data_addr,
            command_addr,
        })
    }

    // --- commands, each returning the reply's exact bytes ---

    /// PORT_INIT (§4.1).
    pub async fn port_init(
        &mut self,
        baud_index: u8,
        mode: u8,
        dtr: bool,
        rts: bool,
        flow: Flow,
    ) -> Result<Vec<u8>, ClientError> {
        self.state.baud_index = baud_index;
        self.state.mode = mode;
        self.state.dtr = dtr;
        self.state.rts = rts;
        self.state.flow = flow;
        self.command
            .call(&cmd::port_init(baud_index, mode, dtr, rts, flow))
            .await
    }

    /// SETBAUD (§4.2).
    pub async fn set_baud(&mut self, baud: u32) -> Result<Vec<u8>, ClientError> {
        self.state.baud = Some(baud);
        self.command.call(&cmd::set_baud(baud)).await
    }

    /// XONXOFF characters (§4.3).
    pub async fn xon_xoff(&mut self, xon: u8, xoff: u8) -> Result<Vec<u8>, ClientError> {
        self.state.xon = xon;
        self.state.xoff = xoff;
        self.command.call(&cmd::xon_xoff(xon, xoff)).await
    }

    /// TX_FIFO (§4.4).
    pub async fn tx_fifo(&mut self, n: u8) -> Result<Vec<u8>, ClientError> {
        self.state.fifo = n;
        self.command.call(&cmd::tx_fifo(n)).await
    }

    /// LINECTRL, the full DTR/RTS state (§4.5).
    pub async fn line_ctrl(&mut self, dtr: bool, rts: bool) -> Result<Vec<u8>, ClientError> {
        self.state.dtr = dtr;
        self.state.rts = rts;
        self.command.call(&cmd::line_ctrl(dtr, rts)).await
    }

    /// FLUSH: 0 input, 1 output, 2 both (§4.8).
    pub async fn flush(&mut self, mode: u8) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::flush(mode)).await
    }

    /// WAIT_OQUEUE; the reply is delayed until drained or `timeout_ms`
    /// (§4.9), so this waits that long plus [`REPLY_WAIT`].
    pub async fn wait_oqueue(&mut self, timeout_ms: u32) -> Result<Vec<u8>, ClientError> {
        self.command.send(&cmd::wait_oqueue(timeout_ms)).await?;
        let wait = Duration::from_millis(u64::from(timeout_ms)) + REPLY_WAIT;
        self.command.reply(wait).await
    }

    pub async fn break_on(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::break_on()).await
    }

    pub async fn break_off(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::break_off()).await
    }

    /// BREAKSEND; answered after the break (§4.10).
    pub async fn break_send(&mut self, ms: u16) -> Result<Vec<u8>, ClientError> {
        self.command.send(&cmd::break_send(ms)).await?;
        let wait = Duration::from_millis(u64::from(ms)) + REPLY_WAIT;
        self.command.reply(wait).await
    }

    pub async fn line_status(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::line_status()).await
    }

    pub async fn iqueue(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::iqueue()).await
    }

    pub async fn oqueue(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::oqueue()).await
    }

    pub async fn notify_on(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::notify_on()).await
    }

    pub async fn notify_off(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::notify_off()).await
    }

    /// SETXON: resume transmission (§4.11).
    pub async fn set_xon(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::set_xon()).await
    }

    /// SETXOFF: hold transmission (§4.11).
    pub async fn set_xoff(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::set_xoff()).await
    }

    pub async fn ioctl(&mut self, baud_index: u8, mode: u8) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::ioctl(baud_index, mode)).await
    }

    pub async fn flow_ctl(&mut self, flow: Flow) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::flow_ctl(flow)).await
    }

    pub async fn reset(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::reset()).await
    }

    pub async fn dsr_sen(&mut self, value: u8) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::dsr_sen(value)).await
    }

    /// FLUSH_START; answered "on the next idle cycle" (§4.13).
    pub async fn flush_start(&mut self, mode: u8, timeout_ms: u32) -> Result<Vec<u8>, ClientError> {
        self.command
            .send(&cmd::flush_start(mode, timeout_ms))
            .await?;
        let wait = Duration::from_millis(u64::from(timeout_ms)) + REPLY_WAIT;
        self.command.reply(wait).await
    }

    pub async fn flush_stop(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::flush_stop()).await
    }

    pub async fn break_count(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::break_count()).await
    }

    pub async fn data_status(&mut self) -> Result<Vec<u8>, ClientError> {
        self.command.call(&cmd::data_status()).await
    }

    // --- data ---

    /// Writes serial bytes.
    pub async fn write_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.data.write_all(bytes).await
    }

    /// Reads exactly `n` serial bytes within `timeout`.
    pub async fn read_data(&mut self, n: usize, timeout: Duration) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(timeout, self.data.read_exact(&mut buf))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{n} data bytes not there within {timeout:?}"),
                )
            })??;
        Ok(buf)
    }

    /// Serial bytes arriving within `wait` (none expected, usually).
    pub async fn data_within(&mut self, wait: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + wait;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.data.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        got
    }

    /// Whether the server closed the data connection within `timeout`
    /// (serial bytes arriving meanwhile are discarded).
    pub async fn data_closed(&mut self, timeout: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.data.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    // --- connection ---

    /// Closes both connections the way npreal2d does (FIN on each) and
    /// waits until the server has closed its ends too, so that it has
    /// seen the session end. Returns whether both were closed in time.
    pub async fn close(&mut self) -> bool {
        let _ = self.data.shutdown().await;
        let _ = self.command.shutdown().await;
        let data = self.data_closed(REPLY_WAIT).await;
        let command = self.command.wait_closed(REPLY_WAIT).await;
        data && command
    }

    /// Network loss and reconnect (§6.7): closes both connections,
    /// connects again (command, then data) and sends the recovery batch of
    /// [`HostState::recovery_batch`] in one write. Returns the batch; the
    /// replies are the test's to read, in order, LINECTRL's last.
    pub async fn recover(&mut self) -> Result<Vec<u8>, ClientError> {
        if !self.close().await {
            return Err(ClientError::Timeout(REPLY_WAIT));
        }
        let answer = self.command.answer_polls.load(Ordering::Relaxed);
        let mut fresh =
            RealComClient::connect_from(self.local, self.data_addr, self.command_addr).await?;
        fresh.state = self.state.clone();
        fresh.command.set_answer_polls(answer);
        *self = fresh;
        let batch = self.state.recovery_batch();
        self.command.send(&batch).await?;
        Ok(batch)
    }
}
