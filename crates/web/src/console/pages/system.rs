//! The Dashboard (security warnings, host, ports with live counters),
//! System Settings > General and the read-only Network Settings page.
//!
//! General has the seed's two tabs as two forms: Identity (server name,
//! location, description, contact) and Date & Time (the zone the console
//! shows times in). The host's operating system owns its name, clock,
//! clock synchronisation and addresses: they are shown, never set, and the
//! NPort's date, time and NTP fields have no counterpart. Users without
//! `system.change` see the values read-only.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use ttyward_core::config::Config;
use ttyward_core::permission::Permission;
use ttyward_core::system::{DisplayZone, MAX_NAME_CHARS, MAX_TEXT_CHARS, SystemSettings};

use super::super::{PageError, Visitor, render};
use super::form::{ConfigEdit, change_notice};
use super::{Chrome, InfoPage};
use crate::api::AppState;

struct PortRow {
    number: u16,
    alias: String,
    mode: String,
    state: String,
    connections: u64,
    rx: u64,
    tx: u64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    warnings: Vec<String>,
    hostname: String,
    time: String,
    uptime: String,
    host_uptime: String,
    cert_subject: String,
    cert_until: String,
    show_ports: bool,
    ports: Vec<PortRow>,
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("{d} d {h} h {m} min")
    } else {
        format!("{h} h {m} min")
    }
}

/// Security warnings the dashboard shows (seed §3: settings the guide
/// recommends that are off).
fn warnings(config: &Config, self_signed: bool) -> Vec<String> {
    let s = &config.security;
    let mut out = Vec::new();
    if !s.allowlist.enabled {
        out.push(
            "The allowlist is disabled: any address may connect (Security > Allowlist).".to_owned(),
        );
    }
    if !s.login.lockout.enabled {
        out.push("Login lockout is disabled: passwords can be guessed without limit (Security > Login Settings).".to_owned());
    }
    if !s.dos.enabled {
        out.push("DoS defence is disabled: one source can hold every connection (Security > Allowlist, DoS Defense).".to_owned());
    }
    if self_signed {
        out.push("The certificate is self-signed: browsers cannot verify this device (Security > Certificate).".to_owned());
    }
    if s.password_policy.min_length < 16 {
        out.push(format!(
            "Passwords may be as short as {} characters; the hardening guide recommends 16 (Account Management > Password Policy).",
            s.password_policy.min_length
        ));
    }
    out
}

