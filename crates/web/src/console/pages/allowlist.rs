//! Security > Allowlist, with the DoS Defense settings beside it (both are
//! the Gate every listener passes). An allowlist change that would shut
//! out the visitor's own address is refused unless forced: the service
//! decides that, this page offers the checkbox.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use ttyward_core::access::DosSettings;
use ttyward_core::config::Config;
use ttyward_core::permission::Permission;
use ttyward_core::service::Source;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, number_or_text};
use crate::api::AppState;

/// The DoS Defense form's values as shown.
struct DosView {
    enabled: bool,
    per_source_connections: String,
    max_connections: String,
    accept_rate: String,
    accept_burst: String,
    request_rate: String,
    request_burst: String,
    handshake_timeout_s: String,
}

impl DosView {
    fn of(d: &DosSettings) -> DosView {
        DosView {
            enabled: d.enabled,
            per_source_connections: d.per_source_connections.to_string(),
            max_connections: d.max_connections.to_string(),
            accept_rate: d.accept_rate.to_string(),
            accept_burst: d.accept_burst.to_string(),
            request_rate: d.request_rate.to_string(),
            request_burst: d.request_burst.to_string(),
            handshake_timeout_s: d.handshake_timeout_s.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "allowlist.html")]
struct AllowlistPage {
    chrome: Chrome,
    enabled: bool,
    entries: String,
    your_ip: String,
    can_change: bool,
    dos: DosView,
}

impl AllowlistPage {
    fn of(v: &Visitor, config: &Config, chrome: Chrome) -> AllowlistPage {
        AllowlistPage {
            enabled: config.security.allowlist.enabled,
            entries: entries_text(config),
            your_ip: visitor_ip(v),
            can_change: v.caller.may(Permission::SecurityChange),
            dos: DosView::of(&config.security.dos),
            chrome,
        }
    }
}

fn entries_text(config: &Config) -> String {
    config
        .security
        .allowlist
        .entries
        .iter()
        .map(|e| {
            let services: Vec<&str> = e.services.iter().map(|s| s.name()).collect();
            if services.is_empty() {
                format!("{} {}", e.address, e.netmask)
            } else {
                format!("{} {} {}", e.address, e.netmask, services.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn visitor_ip(v: &Visitor) -> String {
    match v.caller.source {
        Source::Net(ip) => ip.to_string(),
        Source::Local => "local".into(),
    }
}

/// The allowlist and DoS Defense forms.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let chrome = Chrome::new(&v, "/security/allowlist");
    Ok(render(&AllowlistPage::of(
        &v,
        &state.service.config(),
        chrome,
    )))
}

/// Allowlist form fields.
#[derive(Deserialize)]
pub struct AllowlistForm {
    csrf: String,
    enabled: Option<String>,
    entries: String,
    force: Option<String>,
}

/// One line `address netmask [services]` as an entry of the document.
fn entry(line: &str) -> Value {
    let mut parts = line.split_whitespace();
    let address = parts.next().unwrap_or_default();
    let netmask = parts.next().unwrap_or_default();
    let mut entry = json!({"address": address, "netmask": netmask});
    if let Some(services) = parts.next()
        && let Some(o) = entry.as_object_mut()
    {
        o.insert(
            "services".into(),
            json!(services.split(',').collect::<Vec<_>>()),
        );
    }
    entry
}

/// Save the allowlist.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<AllowlistForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let entries: Vec<Value> = form
        .entries
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(entry)
        .collect();
    let mut edit = ConfigEdit::of(&state.service.config());
    edit.set(
        "/security/allowlist",
        json!({"enabled": form.enabled.is_some(), "entries": entries}),
    );
    let result = edit.save(&state, &v.caller, form.force.is_some()).await;
    let mut chrome = Chrome::new(&v, "/security/allowlist");
    let status = chrome.outcome(result, |_| {
        "Allowlist saved; it applies to new connections now.".into()
    })?;
    let mut page = AllowlistPage::of(&v, &state.service.config(), chrome);
    page.can_change = true;
    if status != StatusCode::OK {
        // The refused entries stay in the form for correction.
        page.enabled = form.enabled.is_some();
        page.entries = form.entries;
    }
    Ok((status, render(&page)).into_response())
}

/// DoS Defense form fields.
#[derive(Deserialize)]
pub struct DosForm {
    csrf: String,
    /// Not `enabled`: the allowlist's checkbox on the same page has that
    /// name.
    dos_enabled: Option<String>,
    per_source_connections: String,
    max_connections: String,
    accept_rate: String,
    accept_burst: String,
    request_rate: String,
    request_burst: String,
    handshake_timeout_s: String,
}

/// Save the DoS Defense settings.
pub async fn dos_submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<DosForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let config = state.service.config();
    let mut edit = ConfigEdit::of(&config);
    edit.set(
        "/security/dos",
        json!({
            "enabled": form.dos_enabled.is_some(),
            "per_source_connections": number_or_text(&form.per_source_connections),
            "max_connections": number_or_text(&form.max_connections),
            "accept_rate": number_or_text(&form.accept_rate),
            "accept_burst": number_or_text(&form.accept_burst),
            "request_rate": number_or_text(&form.request_rate),
            "request_burst": number_or_text(&form.request_burst),
            "handshake_timeout_s": number_or_text(&form.handshake_timeout_s),
        }),
    );
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/security/allowlist");
    let status = chrome.outcome(result, |c| {
        change_notice(c, "DoS Defense applies to new connections now.")
    })?;
    let mut page = AllowlistPage::of(&v, &state.service.config(), chrome);
    page.can_change = true;
    if status != StatusCode::OK {
        page.dos = DosView {
            enabled: form.dos_enabled.is_some(),
            per_source_connections: form.per_source_connections,
            max_connections: form.max_connections,
            accept_rate: form.accept_rate,
            accept_burst: form.accept_burst,
            request_rate: form.request_rate,
            request_burst: form.request_burst,
            handshake_timeout_s: form.handshake_timeout_s,
        };
    }
    Ok((status, render(&page)).into_response())
}
