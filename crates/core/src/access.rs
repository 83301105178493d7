//! IP allowlist (seed §3.5) and DoS defence settings (seed §3.7).
//! STUB: being written; see the issue-3 brief.

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Security > Allowlist.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Allowlist {}

/// DoS defence.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DosSettings {}

/// Read the `security.allowlist` section.
pub(crate) fn read_allowlist(w: &mut Walk, path: String, value: Option<&Value>) -> Allowlist {
    Obj::new(w, path, value).finish(w);
    Allowlist::default()
}

/// Read the `security.dos` section.
pub(crate) fn read_dos(w: &mut Walk, path: String, value: Option<&Value>) -> DosSettings {
    Obj::new(w, path, value).finish(w);
    DosSettings::default()
}
