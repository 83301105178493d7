//! "SSH keys" (`/account/ssh-keys`), linked from every page's header and,
//! per account, from Account Management > Accounts: the public keys an
//! account may log in with on Reverse SSH ports instead of its password —
//! listed (type, fingerprint, comment, when added), added by pasting a
//! `.pub` line, removed one by one. Without `?account=` the page is the
//! visitor's own; with it, another account's.
//!
//! Nothing is decided here: the service checks the key and who may see
//! and change which keys (one's own always; anyone's with `accounts.view`
//! to list, `accounts.change` to change). The one check of the page's own
//! is for a pasted private key, which is refused without being echoed
//! back into the form.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::permission::Permission;
use ttyward_core::service::ServiceError;
use ttyward_core::service::ssh_keys::MAX_KEYS_PER_ACCOUNT;

use super::super::{PageError, Visitor, render};
use super::Chrome;
use crate::api::AppState;

/// One key as the page lists it.
struct KeyRow {
    id: i64,
    kind: String,
    fingerprint: String,
    comment: String,
    added: String,
}

#[derive(Template)]
#[template(path = "ssh_keys.html")]
struct KeysPage {
    chrome: Chrome,
    /// Whose keys.
    account: String,
    /// The visitor's own.
    own: bool,
    /// The add and remove forms are shown.
    can_change: bool,
    keys: Vec<KeyRow>,
    /// The text of a refused key, kept for correction.
    pasted: String,
    max_keys: i64,
}

/// Which account's keys; none: the visitor's own.
#[derive(Deserialize)]
pub struct KeysQuery {
    account: Option<String>,
}

/// The account the page is about, and whether it is the visitor's own.
fn target(v: &Visitor, requested: Option<&str>) -> Result<(String, bool), PageError> {
    let me = v
        .caller
        .principal
        .as_ref()
        .map(|p| p.name.clone())
        .ok_or(PageError::Login)?;
    match requested.map(str::trim).filter(|a| !a.is_empty()) {
        Some(other) if !other.eq_ignore_ascii_case(&me) => {
            Ok((other.chars().take(64).collect(), false))
        }
        _ => Ok((me, true)),
    }
}

async fn show(
    state: &AppState,
    v: &Visitor,
    account: String,
    own: bool,
    chrome: Chrome,
) -> Result<KeysPage, PageError> {
    let keys = state
        .service
        .ssh_keys(&v.caller, &account)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            kind: k
                .key
                .split_once(' ')
                .map(|(kind, _)| kind.to_owned())
                .unwrap_or_default(),
            added: chrome.time(k.created_at.saturating_mul(1000)),
            fingerprint: k.fingerprint,
            comment: k.comment,
        })
        .collect();
    Ok(KeysPage {
        can_change: own || v.caller.may(Permission::AccountsChange),
        account,
        own,
        keys,
        pasted: String::new(),
        max_keys: MAX_KEYS_PER_ACCOUNT,
        chrome,
    })
}

/// The menu entry highlighted: none for one's own keys (they are reached
/// from the header), Accounts for another's.
fn active(own: bool) -> &'static str {
    if own {
        "/account/ssh-keys"
    } else {
        "/accounts"
    }
}

/// The keys of the visitor or of `?account=`.
pub async fn page(
    State(state): State<AppState>,
    v: Visitor,
    Query(query): Query<KeysQuery>,
) -> Result<Response, PageError> {
    let (account, own) = target(&v, query.account.as_deref())?;
    let chrome = Chrome::new(&v, active(own));
    Ok(render(&show(&state, &v, account, own, chrome).await?))
}

/// Add form fields.
#[derive(Deserialize)]
pub struct AddForm {
    csrf: String,
    #[serde(default)]
    account: String,
    key: String,
}

/// The one key line of what was pasted: blank lines and `#` comments
/// aside, as in an `authorized_keys` file. Several keys are refused
/// rather than half added.
fn key_line(pasted: &str) -> Result<&str, ServiceError> {
    if pasted.contains("PRIVATE KEY") {
        return Err(ServiceError::Invalid(
            "That is a private key: keep it secret and paste the public key instead (the .pub file)."
                .into(),
        ));
    }
    let mut lines = pasted
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let first = lines.next().unwrap_or_default();
    let more = lines.count();
    if more > 0 {
        return Err(ServiceError::Invalid(format!(
            "The text holds {} keys; paste one public key line at a time.",
            more + 1
        )));
    }
    Ok(first)
}

/// Authorize a pasted public key.
pub async fn add(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<AddForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    let (account, own) = target(&v, Some(&form.account))?;
    let result = match key_line(&form.key) {
        Ok(line) => state.service.add_ssh_key(&v.caller, &account, line).await,
        Err(e) => Err(e),
    };
    let mut chrome = Chrome::new(&v, active(own));
    let status = chrome.outcome(result, |k| {
        format!(
            "Key {} ({}) added to account '{}': it logs in on Reverse SSH ports.",
            k.id, k.fingerprint, k.account
        )
    })?;
    let mut page = show(&state, &v, account, own, chrome).await?;
    if status != StatusCode::OK && !form.key.contains("PRIVATE KEY") {
        page.pasted = form.key.chars().take(8 * 1024).collect();
    }
    Ok((status, render(&page)).into_response())
}

/// Remove form fields.
#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    #[serde(default)]
    account: String,
    id: String,
}

/// Remove one key.
pub async fn remove(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<RemoveForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    let (account, own) = target(&v, Some(&form.account))?;
    let result = match form.id.trim().parse::<i64>() {
        Ok(id) => state
            .service
            .remove_ssh_key(&v.caller, &account, id)
            .await
            .map(|()| id),
        Err(_) => Err(ServiceError::Invalid(
            "The key to remove is not named by its number; reload the page and use its Remove buttons."
                .into(),
        )),
    };
    let mut chrome = Chrome::new(&v, active(own));
    let status = chrome.outcome(result, |id| {
        format!("Key {id} removed from account '{account}'.")
    })?;
    let page = show(&state, &v, account, own, chrome).await?;
    Ok((status, render(&page)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_line_is_taken_from_what_was_pasted() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ a@b";
        assert_eq!(
            key_line(&format!("\n# my laptop\n  {key}  \n\n")).ok(),
            Some(key)
        );
        assert_eq!(key_line("  \n").ok(), Some(""), "the service names it");
        let Err(ServiceError::Invalid(m)) = key_line(&format!("{key}\n{key}\n")) else {
            panic!("two keys were taken");
        };
        assert!(m.contains("2 keys"), "{m}");
        let Err(ServiceError::Invalid(m)) =
            key_line("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
        else {
            panic!("a private key was taken");
        };
        assert!(m.contains("private key"), "{m}");
    }
}
