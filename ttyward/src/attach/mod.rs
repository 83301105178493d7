//! `ttyward attach`: a local virtual serial port bridged to a remote port
//! served by ttyward (or an NPort) in Real COM or RFC 2217 mode.
//!
//! It creates a pseudo-terminal ([`ttyward_serial::host_pty`]), links it at
//! the given path (`/dev/ttyNP0` → `/dev/pts/7`) and connects to the remote
//! port. What a program writes to the link goes to the remote serial line,
//! what the line sends comes back; when the program sets the speed, parity,
//! stop bits or flow control, hangs up with `B0`, flushes or stops its
//! output, the change travels too (Real COM: [`realcom`]; RFC 2217:
//! [`rfc2217`]). That lets mbpoll, minicom, pyserial and any program that
//! only knows serial ports use a remote device.
//!
//! The connection is made again when it breaks, with a backoff from 100 ms
//! doubling to 5 s, and the program's current settings are sent again each
//! time. The pty and the link stay while disconnected; what the program
//! writes meanwhile is dropped (a serial line with nobody listening loses
//! it too) and counted in the log. State changes are printed on stdout, one
//! JSON line each (`{"event":"attach","state":"connected",...}`), so that
//! scripts and tests can wait for them; SIGINT and SIGTERM remove the link
//! and end with exit code 0.
//!
//! It does not run a local server, keep the remote's modem inputs anywhere a
//! program could read them, or pass DTR/RTS toggles and breaks a program
//! makes with ioctls: a pty cannot report them (see
//! [`ttyward_serial::host_pty`] and docs/attach.md).

mod realcom;
mod rfc2217;
pub(crate) mod tls;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use ttyward_serial::host_pty::{Assumptions, HostPty, PtyEvent, PtyWriter};
use ttyward_serial::{DataBits, Parity, SerialSettings};

use crate::serve::{self, Failure};

/// The first wait after a failed or lost connection; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// TCP connect plus TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes queued toward the network or the program before the other side
/// stops being read (backpressure instead of unbounded buffers).
const QUEUE_LIMIT: usize = 64 * 1024;
/// One read from a socket.
const READ_SIZE: usize = 16 * 1024;

/// RFC 2217's usual port (the NPort's TCP port of serial port 1).
const RFC2217_PORT: u16 = 4001;
/// Real COM's data and command ports of serial port 1.
const REALCOM_DATA_PORT: u16 = 950;
const REALCOM_COMMAND_OFFSET: u16 = 16;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  ttyward attach 192.0.2.10 --mode realcom --link /dev/ttyNP0\n  ttyward attach device.example:4001 --mode rfc2217 --link /tmp/ttyNP0 --tls --ca ca.pem\n  mbpoll -m rtu -b 19200 -P even /dev/ttyNP0"
)]
pub struct Args {
    /// HOST or HOST:PORT of the remote port (default port: 4001 for
    /// rfc2217, 950 for realcom, whose command port is then PORT + 16).
    #[arg(value_name = "HOST[:PORT]")]
    remote: String,
    /// The remote port's operation mode.
    #[arg(long, value_parser = ["realcom", "rfc2217"])]
    mode: String,
    /// Where to link the pseudo-terminal, e.g. /dev/ttyNP0 (an existing
    /// symlink is replaced, anything else is refused; removed at exit).
    #[arg(long)]
    link: PathBuf,
    /// Real COM: the command port (default: the data port + 16).
    #[arg(long)]
    command_port: Option<u16>,
    /// TLS (RFC 2217: the connection; Real COM: the data connection, as
    /// Moxa's secure mode).
    #[arg(long)]
    tls: bool,
    /// TLS: the CA certificate(s), PEM, that the server's certificate must
    /// chain to.
    #[arg(long, requires = "tls")]
    ca: Option<PathBuf>,
    /// TLS: client certificate chain, PEM (with --key).
    #[arg(long, requires_all = ["tls", "key"])]
    cert: Option<PathBuf>,
    /// TLS: the client certificate's private key, PEM (with --cert).
    #[arg(long, requires_all = ["tls", "cert"])]
    key: Option<PathBuf>,
    /// TLS without checking the server's certificate (it is still the
    /// one whose key signs the handshake, but anyone's would do).
    #[arg(long, requires = "tls", conflicts_with = "ca")]
    insecure: bool,
    /// Data bits to send: a pty always shows 8 (see docs/attach.md).
    #[arg(long, default_value_t = 8)]
    data_bits: u8,
    /// Parity to send when the program's settings give no hint: a pty
    /// hides "parity on" (none, odd, even, mark, space).
    #[arg(long, default_value = "none")]
    parity: String,
}

/// The remote port's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    RealCom,
    Rfc2217,
}

