//! TCP Client mode (NPort manual 7-14): the port connects out to up to four
//! destinations, each on its own, driven by the NPort's connection control:
//! connect at startup, on the first character from the device, or when DSR
//! or DCD goes on; disconnect never, after inactivity, or when DSR or DCD
//! goes off. A failed or lost connection is retried with exponential
//! backoff (`reconnect_min_ms` doubling up to `reconnect_max_ms`).
//!
//! "Any character": the destination's session is attached *before* the
//! connection exists, so the byte that triggers the connection (and what
//! follows while connecting) is delivered once connected, not lost.

use std::future::pending;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{ConnectOn, DisconnectOn, TcpClientMode, TcpDestination};
use ttyward_serial::ModemStatus;

use crate::event::{EventKind, EventSink};
use crate::net::Conn;
use crate::port::{PortHandle, PortState, Session};
use crate::tls::PortTls;

/// Start one connection loop per destination.
pub(crate) fn spawn(
    port: PortHandle,
    mode: &TcpClientMode,
    tls: &PortTls,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    for dest in &mode.destinations {
        let client = Client {
            port: port.clone(),
            mode: mode.clone(),
            tls: tls.clone(),
            dest: dest.clone(),
            events: events.clone(),
            cancel: cancel.clone(),
        };
        tracker.spawn(client.run());
    }
}

struct Client {
    port: PortHandle,
    mode: TcpClientMode,
    tls: PortTls,
    dest: TcpDestination,
    events: EventSink,
    cancel: CancellationToken,
}

impl Client {
    fn label(&self) -> String {
        format!("{}:{}", self.dest.host, self.dest.port)
    }

    async fn run(self) {
        let min = Duration::from_millis(u64::from(self.mode.reconnect_min_ms));
        let max = Duration::from_millis(u64::from(self.mode.reconnect_max_ms));
        let mut backoff = min;
        let mut modem = self.port.watch_modem();
        let needs_modem = matches!(self.mode.connect_on, ConnectOn::DsrOn | ConnectOn::DcdOn);
        loop {
            // 1. Wait for the connect event (and a usable device).
            if !self.wait_device().await {
                return;
            }
            let mut initial = Vec::new();
            let session = match self.mode.connect_on {
                ConnectOn::Startup => None,
                ConnectOn::AnyCharacter => match self.first_character(&mut initial).await {
                    Some(s) => Some(s),
                    None if self.cancel.is_cancelled() => return,
                    None => continue,
                },
                ConnectOn::DsrOn | ConnectOn::DcdOn => {
                    if !self.wait_line(&mut modem, true).await {
                        return;
                    }
                    None
                }
            };
            // 2. Connect, retrying with backoff.
            let stream = tokio::select! {
                _ = self.cancel.cancelled() => return,
                s = self.connect() => s,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(error) => {
                    self.events.emit(
                        self.port.number(),
                        EventKind::ConnectFailed {
                            destination: self.label(),
                            error,
                        },
                    );
                    tokio::select! {
                        _ = self.cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max);
                    continue;
                }
            };
            backoff = min;
            let (conn, peer) = stream;
            let session = match session {
                Some(s) => s,
                None => match self.port.attach(peer).await {
                    Ok(s) => s,
                    Err(_) => continue,
                },
            };
            // 3. Forward until the disconnect event.
            let _active = crate::ActiveConnection::new(self.port.counters());
            self.events
                .emit(self.port.number(), EventKind::SessionOpened { peer });
            let inactivity = (self.mode.disconnect_on == DisconnectOn::Inactivity)
                .then(|| Duration::from_millis(u64::from(self.mode.inactivity_ms)));
            let mut modem_stop = self.port.watch_modem();
            let stop = async {
                match self.mode.disconnect_on {
                    DisconnectOn::DsrOff | DisconnectOn::DcdOff => {
                        self.wait_line(&mut modem_stop, false).await;
                        "modem line went off"
                    }
                    _ => pending().await,
                }
            };
            let reason =
                crate::raw::pump(conn, &session, initial, inactivity, &self.cancel, stop).await;
            drop(session);
            self.events.emit(
                self.port.number(),
                EventKind::SessionClosed { peer, reason },
            );
            if self.cancel.is_cancelled() {
                return;
            }
            if needs_modem || self.mode.connect_on == ConnectOn::Startup {
                // Avoid a tight loop when the peer closes at once.
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    _ = tokio::time::sleep(min) => {}
                }
            }
        }
    }

    /// Wait until the port's device is open; false when stopping.
    async fn wait_device(&self) -> bool {
        let mut state = self.port.watch_state();
        loop {
            if matches!(*state.borrow_and_update(), PortState::Open) {
                return true;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                r = state.changed() => if r.is_err() { return false },
            }
        }
    }

    /// Attach and wait for device output; the output is kept for the peer.
    async fn first_character(&self, initial: &mut Vec<Bytes>) -> Option<Session> {
        let placeholder = SocketAddr::from(([0, 0, 0, 0], 0));
        let session = self.port.attach(placeholder).await.ok()?;
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            r = session.recv(initial) => r.ok().map(|()| session),
        }
    }

    /// Wait until the configured line (DSR or DCD) is `on`; false when stopping.
    async fn wait_line(&self, modem: &mut watch::Receiver<ModemStatus>, on: bool) -> bool {
        let dcd = matches!(self.mode.connect_on, ConnectOn::DcdOn);
        loop {
            let m = *modem.borrow_and_update();
            if (if dcd { m.dcd } else { m.dsr }) == on {
                return true;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                r = modem.changed() => if r.is_err() { return false },
            }
        }
    }

    /// Connect, then start TLS if the port's Secure Connection asks for it
    /// (a failed handshake counts as a failed connection: backoff, retry).
    async fn connect(&self) -> Result<(Conn, SocketAddr), String> {
        let stream = self.connect_tcp().await?;
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        if !self.tls.on() {
            return Ok((Conn::Plain(stream), peer));
        }
        let tls = self.tls.connect(stream, &self.dest.host).await?;
        Ok((Conn::Tls(Box::new(tls)), peer))
    }

    async fn connect_tcp(&self) -> Result<TcpStream, String> {
        let addrs: Vec<SocketAddr> = match self.dest.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.dest.port)],
            Err(_) => tokio::net::lookup_host((self.dest.host.as_str(), self.dest.port))
                .await
                .map_err(|e| format!("cannot resolve: {e}"))?
                .collect(),
        };
        let mut last = String::from("no address");
        for addr in addrs {
            match self.connect_one(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    async fn connect_one(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(local) = self.dest.local_port {
            socket.set_reuseaddr(true)?;
            let any: IpAddr = if addr.is_ipv4() {
                [0u8; 4].into()
            } else {
                [0u16; 8].into()
            };
            socket.bind(SocketAddr::new(any, local))?;
        }
        let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        crate::net::configure_stream(&stream, self.mode.alive_check_min)?;
        Ok(stream)
    }
}
