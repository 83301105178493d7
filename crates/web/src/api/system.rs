//! System information for the dashboard: the software, the host and the
//! device's identity. Times are UTC here as everywhere in the API; the
//! configured time zone is only named, for clients that want to show
//! times as the console does.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use ttyward_core::permission::Permission;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth};
use crate::api::error::ErrorBody;

/// What the dashboard shows about the device.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemInfo {
    /// The software's version (shown only to logged-in users with
    /// `system.view`).
    pub version: &'static str,
    /// The host's name.
    pub hostname: String,
    /// The configured server name (System Settings > General); the host's
    /// name when none is set.
    pub name: String,
    /// The IANA time zone the console shows times in, e.g. `Europe/Berlin`
    /// (`time` and every other time of the API stay UTC).
    pub time_zone: String,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// The device's clock, RFC 3339 UTC.
    pub time: String,
    /// Serial ports configured, and how many are enabled.
    pub ports: usize,
    /// Ports in an operation mode other than Disabled.
    pub ports_enabled: usize,
}

/// System information (needs `system.view`).
#[utoipa::path(get, path = "/system", tag = "system",
    responses((status = 200, body = SystemInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn system(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<SystemInfo>, ApiError> {
    caller.require(Permission::SystemView)?;
    let config = state.service.config();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let hostname = hostname();
    Ok(Json(SystemInfo {
        version: env!("CARGO_PKG_VERSION"),
        name: config.system.server_name(&hostname).to_owned(),
        time_zone: config.system.time_zone.name().to_owned(),
        hostname,
        uptime_s: state.started.elapsed().as_secs(),
        time: ttyward_core::event_log::export::format_time(now_ms),
        ports: config.ports.len(),
        ports_enabled: config
            .ports
            .iter()
            .filter(|p| !matches!(p.mode, ttyward_core::config::OperationMode::Disabled))
            .count(),
    }))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
