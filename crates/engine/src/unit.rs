//! One serial port as the engine runs it: its actor, its front-end and the
//! sockets it bound, with a cancellation token and task tracker of its own
//! so that it can be stopped and restarted without touching other ports
//! (live configuration changes restart only the ports that changed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{OperationMode, PortConfig};

use crate::gate::Gate;
use crate::reverse_terminal::{self, ConsoleAccess};
use crate::tls::{PortTls, TlsSource};
use crate::{
    BoundListener, EngineError, EventSink, PortHandle, net, pair, port, realcom, tcp_client,
    tcp_server, udp,
};

/// What ports take from outside the engine: the certificates of Secure
/// Connection and the logins of the reverse terminal consoles.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sources {
    pub(crate) tls: Option<Arc<dyn TlsSource>>,
    pub(crate) access: Option<ConsoleAccess>,
}

/// Sockets of one port, bound before anything starts.
pub(crate) enum Bound {
    Tcp(Vec<tokio::net::TcpListener>),
    Udp(Vec<tokio::net::UdpSocket>),
    /// Data listeners, command listeners.
    RealCom(Vec<tokio::net::TcpListener>, Vec<tokio::net::TcpListener>),
    None,
}

/// A running (or disabled) port.
#[derive(Debug)]
pub(crate) struct PortUnit {
    pub(crate) config: PortConfig,
    pub(crate) handle: Option<PortHandle>,
    pub(crate) listeners: Vec<BoundListener>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Bind every socket `config` asks for; nothing is started.
pub(crate) fn bind(config: &PortConfig) -> Result<(Bound, Vec<BoundListener>), EngineError> {
    let mut listeners = Vec::new();
    let mut tcp: Vec<Vec<tokio::net::TcpListener>> = Vec::new();
    let mut udp = Vec::new();
    for listen in config.mode.listens() {
        let transport = if listen.udp { "udp" } else { "tcp" };
        let mut bound_tcp = Vec::new();
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
                        port: config.number,
                        mode: config.mode.name(),
                        addr: local,
                        transport,
                        channel: listen.channel,
                    });
                    bound_tcp.extend(l);
                    udp.extend(s);
                }
                // A host without IPv6 cannot bind the default "::"; the IPv4
                // wildcard still serves it.
                Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && ipv6_unavailable(&e) => {
                    tracing::warn!(
                        port = config.number,
                        "IPv6 unavailable, not listening on {addr}: {e}"
                    );
                }
                Err(source) => {
                    return Err(EngineError::Bind {
                        port: config.number,
                        addr,
                        source,
                    });
                }
            }
        }
        tcp.push(bound_tcp);
    }
    let bound = match (&config.mode, tcp.len()) {
        (
            OperationMode::Disabled | OperationMode::TcpClient(_) | OperationMode::PairMaster(_),
            _,
        ) => Bound::None,
        (OperationMode::Udp(_), _) => Bound::Udp(udp),
        (OperationMode::RealCom(_) | OperationMode::TcpServer(_), 2) => {
            let command = tcp.pop().unwrap_or_default();
            Bound::RealCom(tcp.pop().unwrap_or_default(), command)
        }
        _ => Bound::Tcp(tcp.into_iter().flatten().collect()),
    };
    Ok((bound, listeners))
}

