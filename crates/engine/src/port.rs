//! The port actor: one task per serial port, the only owner of its device.
//!
//! Front-ends never touch the device. They [`PortHandle::attach`] a
//! [`Session`], which gives them:
//! * an outbox of device output (every session gets every byte; see
//!   [`crate::outbox`] for what happens to a slow one), and
//! * a sender into the port's single inbound queue, which carries network
//!   data *and* control requests (baud, DTR, break, ...). One queue for both
//!   keeps them in arrival order: bytes sent before a baud change go out at
//!   the old rate. While that queue is empty a session writes to the device
//!   itself ([`crate::inbound`]).
//!
//! When the device fails (USB unplug, pty closed) every session is closed
//! with [`CloseReason::DeviceMissing`] — clients are told, not left hanging —
//! and the actor retries opening it with exponential backoff until it is
//! back, reporting both transitions as events.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::ready;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use ttyward_core::config::{PortConfig, SessionPolicy};
use ttyward_proto::packing::Packer;
use ttyward_serial::{
    BaudRate, DataBits, DeviceSpec, FlowControl, FlushDirection, ModemStatus, Parity, SerialDevice,
    SerialError, SerialSettings, StopBits,
};

use crate::counters::{PortCounters, add, add_device_bytes};
use crate::event::{EventKind, EventSink};
use crate::inbound::{self, Inbound, InboundReceiver, InboundSender, InboundWriter, Pending};
use crate::outbox::{CloseReason, Outbox, Push};

/// Largest single read from the device.
const READ_BUF: usize = 16 * 1024;
/// Size of the blocks device reads are cut from (see `serve`).
const READ_BLOCK: usize = 64 * 1024;
/// Chunks from the network waiting for the device (backpressure to TCP beyond).
const INBOUND_QUEUE: usize = 16;
/// How often modem inputs are sampled while someone watches them.
const MODEM_POLL: Duration = Duration::from_millis(50);
const REOPEN_MIN: Duration = Duration::from_millis(100);
const REOPEN_MAX: Duration = Duration::from_secs(5);

/// Whether the port's device is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not opened yet.
    Starting,
    /// Open and forwarding.
    Open,
    /// Could not be opened or vanished; retrying.
    DeviceMissing {
        /// Last error.
        error: String,
    },
    /// The actor has ended.
    Stopped,
}

/// A change to the serial line settings; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SerialChange {
    pub baud: Option<BaudRate>,
    pub data_bits: Option<DataBits>,
    pub parity: Option<Parity>,
    pub stop_bits: Option<StopBits>,
    pub flow: Option<FlowControl>,
}

/// A control request from a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Change line settings.
    Serial(SerialChange),
    /// Set DTR.
    Dtr(bool),
    /// Set RTS.
    Rts(bool),
    /// Start or stop sending a break.
    Break(bool),
    /// Discard buffered data.
    Purge(FlushDirection),
    /// Hold (`true`) or resume device output, as if XOFF/XON had been
    /// received (Real COM SETXOFF/SETXON).
    HoldOutput(bool),
    /// Only report the current state.
    Query,
}

/// The port as a control request left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSnapshot {
    /// Line settings in force.
    pub settings: SerialSettings,
    /// Modem lines (inputs as last sampled, outputs as set).
    pub modem: ModemStatus,
    /// Whether a break is being sent.
    pub break_on: bool,
    /// Bytes the device driver holds, received and not yet read.
    pub input_queued: u32,
    /// Not yet sent on the line: the driver's output queue in bytes, plus
    /// one per chunk or request still queued in ttyward. Zero means all
    /// data sent so far has left.
    pub output_queued: u32,
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The device rejected the setting.
    #[error("{0}")]
    Serial(#[from] SerialError),
    /// The device is not open.
    #[error("serial device is missing")]
    DeviceMissing,
    /// The port actor has ended.
    #[error("port stopped")]
    Stopped,
}

/// Why [`PortHandle::attach`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The device is not open now.
    #[error("serial device missing")]
    DeviceMissing,
    /// The port actor has ended.
    #[error("port stopped")]
    Stopped,
}

enum Command {
    Attach(Arc<Outbox>, oneshot::Sender<Result<(), AttachError>>),
    /// A control that must not wait behind data (see `Session::control_now`).
    Now(Control, oneshot::Sender<Result<PortSnapshot, ControlError>>),
}

