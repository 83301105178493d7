//! Security > Certificate (seed §3.3): show the device certificate, export
//! it (so browsers and syslog servers can trust it), regenerate the
//! self-signed one, import one signed by the user's CA. A new certificate
//! is saved first, then swapped into the running TLS server: handshakes
//! from then on present it, established connections keep theirs.
//!
//! The trusted CA certificates (`/certificate/authorities`) are listed,
//! uploaded one at a time and removed here; the checks are
//! [`crate::ca`]'s. Reading needs `security.view`, changing
//! `security.change`, as for the device certificate.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ttyward_core::event_log::EventId;
use ttyward_core::permission::Permission;
use ttyward_core::service::{Caller, ServiceError};
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body, PathArg};
use crate::api::error::ErrorBody;
use crate::ca::{CaError, CaInfo};
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

/// The trusted CA certificates, by subject (needs `security.view`).
#[utoipa::path(get, path = "/certificate/authorities", tag = "security",
    responses((status = 200, body = Vec<CaInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_authorities(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<CaInfo>>, ApiError> {
    caller.require(Permission::SecurityView)?;
    Ok(Json(state.authorities.list()))
}

/// A CA certificate to trust.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaUpload {
    /// One CA certificate, PEM (`-----BEGIN CERTIFICATE-----`); text
    /// around it is ignored, a second certificate is refused.
    #[schema(max_length = 65536)]
    pub pem: String,
}

/// Trust one more CA certificate (needs `security.change`): it must be a
/// CA (basicConstraints CA:TRUE, keyCertSign if key usage is present),
/// valid now, with an RSA 2048–8192, ECDSA P-256/P-384/P-521 or Ed25519
/// key (RSA-1024 is refused); at most 32 are kept.
#[utoipa::path(post, path = "/certificate/authorities", tag = "security", request_body = CaUpload,
    responses(
        (status = 201, body = CaInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already trusted, or 32 CA certificates are trusted already"),
        (status = 422, body = ErrorBody, description = "Refused: the message says why (not a CA, expired, weak key, several certificates, ...)"),
    ))]
pub async fn add_authority(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<CaUpload>,
) -> Result<(StatusCode, Json<CaInfo>), ApiError> {
    caller.require(Permission::SecurityChange)?;
    let info = state
        .add_authority(&caller, request.pem.as_bytes())
        .map_err(ca_error)?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Stop trusting a CA certificate (needs `security.change`).
#[utoipa::path(delete, path = "/certificate/authorities/{fingerprint}", tag = "security",
    params(("fingerprint" = String, Path,
        description = "Its SHA-256 fingerprint as listed (`AB:CD:…`), or the 64 hex digits without colons",
        pattern = "^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$")),
    responses(
        (status = 204, description = "No longer trusted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No trusted CA certificate has this fingerprint"),
    ))]
pub async fn remove_authority(
    State(state): State<AppState>,
    Auth(caller): Auth,
    PathArg(fingerprint): PathArg<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::SecurityChange)?;
    state
        .remove_authority(&caller, &fingerprint)
        .map_err(ca_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The API's answer to a refused CA change.
fn ca_error(e: CaError) -> ApiError {
    match e {
        CaError::Duplicate { .. } | CaError::Full { .. } => {
            ServiceError::Conflict(e.to_string()).into()
        }
        CaError::NotFound { .. } => ApiError::not_found(e.to_string()),
        CaError::BadFingerprint { .. } => ApiError::bad_request(e.to_string()),
        CaError::Storage(_) => ApiError::internal(e),
        _ => ServiceError::Invalid(e.to_string()).into(),
    }
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

    /// Trust the CA certificate in `pem` and record the
    /// `ca-certificate-added` event naming `caller` (the API and the
    /// console's Certificate page both add this way).
    pub(crate) fn add_authority(&self, caller: &Caller, pem: &[u8]) -> Result<CaInfo, CaError> {
        let info = self.authorities.add_pem(pem)?;
        self.service.audit(
            caller,
            EventId::CaCertificateAdded,
            format!(
                "added the trusted CA certificate {} (SHA-256 {}), valid until {}",
                info.subject, info.sha256_fingerprint, info.not_after
            ),
        );
        Ok(info)
    }

    /// Stop trusting the CA certificate with `fingerprint` and record the
    /// `ca-certificate-removed` event naming `caller`.
    pub(crate) fn remove_authority(
        &self,
        caller: &Caller,
        fingerprint: &str,
    ) -> Result<CaInfo, CaError> {
        let info = self.authorities.remove(fingerprint)?;
        self.service.audit(
            caller,
            EventId::CaCertificateRemoved,
            format!(
                "removed the trusted CA certificate {} (SHA-256 {})",
                info.subject, info.sha256_fingerprint
            ),
        );
        Ok(info)
    }

    /// Factory reset: forget every trusted CA certificate (the directory
    /// goes with them), recording `ca-certificate-removed` for each so
    /// that the log says what was trusted before. A failure is the
    /// daemon's log's: the reset itself has happened.
    pub(crate) fn forget_authorities(&self, caller: &Caller) {
        match self.authorities.clear() {
            Ok(removed) => {
                for info in removed {
                    self.service.audit(
                        caller,
                        EventId::CaCertificateRemoved,
                        format!(
                            "factory reset removed the trusted CA certificate {} (SHA-256 {})",
                            info.subject, info.sha256_fingerprint
                        ),
                    );
                }
            }
            Err(e) => tracing::warn!("factory reset: the trusted CA certificates remain: {e}"),
        }
    }
}
