//! "Change my password" (`/account/password`), linked from every page's
//! header. It needs no permission: everyone may change their own password
//! (the old one is required), and it is the one page that works while a
//! password has expired — every other page sends the visitor here.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::service::ServiceError;

use super::super::{Nav, PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

#[derive(Template)]
#[template(path = "own_password.html")]
struct PasswordPage {
    chrome: Chrome,
    expired: bool,
}

fn expired(v: &Visitor) -> bool {
    v.caller
        .principal
        .as_ref()
        .is_some_and(|p| p.must_change_password)
}

/// The form.
pub async fn page(v: Visitor) -> Result<Response, PageError> {
    Ok(render(&PasswordPage {
        expired: expired(&v),
        chrome: Chrome::new(&v, "/account/password"),
    }))
}

/// Form fields.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    old_password: String,
    new_password: String,
    new_password2: String,
}

/// Change the visitor's own password; the session stays, the account's
/// other sessions end.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    let result = if form.new_password != form.new_password2 {
        Err(ServiceError::Invalid(
            "The two new passwords differ; type the same new password twice.".into(),
        ))
    } else {
        state
            .service
            .change_own_password(&v.caller, &form.old_password, &form.new_password)
            .await
    };
    let was_expired = expired(&v);
    let mut chrome = Chrome::new(&v, "/account/password");
    let status = chrome.outcome(result, |_| {
        "Your password was changed; your other sessions were ended.".into()
    })?;
    if status == StatusCode::OK && was_expired {
        // The menu was empty while the password had expired; the session
        // now passes every check, so show the group's menu again.
        let mut caller = v.caller.clone();
        if let Some(p) = caller.principal.as_mut() {
            p.must_change_password = false;
        }
        chrome.nav = Nav::for_caller(&caller);
    }
    let page = PasswordPage {
        expired: was_expired && status != StatusCode::OK,
        chrome,
    };
    Ok((status, render(&page)).into_response())
}
