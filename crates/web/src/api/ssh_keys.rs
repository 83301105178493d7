//! SSH public keys for the Reverse SSH consoles: list, add and remove an
//! account's authorized keys. Thin: the service checks the key (type,
//! size, damage) and decides who may do what — an account manages its own
//! keys, `accounts.view` lists anyone's, `accounts.change` changes
//! anyone's — and records the events. The login with a key is the SSH
//! server's, not this module's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use ttyward_core::service::ssh_keys::SshKeyInfo;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body, PathArg};
use crate::api::error::ErrorBody;

/// An authorized key as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SshKeyView {
    /// Id, to remove it.
    pub id: i64,
    /// The account it belongs to.
    pub account: String,
    /// Key type, e.g. `ssh-ed25519`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key as OpenSSH writes it, "type base64" (the comment apart).
    pub key: String,
    /// The comment given with it (often user@host); may be empty.
    pub comment: String,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// When it was added (Unix seconds).
    pub created_at: i64,
}

impl From<SshKeyInfo> for SshKeyView {
    fn from(k: SshKeyInfo) -> Self {
        SshKeyView {
            kind: k
                .key
                .split_once(' ')
                .map(|(kind, _)| kind.to_owned())
                .unwrap_or_default(),
            id: k.id,
            account: k.account,
            key: k.key,
            comment: k.comment,
            fingerprint: k.fingerprint,
            created_at: k.created_at,
        }
    }
}

/// A key to authorize.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSshKey {
    /// One OpenSSH public key line, as in a `.pub` file: "type base64
    /// [comment]". Ed25519, ECDSA (P-256/384/521) or RSA of at least 2048
    /// bits; no `authorized_keys` options, certificates or `sk-` keys.
    #[schema(
        example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ alice@host",
        max_length = 8192
    )]
    pub key: String,
}

/// An account's SSH keys: one's own, or anyone's with `accounts.view`.
#[utoipa::path(get, path = "/accounts/{name}/ssh-keys", tag = "accounts",
    params(("name" = String, Path, description = "Account name")),
    responses(
        (status = 200, body = Vec<SshKeyView>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Another account's keys, without accounts.view; or one's own password has expired"),
        (status = 404, body = ErrorBody, description = "No such account"),
    ))]
pub async fn list_ssh_keys(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
) -> Result<Json<Vec<SshKeyView>>, ApiError> {
    let keys = state.service.ssh_keys(&caller, &name).await?;
    Ok(Json(keys.into_iter().map(SshKeyView::from).collect()))
}

/// Authorize a public key for logins on Reverse SSH ports as this account:
/// one's own, or anyone's with `accounts.change`.
#[utoipa::path(post, path = "/accounts/{name}/ssh-keys", tag = "accounts", request_body = NewSshKey,
    params(("name" = String, Path, description = "Account name")),
    responses(
        (status = 201, body = SshKeyView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Another account's keys, without accounts.change; or one's own password has expired"),
        (status = 404, body = ErrorBody, description = "No such account"),
        (status = 409, body = ErrorBody, description = "The account has this key already, or its 32 keys"),
        (status = 422, body = ErrorBody, description = "Not an acceptable public key line; the message says why"),
    ))]
pub async fn add_ssh_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(name): PathArg<String>,
    Body(request): Body<NewSshKey>,
) -> Result<(StatusCode, Json<SshKeyView>), ApiError> {
    let added = state
        .service
        .add_ssh_key(&caller, &name, &request.key)
        .await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// Remove one of an account's SSH keys: one's own, or anyone's with
/// `accounts.change`.
#[utoipa::path(delete, path = "/accounts/{name}/ssh-keys/{id}", tag = "accounts",
    params(
        ("name" = String, Path, description = "Account name"),
        ("id" = i64, Path, description = "Key id (from the list)"),
    ),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "Another account's keys, without accounts.change; or one's own password has expired"),
        (status = 404, body = ErrorBody, description = "No such account, or no such key of it"),
    ))]
pub async fn remove_ssh_key(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg((name, id)): PathArg<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    state.service.remove_ssh_key(&caller, &name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
