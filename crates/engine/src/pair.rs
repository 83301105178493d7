//! Pair Connection mode (NPort "Pair Connection Master" and "Slave"): two
//! serial ports joined across the network, serial to serial. The master
//! connects to the slave and reconnects with backoff when the link fails;
//! the slave serves one master at a time (another is accepted and closed
//! at once, counted as refused, as TCP Server does over its limit).
//!
//! On the link, framed by [`ttyward_proto::pair`]: a hello each way first
//! (a peer that does not say it within [`HELLO_TIMEOUT`] is dropped), then
//! device output as data frames and the device's modem inputs as lines
//! frames, sent after the hello and on every change. Received lines drive
//! our outputs null-modem fashion, RTS := peer CTS and DTR := peer DSR, so
//! each device sees the other's RTS/DTR on its own CTS/DSR. A line that the
//! port's flow control owns (RTS with RTS/CTS, DTR with DTR/DSR) is left to
//! it. While no link is up, RTS and DTR are held low so the device can
//! tell.
//!
//! With the port's Secure Connection on, the link is TLS (the master checks
//! the slave's name in "authenticated" mode, the slave the master's
//! certificate), before the hello.
//!
//! Not done: the NPort's own pair protocol (undocumented), DCD and RI on
//! the far side (no output to show them on).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{PairMasterMode, PairSlaveMode};
use ttyward_proto::pair::{self, Decoder, Frame, Lines};
use ttyward_serial::{FlowControl, ModemStatus};

use crate::counters::add;
use crate::event::{EventKind, EventSink};
use crate::gate::Gate;
use crate::net::NET_READ;
use crate::tls::PortTls;

/// A link's byte stream: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type LinkStream = Box<dyn Stream>;
use crate::port::{Control, ControlError, PortHandle, PortState, Session};

/// How long a peer may take to say hello once connected.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt of the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The peer of the short sessions that only set the lines.
const NO_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Start the master's connection loop.
pub(crate) fn spawn_master(
    port: PortHandle,
    mode: &PairMasterMode,
    tls: &PortTls,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let master = Master {
        port,
        mode: mode.clone(),
        tls: tls.clone(),
        events,
        cancel,
    };
    tracker.spawn(master.run());
}

/// Start the slave: an accept loop per listener, one link at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_slave(
    listeners: Vec<TcpListener>,
    port: PortHandle,
    mode: &PairSlaveMode,
    tls: &PortTls,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let slot = Arc::new(Semaphore::new(1));
    for listener in listeners {
        let accept = Accept {
            port: port.clone(),
            alive_check_min: mode.alive_check_min,
            tls: tls.clone(),
            gate: gate.clone(),
            events: events.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            slot: slot.clone(),
        };
        tracker.spawn(accept.run(listener));
    }
    tracker.spawn(keep_idle_lines_low(port, slot, cancel));
}

struct Master {
    port: PortHandle,
    mode: PairMasterMode,
    tls: PortTls,
    events: EventSink,
    cancel: CancellationToken,
}

impl Master {
    fn label(&self) -> String {
        if self.mode.host.contains(':') {
            format!("[{}]:{}", self.mode.host, self.mode.port)
        } else {
            format!("{}:{}", self.mode.host, self.mode.port)
        }
    }

    async fn run(self) {
        let mut backoff = Backoff::new(self.mode.reconnect_min_ms, self.mode.reconnect_max_ms);
        loop {
            if !wait_open(&self.port, &self.cancel).await {
                return;
            }
            lines_low(&self.port).await;
            let attempt = async {
                let stream =
                    connect(&self.mode.host, self.mode.port, self.mode.alive_check_min).await?;
                let peer = stream.peer_addr().unwrap_or(NO_PEER);
                let stream: LinkStream = match self.tls.on() {
                    true => Box::new(self.tls.connect(stream, &self.mode.host).await?),
                    false => Box::new(stream),
                };
                Ok::<_, String>((handshake(stream).await?, peer))
            };
            let attempt = tokio::select! {
                _ = self.cancel.cancelled() => return,
                a = attempt => a,
            };
            let delay = match attempt {
                Ok((link, peer)) => {
                    backoff.reset();
                    serve(link, peer, &self.port, &self.events, &self.cancel).await;
                    // Not at once: a slave that closes every link would
                    // otherwise be redialled in a tight loop.
                    backoff.min()
                }
                Err(error) => {
                    self.events.emit(
                        self.port.number(),
                        EventKind::ConnectFailed {
                            destination: self.label(),
                            error,
                        },
                    );
                    backoff.next()
                }
            };
            if !idle(&self.port, delay, &self.cancel).await {
                return;
            }
        }
    }
}

struct Accept {
    port: PortHandle,
    alive_check_min: u8,
    tls: PortTls,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: TaskTracker,
    slot: Arc<Semaphore>,
}

