//! The TLS side of the HTTPS listener: rustls with the aws-lc-rs provider,
//! TLS 1.2 and 1.3 only, and the certificate behind a resolver that can be
//! swapped while the server runs (seed §3.3: a new or regenerated
//! certificate takes effect without a restart; established connections
//! keep the one they started with).
//!
//! The cipher suites are aws-lc-rs's rustls defaults, which are a subset of
//! Mozilla's "intermediate" profile: AES-GCM and ChaCha20-Poly1305 with
//! ECDHE only (no CBC, no RSA key exchange, no DHE). The key exchange
//! groups are narrowed to Mozilla's list (X25519, P-256, P-384). TLS 1.0
//! and 1.1 are not implemented by rustls at all.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate the server presents; replace it with [`CertSlot::set`].
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertSlot {
    /// A slot presenting `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Arc<CertSlot> {
        Arc::new(CertSlot {
            current: RwLock::new(key),
        })
    }

    /// Present `key` to every handshake from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The crypto provider every TLS endpoint of ttyward uses.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{self, kx_group};
    let mut p = aws_lc_rs::default_provider();
    p.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    p
}

/// The server configuration of the HTTPS listener (HTTP/2 and HTTP/1.1 by
/// ALPN).
pub fn server_config(certs: Arc<CertSlot>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The device certificate as the running server uses it: kept in a
/// directory (`DIR/certs`), presented through a [`CertSlot`], replaced
/// live.
#[derive(Debug)]
pub struct DeviceTls {
    dir: std::path::PathBuf,
    slot: Arc<CertSlot>,
    current: std::sync::Mutex<crate::cert::DeviceCert>,
}

impl DeviceTls {
    /// Load the stored certificate, or make a self-signed one for this
    /// host's names and addresses and store it (seed §3.3: generated at
    /// first start).
    pub fn open(dir: &std::path::Path) -> Result<Arc<DeviceTls>, crate::cert::CertError> {
        use crate::cert::{DeviceCert, host_identity};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let renew_from = crate::cert::RENEW_BEFORE_DAYS * 86_400;
        let (names, addresses) = host_identity();
        let mut wanted: Vec<String> = names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .chain(addresses.iter().map(|a| format!("IP:{a}")))
            .collect();
        wanted.sort();
        let names_changed = |c: &DeviceCert| {
            let mut have = c.info().subject_alt_names;
            have.sort();
            have != wanted
        };
        let cert = match DeviceCert::load(dir)? {
            // An imported certificate is the user's to replace; a
            // self-signed one near its end, or naming addresses the host no
            // longer has (or missing new ones), is made again here (seed
            // §3.3: the certificate follows the host's addresses).
            Some(cert)
                if !(cert.info().self_signed
                    && (cert.info().not_after_unix - now < renew_from || names_changed(&cert))) =>
            {
                cert
            }
            _ => {
                let cert = DeviceCert::self_signed(&names, &addresses)?;
                cert.save(dir)?;
                tracing::info!("made a self-signed certificate in {}", dir.display());
                cert
            }
        };
        let slot = CertSlot::new(cert.certified_key()?);
        Ok(Arc::new(DeviceTls {
            dir: dir.to_owned(),
            slot,
            current: std::sync::Mutex::new(cert),
        }))
    }

    /// The slot a TLS server configuration resolves through.
    pub fn slot(&self) -> Arc<CertSlot> {
        Arc::clone(&self.slot)
    }

    /// The certificate presented now.
    pub fn current(&self) -> crate::cert::DeviceCert {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Store `cert` and present it from the next handshake on.
    pub fn replace(&self, cert: crate::cert::DeviceCert) -> Result<(), crate::cert::CertError> {
        let key = cert.certified_key()?;
        cert.save(&self.dir)?;
        self.slot.set(key);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = cert;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{DeviceCert, host_identity};

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ttyward-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keeps_its_certificate_while_the_host_stays_the_same() {
        let dir = tempdir("same");
        let first = DeviceTls::open(&dir).expect("open").current().info();
        let again = DeviceTls::open(&dir).expect("open").current().info();
        assert_eq!(first.sha256_fingerprint, again.sha256_fingerprint);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renews_a_self_signed_certificate_naming_other_addresses() {
        let dir = tempdir("moved");
        let old =
            DeviceCert::self_signed(&["elsewhere".into()], &["192.0.2.77".parse().expect("ip")])
                .expect("cert");
        old.save(&dir).expect("save");
        let now = DeviceTls::open(&dir).expect("open").current().info();
        assert_ne!(now.sha256_fingerprint, old.info().sha256_fingerprint);
        let (names, addresses) = host_identity();
        for n in names {
            assert!(now.subject_alt_names.contains(&format!("DNS:{n}")), "{n}");
        }
        for a in addresses {
            assert!(now.subject_alt_names.contains(&format!("IP:{a}")), "{a}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeps_an_imported_certificate_whatever_it_names() {
        let dir = tempdir("imported");
        // Not self-signed: issued by a CA for other names.
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf =
            rcgen::CertificateParams::new(vec!["device.example".to_owned()]).expect("params");
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "device.example");
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        let _ = ca_cert;
        let imported = DeviceCert::from_pem(
            leaf_cert.pem().as_bytes(),
            leaf_key.serialize_pem().as_bytes(),
        )
        .expect("import");
        imported.save(&dir).expect("save");
        let now = DeviceTls::open(&dir).expect("open").current().info();
        assert_eq!(now.sha256_fingerprint, imported.info().sha256_fingerprint);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
