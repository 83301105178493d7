//! Maintenance > Factory Reset: the device forgets everything it was told
//! — accounts, custom groups, sessions, API tokens, lockouts, the setup
//! code and the configuration — and is back at first use: no account,
//! every serial port off until a new first Administrator exists, the
//! ports those the host has ([`Config::first_use`]).
//!
//! Kept: how the web console is reached (Security > Services), so that the
//! device can be set up again from where it was reset — on a host, moving
//! the console to its default port 443 would strand the browser that did
//! the reset.
//!
//! The event log is kept, and the reset is recorded in it with who did it
//! and from where: whoever resets a device must not also erase the trace
//! of what happened before. The device certificate is the web server's
//! to regenerate, and the trusted CA certificates its to delete (the web
//! crate does both after this returns, in `AppState::factory_reset`).

use super::{Caller, Service, ServiceError};
use crate::config::Config;
use crate::event_log::EventId;
use crate::permission::Permission;

impl Service {
    /// Reset to factory state (needs `maintenance.system`). The caller's
    /// own session ends with everything else.
    pub async fn factory_reset(&self, caller: &Caller) -> Result<(), ServiceError> {
        caller.require(Permission::MaintenanceSystem)?;
        self.inner
            .store
            .call(|c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute_batch(
                    "DELETE FROM sessions;
                     DELETE FROM api_tokens;
                     DELETE FROM accounts;
                     DELETE FROM groups WHERE builtin = 0;
                     DELETE FROM login_failures;
                     DELETE FROM setup_code;",
                )?;
                crate::account::ensure_builtin_groups(&tx)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        let fresh = Config::first_use(self.config().services.clone());
        self.update_config(&Caller::local(), fresh, true).await?;
        self.audit(
            caller,
            EventId::FactoryReset,
            "factory reset: accounts, groups, sessions, API tokens, lockouts and the configuration were deleted; the event log was kept",
        );
        Ok(())
    }
}