/// Where to connect.
#[derive(Clone, Debug)]
struct Target {
    mode: Mode,
    host: String,
    /// RFC 2217's port, or Real COM's data port.
    port: u16,
    /// Real COM's command port.
    command_port: u16,
}

impl Target {
    fn from_args(args: &Args) -> Result<Target, Failure> {
        let mode = match args.mode.as_str() {
            "realcom" => Mode::RealCom,
            _ => Mode::Rfc2217,
        };
        let (host, port) = split_remote(&args.remote)?;
        if mode == Mode::Rfc2217 && args.command_port.is_some() {
            return Err(Failure::Config(
                "--command-port is for --mode realcom; RFC 2217 uses one connection".into(),
            ));
        }
        let port = port.unwrap_or(match mode {
            Mode::RealCom => REALCOM_DATA_PORT,
            Mode::Rfc2217 => RFC2217_PORT,
        });
        let command_port = match args.command_port {
            Some(p) => p,
            None if mode == Mode::RealCom => {
                port.checked_add(REALCOM_COMMAND_OFFSET).ok_or_else(|| {
                    Failure::Config(format!(
                        "the data port {port} + 16 is beyond 65535; give --command-port"
                    ))
                })?
            }
            None => 0,
        };
        Ok(Target {
            mode,
            host,
            port,
            command_port,
        })
    }

    fn addr(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr(self.port))
    }
}

/// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address.
fn split_remote(text: &str) -> Result<(String, Option<u16>), Failure> {
    let bad_port = |p: &str| {
        Failure::Config(format!(
            "{text:?}: {p:?} is not a TCP port; use HOST or HOST:PORT with PORT 1 to 65535"
        ))
    };
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(p)),
        Ok(n) => Ok(n),
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| {
            Failure::Config(format!("{text:?}: missing ']' after the IPv6 address"))
        })?;
        match after.strip_prefix(':') {
            Some(p) => (host.to_owned(), Some(parse_port(p)?)),
            None if after.is_empty() => (host.to_owned(), None),
            None => return Err(bad_port(after)),
        }
    } else if text.matches(':').count() == 1 {
        let (host, p) = text.split_once(':').unwrap_or((text, ""));
        (host.to_owned(), Some(parse_port(p)?))
    } else {
        (text.to_owned(), None)
    };
    if host.is_empty() {
        return Err(Failure::Config(format!(
            "{text:?}: no host; use HOST or HOST:PORT"
        )));
    }
    Ok((host, port))
}

fn assumptions(args: &Args) -> Result<Assumptions, Failure> {
    let data_bits = DataBits::try_from(args.data_bits)
        .map_err(|e| Failure::Config(format!("--data-bits: {e}")))?;
    let parity = args
        .parity
        .parse::<Parity>()
        .map_err(|e| Failure::Config(format!("--parity: {e}")))?;
    Ok(Assumptions { data_bits, parity })
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let target = Target::from_args(&args)?;
    let assume = assumptions(&args)?;
    let tls = tls::Client::from_args(&args, &target.host)?;
    let stop: Stop = Box::pin(serve::shutdown_signal().map_err(|e| Failure::Runtime(e.into()))?);
    let pty = HostPty::open(assume).map_err(|e| {
        Failure::Runtime(anyhow::anyhow!(
            "cannot create a pseudo-terminal: {e}; is /dev/ptmx there and devpts mounted?"
        ))
    })?;
    let link = Link::create(&args.link, pty.slave_path())?;
    let report = Report {
        link: link.path.clone(),
        pty: pty.slave_path().to_path_buf(),
        remote: target.to_string(),
        command: (target.mode == Mode::RealCom).then(|| target.addr(target.command_port)),
    };
    tracing::info!(
        "{} → {} ({}), {}",
        report.link.display(),
        report.pty.display(),
        args.mode,
        target
    );
    let mut local = Local {
        writer: pty.writer(),
        pty,
        held: false,
        dropped: 0,
        to_pty: Vec::new(),
    };
    let result = attach(&target, tls.as_ref(), &mut local, &report, stop).await;
    drop(link);
    result
}

/// Completes at SIGINT or SIGTERM.
type Stop = Pin<Box<dyn Future<Output = ()>>>;

/// The local side: the pty and what goes with it across connections.
struct Local {
    pty: HostPty,
    writer: PtyWriter,
    /// The program stopped its output (`tcflow(TCOOFF)`).
    held: bool,
    /// Bytes the program wrote while disconnected.
    dropped: u64,
    /// Bytes from the remote port the program has not taken yet.
    to_pty: Vec<u8>,
}

