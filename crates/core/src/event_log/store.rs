//! The event table: its schema, inserting with a fixed capacity, and the
//! queries behind Log View, `ttyward events` and the exports (seed §3.6,
//! security.md CR 2.8–2.10).
//!
//! Functions take a `rusqlite::Connection`; opening the database, migrating
//! it and choosing a thread is the caller's business (the store runs
//! [`SCHEMA`] in a migration, the [`super::EventLog`] writer inserts on its
//! own connection). There is deliberately no function that edits or deletes
//! a single entry (CR 3.9): entries only leave by being the oldest when the
//! log is full.
//!
//! Stored text is data: messages, user names and source addresses are
//! capped in length and their control characters (and the Unicode
//! direction overrides used to disguise text) are written as visible
//! escapes, so an entry can neither forge extra lines in a terminal, syslog
//! or text export nor hide what it says. Nothing here formats a message
//! again; it is never a format string.

use std::collections::BTreeSet;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::EventLogError;
use super::catalog::{Category, EventId, Severity};

/// The event table, run once by the store's migration.
///
/// `AUTOINCREMENT` so a sequence number is never reused, even after the
/// whole log was emptied: `events --follow` and keyset paging rely on
/// "seq > N" meaning "newer than N". Category and severity are stored next
/// to the event code so queries filter in SQL, and they keep the
/// classification in force when the event happened. Every index implicitly
/// ends with `seq`, so a filtered query newest-first walks one index
/// backwards.
pub const SCHEMA: &str = "
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    event INTEGER NOT NULL,
    category INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    user TEXT COLLATE NOCASE,
    source TEXT,
    message TEXT NOT NULL
);
CREATE INDEX events_time ON events(time_ms);
CREATE INDEX events_category ON events(category);
CREATE INDEX events_severity ON events(severity);
CREATE INDEX events_event ON events(event);
CREATE INDEX events_user ON events(user) WHERE user IS NOT NULL;
";

/// Schema version 3 (run by the store's migration after [`SCHEMA`]): Log
/// View's filter of a category *and* a severity. With only the one-column
/// indexes, counting its matches looks every candidate row up in the table
/// for the other column (100 ms on a log of a million entries); this index
/// answers the count alone (6 ms) and, for one value of each, still lists
/// them newest first without sorting. Severity first, so a filter on
/// category and event keeps using `events_event`.
pub const SEVERITY_CATEGORY_INDEX: &str = "
CREATE INDEX events_severity_category ON events(severity, category);
";

/// Longest stored message, in characters (longer ones are cut and end in
/// "…").
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// Longest stored user name or source, in characters.
pub const MAX_FIELD_CHARS: usize = 256;
/// Most events one query returns.
pub const MAX_LIMIT: u32 = 1_000;
/// Events per page when a query gives no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// Longest search text, in characters.
pub const MAX_TEXT_CHARS: usize = 256;

/// An event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub event: EventId,
    /// The account that caused it, if any.
    pub user: Option<String>,
    /// Where it came from: a peer address, `"local"` or `"cli"`.
    pub source: Option<String>,
    /// What happened, for a human (who, what was changed, counts …).
    pub message: String,
}

impl NewEvent {
    /// An event without user or source.
    pub fn new(event: EventId, message: impl Into<String>) -> NewEvent {
        NewEvent {
            event,
            user: None,
            source: None,
            message: message.into(),
        }
    }

    /// The same event caused by `user`.
    pub fn with_user(mut self, user: impl Into<String>) -> NewEvent {
        self.user = Some(user.into());
        self
    }

    /// The same event coming from `source` (an address, `"local"`, `"cli"`).
    pub fn with_source(mut self, source: impl Into<String>) -> NewEvent {
        self.source = Some(source.into());
        self
    }
}

/// A stored event. Serialises as one record of the JSON export: `time` is
/// RFC 3339 UTC with milliseconds, names are the catalog's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number: increasing, never reused.
    pub seq: i64,
    /// When it happened: milliseconds since the Unix epoch, UTC.
    #[serde(rename = "time", serialize_with = "serialize_time")]
    pub time_ms: i64,
    /// The category it was recorded under.
    pub category: Category,
    /// The severity it was recorded with.
    pub severity: Severity,
    /// What happened.
    pub event: EventId,
    /// The account that caused it, if any.
    pub user: Option<String>,
    /// Where it came from, if known.
    pub source: Option<String>,
    /// The message (capped and with control characters escaped).
    pub message: String,
}

