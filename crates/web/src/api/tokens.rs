//! Long-lived API tokens for scripts: created by an Administrator (or
//! anyone with `accounts.change`) for an account, shown once, revoked at
//! any time. A token acts with its account's current permissions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use ttyward_core::api_token::ApiTokenInfo;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body, PathArg};
use crate::api::error::ErrorBody;

/// A token as listed (never its text).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Id, to revoke it.
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// The account it acts as.
    pub account: String,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it stops working (Unix seconds); absent: never.
    pub expires_at: Option<i64>,
    /// Last use (Unix seconds).
    pub last_used: Option<i64>,
    /// Where it was last used from.
    pub last_source: Option<String>,
}

impl From<ApiTokenInfo> for TokenView {
    fn from(t: ApiTokenInfo) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            account: t.account,
            created_at: t.created_at,
            created_by: t.created_by,
            expires_at: t.expires_at,
            last_used: t.last_used,
            last_source: t.last_source,
        }
    }
}

/// Every API token (needs `accounts.view`).
#[utoipa::path(get, path = "/api-tokens", tag = "accounts",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.service.api_tokens(&caller).await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for (1–64 characters, not only spaces, no control
    /// characters).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// The account it acts as.
    pub account: String,
    /// Days until it expires (1–3650); absent: never.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "whole_days")]
    pub expires_days: Option<u32>,
}

/// JSON has one number type: `30.0` is the integer 30 (JSON Schema agrees),
/// `30.5` is not.
fn whole_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom("expires_days is a whole number of days"))
}

/// The new token: its text is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Use as `Authorization: Bearer <token>`; store it like a password.
    pub token: String,
    /// Its listing.
    pub info: TokenView,
}

/// Create an API token (needs `accounts.change`).
#[utoipa::path(post, path = "/api-tokens", tag = "accounts", request_body = NewToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such account"),
        (status = 409, body = ErrorBody, description = "Too many tokens"),
        (status = 422, body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (info, token) = state
        .service
        .create_api_token(
            &caller,
            &request.name,
            &request.account,
            request.expires_days,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: info.into(),
        }),
    ))
}

/// Revoke an API token (needs `accounts.change`).
#[utoipa::path(delete, path = "/api-tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(id): PathArg<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_api_token(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
