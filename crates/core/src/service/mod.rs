//! The service layer: every operation a person can ask of ttyward, with the
//! checks that make it safe, in one place for every interface — the local
//! command line now, the REST API and web console next.
//!
//! Each operation takes a [`Caller`] (who, from where, through which
//! interface), checks the caller's permission, validates, changes the store
//! in one transaction and records an event naming the caller. Nothing here
//! knows about HTTP or sockets.
//!
//! Trust: [`Caller::local`] is the host's own command line. Whoever can run
//! it can read the data directory anyway, so it holds every permission (as
//! the data directory is the trust anchor of first use, see
//! [`Service::create_first_admin`]).

mod accounts;
mod auth;
mod events;
mod maintenance;
mod settings;
pub mod ssh_keys;
mod tokens;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::event_log::{EventId, EventLog, NewEvent};
use crate::password::{PasswordHasher, PasswordRejected};
use crate::permission::{Permission, Permissions};
use crate::session::SessionLimit;
use crate::store::{Store, StoreError};

pub use auth::{LoginOk, SETUP_CODE_FILE};
pub use settings::ConfigChange;

/// Argon2 hashes computed at once (each takes 19 MiB and ~40 ms).
const CONCURRENT_HASHES: usize = 2;

/// Through which interface a caller came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// The `ttyward` command on the host.
    Cli,
    /// The web console.
    Web,
    /// The REST API.
    Api,
    /// Reverse SSH.
    Ssh,
    /// Reverse telnet.
    Telnet,
}

impl Interface {
    /// Lower-case name, as stored with sessions.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Cli => "cli",
            Interface::Web => "web",
            Interface::Api => "api",
            Interface::Ssh => "ssh",
            Interface::Telnet => "telnet",
        }
    }
}

/// Where a caller came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This host's command line.
    Local,
    /// A network peer.
    Net(IpAddr),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Local => f.write_str("local"),
            Source::Net(ip) => write!(f, "{ip}"),
        }
    }
}

/// An authenticated account acting through a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Account row id.
    pub account_id: i64,
    /// Account name.
    pub name: String,
    /// Group name.
    pub group: String,
    /// What the group allows.
    pub permissions: Permissions,
    /// The session, when the caller logged in.
    pub session_id: Option<i64>,
    /// The password has outlived the policy's lifetime: only a password
    /// change is allowed.
    pub must_change_password: bool,
}

/// Who asks for an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account, or `None` for the host's command line.
    pub principal: Option<Principal>,
    /// Where the request came from.
    pub source: Source,
    /// Through which interface.
    pub interface: Interface,
}

impl Caller {
    /// The host's own command line: every permission.
    pub fn local() -> Caller {
        Caller {
            principal: None,
            source: Source::Local,
            interface: Interface::Cli,
        }
    }

    /// The name events record for this caller.
    pub fn user(&self) -> String {
        match (&self.principal, self.source) {
            (Some(p), _) => p.name.clone(),
            (None, Source::Local) => "(local)".into(),
            // Before any login (first-use setup over the network).
            (None, Source::Net(_)) => "(anonymous)".into(),
        }
    }

    /// Fail unless the caller may do `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        match &self.principal {
            None => Ok(()),
            Some(p) if p.must_change_password => Err(ServiceError::PasswordExpired),
            Some(p) if p.permissions.contains(&permission) => Ok(()),
            Some(_) => Err(ServiceError::Forbidden { permission }),
        }
    }

    /// Whether the caller may do `permission` (no error).
    pub fn may(&self, permission: Permission) -> bool {
        self.require(permission).is_ok()
    }
}

/// Why an operation was refused or failed. Messages are for the person who
/// asked: what was wrong and what to do, no internals.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's group lacks a permission.
    #[error("permission denied: your group does not have '{permission}'")]
    Forbidden {
        /// The missing permission.
        permission: Permission,
    },
    /// The password has expired; change it first.
    #[error("your password has expired; change it before doing anything else")]
    PasswordExpired,
    /// Login failed (the message is the configured failure message, the
    /// same whatever the reason, so it reveals nothing).
    #[error("{message}")]
    LoginFailed {
        /// The configured authentication-failure message.
        message: String,
    },
    /// No session or an expired one.
    #[error("not logged in, or the session has ended; log in again")]
    Unauthenticated,
    /// Too many sessions.
    #[error(transparent)]
    SessionLimit(#[from] SessionLimit),
    /// Something named does not exist.
    #[error("no {what} named '{name}'")]
    NotFound {
        /// Account, group, session.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The request contradicts the current state.
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A password does not meet the policy.
    #[error(transparent)]
    Password(#[from] PasswordRejected),
    /// A configuration with errors; nothing was changed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The service: a handle shared by every interface; cheap to clone.
#[derive(Clone, Debug)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    hasher: PasswordHasher,
    events: EventLog,
    config: watch::Sender<Arc<Config>>,
    dir: std::path::PathBuf,
}

impl Service {
    /// Open the data directory: the store (migrated), the event log, the
    /// configuration. Works inside or outside a tokio runtime.
    pub fn open(dir: &Path) -> Result<Service, ServiceError> {
        let store = Store::open(dir)?;
        store.call_blocking(|c| crate::account::ensure_builtin_groups(c))?;
        let config = store.call_blocking(settings::load)?;
        let db = store.path().to_owned();
        let events = EventLog::start(&config.event_log, move || {
            crate::store::open_connection(&db)
        })
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let (config, _) = watch::channel(Arc::new(config));
        Ok(Service {
            inner: Arc::new(Inner {
                store,
                hasher: PasswordHasher::new(CONCURRENT_HASHES),
                events,
                config,
                dir: dir.to_owned(),
            }),
        })
    }

    /// The store (for the daemon's change detection and housekeeping).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The event log.
    pub fn events(&self) -> &EventLog {
        &self.inner.events
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.borrow().clone()
    }

    /// Follow configuration changes (the engine applies them).
    pub fn watch_config(&self) -> watch::Receiver<Arc<Config>> {
        self.inner.config.subscribe()
    }

    /// Record an event on behalf of `caller` (for operations outside this
    /// crate, such as certificate changes in the web crate).
    pub fn audit(&self, caller: &Caller, event: EventId, message: impl Into<String>) {
        self.inner.events.record(NewEvent {
            event,
            user: Some(caller.user()),
            source: Some(caller.source.to_string()),
            message: message.into(),
        });
    }

    /// Record an event a network peer caused before any login (a refused
    /// connection): the source is known, the user is not.
    pub fn record_from(
        &self,
        event: EventId,
        source: std::net::IpAddr,
        message: impl Into<String>,
    ) {
        self.inner.events.record(NewEvent {
            event,
            user: None,
            source: Some(source.to_canonical().to_string()),
            message: message.into(),
        });
    }

    /// Record an event that no caller caused (the daemon itself).
    pub fn record(&self, event: EventId, message: impl Into<String>) {
        self.inner.events.record(NewEvent {
            event,
            user: None,
            source: None,
            message: message.into(),
        });
    }
}
