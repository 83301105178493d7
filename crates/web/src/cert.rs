//! The device certificate: the one certificate chain and private key that
//! the HTTPS console (and, later, the other TLS services) present (seed
//! §3.3 "HTTPS and SSL Certificates").
//!
//! A device starts with a self-signed ECDSA P-256 certificate naming its
//! host name and addresses, as the NPort does; the owner may import a
//! certificate issued by their own or a public CA instead. Import checks
//! what would otherwise only show up as a browser error much later, and
//! says so in one sentence: the key belongs to the certificate, the key
//! type and size are ones TLS clients accept (RSA 2048–8192, ECDSA
//! P-256/P-384/P-521, Ed25519 — the seed's RSA-1024 is refused, see
//! `docs/security.md` CR 1.8/1.9), the certificate is within its validity
//! period, and its key usage and extended key usage allow a TLS server.
//!
//! What this module does not do: it does not verify that each chain
//! certificate signs the one before it, nor build a path to a trusted root
//! (the device has no trust store for its own certificate; a wrong chain
//! shows in the browser); it does not check revocation; it does not decide
//! when a certificate is regenerated (the caller does, e.g. when the host's
//! addresses change). The files it keeps are `system.crt` (the chain, PEM)
//! and `system.key` (the key, PEM), both 0600 in a 0700 directory.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_DSA, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED448, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The certificate chain file in the certificate directory.
pub const CERT_FILE: &str = "system.crt";
/// The private key file in the certificate directory.
pub const KEY_FILE: &str = "system.key";
/// Where [`DeviceCert::save`] writes the key before renaming it into place.
const KEY_TEMP: &str = "system.key.new";
/// Where [`DeviceCert::save`] writes the chain before renaming it into place.
const CERT_TEMP: &str = "system.crt.new";

/// Lifetime of a self-signed certificate: a year, the longest Mozilla's
/// "intermediate" profile accepts (browsers cap server certificates at
/// 398 days). The daemon makes a new one when it starts with less than
/// [`RENEW_BEFORE_DAYS`] left, or finds so while it runs.
pub const SELF_SIGNED_DAYS: i64 = 365;
/// A self-signed certificate closer than this to its end is replaced (at
/// start, and by the running server's periodic check in [`crate::tls`]).
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// The self-signed certificate starts an hour in the past so that a client
/// whose clock runs a little behind the device's still accepts it.
const SELF_SIGNED_BACKDATE_HOURS: i64 = 1;

/// Smallest RSA modulus accepted: NIST SP 800-131A disallows RSA-1024 for
/// signatures, and aws-lc-rs cannot load anything smaller than 2048 bits.
const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted: aws-lc-rs refuses larger keys.
const RSA_MAX_BITS: usize = 8192;

/// Why a certificate could not be made, imported, stored or loaded. Every
/// message is one sentence: what was wrong, then what to do.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The certificate text has no `CERTIFICATE` PEM block.
    #[error(
        "the certificate text contains no PEM certificate (-----BEGIN CERTIFICATE-----); provide the server certificate in PEM form, followed by its CA certificates if any"
    )]
    NoCertificate,
    /// A `CERTIFICATE` PEM block could not be decoded.
    #[error(
        "the certificate PEM text is damaged ({reason}); export the certificate again in PEM form"
    )]
    CertificatePem {
        /// What the PEM decoder reported.
        reason: String,
    },
    /// A certificate of the chain is not a parsable X.509 certificate.
    #[error(
        "certificate {position} of the chain is not a valid X.509 certificate ({reason}); export it again from the certificate authority in PEM form"
    )]
    BadCertificate {
        /// Its place in the chain, 1 = the server certificate.
        position: usize,
        /// What the X.509 parser reported.
        reason: String,
    },
    /// The key text has no private key PEM block.
    #[error(
        "the key text contains no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); provide the unencrypted private key in PEM form"
    )]
    NoKey,
    /// The private key is encrypted with a passphrase.
    #[error(
        "the private key is protected by a passphrase; remove it (for example with `openssl pkey -in key.pem -out plain-key.pem`) and import the unencrypted key"
    )]
    EncryptedKey,
    /// A private key PEM block could not be decoded. The decoder's message
    /// is left out on purpose: it may quote lines of the secret key.
    #[error("the private key PEM text is damaged; export the private key again in PEM form")]
    KeyPem,
    /// The private key could not be loaded by the TLS library.
    #[error(
        "the private key cannot be used ({reason}); provide an RSA (2048 to 8192 bits), ECDSA (P-256, P-384, P-521) or Ed25519 key in PKCS#8, PKCS#1 or SEC1 PEM form"
    )]
    KeyUnusable {
        /// What the TLS library reported.
        reason: String,
    },
    /// The private key does not belong to any certificate of the chain.
    #[error(
        "the private key does not belong to the certificate; import the key that was generated together with the certificate's signing request"
    )]
    KeyMismatch,
    /// The private key belongs to a later certificate of the chain.
    #[error(
        "the private key belongs to certificate {position} of the chain rather than the first one; put the server certificate first and its CA certificates after it"
    )]
    LeafNotFirst {
        /// The place in the chain of the certificate the key belongs to.
        position: usize,
    },
    /// RSA key smaller than 2048 bits.
    #[error(
        "the RSA-{bits} key is too weak: RSA keys under 2048 bits, such as RSA-1024, can be factored with affordable computing power; use RSA 2048 or larger or ECDSA P-256"
    )]
    WeakRsaKey {
        /// The key's modulus size.
        bits: usize,
    },
    /// RSA key larger than 8192 bits.
    #[error(
        "the RSA-{bits} key is larger than the 8192 bits TLS libraries accept; use RSA 2048 to 8192 or ECDSA P-256"
    )]
    RsaKeyTooLarge {
        /// The key's modulus size.
        bits: usize,
    },
    /// A key type outside RSA, ECDSA P-256/P-384/P-521 and Ed25519.
    #[error(
        "the certificate's key type ({algorithm}) is not supported; use RSA 2048 to 8192, ECDSA P-256, P-384 or P-521, or Ed25519"
    )]
    UnsupportedKey {
        /// The key type found, as words or as an OID.
        algorithm: String,
    },
    /// The certificate's validity starts in the future.
    #[error(
        "the certificate is not valid before {not_before} and it is now {now}; check the device's clock, or import it after that date"
    )]
    NotYetValid {
        /// The certificate's notBefore, RFC 3339.
        not_before: String,
        /// The device's time, RFC 3339.
        now: String,
    },
    /// The certificate's validity has ended.
    #[error(
        "the certificate expired on {not_after} and it is now {now}; renew it with its certificate authority and import the new one"
    )]
    Expired {
        /// The certificate's notAfter, RFC 3339.
        not_after: String,
        /// The device's time, RFC 3339.
        now: String,
    },
    /// The key usage extension is present and forbids signatures.
    #[error(
        "the certificate's key usage does not include {needed}, which every TLS handshake of this device needs; ask the certificate authority for a TLS server certificate"
    )]
    KeyUsage {
        /// The key usage bit that is missing.
        needed: &'static str,
    },
    /// The extended key usage extension is present without serverAuth.
    #[error(
        "the certificate's extended key usage does not include serverAuth (TLS Web Server Authentication); ask the certificate authority for a TLS server certificate"
    )]
    ExtendedKeyUsage,
    /// A name for the self-signed certificate is not a DNS name.
    #[error(
        "{name:?} cannot be a name in the certificate; use host names made of letters, digits, hyphens and dots"
    )]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// Generating the self-signed certificate failed.
    #[error(
        "generating the self-signed certificate failed ({reason}); try again, and report it if it keeps failing"
    )]
    Generate {
        /// What the generator reported.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error(
        "the TLS library refused the certificate and key ({reason}); regenerate the system certificate or import another one"
    )]
    Tls {
        /// What rustls reported.
        reason: String,
    },
    /// Only one of `system.crt` and `system.key` exists.
    #[error(
        "{} exists but {} does not; restore the missing file from a backup, or remove the other one so that a new self-signed certificate is generated",
        .present.display(),
        .missing.display()
    )]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that does not.
        missing: PathBuf,
    },
    /// The stored certificate and key cannot be used.
    #[error("the stored certificate in {} cannot be used: {source}", .path.display())]
    Stored {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        source: Box<CertError>,
    },
    /// A file operation failed.
    #[error(
        "cannot {action} {}: {source}; check that the directory exists and that ttyward may write to it",
        .path.display()
    )]
    Io {
        /// What was being done, e.g. "read".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Facts about the device certificate for the web console and the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CertInfo {
    /// Subject distinguished name, e.g. `CN=nport, O=ttyward`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, upper-case hex without separators.
    pub serial: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// Key type and size: "ECDSA P-256", "RSA 3072", "Ed25519" ...
    pub key_algorithm: String,
    /// Subject alternative names, each prefixed with its kind as OpenSSL
    /// prints them: `DNS:host`, `IP:192.0.2.1`, `email:...`, `URI:...`.
    pub subject_alt_names: Vec<String>,
    /// Issuer and subject are the same name (a self-signed certificate).
    pub self_signed: bool,
    /// SHA-256 of the server certificate's DER, upper-case hex bytes
    /// separated by colons, as browsers show it.
    pub sha256_fingerprint: String,
    /// Number of certificates in the chain, the server certificate included.
    pub chain_length: usize,
}

