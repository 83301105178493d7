//! Real COM mode: Moxa's ASPP protocol for the host drivers (npreal2, the
//! Windows driver) and `ttyward attach` (`spec/realcom-protocol.md`).
//!
//! Each host opens two TCP connections per serial port: a *data*
//! connection carrying raw bytes (served like TCP Server mode, through
//! [`crate::raw::pump`]) and a *command* connection carrying ASPP commands,
//! decoded by the sans-IO `ttyward_proto::realcom` and turned into
//! [`Control`]s here.
//!
//! Pairing (spec §2.4): a command connection is paired with the oldest
//! unpaired data connection of the same peer address, whichever came first.
//! Until it is paired its bytes are not read, and after [`PAIR_WAIT`] it is
//! closed: control commands are only ever applied for a peer that has a data
//! connection open (the rule from CVE-2026-10831, which let any host that
//! could reach the command port break or reconfigure a line in use). Closing
//! either connection of a pair closes the other.
//!
//! Not done here: received-break and line-error reporting (the device layer
//! does not report them, so BREAK_COUNT and DATA_STATUS answer 0); custom
//! XON/XOFF characters (acknowledged, the tty keeps ^Q/^S); discarding the
//! unread bytes of the data socket on FLUSH.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{LineOnDown, RealComMode};
use ttyward_proto::realcom::{
    AliveAction, AlivePoller, CommandDecoder, Decoded, Flow, FlushMode, LineMode, ModemInputs,
    NotifyTracker, Reply, Request, WireParity, baud_from_index,
};
use ttyward_serial::{
    BaudRate, DataBits, FlowControl, FlushDirection, ModemStatus, Parity, SerialSettings, StopBits,
};

use crate::counters::add;
use crate::event::{EventKind, EventSink};
use crate::gate::Gate;
use crate::port::{Control, PortHandle, PortSnapshot, SerialChange, Session};

/// Command connections allowed beyond `max_connections`.
const UNPAIRED_SLACK: usize = 4;
/// How long a command connection may wait for its data connection.
const PAIR_WAIT: Duration = Duration::from_secs(10);
/// How long a paired data connection holds device output back waiting for
/// the first PORT_INIT (spec §12.9: npreal2 may drop data that arrives
/// before the tty is initialised).
const INIT_WAIT: Duration = Duration::from_secs(10);
/// How often a pending drain (WAIT_OQUEUE) looks at the device queue.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// Longest drain at the end of the last connection (Moxa: 3 s).
const CLOSE_DRAIN: Duration = Duration::from_secs(3);
/// How long the IPv6 preamble (spec §2.3) may take to arrive.
const PREAMBLE_WAIT: Duration = Duration::from_secs(10);

/// Real COM parameters of one port, as the engine runs them.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub mode: RealComMode,
    /// The port's configured line settings, restored when the first host
    /// connects (Moxa opens the port with its stored settings).
    pub settings: SerialSettings,
    /// Real COM mode (true), or TCP Server mode with a command port, which
    /// speaks the same commands without the driver's extras: no NOTIFY, no
    /// alive polling, no line changes at connect and disconnect (spec §7).
    pub driver: bool,
    /// TCP Server's inactivity time (Real COM has none).
    pub inactivity: Option<Duration>,
    /// Secure Connection of the data connections (the command connection
    /// stays plain, as Moxa's driver keeps it: spec §10).
    pub tls: crate::tls::PortTls,
}

impl Params {
    /// TCP Server mode with its command port.
    pub(crate) fn tcp_server(
        m: &ttyward_core::config::TcpServerMode,
        command_port: u16,
        settings: &SerialSettings,
        tls: &crate::tls::PortTls,
    ) -> Params {
        Params {
            mode: RealComMode {
                bind: m.bind.clone(),
                data_port: m.local_port,
                command_port,
                max_connections: m.max_connections,
                alive_check_min: m.alive_check_min,
                allow_driver_control: false,
                connection_down_rts: LineOnDown::AlwaysHigh,
                connection_down_dtr: LineOnDown::AlwaysHigh,
                alive: Default::default(),
            },
            settings: settings.clone(),
            driver: false,
            inactivity: (m.inactivity_ms > 0)
                .then(|| Duration::from_millis(m.inactivity_ms.into())),
            tls: tls.clone(),
        }
    }
}

