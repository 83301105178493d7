//! Export of the event log as CSV (RFC 4180) or JSON, written to any
//! `std::io::Write` page by page, so a log of a million entries never sits
//! in memory at once. Both have the fields `seq, time, category, severity,
//! event, user, source, message`; time is RFC 3339 UTC with milliseconds.
//!
//! This module does not decide who may export (security.md CR 3.9: only
//! Administrators read Security events; the caller narrows the query's
//! categories for others) and does not open the database.

use std::io::{BufWriter, Write};
use std::str::FromStr;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::EventLogError;
use super::store::{Event, EventQuery, Filter, Order, page};

/// Events read per page while exporting.
const EXPORT_PAGE: u32 = 500;

/// The CSV header line (without its line end).
pub const CSV_HEADER: &str = "seq,time,category,severity,event,user,source,message";

const TIME_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl ExportFormat {
    /// The HTTP content type of the format.
    pub const fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
        }
    }

    /// The usual file name extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = EventLogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            _ => Err(EventLogError::UnknownFormat {
                given: s.chars().take(32).collect(),
            }),
        }
    }
}

/// Write every event matching `query` (its limit and offset are ignored:
/// an export is the whole filtered log) in the query's order to `out`;
/// returns how many were written.
///
/// Pages follow each other by sequence number rather than offset, so
/// events recorded or trimmed during a long export neither repeat nor shift
/// others out: the export holds no read transaction open while `out` is
/// slow.
pub fn export<W: Write>(
    conn: &Connection,
    query: &EventQuery,
    format: ExportFormat,
    out: W,
) -> Result<u64, EventLogError> {
    let mut out = BufWriter::new(out);
    let mut q = query.clone();
    let mut written: u64 = 0;
    match format {
        ExportFormat::Csv => write!(out, "{CSV_HEADER}\r\n")?,
        ExportFormat::Json => out.write_all(b"[")?,
    }
    loop {
        let events = page(conn, &Filter::new(&q)?, q.order, EXPORT_PAGE, 0)?;
        for event in &events {
            match format {
                ExportFormat::Csv => write_csv_row(&mut out, event)?,
                ExportFormat::Json => {
                    out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut out, event).map_err(std::io::Error::from)?;
                }
            }
            written += 1;
        }
        let Some(last) = events.last() else { break };
        match q.order {
            Order::NewestFirst => q.before_seq = Some(last.seq),
            Order::OldestFirst => q.after_seq = Some(last.seq),
        }
        if events.len() < EXPORT_PAGE as usize {
            break;
        }
    }
    if format == ExportFormat::Json {
        out.write_all(if written == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(written)
}

/// One CSV record of `event`, ending in CRLF as RFC 4180 has it.
pub fn write_csv_row<W: Write>(out: &mut W, event: &Event) -> std::io::Result<()> {
    let cells = [
        event.seq.to_string(),
        format_time(event.time_ms),
        event.category.as_str().to_owned(),
        event.severity.as_str().to_owned(),
        event.event.name().to_owned(),
        event.user.clone().unwrap_or_default(),
        event.source.clone().unwrap_or_default(),
        event.message.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_cell(cell).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// `cell` as one CSV field.
///
/// Formula injection: a spreadsheet opening the export runs a cell that
/// starts with `=`, `+`, `-` or `@` (and, in some, tab or CR) as a formula,
/// so an attacker who chose an account name or a message such as
/// `=HYPERLINK(…)` would run it on the administrator's desk. Such a cell
/// gets a leading `'`, which spreadsheets show as text (OWASP's advice).
/// Then RFC 4180: a field with a comma, quote, CR or LF is quoted and its
/// quotes doubled.
pub fn csv_cell(cell: &str) -> String {
    let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// `ms` (Unix milliseconds, UTC) as RFC 3339 with milliseconds, e.g.
/// `2024-05-01T12:00:00.250Z`; a value outside the years ±9999 (only a
/// hand-edited database has one) as the plain number.
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(TIME_FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// An RFC 3339 time (`2024-05-01T12:00:00Z`, any offset, optional
/// fraction) as Unix milliseconds, for time filters given by a user.
pub fn parse_time(text: &str) -> Result<i64, EventLogError> {
    let bad = || EventLogError::BadTime {
        given: text.chars().take(64).collect(),
    };
    let t = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| bad())?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_log::catalog::{Category, EventId, Severity};
    use crate::event_log::store::{NewEvent, insert, tests::memory_db};

    fn event(user: Option<&str>, message: &str) -> Event {
        Event {
            seq: 7,
            time_ms: 1_714_564_800_250,
            category: Category::Security,
            severity: Severity::Warning,
            event: EventId::LoginFailed,
            user: user.map(str::to_owned),
            source: Some("192.0.2.1".into()),
            message: message.into(),
        }
    }

    fn csv(e: &Event) -> String {
        let mut out = Vec::new();
        write_csv_row(&mut out, e).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn formats_times_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_time(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
        assert_eq!(
            parse_time("2024-05-01T12:00:00.250Z").expect("parse"),
            1_714_564_800_250
        );
        assert_eq!(
            parse_time("2024-05-01T14:00:00+02:00").expect("parse"),
            1_714_564_800_000
        );
        let err = parse_time("yesterday").expect_err("bad");
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }

    #[test]
    fn writes_plain_csv_rows_unquoted() {
        assert_eq!(
            csv(&event(Some("alice"), "wrong password")),
            "7,2024-05-01T12:00:00.250Z,security,warning,login-failed,alice,192.0.2.1,wrong password\r\n"
        );
        assert_eq!(
            csv(&event(None, "x")),
            "7,2024-05-01T12:00:00.250Z,security,warning,login-failed,,192.0.2.1,x\r\n"
        );
    }

    #[test]
    fn quotes_commas_quotes_and_newlines() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("cr\rhere"), "\"cr\rhere\"");
        assert!(csv(&event(Some("a,b"), "x")).contains(",\"a,b\","));
    }

    #[test]
    fn guards_cells_against_formula_injection() {
        for (cell, want) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_cell(cell), want, "{cell:?}");
        }
        assert!(csv(&event(Some("=cmd|' /C calc'!A0"), "x")).contains(",'=cmd|' /C calc'!A0,"));
    }

    #[test]
    fn serialises_an_event_as_a_json_record() {
        assert_eq!(
            serde_json::to_value(event(None, "m")).expect("json"),
            serde_json::json!({
                "seq": 7,
                "time": "2024-05-01T12:00:00.250Z",
                "category": "security",
                "severity": "warning",
                "event": "login-failed",
                "user": null,
                "source": "192.0.2.1",
                "message": "m",
            })
        );
    }

    fn filled(n: i64) -> rusqlite::Connection {
        let mut conn = memory_db();
        let tx = conn.transaction().expect("tx");
        for i in 1..=n {
            let e = if i % 2 == 0 {
                NewEvent::new(EventId::PortConnected, format!("client {i}, \"quoted\""))
            } else {
                NewEvent::new(EventId::LoginFailed, format!("=attempt {i}")).with_user("mallory")
            };
            insert(&tx, &e, i * 1_000, 10_000).expect("insert");
        }
        tx.commit().expect("commit");
        conn
    }

    #[test]
    fn exports_every_matching_event_as_csv_across_pages() {
        let conn = filled(1_201);
        let mut out = Vec::new();
        let n = export(&conn, &EventQuery::default(), ExportFormat::Csv, &mut out).expect("export");
        assert_eq!(n, 1_201);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines.len(),
            1 + 1_201 + 1,
            "header, rows, empty after the last CRLF"
        );
        assert!(lines[1].starts_with("1201,"), "{}", lines[1]);
        assert!(lines[1_201].starts_with("1,"), "{}", lines[1_201]);
        assert!(
            lines[2].ends_with(",\"client 1200, \"\"quoted\"\"\""),
            "{}",
            lines[2]
        );
        assert!(
            lines[1].ends_with(",mallory,,'=attempt 1201"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn exports_a_filtered_log_as_a_json_array_oldest_first() {
        let conn = filled(1_100);
        let mut out = Vec::new();
        let q = EventQuery {
            events: vec![EventId::LoginFailed],
            order: Order::OldestFirst,
            limit: 3,
            offset: 10,
            ..EventQuery::default()
        };
        let n = export(&conn, &q, ExportFormat::Json, &mut out).expect("export");
        assert_eq!(n, 550);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        let items = value.as_array().expect("array");
        assert_eq!(items.len(), 550);
        assert_eq!(items[0]["seq"], 1);
        assert_eq!(items[549]["seq"], 1_099);
        assert_eq!(items[0]["event"], "login-failed");
        assert_eq!(items[0]["message"], "=attempt 1");
        assert_eq!(items[0]["time"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn exports_an_empty_log_as_a_header_or_an_empty_array() {
        let conn = memory_db();
        let mut csv_out = Vec::new();
        assert_eq!(
            export(
                &conn,
                &EventQuery::default(),
                ExportFormat::Csv,
                &mut csv_out
            )
            .expect("csv"),
            0
        );
        assert_eq!(csv_out, format!("{CSV_HEADER}\r\n").as_bytes());
        let mut json_out = Vec::new();
        export(
            &conn,
            &EventQuery::default(),
            ExportFormat::Json,
            &mut json_out,
        )
        .expect("json");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&json_out).expect("json"),
            serde_json::json!([])
        );
    }

    #[test]
    fn parses_format_names() {
        assert_eq!(
            "CSV".parse::<ExportFormat>().expect("csv"),
            ExportFormat::Csv
        );
        assert_eq!(
            "json".parse::<ExportFormat>().expect("json"),
            ExportFormat::Json
        );
        let err = "xml".parse::<ExportFormat>().expect_err("unknown");
        assert!(err.to_string().contains("\"xml\""), "{err}");
    }
}
