//! Trusted CA certificates (seed §3.3 "Certificates"): the certificate
//! authorities an Administrator uploads so that the device can verify the
//! peers it talks to — a remote syslog server over TLS, clients presenting
//! certificates on serial connections (mutual TLS). [`CaStore::roots`]
//! gives them as the `rustls::RootCertStore` those users build their TLS
//! configurations from.
//!
//! An upload is one certificate in PEM (a bundle is refused, so that every
//! trusted CA is added, logged and removed on its own) of at most
//! [`MAX_PEM_BYTES`], and must be a CA: basicConstraints CA:TRUE, and
//! keyCertSign when it has a key usage extension. It must be valid now,
//! and its key must be one the device certificate's import accepts too
//! (RSA 2048–8192, ECDSA P-256/P-384/P-521, Ed25519; RSA-1024 is refused,
//! see `docs/security.md`). At most [`MAX_AUTHORITIES`] are kept; the same
//! certificate twice is refused.
//!
//! What this module does not do: it does not verify the CA's own
//! signature or build a path to a root (a trust anchor is trusted because
//! an Administrator put it here; RFC 5280 §6.1.1 (d)), it does not check
//! revocation, and it never holds a private key. Stored certificates are
//! not checked against the clock when loaded (a device without a real-time
//! clock may boot in 1970); the list shows their dates.
//!
//! The files are `DIR/<fingerprint>.pem` (the SHA-256 of the DER, 64
//! lower-case hex digits), 0600 in a 0700 directory, each written to a
//! temporary file, synced and renamed into place. One `CaStore` is the
//! only writer of its directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use crate::cert::{
    CertError, KeyAlgorithm, ensure_private_dir, exists, hex_upper, pem_block, remove_if_exists,
    rename, rfc3339, serial_hex, sync_dir, write_private_file,
};

/// Most trusted CA certificates kept: plenty for a syslog server's and a
/// few client CAs, and a bound on what every TLS client configuration
/// built from them carries.
pub const MAX_AUTHORITIES: usize = 32;
/// Largest upload accepted: a CA certificate with an RSA-8192 key is about
/// 4 KiB of PEM; the rest leaves room for the text `openssl x509 -text`
/// puts before it.
pub const MAX_PEM_BYTES: usize = 64 * 1024;
/// The suffix of a stored certificate.
const SUFFIX: &str = ".pem";
/// The suffix of a certificate being written.
const TEMP_SUFFIX: &str = ".pem.new";

