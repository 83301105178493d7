//! Reverse Telnet and Reverse SSH (NPort manual 7-29, spec §4.9): a
//! person reaches the serial console of the device on a port from a
//! terminal, after logging in with a ttyward account.
//!
//! This module holds what both share: the accept loop (Gate first, then a
//! bounded number of logins in progress), the [`Authenticator`] the daemon
//! gives the engine (the engine checks no password itself and knows no
//! account), the port's group check, the console's connection limit, and
//! the CR LF mapping. [`telnet`] speaks telnet with our sans-IO codec,
//! [`ssh`] runs russh.
//!
//! A connection takes one of the port's `max_connections` console places
//! only once its user has logged in and is allowed on the port: someone
//! without an account cannot keep the console from its owners by opening
//! connections and never logging in (those are bounded by the Gate, by
//! [`LOGINS_IN_PROGRESS`] and by [`LOGIN_GRACE`]).
//!
//! Not done here: accounting (who was on which console is in the event log
//! through the authenticator and the session events), RADIUS/TACACS+ (the
//! authenticator's business).

mod ssh;
mod telnet;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::config::{MapCrLf, ReverseTerminalMode};
use ttyward_core::service::Interface;

use crate::counters::add;
use crate::event::{EventKind, EventSink};
use crate::gate::Gate;
use crate::port::{PortHandle, Session};

pub use ssh::{HostKey, HostKeyError};

/// How long a connection may take from accept to a console (or to giving
/// up): OpenSSH's LoginGraceTime is 120 s; a person typing a name and a
/// password needs far less.
pub const LOGIN_GRACE: Duration = Duration::from_secs(60);
/// Connections per port that may be logging in at once, besides the
/// console places themselves.
pub const LOGINS_IN_PROGRESS: usize = 8;
/// NPort "TCP alive check time" default (minutes): reverse terminal ports
/// probe a silent peer like the other modes do.
const ALIVE_CHECK_MIN: u8 = 7;
/// After the peer closed its sending side, device output still reaches it
/// until the device has been quiet this long (`echo cmd | ssh ...`).
const HALF_CLOSE_LINGER: Duration = Duration::from_millis(500);
/// How long the last words of a connection (a refusal, the end of an SSH
/// channel) may take to reach a peer that may not be reading.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// `map_crlf = "lf"`: a CR at the end of what arrived waits this long for
/// its LF before it goes to the device as it is.
const CR_HOLD: Duration = Duration::from_millis(20);

/// Who logged in, as the authenticator says.
#[derive(Clone)]
pub struct Identity {
    /// The account name as stored.
    pub account: String,
    /// The account's group.
    pub group: String,
    /// Whatever the authenticator needs to follow and end this login
    /// (a session); the engine only hands it back.
    pub login: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("account", &self.account)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// A refused login, with the text to show the person (the configured
/// failure message: it says nothing about why).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// What to show.
    pub message: String,
}

/// A boxed future, as [`Authenticator`]'s methods return (a trait object
/// cannot have `async fn`s).
pub type AuthFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Checks logins for the reverse terminal consoles; the daemon implements
/// it over its accounts (lockout, login events and sessions are its
/// business).
pub trait Authenticator: Send + Sync {
    /// Log in with a name and password typed at a telnet prompt or sent
    /// by an SSH client. Each failure counts toward the lockout.
    fn password<'a>(
        &'a self,
        name: &'a str,
        password: &'a str,
        peer: SocketAddr,
        interface: Interface,
    ) -> AuthFuture<'a, Result<Identity, Denied>>;

    /// Whether `key` ("type base64") is one of the account's authorized
    /// keys. An SSH client offers keys before proving it holds one: this
    /// is not a login and counts nothing.
    fn key_authorized<'a>(&'a self, name: &'a str, key: &'a str) -> AuthFuture<'a, bool>;

    /// Log in with a key the client proved it holds (the signature was
    /// checked); the lockout applies as for a password.
    fn public_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        peer: SocketAddr,
    ) -> AuthFuture<'a, Result<Identity, Denied>>;

    /// The login message (Security > Login Settings), shown before the
    /// credentials are asked for; empty for none.
    fn login_message(&self) -> String;

    /// `identity` logged in on `port`'s console but its group is not one
    /// of the port's groups: record it (it is refused).
    fn refused(&self, identity: &Identity, peer: SocketAddr, port: u16);

    /// Completes, with the reason, when the login ends elsewhere (an
    /// administrator ended the session, the account was disabled). The
    /// console closes then.
    fn ended<'a>(&'a self, identity: &'a Identity) -> AuthFuture<'a, String>;

    /// The connection of `identity` is over.
    fn logout<'a>(&'a self, identity: &'a Identity, peer: SocketAddr) -> AuthFuture<'a, ()>;
}