fn serialize_time<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::export::format_time(*ms))
}

/// Which end of the log a query starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Highest sequence number first (Log View).
    #[default]
    NewestFirst,
    /// Lowest first (`events --follow`: everything after a sequence number,
    /// in the order it happened).
    OldestFirst,
}

/// A search of the log. Empty lists and `None` mean "any"; all given
/// conditions must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventQuery {
    /// Events at or after this time (Unix ms, UTC).
    pub from_ms: Option<i64>,
    /// Events before this time (Unix ms, UTC; exclusive).
    pub to_ms: Option<i64>,
    /// Only these categories.
    pub categories: Vec<Category>,
    /// Only these severities.
    pub severities: Vec<Severity>,
    /// Only these events.
    pub events: Vec<EventId>,
    /// Text contained in the message, user or source (ASCII letters match
    /// case-insensitively; `%` and `_` are plain characters).
    pub text: Option<String>,
    /// Only events of this account (case-insensitive, exact).
    pub user: Option<String>,
    /// Only events with a sequence number above this.
    pub after_seq: Option<i64>,
    /// Only events with a sequence number below this (keyset paging
    /// newest-first: pass the last page's smallest `seq`).
    pub before_seq: Option<i64>,
    /// Newest or oldest first.
    pub order: Order,
    /// Events per page, at most [`MAX_LIMIT`] (larger values are lowered
    /// to it, 0 is taken as 1).
    pub limit: u32,
    /// Matching events skipped before the page starts.
    pub offset: u64,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            from_ms: None,
            to_ms: None,
            categories: Vec::new(),
            severities: Vec::new(),
            events: Vec::new(),
            text: None,
            user: None,
            after_seq: None,
            before_seq: None,
            order: Order::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// One page of a query's result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventPage {
    /// The events, in the query's order.
    pub events: Vec<Event>,
    /// How many events match the query's conditions (ignoring limit and
    /// offset).
    pub total: u64,
}

/// Record `event` at `now_ms` and keep only the newest `capacity` entries;
/// returns the new entry's sequence number.
pub fn insert(
    conn: &Connection,
    event: &NewEvent,
    now_ms: i64,
    capacity: u32,
) -> Result<i64, EventLogError> {
    let stored = store(conn, event, now_ms)?;
    trim(conn, stored.seq, capacity)?;
    Ok(stored.seq)
}

/// Insert one row without trimming; returns the event as stored.
pub(crate) fn store(
    conn: &Connection,
    event: &NewEvent,
    time_ms: i64,
) -> Result<Event, EventLogError> {
    let stored = Event {
        seq: 0,
        time_ms,
        category: event.event.category(),
        severity: event.event.severity(),
        event: event.event,
        user: event.user.as_deref().map(|u| clean(u, MAX_FIELD_CHARS)),
        source: event.source.as_deref().map(|s| clean(s, MAX_FIELD_CHARS)),
        message: clean(&event.message, MAX_MESSAGE_CHARS),
    };
    conn.prepare_cached(
        "INSERT INTO events (time_ms, event, category, severity, user, source, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        stored.time_ms,
        stored.event.code(),
        stored.category.code(),
        stored.severity.priority(),
        stored.user,
        stored.source,
        stored.message,
    ])?;
    Ok(Event {
        seq: conn.last_insert_rowid(),
        ..stored
    })
}

/// Drop every entry older than the newest `capacity` ones, the newest
/// having sequence number `newest`. Sequence numbers are consecutive, so
/// this is a range delete on the primary key that touches only the rows it
/// removes (usually one), however big the log.
pub(crate) fn trim(conn: &Connection, newest: i64, capacity: u32) -> Result<usize, EventLogError> {
    let bound = newest.saturating_sub(i64::from(capacity));
    Ok(conn
        .prepare_cached("DELETE FROM events WHERE seq <= ?1")?
        .execute([bound])?)
}