impl Accept {
    async fn run(self, listener: TcpListener) {
        let (gate, port, events, cancel) = (&self.gate, &self.port, &self.events, &self.cancel);
        // The Gate first, as in TCP Server: a refused source must not hold
        // the one link slot, even for a moment.
        while let Some((stream, peer, admitted)) =
            crate::gate::next_admitted(&listener, gate, port, events, cancel).await
        {
            let Ok(permit) = self.slot.clone().try_acquire_owned() else {
                refuse(
                    &self.port,
                    &self.events,
                    peer,
                    "a pair link is already up".into(),
                );
                continue;
            };
            let (port, events, cancel) =
                (self.port.clone(), self.events.clone(), self.cancel.clone());
            let alive_check_min = self.alive_check_min;
            let tls = self.tls.clone();
            self.tracker.spawn(async move {
                if let Err(e) = crate::net::configure_stream(&stream, alive_check_min) {
                    tracing::debug!("socket options for {peer}: {e}");
                }
                let secured = async {
                    let stream: LinkStream = match tls.on() {
                        true => Box::new(tls.accept(stream).await?),
                        false => Box::new(stream),
                    };
                    handshake(stream).await
                };
                let link = tokio::select! {
                    _ = cancel.cancelled() => return,
                    l = secured => l,
                };
                match link {
                    Ok(link) => serve(link, peer, &port, &events, &cancel).await,
                    Err(why) => refuse(&port, &events, peer, why),
                }
                drop(permit);
                drop(admitted);
            });
        }
    }
}

fn refuse(port: &PortHandle, events: &EventSink, peer: SocketAddr, reason: String) {
    add(&port.counters().connections_refused, 1);
    events.emit(port.number(), EventKind::ConnectionRefused { peer, reason });
}

/// A connection whose peer said hello, with what it sent after the hello.
struct Link {
    stream: LinkStream,
    rbuf: BytesMut,
    decoder: Decoder,
}

