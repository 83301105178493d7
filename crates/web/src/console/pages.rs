//! The console's pages. Each handler reads through the service, renders a
//! template, and for forms: checks the CSRF token, builds the change,
//! lets the service validate and authorise it, and shows every problem
//! next to the form.

use std::net::IpAddr;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use ttyward_core::config::{Config, OperationMode};
use ttyward_core::event_log::{EventQuery, Order};
use ttyward_core::permission::Permission;
use ttyward_core::service::{Caller, Interface, ServiceError, Source};

use super::{Nav, OwnOrigin, PageError, Visitor, render};
use crate::api::{AppState, SESSION_COOKIE};

/// What every logged-in page shows around its content.
pub struct Chrome {
    /// The menu.
    pub nav: Nav,
    /// The session's CSRF token for forms.
    pub csrf: String,
    /// The current page's path (highlighted in the menu).
    pub active: &'static str,
    /// A success message.
    pub notice: Option<String>,
    /// A problem message.
    pub problem: Option<String>,
    /// Bad fields (path, message).
    pub fields: Vec<(String, String)>,
}

impl Chrome {
    fn new(v: &Visitor, active: &'static str) -> Chrome {
        Chrome {
            nav: v.nav.clone(),
            csrf: v.csrf.clone(),
            active,
            notice: None,
            problem: None,
            fields: Vec::new(),
        }
    }

    fn with_error(mut self, e: ServiceError) -> Result<Chrome, PageError> {
        match e {
            ServiceError::Config(c) => {
                self.problem = Some(format!(
                    "{} field(s) are invalid; nothing was changed.",
                    c.errors.len()
                ));
                self.fields = c.errors.into_iter().map(|f| (f.path, f.message)).collect();
            }
            ServiceError::Invalid(m) | ServiceError::Conflict(m) => self.problem = Some(m),
            ServiceError::Password(p) => self.problem = Some(p.to_string()),
            other => return Err(PageError::from(other)),
        }
        Ok(self)
    }
}

/// The logged-in pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/serial/parameters", get(parameters))
        .route(
            "/serial/parameters/{number}",
            axum::routing::post(parameters_submit),
        )
        .route("/serial/modes", get(modes))
        .route("/serial/secure", get(coming))
        .route("/security/allowlist", get(allowlist).post(allowlist_submit))
        .route("/security/services", get(services))
        .route("/security/certificate", get(certificate))
        .route("/security/login", get(login_settings))
        .route("/accounts", get(accounts))
        .route("/accounts/groups", get(groups))
        .route("/accounts/password-policy", get(password_policy))
        .route("/accounts/auth-server", get(coming))
        .route("/system/general", get(general))
        .route("/system/notification", get(coming))
        .route("/network/ip", get(network))
        .route("/log", get(log_view))
        .route("/log/settings", get(log_settings))
        .route("/maintenance/config", get(maintenance_config))
        .route("/maintenance/reset", get(coming))
}

// ---- first use, login, logout ----------------------------------------