/// Writes some of `to_pty` to the program (cancel-safe). A function of the
/// two fields, so that it can wait beside `pty.next_event()`.
async fn write_some(writer: &PtyWriter, to_pty: &mut Vec<u8>) -> io::Result<()> {
    let n = writer.write(to_pty).await?;
    to_pty.drain(..n.min(to_pty.len()));
    Ok(())
}

impl Local {
    /// What happens to an event while no connection is up: data is
    /// dropped, the rest is kept in the pty's own state.
    fn offline(&mut self, event: PtyEvent) {
        match event {
            PtyEvent::Data(d) => self.dropped += d.len() as u64,
            PtyEvent::Stop => self.held = true,
            PtyEvent::Start => self.held = false,
            PtyEvent::Flush(_) => self.to_pty.clear(),
            PtyEvent::Settings(_) | PtyEvent::Dtr(_) => {}
        }
    }
}

/// How a session ended.
enum End {
    /// SIGINT or SIGTERM.
    Stopped,
    /// The connection broke; reconnect.
    Lost(String),
}

fn pty_failure(e: io::Error) -> Failure {
    Failure::Runtime(anyhow::anyhow!("the pseudo-terminal failed: {e}"))
}

/// The reconnect loop.
async fn attach(
    target: &Target,
    tls: Option<&tls::Client>,
    local: &mut Local,
    report: &Report,
    mut stop: Stop,
) -> Result<(), Failure> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        report.state("connecting", None);
        let connection = loop {
            let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(target, tls));
            let outcome = tokio::select! {
                _ = &mut stop => return Ok(()),
                r = offline(local, attempt) => r?,
            };
            match outcome {
                Ok(Ok(c)) => break c,
                Ok(Err(ConnectError::Fatal(msg))) => {
                    return Err(Failure::Runtime(anyhow::anyhow!(msg)));
                }
                Ok(Err(ConnectError::Retry(msg))) => {
                    tracing::debug!("{target}: {msg}; again in {backoff:?}");
                }
                Err(_elapsed) => {
                    tracing::debug!("{target}: no connection within {CONNECT_TIMEOUT:?}");
                }
            }
            tokio::select! {
                _ = &mut stop => return Ok(()),
                r = offline(local, tokio::time::sleep(backoff)) => r?,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        if local.dropped > 0 {
            tracing::warn!(
                "{} bytes the program wrote while disconnected were dropped",
                local.dropped
            );
            local.dropped = 0;
        }
        report.state("connected", None);
        let end = match connection {
            Connection::Rfc2217(conn) => rfc2217::session(conn, local, report, &mut stop).await?,
            Connection::RealCom { command, data } => {
                realcom::session(command, data, local, report, &mut stop).await?
            }
        };
        match end {
            End::Stopped => return Ok(()),
            End::Lost(why) => {
                tracing::warn!("{target}: {why}");
                report.state("disconnected", Some(&why));
                backoff = FIRST_BACKOFF;
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    r = offline(local, tokio::time::sleep(backoff)) => r?,
                }
            }
        }
    }
}

/// Runs `fut` while handling the program's events offline.
async fn offline<F: Future>(local: &mut Local, fut: F) -> Result<F::Output, Failure> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            event = local.pty.next_event() => local.offline(event.map_err(pty_failure)?),
        }
    }
}

/// A byte stream to the remote: TCP, or TLS over TCP.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}
type BoxConn = Box<dyn Conn>;

/// The connections of one session.
enum Connection {
    Rfc2217(BoxConn),
    RealCom { command: TcpStream, data: BoxConn },
}

/// Why a connection attempt failed.
enum ConnectError {
    /// Try again later (refused, unreachable, reset).
    Retry(String),
    /// Trying again cannot help (the server's certificate is not trusted).
    Fatal(String),
}

async fn connect(target: &Target, tls: Option<&tls::Client>) -> Result<Connection, ConnectError> {
    match target.mode {
        Mode::Rfc2217 => {
            let tcp = tcp_connect(&target.host, target.port).await?;
            Ok(Connection::Rfc2217(wrap(tcp, tls, target).await?))
        }
        Mode::RealCom => {
            // The driver's order (spec §2.3): command first, then data.
            let command = tcp_connect(&target.host, target.command_port).await?;
            let data = tcp_connect(&target.host, target.port).await?;
            Ok(Connection::RealCom {
                command,
                data: wrap(data, tls, target).await?,
            })
        }
    }
}

async fn wrap(
    tcp: TcpStream,
    tls: Option<&tls::Client>,
    target: &Target,
) -> Result<BoxConn, ConnectError> {
    match tls {
        None => Ok(Box::new(tcp)),
        Some(client) => Ok(Box::new(client.handshake(tcp, target).await?)),
    }
}

