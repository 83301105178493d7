//! The one pass from a generic document to the typed [`Config`].
//!
//! Every field is checked even after an error, so the caller gets the full
//! list; a field with an error takes its default so the walk can go on (the
//! result is discarded when any error was found). Unknown keys are errors:
//! a typo must not silently fall back to a default.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;
use ttyward_serial::{DeviceSpec, SerialSettings};

use super::walk::{Obj, Walk, ip, kind};
use super::*;

pub(super) fn config(doc: &Value) -> Result<Config, ConfigError> {
    let mut w = Walk::default();
    let mut top = Obj::new(&mut w, String::new(), Some(doc));
    let mut ports = Vec::new();
    let services = crate::services::read_services(&mut w, top.at("services"), top.get("services"));
    let security = security(&mut w, top.at("security"), top.get("security"));
    let event_log =
        crate::event_log::read_settings(&mut w, top.at("event_log"), top.get("event_log"));
    let system = crate::system::read_system(&mut w, top.at("system"), top.get("system"));
    match top.get("ports") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                ports.push(port(&mut w, i, item));
            }
        }
        Some(other) => w.err(
            "ports",
            format!("expected a list of ports, found {}", kind(other)),
        ),
    }
    top.finish(&mut w);

    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert(p.number) {
            w.err(
                &format!("ports[{i}].number"),
                format!("port {} is defined twice", p.number),
            );
        }
    }
    check_listen_conflicts(&mut w, &ports);
    ports.sort_by_key(|p| p.number);
    if w.errors.is_empty() {
        Ok(Config {
            ports,
            services,
            security,
            event_log,
            system,
        })
    } else {
        Err(ConfigError { errors: w.errors })
    }
}

fn security(w: &mut Walk, path: String, value: Option<&Value>) -> Security {
    let mut o = Obj::new(w, path, value);
    let security = Security {
        password_policy: crate::password::read_policy(
            w,
            o.at("password_policy"),
            o.get("password_policy"),
        ),
        login: crate::login::read_settings(w, o.at("login"), o.get("login")),
        allowlist: crate::access::read_allowlist(w, o.at("allowlist"), o.get("allowlist")),
        dos: crate::access::read_dos(w, o.at("dos"), o.get("dos")),
    };
    o.finish(w);
    security
}

fn port(w: &mut Walk, index: usize, value: &Value) -> PortConfig {
    let path = format!("ports[{index}]");
    let mut o = Obj::new(w, path.clone(), Some(value));
    let default_number = u16::try_from(index + 1).unwrap_or(MAX_PORTS);
    let number = o.int(w, "number", default_number, 1..=MAX_PORTS);
    let alias = o.string(w, "alias", MAX_ALIAS_CHARS).unwrap_or_default();
    let device = match o.get("device") {
        None => {
            w.err(&o.at("device"), "missing: give a device path such as \"/dev/ttyUSB0\" or a simulated device (\"sim:echo\", \"sim:modbus\", \"sim:console\")");
            None
        }
        Some(Value::String(s)) => match DeviceSpec::parse(s) {
            Ok(d) => Some(d),
            Err(e) => {
                w.err(&o.at("device"), e.to_string());
                None
            }
        },
        Some(other) => {
            w.err(
                &o.at("device"),
                format!("expected a string, found {}", kind(other)),
            );
            None
        }
    };
    let serial = serial(w, o.at("serial"), o.get("serial"));
    let packing = packing(w, o.at("packing"), o.get("packing"));
    let sessions = sessions(w, o.at("sessions"), o.get("sessions"));
    let mode = mode(w, o.at("mode"), o.get("mode"), number, &serial);
    let secure: SecureConnection = o.parse(w, "secure", SecureConnection::Off);
    if secure != SecureConnection::Off && matches!(mode, OperationMode::Udp(_)) {
        w.err(
            &o.at("secure"),
            "UDP mode has no secure connection (TLS needs TCP); use \"off\" or a TCP mode",
        );
    }
    if secure != SecureConnection::Off
        && matches!(
            mode,
            OperationMode::ReverseTelnet(_) | OperationMode::ReverseSsh(_)
        )
    {
        w.err(
            &o.at("secure"),
            "reverse terminal modes have no TLS; use \"off\" (reverse-ssh is encrypted by SSH itself)",
        );
    }
    o.finish(w);
    PortConfig {
        number,
        alias,
        device: device.unwrap_or_else(|| DeviceSpec::Path("/dev/null".into())),
        serial,
        packing,
        sessions,
        mode,
        secure,
    }
}

