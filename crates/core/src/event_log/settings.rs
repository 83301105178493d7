//! Diagnostics > System Log > Log Settings (seed §3.6) as configuration:
//! how many entries the local log keeps and which events it records.
//!
//! This module only holds and validates the settings; the writer
//! ([`super::EventLog::update_settings`]) applies them.

use serde::Serialize;
use serde_json::Value;

use super::catalog::EventId;
use crate::config::walk::{Obj, Walk, kind};

/// Entries kept by default (the seed's 10,000).
pub const DEFAULT_CAPACITY: u32 = 10_000;
/// Fewest entries the log may be set to keep.
pub const MIN_CAPACITY: u32 = 1_000;
/// Most entries the log may be set to keep.
pub const MAX_CAPACITY: u32 = 1_000_000;

/// Diagnostics > System Log > Log Settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventLogSettings {
    /// Entries kept; the oldest are dropped beyond this (default 10,000,
    /// range 1,000–1,000,000).
    pub capacity: u32,
    /// Events not recorded, in catalog order without repeats (default none:
    /// every event is recorded). Events that
    /// [cannot be disabled](EventId::can_disable) are never in the list.
    pub disabled: Vec<EventId>,
}

impl Default for EventLogSettings {
    fn default() -> Self {
        EventLogSettings {
            capacity: DEFAULT_CAPACITY,
            disabled: EventId::ALL
                .iter()
                .copied()
                .filter(|e| !e.default_enabled())
                .collect(),
        }
    }
}

impl EventLogSettings {
    /// Whether `event` is recorded under these settings.
    pub fn is_enabled(&self, event: EventId) -> bool {
        !self.disabled.contains(&event)
    }
}

/// Read the `event_log` section.
pub(crate) fn read_settings(w: &mut Walk, path: String, value: Option<&Value>) -> EventLogSettings {
    let d = EventLogSettings::default();
    let mut o = Obj::new(w, path, value);
    let capacity = o.int(w, "capacity", d.capacity, MIN_CAPACITY..=MAX_CAPACITY);
    let disabled = match o.get("disabled") {
        None => d.disabled,
        Some(v) => read_disabled(w, &o.at("disabled"), v),
    };
    o.finish(w);
    EventLogSettings { capacity, disabled }
}

fn read_disabled(w: &mut Walk, path: &str, value: &Value) -> Vec<EventId> {
    let Some(items) = value.as_array() else {
        w.err(
            path,
            format!(
                "expected a list of event names such as [\"port-connected\"], found {}",
                kind(value)
            ),
        );
        return Vec::new();
    };
    let mut events = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(name) = item.as_str() else {
            w.err(&at, format!("expected an event name, found {}", kind(item)));
            continue;
        };
        match EventId::from_name(name) {
            None => w.err(
                &at,
                format!(
                    "unknown event \"{}\"; the event catalog lists the names",
                    name.escape_debug()
                ),
            ),
            Some(e) if !e.can_disable() => w.err(
                &at,
                format!(
                    "\"{name}\" is always recorded and cannot be disabled; remove it from the list"
                ),
            ),
            Some(e) => events.push(e),
        }
    }
    // Catalog order without repeats, so equal settings compare equal and
    // serialise the same; a repeated name is harmless and not an error.
    events.sort();
    events.dedup();
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: &Value) -> (EventLogSettings, Vec<String>) {
        let mut w = Walk::default();
        let s = read_settings(&mut w, "event_log".into(), Some(v));
        (s, w.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn defaults_keep_ten_thousand_and_record_everything() {
        let (s, errors) = read(&serde_json::json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s, EventLogSettings::default());
        assert_eq!(s.capacity, 10_000);
        assert!(EventId::ALL.iter().all(|&e| s.is_enabled(e)));
        let mut w = Walk::default();
        assert_eq!(read_settings(&mut w, "event_log".into(), None), s);
        assert!(w.errors.is_empty());
    }

    #[test]
    fn round_trips() {
        let s = EventLogSettings {
            capacity: 250_000,
            disabled: vec![EventId::PortConnected, EventId::PortDisconnected],
        };
        let (back, errors) = read(&serde_json::to_value(&s).expect("json"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, s);
        assert!(!back.is_enabled(EventId::PortConnected));
        assert!(back.is_enabled(EventId::LoginFailed));
    }

    #[test]
    fn sorts_and_dedups_disabled_events() {
        let (s, errors) = read(&serde_json::json!({
            "disabled": ["port-disconnected", "port-connected", "port-disconnected"],
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            s.disabled,
            [EventId::PortConnected, EventId::PortDisconnected]
        );
    }

    #[test]
    fn reports_unknown_and_undisableable_events_with_their_path() {
        let (s, errors) = read(&serde_json::json!({
            "capacity": 999,
            "disabled": ["port-connected", "login-fail", 7, "events-dropped"],
            "colour": "red",
        }));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors[0].starts_with("event_log.capacity: 999 is out of range"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("event_log.disabled[1]: unknown event \"login-fail\""),
            "{errors:?}"
        );
        assert!(
            errors[2].starts_with("event_log.disabled[2]: expected an event name"),
            "{errors:?}"
        );
        assert!(
            errors[3].starts_with("event_log.disabled[3]: \"events-dropped\" is always recorded"),
            "{errors:?}"
        );
        assert!(
            errors[4].starts_with("event_log.colour: unknown field"),
            "{errors:?}"
        );
        assert_eq!(s.disabled, [EventId::PortConnected]);
    }

    #[test]
    fn refuses_a_disabled_list_that_is_not_a_list() {
        let (_, errors) = read(&serde_json::json!({"disabled": "port-connected"}));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("event_log.disabled: expected a list"),
            "{errors:?}"
        );
    }
}
