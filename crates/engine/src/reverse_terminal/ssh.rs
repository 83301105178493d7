//! Reverse SSH: an SSH server (russh) in front of a port's serial console.
//!
//! Authentication: password, or a public key among the account's
//! authorized keys; both through the [`Authenticator`], so the lockout and
//! the login events are the same as for the web console. The login message
//! is the SSH banner. A `shell` request (with or without a pty) is the
//! console; `exec`, subsystems (sftp), X11, agent and port forwarding are
//! refused: this server runs no commands and forwards nothing. One session
//! channel per connection.
//!
//! Algorithms (CR 3.1, CR 4.3): key exchange mlkem768x25519-sha256 and
//! curve25519-sha256 only; host and user keys Ed25519, ECDSA, RSA with
//! SHA-2 (no `ssh-rsa` SHA-1 signatures); ciphers chacha20-poly1305 and
//! AES-GCM only (no CBC, no CTR with a separate MAC); no compression. The
//! host key is Ed25519; the daemon keeps it in its data directory
//! ([`HostKey`] only makes, reads and writes it).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKey};
use russh::server::{Auth, Msg, PublicKeyOffer, Session as SshSession, VerifiedPublicKey};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelWriteHalf, MethodKind, MethodSet, Preferred, cipher,
    kex, mac,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use ttyward_core::service::Interface;

use super::{
    Authenticator, CLOSE_GRACE, CR_HOLD, Connection, Console, CrLfMap, HALF_CLOSE_LINGER, Identity,
    LOGIN_GRACE, crlf_text,
};

/// What the server says it is: no version (CR 3.7).
const SERVER_ID: &str = "SSH-2.0-ttyward";
/// Authentication requests per connection before it is closed (OpenSSH's
/// MaxAuthTries is 6; clients with several keys in their agent need some).
const MAX_AUTH_ATTEMPTS: usize = 10;
/// A refused authentication answers after this long at the earliest, so
/// timing does not tell a wrong password from an unknown account.
const AUTH_REJECTION_TIME: std::time::Duration = std::time::Duration::from_millis(500);
/// Stands for "never" in timers that are off.
const FAR: std::time::Duration = std::time::Duration::from_secs(86_400 * 365);

/// The SSH host key (Ed25519).
#[derive(Clone)]
pub struct HostKey(Arc<PrivateKey>);

/// Why a host key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The OS random source failed.
    #[error("cannot make an SSH host key: the random source failed: {0}")]
    Random(String),
    /// The stored key is not an OpenSSH Ed25519 private key.
    #[error(
        "the SSH host key is not an unencrypted OpenSSH Ed25519 private key ({0}); remove the file to have a new one made"
    )]
    Invalid(String),
}

impl HostKey {
    /// A new random Ed25519 key.
    pub fn generate() -> Result<HostKey, HostKeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| HostKeyError::Random(e.to_string()))?;
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        seed.fill(0);
        Ok(HostKey(Arc::new(key)))
    }

    /// Read a key in OpenSSH's private key format.
    pub fn from_openssh(text: &str) -> Result<HostKey, HostKeyError> {
        let key =
            PrivateKey::from_openssh(text).map_err(|e| HostKeyError::Invalid(e.to_string()))?;
        if key.algorithm() != Algorithm::Ed25519 || key.is_encrypted() {
            return Err(HostKeyError::Invalid(format!(
                "found {}{}",
                key.algorithm(),
                if key.is_encrypted() {
                    ", encrypted"
                } else {
                    ""
                }
            )));
        }
        Ok(HostKey(Arc::new(key)))
    }

    /// Write the key in OpenSSH's private key format (what
    /// [`HostKey::from_openssh`] reads).
    pub fn write_openssh(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let text = self
            .0
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(std::io::Error::other)?;
        w.write_all(text.as_bytes())
    }

    /// `SHA256:...`, as `ssh-keygen -l` and OpenSSH's first-connection
    /// prompt show it.
    pub fn fingerprint(&self) -> String {
        self.0.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The public key line ("ssh-ed25519 AAAA..."), for a known_hosts file.
    pub fn public_openssh(&self) -> String {
        self.0.public_key().to_openssh().unwrap_or_default()
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.fingerprint())
    }
}

/// The russh server configuration of a port: our host key and algorithms.
pub(super) fn server_config(host_key: &HostKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed(SERVER_ID)),
        methods: MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        // OpenSSH asks with "none" first to learn the methods: no wait.
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        keys: vec![(*host_key.0).clone()],
        preferred: Preferred {
            kex: Cow::Borrowed(&[
                kex::MLKEM768X25519_SHA256,
                kex::CURVE25519,
                kex::CURVE25519_PRE_RFC_8731,
                kex::EXTENSION_SUPPORT_AS_SERVER,
                kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
            ]),
            key: Cow::Borrowed(&[
                Algorithm::Ed25519,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ]),
            host_key_certificates: Cow::Borrowed(&[]),
            cipher: Cow::Borrowed(&[
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_GCM,
                cipher::AES_128_GCM,
            ]),
            // Unused with AEAD ciphers, but negotiated: no SHA-1.
            mac: Cow::Borrowed(&[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM]),
            compression: Cow::Borrowed(&[russh::compression::NONE]),
        },
        max_auth_attempts: MAX_AUTH_ATTEMPTS,
        // The login grace, the console's inactivity time and TCP
        // keep-alive (the alive check) bound a connection instead.
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