fn serial(w: &mut Walk, path: String, value: Option<&Value>) -> SerialSettings {
    let d = nport_serial_defaults();
    let mut o = Obj::new(w, path, value);
    let s = SerialSettings {
        baud: o.parse(w, "baud", d.baud),
        data_bits: o.parse(w, "data_bits", d.data_bits),
        parity: o.parse(w, "parity", d.parity),
        stop_bits: o.parse(w, "stop_bits", d.stop_bits),
        flow: o.parse(w, "flow", d.flow),
        interface: o.parse(w, "interface", d.interface),
        rs485: o.parse(w, "rs485", d.rs485),
    };
    o.finish(w);
    s
}

fn packing(w: &mut Walk, path: String, value: Option<&Value>) -> Packing {
    let mut o = Obj::new(w, path, value);
    let p = Packing {
        length: o.int(w, "length", 0, 0..=1024),
        delimiter1: o.byte(w, "delimiter1"),
        delimiter2: o.byte(w, "delimiter2"),
        process: o.parse(w, "delimiter_process", DelimiterProcess::DoNothing),
        force_transmit_ms: o.int(w, "force_transmit_ms", 0, 0..=u16::MAX),
    };
    if p.delimiter2.is_some() && p.delimiter1.is_none() {
        w.err(
            &o.at("delimiter2"),
            "delimiter2 works only together with delimiter1 (the two bytes in sequence)",
        );
    }
    if p.length > 0 && p.delimiter1.is_some() {
        w.err(
            &o.at("delimiter1"),
            "delimiters are ignored while packing length is set; set length = 0 to use them",
        );
    }
    if p.process != DelimiterProcess::DoNothing && p.delimiter1.is_none() {
        w.err(
            &o.at("delimiter_process"),
            "has no effect without delimiter1",
        );
    }
    o.finish(w);
    p
}

fn sessions(w: &mut Walk, path: String, value: Option<&Value>) -> SessionPolicy {
    let d = SessionPolicy::default();
    let mut o = Obj::new(w, path, value);
    let s = SessionPolicy {
        queue_bytes: o.int(w, "queue_bytes", d.queue_bytes, 4096..=64 << 20),
        jam_timeout_ms: o.int(w, "jam_timeout_ms", d.jam_timeout_ms, 100..=3_600_000),
    };
    o.finish(w);
    s
}

