//! Account Management > Accounts: the list, a form to create an account,
//! and per account forms to enable or disable it, move it to another
//! group, set its password and delete it (behind a confirmation); each
//! row links to the account's SSH keys (`ssh_keys`). The rules — the last
//! active Administrator stays, sessions end with a disable, a move or a
//! delete — are the service's; its refusals are shown next to the forms.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::event_log::export::format_time;
use ttyward_core::permission::Permission;
use ttyward_core::service::ServiceError;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

struct AccountRow {
    name: String,
    group: String,
    active: bool,
    password_changed: String,
    created: String,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    groups: Vec<String>,
    can_change: bool,
    /// The create form's name and group after a refusal.
    new_name: String,
    new_group: String,
    /// The account whose forms stay open (the one just changed).
    open: String,
}

fn time(unix_s: i64) -> String {
    format_time(unix_s.saturating_mul(1000))
}

async fn show(state: &AppState, v: &Visitor, chrome: Chrome) -> Result<AccountsPage, PageError> {
    let me = v.caller.principal.as_ref().map(|p| p.name.clone());
    let accounts = state
        .service
        .accounts(&v.caller)
        .await?
        .into_iter()
        .map(|a| AccountRow {
            is_me: me.as_deref() == Some(a.name.as_str()),
            password_changed: time(a.password_changed_at),
            created: time(a.created_at),
            name: a.name,
            group: a.group,
            active: a.active,
        })
        .collect();
    let groups = state
        .service
        .groups(&v.caller)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    Ok(AccountsPage {
        accounts,
        groups,
        can_change: v.caller.may(Permission::AccountsChange),
        new_name: String::new(),
        new_group: ttyward_core::permission::OPERATOR.into(),
        open: String::new(),
        chrome,
    })
}

/// The list and the forms.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::AccountsView)?;
    let page = show(&state, &v, Chrome::new(&v, "/accounts")).await?;
    Ok(render(&page))
}

/// Create form fields.
#[derive(Deserialize)]
pub struct CreateForm {
    csrf: String,
    name: String,
    group: String,
    password: String,
    password2: String,
}

/// Create an account.
pub async fn create(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::AccountsChange)?;
    let result = if form.password != form.password2 {
        Err(ServiceError::Invalid(
            "The two passwords differ; type the same password twice.".into(),
        ))
    } else {
        state
            .service
            .create_account(&v.caller, &form.name, &form.group, &form.password)
            .await
    };
    let mut chrome = Chrome::new(&v, "/accounts");
    let status = chrome.outcome(result, |a| {
        format!("Account '{}' created in group {}.", a.name, a.group)
    })?;
    let mut page = show(&state, &v, chrome).await?;
    if status != StatusCode::OK {
        page.new_name = form.name.chars().take(32).collect();
        page.new_group = form.group;
    }
    Ok((status, render(&page)).into_response())
}

/// Per-account form fields: `action` says which form was sent.
#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    name: String,
    action: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    confirm: Option<String>,
}

/// Change one account: `active`, `group`, `password` or `delete`.
pub async fn change(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<ChangeForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::AccountsChange)?;
    let s = &state.service;
    let name = form.name.as_str();
    let result: Result<String, ServiceError> = match form.action.as_str() {
        "active" => {
            let active = form.active == "true";
            s.set_account_active(&v.caller, name, active)
                .await
                .map(|()| {
                    if active {
                        format!("Account '{name}' enabled.")
                    } else {
                        format!("Account '{name}' disabled; its sessions were ended.")
                    }
                })
        }
        "group" => s
            .set_account_group(&v.caller, name, &form.group)
            .await
            .map(|()| {
                format!(
                    "Account '{name}' moved to {}; its sessions were ended.",
                    form.group
                )
            }),
        "password" if form.password != form.password2 => Err(ServiceError::Invalid(
            "The two passwords differ; type the same password twice.".into(),
        )),
        "password" => s
            .set_password(&v.caller, name, &form.password)
            .await
            .map(|()| format!("Password of '{name}' set; its other sessions were ended.")),
        "delete" if form.confirm.is_none() => Err(ServiceError::Invalid(format!(
            "Tick \"I understand\" to delete '{name}'; nothing was deleted."
        ))),
        "delete" => s
            .delete_account(&v.caller, name)
            .await
            .map(|()| format!("Account '{name}' deleted; its sessions were ended.")),
        other => Err(ServiceError::Invalid(format!(
            "Unknown account action '{}'; reload the page and use its forms.",
            other.chars().take(32).collect::<String>()
        ))),
    };
    let mut chrome = Chrome::new(&v, "/accounts");
    let status = chrome.outcome(result, Clone::clone)?;
    let mut page = show(&state, &v, chrome).await?;
    page.open = form.name.chars().take(32).collect();
    Ok((status, render(&page)).into_response())
}
