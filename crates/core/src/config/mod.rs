//! Typed configuration of the data plane.
//!
//! Two stages, as in ripgrep's `lowargs`/`hiargs`: a document (TOML from a
//! file, JSON from the API or the store) is first read into a generic
//! `serde_json::Value`, then [`Config::from_value`] walks it once, checks
//! every field and builds the typed model below, collecting *all* problems
//! with their field paths. The typed model serialises back to the same shape
//! ([`Config::to_value`]), which is what the daemon persists.
//!
//! Defaults are the NPort 6000's (`spec/nport-operation-modes.md`): 115200
//! 8N1 with RTS/CTS flow control, TCP port 4000 + port number, max connection
//! 1, TCP alive check 7 minutes, inactivity off, packing off.
//!
//! Deliberate deviation from the NPort: "ignore jammed IP" is not a switch.
//! A slow session never stalls the other sessions or the device; it is
//! dropped when it has not taken data for `sessions.jam_timeout_ms` or its
//! queue exceeds `sessions.queue_bytes` (see the engine's `outbox` module).

mod error;
mod validate;
pub(crate) mod walk;

use std::net::IpAddr;

use serde::Serialize;
use ttyward_serial::{DeviceSpec, SerialSettings};

pub use error::{ConfigError, FieldError};

/// Highest port number ttyward accepts (the largest NPort has 32 ports; a
/// Linux host can have more adapters).
pub const MAX_PORTS: u16 = 256;
/// NPort 6000 "Max connection" range is 1–8; more may be configured.
pub const MAX_CONNECTIONS: u16 = 64;
/// TCP client mode: at most four destinations, as on the NPort.
pub const MAX_TCP_DESTINATIONS: usize = 4;
/// UDP mode: at most four destination ranges of at most 64 addresses each.
pub const MAX_UDP_RANGES: usize = 4;
/// Addresses in one UDP destination range.
pub const MAX_UDP_RANGE_LEN: u128 = 64;
/// Longest port alias (NPort: 16 characters).
pub const MAX_ALIAS_CHARS: usize = 16;

/// The whole configuration of a ttyward: what `config export` writes and
/// `config import` reads, and what the daemon keeps in its store.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Config {
    /// Serial ports, in port-number order, numbers unique.
    pub ports: Vec<PortConfig>,
    /// Management services and where they listen (seed §3.1).
    pub services: crate::services::Services,
    /// Access control of both planes (seed §3.4–3.7).
    pub security: Security,
    /// What the event log keeps (seed §3.6).
    pub event_log: crate::event_log::EventLogSettings,
    /// System Settings > General: identity and display time zone.
    pub system: crate::system::SystemSettings,
}

/// The seed's Security and Account Management settings (not the accounts
/// themselves, which are not configuration).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Security {
    /// Account Management > Password Policy.
    pub password_policy: crate::password::PasswordPolicy,
    /// Security > Login Settings: login message, lockout, session control.
    pub login: crate::login::LoginSettings,
    /// Security > Allowlist.
    pub allowlist: crate::access::Allowlist,
    /// DoS defence (seed §3.7).
    pub dos: crate::access::DosSettings,
}

/// One serial port: the device, its line settings and how it is served.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortConfig {
    /// 1-based port number; TCP defaults derive from it.
    pub number: u16,
    /// Free text shown in the UI, at most 16 characters.
    pub alias: String,
    /// Which device backs the port: a tty path or a simulated device.
    #[serde(serialize_with = "serialize_display")]
    pub device: DeviceSpec,
    /// Line settings applied when the device is opened.
    pub serial: SerialSettings,
    /// Serial → network data packing.
    pub packing: Packing,
    /// Slow-session policy.
    pub sessions: SessionPolicy,
    /// How the port is reached from the network.
    pub mode: OperationMode,
    /// Serial Port Settings > Secure Connection: TLS on the data channels.
    pub secure: SecureConnection,
}

