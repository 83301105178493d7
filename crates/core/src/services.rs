//! Security > Services (seed §3.1): the management services and where they
//! listen. Today the web console and REST API (one HTTPS listener, as on the
//! NPort, where "Web Console" and "MOXA Service: RESTful API" share TCP 443)
//! and its optional plain-HTTP redirect; SSH, telnet and SNMP join here as
//! they arrive.
//!
//! Not here: the serial operation modes' listeners (each port's `mode`),
//! who may connect (the allowlist and DoS settings in [`crate::access`]).

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use crate::config::walk::{Obj, Walk};

/// Security > Services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Services {
    /// The HTTPS web console and REST API.
    pub web: WebService,
    /// Answers Moxa's host drivers' UDP probes for Real COM ports.
    pub realcom_discovery: DiscoveryService,
}

/// The UDP responder npreal2 polls (DSCI, `spec/realcom-protocol.md`
/// §9.2): without answers a default driver install reconnects every idle
/// Real COM port about once a minute. It runs only while some port is in
/// Real COM mode, on that mode's IPv4 addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiscoveryService {
    /// On by default, as the driver expects it.
    pub enabled: bool,
    /// UDP port (the driver uses 4800; 0 = any free port, for tests).
    pub port: u16,
}

impl Default for DiscoveryService {
    fn default() -> Self {
        DiscoveryService {
            enabled: true,
            port: 4800,
        }
    }
}

/// The HTTPS listener of the web console and REST API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebService {
    /// On by default, as the NPort's "Web Console" service.
    pub enabled: bool,
    /// Addresses to listen on (default every IPv4 and IPv6 address).
    pub bind: Vec<IpAddr>,
    /// HTTPS port (default 443; 0 = any free port, for tests). Ports below
    /// 1024 need CAP_NET_BIND_SERVICE (docs/deployment.md).
    pub https_port: u16,
    /// A plain-HTTP port that only redirects to HTTPS; off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_redirect_port: Option<u16>,
}

impl Default for WebService {
    fn default() -> Self {
        WebService {
            enabled: true,
            bind: crate::config::default_bind(),
            https_port: 443,
            http_redirect_port: None,
        }
    }
}

/// Read the `services` section.
pub(crate) fn read_services(w: &mut Walk, path: String, value: Option<&Value>) -> Services {
    let mut o = Obj::new(w, path, value);
    let web = read_web(w, o.at("web"), o.get("web"));
    let realcom_discovery =
        read_discovery(w, o.at("realcom_discovery"), o.get("realcom_discovery"));
    o.finish(w);
    Services {
        web,
        realcom_discovery,
    }
}

fn read_discovery(w: &mut Walk, path: String, value: Option<&Value>) -> DiscoveryService {
    let d = DiscoveryService::default();
    let mut o = Obj::new(w, path, value);
    let s = DiscoveryService {
        enabled: o.bool(w, "enabled", d.enabled),
        port: o.int(w, "port", d.port, 0..=u16::MAX),
    };
    o.finish(w);
    s
}

fn read_web(w: &mut Walk, path: String, value: Option<&Value>) -> WebService {
    let d = WebService::default();
    let mut o = Obj::new(w, path, value);
    let enabled = o.bool(w, "enabled", d.enabled);
    let bind = o.addrs(w, "bind");
    let https_port = o.int(w, "https_port", d.https_port, 0..=u16::MAX);
    let http_redirect_port = o.opt_int(w, "http_redirect_port", 1..=u16::MAX);
    if let Some(redirect) = http_redirect_port
        && redirect == https_port
    {
        w.err(
            &o.at("http_redirect_port"),
            format!(
                "{redirect} is the HTTPS port too; pick another port for the redirect (usually 80)"
            ),
        );
    }
    o.finish(w);
    WebService {
        enabled,
        bind,
        https_port,
        http_redirect_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: &Value) -> (Services, Vec<String>) {
        let mut w = Walk::default();
        let s = read_services(&mut w, "services".into(), Some(v));
        (s, w.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn https_on_port_443_everywhere_by_default_and_no_redirect() {
        let (s, errors) = read(&json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(s.web.enabled);
        assert_eq!(s.web.https_port, 443);
        assert_eq!(s.web.http_redirect_port, None);
        assert_eq!(s.web.bind.len(), 2);
    }

    #[test]
    fn reports_every_bad_field() {
        let (_, errors) = read(&json!({"web": {
            "enabled": "yes", "bind": ["nowhere"], "https_port": 70000,
            "http_redirect_port": 0, "telnet": true}}));
        for field in [
            "enabled",
            "bind[0]",
            "https_port",
            "http_redirect_port",
            "telnet",
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("services.web.{field}"))),
                "{field}: {errors:?}"
            );
        }
    }

    #[test]
    fn redirect_may_not_share_the_https_port() {
        let (_, errors) = read(&json!({"web": {"https_port": 8443, "http_redirect_port": 8443}}));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn round_trips() {
        let s = Services {
            web: WebService {
                enabled: false,
                bind: vec!["127.0.0.1".parse().expect("ip")],
                https_port: 0,
                http_redirect_port: Some(8080),
            },
            realcom_discovery: DiscoveryService {
                enabled: false,
                port: 14800,
            },
        };
        let (back, errors) = read(&serde_json::to_value(&s).expect("json"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, s);
    }
}
