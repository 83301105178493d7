//! The ttyward data plane.
//!
//! One [`port`] actor per serial port owns the device; the operation-mode
//! front-ends ([`tcp_server`], [`tcp_client`], [`udp`], RFC 2217) own the
//! network side and talk to the actor through [`port::Session`]s. [`Engine`]
//! binds everything a [`Config`] asks for, starts it, and stops it.
//!
//! This crate does not authenticate or filter peers yet (the Gate comes with
//! the daemon) and does not persist anything.

pub mod counters;
pub mod event;
pub mod net;
pub mod outbox;
pub mod port;
mod raw;
mod rfc2217;
pub mod tcp_client;
pub mod tcp_server;
pub mod udp;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{Config, OperationMode};

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
}

/// The running data plane.
#[derive(Debug)]
pub struct Engine {
    ports: Vec<PortHandle>,
    listeners: Vec<BoundListener>,
    events: EventSink,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Sockets of one port, bound before anything starts.
enum Bound {
    Tcp(Vec<tokio::net::TcpListener>),
    Udp(Vec<tokio::net::UdpSocket>),
    None,
}

impl Engine {
    /// Bind every listener of `config`, then start every enabled port.
    /// Nothing is started unless everything could be bound. Must run inside
    /// a tokio runtime.
    pub fn start(config: &Config, events: EventSink) -> Result<Engine, EngineError> {
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for p in &config.ports {
            let Some(listen) = p.mode.listen() else {
                bound.push(Bound::None);
                continue;
            };
            let transport = if listen.udp { "udp" } else { "tcp" };
            let mut tcp = Vec::new();
            let mut udp = Vec::new();
            for ip in listen.bind {
                let addr = SocketAddr::new(*ip, listen.port);
                let result = if listen.udp {
                    net::bind_udp(addr).and_then(|s| Ok((s.local_addr()?, None, Some(s))))
                } else {
                    net::bind_tcp(addr).and_then(|l| Ok((l.local_addr()?, Some(l), None)))
                };
                match result {
                    Ok((local, l, s)) => {
                        listeners.push(BoundListener {
                            port: p.number,
                            mode: p.mode.name(),
                            addr: local,
                            transport,
                        });
                        tcp.extend(l);
                        udp.extend(s);
                    }
                    // A host without IPv6 cannot bind the default "::"; the
                    // IPv4 wildcard still serves it.
                    Err(e)
                        if addr.ip().is_unspecified() && addr.is_ipv6() && ipv6_unavailable(&e) =>
                    {
                        tracing::warn!(
                            port = p.number,
                            "IPv6 unavailable, not listening on {addr}: {e}"
                        );
                    }
                    Err(source) => {
                        return Err(EngineError::Bind {
                            port: p.number,
                            addr,
                            source,
                        });
                    }
                }
            }
            bound.push(if listen.udp {
                Bound::Udp(udp)
            } else {
                Bound::Tcp(tcp)
            });
        }

        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut ports = Vec::new();
        for (p, sockets) in config.ports.iter().zip(bound) {
            if matches!(p.mode, OperationMode::Disabled) {
                continue;
            }
            let handle = port::spawn(p, events.clone(), cancel.clone(), &tracker);
            let (ev, c) = (events.clone(), cancel.clone());
            match (&p.mode, sockets) {
                (OperationMode::TcpServer(m), Bound::Tcp(ls)) => {
                    let params = tcp_server::ServerParams {
                        protocol: tcp_server::Protocol::Raw,
                        max_connections: m.max_connections,
                        alive_check_min: m.alive_check_min,
                        inactivity: (m.inactivity_ms > 0)
                            .then(|| Duration::from_millis(m.inactivity_ms.into())),
                    };
                    tcp_server::spawn(ls, handle.clone(), params, ev, c, &tracker);
                }
                (OperationMode::Rfc2217(m), Bound::Tcp(ls)) => {
                    let params = tcp_server::ServerParams {
                        protocol: tcp_server::Protocol::Rfc2217,
                        max_connections: m.max_connections,
                        alive_check_min: m.alive_check_min,
                        inactivity: None,
                    };
                    tcp_server::spawn(ls, handle.clone(), params, ev, c, &tracker);
                }
                (OperationMode::Udp(m), Bound::Udp(ss)) => {
                    udp::spawn(ss, handle.clone(), m, c, &tracker)
                }
                (OperationMode::TcpClient(m), _) => {
                    tcp_client::spawn(handle.clone(), m, ev, c, &tracker)
                }
                _ => {}
            }
            ports.push(handle);
        }
        Ok(Engine {
            ports,
            listeners,
            events,
            cancel,
            tracker,
        })
    }

    /// Everything bound, in configuration order.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The running ports.
    pub fn ports(&self) -> &[PortHandle] {
        &self.ports
    }

    /// The port with this number, if it runs.
    pub fn port(&self, number: u16) -> Option<&PortHandle> {
        self.ports.iter().find(|p| p.number() == number)
    }

    /// The event stream.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Stop everything: close listeners and sessions, flush packers, wait up
    /// to `grace` for the tasks to end.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    /// Linux EAFNOSUPPORT: the kernel has no IPv6.
    const EAFNOSUPPORT: i32 = 97;
    e.kind() == std::io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(EAFNOSUPPORT)
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
