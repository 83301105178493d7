//! From form fields to a configuration change. The console does not judge
//! settings itself: it puts what was typed into the document in force (a
//! number as a number, anything else as text) and lets
//! `Config::from_value` name every bad field, so the pages, the REST API
//! and `ttyward config import` refuse exactly the same things.
//!
//! The one exception is a value the page shows in other units than the
//! document stores (minutes and hours where the document has seconds):
//! the validator would speak of seconds, so such a field is checked here,
//! in the page's unit, and its problem joins the validator's list.

use std::ops::RangeInclusive;

use serde::Deserialize;
use serde_json::{Value, json};
use ttyward_core::config::{Config, ConfigError, FieldError};
use ttyward_core::service::{Caller, ConfigChange, ServiceError};

use crate::api::AppState;

/// A form that carries only the CSRF token (a lone button).
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

/// A number stays a number in the document; anything else is passed as
/// text so that validation names the field.
pub fn number_or_text(s: &str) -> Value {
    s.trim()
        .parse::<u64>()
        .map_or_else(|_| json!(s.trim()), |n| json!(n))
}

/// An optional number: an empty field means "off" (null in the document).
pub fn optional_number(s: &str) -> Value {
    if s.trim().is_empty() {
        Value::Null
    } else {
        number_or_text(s)
    }
}

/// `seconds` in a page's unit of `unit_s` seconds: whole numbers as such,
/// anything else with up to two decimals.
pub fn in_units(seconds: u32, unit_s: u32) -> String {
    if unit_s == 0 || seconds.is_multiple_of(unit_s) {
        return (seconds / unit_s.max(1)).to_string();
    }
    let s = format!("{:.2}", f64::from(seconds) / f64::from(unit_s));
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A notice for a saved configuration change.
pub fn change_notice(change: &ConfigChange, done: &str) -> String {
    if change.changed.is_empty() {
        "Nothing to save: the settings were already so.".into()
    } else {
        format!("Saved (revision {}). {done}", change.revision)
    }
}

/// The configuration in force with parts replaced, plus the problems
/// found while reading the form.
pub struct ConfigEdit {
    doc: Value,
    problems: Vec<FieldError>,
}

impl ConfigEdit {
    /// Start from `config`.
    pub fn of(config: &Config) -> ConfigEdit {
        ConfigEdit {
            doc: config.to_value(),
            problems: Vec::new(),
        }
    }

    /// The part at `pointer` (a JSON pointer such as `/security/login`).
    pub fn get_mut(&mut self, pointer: &str) -> Option<&mut serde_json::Map<String, Value>> {
        self.doc.pointer_mut(pointer).and_then(Value::as_object_mut)
    }

    /// Replace the part at `pointer`; its parent must exist (every section
    /// does in a document made from a `Config`).
    pub fn set(&mut self, pointer: &str, value: Value) {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            return;
        };
        let parent = if parent.is_empty() {
            Some(&mut self.doc)
        } else {
            self.doc.pointer_mut(parent)
        };
        if let Some(Value::Object(map)) = parent {
            map.insert(key.to_owned(), value);
        }
    }

    /// A field shown in units of `unit_s` seconds (`unit`: "minutes"),
    /// `range` in those units; decimals are accepted. The value shown
    /// unchanged keeps `current_s` exactly (a stored 30 s shows as 0.5
    /// minutes, below the page's range). Returns the value in seconds, or
    /// null after recording the problem under `label`.
    pub fn seconds(
        &mut self,
        label: &str,
        text: &str,
        current_s: u32,
        (unit_s, unit): (u32, &str),
        range: RangeInclusive<u32>,
    ) -> Value {
        if text.trim() == in_units(current_s, unit_s) {
            return json!(current_s);
        }
        let (lo, hi) = (f64::from(*range.start()), f64::from(*range.end()));
        match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && (lo..=hi).contains(&x) => {
                // In range, so the product fits easily.
                json!((x * f64::from(unit_s)).round() as u64)
            }
            _ => {
                self.problems.push(FieldError {
                    path: label.to_owned(),
                    message: format!(
                        "give a number of {unit} from {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
                Value::Null
            }
        }
    }

    /// Record a problem the page found itself.
    pub fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The new configuration, validated, or every problem: the page's own
    /// and the validator's.
    pub fn build(self) -> Result<Config, ServiceError> {
        match Config::from_value(&self.doc) {
            Ok(config) if self.problems.is_empty() => Ok(config),
            Ok(_) => Err(ServiceError::Config(ConfigError {
                errors: self.problems,
            })),
            Err(mut e) => {
                let mut errors = self.problems;
                errors.append(&mut e.errors);
                Err(ServiceError::Config(ConfigError { errors }))
            }
        }
    }

    /// Validate and save as `caller` (`force`: even if the allowlist
    /// would shut out the caller's own address).
    pub async fn save(
        self,
        state: &AppState,
        caller: &Caller,
        force: bool,
    ) -> Result<ConfigChange, ServiceError> {
        let new = self.build()?;
        state.service.update_config(caller, new, force).await
    }
}

/// The position of serial port `number` in the configuration's list.
pub fn port_index(
    config: &ttyward_core::config::Config,
    number: u16,
) -> Result<usize, super::super::PageError> {
    config
        .ports
        .iter()
        .position(|p| p.number == number)
        .ok_or_else(|| super::super::PageError::NotFound(format!("no serial port {number}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_and_text_stays_text_for_the_validator_to_name() {
        assert_eq!(number_or_text(" 42 "), json!(42));
        assert_eq!(number_or_text("4x"), json!("4x"));
        assert_eq!(optional_number("  "), Value::Null);
        assert_eq!(optional_number("80"), json!(80));
    }

    #[test]
    fn seconds_show_as_whole_or_decimal_units() {
        assert_eq!(in_units(300, 60), "5");
        assert_eq!(in_units(30, 60), "0.5");
        assert_eq!(in_units(10, 60), "0.17");
        assert_eq!(in_units(28_800, 3600), "8");
    }

    #[test]
    fn minutes_become_seconds_and_bad_ones_are_named_in_minutes() {
        let mut edit = ConfigEdit::of(&Config::default());
        let minutes = (60, "minutes");
        assert_eq!(
            edit.seconds("Lockout time", "2.5", 300, minutes, 1..=1440),
            json!(150)
        );
        assert_eq!(
            edit.seconds("Lockout time", "0", 300, minutes, 1..=1440),
            Value::Null
        );
        assert_eq!(
            edit.seconds("Idle", "soon", 300, minutes, 1..=1440),
            Value::Null
        );
        let Err(ServiceError::Config(e)) = edit.build() else {
            panic!("two bad fields were accepted");
        };
        let paths: Vec<&str> = e.errors.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Lockout time", "Idle"]);
        assert!(e.errors[0].message.contains("minutes from 1 to 1440"));
    }

    #[test]
    fn a_value_shown_unchanged_keeps_its_exact_seconds() {
        let mut edit = ConfigEdit::of(&Config::default());
        assert_eq!(
            edit.seconds("Lockout time", "0.5", 30, (60, "minutes"), 1..=1440),
            json!(30)
        );
        assert!(edit.build().is_ok());
    }

    #[test]
    fn the_validators_problems_join_the_pages_own() {
        let mut edit = ConfigEdit::of(&Config::default());
        edit.set("/event_log/capacity", json!(5));
        edit.problem("Lockout time", "give a number");
        let Err(ServiceError::Config(e)) = edit.build() else {
            panic!("a capacity of 5 was accepted");
        };
        let paths: Vec<&str> = e.errors.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Lockout time", "event_log.capacity"]);
    }
}
