//! TLS for `ttyward attach --tls`: rustls with the aws-lc-rs provider that
//! every TLS endpoint of ttyward uses, TLS 1.2 and 1.3, the server's
//! certificate checked against `--ca` (or not at all with `--insecure`), an
//! optional client certificate (`--cert`, `--key`).
//!
//! A server certificate the CA does not vouch for ends `attach` with an
//! error instead of a retry: connecting again cannot change the answer.
//! Everything else that goes wrong in a handshake is retried like a refused
//! connection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use ttyward_engine::tls::AnyServerCertificate;

use super::{Args, ConnectError, Target};
use crate::serve::Failure;

/// A ready client configuration and the name the server must have.
pub(super) struct Client {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// Where the trust came from, for the error message.
    trust: String,
}

impl Client {
    /// `None` without `--tls`.
    pub(super) fn from_args(args: &Args, host: &str) -> Result<Option<Client>, Failure> {
        if !args.tls {
            return Ok(None);
        }
        let provider = Arc::new(ttyward_web::tls::provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Failure::Runtime(e.into()))?;
        let (builder, trust) = match (&args.ca, args.insecure) {
            (Some(ca), _) => (
                builder.with_root_certificates(roots(ca)?),
                format!("the CA in {}", ca.display()),
            ),
            (None, true) => (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider))),
                "nothing (--insecure)".to_owned(),
            ),
            (None, false) => {
                return Err(Failure::Config(
                    "--tls needs --ca FILE (the CA certificate that signed the server's) or --insecure (no check of the server's certificate)".into(),
                ));
            }
        };
        let config = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(chain(cert)?, private_key(key)?)
                .map_err(|e| {
                    Failure::Config(format!(
                        "--cert {} and --key {} do not make a usable client certificate: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?,
            _ => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Failure::Config(format!(
                "{host:?} is neither a DNS name nor an IP address TLS can check a certificate for"
            ))
        })?;
        Ok(Some(Client {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            trust,
        }))
    }

    /// The TLS handshake on a connected socket.
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
        target: &Target,
    ) -> Result<TlsStream<TcpStream>, ConnectError> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| {
                let rustls_error = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                match rustls_error {
                    Some(rustls::Error::InvalidCertificate(why)) => ConnectError::Fatal(format!(
                        "TLS to {target}: the server's certificate is not trusted by {} ({why:?}); give the CA that signed it with --ca",
                        self.trust
                    )),
                    _ => ConnectError::Retry(format!("TLS handshake with {target} failed: {e}")),
                }
            })
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::Config(format!("cannot read the {what} {}: {e}", path.display())))
}

/// The trust anchors in a PEM file (`attach --ca`, `bridge --tls-ca`).
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, Failure> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "--ca certificate")? {
        roots.add(cert).map_err(|e| {
            Failure::Config(format!(
                "{} holds a certificate that cannot be a trust anchor: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

fn chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    certificates(path, "--cert certificate")
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let pem = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Config(format!("{}: not valid PEM ({e})", path.display())))?;
    if certs.is_empty() {
        return Err(Failure::Config(format!(
            "{} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); give the {what} in PEM",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Failure> {
    let pem = read(path, "--key private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Failure::Config(format!(
            "{} holds no usable PEM private key ({e}); give an unencrypted PKCS#8, PKCS#1 or SEC1 key",
            path.display()
        ))
    })
}
