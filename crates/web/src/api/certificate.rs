//! Security > Certificate (seed §3.3): show the device certificate, export
//! it (so browsers and syslog servers can trust it), regenerate the
//! self-signed one, import one signed by the user's CA. A new certificate
//! is saved first, then swapped into the running TLS server: handshakes
//! from then on present it, established connections keep theirs.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::event_log::EventId;
use ttyward_core::permission::Permission;
use ttyward_core::service::{Caller, ServiceError};
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body};
use crate::api::error::ErrorBody;
use crate::cert::{CertInfo, DeviceCert, host_identity};

/// The certificate the device presents now (needs `security.view`).
#[utoipa::path(get, path = "/certificate", tag = "security",
    responses((status = 200, body = CertInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_certificate(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<CertInfo>, ApiError> {
    caller.require(Permission::SecurityView)?;
    Ok(Json(state.tls.current().info()))
}

/// The certificate chain as PEM, never the key (needs `security.view`).
#[utoipa::path(get, path = "/certificate/export", tag = "security",
    responses(
        (status = 200, content_type = "application/x-pem-file", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn export_certificate(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Response, ApiError> {
    caller.require(Permission::SecurityView)?;
    let mut response = state.tls.current().chain_pem().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"ttyward.crt\""),
    );
    Ok(response)
}

/// Make a new self-signed certificate for the host's current names and
/// addresses and use it at once (needs `security.change`).
#[utoipa::path(post, path = "/certificate/regenerate", tag = "security",
    responses((status = 200, body = CertInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn regenerate_certificate(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<CertInfo>, ApiError> {
    caller.require(Permission::SecurityChange)?;
    let (names, addresses) = host_identity();
    let cert = DeviceCert::self_signed(&names, &addresses).map_err(ApiError::internal)?;
    install(
        &state,
        &caller,
        cert,
        "regenerated a self-signed certificate",
    )
}

/// A certificate and its key, PEM.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateImport {
    /// The server certificate first, then any intermediates (PEM).
    pub certificate: String,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), unencrypted PEM.
    pub key: String,
}

/// Replace the device certificate with an imported one (needs
/// `security.change`). RSA 2048–8192 and ECDSA P-256/P-384/P-521; RSA
/// keys under 2048 bits (the seed's RSA-1024 included) are refused.
#[utoipa::path(post, path = "/certificate/import", tag = "security", request_body = CertificateImport,
    responses(
        (status = 200, body = CertInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Refused: the message says why (weak key, mismatch, expired, ...)"),
    ))]
pub async fn import_certificate(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<CertificateImport>,
) -> Result<Json<CertInfo>, ApiError> {
    caller.require(Permission::SecurityChange)?;
    let cert = DeviceCert::from_pem(request.certificate.as_bytes(), request.key.as_bytes())
        .map_err(|e| ApiError::from(ServiceError::Invalid(e.to_string())))?;
    install(&state, &caller, cert, "imported a certificate")
}

/// Save `cert`, present it from now on, record who did it.
fn install(
    state: &AppState,
    caller: &Caller,
    cert: DeviceCert,
    what: &str,
) -> Result<Json<CertInfo>, ApiError> {
    state
        .install_certificate(caller, cert, what)
        .map(Json)
        .map_err(ApiError::internal)
}

impl AppState {
    /// Save `cert`, present it from the next handshake on, and record the
    /// `certificate-changed` event naming `caller` and `what` was done
    /// (the API and the console's Certificate page both install this way).
    pub(crate) fn install_certificate(
        &self,
        caller: &Caller,
        cert: DeviceCert,
        what: &str,
    ) -> Result<CertInfo, crate::cert::CertError> {
        let info = cert.info();
        self.tls.replace(cert)?;
        self.service.audit(
            caller,
            EventId::CertificateChanged,
            format!(
                "{what}: {} (SHA-256 {}), valid until {}",
                info.subject, info.sha256_fingerprint, info.not_after
            ),
        );
        Ok(info)
    }
}
