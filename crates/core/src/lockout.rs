//! Login lockout (seed §3.4 "Login Lockout", security.md CR 1.11).
//!
//! Failures are counted for the (account, source address) pair and for the
//! source address alone. When either count reaches the maximum, logins for
//! that pair (or from that address) are refused — even with the right
//! password — until the lockout time has passed. Counting the pair instead
//! of the account alone means an attacker elsewhere cannot lock the
//! administrator out of their own desk; counting the source catches one
//! address trying many accounts. Locks live in the store, so a restart does
//! not lift them. `ttyward admin unlock` lifts them early.

use rusqlite::{Connection, OptionalExtension, params};

use crate::login::LockoutSettings;
use crate::store::StoreError;

/// The account value that stands for "any account" (the source's own row).
const ANY_ACCOUNT: &str = "";

/// What a failure led to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureOutcome {
    /// This failure locked the account for this source.
    pub locked_pair: bool,
    /// This failure locked the source address.
    pub locked_source: bool,
    /// Until when (Unix seconds), when something was locked.
    pub until: i64,
}

/// If logins of `account` from `source` are locked at `now`, until when.
pub fn locked_until(
    conn: &Connection,
    account: &str,
    source: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let until: Option<i64> = conn
        .query_row(
            "SELECT MAX(locked_until) FROM login_failures
             WHERE source = ?1 AND (account = ?2 OR account = ?3)",
            params![source, account, ANY_ACCOUNT],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(until.filter(|&u| u > now))
}

/// Count a failed login; lock when the maximum is reached.
pub fn record_failure(
    conn: &Connection,
    settings: &LockoutSettings,
    account: &str,
    source: &str,
    now: i64,
) -> Result<FailureOutcome, StoreError> {
    let mut outcome = FailureOutcome::default();
    if !settings.enabled {
        return Ok(outcome);
    }
    for (who, is_pair) in [(account, true), (ANY_ACCOUNT, false)] {
        let row: Option<(i64, i64)> = conn
            .query_row(
                "SELECT failures, last_failure FROM login_failures WHERE account = ?1 AND source = ?2",
                params![who, source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let window = i64::from(settings.lockout_s);
        let mut failures = match row {
            Some((_, last)) if settings.reset_counter && now - last > window => 0,
            Some((n, _)) => n,
            None => 0,
        };
        failures += 1;
        let mut locked_until = 0;
        if failures >= i64::from(settings.max_failures) {
            // The count starts over once the lock has run out.
            failures = 0;
            locked_until = now + window;
            outcome.until = locked_until;
            if is_pair {
                outcome.locked_pair = true;
            } else {
                outcome.locked_source = true;
            }
        }
        conn.execute(
            "INSERT INTO login_failures (account, source, failures, last_failure, locked_until)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, source) DO UPDATE SET
                failures = excluded.failures,
                last_failure = excluded.last_failure,
                locked_until = MAX(login_failures.locked_until, excluded.locked_until)",
            params![who, source, failures, now, locked_until],
        )?;
    }
    Ok(outcome)
}

/// A successful login clears the pair's count (not the source's: one good
/// password does not excuse a spray of bad ones from the same address).
pub fn record_success(conn: &Connection, account: &str, source: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM login_failures WHERE account = ?1 AND source = ?2",
        params![account, source],
    )?;
    Ok(())
}

/// Lift every lock and count of `account`; returns how many were lifted.
pub fn unlock_account(conn: &Connection, account: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM login_failures WHERE account = ?1 AND account <> ''",
        params![account],
    )?)
}

/// Lift every lock and count of a source address.
pub fn unlock_source(conn: &Connection, source: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM login_failures WHERE source = ?1",
        params![source],
    )?)
}

