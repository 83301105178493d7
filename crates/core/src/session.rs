//! Login sessions (seed "Session Control", security.md CR 2.5–2.7, 3.8).
//!
//! A session token is 256 bits from the OS CSPRNG, shown to its holder once
//! and stored only as its SHA-256 hash, so a copy of the database cannot be
//! replayed. A session ends after `idle_timeout_s` without use, after
//! `lifetime_s` whatever happens, at logout, when an administrator ends it,
//! and when its account is disabled or deleted (the rows cascade). Logins
//! beyond `max_per_account` or `max_total` live sessions are refused.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::login::SessionControl;
use crate::store::StoreError;

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;

/// A session token as given to its holder (hex). Never stored or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh token from the OS CSPRNG.
    pub fn generate() -> Result<SessionToken, StoreError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt {
            what: "random source",
            detail: e.to_string(),
        })?;
        Ok(SessionToken(hex(&bytes)))
    }

    /// A token presented by a client (not checked here).
    pub fn presented(text: &str) -> SessionToken {
        SessionToken(text.trim().to_owned())
    }

    /// The token text, to hand to its holder.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A live session, as listed to administrators (no token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Row id, used to end it.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The account's name.
    pub account: String,
    /// `web`, `api`, `cli`, `ssh`, `telnet`.
    pub interface: String,
    /// Where the login came from.
    pub source: Option<String>,
    /// Login time (Unix seconds).
    pub created_at: i64,
    /// Last use (Unix seconds).
    pub last_seen: i64,
}

/// Why a login could not get a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionLimit {
    /// The account has `max_per_account` live sessions.
    #[error(
        "this account already has {0} sessions; log out of one or ask an administrator to end one"
    )]
    PerAccount(u16),
    /// The device has `max_total` live sessions.
    #[error("the device already has {0} sessions; try again later")]
    Total(u16),
}

/// Start a session for `account_id`, within the limits.
pub fn create(
    conn: &Connection,
    control: &SessionControl,
    account_id: i64,
    interface: &str,
    source: Option<&str>,
    now: i64,
) -> Result<Result<(SessionToken, i64), SessionLimit>, StoreError> {
    purge_expired(conn, control, now)?;
    let mine: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sessions WHERE account_id = ?1",
        params![account_id],
        |r| r.get(0),
    )?;
    if mine >= i64::from(control.max_per_account) {
        return Ok(Err(SessionLimit::PerAccount(control.max_per_account)));
    }
    let all: i64 = conn.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?;
    if all >= i64::from(control.max_total) {
        return Ok(Err(SessionLimit::Total(control.max_total)));
    }
    let token = SessionToken::generate()?;
    conn.execute(
        "INSERT INTO sessions (token_hash, account_id, interface, source, created_at, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![token.digest(), account_id, interface, source, now],
    )?;
    Ok(Ok((token, conn.last_insert_rowid())))
}

/// What a presented token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// A live session, now touched as used.
    Live(SessionInfo),
    /// A session that passed its idle timeout or lifetime; it is deleted
    /// now (and the caller may record that it expired).
    Expired(SessionInfo),
    /// No such session: never issued, logged out or ended.
    Unknown,
}

impl Check {
    /// The session, if it is live.
    pub fn live(self) -> Option<SessionInfo> {
        match self {
            Check::Live(info) => Some(info),
            Check::Expired(_) | Check::Unknown => None,
        }
    }
}

/// Look up the session `token` belongs to and touch it as used now; an
/// expired one is deleted.
pub fn validate(
    conn: &Connection,
    control: &SessionControl,
    token: &SessionToken,
    now: i64,
) -> Result<Check, StoreError> {
    let Some(info) = conn
        .query_row(
            &format!("{SELECT} WHERE s.token_hash = ?1"),
            params![token.digest()],
            row_to_info,
        )
        .optional()?
    else {
        return Ok(Check::Unknown);
    };
    if expired(&info, control, now) {
        end(conn, info.id)?;
        return Ok(Check::Expired(info));
    }
    conn.execute(
        "UPDATE sessions SET last_seen = ?1 WHERE id = ?2",
        params![now, info.id],
    )?;
    Ok(Check::Live(SessionInfo {
        last_seen: now,
        ..info
    }))
}

fn expired(info: &SessionInfo, control: &SessionControl, now: i64) -> bool {
    now - info.last_seen >= i64::from(control.idle_timeout_s)
        || now - info.created_at >= i64::from(control.lifetime_s)
}

/// End one session; false if there was none.
pub fn end(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM sessions WHERE id = ?1", params![id])? > 0)
}

/// End the session holding `token` (logout); false if there was none.
pub fn end_token(conn: &Connection, token: &SessionToken) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        params![token.digest()],
    )? > 0)
}

/// End every session of an account; returns how many.
pub fn end_all_of(conn: &Connection, account_id: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE account_id = ?1",
        params![account_id],
    )?)
}

