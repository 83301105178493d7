//! Security > Certificate: the certificate the console presents, a link to
//! download it (so browsers can trust the device), regenerating the
//! self-signed one, importing one signed by the user's CA. Installing goes
//! through [`AppState::install_certificate`], as the REST API does; the
//! checks on an imported certificate (key size, dates, key match) are
//! `DeviceCert::from_pem`'s.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::permission::Permission;

use super::super::{PageError, Visitor, render};
use super::form::CsrfForm;
use super::{Chrome, sentence};
use crate::api::AppState;
use crate::cert::{CertInfo, DeviceCert, host_identity};

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage {
    chrome: Chrome,
    rows: Vec<(&'static str, String)>,
    can_change: bool,
    /// The PEM text of a refused import, kept for correction (never the
    /// key: it is not sent back to the browser).
    certificate_pem: String,
}

fn rows(c: CertInfo) -> Vec<(&'static str, String)> {
    vec![
        ("Subject", c.subject),
        ("Issuer", c.issuer),
        (
            "Self-signed",
            if c.self_signed { "yes" } else { "no" }.into(),
        ),
        ("Key", c.key_algorithm),
        ("Valid from", c.not_before),
        ("Valid until", c.not_after),
        ("Names", c.subject_alt_names.join(", ")),
        ("SHA-256 fingerprint", c.sha256_fingerprint),
        ("Certificates in the chain", c.chain_length.to_string()),
    ]
}

fn show(state: &AppState, v: &Visitor, chrome: Chrome) -> CertificatePage {
    CertificatePage {
        rows: rows(state.tls.current().info()),
        can_change: v.caller.may(Permission::SecurityChange),
        certificate_pem: String::new(),
        chrome,
    }
}

/// The certificate and its forms.
pub async fn page(State(state): State<AppState>, v: Visitor) -> Result<Response, PageError> {
    v.require(Permission::SecurityView)?;
    let chrome = Chrome::new(&v, "/security/certificate");
    Ok(render(&show(&state, &v, chrome)))
}

/// Make a new self-signed certificate for the host's names and addresses.
pub async fn regenerate(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let (names, addresses) = host_identity();
    let installed = DeviceCert::self_signed(&names, &addresses).and_then(|cert| {
        state.install_certificate(&v.caller, cert, "regenerated a self-signed certificate")
    });
    let info = installed.map_err(|e| {
        tracing::error!("console: regenerating the certificate: {e}");
        PageError::Internal
    })?;
    let mut chrome = Chrome::new(&v, "/security/certificate");
    chrome.notice = Some(format!(
        "A new self-signed certificate is in use (SHA-256 {}). Browsers will warn again until you trust it.",
        info.sha256_fingerprint
    ));
    Ok(render(&show(&state, &v, chrome)))
}

/// Import form fields.
#[derive(Deserialize)]
pub struct ImportForm {
    csrf: String,
    certificate: String,
    key: String,
}

/// Install a certificate and key given as PEM; a refusal (weak key, key
/// not matching, expired ...) is shown as the problem.
pub async fn import(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<ImportForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let mut chrome = Chrome::new(&v, "/security/certificate");
    let cert = match DeviceCert::from_pem(form.certificate.as_bytes(), form.key.as_bytes()) {
        Ok(cert) => cert,
        Err(e) => {
            chrome.problem = Some(sentence(&format!("Certificate refused: {e}")));
            let mut page = show(&state, &v, chrome);
            page.certificate_pem = form.certificate;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
        }
    };
    let info = state
        .install_certificate(&v.caller, cert, "imported a certificate")
        .map_err(|e| {
            tracing::error!("console: installing the certificate: {e}");
            PageError::Internal
        })?;
    chrome.notice = Some(format!(
        "Certificate imported: {} is in use from the next connection on.",
        info.subject
    ));
    Ok(render(&show(&state, &v, chrome)))
}
