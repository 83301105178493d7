//! Diagnostics > System Log > Log View: the event log newest first, with
//! filters by category, severity, text and time, paging, and export links.
//! Security events only for groups with `log.security`; the service
//! enforces that, this page only leaves the category out of its filter.

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
            match ttyward_core::event_log::export::parse_time(given) {
                Ok(t) => *slot = Some(t),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
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
            time: ttyward_core::event_log::export::format_time(e.time_ms),
            category: e.category.as_str().to_owned(),
            severity: e.severity.as_str().to_owned(),
            event: e.event.name().to_owned(),
            user: e.user.unwrap_or_default(),
            source: e.source.unwrap_or_default(),
            message: e.message,
        })
        .collect::<Vec<_>>();
    let mut q = String::new();
    for (k, val) in [
        ("category", &filter.category),
        ("severity", &filter.severity),
        ("text", &filter.text),
        ("from", &filter.from),
        ("to", &filter.to),
    ] {
        if !val.is_empty() {
            q.push_str(&format!("&{k}={}", encode(val)));
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
    Ok(render(&LogPage {
        can_settings: v.caller.may(Permission::LogSettings),
        chrome,
        filter,
        categories,
        severities: vec!["error", "warning", "notice", "informational"],
        events,
        total: page.total,
        query: q,
        prev,
        next,
    }))
}