/// Forget counts and locks that no longer matter (housekeeping).
pub fn purge(conn: &Connection, settings: &LockoutSettings, now: i64) -> Result<usize, StoreError> {
    let horizon = now - i64::from(settings.lockout_s);
    Ok(conn.execute(
        "DELETE FROM login_failures WHERE locked_until <= ?1 AND last_failure < ?2",
        params![now, horizon],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(
            "CREATE TABLE login_failures (
                account TEXT NOT NULL COLLATE NOCASE, source TEXT NOT NULL,
                failures INTEGER NOT NULL, last_failure INTEGER NOT NULL,
                locked_until INTEGER NOT NULL, PRIMARY KEY (account, source));",
        )
        .expect("schema");
        c
    }

    fn settings() -> LockoutSettings {
        LockoutSettings {
            enabled: true,
            max_failures: 3,
            lockout_s: 60,
            reset_counter: true,
        }
    }

    #[test]
    fn locks_pair_after_max_failures_and_lifts_after_the_lockout_time() {
        let c = db();
        let s = settings();
        for t in 0..2 {
            let o = record_failure(&c, &s, "admin", "10.0.0.9", 100 + t).expect("fail");
            assert!(!o.locked_pair);
        }
        assert_eq!(locked_until(&c, "admin", "10.0.0.9", 102).expect("q"), None);
        let o = record_failure(&c, &s, "admin", "10.0.0.9", 102).expect("fail");
        assert!(o.locked_pair && o.locked_source);
        assert_eq!(
            locked_until(&c, "ADMIN", "10.0.0.9", 103).expect("q"),
            Some(162)
        );
        assert_eq!(locked_until(&c, "admin", "10.0.0.9", 162).expect("q"), None);
    }

    #[test]
    fn another_address_is_not_locked_out() {
        let c = db();
        let s = settings();
        for t in 0..3 {
            record_failure(&c, &s, "admin", "10.0.0.9", t).expect("fail");
        }
        assert!(
            locked_until(&c, "admin", "10.0.0.9", 5)
                .expect("q")
                .is_some()
        );
        assert_eq!(locked_until(&c, "admin", "10.0.0.1", 5).expect("q"), None);
    }

    #[test]
    fn spraying_accounts_locks_the_source() {
        let c = db();
        let s = settings();
        for (t, name) in ["a", "b", "c"].into_iter().enumerate() {
            record_failure(&c, &s, name, "10.0.0.9", t as i64).expect("fail");
        }
        assert!(locked_until(&c, "d", "10.0.0.9", 5).expect("q").is_some());
        assert_eq!(unlock_source(&c, "10.0.0.9").expect("unlock"), 4);
        assert_eq!(locked_until(&c, "d", "10.0.0.9", 5).expect("q"), None);
    }

    #[test]
    fn reset_counter_forgets_old_failures_only_when_enabled() {
        let c = db();
        let mut s = settings();
        record_failure(&c, &s, "op", "h", 0).expect("fail");
        record_failure(&c, &s, "op", "h", 1).expect("fail");
        let o = record_failure(&c, &s, "op", "h", 1000).expect("fail");
        assert!(
            !o.locked_pair,
            "the first two were older than the lockout time"
        );
        s.reset_counter = false;
        let o = record_failure(&c, &s, "op", "h", 5000).expect("fail");
        assert!(!o.locked_pair);
        let o = record_failure(&c, &s, "op", "h", 9000).expect("fail");
        assert!(o.locked_pair, "without reset every failure counts");
    }

    #[test]
    fn disabled_lockout_counts_nothing() {
        let c = db();
        let s = LockoutSettings {
            enabled: false,
            ..settings()
        };
        for t in 0..10 {
            record_failure(&c, &s, "x", "h", t).expect("fail");
        }
        assert_eq!(locked_until(&c, "x", "h", 10).expect("q"), None);
    }

    #[test]
    fn success_and_unlock_clear_the_pair() {
        let c = db();
        let s = settings();
        for t in 0..3 {
            record_failure(&c, &s, "admin", "h", t).expect("fail");
        }
        assert_eq!(unlock_account(&c, "Admin").expect("unlock"), 1);
        assert!(
            locked_until(&c, "admin", "h", 4).expect("q").is_some(),
            "the source lock stays"
        );
        record_success(&c, "admin", "h").expect("ok");
        assert!(purge(&c, &s, 1000).expect("purge") <= 1);
    }
}
