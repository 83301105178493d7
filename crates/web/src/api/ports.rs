//! Serial ports as they run: the dashboard's per-port state, connections
//! and traffic counters, next to each port's configured mode. The settings
//! themselves are changed through `PATCH /config` (`ports`).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use ttyward_core::permission::Permission;
use ttyward_engine::PortState;
use utoipa::ToSchema;

use super::{ApiError, AppState, Auth};
use crate::api::error::ErrorBody;

/// One port's configuration summary and live state.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortStatus {
    /// Port number.
    pub number: u16,
    /// Alias.
    pub alias: String,
    /// Device path or simulator.
    pub device: String,
    /// Operation mode (`tcp-server`, `rfc2217`, `udp`, `tcp-client`, `disabled`).
    pub mode: String,
    /// `starting`, `open`, `device-missing`, `stopped`, or `off` (the mode
    /// is Disabled, or no Administrator exists yet).
    pub state: String,
    /// The device error while it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Network clients connected now.
    pub connections: u64,
    /// Counters since the port started.
    pub counters: PortCounters,
}

/// Traffic and connection counters.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PortCounters {
    /// Bytes read from the device.
    pub device_rx_bytes: u64,
    /// Bytes written to the device.
    pub device_tx_bytes: u64,
    /// Device bytes discarded because nobody was connected.
    pub device_rx_discarded: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused (Gate, max connections, device missing).
    pub connections_refused: u64,
    /// Sessions dropped because they stopped taking data.
    pub sessions_jammed: u64,
    /// Times the device went missing.
    pub device_lost: u64,
}

/// Every configured port with its live state (needs `serial.view`).
#[utoipa::path(get, path = "/ports", tag = "ports",
    responses((status = 200, body = Vec<PortStatus>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_ports(
    State(state): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Vec<PortStatus>>, ApiError> {
    caller.require(Permission::SerialView)?;
    let config = state.service.config();
    let running = state.ports.borrow().clone();
    let ports = config
        .ports
        .iter()
        .map(|p| {
            let handle = running.iter().find(|h| h.number() == p.number);
            let (state, error) = match handle.map(|h| h.state()) {
                None => ("off", None),
                Some(PortState::Starting) => ("starting", None),
                Some(PortState::Open) => ("open", None),
                Some(PortState::DeviceMissing { error }) => ("device-missing", Some(error)),
                Some(PortState::Stopped) => ("stopped", None),
            };
            let c = handle.map(|h| h.counters().snapshot()).unwrap_or_default();
            PortStatus {
                number: p.number,
                alias: p.alias.clone(),
                device: p.device.to_string(),
                mode: p.mode.name().to_owned(),
                state: state.to_owned(),
                error,
                connections: c.connections_active,
                counters: PortCounters {
                    device_rx_bytes: c.device_rx_bytes,
                    device_tx_bytes: c.device_tx_bytes,
                    device_rx_discarded: c.device_rx_discarded,
                    connections_total: c.connections_total,
                    connections_refused: c.connections_refused,
                    sessions_jammed: c.sessions_jammed,
                    device_lost: c.device_lost,
                },
            }
        })
        .collect();
    Ok(Json(ports))
}
