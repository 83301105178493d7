//! Serial Port Settings > Operation Modes: per port, the mode (disabled,
//! Real COM, TCP Server, RFC 2217, UDP, TCP Client, Pair Connection master
//! and slave, Reverse Telnet and Reverse SSH) and its main fields — local
//! port (Real COM: data and command ports), max connections, alive check,
//! inactivity, destinations (a pair master: its slave), Real COM's driver
//! control and line levels when the connection goes down, TCP Server's
//! optional command port, a reverse terminal's CR-LF mapping and the
//! account groups allowed on its console. Fields the page does not show
//! (listen addresses, connection control, reconnect delays, a
//! destination's local port) keep their values; when the mode changes,
//! those the new mode shares with the old (addresses, local port, alive
//! check, max connections) carry over.
//!
//! The page judges no value: the validator does (see `form`). Whether the
//! groups ticked for a reverse terminal exist is not judged either: the
//! configuration does not know the accounts, and a login checks.

use std::net::IpAddr;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use ttyward_core::config::{
    Config, LineOnDown, MAX_CONNECTIONS, MapCrLf, OperationMode, PortConfig, TcpDestination,
    UdpRange, default_data_port, default_realcom_ports,
};
use ttyward_core::permission::{self, Permission};
use ttyward_core::service::ServiceError;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, number_or_text, optional_number};
use crate::api::AppState;

/// The modes offered, in the seed's order, with their names on the page.
const MODES: [(&str, &str); 10] = [
    ("disabled", "Disabled"),
    ("real-com", "Real COM"),
    ("tcp-server", "TCP Server"),
    ("rfc2217", "RFC 2217"),
    ("udp", "UDP"),
    ("tcp-client", "TCP Client"),
    ("pair-master", "Pair Connection Master"),
    ("pair-slave", "Pair Connection Slave"),
    ("reverse-telnet", "Reverse Telnet"),
    ("reverse-ssh", "Reverse SSH"),
];

/// The fields each mode has in the document.
fn fields_of(mode: &str) -> &'static [&'static str] {
    match mode {
        "real-com" => &[
            "bind",
            "data_port",
            "command_port",
            "max_connections",
            "alive_check_min",
            "allow_driver_control",
            "connection_down_rts",
            "connection_down_dtr",
        ],
        "tcp-server" => &[
            "bind",
            "local_port",
            "max_connections",
            "alive_check_min",
            "inactivity_ms",
            "command_port",
        ],
        "rfc2217" => &["bind", "local_port", "max_connections", "alive_check_min"],
        "tcp-client" => &[
            "destinations",
            "connect_on",
            "disconnect_on",
            "alive_check_min",
            "inactivity_ms",
            "reconnect_min_ms",
            "reconnect_max_ms",
        ],
        "udp" => &["bind", "local_port", "destinations"],
        "pair-master" => &[
            "host",
            "port",
            "alive_check_min",
            "reconnect_min_ms",
            "reconnect_max_ms",
        ],
        "pair-slave" => &["bind", "local_port", "alive_check_min"],
        "reverse-telnet" | "reverse-ssh" => &[
            "bind",
            "local_port",
            "max_connections",
            "inactivity_min",
            "map_crlf",
            "groups",
        ],
        _ => &[],
    }
}

/// Fields that mean the same in every mode that has them (a TCP Client's
/// destinations are not a UDP port's, nor is its inactivity a server's;
/// Real COM's command port speaks to Moxa's driver, a TCP Server's to
/// programs using the command set alone, so neither carries over).
const SHARED: [&str; 4] = ["bind", "local_port", "max_connections", "alive_check_min"];

