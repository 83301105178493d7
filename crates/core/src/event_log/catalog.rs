//! The event catalog (seed §3.6): the five categories, the four severities
//! and every event ttyward records, each with a stable name (what the
//! configuration, the API and exports use), a stable numeric code (what the
//! database stores), its category, its severity and a one-line description
//! for the Log Settings page.
//!
//! This module only describes events; recording them is [`super::writer`]'s
//! job and storing them [`super::store`]'s. Names and codes are an external
//! interface: never renumber or rename an event, only add new ones (codes
//! are grouped by category: 1xx System, 2xx Network, 3xx Security,
//! 4xx Maintenance, 5xx Serial).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The seed's five event categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// ttyward itself: start, stop, clock, the log.
    System,
    /// The network interfaces and listeners.
    Network,
    /// What an administrator may need to look into: logins, accounts,
    /// access control.
    Security,
    /// Maintenance work: configuration changes, imports, factory reset.
    Maintenance,
    /// The serial ports: connections, devices.
    Serial,
}

impl Category {
    /// All five, in the seed's order.
    pub const ALL: [Category; 5] = [
        Category::System,
        Category::Network,
        Category::Security,
        Category::Maintenance,
        Category::Serial,
    ];

    /// The lower-case name used in configuration, queries and exports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::System => "system",
            Category::Network => "network",
            Category::Security => "security",
            Category::Maintenance => "maintenance",
            Category::Serial => "serial",
        }
    }

    /// The number stored in the database (1–5, the seed's order).
    pub const fn code(self) -> u8 {
        match self {
            Category::System => 1,
            Category::Network => 2,
            Category::Security => 3,
            Category::Maintenance => 4,
            Category::Serial => 5,
        }
    }

    /// The category stored as `code`, if any.
    pub fn from_code(code: i64) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| i64::from(c.code()) == code)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownName::Category)
    }
}

/// The seed's four severities; the number is the seed's priority (1 is the
/// most severe), which is also what the database stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Priority 1: a problem.
    Error = 1,
    /// Priority 2: forewarning of a potential problem.
    Warning = 2,
    /// Priority 3: not an error, but may need special handling.
    Notice = 3,
    /// Priority 4: confirmation that things work as expected.
    Informational = 4,
}

impl Severity {
    /// All four, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Informational,
    ];

    /// The lower-case name used in configuration, queries and exports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Informational => "informational",
        }
    }

    /// The seed's priority number (1 = Error … 4 = Informational).
    pub const fn priority(self) -> u8 {
        self as u8
    }

    /// The severity with priority `priority`, if any.
    pub fn from_priority(priority: i64) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| i64::from(s.priority()) == priority)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownName::Severity)
    }
}

/// A category, severity or event name that the catalog does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownName {
    /// Not one of the five category names.
    #[error("unknown category; expected one of: system, network, security, maintenance, serial")]
    Category,
    /// Not one of the four severity names.
    #[error("unknown severity; expected one of: error, warning, notice, informational")]
    Severity,
    /// Not an event name of the catalog.
    #[error(
        "unknown event name; the event catalog (docs, or the Log Settings page) lists the names"
    )]
    Event,
}

/// Declares [`EventId`] and its table from one list, so that a variant
/// cannot exist without a name, code, category, severity and description.
macro_rules! catalog {
    ($($variant:ident = $code:literal, $name:literal, $category:ident, $severity:ident, $description:literal;)*) => {
        /// Every event ttyward records. The variant's documentation is the
        /// description shown on the Log Settings page.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventId {
            $(
                #[doc = $description]
                $variant,
            )*
        }

        impl EventId {
            /// The whole catalog, in code order.
            pub const ALL: &'static [EventId] = &[$(EventId::$variant,)*];

            /// The stable kebab-case name (configuration, API, exports).
            pub const fn name(self) -> &'static str {
                match self { $(EventId::$variant => $name,)* }
            }

            /// The stable numeric code (what the database stores).
            pub const fn code(self) -> u16 {
                match self { $(EventId::$variant => $code,)* }
            }

            /// The category the event belongs to.
            pub const fn category(self) -> Category {
                match self { $(EventId::$variant => Category::$category,)* }
            }

            /// How severe the event is.
            pub const fn severity(self) -> Severity {
                match self { $(EventId::$variant => Severity::$severity,)* }
            }

            /// One line for the Log Settings page.
            pub const fn description(self) -> &'static str {
                match self { $(EventId::$variant => $description,)* }
            }
        }
    };
}

