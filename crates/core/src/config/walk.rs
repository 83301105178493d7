//! The walker every section of the configuration document is read with:
//! it collects every problem with its field path instead of stopping at the
//! first, and reports keys nobody asked for. Section readers (ports here,
//! password policy, allowlist, event log in their own modules) all take a
//! [`Walk`] and return their typed value, with defaults where a field was
//! bad so the walk can go on.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{FieldError, default_bind};

/// Collects errors during one walk.
#[derive(Default)]
pub(crate) struct Walk {
    pub(crate) errors: Vec<FieldError>,
}

impl Walk {
    pub(crate) fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

/// A JSON object being read; remembers which keys were used.
pub(crate) struct Obj<'v> {
    pub(crate) path: String,
    pub(crate) map: Option<&'v Map<String, Value>>,
    used: BTreeSet<&'static str>,
}

impl<'v> Obj<'v> {
    /// `value` may be absent (all defaults) but, if present, must be an object.
    pub(crate) fn new(w: &mut Walk, path: String, value: Option<&'v Value>) -> Obj<'v> {
        let map = match value {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                w.err(
                    &path,
                    format!("expected a table/object, found {}", kind(other)),
                );
                None
            }
        };
        Obj {
            path,
            map,
            used: BTreeSet::new(),
        }
    }

    pub(crate) fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.used.insert(key);
        // null is how an unset optional field serialises: same as absent.
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// Report keys nobody asked for.
    pub(crate) fn finish(self, w: &mut Walk) {
        if let Some(map) = self.map {
            for key in map.keys().filter(|k| !self.used.contains(k.as_str())) {
                let expected: Vec<&str> = self.used.iter().copied().collect();
                w.err(
                    &self.at(key),
                    format!("unknown field; expected one of: {}", expected.join(", ")),
                );
            }
        }
    }

    pub(crate) fn uint(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> u64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v.as_u64() {
            Some(n) if range.contains(&n) => n,
            Some(n) => {
                w.err(
                    &self.at(key),
                    format!("{n} is out of range {}–{}", range.start(), range.end()),
                );
                default
            }
            None => {
                w.err(
                    &self.at(key),
                    format!(
                        "expected an integer {}–{}, found {}",
                        range.start(),
                        range.end(),
                        kind(v)
                    ),
                );
                default
            }
        }
    }

    /// An unsigned integer field of type `T` within `range`.
    pub(crate) fn int<T>(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        default: T,
        range: RangeInclusive<T>,
    ) -> T
    where
        T: Copy + Into<u64> + TryFrom<u64>,
    {
        let r = (*range.start()).into()..=(*range.end()).into();
        T::try_from(self.uint(w, key, default.into(), r)).unwrap_or(default)
    }

    pub(crate) fn bool(&mut self, w: &mut Walk, key: &'static str, default: bool) -> bool {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v.as_bool() {
            Some(b) => b,
            None => {
                w.err(
                    &self.at(key),
                    format!("expected true or false, found {}", kind(v)),
                );
                default
            }
        }
    }

    /// An optional unsigned integer (absent or null = `None`) within `range`.
    pub(crate) fn opt_int<T>(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        range: RangeInclusive<T>,
    ) -> Option<T>
    where
        T: Copy + Into<u64> + TryFrom<u64>,
    {
        self.get(key)?;
        let start = *range.start();
        let value = self.int(w, key, start, range);
        // An out-of-range value was reported; `None` keeps the walk going.
        (w.errors.last().is_none_or(|e| e.path != self.at(key))).then_some(value)
    }

    pub(crate) fn string(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        max_chars: usize,
    ) -> Option<String> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) if s.chars().count() <= max_chars => Some(s.to_owned()),
            Some(_) => {
                w.err(&self.at(key), format!("longer than {max_chars} characters"));
                None
            }
            None => {
                w.err(
                    &self.at(key),
                    format!("expected a string, found {}", kind(v)),
                );
                None
            }
        }
    }

    /// A value whose own serde impl knows the accepted words (parity, ...).
    pub(crate) fn parse<T: DeserializeOwned>(
        &mut self,
        w: &mut Walk,
        key: &'static str,
        default: T,
    ) -> T {
        let Some(v) = self.get(key) else {
            return default;
        };
        match serde_json::from_value(v.clone()) {
            Ok(t) => t,
            Err(e) => {
                w.err(&self.at(key), format!("{e}"));
                default
            }
        }
    }

    /// A delimiter: a byte given as an integer 0–255 or a hex string ("0d", "0x0D").
    pub(crate) fn byte(&mut self, w: &mut Walk, key: &'static str) -> Option<u8> {
        let v = self.get(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Value::String(s) => {
                let hex = s.trim_start_matches("0x").trim_start_matches("0X");
                if hex.is_empty() || hex.len() > 2 {
                    None
                } else {
                    u8::from_str_radix(hex, 16).ok()
                }
            }
            _ => None,
        };
        if parsed.is_none() {
            w.err(
                &self.at(key),
                "expected a byte: an integer 0–255 or two hex digits such as \"0d\"",
            );
        }
        parsed
    }

    pub(crate) fn addrs(&mut self, w: &mut Walk, key: &'static str) -> Vec<IpAddr> {
        let Some(v) = self.get(key) else {
            return default_bind();
        };
        let path = self.at(key);
        let Some(items) = v.as_array() else {
            w.err(
                &path,
                "expected a list of IP addresses, e.g. [\"0.0.0.0\", \"::\"]",
            );
            return default_bind();
        };
        if items.is_empty() {
            w.err(&path, "must name at least one address");
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| ip(w, &format!("{path}[{i}]"), item))
            .collect()
    }
}

pub(crate) fn ip(w: &mut Walk, path: &str, v: &Value) -> Option<IpAddr> {
    match v.as_str().map(str::parse::<IpAddr>) {
        Some(Ok(a)) => Some(a),
        _ => {
            w.err(path, "expected an IPv4 or IPv6 address");
            None
        }
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}
