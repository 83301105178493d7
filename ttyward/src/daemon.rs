//! `ttyward run`: the device. Loads the data directory, starts every enabled
//! port behind the Gate, prints one JSON ready line, applies configuration
//! changes live (only the ports whose settings changed restart), and drains
//! on SIGTERM/SIGINT.
//!
//! First use: until an active Administrator exists every serial operation
//! mode stays off, and a one-time setup code is printed and written to
//! `DIR/setup-code` for the web console's "Create Account" page. Changes
//! made by another process (`ttyward admin`, `ttyward config import`) are
//! noticed through SQLite's `data_version` within a poll interval.

use std::sync::Arc;
use std::time::Duration;

use ttyward_core::config::{Config, OperationMode};
use ttyward_core::event_log::EventId;
use ttyward_core::service::Service;
use ttyward_engine::{EngineEvent, EventKind, EventSink};

use crate::serve::{self, Failure};

/// How often the store is asked whether another process changed it.
const POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Validate the stored configuration and exit (0: valid, 64: not).
    #[arg(long)]
    check: bool,
}

/// The configuration the engine runs: the stored one, with every port off
/// while no Administrator exists.
fn effective(config: &Config, administrator: bool) -> Config {
    let mut c = config.clone();
    if !administrator {
        for p in &mut c.ports {
            p.mode = OperationMode::Disabled;
        }
    }
    c
}

/// A first configuration for a fresh data directory: one TCP Server port
/// per serial device the host has (Real COM, the seed's default, comes in a
/// later release).
fn first_config() -> Config {
    let ports: Vec<serde_json::Value> = ttyward_serial::discover::serial_ports()
        .iter()
        .enumerate()
        .map(|(i, path)| {
            serde_json::json!({
                "number": i + 1,
                "device": path.display().to_string(),
                "mode": {"type": "tcp-server"},
            })
        })
        .collect();
    // Discovered paths and defaults always validate; an empty config is the
    // fallback if they ever did not.
    Config::from_value(&serde_json::json!({ "ports": ports })).unwrap_or_default()
}

pub async fn run(service: Service, args: Args) -> Result<(), Failure> {
    if args.check {
        let c = service.config();
        println!(
            "configuration valid: {} port(s), {} enabled",
            c.ports.len(),
            c.ports
                .iter()
                .filter(|p| !matches!(p.mode, OperationMode::Disabled))
                .count()
        );
        return Ok(());
    }
    if service.stored_revision().await.map_err(runtime)? == 0 {
        let first = first_config();
        tracing::info!(
            "fresh data directory: {} serial port(s) found",
            first.ports.len()
        );
        service.initialize_config(first).await.map_err(runtime)?;
    }
    serve(service, |_| {}).await
}

/// Serve the data directory's configuration until SIGTERM/SIGINT: the
/// daemon proper, shared by `run` and `demo`. `on_ready` runs once, right
/// after the ready line.
pub async fn serve(
    service: Service,
    on_ready: impl FnOnce(&ttyward_engine::Engine),
) -> Result<(), Failure> {
    // A file-size limit (RLIMIT_FSIZE) must make a store write fail with
    // EFBIG, which the event log counts and survives, instead of killing
    // the daemon and every serial port with it. A registered handler
    // replaces SIGXFSZ's default action for the life of the process.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
        nix::sys::signal::Signal::SIGXFSZ as i32,
    ));
    let mut administrator = service.has_administrator().await.map_err(runtime)?;
    let setup_code = if administrator {
        None
    } else {
        service.issue_setup_code().await.map_err(runtime)?
    };
    let sink = EventSink::new(1024);
    // Start with no port, then apply the configuration like any later
    // change: a port whose address is taken stays stopped and is reported
    // (ready line, event log) while every other port serves.
    let mut engine = ttyward_engine::Engine::start(&Config::default(), sink.clone())
        .map_err(|e| Failure::Config(e.to_string()))?;
    let forwarder = tokio::spawn(forward_events(service.clone(), sink.subscribe()));
    let failed = apply(&service, &mut engine, administrator).await;
    service.record(
        EventId::SystemStart,
        format!("ttyward {} started", env!("CARGO_PKG_VERSION")),
    );

    if let Some(code) = &setup_code {
        tracing::warn!(
            "no Administrator exists: every serial port stays off until one is created. Create it with `ttyward admin create --name NAME`, or in the web console with the setup code {code} (also in {})",
            service
                .dir()
                .join(ttyward_core::service::SETUP_CODE_FILE)
                .display()
        );
    }
    let stop = serve::shutdown_signal().map_err(runtime)?;
    serve::announce(
        &engine,
        "ready",
        serde_json::json!({
            "data_dir": service.dir().display().to_string(),
            "setup_required": !administrator,
            "failed": failed,
        }),
    );
    on_ready(&engine);

    let mut watch = service.watch_config();
    let mut last_version = service.data_version().await.map_err(runtime)?;
    let mut clock = ClockWatch::new();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = poll.tick() => {
                if let Some(jump) = clock.jumped() {
                    service.record(EventId::SystemTimeChanged, jump);
                }
                let version = match service.data_version().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("cannot read the store: {e}");
                        continue;
                    }
                };
                if version == last_version {
                    continue;
                }
                last_version = version;
                if let Err(e) = service.reload().await {
                    tracing::warn!("cannot reload the configuration: {e}");
                }
                let now_admin = service.has_administrator().await.unwrap_or(administrator);
                if now_admin != administrator {
                    administrator = now_admin;
                    tracing::info!(
                        "{}",
                        if administrator { "an Administrator exists: starting the serial ports" } else { "no active Administrator: serial ports off" }
                    );
                    applied(&service, &mut engine, administrator).await;
                }
            }
            changed = watch.changed() => {
                if changed.is_err() {
                    break;
                }
                watch.borrow_and_update();
                applied(&service, &mut engine, administrator).await;
            }
        }
    }
    tracing::info!("stopping");
    serve::log_counters(&engine);
    service.record(EventId::SystemStop, "ttyward stopping");
    if !engine.shutdown(serve::DRAIN_GRACE).await {
        tracing::warn!(
            "some sessions did not finish within {:?}",
            serve::DRAIN_GRACE
        );
    }
    forwarder.abort();
    if let Err(e) = service.events().flush().await {
        tracing::warn!("event log: {e}");
    }
    Ok(())
}