/// One port's form as shown.
struct ModeView {
    number: u16,
    alias: String,
    device: String,
    mode: String,
    local_port: String,
    max_connections: String,
    alive_check_min: String,
    inactivity_ms: String,
    tcp_destinations: String,
    udp_destinations: String,
    /// Real COM's data port.
    data_port: String,
    /// Real COM's command port.
    command_port: String,
    allow_driver_control: bool,
    /// `always-high` or `goes-low`.
    connection_down_rts: String,
    connection_down_dtr: String,
    /// TCP Server's command port; empty: off.
    server_command_port: String,
    /// A pair master's slave, `host:port`.
    pair_slave: String,
    /// A reverse terminal's inactivity time, minutes.
    inactivity_min: String,
    /// `cr-lf`, `cr` or `lf`.
    map_crlf: String,
    /// The groups allowed on a reverse terminal's console.
    groups: Vec<String>,
    /// The checkboxes for `groups` (see [`offer_groups`]).
    group_boxes: Vec<GroupBox>,
}

/// One group a reverse terminal port may admit.
struct GroupBox {
    name: String,
    checked: bool,
    /// Named by the port but not an existing group (only known when the
    /// visitor may list the groups).
    unknown: bool,
}

/// The choices for a reverse terminal's "Map keys <CR-LF>".
const MAP_CRLF: [(&str, &str); 3] = [("cr-lf", "CR-LF"), ("cr", "CR"), ("lf", "LF")];

fn map_crlf(map: MapCrLf) -> String {
    match map {
        MapCrLf::CrLf => "cr-lf",
        MapCrLf::Cr => "cr",
        MapCrLf::Lf => "lf",
    }
    .to_owned()
}

/// The choices for a line's level when the connection goes down.
const LINE_ON_DOWN: [(&str, &str); 2] = [("always-high", "Always high"), ("goes-low", "Goes low")];

fn line_on_down(level: LineOnDown) -> String {
    match level {
        LineOnDown::AlwaysHigh => "always-high",
        LineOnDown::GoesLow => "goes-low",
    }
    .to_owned()
}

