//! Long-lived API tokens for scripts (issue 4: "API tokens an
//! Administrator can create, list and revoke").
//!
//! A token acts as an account: it carries that account's group
//! permissions as they are when it is used, dies with the account (rows
//! cascade) and does nothing while the account is disabled. Like session
//! tokens it holds 256 bits from the OS CSPRNG and is stored only as its
//! SHA-256 hash; the `twt_` prefix tells it apart from a session token (and
//! lets secret scanners recognise a leaked one). It expires at
//! `expires_at` if one was set; idle and session limits do not apply,
//! since scripts run unattended.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// What every API token starts with.
pub const PREFIX: &str = "twt_";

/// Most tokens that may exist (each one is a standing credential).
pub const MAX_TOKENS: i64 = 64;

/// Whether `presented` looks like an API token rather than a session.
pub fn is_api_token(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// A new token's text: shown once to its creator, never stored.
pub fn generate() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt {
        what: "random source",
        detail: e.to_string(),
    })?;
    Ok(format!("{PREFIX}{}", crate::session::hex(&bytes)))
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// A token as listed (never its text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    /// Id, to revoke it.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// The account it acts as.
    pub account: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it stops working (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// Last use (Unix seconds).
    pub last_used: Option<i64>,
    /// Where it was last used from.
    pub last_source: Option<String>,
}

const SELECT: &str = "SELECT t.id, t.name, a.name, t.created_at, t.created_by, t.expires_at, t.last_used, t.last_source
     FROM api_tokens t JOIN accounts a ON a.id = t.account_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        account: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        expires_at: r.get(5)?,
        last_used: r.get(6)?,
        last_source: r.get(7)?,
    })
}

/// Store a token for `account_id`; `None` when [`MAX_TOKENS`] exist.
pub fn insert(
    conn: &Connection,
    token: &str,
    name: &str,
    account_id: i64,
    created_by: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM api_tokens", [], |r| r.get(0))?;
    if count >= MAX_TOKENS {
        return Ok(None);
    }
    conn.execute(
        "INSERT INTO api_tokens (name, token_hash, account_id, created_at, created_by, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![name, digest(token), account_id, now, created_by, expires_at],
    )?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Every token, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<ApiTokenInfo>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY t.id"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revoke a token; false if there was none.
pub fn revoke(conn: &Connection, id: i64) -> Result<Option<ApiTokenInfo>, StoreError> {
    let info = conn
        .query_row(&format!("{SELECT} WHERE t.id = ?1"), params![id], row)
        .optional()?;
    conn.execute("DELETE FROM api_tokens WHERE id = ?1", params![id])?;
    Ok(info)
}

/// The account id `token` acts as, recording the use; `None` if unknown or
/// expired.
pub fn validate(
    conn: &Connection,
    token: &str,
    source: &str,
    now: i64,
) -> Result<Option<(i64, ApiTokenInfo)>, StoreError> {
    let found = conn
        .query_row(
            &format!("{SELECT} WHERE t.token_hash = ?1"),
            params![digest(token)],
            row,
        )
        .optional()?;
    let Some(info) = found else {
        return Ok(None);
    };
    if info.expires_at.is_some_and(|t| now >= t) {
        return Ok(None);
    }
    conn.execute(
        "UPDATE api_tokens SET last_used = ?1, last_source = ?2 WHERE id = ?3",
        params![now, source, info.id],
    )?;
    let account_id: i64 = conn.query_row(
        "SELECT account_id FROM api_tokens WHERE id = ?1",
        params![info.id],
        |r| r.get(0),
    )?;
    Ok(Some((account_id, info)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn with_account<T: Send + 'static>(
        f: impl FnOnce(&Connection, i64) -> T + Send + 'static,
    ) -> T {
        let dir = crate::testutil::tempdir();
        let store = Store::open(&dir).expect("store");
        store
            .call_blocking(move |c| {
                crate::account::ensure_builtin_groups(c)?;
                let id = crate::account::insert(c, "robot", "Operator", "$argon2id$x", 0)?
                    .expect("new account");
                Ok(f(c, id))
            })
            .expect("store call")
    }

    #[test]
    fn tokens_are_prefixed_256_bit_and_distinct() {
        let a = generate().expect("token");
        let b = generate().expect("token");
        assert!(is_api_token(&a) && a.len() == PREFIX.len() + 64, "{a}");
        assert_ne!(a, b);
        assert!(!is_api_token(&"0".repeat(64)));
    }

    #[test]
    fn a_stored_token_validates_records_its_use_and_dies_when_revoked() {
        with_account(|c, account| {
            let t = generate().expect("token");
            let id = insert(c, &t, "backup script", account, "admin", None, 10)
                .expect("insert")
                .expect("room");
            let (who, info) = validate(c, &t, "192.0.2.7", 20)
                .expect("query")
                .expect("valid");
            assert_eq!(
                (who, info.id, info.name.as_str()),
                (account, id, "backup script")
            );
            let listed = list(c).expect("list");
            assert_eq!(listed[0].last_used, Some(20));
            assert_eq!(listed[0].last_source.as_deref(), Some("192.0.2.7"));
            assert!(
                validate(c, "twt_nonsense", "x", 20)
                    .expect("query")
                    .is_none()
            );
            assert!(revoke(c, id).expect("revoke").is_some());
            assert!(validate(c, &t, "x", 21).expect("query").is_none());
        });
    }

    #[test]
    fn an_expired_token_is_refused() {
        with_account(|c, account| {
            let t = generate().expect("token");
            insert(c, &t, "short", account, "admin", Some(100), 10).expect("insert");
            assert!(validate(c, &t, "x", 99).expect("query").is_some());
            assert!(validate(c, &t, "x", 100).expect("query").is_none());
        });
    }

    #[test]
    fn tokens_die_with_their_account() {
        with_account(|c, account| {
            let t = generate().expect("token");
            insert(c, &t, "x", account, "admin", None, 10).expect("insert");
            c.execute("DELETE FROM accounts WHERE id = ?1", params![account])
                .expect("delete");
            assert!(validate(c, &t, "x", 11).expect("query").is_none());
        });
    }
}