/// State shared by the actor and all handles.
#[derive(Debug)]
struct Shared {
    number: u16,
    device: String,
    counters: PortCounters,
    state: watch::Sender<PortState>,
    modem: watch::Sender<ModemStatus>,
    settings: Mutex<SerialSettings>,
    drained: Arc<Notify>,
    /// Wakes an idle actor when someone starts watching the modem lines.
    modem_wanted: Notify,
    policy: SessionPolicy,
}

/// The clonable side of a port actor.
#[derive(Clone, Debug)]
pub struct PortHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    inbound: InboundSender,
}

impl PortHandle {
    /// Port number.
    pub fn number(&self) -> u16 {
        self.shared.number
    }

    /// The device as configured ("/dev/ttyUSB0", "sim:echo").
    pub fn device(&self) -> &str {
        &self.shared.device
    }

    /// Traffic counters.
    pub fn counters(&self) -> &PortCounters {
        &self.shared.counters
    }

    /// Current state.
    pub fn state(&self) -> PortState {
        self.shared.state.borrow().clone()
    }

    /// Watch state changes.
    pub fn watch_state(&self) -> watch::Receiver<PortState> {
        self.shared.state.subscribe()
    }

    /// Line settings in force.
    pub fn settings(&self) -> SerialSettings {
        self.shared
            .settings
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Watch the modem lines; the actor samples them only while watched.
    pub fn watch_modem(&self) -> watch::Receiver<ModemStatus> {
        let rx = self.shared.modem.subscribe();
        self.shared.modem_wanted.notify_one();
        rx
    }

    /// Join the port: receive all device output from now on, send data and
    /// control requests.
    pub async fn attach(&self, peer: SocketAddr) -> Result<Session, AttachError> {
        let outbox = Outbox::new(
            self.shared.policy.queue_bytes as usize,
            self.shared.drained.clone(),
        );
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Attach(outbox.clone(), tx))
            .await
            .map_err(|_| AttachError::Stopped)?;
        rx.await.map_err(|_| AttachError::Stopped)??;
        Ok(Session {
            outbox,
            inbound: self.inbound.clone(),
            port: self.clone(),
            peer,
        })
    }
}

/// One network peer's membership of a port. Dropping it leaves the port.
#[derive(Debug)]
pub struct Session {
    outbox: Arc<Outbox>,
    inbound: InboundSender,
    port: PortHandle,
    peer: SocketAddr,
}

impl Session {
    /// The port this session belongs to.
    pub fn port(&self) -> &PortHandle {
        &self.port
    }

    /// The network peer.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Wait for device output and move all that is queued into `into`.
    /// Cancel-safe.
    pub async fn recv(&self, into: &mut Vec<Bytes>) -> Result<(), CloseReason> {
        self.outbox.pop_all(into).await
    }

    /// Write `chunks` to `w` unless the port drops this session as jammed
    /// meanwhile (the write may never finish: the peer does not read).
    pub async fn write_out<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        chunks: &mut Vec<Bytes>,
    ) -> Result<(), String> {
        tokio::select! {
            // Biased: a write that completes at once never arms the jam watch.
            biased;
            r = crate::net::write_chunks(w, chunks) => r.map_err(|e| format!("write error: {e}")),
            _ = self.outbox.jammed() => Err(CloseReason::Jammed.to_string()),
        }
    }

    /// Let the port write device output straight to `sock` whenever this
    /// session has nothing queued, saving a task wake-up per chunk. Only for
    /// sessions that forward device output unchanged (raw TCP).
    pub fn allow_direct_writes(&self, sock: Arc<tokio::net::TcpStream>) {
        self.outbox.set_direct(Some(sock));
    }

    /// Withdraw [`Session::allow_direct_writes`].
    pub fn stop_direct_writes(&self) {
        self.outbox.set_direct(None);
    }

    /// Send data to the device: written at once when nothing is queued
    /// ahead of it, else queued (waiting while the port's queue is full).
    pub async fn send(&self, data: Bytes) -> Result<(), AttachError> {
        let counters = &self.port.shared.counters;
        add(&counters.net_rx_frames, 1);
        let written = self
            .inbound
            .data(data)
            .await
            .map_err(|_| AttachError::Stopped)?;
        add_device_bytes(&counters.device_tx_bytes, written);
        Ok(())
    }

    /// Apply a control request at once, ahead of data still queued for the
    /// device. For what must work while the device takes no data (output
    /// held by SETXOFF or by flow control): queries, resuming output,
    /// discarding. Everything else goes through [`Session::control`].
    pub async fn control_now(&self, control: Control) -> Result<PortSnapshot, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.port
            .commands
            .send(Command::Now(control, tx))
            .await
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)?
    }

    /// Apply a control request after all data sent before it.
    pub async fn control(&self, control: Control) -> Result<PortSnapshot, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.inbound
            .control(control, tx)
            .await
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)?
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.outbox.detach();
    }
}

