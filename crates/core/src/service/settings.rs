//! Configuration as a whole: load, change, import, export (issue 3 items
//! 1, 10; security.md CR 3.5, 7.3).
//!
//! A change is validated completely first (every problem reported with its
//! field path, nothing changed), then checked against the caller's
//! permissions section by section — ports need `serial.change`, the
//! password policy `accounts.change`, services / login settings /
//! allowlist / DoS `security.change`, the event log settings `log.settings`,
//! identity and time zone `system.change` — and written
//! in one transaction with a revision number. The allowlist may not shut
//! out the address the change comes from unless the caller forces it.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::{Caller, Service, ServiceError, Source};
use crate::access::ServiceKind;
use crate::config::Config;
use crate::event_log::EventId;
use crate::permission::Permission;
use crate::store::{StoreError, now_s};

/// What a configuration change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    /// The new revision number.
    pub revision: i64,
    /// What changed, in words (empty: nothing).
    pub changed: Vec<String>,
}

/// Read the stored configuration (the default when none was stored yet).
pub(super) fn load(conn: &mut rusqlite::Connection) -> Result<Config, StoreError> {
    let doc: Option<String> = conn
        .query_row("SELECT document FROM config WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    let Some(doc) = doc else {
        return Ok(Config::default());
    };
    let value: serde_json::Value = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt {
        what: "configuration",
        detail: e.to_string(),
    })?;
    Config::from_value(&value).map_err(|e| StoreError::Corrupt {
        what: "configuration",
        detail: e.to_string(),
    })
}

