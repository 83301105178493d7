//! The store: one SQLite database (`ttyward.db`) in the data directory that
//! holds everything the daemon knows — configuration, accounts, groups,
//! sessions, login failures, the setup code and the event log.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed change
//! survives `kill -9` and power loss; every change is one transaction.
//! Concurrency: one owner thread per process runs every statement
//! ([`Store::call`] sends it a closure), so async callers never block on
//! SQLite and statements never interleave. The command line (`ttyward
//! admin`, `config import`) opens its own `Store` while the daemon runs;
//! SQLite's locking serialises the processes (busy timeout 5 s) and the
//! daemon notices their changes through `PRAGMA data_version`.
//!
//! The event log writes through its own connection and thread
//! ([`crate::event_log`]) so that a slow or failing log never delays a
//! configuration change or a login.
//!
//! Files are created 0600 in a 0700 directory; SQLite gives the `-wal` and
//! `-shm` files the database file's mode.

mod schema;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "ttyward.db";

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or database file could not be created or opened.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database was written by a newer ttyward.
    #[error(
        "the database in {path} has schema version {found}, newer than this ttyward understands ({supported}); use the newer ttyward or restore a backup"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back (the database was edited by
    /// hand or is damaged).
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store's thread has stopped (the process is shutting down).
    #[error("the store is closed")]
    Closed,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the store's owner thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) the database in `dir`, bring its schema up
    /// to date and start the owner thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = prepare_data_dir(dir)?;
        let mut conn = open_connection(&path)?;
        schema::migrate(&mut conn, &path)?;
        // Give the query planner table statistics (an analysis limited in
        // cost, only where they are missing or stale). Without them SQLite
        // walks the category index for an Operator's time-range query on a
        // large event log: 0.4 s instead of 0.6 ms at 1,000,000 entries
        // (docs/BENCHMARKS.md, event log queries).
        conn.execute_batch("PRAGMA optimize=0x10002;")?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ttyward-store".into())
            .spawn(move || {
                let mut conn = conn;
                // Ends when every Store handle is dropped.
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|source| StoreError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
        Ok(Store { jobs, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on the owner thread and wait for its result without blocking
    /// the async runtime.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::call`] for code that is not async (the command line).
    pub fn call_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

/// Open another connection to the database with the store's settings (for
/// the event log's writer thread).
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer; FULL: a commit is on disk
    // before it is acknowledged (WAL with NORMAL could lose the last
    // commits on power loss).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Create the directory (0700) and the database file (0600) if missing,
/// and tighten their modes if they exist; returns the database path.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, StoreError> {
    let io = |source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    let path = dir.join(DB_FILE);
    // Created here with 0600 before SQLite sees it, so the file is never
    // readable by others, not even for a moment.
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(path)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-25T13:08:30Z`).
pub fn format_time(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_s.to_string())
}

/// Seconds since the Unix epoch (UTC).
pub fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_files_and_migrates() {
        let dir = crate::testutil::tempdir();
        let data = dir.join("data");
        let store = Store::open(&data).expect("open");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        let version: i64 = store
            .call_blocking(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .expect("version");
        assert_eq!(version, schema::VERSION);
        let journal: String = store
            .call_blocking(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .expect("journal");
        assert_eq!(journal, "wal");
        drop(store);
        // Opening again finds the schema current and changes nothing.
        Store::open(&data).expect("reopen");
        drop(dir);
    }
}
