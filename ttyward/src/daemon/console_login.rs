//! Who may log in on the reverse telnet/SSH consoles: the engine's
//! [`Authenticator`] over the daemon's accounts ([`Service`]), and the SSH
//! host key in the data directory.
//!
//! A console login is a login like the web console's: the same lockout,
//! login events and session (listed with the others, limited by Session
//! Control, ended by an administrator or when its account is disabled,
//! which closes the console within [`SESSION_CHECK`]). The port's group
//! check is the engine's; this records its refusals.
//!
//! The host key is Ed25519, made at the first start as
//! `DIR/ssh/host_ed25519` (directory 0700, file 0600, written to a
//! temporary name and renamed, so a crash leaves the old key or the new
//! one) and the same ever after, so clients' known_hosts stay valid.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ttyward_core::event_log::EventId;
use ttyward_core::service::{Caller, Interface, LoginOk, Principal, Service, ServiceError, Source};
use ttyward_core::session::SessionToken;
use ttyward_engine::reverse_terminal::{
    AuthFuture, Authenticator, ConsoleAccess, Denied, HostKey, Identity,
};

/// How often a console's session is checked (ended by an administrator,
/// account disabled, lifetime over). Each check also marks the session as
/// used, so a console in use does not run into the idle timeout: its own
/// inactivity time governs it.
pub const SESSION_CHECK: Duration = Duration::from_secs(2);

/// The host key's directory and file in the data directory.
const SSH_DIR: &str = "ssh";
const HOST_KEY_FILE: &str = "host_ed25519";

/// What the engine's reverse terminal ports need: the accounts and the
/// host key (made now if the data directory has none).
pub fn access(service: &Service) -> anyhow::Result<ConsoleAccess> {
    let host_key = host_key(service.dir())?;
    tracing::info!("reverse SSH host key {}", host_key.fingerprint());
    Ok(ConsoleAccess {
        authenticator: Arc::new(Accounts {
            service: service.clone(),
        }),
        host_key,
    })
}

/// `DIR/ssh/host_ed25519`, made when missing.
pub fn host_key(data_dir: &Path) -> anyhow::Result<HostKey> {
    let dir = data_dir.join(SSH_DIR);
    let path = dir.join(HOST_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            // OpenSSH refuses a host key others can read; so do we, by
            // putting the mode right.
            let mode = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{} was readable by others (mode {:o}); set to 0600",
                    path.display(),
                    mode & 0o777
                );
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            }
            return HostKey::from_openssh(&text).with_context(|| path.display().to_string());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let key = HostKey::generate()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // The umask may have taken bits away; make the mode exactly 0700.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    let tmp = dir.join(format!("{HOST_KEY_FILE}.new"));
    let write = || -> std::io::Result<()> {
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // create_new: a symbolic link planted under this name is not
        // followed.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        key.write_openssh(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write the SSH host key {}", path.display()))?;
    tracing::info!("made a new SSH host key in {}", path.display());
    Ok(key)
}

/// The engine's authenticator over the daemon's accounts.
struct Accounts {
    service: Service,
}

/// What a console login keeps: its session, to follow and end it.
struct Login {
    token: SessionToken,
    session_id: i64,
    source: Source,
    interface: Interface,
}

fn source(peer: SocketAddr) -> Source {
    Source::Net(peer.ip().to_canonical())
}

/// The text a refused login shows: the service's own words for what a
/// person can act on (the configured failure message, session limits),
/// nothing internal otherwise.
fn denied(e: ServiceError) -> Denied {
    let message = match e {
        ServiceError::LoginFailed { .. }
        | ServiceError::SessionLimit(_)
        | ServiceError::PasswordExpired => e.to_string(),
        other => {
            tracing::warn!("console login failed: {other}");
            "login is not possible now; try again later".to_owned()
        }
    };
    Denied { message }
}

impl Accounts {
    /// The identity of a login that succeeded: its group, as the session
    /// resolves (a password past its lifetime must be changed on the web
    /// console first).
    async fn identity(
        &self,
        ok: LoginOk,
        source: Source,
        interface: Interface,
    ) -> Result<Identity, Denied> {
        let caller = self
            .service
            .authenticate(&ok.token, source, interface)
            .await
            .map_err(denied)?;
        let login = Login {
            token: ok.token,
            session_id: ok.session_id,
            source,
            interface,
        };
        let Some(principal) = caller.principal else {
            return Err(denied(ServiceError::Unauthenticated));
        };
        if principal.must_change_password {
            let _ = self.service.logout(&caller_of(&principal, &login)).await;
            return Err(Denied {
                message:
                    "your password has expired; change it on the web console, then log in again"
                        .into(),
            });
        }
        Ok(Identity {
            account: principal.name,
            group: principal.group,
            login: Some(Arc::new(login)),
        })
    }
}