/// Why a CA certificate could not be added, removed, stored or loaded.
/// Every message is one sentence: what was wrong, then what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The upload is larger than [`MAX_PEM_BYTES`].
    #[error(
        "the CA certificate text is {bytes} bytes, more than the {max} accepted; upload the CA certificate alone in PEM form"
    )]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// No `CERTIFICATE` PEM block.
    #[error(
        "the text contains no PEM certificate (-----BEGIN CERTIFICATE-----); upload the CA certificate in PEM form"
    )]
    NoCertificate,
    /// A `CERTIFICATE` PEM block could not be decoded.
    #[error(
        "the certificate PEM text is damaged ({reason}); export the CA certificate again in PEM form"
    )]
    Pem {
        /// What the PEM decoder reported.
        reason: String,
    },
    /// More than one certificate in the upload.
    #[error(
        "the text contains {count} certificates; upload one CA certificate at a time (each root or intermediate CA on its own)"
    )]
    SeveralCertificates {
        /// How many.
        count: usize,
    },
    /// Not a parsable X.509 certificate.
    #[error(
        "the certificate is not a valid X.509 certificate ({reason}); export it again from the certificate authority in PEM form"
    )]
    BadCertificate {
        /// What the X.509 parser reported.
        reason: String,
    },
    /// basicConstraints is absent or says CA:FALSE.
    #[error(
        "the certificate is not a CA certificate (its basic constraints do not say CA:TRUE); upload the certificate of the authority that issues the certificates, not one it issued"
    )]
    NotCa,
    /// The key usage extension is present without keyCertSign.
    #[error(
        "the CA certificate's key usage does not include keyCertSign, so it may not sign certificates; upload the certificate of the authority that issues them"
    )]
    NoKeyCertSign,
    /// The key type or size is refused.
    #[error(transparent)]
    Key(CertError),
    /// The validity starts in the future.
    #[error(
        "the CA certificate is not valid before {not_before} and it is now {now}; check the device's clock, or upload it after that date"
    )]
    NotYetValid {
        /// Its notBefore, RFC 3339.
        not_before: String,
        /// The device's time, RFC 3339.
        now: String,
    },
    /// The validity has ended.
    #[error(
        "the CA certificate expired on {not_after} and it is now {now}; upload the authority's current certificate"
    )]
    Expired {
        /// Its notAfter, RFC 3339.
        not_after: String,
        /// The device's time, RFC 3339.
        now: String,
    },
    /// The TLS library cannot use it as a trust anchor.
    #[error(
        "the TLS library cannot use the certificate as a trust anchor ({reason}); upload the CA certificate as the authority publishes it"
    )]
    NotATrustAnchor {
        /// What the TLS library reported.
        reason: String,
    },
    /// The certificate is already trusted.
    #[error(
        "the CA certificate {subject} (SHA-256 {fingerprint}) is already trusted; there is nothing to add"
    )]
    Duplicate {
        /// Its subject.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// [`MAX_AUTHORITIES`] are stored already.
    #[error(
        "{max} CA certificates are trusted already, the most the device keeps; remove one that is no longer needed first"
    )]
    Full {
        /// The limit.
        max: usize,
    },
    /// The text given is not a SHA-256 fingerprint.
    #[error(
        "{given:?} is not a SHA-256 fingerprint; give its 64 hexadecimal digits, with or without colons, as the list shows them"
    )]
    BadFingerprint {
        /// What was given (cut to 100 characters).
        given: String,
    },
    /// No trusted CA has that fingerprint.
    #[error(
        "no trusted CA certificate has the SHA-256 fingerprint {fingerprint}; the list of trusted CA certificates shows the fingerprints"
    )]
    NotFound {
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// Reading or writing the directory failed.
    #[error(transparent)]
    Storage(CertError),
}

/// Facts about a trusted CA certificate for the web console and the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CaInfo {
    /// Subject distinguished name, e.g. `CN=Example Root CA, O=Example`.
    pub subject: String,
    /// Issuer distinguished name (the subject again for a root CA).
    pub issuer: String,
    /// Serial number, upper-case hex without separators.
    pub serial: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// Key type and size: "ECDSA P-256", "RSA 4096", "Ed25519" ...
    pub key_algorithm: String,
    /// SHA-256 of the certificate's DER, upper-case hex bytes separated by
    /// colons, as browsers show it; it names the certificate in
    /// `DELETE /api/v1/certificate/authorities/{fingerprint}`.
    pub sha256_fingerprint: String,
}

/// A checked CA certificate.
#[derive(Clone, Debug)]
struct Authority {
    der: CertificateDer<'static>,
    info: CaInfo,
    /// The SHA-256 of the DER, 64 lower-case hex digits: the file name.
    id: String,
}

/// Check one uploaded CA certificate (PEM) as [`CaStore::add_pem`] does,
/// with `now` for its validity period, and return its facts. Nothing is
/// stored.
pub fn check_pem(pem: &[u8], now: OffsetDateTime) -> Result<CaInfo, CaError> {
    check(pem, Some(now)).map(|a| a.info)
}