/// What the SSH session tells the connection's task.
enum Step {
    /// Authentication succeeded.
    LoggedIn(Identity),
    /// The client asked for a shell on the session channel.
    Shell(Channel<Msg>),
}

/// Serve one reverse SSH connection until it ends.
pub(super) async fn serve(stream: TcpStream, mut conn: Connection) {
    let Some(config) = conn.shared.params.ssh.clone() else {
        return;
    };
    let (tx, mut steps) = mpsc::channel(4);
    let handler = Handler {
        auth: conn.shared.params.access.authenticator.clone(),
        peer: conn.peer,
        steps: tx,
        channel: None,
        channel_id: None,
    };
    let deadline = Instant::now() + LOGIN_GRACE;
    // This exchanges the version lines; the rest runs in russh's task.
    let running =
        match tokio::time::timeout_at(deadline, russh::server::run_stream(config, stream, handler))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!("reverse ssh from {}: {e}", conn.peer);
                return;
            }
            Err(_) => return,
        };
    let handle = running.handle();
    let mut running = Box::pin(running);
    let mut finished = false;
    let mut identity = None;
    let cancel = conn.shared.cancel.clone();
    let channel = loop {
        tokio::select! {
            _ = cancel.cancelled() => break None,
            _ = tokio::time::sleep_until(deadline) => break None,
            _ = &mut running => {
                finished = true;
                break None;
            }
            step = steps.recv() => match step {
                Some(Step::LoggedIn(id)) => identity = Some(id),
                Some(Step::Shell(channel)) => break Some(channel),
                None => break None,
            },
        }
    };
    // A client that logs in and leaves at once (an exec request, refused)
    // can end the connection before its login step was taken above; its
    // logout must still be logged.
    if identity.is_none()
        && let Ok(Step::LoggedIn(id)) = steps.try_recv()
    {
        identity = Some(id);
    }
    let reason = match (channel, &identity) {
        (Some(channel), Some(identity)) => match conn.admit(identity).await {
            Ok(console) => {
                let _active = crate::ActiveConnection::new(conn.shared.port.counters());
                let reason = run_console(
                    &conn,
                    &console,
                    identity,
                    channel,
                    &mut running,
                    &mut finished,
                )
                .await;
                conn.closed(reason.clone());
                reason
            }
            Err(refusal) => {
                let (_, wr) = channel.split();
                end_channel(&wr, Some(&refusal), 1).await;
                refusal
            }
        },
        _ => "login not completed".to_owned(),
    };
    if !finished {
        // Let the client see the end of its channel, then cut; at once when
        // the port stops (its restart must not wait for clients).
        let grace = if cancel.is_cancelled() {
            std::time::Duration::ZERO
        } else {
            CLOSE_GRACE
        };
        if tokio::time::timeout(grace, &mut running).await.is_err() {
            let bye = handle.disconnect(russh::Disconnect::ByApplication, reason, String::new());
            let _ = tokio::time::timeout(CLOSE_GRACE, bye).await;
            let _ = tokio::time::timeout(
                grace.max(std::time::Duration::from_millis(200)),
                &mut running,
            )
            .await;
        }
    }
    if let Some(identity) = &identity {
        conn.authenticator().logout(identity, conn.peer).await;
    }
}

/// Forward between the SSH channel and the console until one side ends;
/// returns why, in words. The channel is closed (exit status 0) at the end.
async fn run_console(
    conn: &Connection,
    console: &Console,
    identity: &Identity,
    channel: Channel<Msg>,
    running: &mut std::pin::Pin<Box<russh::server::RunningSession<Handler>>>,
    finished: &mut bool,
) -> String {
    let session = &console.session;
    let params = &conn.shared.params;
    let (mut rd, wr) = channel.split();
    let mut writer = wr.make_writer();
    let mut map = CrLfMap::new(params.map_crlf);
    let inactivity = params.inactivity;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut to_device = Vec::new();
    let mut peer_done = false;
    let idle = tokio::time::sleep(inactivity.unwrap_or(FAR));
    let hold = tokio::time::sleep(FAR);
    let linger = tokio::time::sleep(FAR);
    let ended = conn.authenticator().ended(identity);
    let cancelled = conn.shared.cancel.cancelled();
    tokio::pin!(idle, hold, linger, ended, cancelled);
    let why = loop {
        let mut moved = false;
        tokio::select! {
            _ = &mut cancelled => break "port stopped".to_owned(),
            why = &mut ended => {
                let notice = wr.extended_data_bytes(1, Bytes::from(format!("\r\n{why}\r\n")));
                let _ = tokio::time::timeout(CLOSE_GRACE, notice).await;
                break why;
            }
            _ = running.as_mut(), if !*finished => {
                *finished = true;
                break "connection closed".to_owned();
            }
            msg = rd.wait(), if !peer_done => match msg {
                Some(ChannelMsg::Data { data }) => {
                    moved = true;
                    map.map(&data, &mut to_device);
                    if let Err(why) = send(session, &mut to_device).await {
                        break why;
                    }
                    if map.holding() {
                        hold.as_mut().reset(Instant::now() + CR_HOLD);
                    }
                }
                Some(ChannelMsg::Eof) => {
                    peer_done = true;
                    linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                }
                Some(ChannelMsg::Close) | None => break "closed by peer".to_owned(),
                Some(_) => {}
            },
            _ = &mut hold, if map.holding() => {
                map.flush(&mut to_device);
                if let Err(why) = send(session, &mut to_device).await {
                    break why;
                }
            }
            r = session.recv(&mut chunks) => match r {
                Ok(()) => {
                    moved = true;
                    if let Err(why) = session.write_out(&mut writer, &mut chunks).await {
                        break why;
                    }
                    if peer_done {
                        linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                    }
                }
                Err(reason) => break reason.to_string(),
            },
            _ = &mut idle, if inactivity.is_some() => break "inactivity timeout".to_owned(),
            _ = &mut linger, if peer_done => break "closed by peer".to_owned(),
        }
        if let (true, Some(d)) = (moved, inactivity) {
            idle.as_mut().reset(Instant::now() + d);
        }
    };
    if !*finished {
        end_channel(&wr, None, 0).await;
    }
    why
}