/// What the reverse terminal modes need from outside the engine: who may
/// log in, and the SSH host key.
#[derive(Clone)]
pub struct ConsoleAccess {
    /// Checks logins.
    pub authenticator: Arc<dyn Authenticator>,
    /// The SSH server's host key.
    pub host_key: HostKey,
}

impl fmt::Debug for ConsoleAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleAccess")
            .field("host_key", &self.host_key)
            .finish_non_exhaustive()
    }
}

/// Telnet or SSH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Telnet,
    Ssh,
}

/// One port's reverse terminal settings, shared by its connections.
pub(crate) struct Params {
    protocol: Protocol,
    max_connections: u16,
    inactivity: Option<Duration>,
    map_crlf: MapCrLf,
    groups: Vec<String>,
    access: ConsoleAccess,
    /// The SSH server configuration (host key, algorithms).
    ssh: Option<Arc<russh::server::Config>>,
}

impl Params {
    pub(crate) fn new(
        protocol: Protocol,
        mode: &ReverseTerminalMode,
        access: ConsoleAccess,
    ) -> Params {
        let ssh =
            (protocol == Protocol::Ssh).then(|| Arc::new(ssh::server_config(&access.host_key)));
        Params {
            protocol,
            max_connections: mode.max_connections,
            inactivity: (mode.inactivity_min > 0)
                .then(|| Duration::from_secs(60 * u64::from(mode.inactivity_min))),
            map_crlf: mode.map_crlf,
            groups: mode.groups.clone(),
            access,
            ssh,
        }
    }
}

/// Accept on every listener of a port until cancelled.
pub(crate) fn spawn(
    listeners: Vec<TcpListener>,
    port: PortHandle,
    params: Params,
    gate: Gate,
    events: EventSink,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    let shared = Arc::new(Shared {
        consoles: Arc::new(Semaphore::new(usize::from(params.max_connections))),
        logins: Arc::new(Semaphore::new(
            usize::from(params.max_connections) + LOGINS_IN_PROGRESS,
        )),
        params,
        port,
        events,
        cancel,
    });
    for listener in listeners {
        tracker.spawn(accept(
            listener,
            shared.clone(),
            gate.clone(),
            tracker.clone(),
        ));
    }
}

/// What every connection of one port shares.
struct Shared {
    params: Params,
    port: PortHandle,
    events: EventSink,
    cancel: CancellationToken,
    /// Console places (`max_connections`).
    consoles: Arc<Semaphore>,
    /// Connections not yet at a console.
    logins: Arc<Semaphore>,
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, gate: Gate, tracker: TaskTracker) {
    let (port, events, cancel) = (&shared.port, &shared.events, &shared.cancel);
    while let Some((stream, peer, admitted)) =
        crate::gate::next_admitted(&listener, &gate, port, events, cancel).await
    {
        let Ok(login) = shared.logins.clone().try_acquire_owned() else {
            shared.refuse(peer, "too many logins in progress");
            continue;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::net::configure_stream(&stream, ALIVE_CHECK_MIN) {
                tracing::debug!("socket options for {peer}: {e}");
            }
            let conn = Connection {
                shared,
                peer,
                login: Some(login),
            };
            match conn.shared.params.protocol {
                Protocol::Telnet => Box::pin(telnet::serve(stream, conn)).await,
                Protocol::Ssh => Box::pin(ssh::serve(stream, conn)).await,
            }
            drop(admitted);
        });
    }
}

impl Shared {
    fn refuse(&self, peer: SocketAddr, reason: &str) {
        add(&self.port.counters().connections_refused, 1);
        self.events.emit(
            self.port.number(),
            EventKind::ConnectionRefused {
                peer,
                reason: reason.into(),
            },
        );
    }
}

/// One accepted connection, for its protocol's `serve`.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The login place, given back once the console is reached.
    login: Option<OwnedSemaphorePermit>,
}

/// A console the connection may use: its place and the port's session.
pub(crate) struct Console {
    session: Session,
    _place: OwnedSemaphorePermit,
}

impl Connection {
    fn authenticator(&self) -> &dyn Authenticator {
        self.shared.params.access.authenticator.as_ref()
    }

    fn number(&self) -> u16 {
        self.shared.port.number()
    }

