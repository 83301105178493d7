//! The event log (seed §3.6). STUB: being written; see the issue-3 brief.

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Diagnostics > System Log > Log Settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventLogSettings {}

/// Read the `event_log` section.
pub(crate) fn read_settings(w: &mut Walk, path: String, value: Option<&Value>) -> EventLogSettings {
    Obj::new(w, path, value).finish(w);
    EventLogSettings::default()
}

/// The event table (run once by the store's migration).
pub const SCHEMA: &str = "CREATE TABLE events (seq INTEGER PRIMARY KEY);";