catalog! {
    SystemStart = 100, "system-start", System, Notice,
        "ttyward started.";
    SystemStop = 101, "system-stop", System, Notice,
        "ttyward stopped (signal or shutdown request).";
    SystemTimeChanged = 102, "system-time-changed", System, Notice,
        "The system clock was set or jumped.";
    EventsDropped = 103, "events-dropped", System, Error,
        "Events were lost because the log store was full, failing or too slow; the message gives the count.";
    ListenerFailed = 200, "listener-failed", Network, Error,
        "A listening address could not be bound (in use or not permitted).";
    LoginSucceeded = 300, "login-succeeded", Security, Notice,
        "A user logged in.";
    LoginFailed = 301, "login-failed", Security, Warning,
        "A login was refused (wrong account or password, disabled account, or locked out).";
    AccountLocked = 302, "account-locked", Security, Warning,
        "Too many failed logins: the account from that address, or the address, is locked out.";
    AccountUnlocked = 303, "account-unlocked", Security, Notice,
        "A lockout was lifted by an administrator.";
    Logout = 304, "logout", Security, Informational,
        "A user logged out.";
    SessionExpired = 305, "session-expired", Security, Informational,
        "A session ended after its idle timeout or lifetime.";
    SessionEnded = 306, "session-ended", Security, Notice,
        "An administrator ended a session.";
    SessionLimitReached = 307, "session-limit-reached", Security, Warning,
        "A login was refused because the per-account or total session limit was reached.";
    PasswordChanged = 308, "password-changed", Security, Notice,
        "An account's password was changed.";
    PasswordExpired = 309, "password-expired", Security, Notice,
        "A password passed its lifetime; the user must change it before doing anything else.";
    AccountCreated = 310, "account-created", Security, Notice,
        "An account was created.";
    AccountDeleted = 311, "account-deleted", Security, Notice,
        "An account was deleted.";
    AccountDisabled = 312, "account-disabled", Security, Notice,
        "An account was disabled; its sessions ended.";
    AccountEnabled = 313, "account-enabled", Security, Notice,
        "A disabled account was enabled again.";
    AccountGroupChanged = 314, "account-group-changed", Security, Notice,
        "An account was moved to another group.";
    GroupCreated = 315, "group-created", Security, Notice,
        "A custom group was created.";
    GroupChanged = 316, "group-changed", Security, Notice,
        "A group's permissions were changed.";
    GroupDeleted = 317, "group-deleted", Security, Notice,
        "A custom group was deleted.";
    FirstAdminCreated = 318, "first-admin-created", Security, Notice,
        "The first Administrator account was created; serial operation modes may now start.";
    SetupCodeUsed = 319, "setup-code-used", Security, Notice,
        "The one-time setup code was used to create the first Administrator.";
    SetupCodeRefused = 320, "setup-code-refused", Security, Warning,
        "A wrong or already used setup code was presented.";
    PasswordPolicyChanged = 321, "password-policy-changed", Security, Notice,
        "The password policy was changed.";
    LoginSettingsChanged = 322, "login-settings-changed", Security, Notice,
        "Login settings (messages, lockout, session control) were changed.";
    AllowlistChanged = 323, "allowlist-changed", Security, Notice,
        "The IP allowlist was changed.";
    AllowlistRefused = 324, "allowlist-refused", Security, Warning,
        "A connection from an address outside the allowlist was refused.";
    DosTriggered = 325, "dos-triggered", Security, Warning,
        "DoS defence refused connections or web requests (a per-source, rate or global limit was hit).";
    EventLogSettingsChanged = 326, "event-log-settings-changed", Security, Notice,
        "The event log settings (capacity, recorded events) were changed.";
    DosSettingsChanged = 327, "dos-settings-changed", Security, Notice,
        "The DoS defence settings were changed.";
    ServicesChanged = 328, "services-changed", Security, Notice,
        "A management service was switched on or off or moved to another address or port.";
    CertificateChanged = 329, "certificate-changed", Security, Notice,
        "The device certificate was regenerated or replaced by an imported one.";
    ApiTokenCreated = 330, "api-token-created", Security, Notice,
        "A long-lived API token was created for an account.";
    ApiTokenRevoked = 331, "api-token-revoked", Security, Notice,
        "An API token was revoked.";
    CaCertificateAdded = 332, "ca-certificate-added", Security, Notice,
        "A CA certificate was added to the trusted CA certificates.";
    CaCertificateRemoved = 333, "ca-certificate-removed", Security, Notice,
        "A CA certificate was removed from the trusted CA certificates (by an administrator or a factory reset).";
    SshKeyAdded = 334, "ssh-key-added", Security, Notice,
        "An SSH public key was authorized for an account's reverse SSH logins.";
    SshKeyRemoved = 335, "ssh-key-removed", Security, Notice,
        "An SSH public key was removed from an account.";
    ConsoleAccessRefused = 336, "console-access-refused", Security, Warning,
        "A user logged in on a port's reverse telnet/SSH console without permission for that port (the group is not one of the port's groups).";
    ConfigChanged = 400, "config-changed", Maintenance, Notice,
        "The configuration was changed; the message says by whom and what.";
    ConfigImported = 401, "config-imported", Maintenance, Notice,
        "A configuration file was imported and applied.";
    ConfigImportRefused = 402, "config-import-refused", Maintenance, Warning,
        "A configuration import was refused because it was invalid; nothing was changed.";
    FactoryReset = 403, "factory-reset", Maintenance, Notice,
        "ttyward was reset to factory defaults.";
    PortStarted = 500, "port-started", Serial, Informational,
        "A serial port started serving in its operation mode.";
    PortStopped = 501, "port-stopped", Serial, Informational,
        "A serial port stopped serving (disabled, reconfigured or shutdown).";
    PortConnected = 502, "port-connected", Serial, Informational,
        "A network client connected to a serial port.";
    PortDisconnected = 503, "port-disconnected", Serial, Informational,
        "A network client disconnected from a serial port.";
    SessionJammed = 504, "session-jammed", Serial, Warning,
        "A slow network client was dropped because it stopped taking data.";
    DeviceMissing = 505, "device-missing", Serial, Warning,
        "A serial device disappeared or failed; its sessions were closed.";
    DeviceRecovered = 506, "device-recovered", Serial, Notice,
        "A missing serial device is back and the port serves again.";
    PortConnectionRefused = 507, "port-connection-refused", Serial, Warning,
        "A connection to a serial port was refused: its max connections were reached or its device is missing.";
    PortConnectFailed = 508, "port-connect-failed", Serial, Warning,
        "A port in TCP Client mode could not connect to a destination; it retries with backoff.";
    SerialSettingRefused = 509, "serial-setting-refused", Serial, Warning,
        "A serial setting requested by a client (baud, parity, ...) could not be applied to the device.";
}

