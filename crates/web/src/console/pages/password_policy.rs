//! Account Management > Password Policy: minimum length, required
//! character kinds, password lifetime. The policy applies to passwords set
//! from now on; an existing password is judged against the lifetime at
//! each login.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use ttyward_core::password::PasswordPolicy;
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, number_or_text, optional_number};
use crate::api::AppState;

/// The form's values as shown.
struct PolicyView {
    min_length: String,
    require_digit: bool,
    require_mixed_case: bool,
    require_special: bool,
    lifetime_days: String,
}

impl PolicyView {
    fn of(p: &PasswordPolicy) -> PolicyView {
        PolicyView {
            min_length: p.min_length.to_string(),
            require_digit: p.require_digit,
            require_mixed_case: p.require_mixed_case,
            require_special: p.require_special,
            lifetime_days: p.lifetime_days.map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "password_policy.html")]
struct PolicyPage {
    chrome: Chrome,
    policy: PolicyView,
    can_change: bool,
}

/// The form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::AccountsView)?;
    Ok(render(&PolicyPage {
        policy: PolicyView::of(&state.service.config().security.password_policy),
        can_change: v.caller.may(Permission::AccountsChange),
        chrome: Chrome::new(&v, "/accounts/password-policy"),
    }))
}

/// Form fields.
#[derive(Deserialize)]
pub struct PolicyForm {
    csrf: String,
    min_length: String,
    require_digit: Option<String>,
    require_mixed_case: Option<String>,
    require_special: Option<String>,
    lifetime_days: String,
}

/// Save the policy.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<PolicyForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::AccountsChange)?;
    let mut edit = ConfigEdit::of(&state.service.config());
    edit.set(
        "/security/password_policy",
        json!({
            "min_length": number_or_text(&form.min_length),
            "require_digit": form.require_digit.is_some(),
            "require_mixed_case": form.require_mixed_case.is_some(),
            "require_special": form.require_special.is_some(),
            "lifetime_days": optional_number(&form.lifetime_days),
        }),
    );
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/accounts/password-policy");
    let status = chrome.outcome(result, |c| {
        change_notice(c, "New passwords must meet this policy from now on.")
    })?;
    let policy = if status == StatusCode::OK {
        PolicyView::of(&state.service.config().security.password_policy)
    } else {
        PolicyView {
            min_length: form.min_length,
            require_digit: form.require_digit.is_some(),
            require_mixed_case: form.require_mixed_case.is_some(),
            require_special: form.require_special.is_some(),
            lifetime_days: form.lifetime_days,
        }
    };
    let page = PolicyPage {
        policy,
        can_change: true,
        chrome,
    };
    Ok((status, render(&page)).into_response())
}