fn mode(
    w: &mut Walk,
    path: String,
    value: Option<&Value>,
    number: u16,
    serial: &SerialSettings,
) -> OperationMode {
    let mut o = Obj::new(w, path, value);
    let port = default_data_port(number);
    let kind_value = o.get("type");
    let m = match kind_value.and_then(Value::as_str) {
        None if value.is_none() => OperationMode::Disabled,
        Some("disabled") => OperationMode::Disabled,
        Some("tcp-server") => OperationMode::TcpServer(TcpServerMode {
            bind: o.addrs(w, "bind"),
            local_port: o.int(w, "local_port", port, 0..=u16::MAX),
            max_connections: o.int(w, "max_connections", 1, 1..=MAX_CONNECTIONS),
            alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
            inactivity_ms: o.int(w, "inactivity_ms", 0, 0..=u16::MAX),
            command_port: o.opt_int(w, "command_port", 0..=u16::MAX),
        }),
        Some("rfc2217") => OperationMode::Rfc2217(Rfc2217Mode {
            bind: o.addrs(w, "bind"),
            local_port: o.int(w, "local_port", port, 0..=u16::MAX),
            max_connections: o.int(w, "max_connections", 1, 1..=MAX_CONNECTIONS),
            alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
        }),
        Some("real-com") => {
            let (data, command) = default_realcom_ports(number);
            OperationMode::RealCom(RealComMode {
                bind: o.addrs(w, "bind"),
                data_port: o.int(w, "data_port", data, 0..=u16::MAX),
                command_port: o.int(w, "command_port", command, 0..=u16::MAX),
                max_connections: o.int(w, "max_connections", 1, 1..=MAX_CONNECTIONS),
                alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
                allow_driver_control: o.bool(w, "allow_driver_control", false),
                connection_down_rts: o.parse(w, "connection_down_rts", LineOnDown::AlwaysHigh),
                connection_down_dtr: o.parse(w, "connection_down_dtr", LineOnDown::AlwaysHigh),
                alive: Default::default(),
            })
        }
        Some("tcp-client") => OperationMode::TcpClient(tcp_client(w, &mut o)),
        Some("udp") => OperationMode::Udp(udp(w, &mut o, port)),
        Some("pair-master") => OperationMode::PairMaster(pair_master(w, &mut o, port)),
        Some("pair-slave") => OperationMode::PairSlave(PairSlaveMode {
            bind: o.addrs(w, "bind"),
            local_port: o.int(w, "local_port", port, 0..=u16::MAX),
            alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
        }),
        Some("reverse-telnet") => OperationMode::ReverseTelnet(reverse_terminal(w, &mut o, port)),
        Some("reverse-ssh") => OperationMode::ReverseSsh(reverse_terminal(w, &mut o, port)),
        _ => {
            w.err(
                &o.at("type"),
                "expected one of: disabled, tcp-server, tcp-client, udp, rfc2217, real-com, pair-master, pair-slave, reverse-telnet, reverse-ssh",
            );
            OperationMode::Disabled
        }
    };
    if let OperationMode::TcpClient(c) = &m {
        let dsr_dcd = matches!(c.connect_on, ConnectOn::DsrOn | ConnectOn::DcdOn)
            || matches!(c.disconnect_on, DisconnectOn::DsrOff | DisconnectOn::DcdOff);
        if dsr_dcd && serial.flow == ttyward_serial::FlowControl::DtrDsr {
            w.err(
                &o.at("connect_on"),
                "DSR/DCD connection control cannot be combined with DTR/DSR flow control",
            );
        }
    }
    o.finish(w);
    m
}

fn tcp_client(w: &mut Walk, o: &mut Obj<'_>) -> TcpClientMode {
    let mut destinations = Vec::new();
    let dpath = o.at("destinations");
    match o.get("destinations") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_TCP_DESTINATIONS => {
            for (i, item) in items.iter().enumerate() {
                let mut d = Obj::new(w, format!("{dpath}[{i}]"), Some(item));
                let host = d.string(w, "host", 253);
                if host.as_deref().is_none_or(str::is_empty) {
                    w.err(&d.at("host"), "missing: give an IP address or host name");
                }
                let port = d.int(w, "port", 0, 1..=u16::MAX);
                if d.map
                    .is_some_and(|m| m.get("port").is_none_or(Value::is_null))
                {
                    w.err(&d.at("port"), "missing: give the destination TCP port");
                }
                let local_port = d
                    .get("local_port")
                    .map(|_| d.int(w, "local_port", 0, 1..=u16::MAX));
                d.finish(w);
                destinations.push(TcpDestination {
                    host: host.unwrap_or_default(),
                    port,
                    local_port,
                });
            }
        }
        _ => w.err(
            &dpath,
            format!("give 1–{MAX_TCP_DESTINATIONS} destinations, each {{ host, port }}"),
        ),
    }
    let connect_on = o.parse(w, "connect_on", ConnectOn::Startup);
    let disconnect_on = o.parse(w, "disconnect_on", DisconnectOn::None);
    let inactivity_ms = o.int(w, "inactivity_ms", 0, 0..=u16::MAX);
    // The NPort offers seven connect/disconnect pairs; the others make no sense
    // (e.g. connect at startup but hang up on inactivity would redial at once).
    let valid = matches!(
        (connect_on, disconnect_on),
        (ConnectOn::Startup, DisconnectOn::None)
            | (
                ConnectOn::AnyCharacter,
                DisconnectOn::None | DisconnectOn::Inactivity
            )
            | (ConnectOn::DsrOn, DisconnectOn::None | DisconnectOn::DsrOff)
            | (ConnectOn::DcdOn, DisconnectOn::None | DisconnectOn::DcdOff)
    );
    if !valid {
        w.err(&o.at("disconnect_on"), "this connect/disconnect pair is not an NPort connection control; valid: startup/none, any-character/none, any-character/inactivity, dsr-on/none, dsr-on/dsr-off, dcd-on/none, dcd-on/dcd-off");
    }
    if disconnect_on == DisconnectOn::Inactivity && inactivity_ms == 0 {
        w.err(
            &o.at("inactivity_ms"),
            "must be more than 0 when disconnect_on = \"inactivity\"",
        );
    }
    let (reconnect_min_ms, reconnect_max_ms) = reconnect(w, o);
    TcpClientMode {
        destinations,
        connect_on,
        disconnect_on,
        alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
        inactivity_ms,
        reconnect_min_ms,
        reconnect_max_ms,
    }
}

