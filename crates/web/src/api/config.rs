//! The configuration document (the same one `ttyward config` handles):
//! read the sections one may see, change sections with a merge, export and
//! import TOML. Every change is validated completely first (every bad
//! field named, nothing changed) and checked per section against the
//! caller's permissions by the service.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ttyward_core::config::Config;
use ttyward_core::permission::Permission;
use ttyward_core::service::Caller;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Auth, Body, QueryArg};
use crate::api::error::ErrorBody;

/// Which permission shows which part of the document.
const VIEW: [(&str, Option<&str>, Permission); 8] = [
    ("ports", None, Permission::SerialView),
    ("services", None, Permission::SecurityView),
    (
        "security",
        Some("password_policy"),
        Permission::AccountsView,
    ),
    ("security", Some("login"), Permission::SecurityView),
    ("security", Some("allowlist"), Permission::SecurityView),
    ("security", Some("dos"), Permission::SecurityView),
    ("event_log", None, Permission::LogView),
    ("system", None, Permission::SystemView),
];

/// The document, reduced to the sections `caller` may see.
fn visible(config: &Config, caller: &Caller) -> Value {
    let full = config.to_value();
    let mut out = serde_json::Map::new();
    for (top, sub, permission) in VIEW {
        if !caller.may(permission) {
            continue;
        }
        let Some(section) = full.get(top) else {
            continue;
        };
        match sub {
            None => {
                out.insert(top.to_owned(), section.clone());
            }
            Some(sub) => {
                if let Some(part) = section.get(sub) {
                    let entry = out
                        .entry(top.to_owned())
                        .or_insert_with(|| Value::Object(serde_json::Map::new()));
                    if let Value::Object(m) = entry {
                        m.insert(sub.to_owned(), part.clone());
                    }
                }
            }
        }
    }
    Value::Object(out)
}

/// The configuration: the sections the caller's group may see (`ports`
/// with serial.view, `services` and `security.login|allowlist|dos` with
/// security.view, `security.password_policy` with accounts.view,
/// `event_log` with log.view, `system` with system.view).
#[utoipa::path(get, path = "/config", tag = "config",
    responses(
        (status = 200, body = Object, description = "The configuration document (see docs/configuration.md)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn get_config(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    if let Some(p) = &caller.principal
        && p.must_change_password
    {
        return Err(ttyward_core::service::ServiceError::PasswordExpired.into());
    }
    Ok(Json(visible(&state.service.config(), &caller)))
}

/// Options of a change.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeOptions {
    /// Save even if the new allowlist would shut out the address making the
    /// change.
    #[serde(default)]
    pub force: bool,
}

/// What a change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// The configuration's revision after the change.
    pub revision: i64,
    /// What changed, in words (empty: nothing).
    pub changed: Vec<String>,
}

/// Change sections of the configuration. The body holds the sections to
/// replace — `ports` (the whole list), `services`, `event_log`,
/// `system`, or any of `security.password_policy|login|allowlist|dos` —
/// and everything else stays. Each changed section needs its permission;
/// the whole result is validated and every bad field named; nothing
/// changes on any error.
#[utoipa::path(patch, path = "/config", tag = "config", params(ChangeOptions),
    request_body(content = Object, description = "Sections to replace"),
    responses(
        (status = 200, body = Changed),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The allowlist would lock out your own address (use force=true)"),
        (status = 422, body = ErrorBody, description = "Invalid fields, each named with its path"),
    ))]
pub async fn patch_config(
    State(state): State<AppState>,
    Auth(caller): Auth,
    QueryArg(options): QueryArg<ChangeOptions>,
    Body(patch): Body<Value>,
) -> Result<Json<Changed>, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object of configuration sections",
        ));
    };
    let mut doc = state.service.config().to_value();
    for (key, value) in patch {
        match (key.as_str(), value, doc.get_mut(&key)) {
            // Security's sub-sections are replaced one by one, so that a
            // caller who may change only the password policy need not send
            // the login settings it may not even see.
            ("security", Value::Object(parts), Some(Value::Object(current))) => {
                for (sub, part) in parts {
                    current.insert(sub, part);
                }
            }
            (_, value, _) => {
                if let Value::Object(d) = &mut doc {
                    d.insert(key, value);
                }
            }
        }
    }
    let new = Config::from_value(&doc).map_err(ttyward_core::service::ServiceError::from)?;
    let change = state
        .service
        .update_config(&caller, new, options.force)
        .await?;
    Ok(Json(Changed {
        revision: change.revision,
        changed: change.changed,
    }))
}

/// The whole configuration as TOML (needs `maintenance.config`). Accounts,
/// passwords and keys are not part of it.
#[utoipa::path(get, path = "/config/export", tag = "config",
    responses(
        (status = 200, content_type = "application/toml", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn export_config(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Response, ApiError> {
    let toml = state.service.export_config(&caller)?;
    let mut response = toml.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"ttyward.toml\""),
    );
    Ok(response)
}

/// Replace the whole configuration with a TOML document (needs
/// `maintenance.config` and the permission of every section it changes).
#[utoipa::path(post, path = "/config/import", tag = "config", params(ChangeOptions),
    request_body(content = String, content_type = "application/toml"),
    responses(
        (status = 200, body = Changed),
        (status = 400, body = ErrorBody, description = "Not UTF-8 text, or an empty document"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody, description = "Not sent as application/toml or text/plain"),
        (status = 422, body = ErrorBody, description = "Invalid fields, each named with its path"),
    ))]
pub async fn import_config(
    State(state): State<AppState>,
    Auth(caller): Auth,
    QueryArg(options): QueryArg<ChangeOptions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Changed>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(essence, "application/toml" | "text/plain") {
        return Err(ApiError::unsupported_media_type(
            "send the configuration as application/toml",
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the configuration is not UTF-8 text"))?;
    let change = state
        .service
        .import_config(&caller, text, options.force)
        .await?;
    Ok((
        StatusCode::OK,
        Json(Changed {
            revision: change.revision,
            changed: change.changed,
        }),
    ))
}
