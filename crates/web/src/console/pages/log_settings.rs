//! Diagnostics > System Log > Log Settings: how many entries the log keeps
//! and which events it records, one checkbox per event of the catalog.
//! The two events that cannot be switched off (a change of these settings,
//! lost events) are shown ticked and locked; switching Security events off
//! needs `log.security` too, which the service checks.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use ttyward_core::event_log::{EventId, EventLogSettings};
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, number_or_text};
use crate::api::AppState;

struct EventBox {
    name: &'static str,
    category: &'static str,
    severity: &'static str,
    meaning: &'static str,
    recorded: bool,
    locked: bool,
}

#[derive(Template)]
#[template(path = "log_settings.html")]
struct LogSettingsPage {
    chrome: Chrome,
    capacity: String,
    events: Vec<EventBox>,
}

fn boxes(recorded: impl Fn(EventId) -> bool) -> Vec<EventBox> {
    EventId::ALL
        .iter()
        .map(|e| EventBox {
            name: e.name(),
            category: e.category().as_str(),
            severity: e.severity().as_str(),
            meaning: e.description(),
            recorded: !e.can_disable() || recorded(*e),
            locked: !e.can_disable(),
        })
        .collect()
}

fn of(s: &EventLogSettings) -> (String, Vec<EventBox>) {
    (s.capacity.to_string(), boxes(|e| s.is_enabled(e)))
}

/// The form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::LogSettings)?;
    let (capacity, events) = of(&state.service.config().event_log);
    Ok(render(&LogSettingsPage {
        chrome: Chrome::new(&v, "/log"),
        capacity,
        events,
    }))
}

/// Save the settings. The form sends `csrf`, `capacity` and one `record`
/// per ticked event (repeated keys, hence pairs); every event that may be
/// switched off and is not ticked is not recorded.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    v.check_csrf(field("csrf"))?;
    v.require(Permission::LogSettings)?;
    let ticked: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "record")
        .map(|(_, v)| v.as_str())
        .collect();
    let disabled: Vec<&str> = EventId::ALL
        .iter()
        .filter(|e| e.can_disable() && !ticked.contains(&e.name()))
        .map(|e| e.name())
        .collect();
    let capacity = field("capacity").to_owned();
    let mut edit = ConfigEdit::of(&state.service.config());
    edit.set(
        "/event_log",
        json!({"capacity": number_or_text(&capacity), "disabled": disabled}),
    );
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/log");
    let status = chrome.outcome(result, |c| {
        change_notice(c, "The log records and keeps entries as set from now on.")
    })?;
    let (capacity, events) = if status == StatusCode::OK {
        of(&state.service.config().event_log)
    } else {
        (capacity, boxes(|e| ticked.contains(&e.name())))
    };
    let page = LogSettingsPage {
        chrome,
        capacity,
        events,
    };
    Ok((status, render(&page)).into_response())
}