/// Say hello and wait for the peer's, which must be its first frame.
async fn handshake(mut stream: LinkStream) -> Result<Link, String> {
    let mut hello = BytesMut::new();
    Frame::Hello.encode(&mut hello);
    stream
        .write_all(&hello)
        .await
        .map_err(|e| format!("write error: {e}"))?;
    let mut rbuf = BytesMut::new();
    let mut decoder = Decoder::new();
    let greeted = async {
        loop {
            match decoder.decode(&mut rbuf) {
                // The decoder yields nothing but hello first.
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            rbuf.reserve(pair::HEADER_LEN + pair::MAX_DATA);
            match stream.read_buf(&mut rbuf).await {
                Ok(0) => return Err("closed before saying hello".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    };
    tokio::time::timeout(HELLO_TIMEOUT, greeted)
        .await
        .map_err(|_| format!("no hello within {} s", HELLO_TIMEOUT.as_secs()))??;
    Ok(Link {
        stream,
        rbuf,
        decoder,
    })
}

/// Join the port and forward until the link ends; the lines go low after.
async fn serve(
    link: Link,
    peer: SocketAddr,
    port: &PortHandle,
    events: &EventSink,
    cancel: &CancellationToken,
) {
    let session = match port.attach(peer).await {
        Ok(s) => s,
        Err(e) => {
            refuse(port, events, peer, e.to_string());
            return;
        }
    };
    let _active = crate::ActiveConnection::new(port.counters());
    events.emit(port.number(), EventKind::SessionOpened { peer });
    let reason = tokio::select! {
        _ = cancel.cancelled() => "port stopped".to_owned(),
        why = forward(link, &session) => why,
    };
    // Best effort: a stopping port or a missing device cannot be told.
    let _ = drive(&session, false, false).await;
    drop(session);
    events.emit(port.number(), EventKind::SessionClosed { peer, reason });
}

/// Both directions at once (neither waits for the other, so two busy
/// sides cannot block each other); returns why the link ended.
async fn forward(link: Link, session: &Session) -> String {
    let Link {
        stream,
        mut rbuf,
        mut decoder,
    } = link;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let from_peer = async {
        loop {
            loop {
                match decoder.decode(&mut rbuf) {
                    Ok(Some(Frame::Data(data))) => {
                        if session.send(data).await.is_err() {
                            return "port stopped".to_owned();
                        }
                    }
                    Ok(Some(Frame::Lines(lines))) => {
                        if let Err(why) = drive(session, lines.cts, lines.dsr).await {
                            return why;
                        }
                    }
                    // Refused by the decoder after the first one.
                    Ok(Some(Frame::Hello)) => {}
                    Ok(None) => break,
                    Err(e) => return format!("dropped: {e}"),
                }
            }
            if rbuf.capacity() - rbuf.len() < NET_READ / 2 {
                rbuf.reserve(NET_READ);
            }
            match rd.read_buf(&mut rbuf).await {
                Ok(0) => return "closed by peer".to_owned(),
                Ok(_) => {}
                Err(e) => return format!("read error: {e}"),
            }
        }
    };
    let to_peer = async {
        let mut modem = session.port().watch_modem();
        let mut sent = inputs(*modem.borrow_and_update());
        let mut out = BytesMut::new();
        Frame::Lines(sent).encode(&mut out);
        let mut chunks = Vec::new();
        let mut output = Vec::new();
        loop {
            if !out.is_empty() {
                chunks.push(out.split().freeze());
            }
            if let Err(why) = session.write_out(&mut wr, &mut chunks).await {
                return why;
            }
            tokio::select! {
                r = session.recv(&mut output) => match r {
                    Ok(()) => {
                        for chunk in output.drain(..) {
                            pair::encode_data(&chunk, &mut out);
                        }
                    }
                    Err(reason) => return reason.to_string(),
                },
                r = modem.changed() => {
                    if r.is_err() {
                        return "port stopped".to_owned();
                    }
                    // Our own RTS/DTR changes show up here too; only the
                    // inputs are the peer's business.
                    let now = inputs(*modem.borrow_and_update());
                    if now != sent {
                        sent = now;
                        Frame::Lines(now).encode(&mut out);
                    }
                }
            }
        }
    };
    tokio::select! {
        why = from_peer => why,
        why = to_peer => why,
    }
}

fn inputs(m: ModemStatus) -> Lines {
    Lines {
        cts: m.cts,
        dsr: m.dsr,
        dcd: m.dcd,
    }
}

/// Set RTS and DTR, except a line the port's flow control owns. A device
/// without modem lines (a pty) is not an error; a stopped port is.
async fn drive(session: &Session, rts: bool, dtr: bool) -> Result<(), String> {
    let flow = session.port().settings().flow;
    let wanted = [
        (flow != FlowControl::RtsCts).then_some(Control::Rts(rts)),
        (flow != FlowControl::DtrDsr).then_some(Control::Dtr(dtr)),
    ];
    for control in wanted.into_iter().flatten() {
        match session.control(control).await {
            Ok(_) | Err(ControlError::DeviceMissing) => {}
            Err(ControlError::Serial(e)) => {
                tracing::debug!(port = session.port().number(), "modem line not set: {e}");
            }
            Err(ControlError::Stopped) => return Err("port stopped".to_owned()),
        }
    }
    Ok(())
}

/// RTS and DTR low: what the device sees while no link is up.
async fn lines_low(port: &PortHandle) {
    if let Ok(session) = port.attach(NO_PEER).await {
        let _ = drive(&session, false, false).await;
    }
}

/// Wait until the port's device is open; false when stopping.
async fn wait_open(port: &PortHandle, cancel: &CancellationToken) -> bool {
    let mut state = port.watch_state();
    loop {
        if matches!(*state.borrow_and_update(), PortState::Open) {
            return true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            r = state.changed() => if r.is_err() { return false },
        }
    }
}

/// Wait `delay` between the master's attempts, lowering the lines again if
/// the device is reopened meanwhile (opening a tty raises them). False
/// when stopping.
async fn idle(port: &PortHandle, delay: Duration, cancel: &CancellationToken) -> bool {
    let mut state = port.watch_state();
    state.borrow_and_update();
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = &mut sleep => return true,
            r = state.changed() => {
                if r.is_err() {
                    return false;
                }
                if matches!(*state.borrow_and_update(), PortState::Open) {
                    lines_low(port).await;
                }
            }
        }
    }
}

/// The slave's lines while no master is linked: low whenever the device
/// opens (first start, recovery). The slot is held meanwhile so that a
/// link starting at that moment cannot have its lines overwritten.
async fn keep_idle_lines_low(port: PortHandle, slot: Arc<Semaphore>, cancel: CancellationToken) {
    let mut state = port.watch_state();
    loop {
        if matches!(*state.borrow_and_update(), PortState::Open)
            && let Ok(_permit) = slot.try_acquire()
        {
            lines_low(&port).await;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = state.changed() => if r.is_err() { return },
        }
    }
}

/// Reconnect delays: the first `min`, doubling up to `max`, back to `min`
/// once a link was made.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min_ms: u32, max_ms: u32) -> Backoff {
        let min = Duration::from_millis(u64::from(min_ms));
        Backoff {
            min,
            max: Duration::from_millis(u64::from(max_ms)).max(min),
            next: min,
        }
    }

    /// The delay to wait now; the next one is twice as long, up to `max`.
    pub(crate) fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).min(self.max);
        now
    }

    /// A link was made: start from `min` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    pub(crate) fn min(&self) -> Duration {
        self.min
    }
}

/// Connect to the slave: an address, or a name whose addresses are tried
/// in turn, each within [`CONNECT_TIMEOUT`].
async fn connect(host: &str, port: u16, alive_check_min: u8) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                crate::net::configure_stream(&stream, alive_check_min)
                    .map_err(|e| format!("socket options: {e}"))?;
                return Ok(stream);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".to_owned(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(100, 350);
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            [b.next(), b.next(), b.next(), b.next()].map(ms),
            [100, 200, 350, 350]
        );
        b.reset();
        assert_eq!(ms(b.next()), 100);
        assert_eq!(ms(b.min()), 100);
    }
}
