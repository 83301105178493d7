//! The Dashboard (security warnings, host, ports with live counters) and
//! the read-only System Settings > General and Network Settings pages: the
//! host's operating system owns its name, clock and addresses.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use ttyward_core::config::Config;
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
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
    uptime: String,
    host_uptime: String,
    cert_subject: String,
    cert_until: String,
    show_ports: bool,
    ports: Vec<PortRow>,
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
    Ok(render(&DashboardPage {
        chrome: Chrome::new(&v, "/dashboard"),
        warnings,
        hostname: hostname(),
        uptime: uptime(state.started.elapsed().as_secs()),
        host_uptime: host_uptime(),
        cert_subject: cert.subject,
        cert_until: cert.not_after,
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

pub async fn general(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SystemView)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let mut page = InfoPage::new(&v, "/system/general", "General");
    page.rows = vec![
        ("Host name".into(), hostname()),
        (
            "Time (UTC)".into(),
            ttyward_core::event_log::export::format_time(now),
        ),
        (
            "ttyward up for".into(),
            uptime(state.started.elapsed().as_secs()),
        ),
        ("Host up for".into(), host_uptime()),
        (
            "Software".into(),
            format!("ttyward {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    page.notes.push(
        "The host's operating system owns the clock and the time zone; the event log records UTC."
            .into(),
    );
    Ok(render(&page))
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