fn pair_master(w: &mut Walk, o: &mut Obj<'_>, port: u16) -> PairMasterMode {
    // A host of the wrong type or too long is reported by `string`.
    let given = o.get("host").is_some();
    let host = o.string(w, "host", 253);
    if !given || host.as_deref() == Some("") {
        w.err(
            &o.at("host"),
            "missing: give the pair slave's IP address or host name",
        );
    }
    let (reconnect_min_ms, reconnect_max_ms) = reconnect(w, o);
    PairMasterMode {
        host: host.unwrap_or_default(),
        port: o.int(w, "port", port, 1..=u16::MAX),
        alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
        reconnect_min_ms,
        reconnect_max_ms,
    }
}

fn reverse_terminal(w: &mut Walk, o: &mut Obj<'_>, port: u16) -> ReverseTerminalMode {
    let bind = o.addrs(w, "bind");
    let local_port = o.int(w, "local_port", port, 0..=u16::MAX);
    let max_connections = o.int(w, "max_connections", 1, 1..=MAX_CONNECTIONS);
    let inactivity_min = o.int(w, "inactivity_min", 0, 0..=99);
    let map_crlf = o.parse(w, "map_crlf", MapCrLf::CrLf);
    let gpath = o.at("groups");
    let groups = match o.get("groups") {
        None => vec![crate::permission::ADMINISTRATOR.to_owned()],
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_CONSOLE_GROUPS => {
            let mut groups: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("{gpath}[{i}]");
                match item.as_str() {
                    Some(name) => match crate::account::check_name(name) {
                        Ok(()) if groups.iter().any(|g| g.eq_ignore_ascii_case(name)) => {
                            w.err(&path, format!("group {name:?} is listed twice"));
                        }
                        Ok(()) => groups.push(name.to_owned()),
                        Err(e) => w.err(&path, format!("not a group name: {e}")),
                    },
                    None => w.err(
                        &path,
                        format!("expected a group name, found {}", kind(item)),
                    ),
                }
            }
            groups
        }
        Some(_) => {
            w.err(
                &gpath,
                format!(
                    "give 1–{MAX_CONSOLE_GROUPS} account group names, e.g. [\"Administrator\"]"
                ),
            );
            Vec::new()
        }
    };
    ReverseTerminalMode {
        bind,
        local_port,
        max_connections,
        inactivity_min,
        map_crlf,
        groups,
    }
}