/// TLS on a port's data channels (seed §3.2): TCP Server, TCP Client,
/// RFC 2217, Real COM (its data connection, as Moxa's driver does) and pair
/// connection. UDP has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureConnection {
    /// Plain TCP.
    #[default]
    Off,
    /// "Encrypted connection": TLS 1.2/1.3 with the device certificate.
    /// As a client (TCP Client, pair master) the server's certificate is
    /// not checked: encryption against eavesdropping, not authentication.
    Encrypted,
    /// "Encrypted and authenticated connection": mutual TLS. The remote's
    /// certificate must chain to an uploaded CA (and, as a client, name the
    /// host connected to); the device certificate is presented both ways.
    Authenticated,
}

impl SecureConnection {
    /// The name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            SecureConnection::Off => "off",
            SecureConnection::Encrypted => "encrypted",
            SecureConnection::Authenticated => "authenticated",
        }
    }
}

/// NPort data packing (serial → network only): the sans-IO packer's own
/// settings type, serialised under the field names of the document.
pub use ttyward_proto::packing::{DelimiterProcess, PackingConfig as Packing};

/// What happens to a network session that does not keep up with the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionPolicy {
    /// Bytes of device output queued for one session before it is dropped.
    pub queue_bytes: u32,
    /// A session that has not taken any queued data for this long is dropped.
    pub jam_timeout_ms: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            queue_bytes: 1 << 20,
            jam_timeout_ms: 5_000,
        }
    }
}

/// The NPort operation mode of a port, with that mode's parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum OperationMode {
    /// The port is closed and nothing listens.
    Disabled,
    /// Raw TCP; clients connect to us.
    TcpServer(TcpServerMode),
    /// Raw TCP; we connect to up to four destinations.
    TcpClient(TcpClientMode),
    /// Datagrams both ways.
    Udp(UdpMode),
    /// Telnet with the COM-PORT-OPTION (RFC 2217).
    Rfc2217(Rfc2217Mode),
    /// Moxa's Real COM (ASPP): a data and a command connection per host,
    /// for Moxa's host drivers and `ttyward attach`.
    RealCom(RealComMode),
    /// NPort "Pair Connection Master": connects out to a pair slave and
    /// carries data and modem lines to the serial port on the other side.
    PairMaster(PairMasterMode),
    /// NPort "Pair Connection Slave": waits for one pair master.
    PairSlave(PairSlaveMode),
    /// NPort "Reverse Telnet": a port's serial console over telnet, after
    /// a login with a ttyward account. Telnet sends the password in clear:
    /// nothing listens unless a port is set to this mode; prefer
    /// `reverse-ssh`.
    ReverseTelnet(ReverseTerminalMode),
    /// NPort "Reverse SSH": a port's serial console over SSH (password or
    /// public-key login with a ttyward account).
    ReverseSsh(ReverseTerminalMode),
}

/// What a mode listens on, for the modes that listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen<'a> {
    /// UDP (true) or TCP.
    pub udp: bool,
    /// Addresses to bind.
    pub bind: &'a [IpAddr],
    /// Local port; 0 = any free port.
    pub port: u16,
    /// What the socket carries: `data` (every mode), or Real COM's `command`.
    pub channel: &'static str,
    /// The mode's field that holds `port`, for error paths.
    pub field: &'static str,
}