/// End the session channel: `message` on stderr, the exit status, EOF and
/// close; given up after [`CLOSE_GRACE`] (a client that opens no window
/// must not hold the task).
async fn end_channel(wr: &ChannelWriteHalf<Msg>, message: Option<&str>, status: u32) {
    let end = async {
        if let Some(m) = message {
            wr.extended_data_bytes(1, Bytes::from(format!("{m}\r\n")))
                .await?;
        }
        wr.exit_status(status).await?;
        wr.eof().await?;
        wr.close().await
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, end).await;
}

/// Send what the person typed to the device.
async fn send(session: &crate::port::Session, data: &mut Vec<u8>) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    session
        .send(Bytes::from(std::mem::take(data)))
        .await
        .map_err(|e| e.to_string())
}

/// One connection's russh handler: authentication through the
/// [`Authenticator`], one session channel, a shell and nothing else.
struct Handler {
    auth: Arc<dyn Authenticator>,
    peer: std::net::SocketAddr,
    steps: mpsc::Sender<Step>,
    /// The session channel, until its shell request.
    channel: Option<Channel<Msg>>,
    channel_id: Option<ChannelId>,
}

/// A refusal that leaves both methods open (russh would drop the method
/// that failed, and a person may mistype a password).
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(
            &[MethodKind::Password, MethodKind::PublicKey][..],
        )),
        partial_success: false,
    }
}

/// "type base64" of a key, as the accounts store it.
fn key_line(key: &russh::keys::PublicKey) -> Option<String> {
    let text = key.to_openssh().ok()?;
    let mut parts = text.split_whitespace();
    Some(format!("{} {}", parts.next()?, parts.next()?))
}

/// `ssh-rsa` signatures use SHA-1: refused (CR 4.3).
fn sha1(algorithm: &Algorithm) -> bool {
    *algorithm == Algorithm::Rsa { hash: None }
}

impl Handler {
    fn logged_in(&self, identity: Identity) -> Auth {
        // The task listens until the shell; a full queue cannot happen
        // (one login per connection), and a gone task means it is over.
        match self.steps.try_send(Step::LoggedIn(identity)) {
            Ok(()) => Auth::Accept,
            Err(_) => reject(),
        }
    }

    fn ours(&self, channel: ChannelId) -> bool {
        self.channel_id == Some(channel)
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        let message = self.auth.login_message();
        Ok((!message.is_empty()).then(|| format!("{}\r\n", crlf_text(&message))))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        match self
            .auth
            .password(user, password, self.peer, Interface::Ssh)
            .await
        {
            Ok(identity) => Ok(self.logged_in(identity)),
            Err(_) => Ok(reject()),
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if sha1(offer.algorithm) {
            return Ok(reject());
        }
        let Some(key) = key_line(offer.public_key) else {
            return Ok(reject());
        };
        Ok(if self.auth.key_authorized(user, &key).await {
            Auth::Accept
        } else {
            reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if sha1(key.algorithm) {
            return Ok(reject());
        }
        let Some(line) = key_line(key.public_key) else {
            return Ok(reject());
        };
        match self.auth.public_key(user, &line, self.peer).await {
            Ok(identity) => Ok(self.logged_in(identity)),
            Err(_) => Ok(reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        if self.channel_id.is_some() {
            // Dropping the reply refuses the channel.
            return Ok(());
        }
        self.channel_id = Some(channel.id());
        self.channel = Some(channel);
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        // The terminal is the device's: its size and modes are not ours to
        // apply, but a client that asks gets its raw terminal.
        if self.ours(channel) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        let sent = match self.channel.take().filter(|c| c.id() == channel) {
            Some(c) => self.steps.try_send(Step::Shell(c)).is_ok(),
            None => false,
        };
        if sent {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut SshSession,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}
