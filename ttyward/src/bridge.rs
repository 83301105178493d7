//! `ttyward bridge`: ports from the command line (or a TOML file), served by
//! the same engine as the daemon. The command line is turned into the same
//! configuration document a file would hold and validated by the same code,
//! so the two cannot drift apart.
//!
//! Bridge mode has no accounts and no allowlist: it binds exactly the
//! addresses given and warns about any that is not loopback.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use ttyward_core::config::Config;

use crate::serve::{self, Failure};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  ttyward bridge /dev/ttyUSB0@0.0.0.0:4001 --baud 9600\n  ttyward bridge sim:echo@127.0.0.1:4002 --mode rfc2217\n  ttyward bridge sim:modbus@127.0.0.1:4003 --mode udp --udp-dest 127.0.0.1:5003\n  ttyward bridge /dev/ttyS0@10.0.0.9:9000 --mode tcp-client\n  ttyward bridge /dev/ttyUSB0@0.0.0.0:950 --mode realcom   (command port 966)\n  ttyward bridge /dev/ttyUSB0@0.0.0.0:4001 --mode pair-slave\n  ttyward bridge /dev/ttyUSB1@10.0.0.9:4001 --mode pair-master   (the slave's address)\n  ttyward bridge --config ports.toml"
)]
pub struct Args {
    /// DEVICE@HOST:PORT, one per port. DEVICE is a path or sim:echo,
    /// sim:modbus, sim:console. For tcp-client HOST:PORT is the destination,
    /// for pair-master the pair slave.
    #[arg(value_name = "DEVICE@HOST:PORT", required_unless_present = "config")]
    ports: Vec<String>,
    /// Read the ports from a TOML file instead (see docs/configuration.md).
    #[arg(long, conflicts_with = "ports")]
    config: Option<PathBuf>,
    /// Operation mode of every port.
    #[arg(long, default_value = "tcp-server", value_parser = ["tcp-server", "rfc2217", "udp", "tcp-client", "realcom", "pair-master", "pair-slave"])]
    mode: String,
    /// Real COM: the command port (default: PORT + 16, as Moxa's 950/966;
    /// only with one port).
    #[arg(long)]
    command_port: Option<u16>,
    /// Real COM with --max-connections above 1: apply every host's control
    /// commands (the latest wins) instead of only acknowledging them.
    #[arg(long)]
    allow_driver_control: bool,
    /// Real COM: UDP port of the discovery responder Moxa's driver polls
    /// (0 = any free port; the responder is skipped if it cannot bind).
    #[arg(long, default_value_t = 4800)]
    dsci_port: u16,
    /// Baud rate (50 to 16000000; custom rates allowed where the driver can).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Data bits: 5, 6, 7 or 8.
    #[arg(long, default_value_t = 8)]
    data_bits: u8,
    /// none, odd, even, mark or space.
    #[arg(long, default_value = "none")]
    parity: String,
    /// 1, 1.5 or 2.
    #[arg(long, default_value = "1")]
    stop_bits: String,
    /// none, rts-cts, xon-xoff or dtr-dsr.
    #[arg(long, default_value = "none")]
    flow: String,
    /// Clients at once per port (tcp-server, rfc2217).
    #[arg(long, default_value_t = 1)]
    max_connections: u16,
    /// Close a TCP server connection idle for this many ms (0 = never).
    #[arg(long, default_value_t = 0)]
    inactivity_ms: u16,
    /// Packing: send every N bytes (0 = off).
    #[arg(long, default_value_t = 0)]
    packing_length: u16,
    /// Packing: delimiter byte in hex, e.g. 0d.
    #[arg(long)]
    delimiter1: Option<String>,
    /// Packing: second delimiter byte in hex (after delimiter1).
    #[arg(long)]
    delimiter2: Option<String>,
    /// Packing: do-nothing, plus-one, plus-two or strip.
    #[arg(long)]
    delimiter_process: Option<String>,
    /// Packing: send after the line was idle this many ms (0 = off).
    #[arg(long, default_value_t = 0)]
    force_transmit_ms: u16,
    /// UDP destination ADDR:PORT or BEGIN-END:PORT (repeatable, up to 4).
    #[arg(long)]
    udp_dest: Vec<String>,
    /// Drop a session that has not taken data for this many ms.
    #[arg(long)]
    jam_timeout_ms: Option<u32>,
    /// Secure Connection: off, encrypted (TLS 1.2/1.3) or authenticated
    /// (mutual TLS: clients need a certificate from --tls-ca).
    #[arg(long, default_value = "off", value_parser = ["off", "encrypted", "authenticated"])]
    secure: String,
    /// PEM certificate (chain) for TLS; default: a new self-signed one,
    /// whose SHA-256 fingerprint is logged.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM file of trusted CA certificates (for --secure authenticated).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Config(format!("cannot read {}: {e}", path.display())))?;
            Config::from_toml(&text)?
        }
        None => Config::from_value(&document(&args)?)?,
    };
    use ttyward_core::config::SecureConnection;
    let secure = config
        .ports
        .iter()
        .any(|p| p.secure != SecureConnection::Off);
    let authenticated = config
        .ports
        .iter()
        .any(|p| p.secure == SecureConnection::Authenticated);
    // Said at start, not as a refusal of every connection later.
    if !secure && (args.tls_cert.is_some() || args.tls_ca.is_some()) {
        return Err(Failure::Config(
            "--tls-cert/--tls-ca have no effect without --secure encrypted or authenticated".into(),
        ));
    }
    if authenticated && args.tls_ca.is_none() {
        return Err(Failure::Config(
            "--secure authenticated needs --tls-ca FILE: the CA certificates clients (and servers of a tcp-client or pair-master port) must chain to".into(),
        ));
    }
    let tls = if secure {
        Some(tls_source(&args, &config)?)
    } else {
        None
    };
    serve::run(&config, tls, |engine| {
        for l in engine.listeners() {
            if !l.addr.ip().is_loopback() {
                tracing::warn!(
                    "port {} listens on {}: reachable from the network, and bridge mode has no accounts or allowlist",
                    l.port,
                    l.addr
                );
            }
        }
    })
    .await
}