/// Connects to the first address of `host` that answers, with keepalive
/// and without Nagle (a Modbus request is small and waited for).
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Retry(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = ConnectError::Retry(format!("{host} has no address"));
    for addr in addrs {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let attempt = async {
            let socket = socket?;
            socket.set_keepalive(true)?;
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = ConnectError::Retry(format!("cannot connect to {addr}: {e}")),
        }
    }
    Err(last)
}

/// Bytes for one writer, sent as the writer takes them. Every step is
/// cancel-safe, so it can sit in a `select!` with the readers.
struct Outgoing<W> {
    w: W,
    buf: Vec<u8>,
    /// Written since the last flush (TLS keeps records until flushed).
    unflushed: bool,
}

impl<W: AsyncWrite + Unpin> Outgoing<W> {
    fn new(w: W) -> Self {
        Outgoing {
            w,
            buf: Vec::new(),
            unflushed: false,
        }
    }

    fn busy(&self) -> bool {
        !self.buf.is_empty() || self.unflushed
    }

    fn full(&self) -> bool {
        self.buf.len() >= QUEUE_LIMIT
    }

    /// One write, or the flush after the last one.
    async fn progress(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            self.w.flush().await?;
            self.unflushed = false;
            return Ok(());
        }
        let n = self.w.write(&self.buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.buf.drain(..n.min(self.buf.len()));
        self.unflushed = true;
        Ok(())
    }
}

/// The `--link` symlink, removed when dropped (if it is still ours).
struct Link {
    path: PathBuf,
    target: PathBuf,
}

impl Link {
    fn create(path: &Path, target: &Path) -> Result<Link, Failure> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                // A link left by an attach that was killed, or one the user
                // wants replaced: it points nowhere useful now.
                std::fs::remove_file(path).map_err(|e| {
                    Failure::Runtime(anyhow::anyhow!(
                        "cannot replace the symlink {}: {e}",
                        path.display()
                    ))
                })?;
            }
            Ok(_) => {
                return Err(Failure::Config(format!(
                    "{} exists and is not a symlink; remove it or choose another --link",
                    path.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "cannot check {}: {e}",
                    path.display()
                )));
            }
        }
        std::os::unix::fs::symlink(target, path).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot create the symlink {} → {}: {e}; does its directory exist and is it writable?",
                path.display(),
                target.display()
            ))
        })?;
        Ok(Link {
            path: path.to_path_buf(),
            target: target.to_path_buf(),
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Only our own link: another attach may have taken the path over.
        if std::fs::read_link(&self.path).is_ok_and(|t| t == self.target)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The JSON lines on stdout.
struct Report {
    link: PathBuf,
    pty: PathBuf,
    remote: String,
    /// Real COM's command address.
    command: Option<String>,
}

impl Report {
    /// `{"event":"attach","state":...}`: connecting, connected,
    /// disconnected (with the reason).
    fn state(&self, state: &str, reason: Option<&str>) {
        let mut line = json!({
            "event": "attach",
            "state": state,
            "link": self.link.display().to_string(),
            "pty": self.pty.display().to_string(),
            "remote": self.remote,
        });
        if let Some(command) = &self.command {
            line["command"] = json!(command);
        }
        if let Some(reason) = reason {
            line["reason"] = json!(reason);
        }
        println!("{line}");
    }

    /// `{"event":"settings",...}`: the remote port's settings after a
    /// change, as the server confirmed them. `confirmation` is "echo" when
    /// the server reported the values in effect (RFC 2217), "ack" when it
    /// acknowledged what was sent (Real COM).
    fn settings(&self, s: &SerialSettings, dtr: bool, confirmation: &str) {
        let line = json!({
            "event": "settings",
            "baud": s.baud.get(),
            "data_bits": s.data_bits.bits(),
            "parity": s.parity.as_str(),
            "stop_bits": s.stop_bits.as_str(),
            "flow": s.flow.as_str(),
            "dtr": dtr,
            "confirmation": confirmation,
        });
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Option<(String, Option<u16>)> {
        split_remote(text).ok()
    }

    #[test]
    fn splits_remote_forms() {
        assert_eq!(split("10.0.0.9"), Some(("10.0.0.9".into(), None)));
        assert_eq!(
            split("10.0.0.9:4001"),
            Some(("10.0.0.9".into(), Some(4001)))
        );
        assert_eq!(
            split("nport.lan:950"),
            Some(("nport.lan".into(), Some(950)))
        );
        assert_eq!(split("[::1]:4001"), Some(("::1".into(), Some(4001))));
        assert_eq!(split("[::1]"), Some(("::1".into(), None)));
        assert_eq!(split("fe80::1"), Some(("fe80::1".into(), None)));
        for bad in ["host:0", "host:x", ":4001", "[::1", "[::1]x", "host:70000"] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }
}