/// An address as written in `host:port`: IPv6 in brackets.
fn host_text(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn tcp_lines(d: &[TcpDestination]) -> String {
    d.iter()
        .map(|d| format!("{}:{}", host_text(&d.host), d.port))
        .collect::<Vec<_>>()
        .join("\n")
}

fn udp_lines(d: &[UdpRange]) -> String {
    let ip = |a: IpAddr| host_text(&a.to_string());
    d.iter()
        .map(|r| {
            if r.begin == r.end {
                format!("{}:{}", ip(r.begin), r.port)
            } else {
                format!("{}-{}:{}", ip(r.begin), ip(r.end), r.port)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl ModeView {
    /// The port's current mode, with the defaults of the fields it lacks
    /// (what they become when another mode is chosen).
    fn of(p: &PortConfig) -> ModeView {
        let (data_port, command_port) = default_realcom_ports(p.number);
        let mut v = ModeView {
            number: p.number,
            alias: p.alias.clone(),
            device: p.device.to_string(),
            mode: p.mode.name().to_owned(),
            local_port: default_data_port(p.number).to_string(),
            max_connections: "1".into(),
            alive_check_min: "7".into(),
            inactivity_ms: "0".into(),
            tcp_destinations: String::new(),
            udp_destinations: String::new(),
            data_port: data_port.to_string(),
            command_port: command_port.to_string(),
            allow_driver_control: false,
            connection_down_rts: line_on_down(LineOnDown::default()),
            connection_down_dtr: line_on_down(LineOnDown::default()),
            server_command_port: String::new(),
            pair_slave: String::new(),
            inactivity_min: "0".into(),
            map_crlf: map_crlf(MapCrLf::default()),
            // The validator's default when a port names none.
            groups: vec![permission::ADMINISTRATOR.to_owned()],
            group_boxes: Vec::new(),
        };
        match &p.mode {
            OperationMode::Disabled => {}
            OperationMode::TcpServer(m) => {
                v.local_port = m.local_port.to_string();
                v.max_connections = m.max_connections.to_string();
                v.alive_check_min = m.alive_check_min.to_string();
                v.inactivity_ms = m.inactivity_ms.to_string();
                v.server_command_port = m.command_port.map(|p| p.to_string()).unwrap_or_default();
            }
            OperationMode::Rfc2217(m) => {
                v.local_port = m.local_port.to_string();
                v.max_connections = m.max_connections.to_string();
                v.alive_check_min = m.alive_check_min.to_string();
            }
            OperationMode::RealCom(m) => {
                v.data_port = m.data_port.to_string();
                v.command_port = m.command_port.to_string();
                v.max_connections = m.max_connections.to_string();
                v.alive_check_min = m.alive_check_min.to_string();
                v.allow_driver_control = m.allow_driver_control;
                v.connection_down_rts = line_on_down(m.connection_down_rts);
                v.connection_down_dtr = line_on_down(m.connection_down_dtr);
            }
            OperationMode::TcpClient(m) => {
                v.alive_check_min = m.alive_check_min.to_string();
                v.tcp_destinations = tcp_lines(&m.destinations);
            }
            OperationMode::Udp(m) => {
                v.local_port = m.local_port.to_string();
                v.udp_destinations = udp_lines(&m.destinations);
            }
            OperationMode::PairMaster(m) => {
                v.alive_check_min = m.alive_check_min.to_string();
                v.pair_slave = format!("{}:{}", host_text(&m.host), m.port);
            }
            OperationMode::PairSlave(m) => {
                v.local_port = m.local_port.to_string();
                v.alive_check_min = m.alive_check_min.to_string();
            }
            OperationMode::ReverseTelnet(m) | OperationMode::ReverseSsh(m) => {
                v.local_port = m.local_port.to_string();
                v.max_connections = m.max_connections.to_string();
                v.inactivity_min = m.inactivity_min.to_string();
                v.map_crlf = map_crlf(m.map_crlf);
                v.groups.clone_from(&m.groups);
            }
        }
        v
    }
}

#[derive(Template)]
#[template(path = "modes.html")]
struct ModesPage {
    chrome: Chrome,
    ports: Vec<ModeView>,
    modes: [(&'static str, &'static str); 10],
    line_levels: [(&'static str, &'static str); 2],
    crlf_choices: [(&'static str, &'static str); 3],
    max_connections: u16,
    can_change: bool,
}

fn views(config: &Config) -> Vec<ModeView> {
    config.ports.iter().map(ModeView::of).collect()
}

/// The groups a reverse terminal may admit, and whether that is every
/// group. The service lists groups only to `accounts.view`; anyone else
/// who may change a port (an Operator) is offered the built-in groups and
/// its own.
async fn group_names(state: &AppState, v: &Visitor) -> Result<(Vec<String>, bool), PageError> {
    match state.service.groups(&v.caller).await {
        Ok(groups) => Ok((groups.into_iter().map(|g| g.name).collect(), true)),
        Err(ServiceError::Forbidden { .. }) => {
            let mut names = vec![
                permission::ADMINISTRATOR.to_owned(),
                permission::OPERATOR.to_owned(),
            ];
            if let Some(p) = &v.caller.principal
                && !names.iter().any(|n| n.eq_ignore_ascii_case(&p.group))
            {
                names.push(p.group.clone());
            }
            Ok((names, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Each port's group checkboxes: the groups offered, then those the port
/// names that are not among them (so that saving keeps them).
fn offer_groups(ports: &mut [ModeView], (available, every): (&[String], bool)) {
    for p in ports {
        let ticked = |name: &str| p.groups.iter().any(|g| g.eq_ignore_ascii_case(name));
        let mut boxes: Vec<GroupBox> = available
            .iter()
            .map(|name| GroupBox {
                checked: ticked(name),
                name: name.clone(),
                unknown: false,
            })
            .collect();
        for g in &p.groups {
            if !available.iter().any(|a| a.eq_ignore_ascii_case(g)) {
                boxes.push(GroupBox {
                    name: g.clone(),
                    checked: true,
                    unknown: every,
                });
            }
        }
        p.group_boxes = boxes;
    }
}

/// Every port's form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SerialView)?;
    let mut ports = views(&state.service.config());
    let (groups, every) = group_names(&state, &v).await?;
    offer_groups(&mut ports, (&groups, every));
    Ok(render(&ModesPage {
        ports,
        modes: MODES,
        line_levels: LINE_ON_DOWN,
        crlf_choices: MAP_CRLF,
        max_connections: MAX_CONNECTIONS,
        can_change: v.caller.may(Permission::SerialChange),
        chrome: Chrome::new(&v, "/serial/modes"),
    }))
}

/// Form fields (each mode uses its own). A reverse terminal's `groups`
/// are one checkbox each under the same name — repeated keys, hence read
/// from pairs rather than deserialised.
#[derive(Default)]
pub struct ModeForm {
    csrf: String,
    mode: String,
    local_port: String,
    max_connections: String,
    alive_check_min: String,
    inactivity_ms: String,
    tcp_destinations: String,
    udp_destinations: String,
    data_port: String,
    command_port: String,
    /// A checkbox: present when ticked.
    allow_driver_control: Option<String>,
    connection_down_rts: String,
    connection_down_dtr: String,
    server_command_port: String,
    pair_slave: String,
    inactivity_min: String,
    map_crlf: String,
    /// The ticked group checkboxes.
    groups: Vec<String>,
}

impl ModeForm {
    fn of(pairs: Vec<(String, String)>) -> ModeForm {
        let mut f = ModeForm::default();
        for (k, v) in pairs {
            let field = match k.as_str() {
                "groups" => {
                    f.groups.push(v);
                    continue;
                }
                "allow_driver_control" => {
                    f.allow_driver_control = Some(v);
                    continue;
                }
                "csrf" => &mut f.csrf,
                "mode" => &mut f.mode,
                "local_port" => &mut f.local_port,
                "max_connections" => &mut f.max_connections,
                "alive_check_min" => &mut f.alive_check_min,
                "inactivity_ms" => &mut f.inactivity_ms,
                "tcp_destinations" => &mut f.tcp_destinations,
                "udp_destinations" => &mut f.udp_destinations,
                "data_port" => &mut f.data_port,
                "command_port" => &mut f.command_port,
                "connection_down_rts" => &mut f.connection_down_rts,
                "connection_down_dtr" => &mut f.connection_down_dtr,
                "server_command_port" => &mut f.server_command_port,
                "pair_slave" => &mut f.pair_slave,
                "inactivity_min" => &mut f.inactivity_min,
                "map_crlf" => &mut f.map_crlf,
                _ => continue,
            };
            *field = v;
        }
        f
    }
}

/// `host:port`, `[v6]:port`, or a bare host (the port then missing, for
/// the validator to name).
fn split_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.rsplit_once("]:") {
            Some((h, p)) => (h, Some(p)),
            None => (rest.trim_end_matches(']'), None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        // A bare IPv6 address: no port.
        _ => (s, None),
    }
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// TCP Client destinations from `host:port` lines; a destination that is
/// still there keeps its designated local port.
fn tcp_destinations(text: &str, current: Option<&Value>) -> Value {
    let old: Vec<&Value> = current
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let list: Vec<Value> = lines(text)
        .map(|line| {
            let (host, port) = split_port(line);
            let mut d = Map::new();
            d.insert("host".into(), json!(host));
            if let Some(p) = port {
                d.insert("port".into(), number_or_text(p));
            }
            if let Some(same) = old
                .iter()
                .find(|o| o.get("host") == d.get("host") && o.get("port") == d.get("port"))
                && let Some(lp) = same.get("local_port").filter(|v| !v.is_null())
            {
                d.insert("local_port".into(), lp.clone());
            }
            Value::Object(d)
        })
        .collect();
    json!(list)
}

/// UDP destinations from `begin[-end]:port` lines (IPv6 in brackets); a
/// line without a port uses the port's default.
fn udp_destinations(text: &str) -> Value {
    let bare = |a: &str| a.trim().trim_matches(['[', ']']).to_owned();
    let list: Vec<Value> = lines(text)
        .map(|line| {
            let (range, port) = split_port(line);
            let (begin, end) = match range.split_once('-') {
                Some((b, e)) => (bare(b), Some(bare(e))),
                None => (bare(range), None),
            };
            let mut d = Map::new();
            d.insert("begin".into(), json!(begin));
            if let Some(e) = end {
                d.insert("end".into(), json!(e));
            }
            if let Some(p) = port {
                d.insert("port".into(), number_or_text(p));
            }
            Value::Object(d)
        })
        .collect();
    json!(list)
}

/// The new `mode` object: what the current one has that the chosen mode
/// keeps, then the form's fields.
fn new_mode(form: &ModeForm, current: &Map<String, Value>) -> Value {
    let chosen = form.mode.as_str();
    let same = current.get("type").and_then(Value::as_str) == Some(chosen);
    let mut m = Map::new();
    m.insert("type".into(), json!(chosen));
    for key in fields_of(chosen) {
        if (same || SHARED.contains(key))
            && let Some(v) = current.get(*key)
        {
            m.insert((*key).into(), v.clone());
        }
    }
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match chosen {
        "real-com" => {
            put("data_port", number_or_text(&form.data_port));
            put("command_port", number_or_text(&form.command_port));
            put("max_connections", number_or_text(&form.max_connections));
            put("alive_check_min", number_or_text(&form.alive_check_min));
            put(
                "allow_driver_control",
                json!(form.allow_driver_control.is_some()),
            );
            put(
                "connection_down_rts",
                json!(form.connection_down_rts.trim()),
            );
            put(
                "connection_down_dtr",
                json!(form.connection_down_dtr.trim()),
            );
        }
        "tcp-server" | "rfc2217" => {
            put("local_port", number_or_text(&form.local_port));
            put("max_connections", number_or_text(&form.max_connections));
            put("alive_check_min", number_or_text(&form.alive_check_min));
            if chosen == "tcp-server" {
                put("inactivity_ms", number_or_text(&form.inactivity_ms));
                // Empty: off, which the document says by leaving it out.
                match optional_number(&form.server_command_port) {
                    Value::Null => {
                        m.remove("command_port");
                    }
                    port => put("command_port", port),
                }
            }
        }
        "tcp-client" => {
            let old = if same {
                current.get("destinations")
            } else {
                None
            };
            put(
                "destinations",
                tcp_destinations(&form.tcp_destinations, old),
            );
            put("alive_check_min", number_or_text(&form.alive_check_min));
        }
        "udp" => {
            put("local_port", number_or_text(&form.local_port));
            put("destinations", udp_destinations(&form.udp_destinations));
        }
        "pair-master" => {
            let (host, port) = split_port(form.pair_slave.trim());
            put("host", json!(host));
            put("alive_check_min", number_or_text(&form.alive_check_min));
            // Without a port the slave's default (4000 + port number).
            match port {
                Some(p) => put("port", number_or_text(p)),
                None => {
                    m.remove("port");
                }
            }
        }
        "pair-slave" => {
            put("local_port", number_or_text(&form.local_port));
            put("alive_check_min", number_or_text(&form.alive_check_min));
        }
        "reverse-telnet" | "reverse-ssh" => {
            put("local_port", number_or_text(&form.local_port));
            put("max_connections", number_or_text(&form.max_connections));
            put("inactivity_min", number_or_text(&form.inactivity_min));
            put("map_crlf", json!(form.map_crlf.trim()));
            // None ticked: an empty list, which the validator names.
            put("groups", json!(form.groups));
        }
        // "disabled" has no field; an unknown type is named by validation.
        _ => {}
    }
    Value::Object(m)
}

/// Save one port's mode (the port restarts in it).
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(number): Path<u16>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = ModeForm::of(pairs);
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SerialChange)?;
    let config = state.service.config();
    let index = super::form::port_index(&config, number)?;
    let mut edit = ConfigEdit::of(&config);
    let pointer = format!("/ports/{index}/mode");
    let current = edit
        .get_mut(&pointer)
        .map(|m| m.clone())
        .unwrap_or_default();
    edit.set(&pointer, new_mode(&form, &current));
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/serial/modes");
    let status = chrome.outcome(result, |c| {
        change_notice(c, &format!("Port {number} restarted in its new mode."))
    })?;
    let mut ports = views(&state.service.config());
    if status != StatusCode::OK
        && let Some(p) = ports.iter_mut().find(|p| p.number == number)
    {
        // The refused values stay in the form for correction.
        p.mode = form.mode;
        p.local_port = form.local_port;
        p.max_connections = form.max_connections;
        p.alive_check_min = form.alive_check_min;
        p.inactivity_ms = form.inactivity_ms;
        p.tcp_destinations = form.tcp_destinations;
        p.udp_destinations = form.udp_destinations;
        p.data_port = form.data_port;
        p.command_port = form.command_port;
        p.allow_driver_control = form.allow_driver_control.is_some();
        p.connection_down_rts = form.connection_down_rts;
        p.connection_down_dtr = form.connection_down_dtr;
        p.server_command_port = form.server_command_port;
        p.pair_slave = form.pair_slave;
        p.inactivity_min = form.inactivity_min;
        p.map_crlf = form.map_crlf;
        p.groups = form.groups;
    }
    let (groups, every) = group_names(&state, &v).await?;
    offer_groups(&mut ports, (&groups, every));
    let page = ModesPage {
        ports,
        modes: MODES,
        line_levels: LINE_ON_DOWN,
        crlf_choices: MAP_CRLF,
        max_connections: MAX_CONNECTIONS,
        can_change: true,
        chrome,
    };
    Ok((status, render(&page)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(mode: &str) -> ModeForm {
        ModeForm {
            csrf: String::new(),
            mode: mode.into(),
            local_port: "4010".into(),
            max_connections: "2".into(),
            alive_check_min: "3".into(),
            inactivity_ms: "500".into(),
            tcp_destinations: "[::1]:4001\n192.0.2.7:502\nhost.example".into(),
            udp_destinations: "10.0.0.1-10.0.0.5:4001\n[fe80::1]:9\n10.0.0.9".into(),
            data_port: "950".into(),
            command_port: "966".into(),
            allow_driver_control: Some("on".into()),
            connection_down_rts: "goes-low".into(),
            connection_down_dtr: "always-high".into(),
            server_command_port: String::new(),
            pair_slave: "[fe80::7]:4001".into(),
            inactivity_min: "5".into(),
            map_crlf: "cr".into(),
            groups: vec!["Operator".into(), "consoles".into()],
        }
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn destinations_are_read_from_host_port_lines() {
        assert_eq!(
            tcp_destinations(&form("tcp-client").tcp_destinations, None),
            json!([
                {"host": "::1", "port": 4001},
                {"host": "192.0.2.7", "port": 502},
                {"host": "host.example"},
            ])
        );
        assert_eq!(
            udp_destinations(&form("udp").udp_destinations),
            json!([
                {"begin": "10.0.0.1", "end": "10.0.0.5", "port": 4001},
                {"begin": "fe80::1", "port": 9},
                {"begin": "10.0.0.9"},
            ])
        );
    }

    #[test]
    fn switching_mode_keeps_shared_fields_and_drops_the_others() {
        let current = object(json!({
            "type": "tcp-server", "bind": ["127.0.0.1"], "local_port": 4001,
            "max_connections": 1, "alive_check_min": 7, "inactivity_ms": 100,
        }));
        let udp = new_mode(&form("udp"), &current);
        assert_eq!(
            udp,
            json!({
                "type": "udp", "bind": ["127.0.0.1"], "local_port": 4010,
                "destinations": udp_destinations(&form("udp").udp_destinations),
            })
        );
        assert_eq!(
            new_mode(&form("disabled"), &current),
            json!({"type": "disabled"})
        );
    }

    #[test]
    fn the_same_mode_keeps_fields_the_page_does_not_show() {
        let current = object(json!({
            "type": "tcp-client", "connect_on": "any-character", "disconnect_on": "inactivity",
            "inactivity_ms": 900, "reconnect_min_ms": 50, "reconnect_max_ms": 5000,
            "alive_check_min": 7,
            "destinations": [{"host": "192.0.2.7", "port": 502, "local_port": 5555}],
        }));
        let m = new_mode(&form("tcp-client"), &current);
        assert_eq!(m["connect_on"], "any-character");
        assert_eq!(m["reconnect_min_ms"], 50);
        assert_eq!(m["inactivity_ms"], 900);
        assert_eq!(m["alive_check_min"], 3);
        assert_eq!(
            m["destinations"][1],
            json!({"host": "192.0.2.7", "port": 502, "local_port": 5555})
        );
    }

    #[test]
    fn real_com_takes_the_shared_fields_and_its_own_from_the_form() {
        let current = object(json!({
            "type": "tcp-server", "bind": ["127.0.0.1"], "local_port": 4001,
            "max_connections": 1, "alive_check_min": 7, "inactivity_ms": 100,
            "command_port": 966,
        }));
        assert_eq!(
            new_mode(&form("real-com"), &current),
            json!({
                "type": "real-com", "bind": ["127.0.0.1"], "data_port": 950,
                "command_port": 966, "max_connections": 2, "alive_check_min": 3,
                "allow_driver_control": true, "connection_down_rts": "goes-low",
                "connection_down_dtr": "always-high",
            })
        );
        let mut back = form("tcp-server");
        back.allow_driver_control = None;
        let from_real_com = object(new_mode(&form("real-com"), &current));
        assert_eq!(
            new_mode(&back, &from_real_com),
            json!({
                "type": "tcp-server", "bind": ["127.0.0.1"], "local_port": 4010,
                "max_connections": 2, "alive_check_min": 3, "inactivity_ms": 500,
            }),
            "Real COM's command port is not a TCP Server's"
        );
    }

    #[test]
    fn a_tcp_servers_command_port_is_off_when_left_empty() {
        let current = object(json!({
            "type": "tcp-server", "local_port": 4001, "command_port": 966,
        }));
        let mut f = form("tcp-server");
        assert!(new_mode(&f, &current).get("command_port").is_none());
        f.server_command_port = " 4966 ".into();
        assert_eq!(new_mode(&f, &current)["command_port"], 4966);
        f.server_command_port = "soon".into();
        assert_eq!(
            new_mode(&f, &current)["command_port"],
            "soon",
            "left for the validator to name"
        );
    }

    #[test]
    fn real_com_fields_show_the_nport_defaults_until_chosen() {
        let config = Config::from_value(&json!({"ports": [
            {"number": 1, "device": "sim:echo"},
            {"number": 17, "device": "sim:echo", "mode": {"type": "real-com",
                "data_port": 0, "command_port": 0, "connection_down_dtr": "goes-low"}},
        ]}))
        .expect("a valid configuration");
        let v = views(&config);
        assert_eq!(
            (v[0].data_port.as_str(), v[0].command_port.as_str()),
            ("950", "966")
        );
        assert_eq!(v[0].server_command_port, "");
        assert_eq!(v[1].mode, "real-com");
        assert_eq!(
            (v[1].data_port.as_str(), v[1].command_port.as_str()),
            ("0", "0")
        );
        assert_eq!(
            (
                v[1].connection_down_rts.as_str(),
                v[1].connection_down_dtr.as_str()
            ),
            ("always-high", "goes-low")
        );
        assert_eq!(v[1].local_port, "4017", "the TCP Server default if chosen");
    }

    #[test]
    fn a_pair_master_names_its_slave_as_host_and_port() {
        let current = object(json!({
            "type": "pair-master", "host": "192.0.2.1", "port": 4002,
            "alive_check_min": 7, "reconnect_min_ms": 50, "reconnect_max_ms": 5000,
        }));
        let mut f = form("pair-master");
        assert_eq!(
            new_mode(&f, &current),
            json!({
                "type": "pair-master", "host": "fe80::7", "port": 4001, "alive_check_min": 3,
                "reconnect_min_ms": 50, "reconnect_max_ms": 5000,
            })
        );
        f.pair_slave = "slave.example".into();
        let m = new_mode(&f, &current);
        assert_eq!(m["host"], "slave.example");
        assert!(m.get("port").is_none(), "the default port: {m}");
        let slave = new_mode(&form("pair-slave"), &current);
        assert_eq!(
            slave,
            json!({"type": "pair-slave", "local_port": 4010, "alive_check_min": 3})
        );
    }

    #[test]
    fn repeated_group_checkboxes_are_all_read() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let f = ModeForm::of(vec![
            pair("csrf", "t"),
            pair("mode", "reverse-ssh"),
            pair("groups", "Administrator"),
            pair("map_crlf", "lf"),
            pair("groups", "consoles"),
            pair("unknown", "ignored"),
        ]);
        assert_eq!(
            (f.csrf.as_str(), f.mode.as_str(), f.map_crlf.as_str()),
            ("t", "reverse-ssh", "lf")
        );
        assert_eq!(f.groups, ["Administrator", "consoles"]);
        assert!(f.allow_driver_control.is_none());
    }

    #[test]
    fn a_reverse_terminal_carries_the_shared_fields_and_takes_its_own() {
        let current = object(json!({
            "type": "tcp-server", "bind": ["127.0.0.1"], "local_port": 4001,
            "max_connections": 1, "alive_check_min": 7, "inactivity_ms": 100,
        }));
        let ssh = new_mode(&form("reverse-ssh"), &current);
        assert_eq!(
            ssh,
            json!({
                "type": "reverse-ssh", "bind": ["127.0.0.1"], "local_port": 4010,
                "max_connections": 2, "inactivity_min": 5, "map_crlf": "cr",
                "groups": ["Operator", "consoles"],
            })
        );
        Config::from_value(&json!({"ports": [
            {"number": 1, "device": "sim:echo", "mode": ssh.clone()},
        ]}))
        .expect("what the page builds is valid");
        // To Telnet and back to a TCP Server: the shared fields go along,
        // the console's own do not.
        let telnet = new_mode(&form("reverse-telnet"), &object(ssh));
        assert_eq!(telnet["type"], "reverse-telnet");
        assert_eq!(telnet["bind"], json!(["127.0.0.1"]));
        let server = new_mode(&form("tcp-server"), &object(telnet));
        assert!(
            server.get("groups").is_none() && server.get("map_crlf").is_none(),
            "{server}"
        );
        let mut none = form("reverse-telnet");
        none.groups.clear();
        assert_eq!(
            new_mode(&none, &current)["groups"],
            json!([]),
            "left for the validator to name"
        );
    }

    #[test]
    fn group_boxes_keep_the_ports_groups_and_mark_unknown_ones() {
        let config = Config::from_value(&json!({"ports": [
            {"number": 1, "device": "sim:echo"},
            {"number": 2, "device": "sim:echo", "mode": {"type": "reverse-telnet",
                "inactivity_min": 3, "map_crlf": "lf", "groups": ["operator", "gone"]}},
        ]}))
        .expect("a valid configuration");
        let mut v = views(&config);
        assert_eq!(
            (v[1].inactivity_min.as_str(), v[1].map_crlf.as_str()),
            ("3", "lf")
        );
        let available = ["Administrator".to_owned(), "Operator".to_owned()];
        offer_groups(&mut v, (&available, true));
        let boxes = |p: &ModeView| {
            p.group_boxes
                .iter()
                .map(|b| (b.name.clone(), b.checked, b.unknown))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            boxes(&v[0]),
            [
                ("Administrator".to_owned(), true, false),
                ("Operator".to_owned(), false, false)
            ],
            "the default when chosen: Administrators only"
        );
        assert_eq!(
            boxes(&v[1]),
            [
                ("Administrator".to_owned(), false, false),
                ("Operator".to_owned(), true, false),
                ("gone".to_owned(), true, true),
            ]
        );
        offer_groups(&mut v, (&available, false));
        assert!(
            !v[1].group_boxes[2].unknown,
            "without the whole list, nothing is called unknown"
        );
    }
}
