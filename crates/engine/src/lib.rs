//! The ttyward data plane.
//!
//! One [`port`] actor per serial port owns the device; the operation-mode
//! front-ends ([`tcp_server`], [`tcp_client`], [`udp`], RFC 2217, Pair
//! Connection, [`reverse_terminal`]) own the
//! network side and talk to the actor through [`port::Session`]s. [`Engine`]
//! binds everything a [`Config`] asks for, starts it, and stops it.
//!
//! Every listener admits peers through the one [`gate::Gate`] (allowlist and
//! DoS defence), which the management plane shares. This crate does not
//! persist anything and keeps no accounts: the reverse terminal consoles
//! ask the daemon's [`reverse_terminal::Authenticator`] who may log in.

pub mod counters;
mod dsci;
pub mod event;
pub mod gate;
mod inbound;
pub mod net;
pub mod outbox;
mod pair;
pub mod port;
mod raw;
mod realcom;
pub mod reverse_terminal;
mod rfc2217;
pub mod tcp_client;
pub mod tcp_server;
pub mod tls;
pub mod udp;
mod unit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use ttyward_core::config::Config;

pub use counters::{CountersSnapshot, PortCounters};
pub use event::{EngineEvent, EventKind, EventSink};
pub use port::{PortHandle, PortState};

/// A socket the engine bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundListener {
    /// Serial port number.
    pub port: u16,
    /// Operation mode name (`tcp-server`, `rfc2217`, `udp`).
    pub mode: &'static str,
    /// The address actually bound (port 0 in the config becomes a real port).
    pub addr: SocketAddr,
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// What it carries: `data`, Real COM's `command`, or `dsci` (the Real
    /// COM discovery responder, whose `port` is 0).
    pub channel: &'static str,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A listener could not be bound.
    #[error(
        "port {port}: cannot listen on {addr}: {source} (is another program using it, or is the address not on this host?)"
    )]
    Bind {
        /// Serial port number.
        port: u16,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A reverse terminal port without accounts to log in with (`bridge`).
    #[error(
        "port {port}: {mode} needs the daemon's accounts to log in with: use `ttyward run`, not `ttyward bridge`"
    )]
    NeedsAccounts {
        /// Serial port number.
        port: u16,
        /// `reverse-telnet` or `reverse-ssh`.
        mode: &'static str,
    },
}

/// The running data plane.
#[derive(Debug)]
pub struct Engine {
    units: Vec<unit::PortUnit>,
    sources: unit::Sources,
    discovery: Option<dsci::Responder>,
    gate: gate::Gate,
    events: EventSink,
    cancel: CancellationToken,
}

/// How long a port being restarted by a configuration change may take to
/// stop before its tasks are abandoned.
const RESTART_GRACE: Duration = Duration::from_secs(2);

impl Engine {
    /// Bind every listener of `config`, then start every enabled port.
    /// Nothing is started unless everything could be bound. Must run inside
    /// a tokio runtime.
    pub fn start(config: &Config, events: EventSink) -> Result<Engine, EngineError> {
        Engine::start_with_tls(config, events, None)
    }

    /// [`Engine::start`], with the certificates ports with a Secure
    /// Connection use (without, their connections are refused and
    /// reported).
    pub fn start_with_tls(
        config: &Config,
        events: EventSink,
        tls: Option<Arc<dyn tls::TlsSource>>,
    ) -> Result<Engine, EngineError> {
        Engine::start_with_access(config, events, tls, None)
    }

    /// [`Engine::start_with_tls`], with what the reverse terminal ports
    /// need to let people log in (without, such a port does not start).
    pub fn start_with_access(
        config: &Config,
        events: EventSink,
        tls: Option<Arc<dyn tls::TlsSource>>,
        access: Option<reverse_terminal::ConsoleAccess>,
    ) -> Result<Engine, EngineError> {
        let sources = unit::Sources { tls, access };
        let mut bound = Vec::new();
        for p in &config.ports {
            needs_accounts(p, sources.access.as_ref())?;
            bound.push(unit::bind(p)?);
        }
        let cancel = CancellationToken::new();
        let gate = gate::Gate::new(&config.security.allowlist, &config.security.dos);
        let units = config
            .ports
            .iter()
            .zip(bound)
            .map(|(p, (sockets, listeners))| {
                unit::PortUnit::start(p, sockets, listeners, &gate, &events, &cancel, &sources)
            })
            .collect();
        let discovery = start_discovery(config, &gate, &cancel);
        Ok(Engine {
            units,
            sources,
            discovery,
            gate,
            events,
            cancel,
        })
    }

