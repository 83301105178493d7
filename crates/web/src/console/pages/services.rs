//! Security > Services: the web console and REST API listener (on or off,
//! addresses, HTTPS port, the plain-HTTP redirect port), and the Real COM
//! discovery responder (on or off, UDP port). Saving a new address or port
//! moves the console: the daemon restarts the web server, so the page
//! names the new address for the browser to follow. Each section has its
//! own form; both post here, told apart by their `section` field, and a
//! save changes only its own section.

use std::net::IpAddr;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use ttyward_core::permission::Permission;
use ttyward_core::services::{DiscoveryService, WebService};

use super::super::{PageError, Visitor, render};
use super::Chrome;
use super::form::{ConfigEdit, change_notice, number_or_text, optional_number};
use crate::api::AppState;

/// The form's values as shown.
struct WebView {
    enabled: bool,
    bind: String,
    https_port: String,
    http_redirect_port: String,
}

impl WebView {
    fn of(web: &WebService) -> WebView {
        WebView {
            enabled: web.enabled,
            bind: web
                .bind
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            https_port: web.https_port.to_string(),
            http_redirect_port: web
                .http_redirect_port
                .map(|p| p.to_string())
                .unwrap_or_default(),
        }
    }
}

/// The discovery form's values as shown.
struct DiscoveryView {
    enabled: bool,
    port: String,
}

impl DiscoveryView {
    fn of(d: &DiscoveryService) -> DiscoveryView {
        DiscoveryView {
            enabled: d.enabled,
            port: d.port.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    chrome: Chrome,
    web: WebView,
    discovery: DiscoveryView,
    can_change: bool,
    /// After a move: where the console is now.
    new_url: Option<String>,
    /// After a move: what the browser must know.
    moved: Option<String>,
}

/// The Services form.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let config = state.service.config();
    Ok(render(&ServicesPage {
        web: WebView::of(&config.services.web),
        discovery: DiscoveryView::of(&config.services.realcom_discovery),
        can_change: v.caller.may(Permission::SecurityChange),
        new_url: None,
        moved: None,
        chrome: Chrome::new(&v, "/security/services"),
    }))
}

/// Services form fields: the web section's, or the discovery section's
/// (`section=discovery`).
#[derive(Deserialize)]
pub struct ServicesForm {
    csrf: String,
    /// Which form: `discovery`, or none for the web section (the form
    /// older pages sent).
    section: Option<String>,
    enabled: Option<String>,
    #[serde(default)]
    bind: String,
    #[serde(default)]
    https_port: String,
    #[serde(default)]
    http_redirect_port: String,
    /// A checkbox: present when ticked.
    discovery_enabled: Option<String>,
    #[serde(default)]
    discovery_port: String,
}

/// Save the settings of the section whose form was sent.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<ServicesForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    if form.section.as_deref() == Some("discovery") {
        return submit_discovery(&state, &v, form).await;
    }
    let old = state.service.config().services.web.clone();
    let bind: Vec<Value> = form
        .bind
        .split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| json!(a))
        .collect();
    let mut edit = ConfigEdit::of(&state.service.config());
    edit.set(
        "/services/web",
        json!({
            "enabled": form.enabled.is_some(),
            "bind": bind,
            "https_port": number_or_text(&form.https_port),
            "http_redirect_port": optional_number(&form.http_redirect_port),
        }),
    );
    let result = edit.save(&state, &v.caller, false).await;
    let mut chrome = Chrome::new(&v, "/security/services");
    let status = chrome.outcome(result, |c| {
        change_notice(c, "The web server restarts with these settings.")
    })?;
    let config = state.service.config();
    let new = config.services.web.clone();
    let mut page = ServicesPage {
        web: WebView::of(&new),
        discovery: DiscoveryView::of(&config.services.realcom_discovery),
        can_change: true,
        new_url: None,
        moved: None,
        chrome,
    };
    if status != StatusCode::OK {
        page.web = WebView {
            enabled: form.enabled.is_some(),
            bind: form.bind,
            https_port: form.https_port,
            http_redirect_port: form.http_redirect_port,
        };
    } else if new != old {
        let (url, moved) = new_address(&new, browser_host(&headers, &uri).as_deref());
        page.new_url = url;
        page.moved = Some(moved);
    }
    Ok((status, render(&page)).into_response())
}