/// A certificate chain and its private key, checked to belong together.
pub struct DeviceCert {
    /// Server certificate first, then its CA certificates as given.
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    info: CertInfo,
}

impl Clone for DeviceCert {
    fn clone(&self) -> Self {
        DeviceCert {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            info: self.info.clone(),
        }
    }
}

impl fmt::Debug for DeviceCert {
    // The key stays out of logs: only the public facts are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCert")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Which certificate checks apply: an import checks the validity period
/// against the clock, loading a stored certificate does not (a device
/// without a real-time clock may boot in 1970, and an expired stored
/// certificate must still be served until it is replaced).
#[derive(Clone, Copy)]
enum Validity {
    At(OffsetDateTime),
    Unchecked,
}

impl DeviceCert {
    /// Generate a self-signed ECDSA P-256 certificate whose subject
    /// alternative names are `names` (DNS) and `addresses` (IP); the common
    /// name is the first name (else the first address, else "ttyward").
    /// Valid from an hour ago for 825 days, key usage digitalSignature,
    /// extended key usage serverAuth, random 16-byte serial number.
    pub fn self_signed(names: &[String], addresses: &[IpAddr]) -> Result<DeviceCert, CertError> {
        use rcgen::{
            CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, SanType, SerialNumber,
        };

        let mut sans = Vec::with_capacity(names.len() + addresses.len());
        for name in names {
            if !is_dns_name(name) {
                return Err(CertError::InvalidName { name: name.clone() });
            }
            let ia5 = rcgen::string::Ia5String::try_from(name.as_str())
                .map_err(|_| CertError::InvalidName { name: name.clone() })?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        let common_name = names
            .first()
            .cloned()
            .or_else(|| addresses.first().map(IpAddr::to_string))
            .unwrap_or_else(|| "ttyward".to_owned());

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        // Lets a person recognise the certificate in a browser's warning,
        // as the NPort's "NPort self-signed" does.
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ttyward self-signed");
        params.subject_alt_names = sans;
        let not_before =
            OffsetDateTime::now_utc() - time::Duration::hours(SELF_SIGNED_BACKDATE_HOURS);
        params.not_before = not_before;
        params.not_after = not_before + time::Duration::days(SELF_SIGNED_DAYS);
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        // basicConstraints CA:FALSE, subject and authority key identifiers:
        // path validators (sslyze, OpenSSL with the certificate as its own
        // trust anchor) require them.
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];

        let generate = |e: rcgen::Error| CertError::Generate {
            reason: e.to_string(),
        };
        let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let cert = params.self_signed(&key_pair).map_err(generate)?;
        let key = PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        // Through the same checks as an import, so that what is generated
        // can never differ from what would be accepted.
        DeviceCert::check(vec![cert.der().clone()], key, Validity::Unchecked)
    }

    /// Parse a user certificate (PEM; server certificate first, CA
    /// certificates may follow) and key (PEM: PKCS#8, PKCS#1 RSA or SEC1
    /// EC), and refuse, saying why, what a TLS client would refuse later.
    /// The chain's signatures are not verified (see the module docs).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<DeviceCert, CertError> {
        DeviceCert::from_pem_checked(cert_pem, key_pem, Validity::At(OffsetDateTime::now_utc()))
    }

