//! TLS on the serial data channels: the NPort's "Secure Connection" (seed
//! §3.2), per port `off`, `encrypted` or `authenticated` (mutual TLS).
//!
//! The engine does not own certificates. Whoever does (the daemon: the
//! device certificate and the trusted CAs of the management plane; `ttyward
//! bridge`: files or a throwaway certificate) hands it a [`TlsSource`],
//! asked at every connection, so a renewed certificate or a newly uploaded
//! CA applies to the next connection without a restart. Versions are TLS
//! 1.2 and 1.3 only (rustls offers nothing older), with the aws-lc-rs
//! provider the HTTPS console uses.
//!
//! Not here: UDP (no TLS; the configuration refuses it), and the Real COM
//! command connection, which Moxa's driver keeps in clear (spec
//! `realcom-protocol.md` §10).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use ttyward_core::config::SecureConnection;

/// A TLS-wrapped data connection, either side.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// Why a port cannot do TLS right now (said to the log and the event).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsUnavailable(pub String);

/// Certificates for the data channels, asked at each connection.
pub trait TlsSource: Send + Sync + Debug + 'static {
    /// Server side. `mutual`: the client must present a certificate that
    /// chains to a trusted CA.
    fn server(&self, mutual: bool) -> Result<Arc<ServerConfig>, TlsUnavailable>;
    /// Client side (TCP Client, pair master). `mutual`: the server must
    /// present a certificate for the host name that chains to a trusted CA,
    /// and the device certificate is presented; otherwise the server is not
    /// checked (encryption only).
    fn client(&self, mutual: bool) -> Result<Arc<ClientConfig>, TlsUnavailable>;
}

/// The crypto provider of every TLS endpoint of ttyward: aws-lc-rs with
/// the key exchanges browsers and OpenSSL offer.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{self, kx_group};
    let mut p = aws_lc_rs::default_provider();
    p.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    p
}

/// A server configuration: TLS 1.2/1.3 with `certs`, and with `clients`
/// every client must present a certificate that chains to one of them.
pub fn server_config(
    certs: Arc<dyn ResolvesServerCert>,
    clients: Option<RootCertStore>,
) -> Result<ServerConfig, TlsUnavailable> {
    let provider = Arc::new(provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsUnavailable(e.to_string()))?;
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(roots) if roots.is_empty() => {
            return Err(TlsUnavailable(
                "no trusted CA certificate is uploaded, so no client can be authenticated (Security > Certificate)".into(),
            ));
        }
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsUnavailable(format!("client verification: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_cert_resolver(certs))
}

/// A client configuration: with `servers`, the server's certificate must
/// chain to one of them and name the host; without, it is not checked.
/// `certs` is the client certificate presented (mutual TLS).
pub fn client_config(
    servers: Option<RootCertStore>,
    certs: Option<Arc<dyn ResolvesClientCert>>,
) -> Result<ClientConfig, TlsUnavailable> {
    let provider = Arc::new(provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsUnavailable(e.to_string()))?;
    let builder = match servers {
        Some(roots) if roots.is_empty() => {
            return Err(TlsUnavailable(
                "no trusted CA certificate is uploaded, so the server cannot be authenticated (Security > Certificate)".into(),
            ));
        }
        Some(roots) => builder.with_root_certificates(roots),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider))),
    };
    Ok(match certs {
        Some(c) => builder.with_client_cert_resolver(c),
        None => builder.with_no_client_auth(),
    })
}

/// "Encrypted connection" as a client (and `attach --insecure`): any server
/// certificate is taken (like Moxa's driver and the NPort's own client
/// modes), but the handshake signatures are still checked, so the session
/// key is the server's.
#[derive(Debug)]
pub struct AnyServerCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a client's handshake failed, in words an operator can act on:
/// rustls names what an old client lacks (a TLS 1.0/1.1 ClientHello has
/// no signature algorithms), not that its TLS version is too old.
fn handshake_failure(e: &std::io::Error) -> String {
    let incompatible = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::PeerIncompatible(_)));
    if incompatible {
        format!(
            "TLS handshake failed: the client does not offer TLS 1.2 or 1.3 with a cipher suite we accept (older versions are refused): {e}"
        )
    } else {
        format!("TLS handshake failed: {e}")
    }
}