/// `/`: the dashboard, the login page, or first-use setup.
pub async fn root(State(state): State<AppState>) -> Result<Redirect, PageError> {
    if !state.service.has_administrator().await? {
        return Ok(Redirect::to("/setup"));
    }
    Ok(Redirect::to("/dashboard"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    login_message: String,
    failure: Option<String>,
    name: String,
}

/// The login page with the login message.
pub async fn login_page(State(state): State<AppState>) -> Result<Response, PageError> {
    if !state.service.has_administrator().await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(render(&LoginPage {
        login_message: state.service.config().security.login.message.clone(),
        failure: None,
        name: String::new(),
    }))
}

/// Login form fields.
#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

fn peer(connect: &ConnectInfo<std::net::SocketAddr>) -> IpAddr {
    connect.0.ip().to_canonical()
}

/// Log in: set the session cookie and go to the dashboard, or show the
/// failure message.
pub async fn login_submit(
    State(state): State<AppState>,
    connect: ConnectInfo<std::net::SocketAddr>,
    _: OwnOrigin,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    match state
        .service
        .login(
            &form.name,
            &form.password,
            Source::Net(peer(&connect)),
            Interface::Web,
        )
        .await
    {
        Ok(ok) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
                ok.token.expose()
            );
            let mut r = Redirect::to("/dashboard").into_response();
            let value = HeaderValue::from_str(&cookie).map_err(|_| PageError::Internal)?;
            r.headers_mut().insert(header::SET_COOKIE, value);
            Ok(r)
        }
        Err(e @ (ServiceError::LoginFailed { .. } | ServiceError::SessionLimit(_))) => {
            let page = LoginPage {
                login_message: state.service.config().security.login.message.clone(),
                failure: Some(e.to_string()),
                name: form.name.chars().take(64).collect(),
            };
            Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
        }
        Err(e) => Err(PageError::from(e)),
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    problem: Option<String>,
    name: String,
}

/// First use: the "Create Account" page (only while no account exists).
pub async fn setup_page(State(state): State<AppState>) -> Result<Response, PageError> {
    if state.service.has_administrator().await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(render(&SetupPage {
        problem: None,
        name: String::new(),
    }))
}

/// Setup form fields.
#[derive(Deserialize)]
pub struct SetupForm {
    setup_code: String,
    name: String,
    password: String,
    password2: String,
}

/// Create the first Administrator with the setup code, then log in.
pub async fn setup_submit(
    State(state): State<AppState>,
    connect: ConnectInfo<std::net::SocketAddr>,
    _: OwnOrigin,
    Form(form): Form<SetupForm>,
) -> Result<Response, PageError> {
    let again = |problem: String| {
        let page = SetupPage {
            problem: Some(problem),
            name: form.name.chars().take(32).collect(),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response()
    };
    if form.password != form.password2 {
        return Ok(again("The two passwords differ.".into()));
    }
    let caller = Caller {
        principal: None,
        source: Source::Net(peer(&connect)),
        interface: Interface::Web,
    };
    match state
        .service
        .create_first_admin(&caller, &form.name, &form.password, Some(&form.setup_code))
        .await
    {
        Ok(()) => Ok(Redirect::to("/login").into_response()),
        Err(ServiceError::Store(e)) => Err(PageError::from(ServiceError::Store(e))),
        Err(e) => Ok(again(e.to_string())),
    }
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// End the session and clear the cookie.
pub async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    visitor.check_csrf(&form.csrf)?;
    state.service.logout(&visitor.caller).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-ttyward=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(r)
}

// ---- dashboard ---------------------------------------------------------

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
        out.push("DoS defence is disabled.".to_owned());
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

async fn dashboard(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
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
        cert_subject: cert.subject,
        cert_until: cert.not_after,
        show_ports,
        ports,
    }))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

// ---- serial parameters -----------------------------------------------

struct SerialRow {
    number: u16,
    alias: String,
    device: String,
    baud: String,
    data_bits: String,
    parity: String,
    stop_bits: String,
    flow: String,
}

#[derive(Template)]
#[template(path = "parameters.html")]
struct ParametersPage {
    chrome: Chrome,
    ports: Vec<SerialRow>,
    can_change: bool,
}

fn serial_rows(config: &Config) -> Vec<SerialRow> {
    config
        .ports
        .iter()
        .map(|p| SerialRow {
            number: p.number,
            alias: p.alias.clone(),
            device: p.device.to_string(),
            baud: p.serial.baud.to_string(),
            data_bits: p.serial.data_bits.to_string(),
            parity: p.serial.parity.to_string(),
            stop_bits: p.serial.stop_bits.to_string(),
            flow: p.serial.flow.to_string(),
        })
        .collect()
}

async fn parameters(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SerialView)?;
    let config = state.service.config();
    Ok(render(&ParametersPage {
        can_change: v.caller.may(Permission::SerialChange),
        ports: serial_rows(&config),
        chrome: Chrome::new(&v, "/serial/parameters"),
    }))
}

/// Serial Parameters form fields.
#[derive(Deserialize)]
pub struct SerialForm {
    csrf: String,
    baud: String,
    data_bits: String,
    parity: String,
    stop_bits: String,
    flow: String,
}

/// A number stays a number in the document; anything else is passed as
/// text so that validation names the field.
fn number_or_text(s: &str) -> Value {
    s.trim()
        .parse::<u64>()
        .map_or_else(|_| json!(s), |n| json!(n))
}

