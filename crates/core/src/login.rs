//! Security > Login Settings (seed §3.4): the three tabs Login Message,
//! Login Lockout and Session Control, as configuration.
//!
//! What the settings do is decided in [`crate::lockout`] and
//! [`crate::session`]; this module only holds and validates them.

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Longest login message or failure message (seed: 0/256).
pub const MAX_MESSAGE_CHARS: usize = 256;

/// The seed's default authentication-failure message.
pub const DEFAULT_FAILURE_MESSAGE: &str = "The account or password you entered is incorrect. (Your account will be temporarily locked if excessive tried.)";

/// The three tabs of Login Settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoginSettings {
    /// Shown before credentials are asked for (web, SSH, telnet); empty =
    /// none.
    pub message: String,
    /// Shown when a login fails; `None` = the default message.
    pub failure_message: Option<String>,
    /// Login Lockout.
    pub lockout: LockoutSettings,
    /// Session Control.
    pub sessions: SessionControl,
}

impl LoginSettings {
    /// The failure message in force.
    pub fn failure_message(&self) -> &str {
        self.failure_message
            .as_deref()
            .unwrap_or(DEFAULT_FAILURE_MESSAGE)
    }
}

/// Login Lockout.
///
/// Failures are counted per (account, source address) pair and per source
/// address. A locked pair refuses that account from that address only, so
/// an attacker cannot lock the administrator out from everywhere; a locked
/// source refuses every account from that address (password spraying).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockoutSettings {
    /// "Enable login failure lockout" (default on).
    pub enabled: bool,
    /// "Max. Failure Retry (times)" (default 5).
    pub max_failures: u16,
    /// "Lockout Time": seconds (the seed's page shows minutes; default
    /// 5 min). Seconds so that short lockouts can be tested.
    pub lockout_s: u32,
    /// "Enable reset login failure counter": failures older than the
    /// lockout time are forgotten. Off: they count until a successful login.
    pub reset_counter: bool,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            enabled: true,
            max_failures: 5,
            lockout_s: 300,
            reset_counter: true,
        }
    }
}

/// Session Control.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionControl {
    /// A session unused this long ends (default 15 min).
    pub idle_timeout_s: u32,
    /// A session ends this long after login whatever happens (default 8 h).
    pub lifetime_s: u32,
    /// Concurrent sessions of one account (default 4).
    pub max_per_account: u16,
    /// Concurrent sessions in total (default 16).
    pub max_total: u16,
}

impl Default for SessionControl {
    fn default() -> Self {
        SessionControl {
            idle_timeout_s: 15 * 60,
            lifetime_s: 8 * 3600,
            max_per_account: 4,
            max_total: 16,
        }
    }
}

/// Read the `security.login` section.
pub(crate) fn read_settings(w: &mut Walk, path: String, value: Option<&Value>) -> LoginSettings {
    let mut o = Obj::new(w, path, value);
    let message = o
        .string(w, "message", MAX_MESSAGE_CHARS)
        .unwrap_or_default();
    let failure_message = o.string(w, "failure_message", MAX_MESSAGE_CHARS);
    let lockout = read_lockout(w, o.at("lockout"), o.get("lockout"));
    let sessions = read_sessions(w, o.at("sessions"), o.get("sessions"));
    o.finish(w);
    LoginSettings {
        message,
        failure_message,
        lockout,
        sessions,
    }
}

fn read_lockout(w: &mut Walk, path: String, value: Option<&Value>) -> LockoutSettings {
    let d = LockoutSettings::default();
    let mut o = Obj::new(w, path, value);
    let s = LockoutSettings {
        enabled: o.bool(w, "enabled", d.enabled),
        max_failures: o.int(w, "max_failures", d.max_failures, 1..=100),
        lockout_s: o.int(w, "lockout_s", d.lockout_s, 1..=86_400),
        reset_counter: o.bool(w, "reset_counter", d.reset_counter),
    };
    o.finish(w);
    s
}

fn read_sessions(w: &mut Walk, path: String, value: Option<&Value>) -> SessionControl {
    let d = SessionControl::default();
    let mut o = Obj::new(w, path, value);
    let s = SessionControl {
        idle_timeout_s: o.int(w, "idle_timeout_s", d.idle_timeout_s, 10..=86_400),
        lifetime_s: o.int(w, "lifetime_s", d.lifetime_s, 60..=7 * 86_400),
        max_per_account: o.int(w, "max_per_account", d.max_per_account, 1..=64),
        max_total: o.int(w, "max_total", d.max_total, 1..=1024),
    };
    o.finish(w);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: &Value) -> (LoginSettings, Vec<String>) {
        let mut w = Walk::default();
        let s = read_settings(&mut w, "security.login".into(), Some(v));
        (s, w.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn defaults_follow_the_seed() {
        let (s, errors) = read(&serde_json::json!({}));
        assert!(errors.is_empty());
        assert_eq!(s.lockout.max_failures, 5);
        assert_eq!(s.lockout.lockout_s, 300);
        assert!(s.lockout.enabled && s.lockout.reset_counter);
        assert_eq!(s.failure_message(), DEFAULT_FAILURE_MESSAGE);
    }

    #[test]
    fn round_trips() {
        let mut s = LoginSettings {
            message: "Authorised use only".into(),
            failure_message: Some("No.".into()),
            ..LoginSettings::default()
        };
        s.lockout.lockout_s = 2;
        s.sessions.max_total = 3;
        let (back, errors) = read(&serde_json::to_value(&s).expect("json"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, s);
    }

    #[test]
    fn reports_every_bad_field() {
        let long = "x".repeat(257);
        let (_, errors) = read(&serde_json::json!({
            "message": long,
            "lockout": {"max_failures": 0, "lockout_s": "5"},
            "sessions": {"max_total": 0, "colour": 1},
        }));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("security.login.message"));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("security.login.sessions.colour"))
        );
    }
}
