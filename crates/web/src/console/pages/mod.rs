//! The console's pages, one module per page or pair of pages. Each GET
//! handler checks the page's view permission and renders from the
//! service's state; each POST handler checks the CSRF token and the change
//! permission, builds the change, lets the service validate and authorise
//! it, and shows the page again with a notice or every problem next to
//! the form. Nothing is decided here that the service does not decide too.
//!
//! This module holds what every page shares: the chrome around the
//! content, the read-only page, the route table.

mod accounts;
mod allowlist;
mod certificate;
mod form;
mod groups;
mod log;
mod log_settings;
mod login_settings;
mod maintenance;
mod modes;
mod own_password;
mod password_policy;
mod secure;
mod serial;
mod services;
mod session;
mod ssh_keys;
mod system;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ttyward_core::permission::Permission;
use ttyward_core::service::ServiceError;
use ttyward_core::system::{DisplayZone, SystemSettings};

use super::{Nav, PageError, Visitor, render};
use crate::api::AppState;

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
    /// The configured server name, shown in the header and the title so
    /// that someone with several devices sees which one this is; empty
    /// when none is set (the host's name is on the Dashboard).
    pub server_name: String,
    /// The zone the page shows times in (System Settings > General).
    pub zone: DisplayZone,
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
            server_name: v.system.name.clone(),
            zone: v.system.time_zone.clone(),
        }
    }

    /// Take the identity and zone from `system` (after a page changed
    /// them, so that the answer already shows the new ones).
    fn use_system(&mut self, system: &SystemSettings) {
        self.server_name.clone_from(&system.name);
        self.zone = system.time_zone.clone();
    }

    /// `ms` (Unix milliseconds) in the page's zone, with offset and
    /// abbreviation.
    fn time(&self, ms: i64) -> String {
        self.zone.format(ms)
    }

    /// Show `e` on the page when the person can fix it there; anything
    /// else (no permission, a failing store) becomes its own error page.
    fn show_error(&mut self, e: ServiceError) -> Result<(), PageError> {
        match e {
            ServiceError::Config(c) => {
                self.problem = Some(format!(
                    "{} field(s) are invalid; nothing was changed.",
                    c.errors.len()
                ));
                self.fields = c.errors.into_iter().map(|f| (f.path, f.message)).collect();
            }
            ServiceError::Invalid(m) | ServiceError::Conflict(m) => {
                self.problem = Some(sentence(&m));
            }
            ServiceError::Password(p) => self.problem = Some(sentence(&p.to_string())),
            // A name from a form that no longer exists (deleted meanwhile,
            // or a stale page): say so next to the forms.
            e @ ServiceError::NotFound { .. } => self.problem = Some(sentence(&e.to_string())),
            other => return Err(PageError::from(other)),
        }
        Ok(())
    }

    /// Show the outcome of a change: `notice` on success, the problems
    /// otherwise. The status is 200 or 422 (the form needs correcting).
    fn outcome<T>(
        &mut self,
        result: Result<T, ServiceError>,
        notice: impl FnOnce(&T) -> String,
    ) -> Result<StatusCode, PageError> {
        match result {
            Ok(t) => {
                self.notice = Some(notice(&t));
                Ok(StatusCode::OK)
            }
            Err(e) => {
                self.show_error(e)?;
                Ok(StatusCode::UNPROCESSABLE_ENTITY)
            }
        }
    }
}

/// The service's messages are written to follow "error:" (lower case, no
/// full stop); on a page they stand alone as a sentence.
pub(super) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Every page of the console (the login page, first-use setup and the
/// logged-in pages).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(session::root))
        .route(
            "/login",
            get(session::login_page).post(session::login_submit),
        )
        .route(
            "/setup",
            get(session::setup_page).post(session::setup_submit),
        )
        .route("/logout", post(session::logout))
        .route(
            "/account/password",
            get(own_password::page).post(own_password::submit),
        )
        .route("/account/ssh-keys", get(ssh_keys::page).post(ssh_keys::add))
        .route("/account/ssh-keys/remove", post(ssh_keys::remove))
        .route("/dashboard", get(system::dashboard))
        .route("/system/general", get(system::general))
        .route("/system/general/{tab}", post(system::general_submit))
        .route("/system/notification", get(coming))
        .route("/network/ip", get(system::network))
        .route("/serial/modes", get(modes::page))
        .route("/serial/modes/{number}", post(modes::submit))
        .route("/serial/parameters", get(serial::page))
        .route("/serial/parameters/{number}", post(serial::submit))
        .route("/serial/secure", get(secure::page))
        .route("/serial/secure/{number}", post(secure::submit))
        .route(
            "/security/services",
            get(services::page).post(services::submit),
        )
        .route(
            "/security/allowlist",
            get(allowlist::page).post(allowlist::submit),
        )
        .route("/security/dos", post(allowlist::dos_submit))
        .route("/security/certificate", get(certificate::page))
        .route(
            "/security/certificate/regenerate",
            post(certificate::regenerate),
        )
        .route("/security/certificate/import", post(certificate::import))
        .route(
            "/security/certificate/authorities",
            post(certificate::add_authority),
        )
        .route(
            "/security/certificate/authorities/remove",
            post(certificate::remove_authority),
        )
        .route("/security/login", get(login_settings::page))
        .route("/security/login/{tab}", post(login_settings::submit))
        .route("/accounts", get(accounts::page).post(accounts::create))
        .route("/accounts/edit", post(accounts::change))
        .route("/accounts/groups", get(groups::page).post(groups::submit))
        .route(
            "/accounts/password-policy",
            get(password_policy::page).post(password_policy::submit),
        )
        .route("/accounts/auth-server", get(coming))
        .route("/log", get(log::page))
        .route(
            "/log/settings",
            get(log_settings::page).post(log_settings::submit),
        )
        .route(
            "/maintenance/config",
            get(maintenance::page).post(maintenance::import),
        )
        .route(
            "/maintenance/reset",
            get(maintenance::reset_page).post(maintenance::reset),
        )
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

/// Pages whose settings arrive in a later release: they exist (the seed's
/// menu is complete) and say so.
async fn coming(v: Visitor, uri: axum::http::Uri) -> Result<Response, PageError> {
    let path = uri.path().to_owned();
    let permission = Nav::permission_of(&path).unwrap_or(Permission::SystemView);
    v.require(permission)?;
    let (active, title, what) = match path.as_str() {
        "/accounts/auth-server" => (
            "/accounts/auth-server",
            "Authentication Server",
            "RADIUS and TACACS+ authentication",
        ),
        _ => (
            "/system/notification",
            "Notification",
            "e-mail, SNMP trap and syslog notifications",
        ),
    };
    let mut page = InfoPage::new(&v, active, title);
    page.notes
        .push(format!("Coming in a later release: {what}."));
    Ok(render(&page))
}