/// The caller a console login stands for (events name its account).
fn caller_of(principal: &Principal, login: &Login) -> Caller {
    Caller {
        principal: Some(Principal {
            session_id: Some(login.session_id),
            ..principal.clone()
        }),
        source: login.source,
        interface: login.interface,
    }
}

fn login_of(identity: &Identity) -> Option<&Login> {
    identity.login.as_ref()?.downcast_ref::<Login>()
}

/// A principal naming the identity's account (for events and logout).
fn principal_of(identity: &Identity) -> Principal {
    Principal {
        account_id: 0,
        name: identity.account.clone(),
        group: identity.group.clone(),
        permissions: Default::default(),
        session_id: None,
        must_change_password: false,
    }
}

impl Authenticator for Accounts {
    fn password<'a>(
        &'a self,
        name: &'a str,
        password: &'a str,
        peer: SocketAddr,
        interface: Interface,
    ) -> AuthFuture<'a, Result<Identity, Denied>> {
        Box::pin(async move {
            let from = source(peer);
            let ok = self
                .service
                .login(name, password, from, interface)
                .await
                .map_err(denied)?;
            self.identity(ok, from, interface).await
        })
    }

    fn key_authorized<'a>(&'a self, name: &'a str, key: &'a str) -> AuthFuture<'a, bool> {
        Box::pin(async move {
            self.service
                .ssh_key_authorized(name, key)
                .await
                .unwrap_or(false)
        })
    }

    fn public_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        peer: SocketAddr,
    ) -> AuthFuture<'a, Result<Identity, Denied>> {
        Box::pin(async move {
            let from = source(peer);
            let ok = self
                .service
                .login_with_key(name, key, from, Interface::Ssh)
                .await
                .map_err(denied)?;
            self.identity(ok, from, Interface::Ssh).await
        })
    }

    fn login_message(&self) -> String {
        self.service.config().security.login.message.clone()
    }

    fn refused(&self, identity: &Identity, peer: SocketAddr, port: u16) {
        let caller = Caller {
            principal: Some(principal_of(identity)),
            source: source(peer),
            interface: login_of(identity).map_or(Interface::Ssh, |l| l.interface),
        };
        self.service.audit(
            &caller,
            EventId::ConsoleAccessRefused,
            format!(
                "no permission for port {port}: group '{}' is not one of the port's console groups",
                identity.group
            ),
        );
    }

    fn ended<'a>(&'a self, identity: &'a Identity) -> AuthFuture<'a, String> {
        Box::pin(async move {
            let Some(login) = login_of(identity) else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(SESSION_CHECK).await;
                // A store hiccup (any other error) is no reason to cut a
                // console.
                if let Err(ServiceError::Unauthenticated) = self
                    .service
                    .authenticate(&login.token, login.source, login.interface)
                    .await
                {
                    return "the login session has ended (ended by an administrator, account disabled, or its lifetime is over)".to_owned();
                }
            }
        })
    }

    fn logout<'a>(&'a self, identity: &'a Identity, _peer: SocketAddr) -> AuthFuture<'a, ()> {
        Box::pin(async move {
            if let Some(login) = login_of(identity) {
                // An ended session is already gone: nothing to do.
                let _ = self
                    .service
                    .logout(&caller_of(&principal_of(identity), login))
                    .await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_is_made_once_with_private_modes() {
        let dir = std::env::temp_dir().join(format!("ttyward-hostkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let first = host_key(&dir).expect("made");
        let path = dir.join(SSH_DIR).join(HOST_KEY_FILE);
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join(SSH_DIR)), 0o700);
        let again = host_key(&dir).expect("read");
        assert_eq!(first.fingerprint(), again.fingerprint());
        // A key left readable by others is put right, not refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        host_key(&dir).expect("read");
        assert_eq!(mode(&path), 0o600);
        std::fs::write(&path, "not a key").expect("damage");
        let err = host_key(&dir).expect_err("damaged").to_string();
        assert!(err.contains(HOST_KEY_FILE), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
