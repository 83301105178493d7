//! Logging in and out, first use, and the caller's own account.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use ttyward_core::service::{Interface, Source};
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body, Peer, SESSION_COOKIE, SameOrigin};
use crate::api::error::ErrorBody;

/// What the login page shows before anyone logs in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Welcome {
    /// The login message (Security > Login Settings), possibly empty.
    pub login_message: String,
    /// No account exists yet: create the first Administrator with the
    /// setup code (`POST /setup`).
    pub setup_required: bool,
}

/// The login page's message, and whether first-use setup is pending.
#[utoipa::path(get, path = "/login", tag = "session",
    responses((status = 200, body = Welcome)))]
pub async fn welcome(State(state): State<AppState>) -> Result<Json<Welcome>, ApiError> {
    let setup_required = !state.service.has_administrator().await?;
    Ok(Json(Welcome {
        login_message: state.service.config().security.login.message.clone(),
        setup_required,
    }))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub name: String,
    /// Password.
    pub password: String,
    /// `true`: return the session token in the body for
    /// `Authorization: Bearer` (scripts) and set no cookie. `false`
    /// (default): set the HttpOnly session cookie (browsers).
    #[serde(default)]
    pub bearer: bool,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The account logged in.
    pub account: String,
    /// The session's id (to list or end it).
    pub session_id: i64,
    /// The password has expired: only `PUT /me/password` works until it
    /// is changed.
    pub must_change_password: bool,
    /// The bearer token, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Log in. Refused logins all get the configured failure message; too
/// many lock the account for this address (and the address) for the
/// lockout time.
#[utoipa::path(post, path = "/login", tag = "session", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse, description = "Logged in; the cookie is set unless a bearer token was asked for"),
        (status = 401, body = ErrorBody, description = "Refused (wrong credentials, disabled, locked out)"),
        (status = 429, body = ErrorBody, description = "Session limit reached"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Peer(ip): Peer,
    _: SameOrigin,
    Body(request): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let interface = if request.bearer {
        Interface::Api
    } else {
        Interface::Web
    };
    let ok = state
        .service
        .login(&request.name, &request.password, Source::Net(ip), interface)
        .await?;
    let token = ok.token.expose().to_owned();
    let body = LoginResponse {
        account: ok.account,
        session_id: ok.session_id,
        must_change_password: ok.must_change_password,
        token: request.bearer.then(|| token.clone()),
    };
    let mut response = Json(body).into_response();
    if !request.bearer {
        // Hex tokens need no quoting; the value cannot break the header.
        let cookie = format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
        let value = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// End the caller's session (and clear the cookie).
#[utoipa::path(post, path = "/logout", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Response, ApiError> {
    state.service.logout(&caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(super::CLEAR_SESSION_COOKIE),
    );
    Ok(response)
}

/// First use: create the first Administrator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time setup code (`DIR/setup-code`, or the daemon's log).
    pub setup_code: String,
    /// The Administrator's account name.
    pub name: String,
    /// Its password (the password policy applies).
    pub password: String,
}

/// Create the first Administrator with the one-time setup code. The code
/// dies when used; afterwards this answers 409.
#[utoipa::path(post, path = "/setup", tag = "session", request_body = SetupRequest,
    responses(
        (status = 201, description = "Created; log in next"),
        (status = 409, body = ErrorBody, description = "An account exists already, or the code is wrong or used"),
        (status = 422, body = ErrorBody, description = "Name or password refused"),
    ))]
pub async fn setup(
    State(state): State<AppState>,
    Peer(ip): Peer,
    _: SameOrigin,
    Body(request): Body<SetupRequest>,
) -> Result<StatusCode, ApiError> {
    let caller = ttyward_core::service::Caller {
        principal: None,
        source: Source::Net(ip),
        interface: Interface::Web,
    };
    state
        .service
        .create_first_admin(
            &caller,
            &request.name,
            &request.password,
            Some(&request.setup_code),
        )
        .await?;
    Ok(StatusCode::CREATED)
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// Account name.
    pub name: String,
    /// Group.
    pub group: String,
    /// Permission names of the group.
    pub permissions: Vec<String>,
    /// Only a password change is allowed until it is done.
    pub must_change_password: bool,
    /// The current session's id.
    pub session_id: Option<i64>,
}

/// Who is logged in, with which permissions.
#[utoipa::path(get, path = "/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Auth(caller): Auth) -> Result<Json<Me>, ApiError> {
    let p = caller.principal.ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(Me {
        name: p.name,
        group: p.group,
        permissions: p.permissions.iter().map(|x| x.name().to_owned()).collect(),
        must_change_password: p.must_change_password,
        session_id: p.session_id,
    }))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub old_password: String,
    /// The new one (the password policy applies).
    pub new_password: String,
}

/// Change one's own password (the old one is required). Other sessions of
/// the account end.
#[utoipa::path(put, path = "/me/password", tag = "session", request_body = PasswordChange,
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Old password wrong, or new one refused by the policy"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .change_own_password(&caller, &request.old_password, &request.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