impl Params {
    /// Only one host: it has full control of the port (Moxa's "realtty").
    fn single_host(&self) -> bool {
        self.mode.max_connections == 1
    }

    /// Whether control commands are applied, not only acknowledged.
    fn may_control(&self) -> bool {
        self.single_host() || self.mode.allow_driver_control
    }
}

/// Accept on the port's data and command listeners until cancelled.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    data: Vec<TcpListener>,
    command: Vec<TcpListener>,
    port: PortHandle,
    params: Params,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let limit = usize::from(params.mode.max_connections);
    let shared = Arc::new(Shared {
        port,
        params,
        gate,
        events,
        cancel,
        tracker: tracker.clone(),
        pairs: Mutex::new(Pairs::default()),
        line: tokio::sync::Mutex::new(()),
        data_slots: Arc::new(Semaphore::new(limit)),
        // Room for a few unpaired command connections more than hosts, so a
        // stranger holding one (it is closed after PAIR_WAIT) or a host
        // reconnecting before its old pair is gone does not lock a host out.
        command_slots: Arc::new(Semaphore::new(limit + UNPAIRED_SLACK)),
    });
    for (listener, channel) in data
        .into_iter()
        .map(|l| (l, Channel::Data))
        .chain(command.into_iter().map(|l| (l, Channel::Command)))
    {
        tracker.spawn(shared.clone().accept(listener, channel));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Data,
    Command,
}

/// What the accept loops and connections of one port share.
struct Shared {
    port: PortHandle,
    params: Params,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: TaskTracker,
    // A std Mutex: a few vector operations, never held across an await.
    pairs: Mutex<Pairs>,
    /// Held while the line is opened for the first host or closed after
    /// the last: a host reconnecting at once waits for the old session's
    /// close, which then leaves the line alone (spec §6.7).
    line: tokio::sync::Mutex<()>,
    data_slots: Arc<Semaphore>,
    command_slots: Arc<Semaphore>,
}

/// Connections waiting for their other half, and the number of open data
/// connections (the port is "in use" while it is above 0).
#[derive(Default)]
struct Pairs {
    unpaired_data: Vec<(IpAddr, Weak<Link>)>,
    waiting_commands: Vec<(IpAddr, oneshot::Sender<Weak<Link>>)>,
    open_data: usize,
}

/// A data connection as its command connection sees it.
struct Link {
    session: Session,
    /// Cancelled when either connection of the pair ends.
    closed: CancellationToken,
    /// Set once the first PORT_INIT has been answered.
    initialised: watch::Sender<bool>,
}