impl EventId {
    /// The event with this name, if the catalog has it.
    pub fn from_name(name: &str) -> Option<EventId> {
        EventId::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// The event stored as `code`, if the catalog has it.
    pub fn from_code(code: i64) -> Option<EventId> {
        EventId::ALL
            .iter()
            .copied()
            .find(|e| i64::from(e.code()) == code)
    }

    /// Whether a fresh configuration records this event: every event is
    /// recorded by default. The seed requires Security events of Notice and
    /// above to be saved by default; recording everything else too costs
    /// little at 10,000 entries and is what an operator expects when
    /// looking for a problem. Noisy events (port connect/disconnect) can be
    /// switched off in the settings.
    pub const fn default_enabled(self) -> bool {
        true
    }

    /// Whether the settings may switch this event off. Two may not: a
    /// change to what is recorded, and lost events. Otherwise someone who
    /// turned off, say, failed-login events would leave no trace of doing
    /// so, and a failing log would be silent about what it lost.
    pub const fn can_disable(self) -> bool {
        !matches!(
            self,
            EventId::EventLogSettingsChanged | EventId::EventsDropped
        )
    }

    /// Position in [`EventId::ALL`] (for per-event tables).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EventId {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventId::from_name(s).ok_or(UnknownName::Event)
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        EventId::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unknown event \"{name}\"; {}",
                UnknownName::Event
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_event_is_explained_in_the_security_docs() {
        let docs = include_str!("../../../../docs/security.md");
        for e in EventId::ALL {
            let row = format!("| `{}` | {} | ", e.name(), e.code());
            assert!(
                docs.contains(&row),
                "docs/security.md has no row for {}",
                e.name()
            );
        }
    }

    #[test]
    fn has_exactly_the_seeds_five_categories_and_four_severities() {
        let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            ["system", "network", "security", "maintenance", "serial"]
        );
        let severities: Vec<(u8, &str)> = Severity::ALL
            .iter()
            .map(|s| (s.priority(), s.as_str()))
            .collect();
        assert_eq!(
            severities,
            [
                (1, "error"),
                (2, "warning"),
                (3, "notice"),
                (4, "informational")
            ]
        );
        for c in Category::ALL {
            assert_eq!(Category::from_code(i64::from(c.code())), Some(c));
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_priority(i64::from(s.priority())), Some(s));
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert_eq!(Category::from_code(0), None);
        assert_eq!(Severity::from_priority(5), None);
    }