impl OperationMode {
    /// The sockets this mode binds, data first; empty for modes that do not
    /// listen.
    pub fn listens(&self) -> Vec<Listen<'_>> {
        let data = |udp, bind, port, field| Listen {
            udp,
            bind,
            port,
            channel: "data",
            field,
        };
        match self {
            OperationMode::TcpServer(m) => {
                let mut v = vec![data(false, &m.bind, m.local_port, "local_port")];
                if let Some(port) = m.command_port {
                    v.push(Listen {
                        channel: "command",
                        ..data(false, &m.bind, port, "command_port")
                    });
                }
                v
            }
            OperationMode::Rfc2217(m) => vec![data(false, &m.bind, m.local_port, "local_port")],
            OperationMode::Udp(m) => vec![data(true, &m.bind, m.local_port, "local_port")],
            OperationMode::RealCom(m) => vec![
                data(false, &m.bind, m.data_port, "data_port"),
                Listen {
                    channel: "command",
                    ..data(false, &m.bind, m.command_port, "command_port")
                },
            ],
            OperationMode::PairSlave(m) => vec![data(false, &m.bind, m.local_port, "local_port")],
            OperationMode::ReverseTelnet(m) | OperationMode::ReverseSsh(m) => {
                vec![data(false, &m.bind, m.local_port, "local_port")]
            }
            OperationMode::Disabled
            | OperationMode::TcpClient(_)
            | OperationMode::PairMaster(_) => Vec::new(),
        }
    }

    /// The data socket this mode binds; `None` for modes that do not listen.
    pub fn listen(&self) -> Option<Listen<'_>> {
        self.listens().into_iter().next()
    }

    /// The name used in documents (`tcp-server`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            OperationMode::Disabled => "disabled",
            OperationMode::TcpServer(_) => "tcp-server",
            OperationMode::TcpClient(_) => "tcp-client",
            OperationMode::Udp(_) => "udp",
            OperationMode::Rfc2217(_) => "rfc2217",
            OperationMode::RealCom(_) => "real-com",
            OperationMode::PairMaster(_) => "pair-master",
            OperationMode::PairSlave(_) => "pair-slave",
            OperationMode::ReverseTelnet(_) => "reverse-telnet",
            OperationMode::ReverseSsh(_) => "reverse-ssh",
        }
    }
}

/// TCP Server mode (NPort manual 7-8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpServerMode {
    /// Addresses to listen on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Local TCP port; default 4000 + port number; 0 = any free port.
    pub local_port: u16,
    /// Simultaneous clients, 1–64 (NPort: 1–8); default 1.
    pub max_connections: u16,
    /// TCP keep-alive: drop a dead peer after this many minutes; 0 = off.
    pub alive_check_min: u8,
    /// Close a connection idle this long (ms) in both directions; 0 = off.
    pub inactivity_ms: u16,
    /// The NPort's TCP Server command port: the Real COM command set
    /// ("IP-Serial Lib") for the hosts connected to `local_port`. Off
    /// unless set (the NPort's default is 965 + port number; ttyward opens
    /// no control channel nobody asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_port: Option<u16>,
}

/// RFC 2217 mode (NPort manual 7-7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rfc2217Mode {
    /// Addresses to listen on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Local TCP port; default 4000 + port number; 0 = any free port.
    pub local_port: u16,
    /// Simultaneous clients; default 1 (the client controls the line).
    pub max_connections: u16,
    /// TCP keep-alive in minutes; 0 = off.
    pub alive_check_min: u8,
}

/// Real COM mode (NPort manual 7-3; protocol in `spec/realcom-protocol.md`).
///
/// The NPort fixes the two TCP ports; ttyward lets them be set per port,
/// as npreal2's configuration allows on the host side (spec §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealComMode {
    /// Addresses to listen on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Data connection port; default 950 + N − 1 (ports 1–16), 966 + N − 1
    /// (17–32); 0 = any free port.
    pub data_port: u16,
    /// Command connection port; default 966 + N − 1 (1–16), 982 + N − 1
    /// (17–32); 0 = any free port.
    pub command_port: u16,
    /// Hosts at once; default 1 (the driver has full control).
    pub max_connections: u16,
    /// TCP keep-alive in minutes; 0 = off.
    pub alive_check_min: u8,
    /// With more than one connection: apply the hosts' control commands
    /// (the latest wins) instead of only acknowledging them. Default off
    /// (the safer reading of the NPort manuals; `portd` defaults to on).
    pub allow_driver_control: bool,
    /// RTS when the last connection closes.
    pub connection_down_rts: LineOnDown,
    /// DTR when the last connection closes.
    pub connection_down_dtr: LineOnDown,
    /// Alive polling timing on the command channel (spec §4.15). Not part of
    /// the document: Moxa's 40 s / 3 s / 4 misses always; tests shorten it.
    #[serde(skip)]
    pub alive: ttyward_proto::realcom::AliveTiming,
}

/// Level of an output line when the network connection goes down, so a
/// device can sense the link (NPort "Connection goes down").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineOnDown {
    /// The line stays asserted.
    #[default]
    AlwaysHigh,
    /// The line is dropped.
    GoesLow,
}

