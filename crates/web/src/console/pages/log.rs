//! Diagnostics > System Log > Log View: the event log newest first, with
//! filters by category, severity, text and time, paging, and export links.
//! Security events only for groups with `log.security`; the service
//! enforces that, this page only leaves the category out of its filter.
//!
//! Times are shown in the zone of System Settings > General, with offset
//! and abbreviation, and a time typed into the filter without `Z` or an
//! offset is read in that zone. The export links carry the filter's times
//! converted to UTC: exports, like the log itself and the API, are UTC.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use ttyward_core::event_log::{EventQuery, Order};
use ttyward_core::permission::Permission;
use ttyward_core::service::ServiceError;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

struct EventRow {
    seq: i64,
    time: String,
    category: String,
    severity: String,
    event: String,
    user: String,
    source: String,
    message: String,
}

/// Log View filter fields (all optional).
#[derive(Debug, Default, Deserialize)]
pub struct LogFilter {
    #[serde(default)]
    category: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    offset: u64,
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    chrome: Chrome,
    filter: LogFilter,
    categories: Vec<&'static str>,
    severities: Vec<&'static str>,
    events: Vec<EventRow>,
    total: u64,
    query: String,
    /// `query` with the times as RFC 3339 UTC, for the export links.
    export_query: String,
    /// The zone times are shown and read in, e.g. `Asia/Kolkata (UTC+05:30, IST)`.
    zone: String,
    /// An example of a local time for the filter's placeholders.
    example: String,
    prev: Option<u64>,
    next: Option<u64>,
    can_settings: bool,
}

/// Events per Log View page.
const LOG_PAGE: u32 = 100;

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Log View.
pub async fn page(
    State(state): State<AppState>,
    v: Visitor,
    Query(filter): Query<LogFilter>,
) -> Result<Response, PageError> {
    use ttyward_core::event_log::{Category, Severity};
    v.require(Permission::LogView)?;
    let mut chrome = Chrome::new(&v, "/log");
    let mut query = EventQuery {
        limit: LOG_PAGE,
        offset: filter.offset,
        order: Order::NewestFirst,
        ..EventQuery::default()
    };
    let mut problems = Vec::new();
    if !filter.category.is_empty() {
        match filter.category.parse::<Category>() {
            Ok(c) => query.categories = vec![c],
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !filter.severity.is_empty() {
        match filter.severity.parse::<Severity>() {
            Ok(s) => query.severities = vec![s],
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !filter.text.is_empty() {
        query.text = Some(filter.text.clone());
    }
    for (given, slot) in [
        (&filter.from, &mut query.from_ms),
        (&filter.to, &mut query.to_ms),
    ] {
        if !given.is_empty() {
            match chrome.zone.parse_local(given) {
                Ok(t) => *slot = Some(t),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    let (from_ms, to_ms) = (query.from_ms, query.to_ms);
    let page = if problems.is_empty() {
        match state.service.query_events(&v.caller, query).await {
            Ok(p) => p,
            Err(ServiceError::Forbidden { .. }) if !filter.category.is_empty() => {
                problems.push("Your group may not read Security events.".into());
                ttyward_core::event_log::EventPage::default()
            }
            Err(e) => return Err(PageError::from(e)),
        }
    } else {
        ttyward_core::event_log::EventPage::default()
    };
    if !problems.is_empty() {
        chrome.problem = Some(problems.join(" "));
    }
    let events = page
        .events
        .into_iter()
        .map(|e| EventRow {
            seq: e.seq,
            time: chrome.time(e.time_ms),
            category: e.category.as_str().to_owned(),
            severity: e.severity.as_str().to_owned(),
            event: e.event.name().to_owned(),
            user: e.user.unwrap_or_default(),
            source: e.source.unwrap_or_default(),
            message: e.message,
        })
        .collect::<Vec<_>>();
    let utc = |t: Option<i64>| t.map(ttyward_core::event_log::export::format_time);
    let (from_utc, to_utc) = (utc(from_ms), utc(to_ms));
    let mut q = String::new();
    let mut export_q = String::new();
    for (k, val, exported) in [
        ("category", &filter.category, None),
        ("severity", &filter.severity, None),
        ("text", &filter.text, None),
        ("from", &filter.from, from_utc.as_ref()),
        ("to", &filter.to, to_utc.as_ref()),
    ] {
        if !val.is_empty() {
            q.push_str(&format!("&{k}={}", encode(val)));
            let val = exported.unwrap_or(val);
            export_q.push_str(&format!("&{k}={}", encode(val)));
        }
    }
    let shown = u64::try_from(events.len()).unwrap_or(0);
    let next = (filter.offset + shown < page.total).then_some(filter.offset + shown);
    let prev = (filter.offset > 0).then(|| filter.offset.saturating_sub(u64::from(LOG_PAGE)));
    let categories = if v.caller.may(Permission::LogSecurity) {
        vec!["system", "network", "security", "maintenance", "serial"]
    } else {
        vec!["system", "network", "maintenance", "serial"]
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    Ok(render(&LogPage {
        can_settings: v.caller.may(Permission::LogSettings),
        zone: chrome.zone.describe(now),
        // "2026-05-01 17:30": the date, hours and minutes of now.
        example: chrome.zone.format_s(now / 1000).chars().take(16).collect(),
        export_query: export_q,
        filter,
        categories,
        severities: vec!["error", "warning", "notice", "informational"],
        events,
        total: page.total,
        query: q,
        chrome,
        prev,
        next,
    }))
}
