//! Schema versions. Each migration runs once, in one transaction, and bumps
//! `PRAGMA user_version`; a database newer than this build is refused rather
//! than guessed at.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The schema version this build writes.
pub const VERSION: i64 = 4;

/// Migration `n` brings the schema from version `n` to `n + 1`.
fn migrations() -> [String; 4] {
    [
        format!("{V1}\n{}", crate::event_log::SCHEMA),
        V2.to_owned(),
        // Version 3: an index for the event log's category + severity
        // filter.
        crate::event_log::store::SEVERITY_CATEGORY_INDEX.to_owned(),
        V4.to_owned(),
    ]
}

const V1: &str = "
CREATE TABLE config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    document TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);
CREATE TABLE groups (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    builtin INTEGER NOT NULL,
    permissions TEXT NOT NULL
);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    group_name TEXT NOT NULL REFERENCES groups(name) ON UPDATE CASCADE,
    active INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    password_changed_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    interface TEXT NOT NULL,
    source TEXT,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);
-- account '' = the source address as a whole (see crate::lockout)
CREATE TABLE login_failures (
    account TEXT NOT NULL COLLATE NOCASE,
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    PRIMARY KEY (account, source)
);
CREATE TABLE setup_code (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// Version 2: long-lived API tokens for scripts (see `crate::api_token`).
const V2: &str = "
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER,
    last_used INTEGER,
    last_source TEXT
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);
";

/// Version 4: the SSH public keys an account may log in with on the
/// reverse SSH consoles (see `crate::service::ssh_keys`). `key` is the
/// normalised OpenSSH line "type base64", unique per account.
const V4: &str = "
CREATE TABLE ssh_keys (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, key)
);
";

/// Bring `conn` up to [`VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: VERSION,
        });
    }
    for (from, sql) in migrations()
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        // IMMEDIATE: two processes starting at once cannot both migrate.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i64::try_from(from).unwrap_or(i64::MAX) {
            continue; // the other process did it
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(from + 1).unwrap_or(VERSION),
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_a_version_2_database_keeping_its_events() {
        let dir = crate::testutil::tempdir();
        let path = dir.join("v2.db");
        let mut conn = Connection::open(&path).expect("open");
        // A database as ttyward with schema version 2 left it.
        for sql in migrations().iter().take(2) {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
        conn.execute(
            "INSERT INTO events (time_ms, event, category, severity, message)
             VALUES (1, 301, 3, 2, 'wrong password')",
            [],
        )
        .expect("event");
        migrate(&mut conn, &path).expect("migrate");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, VERSION);
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema
                 WHERE type = 'index' AND name = 'events_severity_category'",
                [],
                |r| r.get(0),
            )
            .expect("index");
        assert_eq!(indexes, 1);
        let events: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .expect("events");
        assert_eq!(events, 1);
        // Running again changes nothing.
        migrate(&mut conn, &path).expect("migrate again");
        drop(conn);
        drop(dir);
    }

    #[test]
    fn upgrades_a_version_3_database_with_ssh_keys_that_follow_their_account() {
        let dir = crate::testutil::tempdir();
        let path = dir.join("v3.db");
        let mut conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "foreign_keys", true).expect("fk");
        for sql in migrations().iter().take(3) {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.pragma_update(None, "user_version", 3)
            .expect("version");
        crate::account::ensure_builtin_groups(&conn).expect("groups");
        let id = crate::account::insert(&conn, "alice", "Administrator", "hash", 1)
            .expect("account")
            .expect("new name");
        migrate(&mut conn, &path).expect("migrate");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, 4);
        let add = |key: &str| {
            conn.execute(
                "INSERT INTO ssh_keys (account_id, key, comment, created_at) VALUES (?1, ?2, '', 1)",
                rusqlite::params![id, key],
            )
        };
        add("ssh-ed25519 AAAA").expect("key");
        assert!(
            add("ssh-ed25519 AAAA").is_err(),
            "a key is unique per account"
        );
        crate::account::delete(&conn, id).expect("delete");
        let keys: i64 = conn
            .query_row("SELECT COUNT(*) FROM ssh_keys", [], |r| r.get(0))
            .expect("count");
        assert_eq!(keys, 0, "keys go with their account");
    }
}