/// Live sessions, of one account or all, oldest first.
pub fn list(
    conn: &Connection,
    control: &SessionControl,
    account_id: Option<i64>,
    now: i64,
) -> Result<Vec<SessionInfo>, StoreError> {
    purge_expired(conn, control, now)?;
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE ?1 IS NULL OR s.account_id = ?1 ORDER BY s.created_at, s.id"
    ))?;
    let rows = stmt.query_map(params![account_id], row_to_info)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Delete expired sessions; returns how many.
pub fn purge_expired(
    conn: &Connection,
    control: &SessionControl,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE last_seen <= ?1 OR created_at <= ?2",
        params![
            now - i64::from(control.idle_timeout_s),
            now - i64::from(control.lifetime_s)
        ],
    )?)
}

const SELECT: &str =
    "SELECT s.id, s.account_id, a.name, s.interface, s.source, s.created_at, s.last_seen
     FROM sessions s JOIN accounts a ON a.id = s.account_id";

fn row_to_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        id: r.get(0)?,
        account_id: r.get(1)?,
        account: r.get(2)?,
        interface: r.get(3)?,
        source: r.get(4)?,
        created_at: r.get(5)?,
        last_seen: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn setup() -> (Store, crate::testutil::TempDir) {
        let dir = crate::testutil::tempdir();
        let store = Store::open(&dir).expect("store");
        store
            .call_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO groups VALUES ('Administrator', 1, '[]');
                     INSERT INTO accounts (id, name, group_name, active, password_hash, password_changed_at, created_at)
                     VALUES (1, 'admin', 'Administrator', 1, 'x', 0, 0), (2, 'op', 'Administrator', 1, 'x', 0, 0);",
                )?;
                Ok(())
            })
            .expect("fixture");
        (store, dir)
    }

    fn control() -> SessionControl {
        SessionControl {
            idle_timeout_s: 60,
            lifetime_s: 600,
            max_per_account: 2,
            max_total: 3,
        }
    }

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let (store, dir) = setup();
        let (token, stored) = store
            .call_blocking(|c| {
                let (t, _) =
                    create(c, &control(), 1, "web", Some("127.0.0.1"), 100)?.expect("room");
                let stored: Vec<u8> =
                    c.query_row("SELECT token_hash FROM sessions", [], |r| r.get(0))?;
                Ok((t, stored))
            })
            .expect("create");
        assert_eq!(token.expose().len(), 64, "256 bits in hex");
        assert_ne!(hex(&stored), token.expose(), "only the hash is stored");
        assert_ne!(SessionToken::generate().expect("t"), token);
        drop(dir);
    }

    #[test]
    fn idle_and_absolute_timeouts_end_sessions() {
        let (store, dir) = setup();
        store
            .call_blocking(|c| {
                let ctl = control();
                let (t, _) = create(c, &ctl, 1, "web", None, 0)?.expect("room");
                assert!(
                    validate(c, &ctl, &t, 59)?.live().is_some(),
                    "used within the idle time"
                );
                assert!(validate(c, &ctl, &t, 118)?.live().is_some());
                assert!(
                    validate(c, &ctl, &t, 178)?.live().is_none(),
                    "idle for 60 s"
                );
                let (t, _) = create(c, &ctl, 1, "web", None, 1000)?.expect("room");
                for now in (1050..1600).step_by(50) {
                    assert!(validate(c, &ctl, &t, now)?.live().is_some());
                }
                assert!(
                    validate(c, &ctl, &t, 1600)?.live().is_none(),
                    "lifetime over"
                );
                assert!(
                    validate(c, &ctl, &SessionToken::presented("nonsense"), 1)?
                        .live()
                        .is_none()
                );
                Ok(())
            })
            .expect("ok");
        drop(dir);
    }

    #[test]
    fn limits_per_account_and_in_total() {
        let (store, dir) = setup();
        store
            .call_blocking(|c| {
                let ctl = control();
                create(c, &ctl, 1, "web", None, 0)?.expect("1");
                create(c, &ctl, 1, "web", None, 0)?.expect("2");
                assert_eq!(
                    create(c, &ctl, 1, "web", None, 0)?.err(),
                    Some(SessionLimit::PerAccount(2))
                );
                create(c, &ctl, 2, "web", None, 0)?.expect("3");
                assert_eq!(
                    create(c, &ctl, 2, "web", None, 0)?.err(),
                    Some(SessionLimit::Total(3))
                );
                assert_eq!(list(c, &ctl, Some(1), 1)?.len(), 2);
                assert_eq!(end_all_of(c, 1)?, 2);
                assert_eq!(list(c, &ctl, None, 1)?.len(), 1);
                Ok(())
            })
            .expect("ok");
        drop(dir);
    }

    #[test]
    fn deleting_the_account_ends_its_sessions() {
        let (store, dir) = setup();
        store
            .call_blocking(|c| {
                let ctl = control();
                let (t, _) = create(c, &ctl, 2, "web", None, 0)?.expect("room");
                c.execute("DELETE FROM accounts WHERE id = 2", [])?;
                assert!(validate(c, &ctl, &t, 1)?.live().is_none());
                Ok(())
            })
            .expect("ok");
        drop(dir);
    }
}