/// The highest sequence number ever stored (0 when the log is empty):
/// where `events --follow` starts.
pub fn latest_seq(conn: &Connection) -> Result<i64, EventLogError> {
    let seq: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(seq.unwrap_or(0))
}

/// Run `query`: one page of matching events and the number of all matches.
pub fn query(conn: &Connection, query: &EventQuery) -> Result<EventPage, EventLogError> {
    let filter = Filter::new(query)?;
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM events{}", filter.clause),
        params_from_iter(filter.values.iter()),
        |r| r.get(0),
    )?;
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let events = page(conn, &filter, query.order, limit, query.offset)?;
    Ok(EventPage {
        events,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// One page without the count (what the export walks with).
pub(crate) fn page(
    conn: &Connection,
    filter: &Filter,
    order: Order,
    limit: u32,
    offset: u64,
) -> Result<Vec<Event>, EventLogError> {
    let direction = match order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };
    let sql = format!(
        "SELECT seq, time_ms, event, category, severity, user, source, message
         FROM events{} ORDER BY seq {direction} LIMIT ? OFFSET ?",
        filter.clause
    );
    let mut values = filter.values.clone();
    values.push(SqlValue::Integer(i64::from(limit)));
    values.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(values.iter()))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(read_row(row)?);
    }
    Ok(events)
}

fn read_row(row: &Row<'_>) -> Result<Event, EventLogError> {
    let seq: i64 = row.get(0)?;
    let corrupt = |detail: String| EventLogError::Corrupt { seq, detail };
    let code: i64 = row.get(2)?;
    let category: i64 = row.get(3)?;
    let severity: i64 = row.get(4)?;
    Ok(Event {
        seq,
        time_ms: row.get(1)?,
        event: EventId::from_code(code)
            .ok_or_else(|| corrupt(format!("unknown event code {code}")))?,
        category: Category::from_code(category)
            .ok_or_else(|| corrupt(format!("unknown category code {category}")))?,
        severity: Severity::from_priority(severity)
            .ok_or_else(|| corrupt(format!("unknown severity {severity}")))?,
        user: row.get(5)?,
        source: row.get(6)?,
        message: row.get(7)?,
    })
}

/// A query's conditions as SQL. Every value is a bound parameter; only
/// fixed column names and placeholders are written into the text.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    clause: String,
    values: Vec<SqlValue>,
}

impl Filter {
    pub(crate) fn new(q: &EventQuery) -> Result<Filter, EventLogError> {
        let mut terms: Vec<String> = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        let mut bound = |term: &str, value: i64, terms: &mut Vec<String>| {
            terms.push(term.to_owned());
            values.push(SqlValue::Integer(value));
        };
        if let Some(from) = q.from_ms {
            bound("time_ms >= ?", from, &mut terms);
        }
        if let Some(to) = q.to_ms {
            bound("time_ms < ?", to, &mut terms);
        }
        if let Some(after) = q.after_seq {
            bound("seq > ?", after, &mut terms);
        }
        if let Some(before) = q.before_seq {
            bound("seq < ?", before, &mut terms);
        }
        let codes = |codes: BTreeSet<i64>,
                     column: &str,
                     terms: &mut Vec<String>,
                     values: &mut Vec<SqlValue>| {
            if !codes.is_empty() {
                let marks = vec!["?"; codes.len()].join(", ");
                terms.push(format!("{column} IN ({marks})"));
                values.extend(codes.into_iter().map(SqlValue::Integer));
            }
        };
        codes(
            q.categories.iter().map(|c| i64::from(c.code())).collect(),
            "category",
            &mut terms,
            &mut values,
        );
        codes(
            q.severities
                .iter()
                .map(|s| i64::from(s.priority()))
                .collect(),
            "severity",
            &mut terms,
            &mut values,
        );
        codes(
            q.events.iter().map(|e| i64::from(e.code())).collect(),
            "event",
            &mut terms,
            &mut values,
        );
        if let Some(user) = &q.user {
            // The column is NOCASE, like account names.
            terms.push("user = ?".into());
            values.push(SqlValue::Text(user.clone()));
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(EventLogError::TextTooLong {
                    max: MAX_TEXT_CHARS,
                });
            }
            // Stored text has its control characters escaped; search the
            // same form so a pasted "\n" finds what the log shows.
            let pattern = format!("%{}%", like_escape(&clean(text, MAX_TEXT_CHARS * 8)));
            terms.push(
                "(message LIKE ? ESCAPE '\\' OR user LIKE ? ESCAPE '\\' OR source LIKE ? ESCAPE '\\')".into(),
            );
            for _ in 0..3 {
                values.push(SqlValue::Text(pattern.clone()));
            }
        }
        let clause = if terms.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", terms.join(" AND "))
        };
        Ok(Filter { clause, values })
    }
}