    fn from_pem_checked(
        cert_pem: &[u8],
        key_pem: &[u8],
        validity: Validity,
    ) -> Result<DeviceCert, CertError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::CertificatePem {
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(CertError::NoCertificate);
        }
        // Before parsing: the PEM decoder skips PKCS#8 encrypted blocks and
        // chokes on the headers of OpenSSL's legacy encrypted ones, and
        // neither outcome would say what is really wrong.
        if is_encrypted_pem(key_pem) {
            return Err(CertError::EncryptedKey);
        }
        let key = match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(key) => key,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(CertError::NoKey),
            Err(_) => return Err(CertError::KeyPem),
        };
        DeviceCert::check(chain, key, validity)
    }

    /// Load from `dir/system.crt` and `dir/system.key`; `Ok(None)` if
    /// neither exists. A [`save`](Self::save) that a crash interrupted is
    /// finished or undone first, so the pair found always belongs together.
    /// The validity period is not checked here (a stored certificate is
    /// served until replaced; an expired one is logged as a warning).
    pub fn load(dir: &Path) -> Result<Option<DeviceCert>, CertError> {
        recover_interrupted_save(dir)?;
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        let cert_pem = read_if_exists(&cert_path)?;
        let key_pem = read_if_exists(&key_path)?;
        let (cert_pem, key_pem) = match (cert_pem, key_pem) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(CertError::Incomplete {
                    present: cert_path,
                    missing: key_path,
                });
            }
            (None, Some(_)) => {
                return Err(CertError::Incomplete {
                    present: key_path,
                    missing: cert_path,
                });
            }
            (Some(c), Some(k)) => (c, k),
        };
        if let Ok(meta) = fs::metadata(&key_path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} can be read by other users (mode {:o}); it should be 0600",
                key_path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        let cert = DeviceCert::from_pem_checked(&cert_pem, &key_pem, Validity::Unchecked).map_err(
            |e| CertError::Stored {
                path: cert_path.clone(),
                source: Box::new(e),
            },
        )?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if cert.info.not_after_unix < now {
            tracing::warn!(
                "the device certificate expired on {}; import a new one or regenerate it",
                cert.info.not_after
            );
        }
        Ok(Some(cert))
    }

    /// Write `dir/system.crt` and `dir/system.key` (both 0600; `dir` is
    /// created 0700 if missing). Each file is written to a temporary file
    /// in `dir`, synced, then renamed into place; the key is renamed first,
    /// and [`load`](Self::load) completes the certificate's rename if a
    /// crash came between the two. Two processes must not save into the
    /// same directory at the same time.
    pub fn save(&self, dir: &Path) -> Result<(), CertError> {
        ensure_private_dir(dir)?;
        let key_pem = self.key_pem();
        let cert_pem = self.chain_pem();
        let key_temp = dir.join(KEY_TEMP);
        let cert_temp = dir.join(CERT_TEMP);
        // The key's temporary file must be durable before the chain's is
        // created: `load` reads "chain temp present, key temp absent" as
        // "the key was already renamed", which is only true in that order.
        write_private_file(&key_temp, key_pem.as_bytes())?;
        sync_dir(dir)?;
        write_private_file(&cert_temp, cert_pem.as_bytes())?;
        sync_dir(dir)?;
        rename(&key_temp, &dir.join(KEY_FILE))?;
        rename(&cert_temp, &dir.join(CERT_FILE))?;
        sync_dir(dir)
    }

    /// The certificate and key in the form a rustls server presents, built
    /// with the aws-lc-rs provider's key loader.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, CertError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider)
            .map(Arc::new)
            .map_err(|e| CertError::Tls {
                reason: e.to_string(),
            })
    }

    /// Facts for the web console and the API.
    pub fn info(&self) -> CertInfo {
        self.info.clone()
    }

    /// The certificate chain as PEM, server certificate first: what a
    /// browser or a syslog server is given to trust. Never the key: it is
    /// re-encoded from the parsed certificates, so a key pasted into the
    /// certificate text is not carried along.
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|der| pem_block("CERTIFICATE", der.as_ref()))
            .collect()
    }

    /// The key as PEM, in the form it was given (PKCS#8, PKCS#1 or SEC1).
    fn key_pem(&self) -> String {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        pem_block(label, self.key.secret_der())
    }

    /// Every check, in the order that gives the most useful message first:
    /// the certificates parse, the key type is allowed, the key loads and
    /// belongs to the first certificate, the dates, the usages.
    fn check(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        validity: Validity,
    ) -> Result<DeviceCert, CertError> {
        let mut parsed = Vec::with_capacity(chain.len());
        for (index, der) in chain.iter().enumerate() {
            let (_, cert) =
                X509Certificate::from_der(der.as_ref()).map_err(|e| CertError::BadCertificate {
                    position: index + 1,
                    reason: e.to_string(),
                })?;
            parsed.push(cert);
        }
        let Some(leaf) = parsed.first() else {
            return Err(CertError::NoCertificate);
        };
        let algorithm = KeyAlgorithm::of(leaf.public_key())?;

        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let signing_key = match provider.key_provider.load_private_key(key.clone_key()) {
            Ok(k) => k,
            Err(e) => {
                // aws-lc-rs's refusal of a small RSA key is vague; say it.
                return Err(match rsa_private_key_bits(&key) {
                    Some(bits) if bits < RSA_MIN_BITS => CertError::WeakRsaKey { bits },
                    Some(bits) if bits > RSA_MAX_BITS => CertError::RsaKeyTooLarge { bits },
                    _ => CertError::KeyUnusable {
                        reason: e.to_string(),
                    },
                });
            }
        };
        let Some(key_spki) = signing_key.public_key() else {
            return Err(CertError::KeyUnusable {
                reason: "its public key cannot be derived".to_owned(),
            });
        };
        if key_spki.as_ref() != leaf.public_key().raw {
            return Err(
                match parsed
                    .iter()
                    .position(|c| c.public_key().raw == key_spki.as_ref())
                {
                    Some(index) => CertError::LeafNotFirst {
                        position: index + 1,
                    },
                    None => CertError::KeyMismatch,
                },
            );
        }

        if let Validity::At(now) = validity {
            let not_before = leaf.validity().not_before.to_datetime();
            let not_after = leaf.validity().not_after.to_datetime();
            if now < not_before {
                return Err(CertError::NotYetValid {
                    not_before: rfc3339(not_before),
                    now: rfc3339(now),
                });
            }
            if now > not_after {
                return Err(CertError::Expired {
                    not_after: rfc3339(not_after),
                    now: rfc3339(now),
                });
            }
        }

        let bad_extension = |e: x509_parser::error::X509Error| CertError::BadCertificate {
            position: 1,
            reason: e.to_string(),
        };
        // Every handshake this device makes signs with the key (TLS 1.3,
        // and ECDHE in TLS 1.2; rustls has no RSA key exchange), so an RSA
        // certificate limited to keyEncipherment is refused too: clients
        // that enforce key usage (Chrome for enterprise CAs) reject it.
        if let Some(ku) = leaf.key_usage().map_err(bad_extension)?
            && !ku.value.digital_signature()
        {
            return Err(CertError::KeyUsage {
                needed: "digitalSignature",
            });
        }
        // anyExtendedKeyUsage is not enough: webpki (rustls clients)
        // requires serverAuth itself whenever the extension is present.
        if let Some(eku) = leaf.extended_key_usage().map_err(bad_extension)?
            && !eku.value.server_auth
        {
            return Err(CertError::ExtendedKeyUsage);
        }

        let info = describe(leaf, chain.len(), algorithm).map_err(bad_extension)?;
        drop(parsed);
        Ok(DeviceCert { chain, key, info })
    }
}

/// The key types TLS clients accept from this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    Rsa(usize),
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Ed25519,
}

impl KeyAlgorithm {
    /// Classify a certificate's public key, refusing what is not allowed.
    pub(crate) fn of(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyAlgorithm, CertError> {
        let oid = &spki.algorithm.algorithm;
        if *oid == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => bit_length(rsa.modulus),
                _ => {
                    return Err(CertError::BadCertificate {
                        position: 1,
                        reason: "its RSA public key cannot be parsed".to_owned(),
                    });
                }
            };
            if bits < RSA_MIN_BITS {
                return Err(CertError::WeakRsaKey { bits });
            }
            if bits > RSA_MAX_BITS {
                return Err(CertError::RsaKeyTooLarge { bits });
            }
            Ok(KeyAlgorithm::Rsa(bits))
        } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => Ok(KeyAlgorithm::EcdsaP256),
                Some(c) if c == OID_NIST_EC_P384 => Ok(KeyAlgorithm::EcdsaP384),
                Some(c) if c == OID_NIST_EC_P521 => Ok(KeyAlgorithm::EcdsaP521),
                Some(c) => Err(CertError::UnsupportedKey {
                    algorithm: format!("ECDSA on curve {c}"),
                }),
                None => Err(CertError::UnsupportedKey {
                    algorithm: "ECDSA without a named curve".to_owned(),
                }),
            }
        } else if *oid == OID_SIG_ED25519 {
            Ok(KeyAlgorithm::Ed25519)
        } else if *oid == OID_SIG_ED448 {
            Err(CertError::UnsupportedKey {
                algorithm: "Ed448".to_owned(),
            })
        } else if *oid == OID_KEY_TYPE_DSA {
            Err(CertError::UnsupportedKey {
                algorithm: "DSA".to_owned(),
            })
        } else {
            Err(CertError::UnsupportedKey {
                algorithm: format!("OID {oid}"),
            })
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa(bits) => write!(f, "RSA {bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyAlgorithm::EcdsaP521 => f.write_str("ECDSA P-521"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The facts of the server certificate for [`CertInfo`].
fn describe(
    leaf: &X509Certificate<'_>,
    chain_length: usize,
    algorithm: KeyAlgorithm,
) -> Result<CertInfo, x509_parser::error::X509Error> {
    let mut subject_alt_names = Vec::new();
    if let Some(san) = leaf.subject_alternative_name()? {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => subject_alt_names.push(format!("DNS:{n}")),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        subject_alt_names.push(format!("IP:{ip}"));
                    }
                }
                GeneralName::RFC822Name(n) => subject_alt_names.push(format!("email:{n}")),
                GeneralName::URI(n) => subject_alt_names.push(format!("URI:{n}")),
                _ => {}
            }
        }
    }
    let not_after = leaf.validity().not_after.to_datetime();
    Ok(CertInfo {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        serial: serial_hex(leaf),
        not_before: rfc3339(leaf.validity().not_before.to_datetime()),
        not_after: rfc3339(not_after),
        not_after_unix: not_after.unix_timestamp(),
        key_algorithm: algorithm.to_string(),
        subject_alt_names,
        self_signed: leaf.subject().as_raw() == leaf.issuer().as_raw(),
        sha256_fingerprint: hex_upper(&Sha256::digest(leaf.as_raw()), ":"),
        chain_length,
    })
}

