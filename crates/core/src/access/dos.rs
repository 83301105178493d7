//! DoS defence settings (seed §3.7, security.md CR 7.1/7.2): how many
//! connections one source and the whole device may hold, how fast a source
//! may open them, how fast it may send HTTP requests to the management
//! plane (within connections it keeps open), and how long a handshake may
//! idle.
//!
//! The seed only says the NPort's defence is on by default; the limits and
//! their defaults are ours, chosen so that a serial server's normal use (a
//! few clients per port, reconnects after a network blip, a browser loading
//! the console) never meets them.
//! This module holds and validates the settings; the engine's Gate applies
//! them to every listener.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Security > DoS defence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DosSettings {
    /// On by default, as on the NPort. Off: no limit below, only the
    /// allowlist and each port's own max connections.
    pub enabled: bool,
    /// Concurrent connections from one source address across all listeners
    /// of both planes (1–4096, default 128: one host using every port of a
    /// 32-port server through Real COM holds 64, data plus command).
    pub per_source_connections: u16,
    /// Concurrent connections in total (1–65535, default 1024).
    pub max_connections: u16,
    /// New connections per second one source may open, on average: the
    /// refill rate of its token bucket (1–10000, default 50).
    pub accept_rate: u16,
    /// New connections one source may open at once: the size of its token
    /// bucket (1–10000, default 100: a host opening all its ports at once
    /// after a network blip).
    pub accept_burst: u16,
    /// HTTP requests per second one source may send to the management
    /// plane, on average, counted per request (HTTP/2: per stream) however
    /// many connections carry them: the refill rate of its request bucket
    /// (1–10000, default 100). A connection's accept token pays for the
    /// handshake, not for what follows on a kept-alive connection.
    pub request_rate: u16,
    /// HTTP requests one source may send at once: the size of its request
    /// bucket (1–10000, default 300: a browser loading every console page
    /// and asset at once, with room to spare).
    pub request_burst: u16,
    /// Seconds a TLS, SSH or HTTP handshake may take before the connection
    /// is closed (1–300, default 10). Raw serial listeners have no
    /// handshake; the management listeners use this.
    pub handshake_timeout_s: u16,
}

impl Default for DosSettings {
    fn default() -> Self {
        DosSettings {
            enabled: true,
            per_source_connections: 128,
            max_connections: 1024,
            accept_rate: 50,
            accept_burst: 100,
            request_rate: 100,
            request_burst: 300,
            handshake_timeout_s: 10,
        }
    }
}

impl DosSettings {
    /// [`DosSettings::handshake_timeout_s`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_s.into())
    }
}

/// Read the `security.dos` section.
pub(crate) fn read_dos(w: &mut Walk, path: String, value: Option<&Value>) -> DosSettings {
    let d = DosSettings::default();
    let mut o = Obj::new(w, path, value);
    let s = DosSettings {
        enabled: o.bool(w, "enabled", d.enabled),
        per_source_connections: o.int(
            w,
            "per_source_connections",
            d.per_source_connections,
            1..=4096,
        ),
        max_connections: o.int(w, "max_connections", d.max_connections, 1..=u16::MAX),
        accept_rate: o.int(w, "accept_rate", d.accept_rate, 1..=10_000),
        accept_burst: o.int(w, "accept_burst", d.accept_burst, 1..=10_000),
        request_rate: o.int(w, "request_rate", d.request_rate, 1..=10_000),
        request_burst: o.int(w, "request_burst", d.request_burst, 1..=10_000),
        handshake_timeout_s: o.int(w, "handshake_timeout_s", d.handshake_timeout_s, 1..=300),
    };
    o.finish(w);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: &Value) -> (DosSettings, Vec<String>) {
        let mut w = Walk::default();
        let s = read_dos(&mut w, "security.dos".into(), Some(v));
        (s, w.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn on_by_default_with_the_documented_limits() {
        let (s, errors) = read(&json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s, DosSettings::default());
        assert!(s.enabled);
        assert_eq!(
            (
                s.per_source_connections,
                s.max_connections,
                s.accept_rate,
                s.accept_burst,
                s.request_rate,
                s.request_burst
            ),
            (128, 1024, 50, 100, 100, 300)
        );
        assert_eq!(s.handshake_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn reports_every_bad_field() {
        let (s, errors) = read(&json!({
            "enabled": 1,
            "per_source_connections": 0,
            "max_connections": 65_536,
            "accept_rate": 10_001,
            "accept_burst": -1,
            "request_rate": 0,
            "request_burst": 10_001,
            "handshake_timeout_s": 301,
            "syn_cookies": true,
        }));
        let fields = [
            "enabled",
            "per_source_connections",
            "max_connections",
            "accept_rate",
            "accept_burst",
            "request_rate",
            "request_burst",
            "handshake_timeout_s",
            "syn_cookies",
        ];
        assert_eq!(errors.len(), fields.len(), "{errors:?}");
        for (e, f) in errors.iter().zip(fields) {
            assert!(e.starts_with(&format!("security.dos.{f}: ")), "{e}");
        }
        // Bad fields fall back to defaults so the walk can go on.
        assert_eq!(s, DosSettings::default());
    }

    #[test]
    fn round_trips_through_the_document() {
        let s = DosSettings {
            enabled: false,
            per_source_connections: 4096,
            max_connections: 1,
            accept_rate: 10_000,
            accept_burst: 1,
            request_rate: 10_000,
            request_burst: 1,
            handshake_timeout_s: 300,
        };
        let (back, errors) = read(&serde_json::to_value(s).unwrap());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, s);
    }
}