impl PortUnit {
    /// Start the port on sockets bound by [`bind`]; a disabled port starts
    /// nothing (its unit only remembers the configuration).
    pub(crate) fn start(
        config: &PortConfig,
        sockets: Bound,
        listeners: Vec<BoundListener>,
        gate: &Gate,
        events: &EventSink,
        parent: &CancellationToken,
        sources: &Sources,
    ) -> PortUnit {
        let cancel = parent.child_token();
        let tracker = TaskTracker::new();
        let mut unit = PortUnit {
            config: config.clone(),
            handle: None,
            listeners,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        };
        if matches!(config.mode, OperationMode::Disabled) {
            return unit;
        }
        let handle = port::spawn(config, events.clone(), cancel.clone(), &tracker);
        let tls = PortTls {
            mode: config.secure,
            source: sources.tls.clone(),
            handshake_timeout: gate.handshake_timeout(),
        };
        let (ev, c) = (events.clone(), cancel);
        match (&config.mode, sockets) {
            (OperationMode::TcpServer(m), Bound::RealCom(data, command)) => {
                let port = m.command_port.unwrap_or_default();
                let params = realcom::Params::tcp_server(m, port, &config.serial, &tls);
                realcom::spawn(
                    data,
                    command,
                    handle.clone(),
                    params,
                    gate.clone(),
                    ev,
                    c,
                    &tracker,
                );
            }
            (OperationMode::TcpServer(m), Bound::Tcp(ls)) => {
                let params = tcp_server::ServerParams {
                    protocol: tcp_server::Protocol::Raw,
                    max_connections: m.max_connections,
                    alive_check_min: m.alive_check_min,
                    inactivity: (m.inactivity_ms > 0)
                        .then(|| Duration::from_millis(m.inactivity_ms.into())),
                    tls: tls.clone(),
                };
                tcp_server::spawn(ls, handle.clone(), params, gate.clone(), ev, c, &tracker);
            }
            (OperationMode::Rfc2217(m), Bound::Tcp(ls)) => {
                let params = tcp_server::ServerParams {
                    protocol: tcp_server::Protocol::Rfc2217,
                    max_connections: m.max_connections,
                    alive_check_min: m.alive_check_min,
                    inactivity: None,
                    tls: tls.clone(),
                };
                tcp_server::spawn(ls, handle.clone(), params, gate.clone(), ev, c, &tracker);
            }
            (OperationMode::RealCom(m), Bound::RealCom(data, command)) => {
                let params = realcom::Params {
                    mode: m.clone(),
                    settings: config.serial.clone(),
                    driver: true,
                    inactivity: None,
                    tls: tls.clone(),
                };
                realcom::spawn(
                    data,
                    command,
                    handle.clone(),
                    params,
                    gate.clone(),
                    ev,
                    c,
                    &tracker,
                );
            }
            (OperationMode::Udp(m), Bound::Udp(ss)) => {
                udp::spawn(ss, handle.clone(), m, gate.clone(), ev, c, &tracker)
            }
            (OperationMode::TcpClient(m), _) => {
                tcp_client::spawn(handle.clone(), m, &tls, ev, c, &tracker)
            }
            (OperationMode::PairSlave(m), Bound::Tcp(ls)) => {
                pair::spawn_slave(ls, handle.clone(), m, &tls, gate.clone(), ev, c, &tracker)
            }
            (OperationMode::PairMaster(m), _) => {
                pair::spawn_master(handle.clone(), m, &tls, ev, c, &tracker)
            }
            (OperationMode::ReverseTelnet(m) | OperationMode::ReverseSsh(m), Bound::Tcp(ls)) => {
                let protocol = match config.mode {
                    OperationMode::ReverseSsh(_) => reverse_terminal::Protocol::Ssh,
                    _ => reverse_terminal::Protocol::Telnet,
                };
                // `Engine` refuses these modes without access (see
                // `EngineError::NeedsAccounts`).
                if let Some(access) = &sources.access {
                    let params = reverse_terminal::Params::new(protocol, m, access.clone());
                    reverse_terminal::spawn(
                        ls,
                        handle.clone(),
                        params,
                        gate.clone(),
                        ev,
                        c,
                        &tracker,
                    );
                }
            }
            _ => {}
        }
        unit.handle = Some(handle);
        unit
    }

    /// Stop the port: close its listeners and sessions, release the device,
    /// wait up to `grace`. True when everything ended in time.
    pub(crate) async fn stop(self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Wait for the port's tasks after the engine-wide token was cancelled.
    pub(crate) async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    /// Linux EAFNOSUPPORT: the kernel has no IPv6.
    const EAFNOSUPPORT: i32 = 97;
    e.kind() == std::io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(EAFNOSUPPORT)
}