/// The revision of the stored configuration (0: none stored).
fn revision(conn: &rusqlite::Connection) -> Result<i64, StoreError> {
    Ok(conn
        .query_row("SELECT revision FROM config WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The sections that differ, each with the permission that may change it
/// and, for security settings, the event that records the change on its
/// own (so that a filter on Security events shows it).
fn differences(old: &Config, new: &Config) -> Vec<(String, Permission, Option<EventId>)> {
    let mut out = Vec::new();
    let numbers: std::collections::BTreeSet<u16> = old
        .ports
        .iter()
        .chain(&new.ports)
        .map(|p| p.number)
        .collect();
    for n in numbers {
        match (old.port(n), new.port(n)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(b)) => out.push((
                format!("port {n} ({})", b.mode.name()),
                Permission::SerialChange,
                None,
            )),
            (None, Some(b)) => out.push((
                format!("port {n} added ({})", b.mode.name()),
                Permission::SerialChange,
                None,
            )),
            (Some(_), None) => {
                out.push((format!("port {n} removed"), Permission::SerialChange, None))
            }
            (None, None) => {}
        }
    }
    if old.services != new.services {
        out.push((
            "services".into(),
            Permission::SecurityChange,
            Some(EventId::ServicesChanged),
        ));
    }
    let (a, b) = (&old.security, &new.security);
    if a.password_policy != b.password_policy {
        out.push((
            "password policy".into(),
            Permission::AccountsChange,
            Some(EventId::PasswordPolicyChanged),
        ));
    }
    if a.login != b.login {
        out.push((
            "login settings".into(),
            Permission::SecurityChange,
            Some(EventId::LoginSettingsChanged),
        ));
    }
    if a.allowlist != b.allowlist {
        out.push((
            "allowlist".into(),
            Permission::SecurityChange,
            Some(EventId::AllowlistChanged),
        ));
    }
    if a.dos != b.dos {
        out.push((
            "DoS defence".into(),
            Permission::SecurityChange,
            Some(EventId::DosSettingsChanged),
        ));
    }
    if old.system != new.system {
        out.push((
            "identity and time zone".into(),
            Permission::SystemChange,
            None,
        ));
    }
    if old.event_log != new.event_log {
        out.push((
            "event log settings".into(),
            Permission::LogSettings,
            Some(EventId::EventLogSettingsChanged),
        ));
        // Switching Security events off would hide activity from those who
        // may read it; it takes the right to read them.
        let security = |s: &crate::event_log::EventLogSettings| -> Vec<EventId> {
            s.disabled
                .iter()
                .copied()
                .filter(|e| e.category() == crate::event_log::Category::Security)
                .collect()
        };
        if security(&old.event_log) != security(&new.event_log) {
            out.push((
                "recorded Security events".into(),
                Permission::LogSecurity,
                None,
            ));
        }
    }
    out
}

/// TOML has no null: an unset optional field is simply left out.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

impl Service {
    /// Replace the configuration. Validation has happened (a `Config` is
    /// valid by construction); this checks permissions and the allowlist
    /// rule, stores, records the event and tells the engine.
    pub async fn update_config(
        &self,
        caller: &Caller,
        new: Config,
        force_allowlist: bool,
    ) -> Result<ConfigChange, ServiceError> {
        let old = self.config();
        let diff = differences(&old, &new);
        for (_, permission, _) in &diff {
            caller.require(*permission)?;
        }
        if diff.is_empty() {
            let revision = self.inner.store.call(|c| revision(c)).await?;
            return Ok(ConfigChange {
                revision,
                changed: Vec::new(),
            });
        }
        if let Source::Net(ip) = caller.source {
            new.security
                .allowlist
                .check_self_lockout(ip, ServiceKind::Management, force_allowlist)
                .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        }
        let doc = serde_json::to_string(&new.to_value()).map_err(|e| StoreError::Corrupt {
            what: "configuration",
            detail: e.to_string(),
        })?;
        let user = caller.user();
        let rev = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let rev = revision(&tx)? + 1;
                tx.execute(
                    "INSERT INTO config (id, revision, document, updated_at, updated_by) VALUES (1, ?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, document = excluded.document,
                        updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                    params![rev, doc, now_s(), user],
                )?;
                tx.commit()?;
                Ok(rev)
            })
            .await?;
        for (what, _, event) in &diff {
            if let Some(event) = event {
                self.audit(
                    caller,
                    *event,
                    format!("{what} changed (configuration revision {rev})"),
                );
            }
        }
        let changed: Vec<String> = diff.into_iter().map(|(what, _, _)| what).collect();
        self.audit(
            caller,
            EventId::ConfigChanged,
            format!("configuration revision {rev}: {}", changed.join("; ")),
        );
        self.inner.events.update_settings(&new.event_log);
        self.inner.config.send_replace(Arc::new(new));
        Ok(ConfigChange {
            revision: rev,
            changed,
        })
    }

    /// Import a TOML configuration: every field is validated first and all
    /// problems are reported; on any problem nothing changes.
    pub async fn import_config(
        &self,
        caller: &Caller,
        toml_text: &str,
        force_allowlist: bool,
    ) -> Result<ConfigChange, ServiceError> {
        caller.require(Permission::MaintenanceConfig)?;
        // An empty document is valid (every section at its defaults, no
        // port) but is all but certainly a mistake: a truncated file or an
        // empty pipe must not delete every port.
        if toml::from_str::<toml::Table>(toml_text).is_ok_and(|t| t.is_empty()) {
            self.audit(
                caller,
                EventId::ConfigImportRefused,
                "empty document, nothing changed",
            );
            return Err(ServiceError::Invalid(
                "the file holds no configuration (it is empty or only comments); nothing changed. To remove every port, import a file with `ports = []`".into(),
            ));
        }
        let new = match Config::from_toml(toml_text) {
            Ok(c) => c,
            Err(e) => {
                self.audit(
                    caller,
                    EventId::ConfigImportRefused,
                    format!("{} problem(s), nothing changed", e.errors.len()),
                );
                return Err(e.into());
            }
        };
        let change = self.update_config(caller, new, force_allowlist).await?;
        self.audit(
            caller,
            EventId::ConfigImported,
            format!("configuration imported as revision {}", change.revision),
        );
        Ok(change)
    }

    /// The configuration as TOML (no secrets are part of it: accounts and
    /// keys are not configuration).
    pub fn export_config(&self, caller: &Caller) -> Result<String, ServiceError> {
        caller.require(Permission::MaintenanceConfig)?;
        let mut doc = self.config().to_value();
        strip_nulls(&mut doc);
        toml::to_string(&doc).map_err(|e| {
            ServiceError::Store(StoreError::Corrupt {
                what: "configuration",
                detail: e.to_string(),
            })
        })
    }

    /// The stored configuration's revision (0: nothing stored yet).
    pub async fn stored_revision(&self) -> Result<i64, ServiceError> {
        Ok(self.inner.store.call(|c| revision(c)).await?)
    }

    /// Store a first configuration if none is stored yet (a fresh data
    /// directory); returns whether it was stored.
    pub async fn initialize_config(&self, config: Config) -> Result<bool, ServiceError> {
        let doc = serde_json::to_string(&config.to_value()).map_err(|e| StoreError::Corrupt {
            what: "configuration",
            detail: e.to_string(),
        })?;
        let stored = self
            .inner
            .store
            .call(move |c| {
                Ok(c.execute(
                    "INSERT OR IGNORE INTO config (id, revision, document, updated_at, updated_by) VALUES (1, 1, ?1, ?2, NULL)",
                    params![doc, now_s()],
                )? > 0)
            })
            .await?;
        if stored {
            self.reload().await?;
            self.record(
                EventId::ConfigChanged,
                format!(
                    "first configuration: {} serial port(s) found",
                    config.ports.len()
                ),
            );
        }
        Ok(stored)
    }

    /// Re-read the configuration if another process (the command line)
    /// changed it; returns true when it did.
    pub async fn reload(&self) -> Result<bool, ServiceError> {
        let stored = self.inner.store.call(load).await?;
        if *self.config() == stored {
            return Ok(false);
        }
        self.inner.events.update_settings(&stored.event_log);
        self.inner.config.send_replace(Arc::new(stored));
        Ok(true)
    }

    /// SQLite's `data_version`: changes whenever another connection commits.
    pub async fn data_version(&self) -> Result<i64, ServiceError> {
        Ok(self
            .inner
            .store
            .call(|c| Ok(c.pragma_query_value(None, "data_version", |r| r.get(0))?))
            .await?)
    }
}
