//! Account Management: accounts, groups, passwords (seed §3.4, security.md
//! CR 1.3–1.5, 2.1). Rules kept here: names are unique, the last active
//! Administrator can be neither disabled, deleted nor moved to another
//! group, disabling or deleting an account ends its sessions in the same
//! transaction, one's own password change needs the old password.

use super::{Caller, Service, ServiceError};
use crate::account::{self, Account};
use crate::event_log::EventId;
use crate::password::PasswordHash;
use crate::permission::{Group, Permission, Permissions};
use crate::session;
use crate::store::now_s;

const LAST_ADMIN: &str =
    "this is the last active Administrator; create or enable another Administrator first";

impl Service {
    /// Every account.
    pub async fn accounts(&self, caller: &Caller) -> Result<Vec<Account>, ServiceError> {
        caller.require(Permission::AccountsView)?;
        Ok(self.inner.store.call(|c| account::list(c)).await?)
    }

    /// Create an account in `group` with an initial password.
    pub async fn create_account(
        &self,
        caller: &Caller,
        name: &str,
        group: &str,
        password: &str,
    ) -> Result<Account, ServiceError> {
        caller.require(Permission::AccountsChange)?;
        account::check_name(name).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let group = self.group_named(group).await?;
        self.config()
            .security
            .password_policy
            .check(name, password)?;
        let hash = self.hash(password).await?;
        let (n, g) = (name.to_owned(), group.name.clone());
        let created = self
            .inner
            .store
            .call(move |c| {
                let Some(id) = account::insert(c, &n, &g, &hash, now_s())? else {
                    return Ok(None);
                };
                account::get(c, id)
            })
            .await?;
        let Some(created) = created else {
            return Err(ServiceError::Conflict(format!(
                "an account named '{name}' already exists"
            )));
        };
        self.audit(
            caller,
            EventId::AccountCreated,
            format!(
                "account '{}' created in group {}",
                created.name, created.group
            ),
        );
        Ok(created)
    }

    /// Enable or disable an account; disabling ends its sessions at once.
    pub async fn set_account_active(
        &self,
        caller: &Caller,
        name: &str,
        active: bool,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let target = self.account_named(name).await?;
        let id = target.id;
        let is_admin = target
            .group
            .eq_ignore_ascii_case(crate::permission::ADMINISTRATOR);
        let outcome = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if !active && is_admin && account::active_administrators(&tx)? <= 1 {
                    return Ok(false);
                }
                account::set_active(&tx, id, active)?;
                if !active {
                    session::end_all_of(&tx, id)?;
                }
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if !outcome {
            return Err(ServiceError::Conflict(LAST_ADMIN.into()));
        }
        let (event, verb) = if active {
            (EventId::AccountEnabled, "enabled")
        } else {
            (
                EventId::AccountDisabled,
                "disabled; its sessions were ended",
            )
        };
        self.audit(caller, event, format!("account '{}' {verb}", target.name));
        Ok(())
    }

    /// Delete an account and its sessions.
    pub async fn delete_account(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let target = self.account_named(name).await?;
        let id = target.id;
        let is_active_admin = target.active
            && target
                .group
                .eq_ignore_ascii_case(crate::permission::ADMINISTRATOR);
        let deleted = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if is_active_admin && account::active_administrators(&tx)? <= 1 {
                    return Ok(false);
                }
                session::end_all_of(&tx, id)?;
                account::delete(&tx, id)?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if !deleted {
            return Err(ServiceError::Conflict(LAST_ADMIN.into()));
        }
        self.audit(
            caller,
            EventId::AccountDeleted,
            format!("account '{}' deleted", target.name),
        );
        Ok(())
    }

    /// Move an account to another group; its sessions end so the new
    /// permissions apply at the next login.
    pub async fn set_account_group(
        &self,
        caller: &Caller,
        name: &str,
        group: &str,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let target = self.account_named(name).await?;
        let group = self.group_named(group).await?;
        let id = target.id;
        let leaves_admin = target.active
            && target
                .group
                .eq_ignore_ascii_case(crate::permission::ADMINISTRATOR)
            && !group.is_administrator();
        let g = group.name.clone();
        let changed = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if leaves_admin && account::active_administrators(&tx)? <= 1 {
                    return Ok(false);
                }
                account::set_group(&tx, id, &g)?;
                session::end_all_of(&tx, id)?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if !changed {
            return Err(ServiceError::Conflict(LAST_ADMIN.into()));
        }
        self.audit(
            caller,
            EventId::AccountGroupChanged,
            format!(
                "account '{}' moved from {} to {}",
                target.name, target.group, group.name
            ),
        );
        Ok(())
    }