/// The NPort Real COM default (data, command) ports of a serial port; for
/// ports beyond 32, which no NPort has, 2000 + N and 3000 + N (ttyward's
/// choice, clear of the Moxa ranges).
pub fn default_realcom_ports(number: u16) -> (u16, u16) {
    match number {
        0..=16 => (949 + number, 965 + number),
        17..=32 => (965 + number, 981 + number),
        _ => (
            2000u16.saturating_add(number),
            3000u16.saturating_add(number),
        ),
    }
}

/// TCP Client mode (NPort manual 7-14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpClientMode {
    /// One to four hosts to connect to.
    pub destinations: Vec<TcpDestination>,
    /// When to connect.
    pub connect_on: ConnectOn,
    /// When to disconnect.
    pub disconnect_on: DisconnectOn,
    /// TCP keep-alive in minutes; 0 = off.
    pub alive_check_min: u8,
    /// Idle time (ms) for `disconnect_on = inactivity`; 0 = off.
    pub inactivity_ms: u16,
    /// First reconnect delay after a failed or lost connection (ms).
    pub reconnect_min_ms: u32,
    /// Longest reconnect delay; the delay doubles up to this (ms).
    pub reconnect_max_ms: u32,
}

/// A TCP client destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpDestination {
    /// IP address or host name (at most 253 characters).
    pub host: String,
    /// Destination TCP port.
    pub port: u16,
    /// Designated local (source) port; none = any.
    pub local_port: Option<u16>,
}

/// TCP client: the event that opens the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectOn {
    /// As soon as the port starts, and again whenever a connection is lost.
    #[default]
    Startup,
    /// When the device sends its first byte.
    AnyCharacter,
    /// When DSR goes on.
    DsrOn,
    /// When DCD goes on.
    DcdOn,
}

/// TCP client: the event that closes the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectOn {
    /// Never (the peer or the network may still close it).
    #[default]
    None,
    /// After `inactivity_ms` without data either way.
    Inactivity,
    /// When DSR goes off.
    DsrOff,
    /// When DCD goes off.
    DcdOff,
}

/// Pair Connection Master (NPort manual, "Pair Connection"): serial to
/// serial across the network. The master connects to the slave and keeps
/// reconnecting; data and the modem lines cross both ways, null-modem
/// fashion (our device's CTS/DSR inputs drive the far side's RTS/DTR).
/// Moxa's pair protocol is undocumented: a ttyward pairs with a ttyward
/// (`ttyward_proto::pair`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PairMasterMode {
    /// The slave: IP address or host name (at most 253 characters).
    pub host: String,
    /// The slave's TCP port; default 4000 + port number.
    pub port: u16,
    /// TCP keep-alive in minutes; 0 = off.
    pub alive_check_min: u8,
    /// First reconnect delay after a failed or lost connection (ms).
    pub reconnect_min_ms: u32,
    /// Longest reconnect delay; the delay doubles up to this (ms).
    pub reconnect_max_ms: u32,
}

/// Pair Connection Slave: one master at a time; another is accepted and
/// closed at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PairSlaveMode {
    /// Addresses to listen on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Local TCP port; default 4000 + port number; 0 = any free port.
    pub local_port: u16,
    /// TCP keep-alive in minutes; 0 = off.
    pub alive_check_min: u8,
}

/// Reverse Telnet / Reverse SSH (NPort manual 7-29; spec §4.9): terminal
/// access from the network to the serial console of the device on this
/// port. Every connection logs in with a ttyward account (lockout and the
/// login message apply as on the web console); only members of `groups`
/// reach the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReverseTerminalMode {
    /// Addresses to listen on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Local TCP port; default 4000 + port number; 0 = any free port.
    pub local_port: u16,
    /// Console sessions at once, 1–64; default 1.
    pub max_connections: u16,
    /// Close a console session after this many minutes without data
    /// either way, 0–99; 0 = never (the NPort's unit is minutes here).
    pub inactivity_min: u8,
    /// What a CR LF typed by the user becomes on the serial line.
    pub map_crlf: MapCrLf,
    /// The account groups allowed on this port's console (names compared
    /// without regard to case). Whether they exist is checked at login,
    /// not here: the configuration does not know the accounts.
    pub groups: Vec<String>,
}

