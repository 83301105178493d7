//! The event log (seed §3.6; security.md CR 2.8–2.10, 3.9): what happened
//! on the device, when (UTC), in which of the seed's five categories, how
//! severe, caused by whom and from where.
//!
//! * [`catalog`]: the categories, severities and every event ttyward
//!   records, with stable names and codes;
//! * [`settings`]: Log Settings (capacity, events not recorded);
//! * [`store`]: the table ([`SCHEMA`]), inserting with a fixed capacity,
//!   queries with paging;
//! * [`export`]: CSV and JSON export;
//! * [`writer`]: [`EventLog`], the handle the daemon records through without
//!   ever waiting on the database.
//!
//! Not here: who may read which events (the permission layer: only
//! Administrators read Security events), remote syslog, and the CLI and web
//! pages that show the log.

pub mod catalog;
pub mod export;
pub mod settings;
pub mod store;
pub mod writer;

pub use catalog::{Category, EventId, Severity, UnknownName};
pub use export::{ExportFormat, export};
pub use settings::EventLogSettings;
pub(crate) use settings::read_settings;
pub use store::{Event, EventPage, EventQuery, NewEvent, Order, SCHEMA, insert, latest_seq, query};
pub use writer::EventLog;

/// Why an event log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// SQLite reported an error.
    #[error("event log database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored entry could not be read back (the database was edited by
    /// hand or is damaged).
    #[error(
        "stored event {seq} is unreadable: {detail}; the entry was written by another program or the database is damaged"
    )]
    Corrupt {
        /// The entry's sequence number.
        seq: i64,
        /// What was wrong.
        detail: String,
    },
    /// The search text of a query is too long.
    #[error(
        "the search text is longer than {max} characters; search for a shorter part of the message"
    )]
    TextTooLong {
        /// The longest accepted, in characters.
        max: usize,
    },
    /// A time given by the user is not RFC 3339.
    #[error(
        "\"{given}\" is not a time such as 2024-05-01T12:00:00Z; give date, time and zone (Z or +02:00)"
    )]
    BadTime {
        /// What was given (cut to 64 characters).
        given: String,
    },
    /// An export format name is not known.
    #[error("unknown export format \"{given}\"; use csv or json")]
    UnknownFormat {
        /// What was given (cut to 32 characters).
        given: String,
    },
    /// Writing an export failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread could not be started.
    #[error("cannot start the event log writer thread: {source}")]
    Spawn {
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer thread has stopped (the process is shutting down).
    #[error("the event log writer has stopped")]
    Closed,
}