/// Every check of an upload, in the order that gives the most useful
/// message first; `now: None` skips the dates (loading what is stored).
fn check(pem: &[u8], now: Option<OffsetDateTime>) -> Result<Authority, CaError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(CaError::TooLarge {
            bytes: pem.len(),
            max: MAX_PEM_BYTES,
        });
    }
    let mut certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Pem {
            reason: e.to_string(),
        })?;
    if certs.len() > 1 {
        return Err(CaError::SeveralCertificates { count: certs.len() });
    }
    let der = certs.pop().ok_or(CaError::NoCertificate)?;
    let bad = |e: &dyn std::fmt::Display| CaError::BadCertificate {
        reason: e.to_string(),
    };
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| bad(&e))?;

    match cert.basic_constraints().map_err(|e| bad(&e))? {
        Some(bc) if bc.value.ca => {}
        _ => return Err(CaError::NotCa),
    }
    if let Some(ku) = cert.key_usage().map_err(|e| bad(&e))?
        && !ku.value.key_cert_sign()
    {
        return Err(CaError::NoKeyCertSign);
    }
    let algorithm = KeyAlgorithm::of(cert.public_key()).map_err(|e| match e {
        // The shared classifier speaks of "certificate 1 of the chain".
        CertError::BadCertificate { reason, .. } => CaError::BadCertificate { reason },
        other => CaError::Key(other),
    })?;

    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    if let Some(now) = now {
        if now < not_before {
            return Err(CaError::NotYetValid {
                not_before: rfc3339(not_before),
                now: rfc3339(now),
            });
        }
        if now > not_after {
            return Err(CaError::Expired {
                not_after: rfc3339(not_after),
                now: rfc3339(now),
            });
        }
    }
    // What the later users do with it: refused here rather than when a
    // syslog connection is first made.
    RootCertStore::empty()
        .add(der.clone())
        .map_err(|e| CaError::NotATrustAnchor {
            reason: e.to_string(),
        })?;

    let digest = Sha256::digest(der.as_ref());
    let info = CaInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: serial_hex(&cert),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        not_after_unix: not_after.unix_timestamp(),
        key_algorithm: algorithm.to_string(),
        sha256_fingerprint: hex_upper(&digest, ":"),
    };
    let id = hex_upper(&digest, "").to_ascii_lowercase();
    drop(cert);
    Ok(Authority { der, info, id })
}

/// `AB:CD:…` or `abcd…` (64 hex digits, every pair optionally preceded by
/// a colon) → 64 lower-case hex digits.
fn parse_fingerprint(given: &str) -> Result<String, CaError> {
    let refuse = || CaError::BadFingerprint {
        given: given.chars().take(100).collect(),
    };
    let mut out = String::with_capacity(64);
    let mut rest = given.as_bytes();
    while !rest.is_empty() {
        if !out.is_empty()
            && let Some(after) = rest.strip_prefix(b":")
        {
            rest = after;
        }
        match rest {
            [a, b, tail @ ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                out.push(char::from(a.to_ascii_lowercase()));
                out.push(char::from(b.to_ascii_lowercase()));
                rest = tail;
            }
            _ => return Err(refuse()),
        }
    }
    if out.len() == 64 {
        Ok(out)
    } else {
        Err(refuse())
    }
}

/// The trusted CA certificates: kept in a directory, listed, added,
/// removed, and given to TLS clients as a root store.
#[derive(Debug)]
pub struct CaStore {
    dir: PathBuf,
    /// Held while the directory changes, so that the limit and the
    /// duplicate check see every earlier change; never across `.await`.
    authorities: Mutex<Vec<Authority>>,
}