/// A certificate's serial number as upper-case hex without separators or
/// leading zero bytes ("00" for zero).
pub(crate) fn serial_hex(cert: &X509Certificate<'_>) -> String {
    let raw = cert.raw_serial();
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    let hex = hex_upper(raw.get(start..).unwrap_or_default(), "");
    if hex.is_empty() { "00".to_owned() } else { hex }
}

/// The host's name and addresses for the self-signed certificate's SANs:
/// the host name (when it is a valid DNS name) and "localhost"; every
/// interface address except loopback, link-local (169.254/16, fe80::/10),
/// unspecified and multicast ones; then 127.0.0.1 and ::1 so that local
/// access works too.
pub fn host_identity() -> (Vec<String>, Vec<IpAddr>) {
    let mut names = Vec::new();
    match nix::unistd::gethostname() {
        Ok(host) => match host.into_string() {
            Ok(host) => {
                let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
                if is_dns_name(&host) && host != "localhost" {
                    names.push(host);
                } else if !host.is_empty() && host != "localhost" {
                    tracing::debug!(
                        "host name {host:?} is not a DNS name; left out of the certificate"
                    );
                }
            }
            Err(host) => {
                tracing::debug!("host name {host:?} is not UTF-8; left out of the certificate");
            }
        },
        Err(e) => tracing::warn!("cannot read the host name: {e}"),
    }
    names.push("localhost".to_owned());

    let mut addresses = Vec::new();
    match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => {
            for interface in interfaces {
                let Some(address) = interface.address else {
                    continue;
                };
                let ip = if let Some(v4) = address.as_sockaddr_in() {
                    IpAddr::V4(v4.ip())
                } else if let Some(v6) = address.as_sockaddr_in6() {
                    IpAddr::V6(v6.ip())
                } else {
                    continue;
                };
                if is_reachable_host_address(ip) && !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
        }
        Err(e) => tracing::warn!("cannot list the network interfaces: {e}"),
    }
    for local in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        if !addresses.contains(&local) {
            addresses.push(local);
        }
    }
    (names, addresses)
}

/// An address other hosts can reach this device by.
fn is_reachable_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            // An IPv4-mapped loopback address is loopback too.
            let mapped_loopback = v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
            !(v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_unspecified()
                || v6.is_multicast()
                || mapped_loopback)
        }
    }
}

/// A DNS name as certificates carry it (RFC 5280 §4.2.1.6, RFC 1123
/// labels): letters, digits and hyphens, labels of 1–63 characters not
/// starting or ending with a hyphen, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// 16 random bytes for a serial number, positive as DER wants it and never
/// zero (RFC 5280 §4.1.2.2).
fn random_serial() -> Result<[u8; 16], CertError> {
    let mut serial = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| CertError::Generate {
            reason: "the system's random number generator failed".to_owned(),
        })?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let Some(start) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    let significant = bytes.get(start..).unwrap_or_default();
    let leading = significant
        .first()
        .map_or(0, |b| b.leading_zeros() as usize);
    significant.len() * 8 - leading
}

/// The modulus size of an RSA private key (PKCS#1, or PKCS#8 wrapping
/// PKCS#1), or None for anything else.
fn rsa_private_key_bits(key: &PrivateKeyDer<'_>) -> Option<usize> {
    use x509_parser::der_parser::der::parse_der;
    // RSAPrivateKey ::= SEQUENCE { version, modulus INTEGER, ... } (RFC 8017)
    fn pkcs1_modulus_bits(der: &[u8]) -> Option<usize> {
        let (_, key) = parse_der(der).ok()?;
        let modulus = key.as_sequence().ok()?.get(1)?.as_slice().ok()?;
        Some(bit_length(modulus))
    }
    match key {
        PrivateKeyDer::Pkcs1(k) => pkcs1_modulus_bits(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => {
            // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier,
            // privateKey OCTET STRING } (RFC 5208)
            let (_, info) = parse_der(k.secret_pkcs8_der()).ok()?;
            let fields = info.as_sequence().ok()?;
            let algorithm = fields.get(1)?.as_sequence().ok()?;
            if *algorithm.first()?.as_oid().ok()? != OID_PKCS1_RSAENCRYPTION {
                return None;
            }
            pkcs1_modulus_bits(fields.get(2)?.as_slice().ok()?)
        }
        _ => None,
    }
}

/// An encrypted key: PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy
/// `Proc-Type: 4,ENCRYPTED` header in a traditional key.
fn is_encrypted_pem(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    // Certificates carry whole seconds; so do the messages about them.
    let utc = utc.replace_nanosecond(0).unwrap_or(utc);
    // RFC 3339 cannot express years past 9999; fall back to time's own form.
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

pub(crate) fn hex_upper(bytes: &[u8], separator: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// One PEM block (RFC 7468): base64 in lines of 64 characters. Written here
/// because rustls-pki-types only decodes PEM.
pub(crate) fn pem_block(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut column = 0;
    for chunk in der.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            // A chunk of n bytes yields n + 1 characters, then padding.
            let c = if i <= chunk.len() {
                let sextet = (group >> (18 - 6 * i)) & 0x3f;
                char::from(ALPHABET[sextet as usize])
            } else {
                '='
            };
            out.push(c);
            column += 1;
            if column == 64 {
                out.push('\n');
                column = 0;
            }
        }
    }
    if column != 0 {
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, CertError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) fn exists(path: &Path) -> Result<bool, CertError> {
    path.try_exists().map_err(|source| CertError::Io {
        action: "look for",
        path: path.to_owned(),
        source,
    })
}

/// Finish or undo a [`DeviceCert::save`] that a crash interrupted. `save`
/// makes both temporary files durable before renaming the key, so: the
/// chain's temporary file without the key's means the key was renamed and
/// the chain must follow; the key's temporary file still present means no
/// rename happened and the old pair is intact, so the temporaries go.
fn recover_interrupted_save(dir: &Path) -> Result<(), CertError> {
    let key_temp = dir.join(KEY_TEMP);
    let cert_temp = dir.join(CERT_TEMP);
    match (exists(&key_temp)?, exists(&cert_temp)?) {
        (false, false) => return Ok(()),
        (false, true) => {
            tracing::warn!(
                "finishing a certificate save that was interrupted: {} replaces {}",
                cert_temp.display(),
                CERT_FILE
            );
            rename(&cert_temp, &dir.join(CERT_FILE))?;
        }
        (true, _) => {
            tracing::warn!("discarding a certificate save that was interrupted before it finished");
            remove_if_exists(&key_temp)?;
            remove_if_exists(&cert_temp)?;
        }
    }
    sync_dir(dir)
}

pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), CertError> {
    if exists(dir)? {
        return Ok(());
    }
    let io_error = |action| {
        move |source| CertError::Io {
            action,
            path: dir.to_owned(),
            source,
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error("create directory"))?;
    // The umask may have taken bits away; make the mode exactly 0700.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error("set the permissions of"))
}

/// Create `path` anew with mode 0600, write `bytes`, and sync it. A stale
/// file of that name is removed first, and `create_new` refuses to follow
/// a symbolic link planted there.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let io_error = |action| {
        move |source| CertError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    remove_if_exists(path)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("create"))?;
    // The umask may have taken bits away; make the mode exactly 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_error("set the permissions of"))?;
    file.write_all(bytes).map_err(io_error("write"))?;
    file.sync_all().map_err(io_error("sync"))
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), CertError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CertError::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), CertError> {
    fs::rename(from, to).map_err(|source| CertError::Io {
        action: "rename into place",
        path: from.to_owned(),
        source,
    })
}

