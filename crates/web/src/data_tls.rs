//! The daemon's certificates for the serial data channels (Serial Port
//! Settings > Secure Connection, seed §3.2): the same device certificate
//! as the HTTPS console, and the trusted CA certificates of Security >
//! Certificate for mutual TLS. Both are read at every connection, so a
//! renewed or imported certificate and an uploaded or removed CA apply to
//! the next connection.
//!
//! Not here: the TLS handshake and which ports use it (the engine's `tls`
//! module), certificate storage (`cert`, `ca`).

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use ttyward_engine::tls::{TlsSource, TlsUnavailable, client_config, server_config};

use crate::ca::CaStore;
use crate::tls::{CertSlot, DeviceTls};

/// The device certificate and trusted CAs as the engine's [`TlsSource`].
#[derive(Debug)]
pub struct DeviceDataTls {
    device: Arc<DeviceTls>,
    authorities: Arc<CaStore>,
}

impl DeviceDataTls {
    /// Serve with `device`'s certificate, authenticate against `authorities`.
    pub fn new(device: Arc<DeviceTls>, authorities: Arc<CaStore>) -> DeviceDataTls {
        DeviceDataTls {
            device,
            authorities,
        }
    }
}

impl TlsSource for DeviceDataTls {
    fn server(&self, mutual: bool) -> Result<Arc<ServerConfig>, TlsUnavailable> {
        let clients = mutual.then(|| self.authorities.roots());
        server_config(self.device.slot(), clients).map(Arc::new)
    }

    fn client(&self, mutual: bool) -> Result<Arc<ClientConfig>, TlsUnavailable> {
        if !mutual {
            return client_config(None, None).map(Arc::new);
        }
        let certs: Arc<dyn ResolvesClientCert> = Arc::new(SlotClientCert(self.device.slot()));
        client_config(Some(self.authorities.roots()), Some(certs)).map(Arc::new)
    }
}

/// The device certificate, as it is now, presented as a client certificate.
#[derive(Debug)]
struct SlotClientCert(Arc<CertSlot>);

impl ResolvesClientCert for SlotClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
