//! Security > Certificate: the certificate the console presents, a link to
//! download it (so browsers can trust the device), regenerating the
//! self-signed one, importing one signed by the user's CA. Installing goes
//! through [`AppState::install_certificate`], as the REST API does; the
//! checks on an imported certificate (key size, dates, key match) are
//! `DeviceCert::from_pem`'s.
//!
//! The page's "CA certificates" section lists the trusted CA certificates,
//! uploads one (PEM pasted into a text area) and removes one per row,
//! through [`AppState::add_authority`] and [`AppState::remove_authority`]
//! as the REST API does; the checks are `crate::ca`'s.

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
use crate::ca::{CaError, CaInfo};
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
    /// The trusted CA certificates.
    authorities: Vec<AuthorityRow>,
    /// The PEM text of a refused CA upload, kept for correction.
    authority_pem: String,
}

/// One trusted CA certificate as the page lists it.
struct AuthorityRow {
    subject: String,
    issuer: String,
    key: String,
    not_after: String,
    expired: bool,
    fingerprint: String,
}

impl From<CaInfo> for AuthorityRow {
    fn from(c: CaInfo) -> Self {
        AuthorityRow {
            expired: c.not_after_unix < time::OffsetDateTime::now_utc().unix_timestamp(),
            subject: c.subject,
            issuer: c.issuer,
            key: c.key_algorithm,
            not_after: c.not_after,
            fingerprint: c.sha256_fingerprint,
        }
    }
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
        authorities: state
            .authorities
            .list()
            .into_iter()
            .map(AuthorityRow::from)
            .collect(),
        authority_pem: String::new(),
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

/// CA upload form fields.
#[derive(Deserialize)]
pub struct AuthorityForm {
    csrf: String,
    pem: String,
}

/// Trust one more CA certificate; a refusal (not a CA, expired, weak key,
/// already trusted ...) is shown as the problem, the text kept.
pub async fn add_authority(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<AuthorityForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let mut chrome = Chrome::new(&v, "/security/certificate");
    match state.add_authority(&v.caller, form.pem.as_bytes()) {
        Ok(info) => {
            chrome.notice = Some(format!(
                "CA certificate added: {} is trusted now.",
                info.subject
            ));
            Ok(render(&show(&state, &v, chrome)))
        }
        Err(e) => {
            refused(e, &mut chrome, "CA certificate refused")?;
            let mut page = show(&state, &v, chrome);
            page.authority_pem = form.pem;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

/// CA removal form fields.
#[derive(Deserialize)]
pub struct RemoveAuthorityForm {
    csrf: String,
    fingerprint: String,
}

/// Stop trusting one CA certificate.
pub async fn remove_authority(
    State(state): State<AppState>,
    v: Visitor,
    Form(form): Form<RemoveAuthorityForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&form.csrf)?;
    v.require(Permission::SecurityChange)?;
    let mut chrome = Chrome::new(&v, "/security/certificate");
    match state.remove_authority(&v.caller, &form.fingerprint) {
        Ok(info) => {
            chrome.notice = Some(format!(
                "CA certificate removed: {} is no longer trusted.",
                info.subject
            ));
            Ok(render(&show(&state, &v, chrome)))
        }
        Err(e) => {
            refused(e, &mut chrome, "Not removed")?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&show(&state, &v, chrome)),
            )
                .into_response())
        }
    }
}

/// Put a refused CA change on the page; a failing disk is an error page
/// (logged), not something the form can correct.
fn refused(e: CaError, chrome: &mut Chrome, what: &str) -> Result<(), PageError> {
    if let CaError::Storage(e) = e {
        tracing::error!("console: changing the trusted CA certificates: {e}");
        return Err(PageError::Internal);
    }
    chrome.problem = Some(sentence(&format!("{what}: {e}")));
    Ok(())
}