/// Make renames and creations in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CertError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| CertError::Io {
            action: "sync directory",
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, RsaKeySize,
    };
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::SectionKind;

    use super::*;

    /// A directory that is removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "ttyward-cert-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create the test directory");
            TempDir(path)
        }

        fn path(&self) -> &Path {
            &self.0
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

    /// Runs the openssl command line in `dir` and returns its standard output.
    fn openssl(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("openssl prints UTF-8")
    }

    /// `key_pem` (PKCS#8) rewritten by openssl in its traditional form:
    /// PKCS#1 for RSA, SEC1 for EC.
    fn traditional(key_pem: &str, label: &str) -> String {
        let dir = TempDir::new("traditional");
        fs::write(dir.path().join("key.pem"), key_pem).expect("write key");
        let pem = openssl(dir.path(), &["pkey", "-in", "key.pem", "-traditional"]);
        assert!(
            pem.contains(&format!("-----BEGIN {label}-----")),
            "openssl did not write a {label}: {pem}"
        );
        pem
    }

    /// A certificate authority for tests.
    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        cert: rcgen::Certificate,
    }

    impl Ca {
        fn root(name: &str) -> Ca {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
            let params = ca_params(name);
            let cert = params.self_signed(&key).expect("self-sign the CA");
            Ca { params, key, cert }
        }

        fn intermediate(&self, name: &str) -> Ca {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
            let params = ca_params(name);
            let cert = self.issue(&params, &key);
            Ca { params, key, cert }
        }

        fn issue(
            &self,
            params: &CertificateParams,
            subject_key: &impl rcgen::PublicKeyData,
        ) -> rcgen::Certificate {
            params
                .signed_by(subject_key, &Issuer::from_params(&self.params, &self.key))
                .expect("issue a certificate")
        }

        fn der(&self) -> CertificateDer<'static> {
            self.cert.der().clone()
        }
    }

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(2);
        params.not_after = now + time::Duration::days(60);
        params
    }

    /// A TLS server certificate for "localhost", valid from yesterday for
    /// 30 days, as a CA would issue it.
    fn server_params() -> CertificateParams {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
    }

    fn p256() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
    }

    /// Completes a TLS handshake in memory between a rustls server
    /// presenting `key` and a rustls client that trusts `roots` and asks
    /// for "localhost"; returns the chain the client received.
    fn handshake(
        key: Arc<CertifiedKey>,
        roots: &[CertificateDer<'static>],
    ) -> Vec<CertificateDer<'static>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("server protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
        let mut trusted = rustls::RootCertStore::empty();
        for root in roots {
            trusted.add(root.clone()).expect("trust the root");
        }
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("client protocol versions")
            .with_root_certificates(trusted)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("server name");
        let mut client = rustls::Connection::from(
            rustls::ClientConnection::new(Arc::new(client_config), name).expect("client"),
        );
        let mut server = rustls::Connection::from(
            rustls::ServerConnection::new(Arc::new(server_config)).expect("server"),
        );
        // A TLS 1.3 handshake takes two round trips; 8 is plenty.
        for _ in 0..8 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            pump(&mut client, &mut server);
            pump(&mut server, &mut client);
        }
        assert!(
            !client.is_handshaking() && !server.is_handshaking(),
            "the TLS handshake did not finish"
        );
        client
            .peer_certificates()
            .expect("the server sent its chain")
            .to_vec()
    }

    fn pump(from: &mut rustls::Connection, to: &mut rustls::Connection) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).expect("write TLS records");
        }
        let mut rest = wire.as_slice();
        while !rest.is_empty() {
            to.read_tls(&mut rest).expect("read TLS records");
            to.process_new_packets().expect("the handshake goes on");
        }
    }

    /// Import a CA-issued server certificate for `key` (given as
    /// `key_pem`), check the reported key type, and serve a handshake.
    fn assert_imports(key: &KeyPair, key_pem: &str, algorithm: &str) {
        let ca = Ca::root("Test Root CA");
        let leaf = ca.issue(&server_params(), key);
        let cert = DeviceCert::from_pem(leaf.pem().as_bytes(), key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("{algorithm} refused: {e}"));
        assert_eq!(cert.info().key_algorithm, algorithm);
        assert!(!cert.info().self_signed);
        let received = handshake(cert.certified_key().expect("certified key"), &[ca.der()]);
        assert_eq!(received.first(), Some(leaf.der()), "{algorithm}");
    }

    /// An RSA public key of any size, to put in a certificate without
    /// generating its private half.
    struct RawRsaPublicKey(Vec<u8>);

    impl rcgen::PublicKeyData for RawRsaPublicKey {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }

        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_RSA_SHA256
        }
    }

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn self_signed_round_trips_through_save_and_load_with_private_modes() {
        let tmp = TempDir::new("round-trip");
        let dir = tmp.path().join("data").join("certs");
        let cert = DeviceCert::self_signed(
            &["localhost".to_owned()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )
        .expect("self-signed certificate");
        cert.save(&dir).expect("save");

        assert_eq!(mode(&dir), 0o700, "the directory is private");
        assert_eq!(mode(&dir.join(CERT_FILE)), 0o600);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert!(!dir.join(KEY_TEMP).exists() && !dir.join(CERT_TEMP).exists());
        let key_text = fs::read_to_string(dir.join(KEY_FILE)).expect("read key");
        assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(
            !fs::read_to_string(dir.join(CERT_FILE))
                .expect("read chain")
                .contains("KEY")
        );

        let loaded = DeviceCert::load(&dir)
            .expect("load")
            .expect("a stored certificate");
        assert_eq!(loaded.info(), cert.info());
        assert_eq!(
            loaded.info().sha256_fingerprint,
            cert.info().sha256_fingerprint
        );
        assert_eq!(loaded.chain_pem(), cert.chain_pem());
        // The stored key is the certificate's: it serves a handshake to a
        // client that trusts the original certificate.
        let original = cert.chain.first().expect("leaf").clone();
        handshake(loaded.certified_key().expect("certified key"), &[original]);
    }

    #[test]
    fn self_signed_certificate_names_the_host_and_uses_p256_for_a_year() {
        let names = vec!["nport".to_owned(), "localhost".to_owned()];
        let addresses: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "2001:db8::5".parse().expect("address"),
        ];
        let started = OffsetDateTime::now_utc().unix_timestamp();
        let cert = DeviceCert::self_signed(&names, &addresses).expect("self-signed certificate");
        let info = cert.info();

        assert_eq!(info.key_algorithm, "ECDSA P-256");
        assert!(info.subject.contains("CN=nport"), "{}", info.subject);
        assert_eq!(info.subject, info.issuer);
        assert!(info.self_signed);
        assert_eq!(info.chain_length, 1);
        assert_eq!(
            info.subject_alt_names,
            [
                "DNS:nport",
                "DNS:localhost",
                "IP:127.0.0.1",
                "IP:2001:db8::5"
            ]
        );
        let not_before = OffsetDateTime::parse(&info.not_before, &Rfc3339)
            .expect("RFC 3339 start")
            .unix_timestamp();
        assert!(
            (started - 3600 - not_before).abs() <= 5,
            "starts an hour ago"
        );
        assert_eq!(info.not_after_unix - not_before, SELF_SIGNED_DAYS * 86_400);
        assert_eq!(
            OffsetDateTime::parse(&info.not_after, &Rfc3339)
                .expect("RFC 3339 end")
                .unix_timestamp(),
            info.not_after_unix
        );
        assert!(info.not_after.ends_with('Z'), "UTC: {}", info.not_after);
        assert_eq!(info.serial.len(), 32, "16 bytes: {}", info.serial);
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);

        let leaf = cert.chain.first().expect("leaf");
        let (_, parsed) = X509Certificate::from_der(leaf.as_ref()).expect("parse");
        let ku = parsed.key_usage().expect("key usage").expect("present");
        assert!(ku.value.digital_signature());
        let eku = parsed.extended_key_usage().expect("eku").expect("present");
        assert!(eku.value.server_auth && !eku.value.client_auth);
        assert!(!parsed.is_ca());
    }

    #[test]
    fn self_signed_certificates_get_different_random_serials() {
        let a = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("first");
        let b = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("second");
        assert_ne!(a.info().serial, b.info().serial);
        assert_ne!(a.info().sha256_fingerprint, b.info().sha256_fingerprint);
    }

    #[test]
    fn self_signed_refuses_a_name_that_is_not_a_dns_name() {
        for bad in ["bad name", "", "-lead.example", "ünïcode", "a..b"] {
            let err =
                DeviceCert::self_signed(&[bad.to_owned()], &[]).expect_err("the name is refused");
            assert!(
                matches!(&err, CertError::InvalidName { name } if name == bad),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn self_signed_without_names_uses_the_first_address_as_common_name() {
        let cert = DeviceCert::self_signed(&[], &["192.0.2.9".parse().expect("address")])
            .expect("self-signed certificate");
        assert!(cert.info().subject.contains("CN=192.0.2.9"));
        assert_eq!(cert.info().subject_alt_names, ["IP:192.0.2.9"]);
    }

    #[test]
    fn certified_key_serves_a_real_rustls_handshake() {
        let cert = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("certificate");
        let leaf = cert.chain.first().expect("leaf").clone();
        let key = cert.certified_key().expect("certified key");
        assert!(key.keys_match().is_ok());
        let received = handshake(key, std::slice::from_ref(&leaf));
        assert_eq!(received, [leaf]);
    }

    #[test]
    fn info_matches_what_openssl_reports() {
        let tmp = TempDir::new("openssl-info");
        let cert = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("certificate");
        cert.save(tmp.path()).expect("save");
        let out = openssl(
            tmp.path(),
            &[
                "x509",
                "-in",
                CERT_FILE,
                "-noout",
                "-serial",
                "-fingerprint",
                "-sha256",
            ],
        );
        let info = cert.info();
        assert!(
            out.contains(&format!("serial={}", info.serial)),
            "{out} vs {info:?}"
        );
        assert!(
            out.contains(&format!("Fingerprint={}", info.sha256_fingerprint)),
            "{out} vs {info:?}"
        );
    }

    #[test]
    fn imports_rsa_2048_in_pkcs8_and_pkcs1_and_stores_the_pkcs1_form() {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            .expect("RSA-2048 key");
        let pkcs8 = key.serialize_pem();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_imports(&key, &pkcs8, "RSA 2048");
        let pkcs1 = traditional(&pkcs8, "RSA PRIVATE KEY");
        assert_imports(&key, &pkcs1, "RSA 2048");

        // The key is stored in the form it came in, and loads again.
        let ca = Ca::root("Test Root CA");
        let leaf = ca.issue(&server_params(), &key);
        let cert = DeviceCert::from_pem(leaf.pem().as_bytes(), pkcs1.as_bytes()).expect("import");
        let tmp = TempDir::new("pkcs1");
        cert.save(tmp.path()).expect("save");
        let stored = fs::read_to_string(tmp.path().join(KEY_FILE)).expect("read key");
        assert!(stored.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let loaded = DeviceCert::load(tmp.path()).expect("load").expect("stored");
        assert_eq!(loaded.info(), cert.info());
    }

    #[test]
    fn imports_rsa_3072_in_pkcs8_and_pkcs1() {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            .expect("RSA-3072 key");
        let pkcs8 = key.serialize_pem();
        assert_imports(&key, &pkcs8, "RSA 3072");
        assert_imports(&key, &traditional(&pkcs8, "RSA PRIVATE KEY"), "RSA 3072");
    }

    #[test]
    fn imports_ecdsa_p256_p384_p521_in_pkcs8_and_sec1() {
        for (alg, name) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "ECDSA P-256"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ECDSA P-384"),
            (&rcgen::PKCS_ECDSA_P521_SHA512, "ECDSA P-521"),
        ] {
            let key = KeyPair::generate_for(alg).expect("EC key");
            let pkcs8 = key.serialize_pem();
            assert_imports(&key, &pkcs8, name);
            assert_imports(&key, &traditional(&pkcs8, "EC PRIVATE KEY"), name);
        }
    }

    #[test]
    fn imports_ed25519_which_rustls_serves() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
        assert_imports(&key, &key.serialize_pem(), "Ed25519");
    }

    #[test]
    fn refuses_rsa_1024_naming_1024_and_2048() {
        let tmp = TempDir::new("rsa1024");
        openssl(
            tmp.path(),
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
                "key.pem",
            ],
        );
        openssl(
            tmp.path(),
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                "/CN=localhost",
                "-days",
                "30",
                "-out",
                "cert.pem",
            ],
        );
        let cert_pem = fs::read(tmp.path().join("cert.pem")).expect("read cert");
        let key_pem = fs::read_to_string(tmp.path().join("key.pem")).expect("read key");

        let err = DeviceCert::from_pem(&cert_pem, key_pem.as_bytes()).expect_err("refused");
        assert!(
            matches!(err, CertError::WeakRsaKey { bits: 1024 }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("1024") && message.contains("2048"),
            "{message}"
        );

        // The key alone is judged too, when the certificate is a good one:
        // aws-lc-rs's own refusal would not say why.
        let good_key = p256();
        let good_cert = Ca::root("Test Root CA").issue(&server_params(), &good_key);
        for weak_key in [key_pem.clone(), traditional(&key_pem, "RSA PRIVATE KEY")] {
            let err = DeviceCert::from_pem(good_cert.pem().as_bytes(), weak_key.as_bytes())
                .expect_err("refused");
            assert!(
                matches!(err, CertError::WeakRsaKey { bits: 1024 }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn refuses_rsa_keys_above_8192_bits() {
        let mut modulus = vec![0x00];
        modulus.extend(std::iter::repeat_n(0xc5u8, 9216 / 8));
        let exponent = [0x01, 0x00, 0x01];
        let public = RawRsaPublicKey(der(
            0x30,
            &[der(0x02, &modulus), der(0x02, &exponent)].concat(),
        ));
        let leaf = Ca::root("Test Root CA").issue(&server_params(), &public);
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), p256().serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(
            matches!(err, CertError::RsaKeyTooLarge { bits: 9216 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("8192"), "{err}");
    }

    #[test]
    fn refuses_a_key_that_belongs_to_another_certificate() {
        let ca = Ca::root("Test Root CA");
        let leaf = ca.issue(&server_params(), &p256());
        let other = p256();
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), other.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(matches!(err, CertError::KeyMismatch), "{err:?}");
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn says_so_when_the_chain_lists_the_ca_before_the_server_certificate() {
        let root = Ca::root("Test Root CA");
        let intermediate = root.intermediate("Test Intermediate CA");
        let key = p256();
        let leaf = intermediate.issue(&server_params(), &key);
        let reversed = format!("{}{}", intermediate.cert.pem(), leaf.pem());
        let err = DeviceCert::from_pem(reversed.as_bytes(), key.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(
            matches!(err, CertError::LeafNotFirst { position: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_an_expired_certificate_naming_its_end_date() {
        let key = p256();
        let mut params = server_params();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        let leaf = Ca::root("Test Root CA").issue(&params, &key);
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(matches!(err, CertError::Expired { .. }), "{err:?}");
        assert!(
            err.to_string().contains("expired on 2020-01-02T00:00:00Z"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_certificate_not_yet_valid_naming_its_start_date() {
        let key = p256();
        let mut params = server_params();
        params.not_before = rcgen::date_time_ymd(2099, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 12, 31);
        let leaf = Ca::root("Test Root CA").issue(&params, &key);
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(matches!(err, CertError::NotYetValid { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("not valid before 2099-01-01T00:00:00Z"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_certificate_for_client_authentication_only() {
        let key = p256();
        let mut params = server_params();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = Ca::root("Test Root CA").issue(&params, &key);
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(matches!(err, CertError::ExtendedKeyUsage), "{err:?}");
        assert!(err.to_string().contains("serverAuth"), "{err}");
    }

    #[test]
    fn refuses_a_key_usage_without_digital_signature() {
        let key = p256();
        let mut params = server_params();
        params.key_usages = vec![KeyUsagePurpose::KeyAgreement];
        let leaf = Ca::root("Test Root CA").issue(&params, &key);
        let err = DeviceCert::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect_err("refused");
        assert!(
            matches!(
                err,
                CertError::KeyUsage {
                    needed: "digitalSignature"
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn accepts_a_certificate_without_key_usage_extensions() {
        let key = p256();
        let mut params = server_params();
        params.key_usages = Vec::new();
        params.extended_key_usages = Vec::new();
        let ca = Ca::root("Test Root CA");
        let leaf = ca.issue(&params, &key);
        let cert = DeviceCert::from_pem(leaf.pem().as_bytes(), key.serialize_pem().as_bytes())
            .expect("accepted");
        handshake(cert.certified_key().expect("certified key"), &[ca.der()]);
    }

    #[test]
    fn refuses_garbage_pem_saying_what_is_missing() {
        let key = p256();
        let leaf = Ca::root("Test Root CA").issue(&server_params(), &key);
        let key_pem = key.serialize_pem();
        let cert_pem = leaf.pem();

        let err = DeviceCert::from_pem(b"", key_pem.as_bytes()).expect_err("empty");
        assert!(matches!(err, CertError::NoCertificate), "{err:?}");
        let err = DeviceCert::from_pem(b"hello, world\n", key_pem.as_bytes()).expect_err("text");
        assert!(matches!(err, CertError::NoCertificate), "{err:?}");
        // A key alone is not a certificate.
        let err = DeviceCert::from_pem(key_pem.as_bytes(), key_pem.as_bytes()).expect_err("key");
        assert!(matches!(err, CertError::NoCertificate), "{err:?}");
        let err = DeviceCert::from_pem(
            b"-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
            key_pem.as_bytes(),
        )
        .expect_err("bad base64");
        assert!(matches!(err, CertError::CertificatePem { .. }), "{err:?}");
        let err = DeviceCert::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n", key_pem.as_bytes())
            .expect_err("no end");
        assert!(matches!(err, CertError::CertificatePem { .. }), "{err:?}");
        let err = DeviceCert::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            key_pem.as_bytes(),
        )
        .expect_err("not X.509");
        assert!(
            matches!(err, CertError::BadCertificate { position: 1, .. }),
            "{err:?}"
        );

        let err = DeviceCert::from_pem(cert_pem.as_bytes(), b"").expect_err("no key");
        assert!(matches!(err, CertError::NoKey), "{err:?}");
        let err = DeviceCert::from_pem(cert_pem.as_bytes(), cert_pem.as_bytes())
            .expect_err("a certificate is not a key");
        assert!(matches!(err, CertError::NoKey), "{err:?}");
        let secret = "c2VjcmV0!!";
        let err = DeviceCert::from_pem(
            cert_pem.as_bytes(),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n")
                .as_bytes(),
        )
        .expect_err("bad key base64");
        assert!(matches!(err, CertError::KeyPem), "{err:?}");
        assert!(
            !err.to_string().contains(secret),
            "the key text is not echoed"
        );
        let err = DeviceCert::from_pem(
            cert_pem.as_bytes(),
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect_err("not a key");
        assert!(matches!(err, CertError::KeyUnusable { .. }), "{err:?}");

        for err in [
            CertError::NoCertificate,
            CertError::NoKey,
            CertError::KeyPem,
            CertError::KeyMismatch,
        ] {
            let message = err.to_string();
            assert!(
                message.contains("; ") && !message.ends_with('.'),
                "one sentence, problem then advice: {message}"
            );
        }
    }

    #[test]
    fn refuses_an_encrypted_key_telling_how_to_decrypt_it() {
        let tmp = TempDir::new("encrypted");
        let key = p256();
        let leaf = Ca::root("Test Root CA").issue(&server_params(), &key);
        fs::write(tmp.path().join("key.pem"), key.serialize_pem()).expect("write key");
        let pkcs8 = openssl(
            tmp.path(),
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "key.pem",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:secret",
            ],
        );
        assert!(pkcs8.contains("ENCRYPTED PRIVATE KEY"), "{pkcs8}");
        let legacy = openssl(
            tmp.path(),
            &[
                "pkey",
                "-in",
                "key.pem",
                "-traditional",
                "-aes256",
                "-passout",
                "pass:secret",
            ],
        );
        assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"), "{legacy}");
        for encrypted in [pkcs8, legacy] {
            let err = DeviceCert::from_pem(leaf.pem().as_bytes(), encrypted.as_bytes())
                .expect_err("refused");
            assert!(matches!(err, CertError::EncryptedKey), "{err:?}");
            assert!(err.to_string().contains("openssl pkey"), "{err}");
        }
    }

    #[test]
    fn accepts_a_chain_serves_it_and_exports_it_without_the_key() {
        let root = Ca::root("Test Root CA");
        let intermediate = root.intermediate("Test Intermediate CA");
        let key = p256();
        let leaf = intermediate.issue(&server_params(), &key);
        // Some people paste the key into the certificate text as well.
        let text = format!(
            "{}{}{}",
            leaf.pem(),
            intermediate.cert.pem(),
            key.serialize_pem()
        );
        let cert = DeviceCert::from_pem(text.as_bytes(), key.serialize_pem().as_bytes())
            .expect("chain accepted");
        let info = cert.info();
        assert_eq!(info.chain_length, 2);
        assert!(info.issuer.contains("Test Intermediate CA"), "{info:?}");
        assert!(!info.self_signed);

        let exported = cert.chain_pem();
        assert!(!exported.contains("KEY"), "no key in: {exported}");
        assert_eq!(exported.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        let decoded = CertificateDer::pem_slice_iter(exported.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("exported PEM decodes");
        assert_eq!(decoded, [leaf.der().clone(), intermediate.der()]);

        // A client that trusts only the root needs the intermediate: the
        // handshake succeeding shows the server sends the whole chain.
        let received = handshake(cert.certified_key().expect("certified key"), &[root.der()]);
        assert_eq!(received, decoded);
    }

    #[test]
    fn load_returns_none_when_nothing_is_stored() {
        let tmp = TempDir::new("empty");
        assert!(DeviceCert::load(tmp.path()).expect("load").is_none());
        assert!(
            DeviceCert::load(&tmp.path().join("missing"))
                .expect("load")
                .is_none()
        );
    }

    #[test]
    fn load_refuses_a_certificate_without_its_key() {
        let tmp = TempDir::new("half");
        let cert = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("certificate");
        cert.save(tmp.path()).expect("save");
        fs::remove_file(tmp.path().join(KEY_FILE)).expect("remove key");
        let err = DeviceCert::load(tmp.path()).expect_err("refused");
        assert!(
            matches!(&err, CertError::Incomplete { missing, .. } if missing.ends_with(KEY_FILE)),
            "{err:?}"
        );
        assert!(err.to_string().contains(KEY_FILE), "{err}");
    }

    #[test]
    fn load_names_the_file_when_the_stored_key_does_not_match() {
        let tmp = TempDir::new("mismatch");
        let a = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("a");
        let b = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("b");
        a.save(tmp.path()).expect("save");
        fs::write(tmp.path().join(KEY_FILE), b.key_pem()).expect("overwrite key");
        let err = DeviceCert::load(tmp.path()).expect_err("refused");
        assert!(
            matches!(&err, CertError::Stored { source, .. } if matches!(**source, CertError::KeyMismatch)),
            "{err:?}"
        );
        assert!(err.to_string().contains(CERT_FILE), "{err}");
    }

    #[test]
    fn load_keeps_serving_an_expired_certificate_that_import_refuses() {
        let tmp = TempDir::new("expired");
        let key = p256();
        let mut params = server_params();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        let leaf = Ca::root("Test Root CA").issue(&params, &key);
        fs::write(tmp.path().join(CERT_FILE), leaf.pem()).expect("write chain");
        fs::write(tmp.path().join(KEY_FILE), key.serialize_pem()).expect("write key");
        let loaded = DeviceCert::load(tmp.path()).expect("load").expect("stored");
        assert_eq!(loaded.info().not_after, "2020-01-02T00:00:00Z");
    }

    #[test]
    fn save_replaces_the_stored_certificate() {
        let tmp = TempDir::new("replace");
        let a = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("a");
        let b = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("b");
        a.save(tmp.path()).expect("save a");
        b.save(tmp.path()).expect("save b");
        let loaded = DeviceCert::load(tmp.path()).expect("load").expect("stored");
        assert_eq!(loaded.info(), b.info());
    }

    #[test]
    fn load_finishes_a_save_interrupted_between_the_two_renames() {
        let tmp = TempDir::new("roll-forward");
        let a = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("a");
        let b = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("b");
        a.save(tmp.path()).expect("save a");
        // What a crash after renaming b's key, before renaming its chain,
        // leaves behind.
        fs::write(tmp.path().join(KEY_FILE), b.key_pem()).expect("b's key in place");
        fs::write(tmp.path().join(CERT_TEMP), b.chain_pem()).expect("b's chain pending");

        let loaded = DeviceCert::load(tmp.path()).expect("load").expect("stored");
        assert_eq!(loaded.info(), b.info());
        assert!(!tmp.path().join(CERT_TEMP).exists());
        assert_eq!(
            fs::read_to_string(tmp.path().join(CERT_FILE)).expect("chain"),
            b.chain_pem()
        );
    }

    #[test]
    fn load_discards_a_save_interrupted_before_any_rename() {
        let tmp = TempDir::new("roll-back");
        let a = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("a");
        let b = DeviceCert::self_signed(&["localhost".to_owned()], &[]).expect("b");
        a.save(tmp.path()).expect("save a");
        // A crash while b's chain was being written.
        fs::write(tmp.path().join(KEY_TEMP), b.key_pem()).expect("b's key pending");
        let chain = b.chain_pem();
        fs::write(tmp.path().join(CERT_TEMP), &chain[..chain.len() / 2]).expect("half a chain");

        let loaded = DeviceCert::load(tmp.path()).expect("load").expect("stored");
        assert_eq!(loaded.info(), a.info());
        assert!(!tmp.path().join(KEY_TEMP).exists());
        assert!(!tmp.path().join(CERT_TEMP).exists());
    }

    #[test]
    fn host_identity_always_includes_localhost_and_both_loopback_addresses() {
        let (names, addresses) = host_identity();
        assert!(names.iter().any(|n| n == "localhost"), "{names:?}");
        assert!(names.iter().all(|n| is_dns_name(n)), "{names:?}");
        assert!(addresses.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(addresses.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let loopbacks = addresses.iter().filter(|a| a.is_loopback()).count();
        assert_eq!(loopbacks, 2, "only the two fixed loopbacks: {addresses:?}");
        assert!(
            addresses.iter().all(|a| match a {
                IpAddr::V4(v4) => !v4.is_link_local(),
                IpAddr::V6(v6) => !v6.is_unicast_link_local(),
            }),
            "{addresses:?}"
        );
        // What the host reports makes a valid certificate.
        let cert = DeviceCert::self_signed(&names, &addresses).expect("certificate");
        assert_eq!(
            cert.info().subject_alt_names.len(),
            names.len() + addresses.len()
        );
    }

    #[test]
    fn link_local_loopback_and_multicast_addresses_are_not_host_addresses() {
        for unreachable in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.10.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "febf::1",
            "::",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = unreachable.parse().expect("address");
            assert!(!is_reachable_host_address(ip), "{unreachable}");
        }
        for reachable in ["192.0.2.1", "10.1.2.3", "2001:db8::1", "fd00::1", "fec0::1"] {
            let ip: IpAddr = reachable.parse().expect("address");
            assert!(is_reachable_host_address(ip), "{reachable}");
        }
    }

    #[test]
    fn dns_names_follow_rfc_1123_labels() {
        for good in [
            "localhost",
            "nport-6450",
            "a.b.example",
            "x1",
            "123.example",
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 127].join(".") + ".bc";
        for bad in [
            "",
            ".",
            "a..b",
            "-a",
            "a-",
            "a_b",
            "a b",
            "*.example",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn pem_encoding_round_trips_every_padding_length() {
        for len in 0..=100usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let pem = pem_block("CERTIFICATE", &data);
            assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
            let (kind, decoded) =
                <(SectionKind, Vec<u8>)>::from_pem_slice(pem.as_bytes()).expect("decode");
            assert_eq!(kind, SectionKind::Certificate);
            assert_eq!(decoded, data, "length {len}");
        }
    }

    #[test]
    fn bit_length_ignores_sign_bytes_and_leading_zero_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x00, 0x00, 0x7f, 0xff]), 15);
    }
}
