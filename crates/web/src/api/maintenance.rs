//! Maintenance > Factory Reset over the API: behind an explicit
//! confirmation phrase, since it deletes every account (the caller's
//! included), the configuration and the certificate.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use ttyward_core::permission::Permission;
use ttyward_core::service::ServiceError;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth, Body};
use crate::api::error::ErrorBody;
use crate::cert::{DeviceCert, host_identity};

/// The phrase a factory reset must be confirmed with.
pub(crate) const CONFIRMATION: &str = "delete everything";

/// The confirmation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactoryReset {
    /// Exactly `delete everything`: the reset deletes every account
    /// (yours too), custom group, session, API token, trusted CA
    /// certificate and the configuration, makes a new self-signed
    /// certificate, and turns every
    /// serial port off until a new first Administrator exists. The event
    /// log and the console's address (Services) are kept.
    #[schema(example = "delete everything")]
    pub confirm: String,
}

/// Reset the device to factory state (needs `maintenance.system`).
#[utoipa::path(post, path = "/maintenance/factory-reset", tag = "maintenance", request_body = FactoryReset,
    responses(
        (status = 204, description = "Reset; every session has ended, set the device up again with the new setup code"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The confirmation phrase is missing or wrong"),
    ))]
pub async fn factory_reset(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Body(request): Body<FactoryReset>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::MaintenanceSystem)?;
    if request.confirm != CONFIRMATION {
        return Err(ServiceError::Invalid(format!(
            "confirm the factory reset with exactly \"{CONFIRMATION}\"; it deletes every account and the configuration"
        ))
        .into());
    }
    state.factory_reset(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl AppState {
    /// The reset itself (the API and the console's page both use it): the
    /// service forgets everything, then a new self-signed certificate and
    /// no trusted CA certificates.
    pub(crate) async fn factory_reset(
        &self,
        caller: &ttyward_core::service::Caller,
    ) -> Result<(), ServiceError> {
        self.service.factory_reset(caller).await?;
        let (names, addresses) = host_identity();
        match DeviceCert::self_signed(&names, &addresses).map(|c| self.tls.replace(c)) {
            Ok(Ok(())) => {}
            // The reset itself happened; an old certificate is no reason
            // to report failure, but it is worth the daemon's log.
            Ok(Err(e)) | Err(e) => {
                tracing::warn!("factory reset: the certificate was not renewed: {e}")
            }
        }
        self.forget_authorities(caller);
        Ok(())
    }
}
