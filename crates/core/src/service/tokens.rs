//! API tokens for scripts: created for an account by someone with
//! `accounts.change`, listed with `accounts.view`, revoked at any time.
//! A token's text is returned once, at creation.

use super::{Caller, Interface, Principal, Service, ServiceError, Source};
use crate::account;
use crate::api_token::{self, ApiTokenInfo};
use crate::event_log::EventId;
use crate::permission::Permission;
use crate::store::now_s;

/// Longest token name.
const MAX_NAME_CHARS: usize = 64;
/// Longest lifetime a token may be given (10 years).
const MAX_DAYS: u32 = 3650;

impl Service {
    /// Create a token acting as `account`, valid for `days` (forever when
    /// `None`). Returns its listing and, once, its text.
    pub async fn create_api_token(
        &self,
        caller: &Caller,
        name: &str,
        account_name: &str,
        days: Option<u32>,
    ) -> Result<(ApiTokenInfo, String), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ServiceError::Invalid(format!(
                "a token name is 1–{MAX_NAME_CHARS} printable characters saying what the token is for"
            )));
        }
        if days.is_some_and(|d| d == 0 || d > MAX_DAYS) {
            return Err(ServiceError::Invalid(format!(
                "expires_days is 1–{MAX_DAYS}, or left out for a token that does not expire"
            )));
        }
        let target = self.account_named(account_name).await?;
        let token = api_token::generate()?;
        let now = now_s();
        let expires = days.map(|d| now + i64::from(d) * 86_400);
        let (t, n, by) = (token.clone(), name.to_owned(), caller.user());
        let created = self
            .inner
            .store
            .call(move |c| {
                let Some(id) = api_token::insert(c, &t, &n, target.id, &by, expires, now)? else {
                    return Ok(None);
                };
                Ok(api_token::list(c)?.into_iter().find(|x| x.id == id))
            })
            .await?;
        let Some(info) = created else {
            return Err(ServiceError::Conflict(format!(
                "{} API tokens exist already; revoke unused ones first",
                api_token::MAX_TOKENS
            )));
        };
        self.audit(
            caller,
            EventId::ApiTokenCreated,
            format!(
                "API token {} '{}' created for account '{}'",
                info.id, info.name, info.account
            ),
        );
        Ok((info, token))
    }

    /// Every API token (never their text).
    pub async fn api_tokens(&self, caller: &Caller) -> Result<Vec<ApiTokenInfo>, ServiceError> {
        caller.require(Permission::AccountsView)?;
        Ok(self.inner.store.call(|c| api_token::list(c)).await?)
    }

    /// Revoke a token.
    pub async fn revoke_api_token(&self, caller: &Caller, id: i64) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let Some(info) = self
            .inner
            .store
            .call(move |c| api_token::revoke(c, id))
            .await?
        else {
            return Err(ServiceError::NotFound {
                what: "API token",
                name: id.to_string(),
            });
        };
        self.audit(
            caller,
            EventId::ApiTokenRevoked,
            format!(
                "API token {} '{}' of account '{}' revoked",
                info.id, info.name, info.account
            ),
        );
        Ok(())
    }

    /// The caller an API token stands for: its account, if active, with
    /// its group's permissions as they are now.
    pub(super) async fn authenticate_api_token(
        &self,
        token: &str,
        source: Source,
    ) -> Result<Caller, ServiceError> {
        let (token, from) = (token.to_owned(), source.to_string());
        let found = self
            .inner
            .store
            .call(move |c| {
                let Some((account_id, _)) = api_token::validate(c, &token, &from, now_s())? else {
                    return Ok(None);
                };
                let Some(a) = account::get(c, account_id)?.filter(|a| a.active) else {
                    return Ok(None);
                };
                let group = account::group(c, &a.group)?;
                Ok(Some((a, group)))
            })
            .await?;
        let Some((a, group)) = found else {
            return Err(ServiceError::Unauthenticated);
        };
        Ok(Caller {
            principal: Some(Principal {
                account_id: a.id,
                name: a.name,
                group: a.group,
                permissions: group.map(|g| g.permissions).unwrap_or_default(),
                session_id: None,
                // Unattended scripts cannot change a password; the token
                // is revoked, not expired, when the account is in doubt.
                must_change_password: false,
            }),
            source,
            interface: Interface::Api,
        })
    }
}