impl CaStore {
    /// Load the certificates stored in `dir` (none if it does not exist).
    /// A file that cannot be used is reported in the daemon's log and
    /// left out rather than stopping the console that could replace it; a
    /// write a crash interrupted is discarded.
    pub fn open(dir: &Path) -> Result<Arc<CaStore>, CertError> {
        let list_error = |source| CertError::Io {
            action: "list",
            path: dir.to_owned(),
            source,
        };
        let mut authorities = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(list_error(e)),
        };
        for entry in entries.into_iter().flatten() {
            let path = entry.map_err(list_error)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                tracing::warn!("{} is not a trusted CA file; ignored", path.display());
                continue;
            };
            if name.ends_with(TEMP_SUFFIX) {
                tracing::warn!("discarding {}: its write was interrupted", path.display());
                remove_if_exists(&path)?;
                continue;
            }
            let Some(id) = name.strip_suffix(SUFFIX) else {
                tracing::warn!("{} is not a trusted CA file; ignored", path.display());
                continue;
            };
            let loaded = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|pem| check(&pem, None).map_err(|e| e.to_string()));
            match loaded {
                Ok(authority) if authority.id == id => authorities.push(authority),
                Ok(_) => tracing::warn!(
                    "{} does not hold the certificate its name says; ignored (remove it, and upload the CA certificate again)",
                    path.display()
                ),
                Err(e) => tracing::warn!(
                    "the trusted CA certificate {} cannot be used and is ignored: {e}",
                    path.display()
                ),
            }
        }
        authorities.sort_by(|a, b| (&a.info.subject, &a.id).cmp(&(&b.info.subject, &b.id)));
        Ok(Arc::new(CaStore {
            dir: dir.to_owned(),
            authorities: Mutex::new(authorities),
        }))
    }

    /// The directory the certificates are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every trusted CA certificate, by subject.
    pub fn list(&self) -> Vec<CaInfo> {
        self.lock().iter().map(|a| a.info.clone()).collect()
    }

    /// The trusted CA certificates as trust anchors for a rustls client
    /// (a syslog server's certificate) or client-certificate verifier.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        for authority in self.lock().iter() {
            // Each was accepted by the same call when it was checked.
            if let Err(e) = roots.add(authority.der.clone()) {
                tracing::warn!(
                    "trusted CA certificate {} left out of the root store: {e}",
                    authority.info.subject
                );
            }
        }
        roots
    }

    /// Check an uploaded CA certificate (PEM, one certificate), store it
    /// and trust it from now on.
    pub fn add_pem(&self, pem: &[u8]) -> Result<CaInfo, CaError> {
        self.add_checked(pem, OffsetDateTime::now_utc())
    }

    fn add_checked(&self, pem: &[u8], now: OffsetDateTime) -> Result<CaInfo, CaError> {
        let authority = check(pem, Some(now))?;
        let mut authorities = self.lock();
        if authorities.iter().any(|a| a.id == authority.id) {
            return Err(CaError::Duplicate {
                subject: authority.info.subject,
                fingerprint: authority.info.sha256_fingerprint,
            });
        }
        if authorities.len() >= MAX_AUTHORITIES {
            return Err(CaError::Full {
                max: MAX_AUTHORITIES,
            });
        }
        ensure_private_dir(&self.dir).map_err(CaError::Storage)?;
        let temp = self.dir.join(format!("{}{TEMP_SUFFIX}", authority.id));
        write_private_file(
            &temp,
            pem_block("CERTIFICATE", authority.der.as_ref()).as_bytes(),
        )
        .map_err(CaError::Storage)?;
        rename(&temp, &self.path_of(&authority.id)).map_err(CaError::Storage)?;
        sync_dir(&self.dir).map_err(CaError::Storage)?;
        let info = authority.info.clone();
        let at = authorities
            .binary_search_by(|a| (&a.info.subject, &a.id).cmp(&(&info.subject, &authority.id)))
            .unwrap_or_else(|i| i);
        authorities.insert(at, authority);
        Ok(info)
    }

    /// Stop trusting the CA certificate with this SHA-256 fingerprint (as
    /// listed, with or without colons, any case) and delete its file.
    pub fn remove(&self, fingerprint: &str) -> Result<CaInfo, CaError> {
        let id = parse_fingerprint(fingerprint)?;
        let mut authorities = self.lock();
        let Some(at) = authorities.iter().position(|a| a.id == id) else {
            return Err(CaError::NotFound {
                fingerprint: fingerprint.to_owned(),
            });
        };
        remove_if_exists(&self.path_of(&id)).map_err(CaError::Storage)?;
        sync_dir(&self.dir).map_err(CaError::Storage)?;
        Ok(authorities.remove(at).info)
    }

    /// Forget every trusted CA certificate and delete the directory with
    /// whatever it holds (factory reset); returns what was trusted.
    pub fn clear(&self) -> Result<Vec<CaInfo>, CaError> {
        let mut authorities = self.lock();
        if exists(&self.dir).map_err(CaError::Storage)? {
            fs::remove_dir_all(&self.dir).map_err(|source| {
                CaError::Storage(CertError::Io {
                    action: "remove",
                    path: self.dir.clone(),
                    source,
                })
            })?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent).map_err(CaError::Storage)?;
            }
        }
        Ok(authorities.drain(..).map(|a| a.info).collect())
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Authority>> {
        self.authorities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    use super::*;

    /// A directory that is removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "ttyward-ca-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create the test directory");
            TempDir(path)
        }

        /// Where the store keeps its files (created by the store).
        fn store(&self) -> PathBuf {
            self.0.join("ca")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    /// A root CA certificate valid from two days ago for 60 days.
    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(2);
        params.not_after = now + time::Duration::days(60);
        params
    }

    fn p256() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
    }

    fn self_signed(params: &CertificateParams, key: &KeyPair) -> String {
        params.self_signed(key).expect("self-sign").pem()
    }

    fn ca_pem(name: &str) -> String {
        self_signed(&ca_params(name), &p256())
    }

    /// An RSA CA certificate of `bits` made by the openssl command line
    /// (rcgen cannot generate RSA keys, and aws-lc-rs will not make
    /// 1024-bit ones).
    fn openssl_rsa_ca(bits: u32) -> String {
        let dir = TempDir::new("rsa");
        fs::write(
            dir.0.join("ca.cnf"),
            "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = v3_ca\n\
             [dn]\nCN = Weak Test CA\n\
             [v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n",
        )
        .expect("ca.cnf");
        let out = std::process::Command::new("openssl")
            .current_dir(&dir.0)
            .args([
                "req",
                "-x509",
                "-config",
                "ca.cnf",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                "ca.key",
                "-days",
                "30",
            ])
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("PEM")
    }

    #[test]
    fn accepts_a_ca_and_describes_it() {
        let pem = ca_pem("Test Root CA");
        let info = check_pem(pem.as_bytes(), OffsetDateTime::now_utc()).expect("accepted");
        assert_eq!(info.subject, "CN=Test Root CA");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(info.key_algorithm, "ECDSA P-256");
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
        assert_eq!(
            info.sha256_fingerprint,
            hex_upper(&Sha256::digest(der.as_ref()), ":")
        );
    }

    #[test]
    fn refuses_a_certificate_that_is_not_a_ca() {
        for is_ca in [IsCa::NoCa, IsCa::ExplicitNoCa] {
            let mut params = ca_params("leaf.example");
            params.is_ca = is_ca;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let pem = self_signed(&params, &p256());
            let err = check_pem(pem.as_bytes(), OffsetDateTime::now_utc()).expect_err("refused");
            assert!(matches!(err, CaError::NotCa), "{err:?}");
            assert!(err.to_string().contains("CA:TRUE"), "{err}");
        }
    }

    #[test]
    fn refuses_a_ca_whose_key_usage_lacks_key_cert_sign() {
        let mut params = ca_params("Signing-less CA");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let pem = self_signed(&params, &p256());
        let err = check_pem(pem.as_bytes(), OffsetDateTime::now_utc()).expect_err("refused");
        assert!(matches!(err, CaError::NoKeyCertSign), "{err:?}");

        // Without a key usage extension, CA:TRUE is enough (RFC 5280
        // §4.2.1.3 makes the extension optional).
        let mut params = ca_params("Usage-less CA");
        params.key_usages = Vec::new();
        let pem = self_signed(&params, &p256());
        check_pem(pem.as_bytes(), OffsetDateTime::now_utc()).expect("accepted");
    }

    #[test]
    fn refuses_an_expired_or_not_yet_valid_ca() {
        let mut params = ca_params("Old CA");
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        let pem = self_signed(&params, &p256());
        let err = check_pem(pem.as_bytes(), OffsetDateTime::now_utc()).expect_err("refused");
        assert!(
            matches!(&err, CaError::Expired { not_after, .. } if not_after == "2020-01-02T00:00:00Z"),
            "{err:?}"
        );

        let pem = ca_pem("Future CA");
        let err = check_pem(
            pem.as_bytes(),
            OffsetDateTime::now_utc() - time::Duration::days(3),
        )
        .expect_err("refused");
        assert!(matches!(err, CaError::NotYetValid { .. }), "{err:?}");
    }

    #[test]
    fn refuses_an_rsa_1024_ca_saying_why_and_accepts_rsa_2048() {
        let err = check_pem(openssl_rsa_ca(1024).as_bytes(), OffsetDateTime::now_utc())
            .expect_err("refused");
        assert!(
            matches!(err, CaError::Key(CertError::WeakRsaKey { bits: 1024 })),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("RSA-1024") && message.contains("factored"),
            "{message}"
        );
        let info = check_pem(openssl_rsa_ca(2048).as_bytes(), OffsetDateTime::now_utc())
            .expect("RSA 2048 accepted");
        assert_eq!(info.key_algorithm, "RSA 2048");
    }

    #[test]
    fn accepts_a_p384_ca() {
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key");
        let info = check_pem(
            self_signed(&ca_params("P-384 CA"), &p384).as_bytes(),
            OffsetDateTime::now_utc(),
        )
        .expect("P-384 accepted");
        assert_eq!(info.key_algorithm, "ECDSA P-384");
    }

    #[test]
    fn refuses_empty_text_several_certificates_and_oversized_uploads() {
        let now = OffsetDateTime::now_utc();
        let err = check_pem(b"", now).expect_err("empty");
        assert!(matches!(err, CaError::NoCertificate), "{err:?}");
        let key_only = p256().serialize_pem();
        let err = check_pem(key_only.as_bytes(), now).expect_err("a key");
        assert!(matches!(err, CaError::NoCertificate), "{err:?}");
        let err = check_pem(
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
            now,
        )
        .expect_err("bad base64");
        assert!(matches!(err, CaError::Pem { .. }), "{err:?}");
        let err = check_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            now,
        )
        .expect_err("not X.509");
        assert!(matches!(err, CaError::BadCertificate { .. }), "{err:?}");

        let bundle = format!("{}{}", ca_pem("A"), ca_pem("B"));
        let err = check_pem(bundle.as_bytes(), now).expect_err("bundle");
        assert!(
            matches!(err, CaError::SeveralCertificates { count: 2 }),
            "{err:?}"
        );

        let mut padded = "x".repeat(MAX_PEM_BYTES);
        padded.push_str(&ca_pem("Padded CA"));
        let err = check_pem(padded.as_bytes(), now).expect_err("too large");
        assert!(matches!(err, CaError::TooLarge { .. }), "{err:?}");

        for err in [
            CaError::NoCertificate,
            CaError::NotCa,
            CaError::Full {
                max: MAX_AUTHORITIES,
            },
            CaError::SeveralCertificates { count: 2 },
        ] {
            let message = err.to_string();
            assert!(
                message.contains("; ") && !message.ends_with('.'),
                "one sentence, problem then advice: {message}"
            );
        }
    }

    #[test]
    fn stores_lists_and_reloads_with_private_modes() {
        let tmp = TempDir::new("store");
        let store = CaStore::open(&tmp.store()).expect("open");
        assert!(store.list().is_empty());
        assert!(!tmp.store().exists(), "nothing is created before an upload");
        let pem = ca_pem("Zeta CA");
        let zeta = store.add_pem(pem.as_bytes()).expect("add");
        // The text before the certificate is not kept.
        let alpha = store
            .add_pem(format!("Certificate:\n  Data: ...\n{}", ca_pem("Alpha CA")).as_bytes())
            .expect("add");
        assert_eq!(store.list(), [alpha.clone(), zeta.clone()], "by subject");
        assert_eq!(store.roots().len(), 2);

        assert_eq!(mode(&tmp.store()), 0o700);
        let files: Vec<PathBuf> = fs::read_dir(tmp.store())
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
            let text = fs::read_to_string(file).expect("read");
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
        }
        let zeta_file = tmp.store().join(format!(
            "{}.pem",
            zeta.sha256_fingerprint
                .replace(':', "")
                .to_ascii_lowercase()
        ));
        assert_eq!(
            fs::read_to_string(&zeta_file).expect("zeta's file"),
            pem,
            "the file is named by the fingerprint"
        );

        let again = CaStore::open(&tmp.store()).expect("reopen");
        assert_eq!(again.list(), [alpha, zeta]);
    }

    #[test]
    fn refuses_the_same_ca_twice() {
        let tmp = TempDir::new("duplicate");
        let store = CaStore::open(&tmp.store()).expect("open");
        let pem = ca_pem("Twice CA");
        let info = store.add_pem(pem.as_bytes()).expect("first");
        let err = store.add_pem(pem.as_bytes()).expect_err("second");
        assert!(
            matches!(&err, CaError::Duplicate { fingerprint, .. } if *fingerprint == info.sha256_fingerprint),
            "{err:?}"
        );
        assert!(err.to_string().contains("already trusted"), "{err}");
        assert_eq!(store.list().len(), 1);
    }

    #[test]
    fn keeps_at_most_32_cas() {
        let tmp = TempDir::new("full");
        let store = CaStore::open(&tmp.store()).expect("open");
        for i in 0..MAX_AUTHORITIES {
            store
                .add_pem(ca_pem(&format!("CA {i}")).as_bytes())
                .unwrap_or_else(|e| panic!("CA {i}: {e}"));
        }
        let err = store
            .add_pem(ca_pem("One too many").as_bytes())
            .expect_err("refused");
        assert!(matches!(err, CaError::Full { max: 32 }), "{err:?}");
        assert!(err.to_string().contains("remove one"), "{err}");
        assert_eq!(store.list().len(), MAX_AUTHORITIES);
        // Removing one makes room again.
        let first = store.list().remove(0);
        store.remove(&first.sha256_fingerprint).expect("remove");
        store
            .add_pem(ca_pem("One too many").as_bytes())
            .expect("room again");
    }

    #[test]
    fn removes_by_fingerprint_in_any_spelling() {
        let tmp = TempDir::new("remove");
        let store = CaStore::open(&tmp.store()).expect("open");
        let a = store.add_pem(ca_pem("A").as_bytes()).expect("a");
        let b = store.add_pem(ca_pem("B").as_bytes()).expect("b");
        let bare = b.sha256_fingerprint.replace(':', "").to_ascii_lowercase();
        assert_eq!(store.remove(&bare).expect("remove b"), b);
        assert_eq!(store.list(), std::slice::from_ref(&a));
        assert_eq!(
            CaStore::open(&tmp.store()).expect("reopen").list(),
            std::slice::from_ref(&a)
        );
        let err = store.remove(&b.sha256_fingerprint).expect_err("gone");
        assert!(matches!(err, CaError::NotFound { .. }), "{err:?}");
        for bad in [
            "",
            "AB",
            "zz",
            &format!("{}:", a.sha256_fingerprint),
            "../etc",
        ] {
            let err = store.remove(bad).expect_err("malformed");
            assert!(
                matches!(err, CaError::BadFingerprint { .. }),
                "{bad}: {err:?}"
            );
        }
        store
            .remove(&a.sha256_fingerprint.to_ascii_lowercase())
            .expect("remove a");
        assert!(store.list().is_empty());
    }

    #[test]
    fn clear_deletes_the_directory() {
        let tmp = TempDir::new("clear");
        let store = CaStore::open(&tmp.store()).expect("open");
        let a = store.add_pem(ca_pem("A").as_bytes()).expect("a");
        let cleared = store.clear().expect("clear");
        assert_eq!(cleared, [a]);
        assert!(store.list().is_empty());
        assert!(!tmp.store().exists());
        assert!(store.clear().expect("clear again").is_empty());
        store
            .add_pem(ca_pem("B").as_bytes())
            .expect("usable after clearing");
    }

    #[test]
    fn open_skips_files_it_cannot_use_and_discards_interrupted_writes() {
        let tmp = TempDir::new("skip");
        let store = CaStore::open(&tmp.store()).expect("open");
        let good = store.add_pem(ca_pem("Good CA").as_bytes()).expect("add");
        let dir = tmp.store();
        fs::write(dir.join("garbage.pem"), "not a certificate").expect("garbage");
        // A certificate under another certificate's name.
        fs::write(
            dir.join(format!("{}.pem", "0".repeat(64))),
            ca_pem("Misnamed CA"),
        )
        .expect("misnamed");
        fs::write(dir.join(format!("{}.pem.new", "1".repeat(64))), "half").expect("temp");
        fs::write(dir.join("README"), "hello").expect("other file");
        let reopened = CaStore::open(&dir).expect("reopen");
        assert_eq!(reopened.list(), [good]);
        assert!(!dir.join(format!("{}.pem.new", "1".repeat(64))).exists());
    }
}