pub async fn dashboard(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SystemView)?;
    let config = state.service.config();
    let cert = state.tls.current().info();
    let running = state.ports.borrow().clone();
    let show_ports = v.caller.may(Permission::SerialView);
    let ports = if show_ports {
        config
            .ports
            .iter()
            .map(|p| {
                let h = running.iter().find(|h| h.number() == p.number);
                let c = h.map(|h| h.counters().snapshot()).unwrap_or_default();
                PortRow {
                    number: p.number,
                    alias: p.alias.clone(),
                    mode: p.mode.name().to_owned(),
                    state: h
                        .map_or("off", |h| match h.state() {
                            ttyward_engine::PortState::Starting => "starting",
                            ttyward_engine::PortState::Open => "open",
                            ttyward_engine::PortState::DeviceMissing { .. } => "device-missing",
                            ttyward_engine::PortState::Stopped => "stopped",
                        })
                        .to_owned(),
                    connections: c.connections_active,
                    rx: c.device_rx_bytes,
                    tx: c.device_tx_bytes,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let warnings = if v.caller.may(Permission::SecurityView) {
        warnings(&config, cert.self_signed)
    } else {
        Vec::new()
    };
    let chrome = Chrome::new(&v, "/dashboard");
    Ok(render(&DashboardPage {
        warnings,
        hostname: hostname(),
        time: chrome.zone.format_s(now_ms() / 1000),
        uptime: uptime(state.started.elapsed().as_secs()),
        host_uptime: host_uptime(),
        cert_subject: cert.subject,
        cert_until: chrome.zone.format_s(cert.not_after_unix),
        chrome,
        show_ports,
        ports,
    }))
}

/// How long the host has been up (`/proc/uptime`).
fn host_uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| {
            t.split('.')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".to_owned(), uptime)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The two forms' values as shown (what was typed, after a refusal).
struct GeneralView {
    name: String,
    location: String,
    description: String,
    contact: String,
    time_zone: String,
}

impl GeneralView {
    fn of(s: &SystemSettings) -> GeneralView {
        GeneralView {
            name: s.name.clone(),
            location: s.location.clone(),
            description: s.description.clone(),
            contact: s.contact.clone(),
            time_zone: s.time_zone.name().to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "general.html")]
struct GeneralPage {
    chrome: Chrome,
    view: GeneralView,
    host_name: String,
    time_utc: String,
    time_local: String,
    /// Whether the UTC clock is a second row (the zone is not UTC).
    show_utc: bool,
    zone: String,
    uptime: String,
    host_uptime: String,
    version: &'static str,
    /// Suggestions for the time zone field (only for those who may change it).
    zones: &'static [String],
    can_change: bool,
    max_name: usize,
    max_text: usize,
}

impl GeneralPage {
    fn new(state: &AppState, chrome: Chrome, view: GeneralView, can_change: bool) -> GeneralPage {
        let now = now_ms();
        GeneralPage {
            host_name: hostname(),
            time_utc: DisplayZone::utc().format_s(now / 1000),
            time_local: chrome.zone.format_s(now / 1000),
            show_utc: chrome.zone != DisplayZone::utc(),
            zone: chrome.zone.describe(now),
            uptime: uptime(state.started.elapsed().as_secs()),
            host_uptime: host_uptime(),
            version: env!("CARGO_PKG_VERSION"),
            zones: if can_change {
                DisplayZone::names()
            } else {
                &[]
            },
            can_change,
            max_name: MAX_NAME_CHARS,
            max_text: MAX_TEXT_CHARS,
            view,
            chrome,
        }
    }
}

/// System Settings > General.
pub async fn general(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SystemView)?;
    let view = GeneralView::of(&state.service.config().system);
    let can_change = v.caller.may(Permission::SystemChange);
    let chrome = Chrome::new(&v, "/system/general");
    Ok(render(&GeneralPage::new(&state, chrome, view, can_change)))
}

/// Fields of the two forms; each form sends its own.
#[derive(Deserialize)]
pub struct GeneralForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    time_zone: String,
}

/// Save one tab: `identity` or `time`. What was typed is trimmed (a stray
/// space from a copy and paste is not a different name); the validator
/// judges the rest and names every bad field.
pub async fn general_submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(tab): Path<String>,
    Form(form): Form<GeneralForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SystemChange)?;
    let config = state.service.config();
    let mut edit = ConfigEdit::of(&config);
    let mut shown = GeneralView::of(&config.system);
    let done = match tab.as_str() {
        "identity" => {
            for (key, value) in [
                ("name", &form.name),
                ("location", &form.location),
                ("description", &form.description),
                ("contact", &form.contact),
            ] {
                edit.set(&format!("/system/{key}"), json!(value.trim()));
            }
            shown.name = form.name;
            shown.location = form.location;
            shown.description = form.description;
            shown.contact = form.contact;
            "Pages show the new identity now."
        }
        "time" => {
            edit.set("/system/time_zone", json!(form.time_zone.trim()));
            shown.time_zone = form.time_zone;
            "The console shows times in the new zone now; the event log, its exports and the REST API keep UTC."
        }
        other => {
            return Err(PageError::NotFound(format!(
                "General has no tab '{}'; use identity or time",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/system/general");
    let status = chrome.outcome(result, |c| change_notice(c, done))?;
    let view = if status == StatusCode::OK {
        let system = &state.service.config().system;
        chrome.use_system(system);
        GeneralView::of(system)
    } else {
        shown
    };
    let page = GeneralPage::new(&state, chrome, view, true);
    Ok((status, render(&page)).into_response())
}

pub async fn network(v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::NetworkView)?;
    let (names, addresses) = crate::cert::host_identity();
    let mut page = InfoPage::new(&v, "/network/ip", "IP Address");
    page.notes.push(
        "The host's operating system owns its network settings; they are shown here read-only."
            .into(),
    );
    page.rows = vec![
        ("Names".into(), names.join(", ")),
        (
            "Addresses".into(),
            addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    Ok(render(&page))
}
