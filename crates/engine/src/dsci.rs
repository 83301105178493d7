//! The Real COM discovery responder: answers the UDP probes ("DSCI",
//! `spec/realcom-protocol.md` §9.2) that Moxa's Linux driver sends every
//! 10 s to each server it has a tty on. Without answers a default npreal2
//! install tears down and reconnects an idle port about once a minute.
//!
//! It runs while `services.realcom_discovery` is enabled and at least one
//! port is in Real COM mode, on those ports' IPv4 addresses: the driver
//! wants the reply from the very address it probed, so a wildcard bind is
//! replaced by one socket per IPv4 address the host has when it starts.
//! The replies (`ttyward_proto::dsci`) carry no connection table, which the
//! driver reads as "nothing to complain about". Who may ask is the Gate's
//! decision, as for every serial listener.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::access::ServiceKind;
use ttyward_core::config::{Config, OperationMode};
use ttyward_proto::dsci::{DeviceId, Identity, answer};

use crate::gate::Gate;
use crate::{BoundListener, EngineError, net};

/// Longest DSCI datagram we read; requests are at most a few dozen bytes.
const MAX_DATAGRAM: usize = 512;

/// What the configuration asks of the responder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    port: u16,
    addrs: Vec<Ipv4Addr>,
}

/// The responder, if one is wanted.
pub(crate) fn wanted(config: &Config) -> Option<Wanted> {
    let service = &config.services.realcom_discovery;
    if !service.enabled {
        return None;
    }
    let mut addrs = Vec::new();
    for p in &config.ports {
        let OperationMode::RealCom(m) = &p.mode else {
            continue;
        };
        for ip in &m.bind {
            match ip {
                IpAddr::V4(v4) if v4.is_unspecified() => addrs.extend(host_ipv4()),
                IpAddr::V4(v4) => addrs.push(*v4),
                IpAddr::V6(_) => {} // the IPv6 variant is not implemented (spec §9.2)
            }
        }
    }
    addrs.sort();
    addrs.dedup();
    (!addrs.is_empty()).then_some(Wanted {
        port: service.port,
        addrs,
    })
}

/// The host's IPv4 addresses now.
fn host_ipv4() -> Vec<Ipv4Addr> {
    match nix::ifaddrs::getifaddrs() {
        Ok(list) => list
            .filter_map(|i| i.address?.as_sockaddr_in().map(|a| a.ip()))
            .collect(),
        Err(e) => {
            tracing::warn!("cannot list the host's addresses for Real COM discovery: {e}");
            Vec::new()
        }
    }
}

/// A running responder.
#[derive(Debug)]
pub(crate) struct Responder {
    pub(crate) wanted: Wanted,
    pub(crate) listeners: Vec<BoundListener>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Responder {
    /// Bind every address, then answer until stopped.
    pub(crate) fn start(
        wanted: Wanted,
        gate: &Gate,
        parent: &CancellationToken,
    ) -> Result<Responder, EngineError> {
        let mut sockets = Vec::new();
        let mut listeners = Vec::new();
        for ip in &wanted.addrs {
            let addr = SocketAddr::new(IpAddr::V4(*ip), wanted.port);
            let bind_error = |source| EngineError::Bind {
                port: 0,
                addr,
                source,
            };
            let socket = net::bind_udp(addr).map_err(bind_error)?;
            let local = socket.local_addr().map_err(bind_error)?;
            listeners.push(BoundListener {
                port: 0,
                mode: "dsci",
                addr: local,
                transport: "udp",
                channel: "dsci",
            });
            sockets.push((socket, *ip));
        }
        let cancel = parent.child_token();
        let tracker = TaskTracker::new();
        let id = device_id();
        for (socket, ip) in sockets {
            let me = Identity { id, ipv4: ip };
            tracker.spawn(serve(socket, me, gate.clone(), cancel.clone()));
        }
        Ok(Responder {
            wanted,
            listeners,
            cancel,
            tracker,
        })
    }

    /// Stop answering and wait for the tasks.
    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn serve(socket: UdpSocket, me: Identity, gate: Gate, cancel: CancellationToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP errors from earlier replies surface here; not fatal.
                Err(e) => {
                    tracing::debug!("Real COM discovery receive: {e}");
                    continue;
                }
            },
        };
        if gate.check_datagram(peer.ip(), ServiceKind::Serial).is_err() {
            continue;
        }
        let Some(request) = buf.get(..n) else {
            continue;
        };
        if let Some(reply) = answer(request, &me)
            && let Err(e) = socket.send_to(&reply, peer).await
        {
            tracing::debug!("Real COM discovery reply to {peer}: {e}");
        }
    }
}

/// The identity the driver records. APID must not be 0 (npreal2 would keep
/// searching); the MAC is the host's first non-loopback interface's, so the
/// driver sees one stable device.
fn device_id() -> DeviceId {
    DeviceId {
        apid: 0x7477_0001, // "tw" + 1: not a Moxa product id
        hwid: 0x0001,
        mac: host_mac().unwrap_or([0x02, 0, 0, 0, 0, 0x01]),
    }
}

fn host_mac() -> Option<[u8; 6]> {
    let list = nix::ifaddrs::getifaddrs().ok()?;
    let mut macs: Vec<(String, [u8; 6])> = list
        .filter_map(|i| {
            let link = i.address?;
            let mac = link.as_link_addr()?.addr()?;
            (mac != [0; 6]).then_some((i.interface_name, mac))
        })
        .collect();
    macs.sort();
    macs.into_iter().next().map(|(_, mac)| mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_com_ports_want_a_responder() {
        let mut config = Config::from_toml(
            r#"
            [[ports]]
            number = 1
            device = "sim:echo"
            mode = { type = "tcp-server", bind = ["127.0.0.1"], local_port = 0 }
            "#,
        )
        .expect("valid");
        assert_eq!(wanted(&config), None);
        config = Config::from_toml(
            r#"
            [[ports]]
            number = 1
            device = "sim:echo"
            mode = { type = "real-com", bind = ["127.0.0.1", "::1"], data_port = 0, command_port = 0 }
            "#,
        )
        .expect("valid");
        let w = wanted(&config).expect("wanted");
        assert_eq!(w.port, 4800);
        assert_eq!(w.addrs, vec![Ipv4Addr::LOCALHOST]);
        config.services.realcom_discovery.enabled = false;
        assert_eq!(wanted(&config), None);
    }

    #[test]
    fn device_id_is_never_zero() {
        assert_ne!(device_id().apid, 0);
    }
}
