//! `ttyward demo`: the README's first command. The daemon itself (`run`)
//! on a local data directory (`./ttyward-demo` unless `--data-dir` says
//! otherwise), with simulated devices on five ports in five modes bound to
//! loopback, and one command per port that a newcomer can paste into
//! another terminal.
//!
//! There is no default password: at its first start the demo creates the
//! Administrator `admin` with a random password and prints it once.

use serde_json::json;
use ttyward_core::config::Config;
use ttyward_core::service::{Caller, Service};

use crate::serve::Failure;

/// The demo's Administrator.
const DEMO_ADMIN: &str = "admin";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Anything but loopback exposes unauthenticated
    /// simulated devices to the network.
    #[arg(long, default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Port N listens on BASE + N.
    #[arg(long, default_value_t = 4000)]
    base_port: u16,
    /// The web console's and REST API's HTTPS port (0: any free port).
    #[arg(long, default_value_t = 4443)]
    web_port: u16,
}

pub async fn run(service: Service, args: Args) -> Result<(), Failure> {
    let ip = args.listen.to_string();
    let port = |n: u16| args.base_port.saturating_add(n);
    let doc = json!({ "ports": [
        { "number": 1, "alias": "modbus meter", "device": "sim:modbus",
          "serial": { "baud": 19200, "parity": "even", "flow": "none" },
          "packing": { "force_transmit_ms": 5 },
          "mode": { "type": "tcp-server", "bind": [ip], "local_port": port(1), "max_connections": 4 } },
        { "number": 2, "alias": "echo", "device": "sim:echo", "serial": { "flow": "none" },
          "mode": { "type": "rfc2217", "bind": [ip], "local_port": port(2) } },
        { "number": 3, "alias": "console", "device": "sim:console", "serial": { "flow": "none" },
          "mode": { "type": "tcp-server", "bind": [ip], "local_port": port(3), "max_connections": 2 } },
        { "number": 4, "alias": "udp echo", "device": "sim:echo", "serial": { "flow": "none" },
          "packing": { "delimiter1": "0a" },
          "mode": { "type": "udp", "bind": [ip], "local_port": port(4),
                    "destinations": [{ "begin": ip, "port": port(104) }] } },
        { "number": 5, "alias": "modbus realcom", "device": "sim:modbus",
          "serial": { "baud": 9600, "flow": "none" },
          "mode": { "type": "real-com", "bind": [ip], "data_port": port(5), "command_port": port(21) } },
    ]});
    let ports = Config::from_value(&doc)?.ports;
    let admin_password = ensure_admin(&service).await?;
    // The demo's ports replace whatever ports the directory had; its
    // security settings (changed with `config import`) stay.
    let mut config = (*service.config()).clone();
    config.ports = ports;
    config.services.web = ttyward_core::services::WebService {
        enabled: true,
        bind: vec![args.listen],
        https_port: args.web_port,
        http_redirect_port: None,
    };
    service
        .update_config(&Caller::local(), config, true)
        .await
        .map_err(|e| Failure::Runtime(e.into()))?;
    let dir = service.dir().display().to_string();
    let host = if args.listen.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.clone()
    };
    crate::daemon::serve(service, |_| {
        if !args.listen.is_loopback() {
            tracing::warn!("demo listens on {ip}: the simulated devices are reachable without a password");
        }
        match &admin_password {
            Some(pw) => println!(
                "\nData directory {dir}: Administrator '{DEMO_ADMIN}' created with password {pw}\n\
                 (shown once; change it with: ttyward --data-dir {dir} admin passwd {DEMO_ADMIN})"
            ),
            None => println!("\nData directory {dir} (its accounts and event log are kept between runs):\n\
                 \x20 ttyward --data-dir {dir} events      the event log\n\
                 \x20 ttyward --data-dir {dir} admin list  the accounts"),
        }
        if args.web_port != 0 {
            println!(
                "\nWeb console: https://{host}:{wp}/   (log in as {DEMO_ADMIN}; the certificate is self-signed: {dir}/certs/system.crt)\n\
                 REST API:    https://{host}:{wp}/api/v1/openapi.json",
                wp = args.web_port
            );
        }
        println!(
            "\nttyward demo is running. Try these in another terminal (Ctrl-C here stops it):\n\n\
             port 1  Modbus RTU slave, unit 1, 19200 8E1   TCP server  {host}:{p1}\n\
             \x20 socat pty,link=/tmp/ttyV1,raw,echo=0 tcp:{host}:{p1} &\n\
             \x20 mbpoll -m rtu -b 19200 -P even -a 1 -r 1 -c 5 -1 /tmp/ttyV1\n\
             \x20 or: python3 -c \"import socket; s=socket.create_connection(('{ip}',{p1})); s.send(bytes.fromhex('01030000000ac5cd')); print(s.recv(64).hex())\"\n\n\
             port 2  echo device                           RFC 2217    {host}:{p2}\n\
             \x20 python3 -c \"import serial; s=serial.serial_for_url('rfc2217://{host}:{p2}', baudrate=9600, timeout=1); s.write(b'hello'); print(s.read(5))\"\n\n\
             port 3  line console (type help)              TCP server  {host}:{p3}\n\
             \x20 socat -,rawer,escape=0x1d tcp:{host}:{p3}   (Ctrl-] quits; or: nc {ip} {p3})\n\n\
             port 4  echo device, frames end at LF         UDP         {host}:{p4} -> {host}:{p104}\n\
             \x20 echo hello | socat -t1 - udp:{host}:{p4},bind={ip}:{p104}\n\n\
             port 5  Modbus RTU slave, unit 1              Real COM    {host}:{p5} (commands {host}:{p21})\n\
             \x20 ttyward attach {host}:{p5} --mode realcom --link /tmp/ttyNP0 &   (a local serial port; the program sets the speed)\n\
             \x20 mbpoll -m rtu -b 19200 -P even -a 1 -r 1 -c 5 -1 /tmp/ttyNP0\n",
            p1 = port(1),
            p2 = port(2),
            p3 = port(3),
            p4 = port(4),
            p104 = port(104),
            p5 = port(5),
            p21 = port(21),
        );
    })
    .await
}

/// Create the demo's Administrator on a fresh directory; returns its
/// password, or `None` when the directory already has an Administrator.
async fn ensure_admin(service: &Service) -> Result<Option<String>, Failure> {
    if service
        .has_administrator()
        .await
        .map_err(|e| Failure::Runtime(e.into()))?
    {
        return Ok(None);
    }
    let password = random_password().map_err(|e| Failure::Runtime(e.into()))?;
    service
        .create_first_admin(&Caller::local(), DEMO_ADMIN, &password, None)
        .await
        .map_err(|e| Failure::Runtime(e.into()))?;
    Ok(Some(password))
}

/// 20 characters from a 32-letter alphabet without look-alikes: 100 bits.
fn random_password() -> std::io::Result<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789Z";
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    Ok(format!(
        "{}-{}-{}-{}",
        &chars[..5],
        &chars[5..10],
        &chars[10..15],
        &chars[15..]
    ))
}