/// Certificates fixed at start: `ttyward bridge --tls`.
#[derive(Debug)]
pub struct StaticTls {
    server: Arc<ServerConfig>,
    server_mutual: Result<Arc<ServerConfig>, TlsUnavailable>,
    client: Arc<ClientConfig>,
    client_mutual: Result<Arc<ClientConfig>, TlsUnavailable>,
}

impl StaticTls {
    /// From a certified key and, for mutual TLS, the trusted CAs.
    pub fn new(
        key: Arc<rustls::sign::CertifiedKey>,
        roots: Option<RootCertStore>,
    ) -> Result<StaticTls, TlsUnavailable> {
        let server_certs: Arc<dyn ResolvesServerCert> = Arc::new(FixedServerCert(key.clone()));
        let client_certs: Arc<dyn ResolvesClientCert> = Arc::new(FixedClientCert(key));
        let none = || TlsUnavailable("no trusted CA given (--tls-ca FILE)".into());
        Ok(StaticTls {
            server: Arc::new(server_config(server_certs.clone(), None)?),
            server_mutual: roots
                .clone()
                .ok_or_else(none)
                .and_then(|r| server_config(server_certs, Some(r)).map(Arc::new)),
            client: Arc::new(client_config(None, None)?),
            client_mutual: roots
                .ok_or_else(none)
                .and_then(|r| client_config(Some(r), Some(client_certs)).map(Arc::new)),
        })
    }
}

/// One certificate for every client.
#[derive(Debug)]
pub struct FixedServerCert(pub Arc<rustls::sign::CertifiedKey>);

impl ResolvesServerCert for FixedServerCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The device certificate as a client certificate (mutual TLS).
#[derive(Debug)]
pub struct FixedClientCert(pub Arc<rustls::sign::CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl TlsSource for StaticTls {
    fn server(&self, mutual: bool) -> Result<Arc<ServerConfig>, TlsUnavailable> {
        match mutual {
            false => Ok(self.server.clone()),
            true => self.server_mutual.clone(),
        }
    }

    fn client(&self, mutual: bool) -> Result<Arc<ClientConfig>, TlsUnavailable> {
        match mutual {
            false => Ok(self.client.clone()),
            true => self.client_mutual.clone(),
        }
    }
}

/// What a port's front-ends need to secure their connections.
#[derive(Clone, Debug)]
pub(crate) struct PortTls {
    pub mode: SecureConnection,
    pub source: Option<Arc<dyn TlsSource>>,
    pub handshake_timeout: Duration,
}

impl PortTls {
    /// Whether connections of this port use TLS.
    pub(crate) fn on(&self) -> bool {
        self.mode != SecureConnection::Off
    }

    fn source(&self) -> Result<&Arc<dyn TlsSource>, String> {
        self.source
            .as_ref()
            .ok_or_else(|| "this ttyward has no certificate for TLS".to_owned())
    }

    /// Accept TLS on an accepted connection; the error says why, for the
    /// log ("TLS handshake failed: peer sent no certificates").
    pub(crate) async fn accept(&self, stream: TcpStream) -> Result<TlsStream, String> {
        let mutual = self.mode == SecureConnection::Authenticated;
        let config = self.source()?.server(mutual).map_err(|e| e.to_string())?;
        let handshake = TlsAcceptor::from(config).accept(stream);
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(s)) => Ok(tokio_rustls::TlsStream::Server(s)),
            Ok(Err(e)) => Err(handshake_failure(&e)),
            Err(_) => Err(format!(
                "TLS handshake did not finish within {:?}",
                self.handshake_timeout
            )),
        }
    }

    /// Start TLS on a connection we opened to `host`.
    pub(crate) async fn connect(&self, stream: TcpStream, host: &str) -> Result<TlsStream, String> {
        let mutual = self.mode == SecureConnection::Authenticated;
        let config = self.source()?.client(mutual).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host:?} cannot be checked against a certificate: {e}"))?;
        let handshake = TlsConnector::from(config).connect(name, stream);
        match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(Ok(s)) => Ok(tokio_rustls::TlsStream::Client(s)),
            Ok(Err(e)) => Err(format!("TLS handshake with {host} failed: {e}")),
            Err(_) => Err(format!(
                "TLS handshake with {host} did not finish within {:?}",
                self.handshake_timeout
            )),
        }
    }
}
