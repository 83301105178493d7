//! First use, login, sessions and lockout (seed §3.4, security.md CR 1.5,
//! 1.11, 2.5–2.7, 3.8).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Caller, Interface, Principal, Service, ServiceError, Source};
use crate::account;
use crate::event_log::EventId;
use crate::lockout;
use crate::password::PasswordHash;
use crate::permission::{ADMINISTRATOR, Permission};
use crate::session::{self, SessionInfo, SessionToken};
use crate::store::{StoreError, format_time as fmt_time, now_s};

/// The file in the data directory that holds the setup code until the first
/// Administrator exists.
pub const SETUP_CODE_FILE: &str = "setup-code";

/// Characters of a setup code: Crockford's base32 (no I, L, O, U), 5 bits
/// each; 20 of them are 100 bits.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARS: usize = 20;

/// A successful login.
#[derive(Debug)]
pub struct LoginOk {
    /// The session token: give it to the client, never log it.
    pub token: SessionToken,
    /// The session's id (for listing and ending it).
    pub session_id: i64,
    /// The account's name as stored.
    pub account: String,
    /// The password has expired: the session may only change it.
    pub must_change_password: bool,
}

fn code_digest(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

impl Service {
    /// Whether an active Administrator exists (until then every serial
    /// operation mode stays off).
    pub async fn has_administrator(&self) -> Result<bool, ServiceError> {
        Ok(self
            .inner
            .store
            .call(|c| account::active_administrators(c))
            .await?
            > 0)
    }

    /// Blocking [`Service::has_administrator`] for the command line.
    pub fn has_administrator_blocking(&self) -> Result<bool, ServiceError> {
        Ok(self
            .inner
            .store
            .call_blocking(|c| account::active_administrators(c))?
            > 0)
    }

    /// If no account exists yet, make a new one-time setup code, store its
    /// hash and write it to `DIR/setup-code` (0600); returns it. Each call
    /// replaces the previous code. `None` when an account exists.
    pub async fn issue_setup_code(&self) -> Result<Option<String>, ServiceError> {
        let mut bytes = [0u8; CODE_CHARS];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt {
            what: "random source",
            detail: e.to_string(),
        })?;
        let code: String = bytes
            .iter()
            .map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)]))
            .collect::<Vec<_>>()
            .chunks(5)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        let digest = code_digest(&code);
        let issued = self
            .inner
            .store
            .call(move |c| {
                let accounts: i64 = c.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?;
                if accounts > 0 {
                    c.execute("DELETE FROM setup_code", [])?;
                    return Ok(false);
                }
                c.execute(
                    "INSERT OR REPLACE INTO setup_code (id, code_hash, created_at) VALUES (1, ?1, ?2)",
                    params![digest, now_s()],
                )?;
                Ok(true)
            })
            .await?;
        let path = self.inner.dir.join(SETUP_CODE_FILE);
        if !issued {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_file(&path);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            writeln!(f, "{code}")
        };
        write().map_err(|source| StoreError::DataDir {
            path: path.clone(),
            source,
        })?;
        Ok(Some(code))
    }

    /// Create the first Administrator. From the host's command line no code
    /// is needed (the data directory is the trust anchor); from the network
    /// the one-time setup code is required and dies when used.
    pub async fn create_first_admin(
        &self,
        caller: &Caller,
        name: &str,
        password: &str,
        setup_code: Option<&str>,
    ) -> Result<(), ServiceError> {
        account::check_name(name).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.config()
            .security
            .password_policy
            .check(name, password)?;
        let code = match (caller.source, setup_code) {
            (Source::Local, _) => None,
            (Source::Net(_), Some(code)) => Some(code_digest(code)),
            (Source::Net(_), None) => {
                return Err(ServiceError::Invalid(
                    "the setup code is required; it is in the data directory's setup-code file and in the daemon's log".into(),
                ));
            }
        };
        let hash = self
            .inner
            .hasher
            .hash(password)
            .await
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let (name_owned, hash) = (name.to_owned(), hash.as_str().to_owned());
        let outcome = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let accounts: i64 = tx.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?;
                if accounts > 0 {
                    return Ok(Err("an account already exists; log in and create accounts under Account Management"));
                }
                if let Some(digest) = code {
                    let stored: Option<Vec<u8>> = tx
                        .query_row("SELECT code_hash FROM setup_code WHERE id = 1", [], |r| r.get(0))
                        .optional()?;
                    if stored.as_deref() != Some(digest.as_slice()) {
                        return Ok(Err("the setup code is wrong or has been used"));
                    }
                }
                account::insert(&tx, &name_owned, ADMINISTRATOR, &hash, now_s())?;
                tx.execute("DELETE FROM setup_code", [])?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await?;
        match outcome {
            Ok(()) => {
                let _ = std::fs::remove_file(self.inner.dir.join(SETUP_CODE_FILE));
                if setup_code.is_some() {
                    self.audit(caller, EventId::SetupCodeUsed, "setup code used");
                }
                self.audit(
                    caller,
                    EventId::FirstAdminCreated,
                    format!("first Administrator '{name}' created"),
                );
                Ok(())
            }
            Err(why) => {
                if code_refused(why) {
                    self.audit(caller, EventId::SetupCodeRefused, why);
                }
                Err(ServiceError::Conflict(why.into()))
            }
        }
    }

    /// Log in with account name and password from `source`.
    ///
    /// Refused — with the configured failure message whatever the reason —
    /// when the pair or the source is locked out (even with the right
    /// password), the account is unknown or disabled, or the password is
    /// wrong. Each failure counts toward the lockout.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        source: Source,
        interface: Interface,
    ) -> Result<LoginOk, ServiceError> {
        let config = self.config();
        let login = &config.security.login;
        let failed = || ServiceError::LoginFailed {
            message: login.failure_message().to_owned(),
        };
        let src = source.to_string();
        let caller = Caller {
            principal: None,
            source,
            interface,
        };
        let (key, src2) = (name.to_owned(), src.clone());
        let found = self
            .inner
            .store
            .call(move |c| {
                let now = now_s();
                if let Some(until) = lockout::locked_until(c, &key, &src2, now)? {
                    return Ok(Err(until));
                }
                let account = account::find(c, &key)?;
                let hash = match &account {
                    Some(a) => account::password_hash(c, a.id)?,
                    None => None,
                };
                Ok(Ok(account.zip(hash)))
            })
            .await?;
        let found = match found {
            Err(until) => {
                self.audit_login_failure(
                    &caller,
                    name,
                    &format!("refused: locked out until {}", fmt_time(until)),
                );
                return Err(failed());
            }
            Ok(f) => f,
        };
        let verified = match &found {
            Some((a, hash)) if a.active => {
                self.inner
                    .hasher
                    .verify(password, &PasswordHash::from_stored(hash.clone()))
                    .await
            }
            _ => {
                // Same cost as a real check: timing must not tell which
                // names exist.
                self.inner.hasher.verify_dummy(password).await;
                false
            }
        };
        let Some((account, _)) = found.filter(|_| verified) else {
            let why = "wrong account name or password";
            return Err(self.refuse_login(&caller, name, why).await);
        };
        let expired = config
            .security
            .password_policy
            .is_expired(account.password_changed_at, now_s());
        let how = format!("logged in via {}", interface.name());
        let (caller, token, session_id) = self.open_login_session(caller, &account, how).await?;
        if expired {
            self.audit(
                &caller,
                EventId::PasswordExpired,
                "password expired: change required",
            );
        }
        Ok(LoginOk {
            token,
            session_id,
            account: account.name,
            must_change_password: expired,
        })
    }

    /// A refused login (wrong password, unknown or disabled account, a key
    /// that is not the account's): counted toward the lockout and recorded,
    /// with the lock it causes; returns the error to give, which says only
    /// the configured failure message whatever the reason.
    pub(super) async fn refuse_login(
        &self,
        caller: &Caller,
        name: &str,
        why: &str,
    ) -> ServiceError {
        let config = self.config();
        let login = &config.security.login;
        let src = caller.source.to_string();
        let settings = login.lockout.clone();
        let (key, src2) = (name.to_owned(), src.clone());
        let outcome = self
            .inner
            .store
            .call(move |c| lockout::record_failure(c, &settings, &key, &src2, now_s()))
            .await;
        self.audit_login_failure(caller, name, why);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return e.into(),
        };
        if outcome.locked_pair || outcome.locked_source {
            let what = if outcome.locked_source {
                format!("source {src} locked out until {}", fmt_time(outcome.until))
            } else {
                format!(
                    "account '{name}' locked out for {src} until {}",
                    fmt_time(outcome.until)
                )
            };
            self.audit(caller, EventId::AccountLocked, what);
        }
        ServiceError::LoginFailed {
            message: login.failure_message().to_owned(),
        }
    }

    /// A login that passed: clear the failure count, open a session within
    /// Session Control's limits, record `how`. Returns the caller as that
    /// account, the token and the session id.
    pub(super) async fn open_login_session(
        &self,
        caller: Caller,
        account: &crate::account::Account,
        how: String,
    ) -> Result<(Caller, SessionToken, i64), ServiceError> {
        let control = self.config().security.login.sessions.clone();
        let (id, key, src, iface) = (
            account.id,
            account.name.clone(),
            caller.source.to_string(),
            caller.interface.name(),
        );
        let created = self
            .inner
            .store
            .call(move |c| {
                lockout::record_success(c, &key, &src)?;
                session::create(c, &control, id, iface, Some(&src), now_s())
            })
            .await?;
        let caller = Caller {
            principal: Some(principal_stub(&account.name)),
            ..caller
        };
        match created {
            Ok((token, session_id)) => {
                self.audit(&caller, EventId::LoginSucceeded, how);
                Ok((caller, token, session_id))
            }
            Err(limit) => {
                self.audit(&caller, EventId::SessionLimitReached, limit.to_string());
                Err(limit.into())
            }
        }
    }

    pub(super) fn audit_login_failure(&self, caller: &Caller, name: &str, why: &str) {
        // The name typed is recorded as the user (it may not exist), cut
        // short so a pasted password cannot fill the log.
        let typed: String = name.chars().take(64).collect();
        let caller = Caller {
            principal: Some(principal_stub(&typed)),
            ..caller.clone()
        };
        self.audit(&caller, EventId::LoginFailed, why);
    }

    /// The caller a session token stands for.
    pub async fn authenticate(
        &self,
        token: &SessionToken,
        source: Source,
        interface: Interface,
    ) -> Result<Caller, ServiceError> {
        if crate::api_token::is_api_token(token.expose()) {
            return self.authenticate_api_token(token.expose(), source).await;
        }
        let config = self.config();
        let control = config.security.login.sessions.clone();
        let token = token.clone();
        let found = self
            .inner
            .store
            .call(move |c| {
                let s = match session::validate(c, &control, &token, now_s())? {
                    session::Check::Live(s) => s,
                    session::Check::Expired(s) => return Ok(Err(Some(s))),
                    session::Check::Unknown => return Ok(Err(None)),
                };
                let Some(a) = account::get(c, s.account_id)?.filter(|a| a.active) else {
                    return Ok(Err(None));
                };
                let group = account::group(c, &a.group)?;
                Ok(Ok((s, a, group)))
            })
            .await?;
        let (s, a, group) = match found {
            Ok(found) => found,
            Err(expired) => {
                if let Some(s) = expired {
                    let caller = Caller {
                        principal: Some(principal_stub(&s.account)),
                        source,
                        interface,
                    };
                    self.audit(
                        &caller,
                        EventId::SessionExpired,
                        format!(
                            "session {} of '{}' expired (idle timeout or lifetime)",
                            s.id, s.account
                        ),
                    );
                }
                return Err(ServiceError::Unauthenticated);
            }
        };
        let must_change_password = config
            .security
            .password_policy
            .is_expired(a.password_changed_at, now_s());
        Ok(Caller {
            principal: Some(Principal {
                account_id: a.id,
                name: a.name,
                group: a.group,
                permissions: group.map(|g| g.permissions).unwrap_or_default(),
                session_id: Some(s.id),
                must_change_password,
            }),
            source,
            interface,
        })
    }

    /// End the caller's own session.
    pub async fn logout(&self, caller: &Caller) -> Result<(), ServiceError> {
        let Some(id) = caller.principal.as_ref().and_then(|p| p.session_id) else {
            return Err(ServiceError::Unauthenticated);
        };
        self.inner.store.call(move |c| session::end(c, id)).await?;
        self.audit(caller, EventId::Logout, "logged out");
        Ok(())
    }

    /// Live sessions: the caller's own, or everyone's for those who may
    /// manage accounts.
    pub async fn sessions(&self, caller: &Caller) -> Result<Vec<SessionInfo>, ServiceError> {
        let own = match &caller.principal {
            Some(p) if !p.permissions.contains(&Permission::AccountsView) => Some(p.account_id),
            _ => None,
        };
        let control = self.config().security.login.sessions.clone();
        Ok(self
            .inner
            .store
            .call(move |c| session::list(c, &control, own, now_s()))
            .await?)
    }

    /// End a session: one's own always, anyone's with `accounts.change`.
    pub async fn end_session(&self, caller: &Caller, id: i64) -> Result<(), ServiceError> {
        let mine = caller.principal.as_ref().map(|p| p.account_id);
        let owner: Option<(i64, String)> = self
            .inner
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT s.account_id, a.name FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
            })
            .await?;
        let Some((owner, owner_name)) = owner else {
            return Err(ServiceError::NotFound {
                what: "session",
                name: id.to_string(),
            });
        };
        if mine != Some(owner) {
            caller.require(Permission::AccountsChange)?;
        }
        self.inner.store.call(move |c| session::end(c, id)).await?;
        self.audit(
            caller,
            EventId::SessionEnded,
            format!("session {id} of '{owner_name}' ended"),
        );
        Ok(())
    }

    /// Lift lockouts of an account (all sources) or of a source address.
    pub async fn unlock(
        &self,
        caller: &Caller,
        account: Option<&str>,
        source: Option<&str>,
    ) -> Result<usize, ServiceError> {
        caller.require(Permission::SecurityChange)?;
        let (a, s) = (account.map(str::to_owned), source.map(str::to_owned));
        let n = self
            .inner
            .store
            .call(move |c| {
                let mut n = 0;
                if let Some(a) = &a {
                    n += lockout::unlock_account(c, a)?;
                }
                if let Some(s) = &s {
                    n += lockout::unlock_source(c, s)?;
                }
                Ok(n)
            })
            .await?;
        let what = [
            account.map(|a| format!("account '{a}'")),
            source.map(|s| format!("source {s}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ");
        self.audit(caller, EventId::AccountUnlocked, format!("{what} unlocked"));
        Ok(n)
    }
}

fn code_refused(why: &str) -> bool {
    why.starts_with("the setup code")
}

/// A principal that only names someone (for events before a session
/// exists).
fn principal_stub(name: &str) -> Principal {
    Principal {
        account_id: 0,
        name: name.to_owned(),
        group: String::new(),
        permissions: Default::default(),
        session_id: None,
        must_change_password: false,
    }
}