/// Bring the engine (ports and Gate) in line with the stored
/// configuration; returns the ports that could not start.
async fn apply(
    service: &Service,
    engine: &mut ttyward_engine::Engine,
    administrator: bool,
) -> Vec<serde_json::Value> {
    let config: Arc<Config> = service.config();
    let mut failed = Vec::new();
    for (port, error) in engine.apply(&effective(&config, administrator)).await {
        tracing::warn!(port, "cannot start: {error}");
        service.record(
            EventId::ListenerFailed,
            format!("port {port} cannot start: {error}"),
        );
        failed.push(serde_json::json!({"port": port, "error": error.to_string()}));
    }
    failed
}

/// [`apply`] a live change, then print the `applied` line.
async fn applied(service: &Service, engine: &mut ttyward_engine::Engine, administrator: bool) {
    let failed = apply(service, engine, administrator).await;
    let revision = service.stored_revision().await.unwrap_or_default();
    serve::announce(
        engine,
        "applied",
        serde_json::json!({"revision": revision, "setup_required": !administrator, "failed": failed}),
    );
}

/// Notices the wall clock being set or jumping (NTP step, `date -s`): the
/// event log's times are wall-clock times, so a reader needs to know where
/// they jump.
struct ClockWatch {
    mono: std::time::Instant,
    wall: std::time::SystemTime,
}

impl ClockWatch {
    /// A difference between wall and monotonic time this large is a jump,
    /// not drift or a slow poll.
    const JUMP: Duration = Duration::from_secs(2);

    fn new() -> ClockWatch {
        ClockWatch {
            mono: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
        }
    }

    /// A description of the jump since the last call, if there was one.
    fn jumped(&mut self) -> Option<String> {
        let now = ClockWatch::new();
        let mono = now.mono.duration_since(self.mono).as_secs_f64();
        let wall = match now.wall.duration_since(self.wall) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        *self = now;
        let jump = wall - mono;
        (jump.abs() >= ClockWatch::JUMP.as_secs_f64())
            .then(|| format!("the system clock jumped by {jump:+.1} s"))
    }
}

/// Engine events become event-log entries.
async fn forward_events(service: Service, mut rx: tokio::sync::broadcast::Receiver<EngineEvent>) {
    loop {
        let e = match rx.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                service.record(
                    EventId::EventsDropped,
                    format!("{n} data-plane events were not logged (too many at once)"),
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let (id, peer) = match &e.kind {
            EventKind::DeviceOpened { recovered: true } => (EventId::DeviceRecovered, None),
            EventKind::DeviceOpened { recovered: false } => (EventId::PortStarted, None),
            EventKind::DeviceMissing { .. } => (EventId::DeviceMissing, None),
            EventKind::PortStopped { .. } => (EventId::PortStopped, None),
            EventKind::SessionOpened { peer } => (EventId::PortConnected, Some(peer)),
            EventKind::SessionClosed { peer, .. } => (EventId::PortDisconnected, Some(peer)),
            EventKind::SessionJammed => (EventId::SessionJammed, None),
            EventKind::ConnectionRefused { peer, .. } => {
                (EventId::PortConnectionRefused, Some(peer))
            }
            EventKind::GateRefused { peer, reason, .. } if reason.is_allowlist() => {
                (EventId::AllowlistRefused, Some(peer))
            }
            EventKind::GateRefused { peer, .. } => (EventId::DosTriggered, Some(peer)),
            EventKind::ConnectFailed { .. } => (EventId::PortConnectFailed, None),
            EventKind::SettingRefused { .. } => (EventId::SerialSettingRefused, None),
        };
        let message = format!("port {}: {}", e.port, e.kind);
        match peer {
            Some(peer) => service.record_from(id, peer.ip(), message),
            None => service.record(id, message),
        }
    }
}

fn runtime(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Runtime(e.into())
}
