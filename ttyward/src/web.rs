//! The daemon's HTTPS listener (web console and REST API): the device
//! certificate (made at first start, kept in `DIR/certs`, renewed while
//! the server runs when it is self-signed and the host's addresses change
//! or its end nears), the trusted CA certificates (`DIR/ca`), the TLS
//! configuration and the server, restarted when `services.web` changes.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use ttyward_core::service::Service;
use ttyward_core::services::WebService;
use ttyward_engine::gate::Gate;
use ttyward_web::ca::CaStore;
use ttyward_web::tls::{DeviceTls, HostIdentity, RENEWAL_PERIOD, keep_renewed};
use ttyward_web::{WebError, WebServer};

/// Where the device certificate and key live inside the data directory.
pub const CERT_DIR: &str = "certs";
/// Where the trusted CA certificates live inside the data directory.
pub const CA_DIR: &str = "ca";

/// The device certificate and the trusted CAs, kept for the life of the
/// daemon: the HTTPS console and the serial ports' Secure Connection both
/// use them, whether or not the console runs.
#[derive(Debug)]
pub struct Certificates {
    /// The device certificate (self-signed, or imported).
    pub device: Arc<DeviceTls>,
    /// Trusted CA certificates (mutual TLS, syslog over TLS).
    pub authorities: Arc<CaStore>,
    /// The periodic renewal check of a self-signed certificate.
    renewal: (CancellationToken, JoinHandle<()>),
}

impl Certificates {
    /// Load (or make, at first start) the certificate, load the CAs, and
    /// start checking the certificate every minute.
    pub fn open(service: &Service) -> Result<Certificates, WebError> {
        let (device, made) = DeviceTls::open_for(
            &service.dir().join(CERT_DIR),
            &HostIdentity::current(),
            ttyward_core::store::now_s(),
        )?;
        made.report(service);
        let authorities = CaStore::open(&service.dir().join(CA_DIR))?;
        let cancel = CancellationToken::new();
        let reporter = service.clone();
        let renewal = tokio::spawn(keep_renewed(
            Arc::clone(&device),
            RENEWAL_PERIOD,
            HostIdentity::current,
            move |r| r.report(&reporter),
            cancel.clone(),
        ));
        Ok(Certificates {
            device,
            authorities,
            renewal: (cancel, renewal),
        })
    }

    /// The certificates as the engine's source for Secure Connection.
    pub fn data_tls(&self) -> Arc<dyn ttyward_engine::tls::TlsSource> {
        Arc::new(ttyward_web::data_tls::DeviceDataTls::new(
            Arc::clone(&self.device),
            Arc::clone(&self.authorities),
        ))
    }

    /// Stop the renewal check.
    pub async fn stop(self) {
        let (cancel, renewal) = self.renewal;
        cancel.cancel();
        if let Err(e) = renewal.await {
            tracing::warn!("the certificate renewal task failed: {e}");
        }
    }
}

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
        certs: &Certificates,
    ) -> Result<Option<Web>, WebError> {
        if !settings.enabled {
            return Ok(None);
        }
        let listeners = ttyward_web::server::bind(settings)?;
        let tls = ttyward_web::tls::server_config(certs.device.slot())?;
        let app = ttyward_web::api::app(ttyward_web::api::AppState {
            service: service.clone(),
            started,
            tls: Arc::clone(&certs.device),
            authorities: Arc::clone(&certs.authorities),
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
