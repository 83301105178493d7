//! Maintenance > Configuration: download the configuration (TOML, through
//! the REST API's export with the session cookie) and import one pasted
//! into the page (or loaded from a file by the page's script, which only
//! fills the text box). The import is the service's: validated completely,
//! every bad field named, nothing changed on any error.
//!
//! Maintenance > Factory Reset: the page names every consequence and asks
//! for the same phrase as the API before resetting.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

#[derive(Template)]
#[template(path = "maintenance.html")]
struct ConfigPage {
    chrome: Chrome,
    revision: i64,
    /// The text of a refused import, for correction.
    toml: String,
}

/// The download link and the import form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::MaintenanceConfig)?;
    Ok(render(&ConfigPage {
        revision: state.service.stored_revision().await?,
        toml: String::new(),
        chrome: Chrome::new(&v, "/maintenance/config"),
    }))
}

/// Import form fields.
#[derive(Deserialize)]
pub struct ImportForm {
    csrf: String,
    toml: String,
    force: Option<String>,
}

/// Replace the configuration with the pasted document.
pub async fn import(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<ImportForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::MaintenanceConfig)?;
    let result = state
        .service
        .import_config(&v.caller, &form.toml, form.force.is_some())
        .await;
    let mut chrome = Chrome::new(&v, "/maintenance/config");
    let status = chrome.outcome(result, |c| {
        if c.changed.is_empty() {
            format!(
                "Imported: it equals the configuration in force (revision {}); nothing changed.",
                c.revision
            )
        } else {
            format!(
                "Imported as revision {}: {}.",
                c.revision,
                c.changed.join("; ")
            )
        }
    })?;
    let page = ConfigPage {
        revision: state.service.stored_revision().await?,
        toml: if status == StatusCode::OK {
            String::new()
        } else {
            form.toml
        },
        chrome,
    };
    Ok((status, render(&page)).into_response())
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    phrase: &'static str,
}

/// The Factory Reset page with its consequences.
pub async fn reset_page(v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::MaintenanceSystem)?;
    Ok(render(&ResetPage {
        chrome: Chrome::new(&v, "/maintenance/reset"),
        phrase: crate::api::maintenance::CONFIRMATION,
    }))
}

/// Reset form fields.
#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    confirm: String,
}

/// Reset, then show first use (the session is gone with every account).
pub async fn reset(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<ResetForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::MaintenanceSystem)?;
    if form.confirm.trim() != crate::api::maintenance::CONFIRMATION {
        let mut chrome = Chrome::new(&v, "/maintenance/reset");
        chrome.problem = Some(format!(
            "Nothing was reset: type exactly \"{}\" to confirm.",
            crate::api::maintenance::CONFIRMATION
        ));
        let page = ResetPage {
            chrome,
            phrase: crate::api::maintenance::CONFIRMATION,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    state.factory_reset(&v.caller).await?;
    let mut r = axum::response::Redirect::to("/setup").into_response();
    r.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        axum::http::HeaderValue::from_static(crate::api::CLEAR_SESSION_COOKIE),
    );
    Ok(r)
}