    /// Change to `config` live: ports whose configuration is unchanged keep
    /// running untouched (their connections too); changed ports stop and
    /// start again with the new settings; removed ports stop; new ports
    /// start. A port that cannot start (its address is taken) stays stopped
    /// and is returned with the error; the others still change. New
    /// allowlist and DoS settings apply to new connections at once.
    pub async fn apply(&mut self, config: &Config) -> Vec<(u16, EngineError)> {
        self.gate
            .update(&config.security.allowlist, &config.security.dos);
        let mut failures = Vec::new();
        let mut keep = Vec::new();
        let mut stopping = Vec::new();
        for u in self.units.drain(..) {
            match config.port(u.config.number) {
                Some(p) if *p == u.config => keep.push(u),
                _ => stopping.push(u),
            }
        }
        // Stop first: a restarted port usually binds the same address.
        for u in stopping {
            let number = u.config.number;
            if u.handle.is_some() {
                let reason = match config.port(number).map(|p| &p.mode) {
                    None => "removed",
                    Some(ttyward_core::config::OperationMode::Disabled) => "disabled",
                    Some(_) => "reconfigured",
                };
                self.events.emit(number, EventKind::PortStopped { reason });
            }
            if !u.stop(RESTART_GRACE).await {
                tracing::warn!(port = number, "port did not stop within {RESTART_GRACE:?}");
            }
        }
        for p in &config.ports {
            if keep.iter().any(|u| u.config.number == p.number) {
                continue;
            }
            match needs_accounts(p, self.sources.access.as_ref()).and_then(|()| unit::bind(p)) {
                Ok((sockets, listeners)) => keep.push(unit::PortUnit::start(
                    p,
                    sockets,
                    listeners,
                    &self.gate,
                    &self.events,
                    &self.cancel,
                    &self.sources,
                )),
                Err(e) => failures.push((p.number, e)),
            }
        }
        keep.sort_by_key(|u| u.config.number);
        self.units = keep;
        if self.discovery.as_ref().map(|d| &d.wanted) != dsci::wanted(config).as_ref() {
            if let Some(d) = self.discovery.take() {
                d.stop().await;
            }
            self.discovery = start_discovery(config, &self.gate, &self.cancel);
        }
        failures
    }

    /// Everything bound, in port order, then the Real COM discovery
    /// responder's sockets.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.units
            .iter()
            .flat_map(|u| u.listeners.iter().cloned())
            .chain(
                self.discovery
                    .iter()
                    .flat_map(|d| d.listeners.iter().cloned()),
            )
            .collect()
    }

    /// The running ports.
    pub fn ports(&self) -> Vec<&PortHandle> {
        self.units
            .iter()
            .filter_map(|u| u.handle.as_ref())
            .collect()
    }

    /// The port with this number, if it runs.
    pub fn port(&self, number: u16) -> Option<&PortHandle> {
        self.units
            .iter()
            .find(|u| u.config.number == number)
            .and_then(|u| u.handle.as_ref())
    }

    /// The Gate every listener admits through (the management plane's
    /// listeners use it too).
    pub fn gate(&self) -> &gate::Gate {
        &self.gate
    }

    /// The event stream.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Stop everything: close listeners and sessions, flush packers, wait up
    /// to `grace` for the tasks to end.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.cancel.cancel();
        let all = async {
            for u in &self.units {
                u.wait().await;
            }
        };
        tokio::time::timeout(grace, all).await.is_ok()
    }
}

/// A reverse terminal port cannot run without accounts to log in with.
fn needs_accounts(
    p: &ttyward_core::config::PortConfig,
    access: Option<&reverse_terminal::ConsoleAccess>,
) -> Result<(), EngineError> {
    use ttyward_core::config::OperationMode;
    match (&p.mode, access) {
        (OperationMode::ReverseTelnet(_) | OperationMode::ReverseSsh(_), None) => {
            Err(EngineError::NeedsAccounts {
                port: p.number,
                mode: p.mode.name(),
            })
        }
        _ => Ok(()),
    }
}

/// The discovery responder `config` wants, if it can bind. It is an aid to
/// Moxa's driver, not a port: failing to bind (another program has UDP 4800)
/// is logged and the ports serve without it.
fn start_discovery(
    config: &Config,
    gate: &gate::Gate,
    cancel: &CancellationToken,
) -> Option<dsci::Responder> {
    let wanted = dsci::wanted(config)?;
    match dsci::Responder::start(wanted, gate, cancel) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("Real COM discovery (npreal2's UDP polling) is off: {e}");
            None
        }
    }
}

/// Counts a session as active while it lives.
pub(crate) struct ActiveConnection<'a>(&'a PortCounters);

impl<'a> ActiveConnection<'a> {
    pub(crate) fn new(counters: &'a PortCounters) -> Self {
        counters.connections_total.fetch_add(1, Relaxed);
        counters.connections_active.fetch_add(1, Relaxed);
        ActiveConnection(counters)
    }
}

impl Drop for ActiveConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_active.fetch_sub(1, Relaxed);
    }
}