async fn parameters_submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(number): Path<u16>,
    Form(form): Form<SerialForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SerialChange)?;
    let config = state.service.config();
    let mut doc = config.to_value();
    let index = config
        .ports
        .iter()
        .position(|p| p.number == number)
        .ok_or_else(|| PageError::NotFound(format!("no serial port {number}")))?;
    if let Some(serial) = doc
        .get_mut("ports")
        .and_then(|p| p.get_mut(index))
        .and_then(|p| p.get_mut("serial"))
        .and_then(Value::as_object_mut)
    {
        serial.insert("baud".into(), number_or_text(&form.baud));
        serial.insert("data_bits".into(), number_or_text(&form.data_bits));
        serial.insert("parity".into(), json!(form.parity));
        serial.insert("stop_bits".into(), json!(form.stop_bits));
        serial.insert("flow".into(), json!(form.flow));
    }
    let mut chrome = Chrome::new(&v, "/serial/parameters");
    let result = match Config::from_value(&doc) {
        Ok(new) => state
            .service
            .update_config(&v.caller, new, false)
            .await
            .map(|_| ()),
        Err(e) => Err(ServiceError::Config(e)),
    };
    let status = match result {
        Ok(()) => {
            chrome.notice = Some(format!(
                "Port {number} saved; the port restarted with the new settings."
            ));
            StatusCode::OK
        }
        Err(e) => {
            chrome = chrome.with_error(e)?;
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    let page = ParametersPage {
        can_change: true,
        ports: serial_rows(&state.service.config()),
        chrome,
    };
    Ok((status, render(&page)).into_response())
}

// ---- allowlist ---------------------------------------------------------

#[derive(Template)]
#[template(path = "allowlist.html")]
struct AllowlistPage {
    chrome: Chrome,
    enabled: bool,
    entries: String,
    your_ip: String,
    can_change: bool,
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

async fn allowlist(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let config = state.service.config();
    Ok(render(&AllowlistPage {
        enabled: config.security.allowlist.enabled,
        entries: entries_text(&config),
        your_ip: visitor_ip(&v),
        can_change: v.caller.may(Permission::SecurityChange),
        chrome: Chrome::new(&v, "/security/allowlist"),
    }))
}

/// Allowlist form fields.
#[derive(Deserialize)]
pub struct AllowlistForm {
    csrf: String,
    enabled: Option<String>,
    entries: String,
    force: Option<String>,
}

async fn allowlist_submit(
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
        .map(|line| {
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
        })
        .collect();
    let config = state.service.config();
    let mut doc = config.to_value();
    if let Some(security) = doc.get_mut("security").and_then(Value::as_object_mut) {
        security.insert(
            "allowlist".into(),
            json!({"enabled": form.enabled.is_some(), "entries": entries}),
        );
    }
    let mut chrome = Chrome::new(&v, "/security/allowlist");
    let result = match Config::from_value(&doc) {
        Ok(new) => state
            .service
            .update_config(&v.caller, new, form.force.is_some())
            .await
            .map(|_| ()),
        Err(e) => Err(ServiceError::Config(e)),
    };
    let (status, enabled, text) = match result {
        Ok(()) => {
            chrome.notice = Some("Allowlist saved; it applies to new connections now.".into());
            let c = state.service.config();
            (
                StatusCode::OK,
                c.security.allowlist.enabled,
                entries_text(&c),
            )
        }
        Err(e) => {
            chrome = chrome.with_error(e)?;
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                form.enabled.is_some(),
                form.entries.clone(),
            )
        }
    };
    let page = AllowlistPage {
        enabled,
        entries: text,
        your_ip: visitor_ip(&v),
        can_change: true,
        chrome,
    };
    Ok((status, render(&page)).into_response())
}

// ---- system log ----------------------------------------------------------

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

async fn log_view(
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

// ---- read-only pages -------------------------------------------------------

#[derive(Template)]
#[template(path = "info.html")]
struct InfoPage {
    chrome: Chrome,
    title: &'static str,
    notes: Vec<String>,
    rows: Vec<(String, String)>,
    table_head: Vec<&'static str>,
    table: Vec<Vec<String>>,
}

impl InfoPage {
    fn new(v: &Visitor, active: &'static str, title: &'static str) -> InfoPage {
        InfoPage {
            chrome: Chrome::new(v, active),
            title,
            notes: Vec::new(),
            rows: Vec::new(),
            table_head: Vec::new(),
            table: Vec::new(),
        }
    }
}

fn on_off(b: bool) -> String {
    if b { "enabled" } else { "disabled" }.to_owned()
}

/// Pages whose settings arrive in a later release: they exist (the seed's
/// menu is complete) and say so.
async fn coming(v: Visitor, uri: axum::http::Uri) -> Result<Response, PageError> {
    let path = uri.path().to_owned();
    let permission = Nav::permission_of(&path).unwrap_or(Permission::SystemView);
    v.require(permission)?;
    let (active, title, what) = match path.as_str() {
        "/serial/secure" => (
            "/serial/secure",
            "Secure Connection",
            "TLS and mutual TLS for serial data (per port)",
        ),
        "/accounts/auth-server" => (
            "/accounts/auth-server",
            "Authentication Server",
            "RADIUS and TACACS+ authentication",
        ),
        "/system/notification" => (
            "/system/notification",
            "Notification",
            "e-mail, SNMP trap and syslog notifications",
        ),
        _ => (
            "/maintenance/reset",
            "Factory Reset",
            "factory reset (it will delete every account, the configuration, the certificate and the event log, after a confirmation that names these consequences)",
        ),
    };
    let mut page = InfoPage::new(&v, active, title);
    page.notes
        .push(format!("Coming in a later release: {what}."));
    Ok(render(&page))
}

async fn modes(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SerialView)?;
    let config = state.service.config();
    let mut page = InfoPage::new(&v, "/serial/modes", "Operation Modes");
    page.notes.push("Change a port's mode with Maintenance > Configuration (import) or the REST API (PATCH /api/v1/config); the editing form comes next.".into());
    page.table_head = vec!["Port", "Alias", "Mode", "Listens on", "Max connections"];
    page.table = config
        .ports
        .iter()
        .map(|p| {
            let listen = p
                .mode
                .listen()
                .map(|l| format!("{} {}", if l.udp { "UDP" } else { "TCP" }, l.port))
                .unwrap_or_else(|| "-".into());
            let max = match &p.mode {
                OperationMode::TcpServer(m) => m.max_connections.to_string(),
                OperationMode::Rfc2217(m) => m.max_connections.to_string(),
                _ => "-".into(),
            };
            vec![
                p.number.to_string(),
                p.alias.clone(),
                p.mode.name().to_owned(),
                listen,
                max,
            ]
        })
        .collect();
    Ok(render(&page))
}

async fn services(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let web = state.service.config().services.web.clone();
    let mut page = InfoPage::new(&v, "/security/services", "Services");
    page.rows = vec![
        (
            "Web console and REST API (HTTPS)".into(),
            on_off(web.enabled),
        ),
        (
            "Listening on".into(),
            web.bind
                .iter()
                .map(|a| format!("{a} port {}", web.https_port))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "HTTP redirect".into(),
            web.http_redirect_port
                .map_or_else(|| "disabled".into(), |p| format!("port {p}")),
        ),
    ];
    Ok(render(&page))
}

async fn certificate(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let c = state.tls.current().info();
    let mut page = InfoPage::new(&v, "/security/certificate", "Certificate");
    page.notes.push("Export the certificate (so browsers can trust this device), regenerate it or import your own with the REST API (/api/v1/certificate); the forms come next.".into());
    page.rows = vec![
        ("Subject".into(), c.subject),
        ("Issuer".into(), c.issuer),
        (
            "Self-signed".into(),
            if c.self_signed {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        ("Key".into(), c.key_algorithm),
        ("Valid from".into(), c.not_before),
        ("Valid until".into(), c.not_after),
        ("Names".into(), c.subject_alt_names.join(", ")),
        ("SHA-256 fingerprint".into(), c.sha256_fingerprint),
    ];
    Ok(render(&page))
}

async fn login_settings(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let l = state.service.config().security.login.clone();
    let mut page = InfoPage::new(&v, "/security/login", "Login Settings");
    page.rows = vec![
        ("Login message".into(), l.message.clone()),
        (
            "Authentication failure message".into(),
            l.failure_message().to_owned(),
        ),
        ("Login lockout".into(), on_off(l.lockout.enabled)),
        (
            "Max. failure retry".into(),
            l.lockout.max_failures.to_string(),
        ),
        ("Lockout time".into(), format!("{} s", l.lockout.lockout_s)),
        (
            "Session idle timeout".into(),
            format!("{} s", l.sessions.idle_timeout_s),
        ),
        (
            "Session lifetime".into(),
            format!("{} s", l.sessions.lifetime_s),
        ),
        (
            "Max. sessions per account".into(),
            l.sessions.max_per_account.to_string(),
        ),
        (
            "Max. sessions in total".into(),
            l.sessions.max_total.to_string(),
        ),
    ];
    Ok(render(&page))
}

async fn accounts(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    let list = state.service.accounts(&v.caller).await?;
    let mut page = InfoPage::new(&v, "/accounts", "Accounts");
    page.table_head = vec!["Account", "Group", "Status"];
    page.table = list
        .into_iter()
        .map(|a| {
            vec![
                a.name,
                a.group,
                if a.active { "active" } else { "disabled" }.to_owned(),
            ]
        })
        .collect();
    Ok(render(&page))
}

async fn groups(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    let list = state.service.groups(&v.caller).await?;
    let mut page = InfoPage::new(&v, "/accounts/groups", "Groups");
    page.table_head = vec!["Group", "Built in", "Permissions"];
    page.table = list
        .into_iter()
        .map(|g| {
            vec![
                g.name,
                if g.builtin { "yes" } else { "no" }.to_owned(),
                g.permissions
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    Ok(render(&page))
}

async fn password_policy(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::AccountsView)?;
    let p = state.service.config().security.password_policy.clone();
    let mut page = InfoPage::new(&v, "/accounts/password-policy", "Password Policy");
    page.rows = vec![
        ("Minimum length".into(), p.min_length.to_string()),
        ("Digit required".into(), on_off(p.require_digit)),
        (
            "Upper and lower case required".into(),
            on_off(p.require_mixed_case),
        ),
        (
            "Special character required".into(),
            on_off(p.require_special),
        ),
        (
            "Password lifetime".into(),
            p.lifetime_days
                .map_or_else(|| "none".into(), |d| format!("{d} days")),
        ),
    ];
    page.notes.push(
        "Always: not one of the 10,000 most common passwords, and not containing the account name."
            .into(),
    );
    Ok(render(&page))
}

async fn general(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
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
        ("Up for".into(), uptime(state.started.elapsed().as_secs())),
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

async fn network(v: Visitor) -> Result<Response, PageError> {
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

async fn log_settings(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::LogSettings)?;
    let s = state.service.config().event_log.clone();
    let mut page = InfoPage::new(&v, "/log", "Log Settings");
    page.rows = vec![
        ("Entries kept".into(), s.capacity.to_string()),
        (
            "Events not recorded".into(),
            if s.disabled.is_empty() {
                "none".into()
            } else {
                s.disabled
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    page.table_head = vec!["Event", "Category", "Severity", "Meaning"];
    page.table = ttyward_core::event_log::EventId::ALL
        .iter()
        .map(|e| {
            vec![
                e.name().to_owned(),
                e.category().as_str().to_owned(),
                e.severity().as_str().to_owned(),
                e.description().to_owned(),
            ]
        })
        .collect();
    Ok(render(&page))
}

async fn maintenance_config(
    State(state): State<AppState>,
    v: Visitor,
) -> Result<Response, PageError> {
    v.require(Permission::MaintenanceConfig)?;
    let mut page = InfoPage::new(&v, "/maintenance/config", "Configuration");
    page.notes.push("Download the configuration from /api/v1/config/export (TOML, no accounts, passwords or keys); import one with POST /api/v1/config/import or `ttyward config import` on the host. The upload form comes next.".into());
    page.rows = vec![(
        "Revision".into(),
        state.service.stored_revision().await?.to_string(),
    )];
    Ok(render(&page))
}
