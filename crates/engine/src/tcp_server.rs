//! TCP Server mode (NPort manual 7-8): clients connect to the port's TCP
//! port; up to `max_connections` at once, each receiving all device output;
//! what they send is merged into the device in arrival order. A connection
//! over the limit is accepted and closed at once (as the NPort does), and
//! counted and reported.

use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::counters::add;
use crate::event::{EventKind, EventSink};
use crate::gate::Gate;
use crate::port::PortHandle;

/// What a stream front-end does with one accepted connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Raw bytes (TCP Server).
    Raw,
    /// Telnet + COM-PORT-OPTION.
    Rfc2217,
}

/// Parameters shared by the accept loops of one port.
#[derive(Clone, Debug)]
pub(crate) struct ServerParams {
    pub protocol: Protocol,
    pub max_connections: u16,
    pub alive_check_min: u8,
    pub inactivity: Option<Duration>,
    pub tls: crate::tls::PortTls,
}

/// Accept on every listener of a port until cancelled.
pub(crate) fn spawn(
    listeners: Vec<TcpListener>,
    port: PortHandle,
    params: ServerParams,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(usize::from(params.max_connections)));
    for listener in listeners {
        let ctx = Accept {
            port: port.clone(),
            params: params.clone(),
            gate: gate.clone(),
            events: events.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            permits: permits.clone(),
        };
        tracker.spawn(ctx.run(listener));
    }
}

struct Accept {
    port: PortHandle,
    params: ServerParams,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
}

impl Accept {
    async fn run(self, listener: TcpListener) {
        let (gate, port, events, cancel) = (&self.gate, &self.port, &self.events, &self.cancel);
        while let Some((stream, peer, admitted)) =
            crate::gate::next_admitted(&listener, gate, port, events, cancel).await
        {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.refuse(peer, "max connections reached");
                continue;
            };
            let (port, params, events, cancel) = (
                self.port.clone(),
                self.params.clone(),
                self.events.clone(),
                self.cancel.clone(),
            );
            self.tracker.spawn(async move {
                serve(stream, peer, port, params, events, cancel).await;
                drop(permit);
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
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    port: PortHandle,
    params: ServerParams,
    events: EventSink,
    cancel: CancellationToken,
) {
    if let Err(e) = crate::net::configure_stream(&stream, params.alive_check_min) {
        tracing::debug!("socket options for {peer}: {e}");
    }
    let conn = match secure(stream, peer, &port, &params.tls, &events).await {
        Some(c) => c,
        None => return,
    };
    let session = match port.attach(peer).await {
        Ok(s) => s,
        Err(e) => {
            add(&port.counters().connections_refused, 1);
            events.emit(
                port.number(),
                EventKind::ConnectionRefused {
                    peer,
                    reason: e.to_string(),
                },
            );
            return;
        }
    };
    let _active = crate::ActiveConnection::new(port.counters());
    events.emit(port.number(), EventKind::SessionOpened { peer });
    let reason = match params.protocol {
        Protocol::Raw => {
            crate::raw::pump(
                conn,
                &session,
                Vec::new(),
                params.inactivity,
                &cancel,
                pending(),
            )
            .await
        }
        // Boxed: the RFC 2217 state is 2.5 KiB that a raw session would
        // otherwise carry in its task too.
        Protocol::Rfc2217 => Box::pin(crate::rfc2217::serve(conn, &session, &cancel)).await,
    };
    events.emit(port.number(), EventKind::SessionClosed { peer, reason });
}

/// The connection as the port's Secure Connection setting wants it: TLS
/// accepted, or plain. A failed handshake is refused and reported (the
/// peer spoke plain TCP, an old TLS version, or had no acceptable
/// certificate).
pub(crate) async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    port: &PortHandle,
    tls: &crate::tls::PortTls,
    events: &EventSink,
) -> Option<crate::net::Conn> {
    if !tls.on() {
        return Some(crate::net::Conn::Plain(stream));
    }
    match tls.accept(stream).await {
        Ok(s) => Some(crate::net::Conn::Tls(Box::new(s))),
        Err(reason) => {
            add(&port.counters().connections_refused, 1);
            events.emit(port.number(), EventKind::ConnectionRefused { peer, reason });
            None
        }
    }
}