    #[test]
    fn event_names_and_codes_are_unique_and_kebab_case() {
        let names: BTreeSet<&str> = EventId::ALL.iter().map(|e| e.name()).collect();
        let codes: BTreeSet<u16> = EventId::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(names.len(), EventId::ALL.len());
        assert_eq!(codes.len(), EventId::ALL.len());
        for e in EventId::ALL {
            assert!(
                e.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{} is not kebab-case",
                e.name()
            );
            assert_eq!(EventId::from_name(e.name()), Some(*e));
            assert_eq!(EventId::from_code(i64::from(e.code())), Some(*e));
            assert_eq!(EventId::ALL.get(e.index()), Some(e));
            assert!(!e.description().is_empty() && !e.description().contains('\n'));
        }
    }

    #[test]
    fn event_codes_are_grouped_by_category_in_code_order() {
        let mut previous = 0;
        for e in EventId::ALL {
            assert!(e.code() > previous, "{} is out of code order", e.name());
            previous = e.code();
            assert_eq!(
                e.code() / 100,
                u16::from(e.category().code()),
                "{} has a code outside its category's hundred",
                e.name()
            );
        }
    }

    #[test]
    fn codes_of_released_events_never_change() {
        // Codes are stored in databases and names appear in configurations:
        // pin some so a reordering of the list shows up here.
        let pinned = [
            (EventId::SystemStart, 100, "system-start"),
            (EventId::EventsDropped, 103, "events-dropped"),
            (EventId::LoginSucceeded, 300, "login-succeeded"),
            (EventId::LoginFailed, 301, "login-failed"),
            (EventId::AccountLocked, 302, "account-locked"),
            (
                EventId::EventLogSettingsChanged,
                326,
                "event-log-settings-changed",
            ),
            (EventId::ConfigChanged, 400, "config-changed"),
            (EventId::DeviceMissing, 505, "device-missing"),
            (EventId::DeviceRecovered, 506, "device-recovered"),
        ];
        for (event, code, name) in pinned {
            assert_eq!((event.code(), event.name()), (code, name));
        }
    }

    #[test]
    fn classifies_events_as_the_brief_says() {
        assert_eq!(
            (
                EventId::LoginFailed.category(),
                EventId::LoginFailed.severity()
            ),
            (Category::Security, Severity::Warning)
        );
        assert_eq!(
            (
                EventId::AccountLocked.category(),
                EventId::AccountLocked.severity()
            ),
            (Category::Security, Severity::Warning)
        );
        assert_eq!(
            (
                EventId::DeviceMissing.category(),
                EventId::DeviceMissing.severity()
            ),
            (Category::Serial, Severity::Warning)
        );
        assert_eq!(
            (
                EventId::ConfigChanged.category(),
                EventId::ConfigChanged.severity()
            ),
            (Category::Maintenance, Severity::Notice)
        );
        // The seed: Security events of Notice and above are saved by default.
        for e in EventId::ALL {
            if e.category() == Category::Security && e.severity() <= Severity::Notice {
                assert!(e.default_enabled(), "{}", e.name());
            }
        }
    }

    #[test]
    fn serialises_as_names_and_rejects_unknown_ones() {
        assert_eq!(
            serde_json::to_value(EventId::LoginFailed).expect("json"),
            serde_json::json!("login-failed")
        );
        assert_eq!(
            serde_json::to_value(Severity::Informational).expect("json"),
            serde_json::json!("informational")
        );
        let back: EventId =
            serde_json::from_value(serde_json::json!("device-missing")).expect("known");
        assert_eq!(back, EventId::DeviceMissing);
        let err = serde_json::from_value::<EventId>(serde_json::json!("login-fail"))
            .expect_err("unknown");
        assert!(err.to_string().contains("login-fail"), "{err}");
    }
}
