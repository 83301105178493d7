//! The daemon's HTTPS listener (web console and REST API): the device
//! certificate (made at first start, kept in `DIR/certs`), the TLS
//! configuration and the server, restarted when `services.web` changes.

use std::time::Instant;

use ttyward_core::service::Service;
use ttyward_core::services::WebService;
use ttyward_engine::gate::Gate;
use ttyward_web::tls::DeviceTls;
use ttyward_web::{WebError, WebServer};

/// Where the device certificate and key live inside the data directory.
pub const CERT_DIR: &str = "certs";

/// The running web server and what it was started with.
#[derive(Debug)]
pub struct Web {
    server: WebServer,
    /// The settings it runs with (a change restarts it).
    pub settings: WebService,
}

impl Web {
    /// Start serving `settings` (nothing when the service is off).
    pub fn start(
        service: &Service,
        gate: &Gate,
        settings: &WebService,
        started: Instant,
        ports: ttyward_web::api::PortsView,
    ) -> Result<Option<Web>, WebError> {
        if !settings.enabled {
            return Ok(None);
        }
        let listeners = ttyward_web::server::bind(settings)?;
        let device = DeviceTls::open(&service.dir().join(CERT_DIR))?;
        let tls = ttyward_web::tls::server_config(device.slot())?;
        let app = ttyward_web::api::app(ttyward_web::api::AppState {
            service: service.clone(),
            started,
            tls: device,
            ports,
        });
        let server = WebServer::start(listeners, app, tls, gate.clone(), service.clone());
        Ok(Some(Web {
            server,
            settings: settings.clone(),
        }))
    }

    /// The addresses bound, as strings for the ready line.
    pub fn addrs(&self) -> Vec<String> {
        self.server
            .addrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Stop serving.
    pub async fn stop(self) {
        if !self.server.stop().await {
            tracing::warn!("web console: some connections did not finish in time");
        }
    }
}
