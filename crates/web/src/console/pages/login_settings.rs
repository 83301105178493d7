//! Security > Login Settings: the seed's three tabs as three forms on one
//! page — Login Message (the message shown before login and the failure
//! message, default or custom, each at most 256 characters), Login Lockout
//! (times shown in minutes as on the seed's page; the document stores
//! seconds) and Session Control (idle timeout in minutes, lifetime in
//! hours). Each form changes only its own tab's settings.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use ttyward_core::login::{DEFAULT_FAILURE_MESSAGE, LoginSettings, MAX_MESSAGE_CHARS};
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, in_units, number_or_text};
use crate::api::AppState;

const MINUTE: (u32, &str) = (60, "minutes");
const HOUR: (u32, &str) = (3600, "hours");

/// The three forms' values as shown.
struct LoginView {
    message: String,
    failure_custom: bool,
    failure_message: String,
    lockout_enabled: bool,
    max_failures: String,
    lockout_min: String,
    reset_counter: bool,
    idle_min: String,
    lifetime_h: String,
    max_per_account: String,
    max_total: String,
}

impl LoginView {
    fn of(l: &LoginSettings) -> LoginView {
        LoginView {
            message: l.message.clone(),
            failure_custom: l.failure_message.is_some(),
            failure_message: l.failure_message.clone().unwrap_or_default(),
            lockout_enabled: l.lockout.enabled,
            max_failures: l.lockout.max_failures.to_string(),
            lockout_min: in_units(l.lockout.lockout_s, MINUTE.0),
            reset_counter: l.lockout.reset_counter,
            idle_min: in_units(l.sessions.idle_timeout_s, MINUTE.0),
            lifetime_h: in_units(l.sessions.lifetime_s, HOUR.0),
            max_per_account: l.sessions.max_per_account.to_string(),
            max_total: l.sessions.max_total.to_string(),
        }
    }

    /// "(12/256)": the seed's counter, for the label.
    fn count(text: &str) -> String {
        format!("({}/{MAX_MESSAGE_CHARS})", text.chars().count())
    }
}

#[derive(Template)]
#[template(path = "login_settings.html")]
struct LoginSettingsPage {
    chrome: Chrome,
    view: LoginView,
    message_count: String,
    failure_count: String,
    default_failure: &'static str,
    max_chars: usize,
    can_change: bool,
}

impl LoginSettingsPage {
    fn new(chrome: Chrome, view: LoginView, can_change: bool) -> LoginSettingsPage {
        LoginSettingsPage {
            message_count: LoginView::count(&view.message),
            failure_count: LoginView::count(&view.failure_message),
            default_failure: DEFAULT_FAILURE_MESSAGE,
            max_chars: MAX_MESSAGE_CHARS,
            can_change,
            view,
            chrome,
        }
    }
}

/// The three forms.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let view = LoginView::of(&state.service.config().security.login);
    let can_change = v.caller.may(Permission::SecurityChange);
    Ok(render(&LoginSettingsPage::new(
        Chrome::new(&v, "/security/login"),
        view,
        can_change,
    )))
}

/// Fields of the three forms; each form sends its own.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    failure: String,
    #[serde(default)]
    failure_message: String,
    lockout_enabled: Option<String>,
    #[serde(default)]
    max_failures: String,
    #[serde(default)]
    lockout_min: String,
    reset_counter: Option<String>,
    #[serde(default)]
    idle_min: String,
    #[serde(default)]
    lifetime_h: String,
    #[serde(default)]
    max_per_account: String,
    #[serde(default)]
    max_total: String,
}

/// Save one tab: `message`, `lockout` or `sessions`.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(tab): Path<String>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let config = state.service.config();
    let current = &config.security.login;
    let mut edit = ConfigEdit::of(&config);
    let mut shown = LoginView::of(current);
    let done = match tab.as_str() {
        "message" => {
            let custom = form.failure == "custom";
            if custom && form.failure_message.trim().is_empty() {
                edit.problem(
                    "Authentication failure message",
                    "write the custom message, or choose the default one",
                );
            }
            edit.set("/security/login/message", json!(form.message));
            edit.set(
                "/security/login/failure_message",
                if custom {
                    json!(form.failure_message)
                } else {
                    json!(null)
                },
            );
            shown.message = form.message;
            shown.failure_custom = custom;
            shown.failure_message = form.failure_message;
            "The login page shows the new messages now."
        }
        "lockout" => {
            let lockout_s = edit.seconds(
                "Lockout time",
                &form.lockout_min,
                current.lockout.lockout_s,
                MINUTE,
                1..=1440,
            );
            edit.set(
                "/security/login/lockout",
                json!({
                    "enabled": form.lockout_enabled.is_some(),
                    "max_failures": number_or_text(&form.max_failures),
                    "lockout_s": lockout_s,
                    "reset_counter": form.reset_counter.is_some(),
                }),
            );
            shown.lockout_enabled = form.lockout_enabled.is_some();
            shown.max_failures = form.max_failures;
            shown.lockout_min = form.lockout_min;
            shown.reset_counter = form.reset_counter.is_some();
            "Logins from now on are counted under the new lockout settings."
        }
        "sessions" => {
            let idle = edit.seconds(
                "Idle timeout",
                &form.idle_min,
                current.sessions.idle_timeout_s,
                MINUTE,
                1..=1440,
            );
            let lifetime = edit.seconds(
                "Session lifetime",
                &form.lifetime_h,
                current.sessions.lifetime_s,
                HOUR,
                1..=168,
            );
            edit.set(
                "/security/login/sessions",
                json!({
                    "idle_timeout_s": idle,
                    "lifetime_s": lifetime,
                    "max_per_account": number_or_text(&form.max_per_account),
                    "max_total": number_or_text(&form.max_total),
                }),
            );
            shown.idle_min = form.idle_min;
            shown.lifetime_h = form.lifetime_h;
            shown.max_per_account = form.max_per_account;
            shown.max_total = form.max_total;
            "Sessions follow the new limits from now on."
        }
        other => {
            return Err(PageError::NotFound(format!(
                "Login Settings has no tab '{}'; use message, lockout or sessions",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/security/login");
    let status = chrome.outcome(result, |c| change_notice(c, done))?;
    let view = if status == StatusCode::OK {
        LoginView::of(&state.service.config().security.login)
    } else {
        shown
    };
    let page = LoginSettingsPage::new(chrome, view, true);
    Ok((status, render(&page)).into_response())
}
