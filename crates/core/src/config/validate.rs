//! The one pass from a generic document to the typed [`Config`].
//!
//! Every field is checked even after an error, so the caller gets the full
//! list; a field with an error takes its default so the walk can go on (the
//! result is discarded when any error was found). Unknown keys are errors:
//! a typo must not silently fall back to a default.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use ttyward_serial::{DeviceSpec, SerialSettings};

use super::*;

/// Collects errors during one walk.
#[derive(Default)]
struct Walk {
    errors: Vec<FieldError>,
}

impl Walk {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

/// A JSON object being read; remembers which keys were used.
struct Obj<'v> {
    path: String,
    map: Option<&'v Map<String, Value>>,
    used: BTreeSet<&'static str>,
}

impl<'v> Obj<'v> {
    /// `value` may be absent (all defaults) but, if present, must be an object.
    fn new(w: &mut Walk, path: String, value: Option<&'v Value>) -> Obj<'v> {
        let map = match value {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                w.err(
                    &path,
                    format!("expected a table/object, found {}", kind(other)),
                );
                None
            }
        };
        Obj {
            path,
            map,
            used: BTreeSet::new(),
        }
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.used.insert(key);
        // null is how an unset optional field serialises: same as absent.
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// Report keys nobody asked for.
    fn finish(self, w: &mut Walk) {
        if let Some(map) = self.map {
            for key in map.keys().filter(|k| !self.used.contains(k.as_str())) {
                let expected: Vec<&str> = self.used.iter().copied().collect();
                w.err(
                    &self.at(key),
                    format!("unknown field; expected one of: {}", expected.join(", ")),
                );
            }
        }
    }

    fn uint(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> u64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v.as_u64() {
            Some(n) if range.contains(&n) => n,
            Some(n) => {
                w.err(
                    &self.at(key),
                    format!("{n} is out of range {}–{}", range.start(), range.end()),
                );
                default
            }
            None => {
                w.err(
                    &self.at(key),
                    format!(
                        "expected an integer {}–{}, found {}",
                        range.start(),
                        range.end(),
                        kind(v)
                    ),
                );
                default
            }
        }
    }

    /// An unsigned integer field of type `T` within `range`.
    fn int<T>(&mut self, w: &mut Walk, key: &'static str, default: T, range: RangeInclusive<T>) -> T
    where
        T: Copy + Into<u64> + TryFrom<u64>,
    {
        let r = (*range.start()).into()..=(*range.end()).into();
        T::try_from(self.uint(w, key, default.into(), r)).unwrap_or(default)
    }

    fn string(&mut self, w: &mut Walk, key: &'static str, max_chars: usize) -> Option<String> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) if s.chars().count() <= max_chars => Some(s.to_owned()),
            Some(_) => {
                w.err(&self.at(key), format!("longer than {max_chars} characters"));
                None
            }
            None => {
                w.err(
                    &self.at(key),
                    format!("expected a string, found {}", kind(v)),
                );
                None
            }
        }
    }

    /// A value whose own serde impl knows the accepted words (parity, ...).
    fn parse<T: DeserializeOwned>(&mut self, w: &mut Walk, key: &'static str, default: T) -> T {
        let Some(v) = self.get(key) else {
            return default;
        };
        match serde_json::from_value(v.clone()) {
            Ok(t) => t,
            Err(e) => {
                w.err(&self.at(key), format!("{e}"));
                default
            }
        }
    }

    /// A delimiter: a byte given as an integer 0–255 or a hex string ("0d", "0x0D").
    fn byte(&mut self, w: &mut Walk, key: &'static str) -> Option<u8> {
        let v = self.get(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Value::String(s) => {
                let hex = s.trim_start_matches("0x").trim_start_matches("0X");
                if hex.is_empty() || hex.len() > 2 {
                    None
                } else {
                    u8::from_str_radix(hex, 16).ok()
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            w.err(
                &self.at(key),
                "expected a byte: an integer 0–255 or two hex digits such as \"0d\"",
            );
        }
        parsed
    }

    fn addrs(&mut self, w: &mut Walk, key: &'static str) -> Vec<IpAddr> {
        let Some(v) = self.get(key) else {
            return default_bind();
        };
        let path = self.at(key);
        let Some(items) = v.as_array() else {
            w.err(
                &path,
                "expected a list of IP addresses, e.g. [\"0.0.0.0\", \"::\"]",
            );
            return default_bind();
        };
        if items.is_empty() {
            w.err(&path, "must name at least one address");
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| ip(w, &format!("{path}[{i}]"), item))
            .collect()
    }
}

fn ip(w: &mut Walk, path: &str, v: &Value) -> Option<IpAddr> {
    match v.as_str().map(str::parse::<IpAddr>) {
        Some(Ok(a)) => Some(a),
        _ => {
            w.err(path, "expected an IPv4 or IPv6 address");
            None
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

pub(super) fn config(doc: &Value) -> Result<Config, ConfigError> {
    let mut w = Walk::default();
    let mut top = Obj::new(&mut w, String::new(), Some(doc));
    let mut ports = Vec::new();
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
        Ok(Config { ports })
    } else {
        Err(ConfigError { errors: w.errors })
    }
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
    o.finish(w);
    PortConfig {
        number,
        alias,
        device: device.unwrap_or_else(|| DeviceSpec::Path("/dev/null".into())),
        serial,
        packing,
        sessions,
        mode,
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
        }),
        Some("rfc2217") => OperationMode::Rfc2217(Rfc2217Mode {
            bind: o.addrs(w, "bind"),
            local_port: o.int(w, "local_port", port, 0..=u16::MAX),
            max_connections: o.int(w, "max_connections", 1, 1..=MAX_CONNECTIONS),
            alive_check_min: o.int(w, "alive_check_min", 7, 0..=99),
        }),
        Some("tcp-client") => OperationMode::TcpClient(tcp_client(w, &mut o)),
        Some("udp") => OperationMode::Udp(udp(w, &mut o, port)),
        _ => {
            w.err(
                &o.at("type"),
                "expected one of: disabled, tcp-server, tcp-client, udp, rfc2217",
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
    let reconnect_min_ms = o.int(w, "reconnect_min_ms", 1_000, 10..=3_600_000);
    let reconnect_max_ms = o.int(w, "reconnect_max_ms", 30_000, 10..=3_600_000);
    if reconnect_max_ms < reconnect_min_ms {
        w.err(
            &o.at("reconnect_max_ms"),
            "must not be less than reconnect_min_ms",
        );
    }
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
        let Some(Listen {
            udp,
            bind,
            port: local,
        }) = p.mode.listen()
        else {
            continue;
        };
        if local == 0 {
            continue; // any free port: the OS picks distinct ones
        }
        for addr in bind {
            let clash = taken.iter().find(|(u, lp, a, _)| {
                *u == udp
                    && *lp == local
                    && a.is_ipv4() == addr.is_ipv4()
                    && (a == addr || a.is_unspecified() || addr.is_unspecified())
            });
            if let Some((_, _, _, owner)) = clash {
                w.err(
                    &format!("ports[{i}].mode.local_port"),
                    format!("{local} is already used by port {owner}"),
                );
                break;
            }
            taken.push((udp, local, *addr, p.number));
        }
    }
}