/// Save the Real COM discovery responder's settings (the engine starts or
/// stops it at once; nothing else moves).
async fn submit_discovery(
    state: &AppState,
    v: &Visitor,
    form: ServicesForm,
) -> Result<Response, PageError> {
    let mut edit = ConfigEdit::of(&state.service.config());
    edit.set(
        "/services/realcom_discovery",
        json!({
            "enabled": form.discovery_enabled.is_some(),
            "port": number_or_text(&form.discovery_port),
        }),
    );
    let result = edit.save(state, &v.caller, false).await;
    let mut chrome = Chrome::new(v, "/security/services");
    let status = chrome.outcome(result, |c| {
        change_notice(c, "Real COM discovery follows these settings now.")
    })?;
    let config = state.service.config();
    let mut page = ServicesPage {
        web: WebView::of(&config.services.web),
        discovery: DiscoveryView::of(&config.services.realcom_discovery),
        can_change: true,
        new_url: None,
        moved: None,
        chrome,
    };
    if status != StatusCode::OK {
        // The refused values stay in the form for correction.
        page.discovery = DiscoveryView {
            enabled: form.discovery_enabled.is_some(),
            port: form.discovery_port,
        };
    }
    Ok((status, render(&page)).into_response())
}

/// The host part of the address the browser used (a name, an IPv4
/// address, or an IPv6 address in brackets).
fn browser_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let authority = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))?;
    let host = match authority.rsplit_once(':') {
        // `[::1]:8443` or `name:8443`; a bare IPv6 address never comes
        // without brackets in a Host header.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
        _ => authority,
    };
    (!host.is_empty()).then_some(host)
}

/// Where the console answers after a change to `web`, as a URL (when it
/// can be told) and a sentence for the page.
fn new_address(web: &WebService, browser_host: Option<&str>) -> (Option<String>, String) {
    if !web.enabled {
        return (
            None,
            "The web console and REST API are off now: this page will not answer again. Turn them on with `ttyward config import` on the host.".into(),
        );
    }
    if web.https_port == 0 {
        return (
            None,
            "The web server restarts on a port the system picks (HTTPS port 0); the daemon's output names it.".into(),
        );
    }
    let used: Option<IpAddr> = browser_host.and_then(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    });
    // The address the browser used still works when it is listened on,
    // or when a wildcard of its family is (a name: any wildcard).
    let still_there = browser_host.is_some()
        && web.bind.iter().any(|b| match used {
            Some(ip) => *b == ip || (b.is_unspecified() && b.is_ipv4() == ip.is_ipv4()),
            None => b.is_unspecified(),
        });
    let host = match (still_there, browser_host, web.bind.first()) {
        (true, Some(h), _) => h.to_owned(),
        (_, _, Some(IpAddr::V6(a))) => format!("[{a}]"),
        (_, _, Some(a)) => a.to_string(),
        (_, _, None) => return (None, "The web server has no address to listen on.".into()),
    };
    let url = if web.https_port == 443 {
        format!("https://{host}/security/services")
    } else {
        format!("https://{host}:{}/security/services", web.https_port)
    };
    (
        Some(url),
        "The web server restarts with the new settings; this address may stop answering. Continue at the new address (the session stays valid there: browsers send the cookie to every port of the host):".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(bind: &[&str], port: u16) -> WebService {
        WebService {
            enabled: true,
            bind: bind.iter().map(|a| a.parse().expect("address")).collect(),
            https_port: port,
            http_redirect_port: None,
        }
    }

    #[test]
    fn the_new_url_keeps_the_browsers_address_while_it_is_listened_on() {
        let (url, _) = new_address(&web(&["0.0.0.0"], 8443), Some("device.example"));
        assert_eq!(
            url.as_deref(),
            Some("https://device.example:8443/security/services")
        );
        let (url, _) = new_address(&web(&["127.0.0.1", "::1"], 443), Some("127.0.0.1"));
        assert_eq!(url.as_deref(), Some("https://127.0.0.1/security/services"));
    }

    #[test]
    fn the_new_url_names_the_new_address_when_the_old_one_is_gone() {
        let (url, _) = new_address(&web(&["::1"], 9443), Some("127.0.0.1"));
        assert_eq!(url.as_deref(), Some("https://[::1]:9443/security/services"));
        let (url, _) = new_address(&web(&["127.0.0.2"], 9443), Some("[::1]"));
        assert_eq!(
            url.as_deref(),
            Some("https://127.0.0.2:9443/security/services")
        );
    }

    #[test]
    fn no_url_when_the_console_is_off_or_on_a_port_the_system_picks() {
        let mut off = web(&["0.0.0.0"], 443);
        off.enabled = false;
        assert_eq!(new_address(&off, Some("127.0.0.1")).0, None);
        assert_eq!(
            new_address(&web(&["0.0.0.0"], 0), Some("127.0.0.1")).0,
            None
        );
    }

    #[test]
    fn the_browsers_host_comes_without_its_port() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "[::1]:8443".parse().expect("header"));
        assert_eq!(
            browser_host(&h, &Uri::from_static("/")).as_deref(),
            Some("[::1]")
        );
        h.insert(header::HOST, "device".parse().expect("header"));
        assert_eq!(
            browser_host(&h, &Uri::from_static("/")).as_deref(),
            Some("device")
        );
    }
}
