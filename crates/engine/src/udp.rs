//! UDP mode (NPort manual 7-15): every frame of device output (after
//! packing) is sent as one datagram to every address of up to four
//! destination ranges; every datagram received on the local port is written
//! to the device. UDP has no sessions, so the port keeps one permanent
//! session, re-attached after the device comes back.

use std::net::SocketAddr;
use std::sync::Arc;

use std::task::Poll;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::UdpMode;

use crate::event::EventSink;
use crate::gate::Gate;
use crate::port::{PortHandle, PortState, Session};
use ttyward_core::access::ServiceKind;

/// Largest datagram accepted from the network.
const MAX_DATAGRAM: usize = 65_536;

/// Start the UDP front-end of one port on already bound sockets.
pub(crate) fn spawn(
    sockets: Vec<UdpSocket>,
    port: PortHandle,
    mode: &UdpMode,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let destinations: Vec<SocketAddr> = mode
        .destinations
        .iter()
        .flat_map(|r| {
            r.addresses()
                .into_iter()
                .map(move |a| SocketAddr::new(a, r.port))
        })
        .collect();
    let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
    let udp = Udp {
        port,
        sockets,
        destinations,
        gate,
        events,
        cancel,
    };
    tracker.spawn(udp.run());
}

struct Udp {
    port: PortHandle,
    sockets: Vec<Arc<UdpSocket>>,
    destinations: Vec<SocketAddr>,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
}

impl Udp {
    async fn run(self) {
        let local = self.sockets.first().and_then(|s| s.local_addr().ok());
        let local = local.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut state = self.port.watch_state();
        loop {
            // Wait for the device, then hold one session while it lasts.
            while !matches!(*state.borrow_and_update(), PortState::Open) {
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    r = state.changed() => if r.is_err() { return },
                }
            }
            let Ok(session) = self.port.attach(local).await else {
                // Lost the race with the device vanishing again; wait for the next change.
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    r = state.changed() => if r.is_err() { return },
                }
                continue;
            };
            tracing::debug!(port = self.port.number(), "udp session attached");
            let why = self.forward(&session).await;
            tracing::debug!(port = self.port.number(), "udp session ended: {why}");
            drop(session);
            if self.cancel.is_cancelled() {
                return;
            }
        }
    }

    async fn forward(&self, session: &Session) -> String {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut bufs: Vec<Vec<u8>> = self
            .sockets
            .iter()
            .map(|_| vec![0u8; MAX_DATAGRAM])
            .collect();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return "port stopped".into(),
                r = session.recv(&mut chunks) => match r {
                    Ok(()) => {
                        for chunk in chunks.drain(..) {
                            self.send_frame(&chunk).await;
                        }
                    }
                    Err(reason) => return reason.to_string(),
                },
                (i, r) = recv_any(&self.sockets, &mut bufs) => match r {
                    Ok((n, peer)) => {
                        if !self.admits(peer) {
                            continue;
                        }
                        let data = Bytes::copy_from_slice(bufs.get(i).map_or(&[][..], |b| &b[..n]));
                        if session.send(data).await.is_err() {
                            return "port stopped".into();
                        }
                    }
                    Err(e) => tracing::debug!(port = self.port.number(), "udp receive: {e}"),
                },
            }
        }
    }

    /// The allowlist for a datagram; refused ones are dropped unread.
    fn admits(&self, peer: SocketAddr) -> bool {
        let Err(refused) = self.gate.check_datagram(peer.ip(), ServiceKind::Serial) else {
            return true;
        };
        crate::gate::count_refusal(&self.port, &self.events, peer, refused);
        false
    }

    async fn send_frame(&self, frame: &[u8]) {
        for dest in &self.destinations {
            let socket = self
                .sockets
                .iter()
                .find(|s| s.local_addr().is_ok_and(|a| a.is_ipv4() == dest.is_ipv4()));
            let Some(socket) = socket else { continue };
            if let Err(e) = socket.send_to(frame, dest).await {
                tracing::debug!(port = self.port.number(), "udp send to {dest}: {e}");
            }
        }
    }
}

/// Receive one datagram on whichever socket has one. Cancel-safe.
async fn recv_any(
    sockets: &[Arc<UdpSocket>],
    bufs: &mut [Vec<u8>],
) -> (usize, std::io::Result<(usize, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        for (i, (socket, buf)) in sockets.iter().zip(bufs.iter_mut()).enumerate() {
            let mut rb = tokio::io::ReadBuf::new(buf);
            if let Poll::Ready(r) = socket.poll_recv_from(cx, &mut rb) {
                let n = rb.filled().len();
                return Poll::Ready((i, r.map(|peer| (n, peer))));
            }
        }
        Poll::Pending
    })
    .await
}
