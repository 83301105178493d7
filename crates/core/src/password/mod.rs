//! Password policy (seed §3.4 "Password Policy") and password hashing.
//! STUB: being written; see the issue-3 brief.

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Account Management > Password Policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PasswordPolicy {}

/// Read the `security.password_policy` section.
pub(crate) fn read_policy(w: &mut Walk, path: String, value: Option<&Value>) -> PasswordPolicy {
    Obj::new(w, path, value).finish(w);
    PasswordPolicy::default()
}