/// Start the actor of one port; it runs until `cancel` fires.
pub fn spawn(
    config: &PortConfig,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> PortHandle {
    let (commands, command_rx) = mpsc::channel(16);
    let (inbound, inbound_rx) = inbound::channel(INBOUND_QUEUE);
    let shared = Arc::new(Shared {
        number: config.number,
        device: config.device.to_string(),
        counters: PortCounters::default(),
        state: watch::channel(PortState::Starting).0,
        modem: watch::channel(ModemStatus::default()).0,
        settings: Mutex::new(config.serial.clone()),
        drained: Arc::new(Notify::new()),
        modem_wanted: Notify::new(),
        policy: config.sessions.clone(),
    });
    let actor = PortActor {
        shared: shared.clone(),
        spec: config.device.clone(),
        packer: (!config.packing.is_passthrough()).then(|| Packer::new(config.packing.clone())),
        commands: command_rx,
        inbound: inbound_rx,
        outboxes: Vec::new(),
        events,
        cancel,
        break_on: false,
    };
    tracker.spawn(actor.run());
    PortHandle {
        shared,
        commands,
        inbound,
    }
}

struct PortActor {
    shared: Arc<Shared>,
    spec: DeviceSpec,
    packer: Option<Packer>,
    commands: mpsc::Receiver<Command>,
    inbound: InboundReceiver,
    outboxes: Vec<Arc<Outbox>>,
    events: EventSink,
    cancel: CancellationToken,
    break_on: bool,
}

/// Why [`PortActor::serve`] returned.
enum Ended {
    Stopped,
    Lost(String),
}

impl PortActor {
    async fn run(mut self) {
        let number = self.shared.number;
        let mut backoff = REOPEN_MIN;
        let mut was_missing = false;
        loop {
            let settings = self.settings();
            let error = match ttyward_serial::open(&self.spec, &settings) {
                Ok(device) => {
                    backoff = REOPEN_MIN;
                    self.shared.state.send_replace(PortState::Open);
                    self.events.emit(
                        number,
                        EventKind::DeviceOpened {
                            recovered: was_missing,
                        },
                    );
                    match self.serve(device).await {
                        Ended::Stopped => break,
                        Ended::Lost(error) => {
                            add(&self.shared.counters.device_lost, 1);
                            error
                        }
                    }
                }
                Err(e) => e.to_string(),
            };
            // Report the first failure, not every retry.
            let state = PortState::DeviceMissing {
                error: error.clone(),
            };
            if *self.shared.state.borrow() != state {
                self.events.emit(number, EventKind::DeviceMissing { error });
                self.shared.state.send_replace(state);
            }
            was_missing = true;
            self.close_all(CloseReason::DeviceMissing);
            if !self.wait_missing(backoff).await {
                break;
            }
            backoff = (backoff * 2).min(REOPEN_MAX);
        }
        self.close_all(CloseReason::PortStopped);
        self.shared.state.send_replace(PortState::Stopped);
    }

    fn settings(&self) -> SerialSettings {
        self.shared
            .settings
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// While the device is missing: refuse attaches, fail controls, drop
    /// network data, until it is time to retry. False when stopping.
    async fn wait_missing(&mut self, delay: Duration) -> bool {
        let writer = self.inbound.writer();
        let retry = tokio::time::sleep(delay);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = &mut retry => return true,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Attach(_, reply)) => { let _ = reply.send(Err(AttachError::DeviceMissing)); }
                    Some(Command::Now(_, reply)) => { let _ = reply.send(Err(ControlError::DeviceMissing)); }
                    None => return false,
                },
                msg = self.inbound.recv() => {
                    match msg {
                        Some(Inbound::Control(_, reply)) => { let _ = reply.send(Err(ControlError::DeviceMissing)); }
                        Some(Inbound::Data(_)) => {}
                        None => return false,
                    }
                    writer.finished();
                }
            }
        }
    }

    /// Forward data until the device fails or the port stops.
    async fn serve(&mut self, device: Box<dyn SerialDevice>) -> Ended {
        let device: Arc<dyn SerialDevice> = Arc::from(device);
        let writer = self.inbound.writer();
        writer.set_device(Some(device.clone()));
        let mut pending = Pending::default();
        let ended = self.forward(&*device, &writer, &mut pending).await;
        writer.set_device(None);
        pending.abandon(&writer);
        ended
    }

    async fn forward(
        &mut self,
        dev: &dyn SerialDevice,
        writer: &InboundWriter,
        pending: &mut Pending,
    ) -> Ended {
        // Device output is read straight into a block that the chunks are
        // then split off (no copy); a block is reused once every chunk cut
        // from it has been written out, and chunks queued for a slow
        // session share blocks instead of each pinning a whole one.
        let mut rbuf = BytesMut::new();
        let mut frames = Vec::new();
        let drained = self.shared.drained.clone();
        let jam_timeout = Duration::from_millis(u64::from(self.shared.policy.jam_timeout_ms));
        let mut jam_tick = tokio::time::interval((jam_timeout / 4).max(Duration::from_millis(25)));
        jam_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut modem_tick = tokio::time::interval(MODEM_POLL);
        modem_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_modem = None;
        // Long-lived waits are armed once, not re-registered every turn.
        let cancel = self.cancel.clone();
        let cancelled = cancel.cancelled();
        let shared = self.shared.clone();
        let modem_wanted = shared.modem_wanted.notified();
        tokio::pin!(cancelled, modem_wanted);
        loop {
            self.inbound.gather(pending);
            if let Some((control, reply)) = pending.take_due_control() {
                let _ = reply.send(self.control(dev, control, false));
                writer.finished();
            }
            let any_behind = self.outboxes.iter().any(|o| o.is_behind());
            let paused = any_behind && self.outboxes.iter().all(|o| o.is_behind());
            let pack_deadline = self.packer.as_ref().and_then(Packer::poll_timeout);
            let watched = self.shared.modem.receiver_count() > 0;
            tokio::select! {
                _ = &mut cancelled => {
                    if let Some(p) = self.packer.as_mut() {
                        p.flush(&mut frames);
                        self.fanout_frames(&mut frames);
                    }
                    return Ended::Stopped;
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Attach(outbox, reply)) => {
                        self.outboxes.push(outbox);
                        let _ = reply.send(Ok(()));
                    }
                    Some(Command::Now(control, reply)) => {
                        let _ = reply.send(self.control(dev, control, true));
                    }
                    None => return Ended::Stopped,
                },
                r = poll_fn(|cx| {
                    // A block is set aside only once there is something to
                    // read: an idle port holds no buffer.
                    ready!(dev.poll_read_ready(cx))?;
                    if rbuf.capacity() - rbuf.len() < READ_BUF {
                        rbuf.reserve(READ_BLOCK);
                    }
                    dev.poll_read_buf(cx, &mut rbuf, READ_BUF)
                }), if !paused => match r {
                    Ok(0) => return Ended::Lost("device closed (end of file)".into()),
                    Ok(_) => self.forward_device_output(rbuf.split().freeze(), &mut frames),
                    Err(e) => return Ended::Lost(e.to_string()),
                },
                msg = self.inbound.recv(), if pending.is_idle() => match msg {
                    // Data is written by the branch below, a control request
                    // applied at the top of the loop.
                    Some(item) => self.inbound.hold(item, pending),
                    None => return Ended::Stopped,
                },
                r = poll_fn(|cx| writer.poll_write(cx, dev, pending)), if pending.has_data() => match r {
                    Ok(n) => add_device_bytes(&self.shared.counters.device_tx_bytes, n),
                    Err(e) => return Ended::Lost(e.to_string()),
                },
                _ = drained.notified(), if paused => {}
                _ = &mut modem_wanted, if !watched => modem_wanted.set(shared.modem_wanted.notified()),
                _ = sleep_until_opt(pack_deadline), if pack_deadline.is_some() => {
                    if let Some(p) = self.packer.as_mut() {
                        p.handle_timeout(Instant::now(), &mut frames);
                    }
                    self.fanout_frames(&mut frames);
                }
                _ = jam_tick.tick(), if any_behind => self.drop_jammed(jam_timeout),
                _ = modem_tick.tick(), if watched => {
                    if let Ok(status) = dev.modem_status()
                        && last_modem != Some(status)
                    {
                        last_modem = Some(status);
                        self.shared.modem.send_replace(status);
                    }
                }
            }
        }
    }

    fn forward_device_output(&mut self, data: Bytes, frames: &mut Vec<Bytes>) {
        add_device_bytes(&self.shared.counters.device_rx_bytes, data.len());
        match self.packer.as_mut() {
            None => self.fanout(data),
            Some(p) => {
                p.push(&data, Instant::now(), frames);
                self.fanout_frames(frames);
            }
        }
    }

    fn fanout_frames(&mut self, frames: &mut Vec<Bytes>) {
        for frame in frames.drain(..) {
            self.fanout(frame);
        }
    }

    fn fanout(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        let counters = &self.shared.counters;
        if self.outboxes.is_empty() {
            add(&counters.device_rx_discarded, frame.len());
            return;
        }
        add(&counters.net_tx_frames, 1);
        let (number, events) = (self.shared.number, &self.events);
        self.outboxes.retain(|o| match o.push(frame.clone()) {
            Push::Ok | Push::Behind => true,
            Push::Closed => false,
            Push::Overflow => {
                o.close(CloseReason::Jammed);
                add(&counters.sessions_jammed, 1);
                events.emit(number, EventKind::SessionJammed);
                false
            }
        });
    }

    fn drop_jammed(&mut self, timeout: Duration) {
        let now = Instant::now();
        let (number, events, counters) = (self.shared.number, &self.events, &self.shared.counters);
        self.outboxes.retain(|o| {
            if o.is_detached() {
                return false;
            }
            if o.is_jammed(now, timeout) {
                o.close(CloseReason::Jammed);
                add(&counters.sessions_jammed, 1);
                events.emit(number, EventKind::SessionJammed);
                return false;
            }
            true
        });
    }

    fn close_all(&mut self, reason: CloseReason) {
        for o in self.outboxes.drain(..) {
            o.close(reason.clone());
        }
    }

    /// Apply `control`; `via_command`: it came by [`Session::control_now`],
    /// not in order through the inbound queue.
    fn control(
        &mut self,
        dev: &dyn SerialDevice,
        control: Control,
        via_command: bool,
    ) -> Result<PortSnapshot, ControlError> {
        // What is still on its way to the device, beyond the driver's own
        // queue: a request being applied in order counts itself, so it is
        // left out.
        let ordered = usize::from(!via_command);
        let queued =
            u32::try_from(self.inbound.items_queued().saturating_sub(ordered)).unwrap_or(u32::MAX);
        let lines_changed = matches!(control, Control::Dtr(_) | Control::Rts(_));
        match control {
            Control::Serial(change) => {
                let mut next = self.settings();
                next.baud = change.baud.unwrap_or(next.baud);
                next.data_bits = change.data_bits.unwrap_or(next.data_bits);
                next.parity = change.parity.unwrap_or(next.parity);
                next.stop_bits = change.stop_bits.unwrap_or(next.stop_bits);
                next.flow = change.flow.unwrap_or(next.flow);
                if let Err(e) = dev.apply(&next) {
                    self.events.emit(
                        self.shared.number,
                        EventKind::SettingRefused {
                            error: e.to_string(),
                        },
                    );
                    return Err(e.into());
                }
                if let Ok(mut s) = self.shared.settings.lock() {
                    *s = next;
                }
            }
            Control::Dtr(on) => dev.set_dtr(on)?,
            Control::Rts(on) => dev.set_rts(on)?,
            Control::Break(on) => {
                dev.set_break(on)?;
                self.break_on = on;
            }
            Control::Purge(dir) => dev.flush(dir)?,
            Control::HoldOutput(on) => dev.hold_output(on)?,
            Control::Query => {}
        }
        let modem = dev.modem_status().unwrap_or_default();
        if lines_changed {
            self.shared.modem.send_replace(modem);
        }
        Ok(PortSnapshot {
            settings: self.settings(),
            modem,
            break_on: self.break_on,
            input_queued: dev.input_queued().unwrap_or(0),
            output_queued: dev.output_queued().unwrap_or(0).saturating_add(queued),
        })
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}
