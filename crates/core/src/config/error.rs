//! Validation errors: every problem found in one pass, each with the path of
//! the field it concerns (`ports[2].mode.local_port`), so a user can fix a
//! whole file at once instead of one field per attempt.

use std::fmt;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Where the field is, e.g. `ports[0].serial.baud`.
    pub path: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything wrong with a configuration; never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in document order.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// A configuration error from a document that could not even be parsed.
    pub fn syntax(message: impl Into<String>) -> Self {
        ConfigError {
            errors: vec![FieldError {
                path: "(document)".into(),
                message: message.into(),
            }],
        }
    }
}
