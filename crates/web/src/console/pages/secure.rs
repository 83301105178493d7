//! Serial Port Settings > Secure Connection (seed §3.2): per port, Off,
//! "Encrypted connection" (TLS 1.2/1.3 with the device certificate) or
//! "Encrypted and authenticated connection" (mutual TLS: the remote
//! device or host must present a certificate from a CA uploaded under
//! Security > Certificate). Saving goes through the configuration like the
//! other serial pages, so the validator names a refused choice (UDP and
//! the reverse terminal modes have no TLS; the page asks the validator
//! which modes take it rather than keeping its own list) and only the
//! changed port restarts.
//!
//! Not here: the TLS itself (the engine's `tls` module, fed by the
//! daemon's `data_tls`) and uploading CA certificates (the seed's "Remote
//! Device Certificate" tab is Security > Certificate's CA section here).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use ttyward_core::config::{Config, OperationMode, PortConfig, SecureConnection};
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::form::{ConfigEdit, change_notice};
use super::{Chrome, sentence};
use crate::api::AppState;

/// The choices, in the seed's words.
const CHOICES: [(&str, &str); 3] = [
    ("off", "Off"),
    ("encrypted", "Encrypted connection"),
    ("authenticated", "Encrypted and authenticated connection"),
];

/// What the setting covers in the port's mode, or why it cannot be used
/// there (`refusal`: the validator's word on TLS for this port).
fn note(mode: &OperationMode, refusal: Option<&str>) -> String {
    if let Some(why) = refusal {
        return match mode {
            OperationMode::Udp(_) => {
                "UDP ports cannot use Secure Connection: TLS needs TCP.".into()
            }
            _ => sentence(why),
        };
    }
    match mode {
        OperationMode::RealCom(_) => {
            "Applies to the data connection; the command connection stays plain, as Moxa's driver expects."
        }
        OperationMode::TcpClient(_) => {
            "Applies to the connections this port opens. Encrypted does not check the server's certificate; authenticated checks it against the trusted CA certificates and the destination's name."
        }
        OperationMode::PairMaster(_) | OperationMode::PairSlave(_) => {
            "Applies to the link between the pair's master and slave: set both ends alike."
        }
        OperationMode::Disabled => "The port is disabled: nothing is served.",
        _ => {
            "Applies to every connection to this port; plain TCP and TLS 1.1 or older are refused."
        }
    }
    .into()
}

/// Why the validator refuses TLS on the port at `index` in its current
/// mode (UDP has none, nor have some other modes), or `None` when it takes
/// it. The page asks rather than keeping its own list, so it offers
/// exactly what would be saved.
fn tls_refusal(doc: &Value, index: usize) -> Option<String> {
    let mut doc = doc.clone();
    let port = doc
        .pointer_mut(&format!("/ports/{index}"))
        .and_then(Value::as_object_mut)?;
    port.insert("secure".into(), json!("encrypted"));
    let field = format!("ports[{index}].secure");
    Config::from_value(&doc)
        .err()?
        .errors
        .into_iter()
        .find(|e| e.path == field)
        .map(|e| e.message)
}

/// The human name of a mode.
fn mode_label(mode: &OperationMode) -> &'static str {
    match mode {
        OperationMode::Disabled => "Disabled",
        OperationMode::RealCom(_) => "Real COM",
        OperationMode::TcpServer(_) => "TCP Server",
        OperationMode::Rfc2217(_) => "RFC 2217",
        OperationMode::Udp(_) => "UDP",
        OperationMode::TcpClient(_) => "TCP Client",
        OperationMode::PairMaster(_) => "Pair Connection Master",
        OperationMode::PairSlave(_) => "Pair Connection Slave",
        OperationMode::ReverseTelnet(_) => "Reverse Telnet",
        OperationMode::ReverseSsh(_) => "Reverse SSH",
    }
}

/// The seed's name of a setting.
fn choice_label(secure: SecureConnection) -> &'static str {
    match secure {
        SecureConnection::Off => "Off",
        SecureConnection::Encrypted => "Encrypted connection",
        SecureConnection::Authenticated => "Encrypted and authenticated connection",
    }
}

/// The choices for a port: all of them, or where the mode has no TLS
/// "off" (and `chosen`, a refused choice shown again).
fn options(has_tls: bool, chosen: &str) -> Vec<(&'static str, &'static str)> {
    CHOICES
        .into_iter()
        .filter(|(value, _)| has_tls || *value == "off" || *value == chosen)
        .collect()
}

/// One port's form as shown.
struct SecureRow {
    number: u16,
    alias: String,
    device: String,
    mode: &'static str,
    /// The setting in force, in the seed's words.
    current: &'static str,
    /// The value the form selects (the one in force, or a refused choice).
    chosen: String,
    note: String,
    /// The choices offered (where TLS is refused: only "off", and a
    /// refused choice shown again).
    options: Vec<(&'static str, &'static str)>,
    /// Authenticated in force while no CA certificate is trusted: every
    /// connection is refused.
    needs_ca: bool,
}

impl SecureRow {
    /// `refusal`: why TLS cannot be used in the port's mode, if so.
    fn of(p: &PortConfig, authorities: usize, refusal: Option<&str>) -> SecureRow {
        SecureRow {
            number: p.number,
            alias: p.alias.clone(),
            device: p.device.to_string(),
            mode: mode_label(&p.mode),
            current: choice_label(p.secure),
            chosen: p.secure.as_str().to_owned(),
            note: note(&p.mode, refusal),
            options: options(refusal.is_none(), p.secure.as_str()),
            needs_ca: p.secure == SecureConnection::Authenticated && authorities == 0,
        }
    }
}

