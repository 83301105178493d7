//! Permissions and groups (seed §3.4: "Administrator" and "Operator",
//! plus custom groups built from named permissions).
//!
//! A permission names one area of the web console / REST API and whether it
//! may be seen or changed. The built-in groups are fixed: Administrator has
//! every permission; Operator "can change and monitor most of the settings,
//! except Security and Account Management" — so it has neither
//! `security.*` nor `accounts.*`, and, because reading security events and
//! importing a configuration (which carries security settings) would get
//! around that, neither `log.security` nor `maintenance.config`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing a group may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Dashboard, system information and status.
    #[serde(rename = "system.view")]
    SystemView,
    /// System Settings: general (identity, time), notification.
    #[serde(rename = "system.change")]
    SystemChange,
    /// Network Settings.
    #[serde(rename = "network.view")]
    NetworkView,
    /// Change Network Settings.
    #[serde(rename = "network.change")]
    NetworkChange,
    /// Serial Port Settings and port status/counters.
    #[serde(rename = "serial.view")]
    SerialView,
    /// Change operation modes, serial parameters, secure connection.
    #[serde(rename = "serial.change")]
    SerialChange,
    /// Security pages: services, allowlist, certificate, login settings.
    #[serde(rename = "security.view")]
    SecurityView,
    /// Change Security settings.
    #[serde(rename = "security.change")]
    SecurityChange,
    /// Account Management: accounts, groups, password policy.
    #[serde(rename = "accounts.view")]
    AccountsView,
    /// Create, change and delete accounts and groups; password policy.
    #[serde(rename = "accounts.change")]
    AccountsChange,
    /// Read the event log (events of every category but Security).
    #[serde(rename = "log.view")]
    LogView,
    /// Read Security events too (security.md CR 3.9).
    #[serde(rename = "log.security")]
    LogSecurity,
    /// Change which events are logged and how many are kept.
    #[serde(rename = "log.settings")]
    LogSettings,
    /// Export and import the configuration.
    #[serde(rename = "maintenance.config")]
    MaintenanceConfig,
    /// Factory reset, updates.
    #[serde(rename = "maintenance.system")]
    MaintenanceSystem,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 15] = [
        Permission::SystemView,
        Permission::SystemChange,
        Permission::NetworkView,
        Permission::NetworkChange,
        Permission::SerialView,
        Permission::SerialChange,
        Permission::SecurityView,
        Permission::SecurityChange,
        Permission::AccountsView,
        Permission::AccountsChange,
        Permission::LogView,
        Permission::LogSecurity,
        Permission::LogSettings,
        Permission::MaintenanceConfig,
        Permission::MaintenanceSystem,
    ];

    /// The permission's name, e.g. `security.change`.
    pub fn name(self) -> &'static str {
        match self {
            Permission::SystemView => "system.view",
            Permission::SystemChange => "system.change",
            Permission::NetworkView => "network.view",
            Permission::NetworkChange => "network.change",
            Permission::SerialView => "serial.view",
            Permission::SerialChange => "serial.change",
            Permission::SecurityView => "security.view",
            Permission::SecurityChange => "security.change",
            Permission::AccountsView => "accounts.view",
            Permission::AccountsChange => "accounts.change",
            Permission::LogView => "log.view",
            Permission::LogSecurity => "log.security",
            Permission::LogSettings => "log.settings",
            Permission::MaintenanceConfig => "maintenance.config",
            Permission::MaintenanceSystem => "maintenance.system",
        }
    }

    /// Parse a permission name.
    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the seed's Operator group has this permission.
    pub fn operator_has(self) -> bool {
        !matches!(
            self,
            Permission::SecurityView
                | Permission::SecurityChange
                | Permission::AccountsView
                | Permission::AccountsChange
                | Permission::LogSecurity
                | Permission::MaintenanceConfig
                | Permission::MaintenanceSystem
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Name of the built-in group with every permission.
pub const ADMINISTRATOR: &str = "Administrator";
/// Name of the built-in group without Security and Account Management.
pub const OPERATOR: &str = "Operator";

/// A set of permissions.
pub type Permissions = BTreeSet<Permission>;

/// A group of accounts and what its members may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Unique name (case-insensitive).
    pub name: String,
    /// Administrator and Operator cannot be changed or deleted.
    pub builtin: bool,
    /// What members may do.
    pub permissions: Permissions,
}

impl Group {
    /// The built-in groups.
    pub fn builtins() -> [Group; 2] {
        [
            Group {
                name: ADMINISTRATOR.into(),
                builtin: true,
                permissions: Permission::ALL.into_iter().collect(),
            },
            Group {
                name: OPERATOR.into(),
                builtin: true,
                permissions: Permission::ALL
                    .into_iter()
                    .filter(|p| p.operator_has())
                    .collect(),
            },
        ]
    }

    /// Whether this is the Administrator group.
    pub fn is_administrator(&self) -> bool {
        self.name.eq_ignore_ascii_case(ADMINISTRATOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = BTreeSet::new();
        for p in Permission::ALL {
            assert_eq!(Permission::from_name(p.name()), Some(p));
            assert!(seen.insert(p.name()));
            let json = serde_json::to_string(&p).expect("serialise");
            assert_eq!(json, format!("\"{}\"", p.name()));
        }
    }

    #[test]
    fn operator_has_neither_security_nor_account_management() {
        let [admin, operator] = Group::builtins();
        assert_eq!(admin.permissions.len(), Permission::ALL.len());
        for p in &operator.permissions {
            assert!(!p.name().starts_with("security."), "{p}");
            assert!(!p.name().starts_with("accounts."), "{p}");
        }
        assert!(operator.permissions.contains(&Permission::SerialChange));
        assert!(operator.permissions.contains(&Permission::SystemChange));
    }
}