/// Reconnect delays (TCP client, pair master): first and longest, in ms.
fn reconnect(w: &mut Walk, o: &mut Obj<'_>) -> (u32, u32) {
    let min = o.int(w, "reconnect_min_ms", 1_000, 10..=3_600_000);
    let max = o.int(w, "reconnect_max_ms", 30_000, 10..=3_600_000);
    if max < min {
        w.err(
            &o.at("reconnect_max_ms"),
            "must not be less than reconnect_min_ms",
        );
    }
    (min, max)
}

fn udp(w: &mut Walk, o: &mut Obj<'_>, port: u16) -> UdpMode {
    let bind = o.addrs(w, "bind");
    let local_port = o.int(w, "local_port", port, 0..=u16::MAX);
    let mut destinations = Vec::new();
    let dpath = o.at("destinations");
    match o.get("destinations") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_UDP_RANGES => {
            for (i, item) in items.iter().enumerate() {
                let mut d = Obj::new(w, format!("{dpath}[{i}]"), Some(item));
                let bpath = d.at("begin");
                let begin = d.get("begin").and_then(|v| ip(w, &bpath, v));
                if d.map
                    .is_some_and(|m| m.get("begin").is_none_or(Value::is_null))
                {
                    w.err(&bpath, "missing: the first destination address");
                }
                let epath = d.at("end");
                let end = d.get("end").map_or(begin, |v| ip(w, &epath, v));
                let dport = d.int(w, "port", port, 1..=u16::MAX);
                d.finish(w);
                if let (Some(b), Some(e)) = (begin, end) {
                    let range = UdpRange {
                        begin: b,
                        end: e,
                        port: dport,
                    };
                    let len = match (b, e) {
                        (IpAddr::V4(b), IpAddr::V4(e)) => {
                            u128::from(u32::from(e)).checked_sub(u32::from(b).into())
                        }
                        (IpAddr::V6(b), IpAddr::V6(e)) => u128::from(e).checked_sub(u128::from(b)),
                        _ => None,
                    };
                    match len {
                        Some(n) if n < MAX_UDP_RANGE_LEN => destinations.push(range),
                        Some(_) => w.err(
                            &epath,
                            format!("a range holds at most {MAX_UDP_RANGE_LEN} addresses"),
                        ),
                        None => w.err(
                            &epath,
                            "must be the same address family as begin and not before it",
                        ),
                    }
                }
            }
        }
        _ => w.err(
            &dpath,
            format!("give 1–{MAX_UDP_RANGES} destination ranges, each {{ begin, end, port }}"),
        ),
    }
    UdpMode {
        bind,
        local_port,
        destinations,
    }
}

/// Two ports may not listen on the same (protocol, port) with overlapping addresses.
fn check_listen_conflicts(w: &mut Walk, ports: &[PortConfig]) {
    let mut taken: Vec<(bool, u16, IpAddr, u16)> = Vec::new(); // (udp, port, addr, owner)
    for (i, p) in ports.iter().enumerate() {
        for listen in p.mode.listens() {
            check_listen(w, &mut taken, i, p.number, listen);
        }
    }
}

fn check_listen(
    w: &mut Walk,
    taken: &mut Vec<(bool, u16, IpAddr, u16)>,
    i: usize,
    number: u16,
    listen: Listen<'_>,
) {
    let Listen {
        udp,
        bind,
        port: local,
        field,
        ..
    } = listen;
    if local == 0 {
        return; // any free port: the OS picks distinct ones
    }
    for addr in bind {
        let clash = taken.iter().find(|(u, lp, a, _)| {
            *u == udp
                && *lp == local
                && a.is_ipv4() == addr.is_ipv4()
                && (a == addr || a.is_unspecified() || addr.is_unspecified())
        });
        if let Some((_, _, _, owner)) = clash {
            let owner = if *owner == number {
                "this port's other listener".to_owned()
            } else {
                format!("port {owner}")
            };
            w.err(
                &format!("ports[{i}].mode.{field}"),
                format!("{local} is already used by {owner}"),
            );
            break;
        }
        taken.push((udp, local, *addr, number));
    }
}