/// `text` for a LIKE pattern with `\` as the escape character: `%`, `_`
/// and `\` match only themselves.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` made safe to store and show: control characters and Unicode
/// direction overrides written as escapes (`\n`, `\u{1b}`, `\u{202e}`),
/// then cut to `max` characters, the last being "…" when something was
/// cut.
pub(crate) fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    let mut count = 0_usize;
    let mut push = |out: &mut String, s: &mut dyn Iterator<Item = char>| {
        for c in s {
            out.push(c);
            count += 1;
        }
        count
    };
    for c in text.chars() {
        let written = if matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            push(&mut out, &mut c.escape_unicode())
        } else if c.is_control() {
            push(&mut out, &mut c.escape_debug())
        } else {
            push(&mut out, &mut std::iter::once(c))
        };
        // Stop early: a megabyte message costs no more than a long one.
        if written > max {
            let cut: String = out.chars().take(max.saturating_sub(1)).collect();
            return cut + "…";
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn memory_db() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(SCHEMA).expect("schema");
        conn.execute_batch(SEVERITY_CATEGORY_INDEX)
            .expect("schema version 3");
        conn
    }

    fn fill(conn: &mut Connection, events: &[(EventId, i64, Option<&str>, &str)]) {
        let tx = conn.transaction().expect("tx");
        for (event, time, user, message) in events {
            let mut e = NewEvent::new(*event, *message);
            e.user = user.map(str::to_owned);
            insert(&tx, &e, *time, 10_000).expect("insert");
        }
        tx.commit().expect("commit");
    }

    fn seqs(page: &EventPage) -> Vec<i64> {
        page.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn keeps_exactly_the_newest_capacity_entries() {
        let mut conn = memory_db();
        let tx = conn.transaction().expect("tx");
        for i in 0..12_000 {
            insert(
                &tx,
                &NewEvent::new(EventId::PortConnected, format!("n{i}")),
                i,
                10_000,
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
        let (count, min, max): (i64, i64, i64) = conn
            .query_row("SELECT COUNT(*), MIN(seq), MAX(seq) FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("count");
        assert_eq!((count, min, max), (10_000, 2_001, 12_000));
        assert_eq!(latest_seq(&conn).expect("latest"), 12_000);
    }

    #[test]
    fn lowering_the_capacity_trims_at_the_next_insert() {
        let mut conn = memory_db();
        fill(&mut conn, &[(EventId::SystemStart, 1, None, "x"); 50]);
        let seq = insert(&conn, &NewEvent::new(EventId::SystemStop, "y"), 2, 10).expect("insert");
        assert_eq!(seq, 51);
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 10);
    }

    #[test]
    fn never_reuses_a_sequence_number() {
        let conn = memory_db();
        insert(&conn, &NewEvent::new(EventId::SystemStart, "a"), 1, 1).expect("insert");
        insert(&conn, &NewEvent::new(EventId::SystemStart, "b"), 2, 1).expect("insert");
        conn.execute("DELETE FROM events", []).expect("empty");
        let seq = insert(&conn, &NewEvent::new(EventId::SystemStart, "c"), 3, 1).expect("insert");
        assert_eq!(seq, 3);
    }

    #[test]
    fn stores_category_severity_user_and_source() {
        let conn = memory_db();
        let e = NewEvent::new(EventId::LoginFailed, "wrong password")
            .with_user("Alice")
            .with_source("192.0.2.7");
        insert(&conn, &e, 1_700_000_000_123, 10_000).expect("insert");
        let page = query(&conn, &EventQuery::default()).expect("query");
        assert_eq!(
            page.events,
            [Event {
                seq: 1,
                time_ms: 1_700_000_000_123,
                category: Category::Security,
                severity: Severity::Warning,
                event: EventId::LoginFailed,
                user: Some("Alice".into()),
                source: Some("192.0.2.7".into()),
                message: "wrong password".into(),
            }]
        );
    }

    #[test]
    fn escapes_control_characters_and_caps_length() {
        let conn = memory_db();
        let forged = "bad\n2024-01-01 login-succeeded admin\u{1b}[2J\u{202e}txt";
        let e = NewEvent::new(EventId::LoginFailed, forged).with_user("x".repeat(1_000));
        insert(&conn, &e, 0, 10_000).expect("insert");
        insert(
            &conn,
            &NewEvent::new(EventId::LoginFailed, "y".repeat(5_000)),
            0,
            10_000,
        )
        .expect("insert");
        let page = query(
            &conn,
            &EventQuery {
                order: Order::OldestFirst,
                ..EventQuery::default()
            },
        )
        .expect("query");
        let first = &page.events[0];
        assert_eq!(
            first.message,
            "bad\\n2024-01-01 login-succeeded admin\\u{1b}[2J\\u{202e}txt"
        );
        let user = first.user.as_deref().expect("user");
        assert_eq!(user.chars().count(), MAX_FIELD_CHARS);
        assert!(user.ends_with('…'));
        assert_eq!(page.events[1].message.chars().count(), MAX_MESSAGE_CHARS);
        // A message with braces is stored verbatim, never formatted.
        insert(
            &conn,
            &NewEvent::new(EventId::LoginFailed, "{} {0} %s %n"),
            0,
            10_000,
        )
        .expect("insert");
        let last = query(&conn, &EventQuery::default()).expect("query");
        assert_eq!(last.events[0].message, "{} {0} %s %n");
    }

    fn sample(conn: &mut Connection) {
        fill(
            conn,
            &[
                (EventId::SystemStart, 1_000, None, "started"),
                (EventId::LoginFailed, 2_000, Some("alice"), "wrong password"),
                (EventId::LoginSucceeded, 3_000, Some("alice"), "web login"),
                (
                    EventId::DeviceMissing,
                    4_000,
                    None,
                    "port 1: /dev/ttyUSB0 gone",
                ),
                (
                    EventId::ConfigChanged,
                    5_000,
                    Some("bob"),
                    "ports[0].baud 9600 -> 100%_rate",
                ),
                (
                    EventId::ConfigChanged,
                    6_000,
                    Some("bob"),
                    "ports[0].baud 100 rate",
                ),
                (EventId::DeviceRecovered, 7_000, None, "port 1 back"),
            ],
        );
    }

    #[test]
    fn filters_by_time_range_half_open() {
        let mut conn = memory_db();
        sample(&mut conn);
        let page = query(
            &conn,
            &EventQuery {
                from_ms: Some(2_000),
                to_ms: Some(5_000),
                ..EventQuery::default()
            },
        )
        .expect("query");
        assert_eq!(seqs(&page), [4, 3, 2]);
        assert_eq!(page.total, 3);
    }

    #[test]
    fn filters_by_category_severity_event_and_user() {
        let mut conn = memory_db();
        sample(&mut conn);
        let by = |q: EventQuery| seqs(&query(&conn, &q).expect("query"));
        assert_eq!(
            by(EventQuery {
                categories: vec![Category::Serial],
                ..EventQuery::default()
            }),
            [7, 4]
        );
        assert_eq!(
            by(EventQuery {
                categories: vec![Category::Security, Category::System],
                severities: vec![Severity::Notice],
                ..EventQuery::default()
            }),
            [3, 1]
        );
        assert_eq!(
            by(EventQuery {
                severities: vec![Severity::Warning, Severity::Error],
                ..EventQuery::default()
            }),
            [4, 2]
        );
        assert_eq!(
            by(EventQuery {
                events: vec![EventId::ConfigChanged],
                ..EventQuery::default()
            }),
            [6, 5]
        );
        assert_eq!(
            by(EventQuery {
                user: Some("ALICE".into()),
                ..EventQuery::default()
            }),
            [3, 2]
        );
    }

    #[test]
    fn text_search_is_case_insensitive_and_takes_wildcards_literally() {
        let mut conn = memory_db();
        sample(&mut conn);
        let by = |text: &str| {
            seqs(
                &query(
                    &conn,
                    &EventQuery {
                        text: Some(text.into()),
                        ..EventQuery::default()
                    },
                )
                .expect("query"),
            )
        };
        assert_eq!(by("WRONG"), [2]);
        assert_eq!(by("100%_rate"), [5]);
        // As LIKE wildcards these would also match event 6 ("100 rate").
        assert_eq!(by("100%"), [5]);
        assert_eq!(by("0_r"), Vec::<i64>::new());
        assert_eq!(by("%"), [5]);
        // User and source are searched too.
        assert_eq!(by("bob"), [6, 5]);
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let err = query(
            &conn,
            &EventQuery {
                text: Some(long),
                ..EventQuery::default()
            },
        )
        .expect_err("too long");
        assert!(matches!(err, EventLogError::TextTooLong { .. }));
    }

    #[test]
    fn pages_newest_first_with_totals_and_follows_oldest_first() {
        let mut conn = memory_db();
        sample(&mut conn);
        let page = |offset, limit| {
            query(
                &conn,
                &EventQuery {
                    limit,
                    offset,
                    ..EventQuery::default()
                },
            )
            .expect("query")
        };
        let first = page(0, 3);
        assert_eq!((seqs(&first), first.total), (vec![7, 6, 5], 7));
        let third = page(6, 3);
        assert_eq!((seqs(&third), third.total), (vec![1], 7));
        assert_eq!(seqs(&page(0, 0)), [7]);
        assert_eq!(page(0, 5_000).events.len(), 7);
        let follow = query(
            &conn,
            &EventQuery {
                after_seq: Some(4),
                order: Order::OldestFirst,
                ..EventQuery::default()
            },
        )
        .expect("query");
        assert_eq!((seqs(&follow), follow.total), (vec![5, 6, 7], 3));
        let keyset = query(
            &conn,
            &EventQuery {
                before_seq: Some(5),
                limit: 2,
                ..EventQuery::default()
            },
        )
        .expect("query");
        assert_eq!(seqs(&keyset), [4, 3]);
    }

    /// How SQLite runs the count of `q` (the step every page pays for).
    fn count_plan(conn: &Connection, q: &EventQuery) -> String {
        let filter = Filter::new(q).expect("filter");
        let mut stmt = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM events{}",
                filter.clause
            ))
            .expect("prepare");
        let details = stmt
            .query_map(params_from_iter(filter.values.iter()), |r| {
                r.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<Result<Vec<_>, _>>()
            .expect("plan rows");
        details.join("; ")
    }

    #[test]
    fn counts_a_category_and_severity_filter_in_one_index() {
        let conn = memory_db();
        let plan = count_plan(
            &conn,
            &EventQuery {
                categories: vec![Category::Security],
                severities: vec![Severity::Warning],
                ..EventQuery::default()
            },
        );
        assert!(
            plan.contains("COVERING INDEX events_severity_category"),
            "{plan}"
        );
        // A filter on category and event keeps the event's index.
        let plan = count_plan(
            &conn,
            &EventQuery {
                categories: vec![Category::Security],
                events: vec![EventId::LoginFailed],
                ..EventQuery::default()
            },
        );
        assert!(plan.contains("events_event"), "{plan}");
    }

    #[test]
    fn reports_a_row_it_cannot_read() {
        let conn = memory_db();
        conn.execute(
            "INSERT INTO events (time_ms, event, category, severity, message) VALUES (0, 999, 1, 1, 'x')",
            [],
        )
        .expect("insert");
        let err = query(&conn, &EventQuery::default()).expect_err("corrupt");
        assert!(err.to_string().contains("unknown event code 999"), "{err}");
    }

    #[test]
    fn query_deserialises_from_the_apis_shape() {
        let q: EventQuery = serde_json::from_value(serde_json::json!({
            "categories": ["security"],
            "severities": ["warning"],
            "events": ["login-failed"],
            "order": "oldest-first",
        }))
        .expect("query");
        assert_eq!(q.categories, [Category::Security]);
        assert_eq!(q.order, Order::OldestFirst);
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(serde_json::from_value::<EventQuery>(serde_json::json!({"colour": 1})).is_err());
    }
}