impl Shared {
    async fn accept(self: Arc<Self>, listener: TcpListener, channel: Channel) {
        let (gate, port, events, cancel) = (&self.gate, &self.port, &self.events, &self.cancel);
        while let Some((stream, peer, admitted)) =
            crate::gate::next_admitted(&listener, gate, port, events, cancel).await
        {
            let slots = match channel {
                Channel::Data => &self.data_slots,
                Channel::Command => &self.command_slots,
            };
            // Over the limit: accepted and closed at once, as Moxa does.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                self.refuse(peer, "max connections reached");
                continue;
            };
            if let Err(e) = crate::net::configure_stream(&stream, self.params.mode.alive_check_min)
            {
                tracing::debug!("socket options for {peer}: {e}");
            }
            let me = self.clone();
            self.tracker.spawn(async move {
                match channel {
                    Channel::Data => me.serve_data(stream, peer, permit).await,
                    Channel::Command => {
                        me.serve_command(stream, peer).await;
                        drop(permit);
                    }
                }
                drop(admitted);
            });
        }
    }

    fn refuse(&self, peer: SocketAddr, reason: &str) {
        add(&self.port.counters().connections_refused, 1);
        self.events.emit(
            self.port.number(),
            EventKind::ConnectionRefused {
                peer,
                reason: reason.into(),
            },
        );
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, Pairs> {
        // A panic while holding this lock cannot leave the table half
        // changed in a way that matters more than losing the port.
        self.pairs.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn serve_data(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) {
        let tls = &self.params.tls;
        let secured = crate::tcp_server::secure(stream, peer, &self.port, tls, &self.events);
        let Some(conn) = secured.await else {
            return;
        };
        let session = match self.port.attach(peer).await {
            Ok(s) => s,
            Err(e) => return self.refuse(peer, &e.to_string()),
        };
        let _active = crate::ActiveConnection::new(self.port.counters());
        self.events
            .emit(self.port.number(), EventKind::SessionOpened { peer });
        let link = Arc::new(Link {
            session,
            closed: self.cancel.child_token(),
            initialised: watch::channel(false).0,
        });
        let driver = self.params.driver;
        // The line is opened before the host's commands can reach it, so
        // the stored settings never overwrite the host's PORT_INIT.
        if self.count_data() && driver {
            self.connection_up(&link.session).await;
        }
        self.pair_data(peer.ip(), &link);
        if driver {
            // npreal2 sends PORT_INIT right after connecting; device output
            // waits for it in this session's queue. Also while the command
            // connection has not come yet (the two are accepted by separate
            // tasks, in either order): it marks this link once paired.
            let mut init = link.initialised.subscribe();
            tokio::select! {
                _ = init.wait_for(|done| *done) => {}
                _ = tokio::time::sleep(INIT_WAIT) => {}
                _ = link.closed.cancelled() => {}
            }
        }
        let reason = crate::raw::pump(
            conn,
            &link.session,
            Vec::new(),
            self.params.inactivity,
            &self.cancel,
            async {
                link.closed.cancelled().await;
                "command connection closed"
            },
        )
        .await;
        link.closed.cancel();
        let last = self.unregister_data(&link);
        // The slot is free before the line is closed: npreal2 reconnects at
        // once after a drop and must not be turned away meanwhile.
        drop(slot);
        if last && driver {
            self.connection_down(&link.session).await;
        }
        self.events.emit(
            self.port.number(),
            EventKind::SessionClosed { peer, reason },
        );
    }

    /// Count a new data connection; true when it is the only one open.
    fn count_data(&self) -> bool {
        let mut pairs = self.pairs();
        pairs.open_data += 1;
        pairs.open_data == 1
    }

    /// Pair a data connection with a waiting command connection of the
    /// same peer, or leave it for one to come.
    fn pair_data(&self, ip: IpAddr, link: &Arc<Link>) {
        let mut pairs = self.pairs();
        let mut weak = Arc::downgrade(link);
        while let Some(i) = pairs.waiting_commands.iter().position(|(a, _)| *a == ip) {
            let (_, tx) = pairs.waiting_commands.remove(i);
            match tx.send(weak) {
                Ok(()) => return,
                // That command connection gave up meanwhile: try the next.
                Err(back) => weak = back,
            }
        }
        pairs.unpaired_data.push((ip, weak));
    }

    /// Forget a data connection; true when it was the last one open.
    fn unregister_data(&self, link: &Arc<Link>) -> bool {
        let mut pairs = self.pairs();
        let me = Arc::downgrade(link);
        pairs.unpaired_data.retain(|(_, w)| !w.ptr_eq(&me));
        pairs.open_data = pairs.open_data.saturating_sub(1);
        pairs.open_data == 0
    }

    /// The first host connected: the port starts from its stored settings
    /// with DTR and RTS raised (spec §2.4).
    async fn connection_up(&self, session: &Session) {
        let _line = self.line.lock().await;
        let s = &self.params.settings;
        let stored = SerialChange {
            baud: Some(s.baud),
            data_bits: Some(s.data_bits),
            parity: Some(s.parity),
            stop_bits: Some(s.stop_bits),
            flow: Some(s.flow),
        };
        for control in [
            Control::Serial(stored),
            Control::HoldOutput(false),
            Control::Dtr(true),
            Control::Rts(true),
        ] {
            if let Err(e) = session.control(control).await {
                tracing::debug!(port = self.port.number(), "opening the line: {e}");
            }
        }
    }

    /// The last host left: let the device send what it has (up to 3 s),
    /// then set DTR and RTS as configured, so the device can tell the link
    /// is down (NPort "connection goes down").
    async fn connection_down(&self, session: &Session) {
        let _line = self.line.lock().await;
        let reconnected = || self.pairs().open_data > 0;
        let deadline = Instant::now() + CLOSE_DRAIN;
        while let Ok(snap) = session.control_now(Control::Query).await {
            if snap.output_queued == 0 || Instant::now() >= deadline || reconnected() {
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        if reconnected() {
            // A host is back (npreal2's session recovery): the line is its.
            return;
        }
        let level = |l: LineOnDown| l == LineOnDown::AlwaysHigh;
        let m = &self.params.mode;
        for control in [
            Control::Break(false),
            Control::HoldOutput(false),
            Control::Dtr(level(m.connection_down_dtr)),
            Control::Rts(level(m.connection_down_rts)),
        ] {
            if let Err(e) = session.control(control).await {
                tracing::debug!(port = self.port.number(), "closing the line: {e}");
            }
        }
    }

    async fn serve_command(&self, mut stream: TcpStream, peer: SocketAddr) {
        if needs_preamble(peer.ip())
            && let Err(e) = echo_preamble(&mut stream).await
        {
            tracing::debug!(
                port = self.port.number(),
                "Real COM preamble from {peer}: {e}"
            );
            return;
        }
        let Some(link) = self.pair_command(peer.ip()).await else {
            if !self.cancel.is_cancelled() {
                // The CVE-2026-10831 rule at work: worth the event log, as
                // any refused connection is.
                self.refuse(
                    peer,
                    "Real COM command connection without a data connection from that host",
                );
            }
            return;
        };
        let Some(closed) = link.upgrade().map(|l| l.closed.clone()) else {
            return;
        };
        let mut conn = CommandConnection::new(self, link, stream);
        let Err(why) = conn.run(&closed).await;
        // Real COM: a pair lives and dies together (spec §2.4).
        closed.cancel();
        tracing::debug!(
            port = self.port.number(),
            "Real COM command connection from {peer} ended: {why}"
        );
    }

    /// Wait for this peer's data connection (or take one already open).
    async fn pair_command(&self, ip: IpAddr) -> Option<Weak<Link>> {
        let rx = {
            let mut pairs = self.pairs();
            if let Some(i) = pairs.unpaired_data.iter().position(|(a, _)| *a == ip) {
                return Some(pairs.unpaired_data.remove(i).1);
            }
            let (tx, rx) = oneshot::channel();
            pairs.waiting_commands.push((ip, tx));
            rx
        };
        let paired = tokio::select! {
            r = rx => r.ok(),
            _ = tokio::time::sleep(PAIR_WAIT) => None,
            _ = self.cancel.cancelled() => None,
        };
        if paired.is_none() {
            // Drop our waiting entry (its receiver is gone with `rx`).
            self.pairs()
                .waiting_commands
                .retain(|(_, tx)| !tx.is_closed());
        }
        paired
    }
}

/// npreal2 over IPv6 first sends 16 bytes on the command connection and
/// waits for 16 back (spec §2.3); IPv4-mapped peers are IPv4 hosts.
fn needs_preamble(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
    }
}

async fn echo_preamble(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut preamble = [0u8; 16];
    tokio::time::timeout(PREAMBLE_WAIT, stream.read_exact(&mut preamble))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.write_all(&preamble).await
}

/// One paired command connection.
struct CommandConnection<'a> {
    shared: &'a Shared,
    link: Weak<Link>,
    stream: TcpStream,
    decoder: CommandDecoder,
    notify: NotifyTracker,
    alive: AlivePoller,
    /// (deadline) of a WAIT_OQUEUE waiting for the device to drain.
    drain: Option<Instant>,
    /// Port traffic seen at the last alive check.
    traffic: u64,
    initialised: bool,
}

impl<'a> CommandConnection<'a> {
    fn new(shared: &'a Shared, link: Weak<Link>, stream: TcpStream) -> Self {
        let now = Instant::now().into_std();
        CommandConnection {
            shared,
            link,
            stream,
            decoder: CommandDecoder::new(),
            notify: NotifyTracker::default(),
            alive: AlivePoller::new(shared.params.mode.alive, now),
            drain: None,
            traffic: 0,
            initialised: false,
        }
    }

    /// Serve until the connection ends; the error says why.
    async fn run(&mut self, closed: &CancellationToken) -> Result<Infallible, String> {
        // Watching the lines costs the port a poll every 50 ms: only for
        // Real COM, the one mode that reports them.
        let mut modem = match self.shared.params.driver {
            true => Some(self.shared.port.watch_modem()),
            false => None,
        };
        let mut rbuf = Vec::with_capacity(512);
        let mut decoded = Vec::new();
        loop {
            let alive_at = self.alive.next_deadline().map(Instant::from_std);
            let drain_at = self.drain.map(|_| Instant::now() + DRAIN_POLL);
            rbuf.clear();
            tokio::select! {
                _ = closed.cancelled() => return Err("data connection closed".into()),
                _ = self.shared.cancel.cancelled() => return Err("port stopped".into()),
                r = self.stream.read_buf(&mut rbuf) => match r {
                    Ok(0) => return Err("closed by peer".into()),
                    Ok(_) => {
                        self.decoder.push(&rbuf, &mut decoded);
                        for d in decoded.drain(..) {
                            if let Decoded::Request(req) = d {
                                self.handle(req).await?;
                            }
                        }
                    }
                    Err(e) => return Err(format!("read error: {e}")),
                },
                // Before the first PORT_INIT the change is left for its
                // reply to carry: npreal2 expects that reply first.
                Some(lines) = changed(&mut modem), if self.initialised => {
                    if let Some(n) = self.notify.update(inputs(&lines), 0, 0) {
                        self.send(&[n]).await?;
                    }
                }
                _ = sleep_until(alive_at) => {
                    self.note_traffic();
                    match self.alive.poll(Instant::now().into_std()) {
                        AliveAction::Nothing => {}
                        AliveAction::Send(poll) => self.send(&[poll]).await?,
                        AliveAction::Dead => return Err("host stopped answering alive polls".into()),
                    }
                }
                _ = sleep_until(drain_at) => self.check_drain().await?,
            }
        }
    }

    /// Data moving on the port counts as a sign of life (spec §4.15).
    fn note_traffic(&mut self) {
        let c = self.shared.port.counters();
        let now = c.device_rx_bytes.load(Relaxed) + c.device_tx_bytes.load(Relaxed);
        if now != self.traffic {
            self.traffic = now;
            self.alive.activity(Instant::now().into_std());
        }
    }

    /// Write replies in one write (npreal2 reads replies without
    /// reassembly: spec §3.2).
    async fn send(&mut self, replies: &[Reply]) -> Result<(), String> {
        let mut out = Vec::with_capacity(16);
        for r in replies {
            r.encode(&mut out);
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| format!("write error: {e}"))
    }

    /// Send `reply`, followed in the same write by a NOTIFY when the lines
    /// changed since the last one (spec §4.14).
    async fn send_with_notify(&mut self, reply: Reply, snap: &PortSnapshot) -> Result<(), String> {
        if !self.shared.params.driver {
            return self.send(&[reply]).await;
        }
        match self.notify.update(inputs(&snap.modem), 0, 0) {
            Some(n) => self.send(&[reply, n]).await,
            None => self.send(&[reply]).await,
        }
    }

    /// Carry out `control`. Queries, output hold and purges go ahead of
    /// queued data: held or flow-blocked output must not stop the very
    /// commands that release it (SETXON, FLUSH, LSTATUS). Line settings,
    /// modem lines and breaks keep their place after earlier data.
    async fn control(&self, control: Control) -> Result<PortSnapshot, String> {
        let link = self.link.upgrade().ok_or("data connection closed")?;
        let now = matches!(
            control,
            Control::Query | Control::HoldOutput(_) | Control::Purge(_)
        );
        let result = match now {
            true => link.session.control_now(control).await,
            false => link.session.control(control).await,
        };
        result.map_err(|e| e.to_string())
    }

    /// Apply `control` if this host may control the port; the state after.
    async fn apply(&self, controls: Vec<Control>) -> Result<PortSnapshot, String> {
        if self.shared.params.may_control() {
            for c in controls {
                if let Err(e) = self.control(c).await {
                    tracing::debug!(port = self.shared.port.number(), "Real COM control: {e}");
                }
            }
        }
        self.control(Control::Query).await
    }

    async fn handle(&mut self, req: Request) -> Result<(), String> {
        let now = Instant::now().into_std();
        let code = req.code();
        let single = self.shared.params.single_host();
        match req {
            Request::PortInit {
                baud_index,
                mode,
                dtr,
                rts,
                flow,
            } => {
                let mut change = line_change(baud_index, mode);
                change.flow = Some(flow_control(flow));
                let may = self.shared.params.may_control();
                let refused = may && self.control(Control::Serial(change)).await.is_err();
                let snap = self
                    .apply(vec![Control::Dtr(dtr), Control::Rts(rts)])
                    .await?;
                let reply = if refused {
                    // All FF: npreal2 treats the speed as refused and puts
                    // the old one back into termios (spec §4.1).
                    Reply::PortInitRefused
                } else {
                    Reply::PortInit {
                        dsr: snap.modem.dsr,
                        cts: snap.modem.cts,
                        dcd: snap.modem.dcd,
                    }
                };
                self.send_with_notify(reply, &snap).await?;
                self.alive.set_enabled(self.shared.params.driver, now);
                if !self.initialised {
                    self.initialised = true;
                    if let Some(link) = self.link.upgrade() {
                        link.initialised.send_replace(true);
                    }
                }
            }
            Request::Ioctl { baud_index, mode } => {
                self.apply(vec![Control::Serial(line_change(baud_index, mode))])
                    .await?;
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::FlowCtl(flow) => {
                let change = SerialChange {
                    flow: Some(flow_control(flow)),
                    ..Default::default()
                };
                self.apply(vec![Control::Serial(change)]).await?;
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::LineCtrl { dtr, rts } => {
                self.apply(vec![Control::Dtr(dtr), Control::Rts(rts)])
                    .await?;
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::LineStatus => {
                let snap = self.control(Control::Query).await?;
                let reply = Reply::LineStatus {
                    dsr: snap.modem.dsr,
                    cts: snap.modem.cts,
                    dcd: snap.modem.dcd,
                };
                self.send_with_notify(reply, &snap).await?;
            }
            Request::Flush(mode) | Request::FlushStart { mode, .. } => {
                if single {
                    self.apply(vec![Control::Purge(flush_direction(mode))])
                        .await?;
                }
                let reply = if matches!(req, Request::Flush(_)) {
                    Reply::Ok(code)
                } else {
                    Reply::FlushStart(0)
                };
                self.send(&[reply]).await?;
            }
            Request::InputQueue => {
                let snap = self.control(Control::Query).await?;
                self.send(&[Reply::InputQueue(clamp16(snap.input_queued))])
                    .await?;
            }
            Request::OutputQueue => {
                let snap = self.control(Control::Query).await?;
                self.send(&[Reply::OutputQueue(clamp16(snap.output_queued))])
                    .await?;
            }
            Request::SetBaud(bps) => {
                let reply = match BaudRate::new(bps) {
                    Ok(baud) if self.shared.params.may_control() => {
                        let change = SerialChange {
                            baud: Some(baud),
                            ..Default::default()
                        };
                        match self.control(Control::Serial(change)).await {
                            Ok(_) => Reply::Ok(code),
                            Err(_) => Reply::Refused(code),
                        }
                    }
                    Ok(_) => Reply::Ok(code),
                    Err(_) => Reply::Refused(code),
                };
                self.send(&[reply]).await?;
            }
            Request::BreakOn | Request::BreakOff => {
                self.apply(vec![Control::Break(req == Request::BreakOn)])
                    .await?;
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::BreakSend { ms } => {
                if self.shared.params.may_control() {
                    self.apply(vec![Control::Break(true)]).await?;
                    tokio::time::sleep(Duration::from_millis(ms.into())).await;
                    self.apply(vec![Control::Break(false)]).await?;
                }
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::SetXon | Request::SetXoff => {
                if single {
                    self.apply(vec![Control::HoldOutput(req == Request::SetXoff)])
                        .await?;
                }
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::NotifyOn => {
                self.alive.set_enabled(self.shared.params.driver, now);
                let snap = self.control(Control::Query).await?;
                self.send_with_notify(Reply::Ok(code), &snap).await?;
            }
            Request::NotifyOff => {
                self.alive.set_enabled(false, now);
                self.send(&[Reply::Ok(code)]).await?;
            }
            Request::Alive { .. } => self.alive.alive_reply(now),
            Request::WaitOutputQueue { timeout } => {
                if !single {
                    return self.send(&[Reply::WaitOutputQueue(0)]).await;
                }
                if self.drain.is_some() {
                    // One drain at a time: answer the older one now.
                    self.finish_drain().await?;
                }
                // Moxa reads the timeout as ms and answers 50 ms early.
                let ms = u64::from(timeout.max(1)).saturating_sub(50);
                self.drain = Some(Instant::now() + Duration::from_millis(ms));
                self.check_drain().await?;
            }
            Request::FlushStop
            | Request::XonXoff { .. }
            | Request::Reset
            | Request::TxFifo(_)
            | Request::DsrSensitivity(_) => self.send(&[Reply::Ok(code)]).await?,
            Request::BreakCount => self.send(&[Reply::BreakCount(0)]).await?,
            Request::DataStatus => self.send(&[Reply::DataStatus(0)]).await?,
        }
        Ok(())
    }

    /// Answer a pending WAIT_OQUEUE once the device has sent everything or
    /// its time is up.
    async fn check_drain(&mut self) -> Result<(), String> {
        let Some(deadline) = self.drain else {
            return Ok(());
        };
        let snap = self.control(Control::Query).await?;
        if snap.output_queued == 0 || Instant::now() >= deadline {
            self.drain = None;
            self.send(&[Reply::WaitOutputQueue(clamp16(snap.output_queued))])
                .await?;
        }
        Ok(())
    }

    async fn finish_drain(&mut self) -> Result<(), String> {
        self.drain = Some(Instant::now());
        self.check_drain().await
    }
}

/// The next modem-line state, if lines are watched.
async fn changed(modem: &mut Option<watch::Receiver<ModemStatus>>) -> Option<ModemStatus> {
    match modem {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn inputs(m: &ModemStatus) -> ModemInputs {
    ModemInputs {
        cts: m.cts,
        dsr: m.dsr,
        ri: m.ri,
        dcd: m.dcd,
    }
}

fn clamp16(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Baud (when in the index table; 0xFF means a SETBAUD follows, so the
/// speed is kept), data bits, parity and stop bits of a PORT_INIT or IOCTL.
fn line_change(baud_index: u8, mode: LineMode) -> SerialChange {
    let data_bits = match mode.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let stop_bits = match (mode.two_stop_bits, data_bits) {
        (false, _) => StopBits::One,
        // A 16550 sends 1.5 stop bits for "2" with 5 data bits.
        (true, DataBits::Five) => StopBits::OnePointFive,
        (true, _) => StopBits::Two,
    };
    let parity = match mode.parity {
        WireParity::None => Parity::None,
        WireParity::Even => Parity::Even,
        WireParity::Odd => Parity::Odd,
        WireParity::Mark => Parity::Mark,
        WireParity::Space => Parity::Space,
    };
    SerialChange {
        baud: baud_from_index(baud_index).and_then(|b| BaudRate::new(b).ok()),
        data_bits: Some(data_bits),
        parity: Some(parity),
        stop_bits: Some(stop_bits),
        flow: None,
    }
}

/// ASPP has hardware (CTS/RTS) and software flow bits, no DTR/DSR (§5.3).
fn flow_control(flow: Flow) -> FlowControl {
    if flow.cts_out || flow.rts_in {
        FlowControl::RtsCts
    } else if flow.ixon || flow.ixoff {
        FlowControl::XonXoff
    } else {
        FlowControl::None
    }
}

fn flush_direction(mode: FlushMode) -> FlushDirection {
    match mode {
        FlushMode::Input => FlushDirection::Input,
        FlushMode::Output => FlushDirection::Output,
        FlushMode::Both => FlushDirection::Both,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_ipv6_peers_send_the_preamble() {
        assert!(!needs_preamble("127.0.0.1".parse().expect("ip")));
        assert!(!needs_preamble("::ffff:10.0.0.1".parse().expect("ip")));
        assert!(needs_preamble("::1".parse().expect("ip")));
    }

    #[test]
    fn line_mode_maps_to_serial_settings() {
        let mode = LineMode {
            data_bits: 7,
            two_stop_bits: false,
            parity: WireParity::Even,
        };
        let c = line_change(6, mode);
        assert_eq!(c.baud.map(BaudRate::get), Some(9600));
        assert_eq!(c.data_bits, Some(DataBits::Seven));
        assert_eq!(c.parity, Some(Parity::Even));
        assert_eq!(c.stop_bits, Some(StopBits::One));
        let five = LineMode {
            data_bits: 5,
            two_stop_bits: true,
            parity: WireParity::Mark,
        };
        let c = line_change(0xFF, five);
        assert_eq!(c.baud, None, "0xFF keeps the speed: a SETBAUD follows");
        assert_eq!(c.stop_bits, Some(StopBits::OnePointFive));
        assert_eq!(c.parity, Some(Parity::Mark));
    }

    #[test]
    fn flow_bits_map_to_flow_control() {
        let hw = Flow {
            cts_out: true,
            rts_in: true,
            ..Flow::default()
        };
        assert_eq!(flow_control(hw), FlowControl::RtsCts);
        let sw = Flow {
            ixon: true,
            ..Flow::default()
        };
        assert_eq!(flow_control(sw), FlowControl::XonXoff);
        assert_eq!(flow_control(Flow::default()), FlowControl::None);
    }
}