/// The configuration document the command line stands for.
fn document(args: &Args) -> Result<Value, Failure> {
    if args.command_port.is_some() && (args.mode != "realcom" || args.ports.len() != 1) {
        return Err(Failure::Config(
            "--command-port needs --mode realcom and exactly one port (with several, each gets PORT + 16)".into(),
        ));
    }
    let mut ports = Vec::new();
    for (i, spec) in args.ports.iter().enumerate() {
        let (device, target) = spec
            .rsplit_once('@')
            .ok_or_else(|| Failure::Config(format!("{spec:?}: expected DEVICE@HOST:PORT")))?;
        let mut mode = Map::new();
        let kind = if args.mode == "realcom" {
            "real-com"
        } else {
            args.mode.as_str()
        };
        mode.insert("type".into(), json!(kind));
        if args.mode == "tcp-client" {
            let (host, port) = split_host_port(target)?;
            mode.insert(
                "destinations".into(),
                json!([{ "host": host, "port": port }]),
            );
        } else if args.mode == "pair-master" {
            let (host, port) = split_host_port(target)?;
            mode.insert("host".into(), json!(host));
            mode.insert("port".into(), json!(port));
        } else {
            let addr = resolve(target)?;
            mode.insert("bind".into(), json!([addr.ip().to_string()]));
            if args.mode == "realcom" {
                // Port 0 (any free port) stays 0 for the command port too.
                let command = args.command_port.unwrap_or(match addr.port() {
                    0 => 0,
                    p => p.checked_add(16).ok_or_else(|| {
                        Failure::Config(format!(
                            "{target:?}: PORT + 16 is beyond 65535; give --command-port"
                        ))
                    })?,
                });
                mode.insert("data_port".into(), json!(addr.port()));
                mode.insert("command_port".into(), json!(command));
            } else {
                mode.insert("local_port".into(), json!(addr.port()));
            }
        }
        match args.mode.as_str() {
            "tcp-server" => {
                mode.insert("max_connections".into(), json!(args.max_connections));
                mode.insert("inactivity_ms".into(), json!(args.inactivity_ms));
            }
            "rfc2217" => {
                mode.insert("max_connections".into(), json!(args.max_connections));
            }
            "realcom" => {
                mode.insert("max_connections".into(), json!(args.max_connections));
                mode.insert(
                    "allow_driver_control".into(),
                    json!(args.allow_driver_control),
                );
            }
            "udp" => {
                let dests: Result<Vec<Value>, Failure> =
                    args.udp_dest.iter().map(|d| udp_range(d)).collect();
                mode.insert("destinations".into(), Value::Array(dests?));
            }
            _ => {}
        }
        let stop_bits: Value = match args.stop_bits.as_str() {
            "1.5" => json!(1.5),
            other => other
                .parse::<u8>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(other)),
        };
        let mut packing = json!({
            "length": args.packing_length,
            "force_transmit_ms": args.force_transmit_ms,
        });
        for (key, value) in [
            ("delimiter1", &args.delimiter1),
            ("delimiter2", &args.delimiter2),
            ("delimiter_process", &args.delimiter_process),
        ] {
            if let Some(v) = value {
                packing[key] = json!(v);
            }
        }
        let mut port = json!({
            "number": i + 1,
            "device": device,
            "serial": {
                "baud": args.baud,
                "data_bits": args.data_bits,
                "parity": args.parity,
                "stop_bits": stop_bits,
                "flow": args.flow,
            },
            "packing": packing,
            "mode": Value::Object(mode),
        });
        if let Some(ms) = args.jam_timeout_ms {
            port["sessions"] = json!({ "jam_timeout_ms": ms });
        }
        port["secure"] = json!(args.secure);
        ports.push(port);
    }
    Ok(json!({
        "ports": ports,
        "services": { "realcom_discovery": { "port": args.dsci_port } },
    }))
}