    /// Let `identity` onto the console: its group must be one of the
    /// port's, a console place must be free and the device open. `Err`
    /// holds the line to show the person (the refusal is recorded).
    async fn admit(&mut self, identity: &Identity) -> Result<Console, String> {
        let number = self.number();
        let allowed = self
            .shared
            .params
            .groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(&identity.group));
        if !allowed {
            add(&self.shared.port.counters().connections_refused, 1);
            self.authenticator().refused(identity, self.peer, number);
            return Err(format!("no permission for port {number}"));
        }
        let Ok(place) = self.shared.consoles.clone().try_acquire_owned() else {
            self.shared.refuse(self.peer, "max connections reached");
            return Err(format!(
                "port {number}: all {} console connection(s) are in use; try again later",
                self.shared.params.max_connections
            ));
        };
        let session = match self.shared.port.attach(self.peer).await {
            Ok(s) => s,
            Err(e) => {
                self.shared.refuse(self.peer, &e.to_string());
                return Err(format!("port {number}: {e}; try again later"));
            }
        };
        // The login place is free for the next connection.
        self.login = None;
        self.shared
            .events
            .emit(number, EventKind::SessionOpened { peer: self.peer });
        Ok(Console {
            session,
            _place: place,
        })
    }

    /// The console has ended (after a successful [`Connection::admit`]).
    fn closed(&self, reason: String) {
        self.shared.events.emit(
            self.number(),
            EventKind::SessionClosed {
                peer: self.peer,
                reason,
            },
        );
    }
}

/// `map_crlf`: what a CR LF from the network becomes on the serial line.
/// Sans IO: [`CrLfMap::map`] each arrival; with `lf`, a CR that ends an
/// arrival is held (its LF may come next) until [`CrLfMap::flush`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct CrLfMap {
    mode: MapCrLf,
    /// The last byte seen was a CR (mode `cr`: a following LF is dropped).
    after_cr: bool,
    /// Mode `lf`: a CR not yet written.
    held_cr: bool,
}

const CR: u8 = b'\r';
const LF: u8 = b'\n';

impl CrLfMap {
    pub(crate) fn new(mode: MapCrLf) -> CrLfMap {
        CrLfMap {
            mode,
            after_cr: false,
            held_cr: false,
        }
    }

    /// Append `input`, mapped, to `out`.
    pub(crate) fn map(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self.mode {
            MapCrLf::CrLf => out.extend_from_slice(input),
            MapCrLf::Cr => {
                for &b in input {
                    if !(b == LF && self.after_cr) {
                        out.push(b);
                    }
                    self.after_cr = b == CR;
                }
            }
            MapCrLf::Lf => {
                for &b in input {
                    if std::mem::take(&mut self.held_cr) {
                        if b == LF {
                            out.push(LF);
                            continue;
                        }
                        out.push(CR);
                    }
                    if b == CR {
                        self.held_cr = true;
                    } else {
                        out.push(b);
                    }
                }
            }
        }
    }

    /// Whether a CR waits for [`CrLfMap::flush`].
    pub(crate) fn holding(&self) -> bool {
        self.held_cr
    }

    /// Write a held CR: no LF came.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.held_cr) {
            out.push(CR);
        }
    }
}

/// Text for a terminal: every line ending becomes CR LF.
pub(crate) fn crlf_text(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(mode: MapCrLf, arrivals: &[&[u8]]) -> Vec<u8> {
        let mut m = CrLfMap::new(mode);
        let mut out = Vec::new();
        for a in arrivals {
            m.map(a, &mut out);
        }
        m.flush(&mut out);
        out
    }

    #[test]
    fn cr_lf_mode_changes_nothing() {
        assert_eq!(
            mapped(MapCrLf::CrLf, &[b"a\r\nb\r", b"\n\n"]),
            b"a\r\nb\r\n\n"
        );
    }

    #[test]
    fn cr_mode_drops_the_lf_of_cr_lf_even_across_arrivals() {
        assert_eq!(
            mapped(MapCrLf::Cr, &[b"a\r\nb\r", b"\nc\n\r\r"]),
            b"a\rb\rc\n\r\r"
        );
    }

    #[test]
    fn lf_mode_turns_cr_lf_into_lf_and_keeps_a_lone_cr() {
        assert_eq!(
            mapped(MapCrLf::Lf, &[b"a\r\nb\r", b"\nc\rd\r\r\n"]),
            b"a\nb\nc\rd\r\n"
        );
        let mut m = CrLfMap::new(MapCrLf::Lf);
        let mut out = Vec::new();
        m.map(b"ls\r", &mut out);
        assert_eq!(out, b"ls");
        assert!(m.holding());
        m.flush(&mut out);
        assert_eq!(out, b"ls\r");
        assert!(!m.holding());
    }

    #[test]
    fn text_gets_crlf_line_endings() {
        assert_eq!(crlf_text("a\nb\r\nc"), "a\r\nb\r\nc");
    }
}
