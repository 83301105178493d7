//! Accounts and groups as stored (seed §3.4 "Accounts", "Groups").
//!
//! This module is the SQL; the rules (who may do what, the last active
//! Administrator, auditing) are in [`crate::service`]. Names are unique
//! without regard to case, so "Admin" and "admin" cannot both exist.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::permission::{Group, Permission, Permissions};
use crate::store::StoreError;

/// Longest account or group name.
pub const MAX_NAME_CHARS: usize = 32;

/// An account as listed (no password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Unique name (case-insensitive).
    pub name: String,
    /// Its group's name.
    pub group: String,
    /// Disabled accounts cannot log in and have no sessions.
    pub active: bool,
    /// When the password was last set (Unix seconds).
    pub password_changed_at: i64,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

/// Why a name is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadName(pub &'static str);

/// Check an account or group name: 1–32 characters, letters, digits and
/// `.` `_` `-`, starting with a letter or digit. Keeping names plain means
/// they are safe in logs, CSV exports, shell commands and the SSH login.
pub fn check_name(name: &str) -> Result<(), BadName> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(BadName("a name must not be empty")),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(BadName("a name must start with a letter or digit"));
        }
        Some(_) => {}
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(BadName("a name must be at most 32 characters"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(BadName(
            "a name may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

const SELECT: &str =
    "SELECT id, name, group_name, active, password_changed_at, created_at FROM accounts";

fn row_to_account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        group: r.get(2)?,
        active: r.get(3)?,
        password_changed_at: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// Every account, by name.
pub fn list(conn: &Connection) -> Result<Vec<Account>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY name"))?;
    let rows = stmt.query_map([], row_to_account)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The account called `name` (any case).
pub fn find(conn: &Connection, name: &str) -> Result<Option<Account>, StoreError> {
    Ok(conn
        .query_row(
            &format!("{SELECT} WHERE name = ?1"),
            params![name],
            row_to_account,
        )
        .optional()?)
}

/// The account with row id `id`.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Account>, StoreError> {
    Ok(conn
        .query_row(
            &format!("{SELECT} WHERE id = ?1"),
            params![id],
            row_to_account,
        )
        .optional()?)
}

/// The stored password hash (PHC string) of an account.
pub fn password_hash(conn: &Connection, id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT password_hash FROM accounts WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Insert an account; `Ok(None)` when the name is taken.
pub fn insert(
    conn: &Connection,
    name: &str,
    group: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let r = conn.execute(
        "INSERT INTO accounts (name, group_name, active, password_hash, password_changed_at, created_at)
         VALUES (?1, ?2, 1, ?3, ?4, ?4)",
        params![name, group, password_hash, now],
    );
    match r {
        Ok(_) => Ok(Some(conn.last_insert_rowid())),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Enable or disable.
pub fn set_active(conn: &Connection, id: i64, active: bool) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE accounts SET active = ?1 WHERE id = ?2",
        params![active, id],
    )? > 0)
}

/// Move to another group.
pub fn set_group(conn: &Connection, id: i64, group: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE accounts SET group_name = ?1 WHERE id = ?2",
        params![group, id],
    )? > 0)
}

/// Replace the password hash.
pub fn set_password(conn: &Connection, id: i64, hash: &str, now: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE accounts SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
        params![hash, now, id],
    )? > 0)
}

/// Delete (its sessions go with it).
pub fn delete(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM accounts WHERE id = ?1", params![id])? > 0)
}

/// Active accounts in the Administrator group.
pub fn active_administrators(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM accounts WHERE active = 1 AND group_name = ?1",
        params![crate::permission::ADMINISTRATOR],
        |r| r.get(0),
    )?)
}

/// Make sure the built-in groups exist with their fixed permissions.
pub fn ensure_builtin_groups(conn: &Connection) -> Result<(), StoreError> {
    for g in Group::builtins() {
        conn.execute(
            "INSERT INTO groups (name, builtin, permissions) VALUES (?1, 1, ?2)
             ON CONFLICT (name) DO UPDATE SET builtin = 1, permissions = excluded.permissions",
            params![g.name, permissions_json(&g.permissions)],
        )?;
    }
    Ok(())
}

fn permissions_json(p: &Permissions) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "[]".into())
}

fn row_to_group(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, bool, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn to_group((name, builtin, perms): (String, bool, String)) -> Result<Group, StoreError> {
    // Unknown names (from a newer build) are skipped rather than fatal.
    let names: Vec<String> = serde_json::from_str(&perms).map_err(|e| StoreError::Corrupt {
        what: "group permissions",
        detail: e.to_string(),
    })?;
    Ok(Group {
        name,
        builtin,
        permissions: names
            .iter()
            .filter_map(|n| Permission::from_name(n))
            .collect(),
    })
}

/// Every group, built-in first.
pub fn groups(conn: &Connection) -> Result<Vec<Group>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, builtin, permissions FROM groups ORDER BY builtin DESC, name")?;
    let rows = stmt.query_map([], row_to_group)?;
    rows.map(|r| to_group(r?)).collect()
}

/// The group called `name` (any case).
pub fn group(conn: &Connection, name: &str) -> Result<Option<Group>, StoreError> {
    conn.query_row(
        "SELECT name, builtin, permissions FROM groups WHERE name = ?1",
        params![name],
        row_to_group,
    )
    .optional()?
    .map(to_group)
    .transpose()
}

/// Create or replace a custom group; false if a built-in has that name.
pub fn put_group(
    conn: &Connection,
    name: &str,
    permissions: &Permissions,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "INSERT INTO groups (name, builtin, permissions) VALUES (?1, 0, ?2)
         ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions WHERE builtin = 0",
        params![name, permissions_json(permissions)],
    )? > 0)
}

/// Accounts in a group.
pub fn members(conn: &Connection, group: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM accounts WHERE group_name = ?1",
        params![group],
        |r| r.get(0),
    )?)
}

/// Delete a custom group (the caller checks it has no members).
pub fn delete_group(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM groups WHERE name = ?1 AND builtin = 0",
        params![name],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn names_are_plain_and_bounded() {
        assert!(check_name("admin").is_ok());
        assert!(check_name("ops.team-2_b").is_ok());
        for bad in ["", "-x", "a b", "é", "x;rm", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_unique_in_any_case_and_groups_persist() {
        let dir = crate::testutil::tempdir();
        let store = Store::open(&dir).expect("store");
        store
            .call_blocking(|c| {
                ensure_builtin_groups(c)?;
                let id = insert(c, "Admin", "Administrator", "h", 5)?.expect("new");
                assert_eq!(insert(c, "admin", "Operator", "h", 5)?, None);
                assert_eq!(find(c, "ADMIN")?.map(|a| a.id), Some(id));
                assert_eq!(active_administrators(c)?, 1);
                set_active(c, id, false)?;
                assert_eq!(active_administrators(c)?, 0);
                let mut p = Permissions::new();
                p.insert(Permission::SerialView);
                assert!(put_group(c, "viewers", &p)?);
                assert!(
                    !put_group(c, "operator", &p)?,
                    "built-ins cannot be replaced"
                );
                assert_eq!(group(c, "VIEWERS")?.map(|g| g.permissions), Some(p));
                assert_eq!(groups(c)?.len(), 3);
                assert!(delete_group(c, "viewers")?);
                assert!(!delete_group(c, "Operator")?);
                Ok(())
            })
            .expect("ok");
        drop(dir);
    }
}