/// Reverse terminal "Map keys <CR-LF>": what a CR LF from the network
/// becomes on the serial side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapCrLf {
    /// Unchanged: CR LF.
    #[default]
    CrLf,
    /// CR only.
    Cr,
    /// LF only.
    Lf,
}

/// Longest list of groups a reverse terminal port names.
pub const MAX_CONSOLE_GROUPS: usize = 16;

/// UDP mode (NPort manual 7-15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UdpMode {
    /// Addresses to receive on; default all IPv4 and IPv6 addresses.
    pub bind: Vec<IpAddr>,
    /// Local listen port; default 4000 + port number; 0 = any free port.
    pub local_port: u16,
    /// Where serial frames are sent: up to four address ranges.
    pub destinations: Vec<UdpRange>,
}

/// A range of destination addresses (at most 64) sharing one UDP port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UdpRange {
    /// First address.
    pub begin: IpAddr,
    /// Last address (same family, not before `begin`).
    pub end: IpAddr,
    /// Destination UDP port.
    pub port: u16,
}

impl UdpRange {
    /// Every address of the range, in order.
    pub fn addresses(&self) -> Vec<IpAddr> {
        match (self.begin, self.end) {
            (IpAddr::V4(b), IpAddr::V4(e)) => (u32::from(b)..=u32::from(e))
                .map(|a| IpAddr::V4(a.into()))
                .collect(),
            (IpAddr::V6(b), IpAddr::V6(e)) => (u128::from(b)..=u128::from(e))
                .map(|a| IpAddr::V6(a.into()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The default listen addresses: every IPv4 and every IPv6 address.
pub fn default_bind() -> Vec<IpAddr> {
    vec![IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])]
}

/// The NPort default TCP/UDP port of a serial port: 4000 + its number.
pub fn default_data_port(number: u16) -> u16 {
    4000u16.saturating_add(number)
}

/// NPort serial defaults: 115200 8N1, RTS/CTS flow control, RS-232.
pub fn nport_serial_defaults() -> SerialSettings {
    SerialSettings {
        flow: ttyward_serial::FlowControl::RtsCts,
        ..SerialSettings::default()
    }
}

impl Config {
    /// Validate a generic document (from TOML or JSON) into the typed model.
    pub fn from_value(value: &serde_json::Value) -> Result<Config, ConfigError> {
        validate::config(value)
    }

    /// Parse and validate a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let value: serde_json::Value =
            toml::from_str(text).map_err(|e| ConfigError::syntax(e.to_string()))?;
        Config::from_value(&value)
    }

    /// The document form of this configuration (what [`Config::from_value`] reads).
    pub fn to_value(&self) -> serde_json::Value {
        // Serialising plain data with derived impls cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The configuration of a device at first use (fresh data directory,
    /// factory reset): one Real COM port per serial device the host has,
    /// as the NPort 6000-G2 ships (seed §3.1: Real COM is the one mode
    /// enabled once an account exists; until then the daemon runs every
    /// port disabled), reached through `services`.
    pub fn first_use(services: crate::services::Services) -> Config {
        let ports: Vec<serde_json::Value> = ttyward_serial::discover::serial_ports()
            .iter()
            .enumerate()
            .map(|(i, path)| {
                serde_json::json!({
                    "number": i + 1,
                    "device": path.display().to_string(),
                    "mode": {"type": "real-com"},
                })
            })
            .collect();
        // Discovered paths and defaults always validate; no port at all is
        // the fallback if they ever did not.
        let ports = Config::from_value(&serde_json::json!({ "ports": ports }))
            .map(|c| c.ports)
            .unwrap_or_default();
        Config {
            ports,
            services,
            ..Config::default()
        }
    }

    /// The port with this number.
    pub fn port(&self, number: u16) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.number == number)
    }
}

fn serialize_display<S: serde::Serializer, T: std::fmt::Display>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[cfg(test)]
mod tests;