/// The certificate and trusted CAs of `--secure`: from files, or a new
/// self-signed certificate for the addresses the ports listen on.
fn tls_source(
    args: &Args,
    config: &Config,
) -> Result<Arc<dyn ttyward_engine::tls::TlsSource>, Failure> {
    use ttyward_web::cert::DeviceCert;

    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| Failure::Config(format!("cannot read {}: {e}", p.display())))
    };
    let cert = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => DeviceCert::from_pem(&read(c)?, &read(k)?),
        _ => {
            let addrs: Vec<IpAddr> = config
                .ports
                .iter()
                .flat_map(|p| p.mode.listens())
                .flat_map(|l| l.bind.to_vec())
                .collect();
            DeviceCert::self_signed(&["localhost".to_owned()], &addrs)
        }
    }
    .map_err(|e| Failure::Config(format!("TLS certificate: {e}")))?;
    if args.tls_cert.is_none() {
        tracing::info!(
            "TLS: self-signed certificate, SHA-256 fingerprint {}",
            cert.info().sha256_fingerprint
        );
    }
    let roots = match &args.tls_ca {
        None => None,
        Some(path) => Some(crate::attach::tls::roots(path)?),
    };
    let key = cert
        .certified_key()
        .map_err(|e| Failure::Config(format!("TLS certificate: {e}")))?;
    let tls = ttyward_engine::tls::StaticTls::new(key, roots)
        .map_err(|e| Failure::Config(format!("TLS: {e}")))?;
    Ok(Arc::new(tls))
}

fn split_host_port(target: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::Config(format!("{target:?}: expected HOST:PORT"));
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}

fn resolve(target: &str) -> Result<SocketAddr, Failure> {
    let (host, port) = split_host_port(target)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Failure::Config(format!("{target:?}: cannot resolve {host}")))
}

/// `ADDR:PORT` or `BEGIN-END:PORT` as a UDP destination range.
fn udp_range(text: &str) -> Result<Value, Failure> {
    let (range, port) = split_host_port(text)?;
    let (begin, end) = range.split_once('-').unwrap_or((&range, &range));
    Ok(json!({ "begin": begin, "end": end, "port": port }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ipv6_targets() {
        let (h, p) = split_host_port("[::1]:4001")
            .map_err(|_| ())
            .expect("valid");
        assert_eq!((h.as_str(), p), ("::1", 4001));
    }

    #[test]
    fn udp_range_accepts_single_address_and_range() {
        let v = udp_range("127.0.0.1-127.0.0.3:5000")
            .map_err(|_| ())
            .expect("valid");
        assert_eq!(
            v,
            json!({"begin": "127.0.0.1", "end": "127.0.0.3", "port": 5000})
        );
    }
}
