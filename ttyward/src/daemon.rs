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
use crate::web::{Certificates, Web};

mod console_login;

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
        let first = Config::first_use(Default::default());
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
    serve::survive_file_size_limit();
    let administrator = service.has_administrator().await.map_err(runtime)?;
    let setup_code = if administrator {
        None
    } else {
        service.issue_setup_code().await.map_err(runtime)?
    };
    let sink = EventSink::new(1024);
    // The certificates serve both planes. Without them (the data directory
    // cannot hold them) the daemon still runs: plain ports serve, TLS ports
    // and the console are refused and reported.
    let certs = match Certificates::open(&service) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no device certificate: TLS is unavailable: {e}");
            service.record(
                EventId::ListenerFailed,
                format!("no device certificate: {e}"),
            );
            None
        }
    };
    // Start with no port, then apply the configuration like any later
    // change: a port whose address is taken stays stopped and is reported
    // (ready line, event log) while every other port serves.
    // The reverse telnet/SSH consoles log in with the accounts.
    let access = console_login::access(&service).map_err(runtime)?;
    let engine = ttyward_engine::Engine::start_with_access(
        &Config::default(),
        sink.clone(),
        certs.as_ref().map(Certificates::data_tls),
        Some(access),
    )
    .map_err(|e| Failure::Config(e.to_string()))?;
    let forwarder = tokio::spawn(forward_events(service.clone(), sink.subscribe()));
    let mut d = Daemon {
        service: service.clone(),
        engine,
        ports: tokio::sync::watch::channel(Arc::new(Vec::new())).0,
        web: None,
        certs,
        administrator,
        started: std::time::Instant::now(),
    };
    let failed = d.apply().await;
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
    d.announce(
        "ready",
        serde_json::json!({
            "data_dir": service.dir().display().to_string(),
            "failed": failed,
        }),
    );
    on_ready(&d.engine);
    // Bounded by serve::SETTLE_LIMIT; a signal meanwhile is kept by `stop`.
    serve::release_startup_pages(&d.engine).await;

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
                // Another process (admin, config import) committed:
                // take its configuration.
                match service.data_version().await {
                    Ok(version) if version != last_version => {
                        last_version = version;
                        if let Err(e) = service.reload().await {
                            tracing::warn!("cannot reload the configuration: {e}");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot read the store: {e}"),
                }
                // Accounts change in this process too (the web console's
                // setup, a factory reset), so this is asked every tick.
                let now_admin = service.has_administrator().await.unwrap_or(d.administrator);
                if now_admin != d.administrator {
                    d.administrator = now_admin;
                    if now_admin {
                        tracing::info!("an Administrator exists: starting the serial ports");
                    } else {
                        tracing::warn!("no active Administrator: serial ports off");
                        if let Ok(Some(code)) = service.issue_setup_code().await {
                            tracing::warn!(
                                "first use again: create the Administrator with `ttyward admin create` or the setup code {code}"
                            );
                        }
                    }
                    d.applied().await;
                }
            }
            changed = watch.changed() => {
                if changed.is_err() {
                    break;
                }
                watch.borrow_and_update();
                d.applied().await;
            }
        }
    }
    tracing::info!("stopping");
    serve::log_counters(&d.engine);
    service.record(EventId::SystemStop, "ttyward stopping");
    if let Some(web) = d.web.take() {
        web.stop().await;
    }
    if let Some(certs) = d.certs.take() {
        certs.stop().await;
    }
    if !d.engine.shutdown(serve::DRAIN_GRACE).await {
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

/// What the daemon runs: the engine (data plane) and the web server
/// (management plane), both following the stored configuration.
struct Daemon {
    service: Service,
    engine: ttyward_engine::Engine,
    /// The running ports, for the API's status pages.
    ports: tokio::sync::watch::Sender<Arc<Vec<ttyward_engine::PortHandle>>>,
    web: Option<Web>,
    certs: Option<Certificates>,
    administrator: bool,
    started: std::time::Instant,
}

impl Daemon {
    /// Bring the engine (ports and Gate) and the web server in line with
    /// the stored configuration; returns what could not start.
    async fn apply(&mut self) -> Vec<serde_json::Value> {
        let config: Arc<Config> = self.service.config();
        let mut failed = Vec::new();
        for (port, error) in self
            .engine
            .apply(&effective(&config, self.administrator))
            .await
        {
            tracing::warn!(port, "cannot start: {error}");
            self.service.record(
                EventId::ListenerFailed,
                format!("port {port} cannot start: {error}"),
            );
            failed.push(serde_json::json!({"port": port, "error": error.to_string()}));
        }
        self.ports
            .send_replace(Arc::new(self.engine.ports().into_iter().cloned().collect()));
        let web_changed = self.web.as_ref().map(|w| &w.settings) != Some(&config.services.web)
            && (self.web.is_some() || config.services.web.enabled);
        if web_changed {
            if let Some(old) = self.web.take() {
                old.stop().await;
            }
            let started = match &self.certs {
                Some(certs) => Web::start(
                    &self.service,
                    self.engine.gate(),
                    &config.services.web,
                    self.started,
                    self.ports.subscribe(),
                    certs,
                )
                .map_err(|e| e.to_string()),
                None => Err("the web console needs the device certificate, which could not be loaded or made (see the log)".to_owned()),
            };
            match started {
                Ok(web) => self.web = web,
                Err(error) => {
                    tracing::warn!("{error}");
                    self.service.record(EventId::ListenerFailed, error.clone());
                    failed.push(serde_json::json!({"service": "web", "error": error}));
                }
            }
        }
        failed
    }

    /// [`Daemon::apply`] a live change, then print the `applied` line.
    async fn applied(&mut self) {
        let failed = self.apply().await;
        let revision = self.service.stored_revision().await.unwrap_or_default();
        self.announce(
            "applied",
            serde_json::json!({"revision": revision, "failed": failed}),
        );
    }

    /// Print a ready/applied line with the data-plane listeners, the web
    /// console's addresses and `extra`.
    fn announce(&self, event: &str, extra: serde_json::Value) {
        let mut fields = serde_json::json!({
            "setup_required": !self.administrator,
            "web": self.web.as_ref().map(Web::addrs).unwrap_or_default(),
        });
        if let (Some(f), serde_json::Value::Object(extra)) = (fields.as_object_mut(), extra) {
            f.extend(extra);
        }
        serve::announce(&self.engine, event, fields);
    }
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
