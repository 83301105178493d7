//! Account Management: accounts, groups, sessions, lockouts. Thin: the
//! service checks permissions and rules (last Administrator, old password,
//! policy) and records the events.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use ttyward_core::permission::Permission;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body, PathArg};
use crate::api::error::ErrorBody;

/// An account as listed (never a password or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Name.
    pub name: String,
    /// Group.
    pub group: String,
    /// Disabled accounts cannot log in.
    pub active: bool,
    /// When the password was last set (Unix seconds).
    pub password_changed_at: i64,
    /// When the account was created (Unix seconds).
    pub created_at: i64,
}

impl From<ttyward_core::account::Account> for AccountView {
    fn from(a: ttyward_core::account::Account) -> Self {
        AccountView {
            name: a.name,
            group: a.group,
            active: a.active,
            password_changed_at: a.password_changed_at,
            created_at: a.created_at,
        }
    }
}

/// Every account (needs `accounts.view`).
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_accounts(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let accounts = state.service.accounts(&caller).await?;
    Ok(Json(accounts.into_iter().map(AccountView::from).collect()))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Name: letters, digits, `.`, `_`, `-`; starts with a letter or digit.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )]
    pub name: String,
    /// Group: Administrator, Operator or a custom group.
    pub group: String,
    /// Password (the policy applies).
    pub password: String,
}

/// Create an account (needs `accounts.change`).
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = NewAccount,
    responses(
        (status = 201, body = AccountView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such group"),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody, description = "Name or password refused"),
    ))]
pub async fn create_account(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let created = state
        .service
        .create_account(&caller, &request.name, &request.group, &request.password)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Changes to an account; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// Enable or disable (disabling ends its sessions).
    pub active: Option<bool>,
    /// Move to another group (its sessions end).
    pub group: Option<String>,
    /// Set a new password (an Administrator setting another's).
    pub password: Option<String>,
}

/// Change an account (needs `accounts.change`). The last active
/// Administrator cannot be disabled or moved.
#[utoipa::path(patch, path = "/accounts/{name}", tag = "accounts", request_body = AccountChange,
    params(("name" = String, Path, description = "Account name")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Would leave no active Administrator"),
        (status = 422, body = ErrorBody),
    ))]
pub async fn update_account(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
    Body(change): Body<AccountChange>,
) -> Result<StatusCode, ApiError> {
    let s = &state.service;
    if let Some(password) = &change.password {
        s.set_password(&caller, &name, password).await?;
    }
    if let Some(group) = &change.group {
        s.set_account_group(&caller, &name, group).await?;
    }
    if let Some(active) = change.active {
        s.set_account_active(&caller, &name, active).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an account (needs `accounts.change`); its sessions end.
#[utoipa::path(delete, path = "/accounts/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Account name")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The last active Administrator"),
    ))]
pub async fn delete_account(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_account(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    /// Name.
    pub name: String,
    /// Administrator and Operator are built in and fixed.
    pub builtin: bool,
    /// Permission names, e.g. `serial.change`.
    pub permissions: Vec<String>,
}

/// Every group with its permissions (needs `accounts.view`).
#[utoipa::path(get, path = "/groups", tag = "accounts",
    responses((status = 200, body = Vec<GroupView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_groups(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    let groups = state.service.groups(&caller).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|g| GroupView {
                name: g.name,
                builtin: g.builtin,
                permissions: g.permissions.iter().map(|p| p.name().to_owned()).collect(),
            })
            .collect(),
    ))
}

/// A custom group's permissions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPermissions {
    /// Permission names, e.g. `["serial.view", "log.view"]`.
    #[schema(value_type = Vec<PermissionName>)]
    pub permissions: Vec<String>,
}

/// A permission name (the schema lists the 15, taken from the code).
pub struct PermissionName;

impl utoipa::PartialSchema for PermissionName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Permission::ALL.map(|p| p.name())))
            .into()
    }
}

impl utoipa::ToSchema for PermissionName {}

/// Create or change a custom group (needs `accounts.change`).
#[utoipa::path(put, path = "/groups/{name}", tag = "accounts", request_body = GroupPermissions,
    params(("name" = String, Path, description = "Group name: letters, digits, `.`, `_`, `-`", min_length = 1, max_length = 32, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A built-in group"),
        (status = 422, body = ErrorBody, description = "Unknown permission name"),
    ))]
pub async fn put_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
    Body(request): Body<GroupPermissions>,
) -> Result<StatusCode, ApiError> {
    let mut permissions = BTreeSet::new();
    let mut unknown = Vec::new();
    for p in &request.permissions {
        match Permission::from_name(p) {
            Some(p) => {
                permissions.insert(p);
            }
            None => unknown.push(p.chars().take(64).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        return Err(ttyward_core::service::ServiceError::Invalid(format!(
            "unknown permission(s): {}; known: {}",
            unknown.join(", "),
            Permission::ALL.map(|p| p.name()).join(", ")
        ))
        .into());
    }
    state.service.put_group(&caller, &name, permissions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a custom group that has no members (needs `accounts.change`).
#[utoipa::path(delete, path = "/groups/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Group name")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Built in, or has members"),
    ))]
pub async fn delete_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_group(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A live session (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Id, to end it.
    pub id: i64,
    /// The account.
    pub account: String,
    /// `web`, `api`, `cli`, `ssh`, `telnet`.
    pub interface: String,
    /// Where the login came from.
    pub source: Option<String>,
    /// Login time (Unix seconds).
    pub created_at: i64,
    /// Last use (Unix seconds).
    pub last_seen: i64,
}

/// Live sessions: everyone's with `accounts.view`, otherwise one's own.
#[utoipa::path(get, path = "/sessions", tag = "accounts",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = state.service.sessions(&caller).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.id,
                account: s.account,
                interface: s.interface,
                source: s.source,
                created_at: s.created_at,
                last_seen: s.last_seen,
            })
            .collect(),
    ))
}

/// End a session: one's own, or anyone's with `accounts.change`.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(id): PathArg<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.end_session(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which lockouts to lift.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    /// An account (from every address).
    pub account: Option<String>,
    /// A source address (every account from it).
    pub source: Option<String>,
}

/// How many lockout records were removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unlocked {
    /// Records removed.
    pub removed: usize,
}

/// Lift login lockouts early (needs `security.change`).
#[utoipa::path(post, path = "/lockouts/unlock", tag = "accounts", request_body = Unlock,
    responses((status = 200, body = Unlocked), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn unlock(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<Unlock>,
) -> Result<Json<Unlocked>, ApiError> {
    let removed = state
        .service
        .unlock(
            &caller,
            request.account.as_deref(),
            request.source.as_deref(),
        )
        .await?;
    Ok(Json(Unlocked { removed }))
}