    /// Change the caller's own password; the old one is required.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        old: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        let Some(me) = &caller.principal else {
            return Err(ServiceError::Invalid(
                "the host's command line has no password of its own; use `ttyward admin passwd NAME`".into(),
            ));
        };
        let id = me.account_id;
        let stored = self
            .inner
            .store
            .call(move |c| account::password_hash(c, id))
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if !self
            .inner
            .hasher
            .verify(old, &PasswordHash::from_stored(stored))
            .await
        {
            self.audit(
                caller,
                EventId::LoginFailed,
                "password change refused: the current password is wrong",
            );
            return Err(ServiceError::Invalid(
                "the current password is wrong".into(),
            ));
        }
        if old == new {
            return Err(ServiceError::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        self.set_password_of(caller, id, &me.name, new).await
    }

    /// Set another account's password (an administrator's reset), or any
    /// account's from the host's command line.
    pub async fn set_password(
        &self,
        caller: &Caller,
        name: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let target = self.account_named(name).await?;
        self.set_password_of(caller, target.id, &target.name, new)
            .await
    }

    async fn set_password_of(
        &self,
        caller: &Caller,
        id: i64,
        name: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        self.config().security.password_policy.check(name, new)?;
        let hash = self.hash(new).await?;
        let keep = caller.principal.as_ref().and_then(|p| p.session_id);
        self.inner
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                account::set_password(&tx, id, &hash, now_s())?;
                // Other sessions of the account end: whoever knew the old
                // password is out. The caller's own session stays.
                tx.execute(
                    "DELETE FROM sessions WHERE account_id = ?1 AND id IS NOT ?2",
                    rusqlite::params![id, keep],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.audit(
            caller,
            EventId::PasswordChanged,
            format!("password of '{name}' changed"),
        );
        Ok(())
    }

    /// Every group.
    pub async fn groups(&self, caller: &Caller) -> Result<Vec<Group>, ServiceError> {
        caller.require(Permission::AccountsView)?;
        Ok(self.inner.store.call(|c| account::groups(c)).await?)
    }

    /// Create or change a custom group.
    pub async fn put_group(
        &self,
        caller: &Caller,
        name: &str,
        permissions: Permissions,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        account::check_name(name).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let n = name.to_owned();
        let list = permissions
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ");
        let existed = self
            .inner
            .store
            .call({
                let n = n.clone();
                move |c| account::group(c, &n)
            })
            .await?;
        if existed.as_ref().is_some_and(|g| g.builtin) {
            return Err(ServiceError::Conflict(format!(
                "{name} is a built-in group and cannot be changed"
            )));
        }
        self.inner
            .store
            .call(move |c| account::put_group(c, &n, &permissions))
            .await?;
        let event = if existed.is_some() {
            EventId::GroupChanged
        } else {
            EventId::GroupCreated
        };
        self.audit(caller, event, format!("group '{name}': {list}"));
        Ok(())
    }

    /// Delete a custom group that has no members.
    pub async fn delete_group(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        caller.require(Permission::AccountsChange)?;
        let group = self.group_named(name).await?;
        if group.builtin {
            return Err(ServiceError::Conflict(format!(
                "{} is a built-in group and cannot be deleted",
                group.name
            )));
        }
        let g = group.name.clone();
        let members = self
            .inner
            .store
            .call(move |c| account::members(c, &g))
            .await?;
        if members > 0 {
            return Err(ServiceError::Conflict(format!(
                "group '{}' still has {members} account(s); move them to another group first",
                group.name
            )));
        }
        let g = group.name.clone();
        self.inner
            .store
            .call(move |c| account::delete_group(c, &g))
            .await?;
        self.audit(
            caller,
            EventId::GroupDeleted,
            format!("group '{}' deleted", group.name),
        );
        Ok(())
    }

    pub(super) async fn account_named(&self, name: &str) -> Result<Account, ServiceError> {
        let n = name.to_owned();
        self.inner
            .store
            .call(move |c| account::find(c, &n))
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "account",
                name: name.to_owned(),
            })
    }

    async fn group_named(&self, name: &str) -> Result<Group, ServiceError> {
        let n = name.to_owned();
        self.inner
            .store
            .call(move |c| account::group(c, &n))
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "group",
                name: name.to_owned(),
            })
    }

    async fn hash(&self, password: &str) -> Result<String, ServiceError> {
        Ok(self
            .inner
            .hasher
            .hash(password)
            .await
            .map_err(|e| ServiceError::Invalid(e.to_string()))?
            .as_str()
            .to_owned())
    }
}