#[derive(Template)]
#[template(path = "secure.html")]
struct SecurePage {
    chrome: Chrome,
    ports: Vec<SecureRow>,
    can_change: bool,
    /// How many CA certificates are trusted.
    authorities: usize,
    /// Whether the caller may open Security > Certificate (the link).
    can_view_certificate: bool,
}

fn rows(config: &Config, authorities: usize) -> Vec<SecureRow> {
    let doc = config.to_value();
    config
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| SecureRow::of(p, authorities, tls_refusal(&doc, i).as_deref()))
        .collect()
}

fn show(state: &AppState, v: &Visitor, chrome: Chrome, can_change: bool) -> SecurePage {
    let authorities = state.authorities.list().len();
    SecurePage {
        ports: rows(&state.service.config(), authorities),
        can_change,
        authorities,
        can_view_certificate: v.caller.may(Permission::SecurityView),
        chrome,
    }
}

/// Every port's setting and form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SerialView)?;
    let chrome = Chrome::new(&v, "/serial/secure");
    let can_change = v.caller.may(Permission::SerialChange);
    Ok(render(&show(&state, &v, chrome, can_change)))
}

/// Secure Connection form fields.
#[derive(Deserialize)]
pub struct SecureForm {
    csrf: String,
    #[serde(default)]
    secure: String,
}

/// Save one port's setting (the port restarts with it).
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    Path(number): Path<u16>,
    Form(form): Form<SecureForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SerialChange)?;
    let config = state.service.config();
    let index = super::form::port_index(&config, number)?;
    let mut edit = ConfigEdit::of(&config);
    // An unknown value goes to the validator as typed, which names it.
    edit.set(&format!("/ports/{index}/secure"), json!(form.secure.trim()));
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/serial/secure");
    let status = chrome.outcome(result, |c| {
        change_notice(
            c,
            &format!(
                "Port {number} restarted with the new setting; its clients were disconnected."
            ),
        )
    })?;
    let mut page = show(&state, &v, chrome, true);
    if status != StatusCode::OK
        && let Some(p) = page.ports.iter_mut().find(|p| p.number == number)
    {
        // The refused choice stays selected for correction.
        let has_tls = p.options.len() == CHOICES.len();
        p.options = options(has_tls, form.secure.trim());
        p.chosen = form.secure.trim().to_owned();
    }
    Ok((status, render(&page)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_value(&json!({"ports": [
            {"number": 1, "device": "sim:echo", "secure": "authenticated",
                "mode": {"type": "tcp-server"}},
            {"number": 2, "device": "sim:echo", "mode": {"type": "udp",
                "destinations": [{"begin": "127.0.0.1", "port": 5000}]}},
            {"number": 3, "device": "sim:echo", "secure": "encrypted",
                "mode": {"type": "real-com"}},
            {"number": 4, "device": "sim:echo", "mode": {"type": "reverse-telnet"}},
        ]}))
        .expect("a valid configuration")
    }

    #[test]
    fn authenticated_without_a_trusted_ca_is_flagged() {
        let without = rows(&config(), 0);
        assert!(without[0].needs_ca);
        assert!(!without[2].needs_ca, "encrypted needs no CA");
        let with = rows(&config(), 1);
        assert!(!with[0].needs_ca);
    }

    #[test]
    fn rows_show_the_setting_in_the_seeds_words_and_what_it_covers() {
        let r = rows(&config(), 0);
        assert_eq!(r[0].current, "Encrypted and authenticated connection");
        assert_eq!(r[0].chosen, "authenticated");
        assert_eq!(r[0].mode, "TCP Server");
        assert!(r[1].note.contains("TLS needs TCP"));
        assert_eq!(r[1].options, [("off", "Off")], "UDP is offered only off");
        assert_eq!(r[0].options.len(), 3);
        assert_eq!(r[3].options, [("off", "Off")], "reverse telnet has no TLS");
        assert!(
            r[3].note.starts_with("Reverse terminal modes have no TLS") && r[3].note.ends_with('.'),
            "the validator's reason as a sentence: {}",
            r[3].note
        );
        assert_eq!(r[1].current, "Off");
        assert!(r[2].note.contains("command connection stays plain"));
    }

    #[test]
    fn udp_with_tls_is_refused_by_the_validator_naming_the_field() {
        let mut edit = ConfigEdit::of(&config());
        edit.set("/ports/1/secure", json!("encrypted"));
        let Err(ttyward_core::service::ServiceError::Config(e)) = edit.build() else {
            panic!("UDP with TLS was accepted");
        };
        assert_eq!(e.errors[0].path, "ports[1].secure", "{:?}", e.errors);
    }

    #[test]
    fn an_unknown_choice_is_named_by_the_validator() {
        let mut edit = ConfigEdit::of(&config());
        edit.set("/ports/0/secure", json!("paranoid"));
        let Err(ttyward_core::service::ServiceError::Config(e)) = edit.build() else {
            panic!("an unknown setting was accepted");
        };
        assert_eq!(e.errors[0].path, "ports[0].secure", "{:?}", e.errors);
    }
}
