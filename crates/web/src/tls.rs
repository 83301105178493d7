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
//!
//! [`DeviceTls`] keeps the device certificate following the host (seed
//! §3.3): a self-signed certificate is made again, at start and by
//! [`keep_renewed`] every minute while the server runs, when it is within
//! [`RENEW_BEFORE_DAYS`] of its end or the host's names or addresses no
//! longer match its subject alternative names (while running: once the
//! new ones have held for a check). An imported certificate is never
//! replaced; when the host gains a name or address it does not cover, the
//! daemon's log says so once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;
use ttyward_core::event_log::EventId;
use ttyward_core::service::Service;
use ttyward_core::store::now_s;

use crate::cert::{CertError, CertInfo, DeviceCert, RENEW_BEFORE_DAYS, host_identity};

/// How often the running server compares its self-signed certificate with
/// the host's names and addresses and its end date: a minute after an
/// address change (DHCP, a new interface) browsers get a certificate that
/// names it. The check is two system calls and a comparison.
pub const RENEWAL_PERIOD: Duration = Duration::from_secs(60);

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

    /// What the next handshake presents.
    pub fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The crypto provider every TLS endpoint of ttyward uses.
pub fn provider() -> CryptoProvider {
    // One provider for every TLS endpoint: the data channels' too.
    ttyward_engine::tls::provider()
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

/// The host's names and addresses, as a self-signed certificate names them
/// (see [`host_identity`]). Passed in, so that a test can move the host
/// without touching its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIdentity {
    /// DNS names.
    pub names: Vec<String>,
    /// IP addresses.
    pub addresses: Vec<IpAddr>,
}

impl HostIdentity {
    /// This host's, now.
    pub fn current() -> HostIdentity {
        let (names, addresses) = host_identity();
        HostIdentity { names, addresses }
    }

    /// As a certificate's subject alternative names are listed
    /// (`DNS:name`, `IP:address`), sorted.
    fn sans(&self) -> Vec<String> {
        let mut sans: Vec<String> = self
            .names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .chain(self.addresses.iter().map(|a| format!("IP:{a}")))
            .collect();
        sans.sort();
        sans.dedup();
        sans
    }
}

/// Why the self-signed certificate was made (again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewReason {
    /// No certificate was stored (first start, or its files were removed).
    Missing,
    /// The self-signed certificate ends within [`RENEW_BEFORE_DAYS`].
    Expiring {
        /// Its end, RFC 3339.
        not_after: String,
    },
    /// The host's names or addresses are no longer the certificate's.
    HostChanged {
        /// Names the host has and the certificate did not (`IP:…`, `DNS:…`).
        added: Vec<String>,
        /// Names the certificate had and the host no longer has.
        removed: Vec<String>,
    },
}

impl std::fmt::Display for RenewReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenewReason::Missing => f.write_str("no certificate was stored"),
            RenewReason::Expiring { not_after } => {
                write!(f, "the previous one ended on {not_after} or was about to")
            }
            RenewReason::HostChanged { added, removed } => {
                f.write_str("the host's names or addresses changed")?;
                if !added.is_empty() {
                    write!(f, "; new: {}", added.join(", "))?;
                }
                if !removed.is_empty() {
                    write!(f, "; gone: {}", removed.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// What a renewal check did.
// Made once a minute at most and looked at once: boxing the certificate's
// facts would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing: the certificate fits the host.
    Kept,
    /// A new self-signed certificate is stored and presented.
    Renewed {
        /// Why.
        reason: RenewReason,
        /// The new certificate.
        info: CertInfo,
    },
    /// The host gained names or addresses the imported certificate does
    /// not name (reported once per change; the certificate is kept).
    NotCovered {
        /// The new names and addresses it lacks (`IP:…`, `DNS:…`).
        missing: Vec<String>,
    },
}

impl Renewal {
    /// Tell the owner: a renewal is the `certificate-changed` event (the
    /// daemon did it, so it names no user); the first certificate, made
    /// when none was stored, replaces nothing and is only the daemon's
    /// log's; an imported certificate that no longer covers the host is a
    /// warning in the daemon's log.
    pub fn report(&self, service: &Service) {
        match self {
            Renewal::Kept => {}
            Renewal::Renewed {
                reason: RenewReason::Missing,
                info,
            } => tracing::info!(
                "made a self-signed certificate: SHA-256 {}",
                info.sha256_fingerprint
            ),
            Renewal::Renewed { reason, info } => {
                tracing::info!(
                    "made a self-signed certificate ({reason}): SHA-256 {}",
                    info.sha256_fingerprint
                );
                service.record(
                    EventId::CertificateChanged,
                    format!(
                        "made a self-signed certificate because {reason}: {} (SHA-256 {}), valid until {}",
                        info.subject, info.sha256_fingerprint, info.not_after
                    ),
                );
            }
            Renewal::NotCovered { missing } => tracing::warn!(
                "the imported device certificate does not name {}, which this host now has; browsers reaching the console that way will warn until a certificate naming it is imported",
                missing.join(", ")
            ),
        }
    }
}

/// The device certificate as the running server uses it: kept in a
/// directory (`DIR/certs`), presented through a [`CertSlot`], replaced
/// live.
#[derive(Debug)]
pub struct DeviceTls {
    dir: PathBuf,
    slot: Arc<CertSlot>,
    /// Held while a certificate is replaced (saved, then swapped), so that
    /// a renewal cannot overwrite an import made meanwhile, nor two saves
    /// meet in the directory.
    current: Mutex<DeviceCert>,
    /// The host as the last check saw it (to report an imported
    /// certificate's gaps once per change).
    seen: Mutex<HostIdentity>,
}

impl DeviceTls {
    /// Load the stored certificate, or make a self-signed one for this
    /// host's names and addresses and store it (seed §3.3: generated at
    /// first start); a stored self-signed one is made again when it no
    /// longer fits (see [`DeviceTls::check`]).
    pub fn open(dir: &Path) -> Result<Arc<DeviceTls>, CertError> {
        DeviceTls::open_for(dir, &HostIdentity::current(), now_s()).map(|(tls, _)| tls)
    }

    /// [`DeviceTls::open`] for a given host and time, telling what was done
    /// (for [`Renewal::report`]).
    pub fn open_for(
        dir: &Path,
        identity: &HostIdentity,
        now_unix: i64,
    ) -> Result<(Arc<DeviceTls>, Renewal), CertError> {
        let make = |reason: RenewReason| -> Result<(DeviceCert, Renewal), CertError> {
            let cert = DeviceCert::self_signed(&identity.names, &identity.addresses)?;
            cert.save(dir)?;
            let info = cert.info();
            Ok((cert, Renewal::Renewed { reason, info }))
        };
        let (cert, renewal) = match DeviceCert::load(dir)? {
            // An imported certificate is the user's to replace.
            Some(cert) => match renew_reason(&cert.info(), identity, now_unix) {
                None => (cert, Renewal::Kept),
                Some(reason) => make(reason)?,
            },
            None => make(RenewReason::Missing)?,
        };
        let slot = CertSlot::new(cert.certified_key()?);
        let tls = Arc::new(DeviceTls {
            dir: dir.to_owned(),
            slot,
            current: Mutex::new(cert),
            seen: Mutex::new(identity.clone()),
        });
        Ok((tls, renewal))
    }

    /// The slot a TLS server configuration resolves through.
    pub fn slot(&self) -> Arc<CertSlot> {
        Arc::clone(&self.slot)
    }

    /// The certificate presented now.
    pub fn current(&self) -> DeviceCert {
        self.lock_current().clone()
    }

    /// Store `cert` and present it from the next handshake on.
    pub fn replace(&self, cert: DeviceCert) -> Result<(), CertError> {
        let mut current = self.lock_current();
        self.install(&mut current, cert)
    }

    /// Compare the certificate with the host as `identity` describes it at
    /// `now_unix`: a self-signed certificate within [`RENEW_BEFORE_DAYS`]
    /// of its end, or whose names differ from the host's, is made again,
    /// stored and presented from the next handshake on (established
    /// connections keep theirs). A change of names is acted on once the
    /// host has looked the same on two checks in a row, so that an
    /// interface bouncing (a DHCP renewal, Wi-Fi) does not make two
    /// certificates, each a new browser warning. An imported certificate
    /// is never replaced; the first check after the host gained a name or
    /// address it does not name says so. On an error nothing changed, and
    /// the next check tries again.
    pub fn check(&self, identity: &HostIdentity, now_unix: i64) -> Result<Renewal, CertError> {
        let mut current = self.lock_current();
        let info = current.info();
        let previous = std::mem::replace(
            &mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner),
            identity.clone(),
        );
        let settled = previous.sans() == identity.sans();
        if info.self_signed {
            let reason = match renew_reason(&info, identity, now_unix) {
                None => return Ok(Renewal::Kept),
                Some(RenewReason::HostChanged { .. }) if !settled => return Ok(Renewal::Kept),
                Some(reason) => reason,
            };
            let cert = DeviceCert::self_signed(&identity.names, &identity.addresses)?;
            let info = cert.info();
            self.install(&mut current, cert)?;
            return Ok(Renewal::Renewed { reason, info });
        }
        if settled {
            return Ok(Renewal::Kept);
        }
        let before = previous.sans();
        let missing: Vec<String> = identity
            .sans()
            .into_iter()
            .filter(|san| !before.contains(san) && !covers(&info.subject_alt_names, san))
            .collect();
        Ok(if missing.is_empty() {
            Renewal::Kept
        } else {
            Renewal::NotCovered { missing }
        })
    }

    fn install(&self, current: &mut DeviceCert, cert: DeviceCert) -> Result<(), CertError> {
        let key = cert.certified_key()?;
        cert.save(&self.dir)?;
        self.slot.set(key);
        *current = cert;
        Ok(())
    }

    fn lock_current(&self) -> MutexGuard<'_, DeviceCert> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a self-signed certificate described by `info` must be made again
/// for `identity` at `now_unix`, if it must; never for an imported one.
fn renew_reason(info: &CertInfo, identity: &HostIdentity, now_unix: i64) -> Option<RenewReason> {
    if !info.self_signed {
        return None;
    }
    if info.not_after_unix - now_unix < RENEW_BEFORE_DAYS * 86_400 {
        return Some(RenewReason::Expiring {
            not_after: info.not_after.clone(),
        });
    }
    let wanted = identity.sans();
    let mut have = info.subject_alt_names.clone();
    have.sort();
    have.dedup();
    if have == wanted {
        return None;
    }
    Some(RenewReason::HostChanged {
        added: wanted
            .iter()
            .filter(|s| !have.contains(s))
            .cloned()
            .collect(),
        removed: have
            .iter()
            .filter(|s| !wanted.contains(s))
            .cloned()
            .collect(),
    })
}

/// Whether a certificate with `sans` is valid for `san` (`DNS:…` or
/// `IP:…`): named exactly, or a DNS name matched by a wildcard for its
/// leftmost label (RFC 6125 §6.4.3).
fn covers(sans: &[String], san: &str) -> bool {
    if sans.iter().any(|s| s.eq_ignore_ascii_case(san)) {
        return true;
    }
    let Some((_, parent)) = san.strip_prefix("DNS:").and_then(|n| n.split_once('.')) else {
        return false;
    };
    sans.iter().any(|s| {
        s.strip_prefix("DNS:*.")
            .is_some_and(|p| p.eq_ignore_ascii_case(parent))
    })
}

/// Until `cancel`: every `period`, [`DeviceTls::check`] the certificate
/// against `identity()` and hand every renewal or uncovered change to
/// `report`. A failed check is logged (once until it fails differently)
/// and tried again at the next period. The daemon runs it beside the web
/// server and stops it with the server.
pub async fn keep_renewed(
    tls: Arc<DeviceTls>,
    period: Duration,
    mut identity: impl FnMut() -> HostIdentity,
    mut report: impl FnMut(&Renewal),
    cancel: CancellationToken,
) {
    // The first check is a period after start: `open` has just made one.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match tls.check(&identity(), now_s()) {
            Ok(Renewal::Kept) => last_error = None,
            Ok(renewal) => {
                last_error = None;
                report(&renewal);
            }
            Err(e) => {
                let message = e.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        "the device certificate could not be renewed ({message}); trying again every {} s",
                        period.as_secs()
                    );
                    last_error = Some(message);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ttyward-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// A host named `name` with `addresses` plus the loopbacks.
    fn host(name: &str, addresses: &[&str]) -> HostIdentity {
        let mut all: Vec<IpAddr> = addresses.iter().map(|a| ip(a)).collect();
        all.extend([ip("127.0.0.1"), ip("::1")]);
        HostIdentity {
            names: vec![name.to_owned(), "localhost".to_owned()],
            addresses: all,
        }
    }

    /// The certificate the slot presents to the next handshake.
    fn presented(tls: &DeviceTls) -> Vec<u8> {
        tls.slot()
            .get()
            .end_entity_cert()
            .expect("a certificate")
            .as_ref()
            .to_vec()
    }

    fn sans(identity: &HostIdentity) -> Vec<String> {
        identity.sans()
    }

    /// A certificate for `device.example` issued by a test CA.
    fn imported() -> DeviceCert {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(vec![
            "device.example".to_owned(),
            "*.lab.example".to_owned(),
        ])
        .expect("params");
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress(ip("192.0.2.10")));
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, "device.example");
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        DeviceCert::from_pem(
            leaf_cert.pem().as_bytes(),
            leaf_key.serialize_pem().as_bytes(),
        )
        .expect("import")
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
        let imported = imported();
        imported.save(&dir).expect("save");
        let now = DeviceTls::open(&dir).expect("open").current().info();
        assert_eq!(now.sha256_fingerprint, imported.info().sha256_fingerprint);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_says_what_it_made() {
        let dir = tempdir("first");
        let a = host("nport", &["192.0.2.1"]);
        let (_, renewal) = DeviceTls::open_for(&dir, &a, now_s()).expect("open");
        assert!(
            matches!(&renewal, Renewal::Renewed { reason: RenewReason::Missing, info } if info.subject_alt_names.len() == 5),
            "{renewal:?}"
        );
        let (_, renewal) = DeviceTls::open_for(&dir, &a, now_s()).expect("open");
        assert_eq!(renewal, Renewal::Kept);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn check_renews_the_self_signed_certificate_when_the_host_moves() {
        let dir = tempdir("check-moved");
        let before = host("nport", &["192.0.2.1"]);
        let (tls, _) = DeviceTls::open_for(&dir, &before, now_s()).expect("open");
        let old = presented(&tls);
        assert_eq!(tls.check(&before, now_s()).expect("check"), Renewal::Kept);
        assert_eq!(presented(&tls), old, "nothing changed, nothing renewed");

        // An address that comes and goes before the next check changes
        // nothing.
        let after = host("nport", &["192.0.2.1", "198.51.100.7"]);
        assert_eq!(tls.check(&after, now_s()).expect("check"), Renewal::Kept);
        assert_eq!(tls.check(&before, now_s()).expect("check"), Renewal::Kept);
        assert_eq!(presented(&tls), old, "a bounce renews nothing");

        // One that stays: renewed at the second check that sees it.
        assert_eq!(tls.check(&after, now_s()).expect("check"), Renewal::Kept);
        let renewal = tls.check(&after, now_s()).expect("check");
        let Renewal::Renewed {
            reason: RenewReason::HostChanged { added, removed },
            info,
        } = renewal
        else {
            panic!("not renewed: {renewal:?}");
        };
        assert_eq!(added, ["IP:198.51.100.7"]);
        assert!(removed.is_empty(), "{removed:?}");
        let mut names = info.subject_alt_names.clone();
        names.sort();
        assert_eq!(names, sans(&after));
        // Presented from the next handshake on, and stored for the next
        // start.
        assert_ne!(presented(&tls), old);
        assert_eq!(
            presented(&tls),
            tls.current()
                .certified_key()
                .expect("key")
                .end_entity_cert()
                .expect("leaf")
                .as_ref()
        );
        let stored = DeviceCert::load(&dir).expect("load").expect("stored");
        assert_eq!(stored.info(), info);
        assert_eq!(tls.check(&after, now_s()).expect("check"), Renewal::Kept);

        // An address going away renews too.
        let gone = host("nport", &["198.51.100.7"]);
        assert_eq!(tls.check(&gone, now_s()).expect("check"), Renewal::Kept);
        let renewal = tls.check(&gone, now_s()).expect("check");
        assert!(
            matches!(&renewal, Renewal::Renewed { reason: RenewReason::HostChanged { added, removed }, .. }
                if added.is_empty() && removed == &["IP:192.0.2.1"]),
            "{renewal:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn check_renews_a_self_signed_certificate_near_its_end() {
        let dir = tempdir("check-expiring");
        let same = host("nport", &[]);
        let (tls, _) = DeviceTls::open_for(&dir, &same, now_s()).expect("open");
        let old = tls.current().info();
        let day = 86_400;
        let just_outside = old.not_after_unix - RENEW_BEFORE_DAYS * day - 60;
        assert_eq!(
            tls.check(&same, just_outside).expect("check"),
            Renewal::Kept
        );
        let within = old.not_after_unix - RENEW_BEFORE_DAYS * day + 60;
        let renewal = tls.check(&same, within).expect("check");
        assert!(
            matches!(&renewal, Renewal::Renewed { reason: RenewReason::Expiring { not_after }, .. } if *not_after == old.not_after),
            "{renewal:?}"
        );
        assert_ne!(
            tls.current().info().sha256_fingerprint,
            old.sha256_fingerprint
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn check_never_replaces_an_imported_certificate_and_reports_each_gap_once() {
        let dir = tempdir("check-imported");
        let imported = imported();
        imported.save(&dir).expect("save");
        let before = host("device", &["192.0.2.10"]);
        let (tls, renewal) = DeviceTls::open_for(&dir, &before, now_s()).expect("open");
        assert_eq!(renewal, Renewal::Kept);
        let presented_before = presented(&tls);

        // New addresses and names: one the certificate names (by
        // wildcard), two it does not; reported once.
        let mut after = host("device", &["192.0.2.10", "198.51.100.7"]);
        after.names.push("a.lab.example".to_owned());
        after.names.push("b.other.example".to_owned());
        let renewal = tls.check(&after, now_s()).expect("check");
        assert_eq!(
            renewal,
            Renewal::NotCovered {
                missing: vec!["DNS:b.other.example".into(), "IP:198.51.100.7".into()]
            }
        );
        assert_eq!(tls.check(&after, now_s()).expect("check"), Renewal::Kept);
        // Even when it is about to end.
        let late = imported.info().not_after_unix - 60;
        assert_eq!(tls.check(&after, late).expect("check"), Renewal::Kept);
        // An address going away is no gap.
        assert_eq!(tls.check(&before, now_s()).expect("check"), Renewal::Kept);

        assert_eq!(presented(&tls), presented_before);
        assert_eq!(
            tls.current().info().sha256_fingerprint,
            imported.info().sha256_fingerprint
        );
        let stored = DeviceCert::load(&dir).expect("load").expect("stored");
        assert_eq!(stored.info(), imported.info());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renewal_task_swaps_the_certificate_and_stops_when_cancelled() {
        let dir = tempdir("task");
        let before = host("nport", &["192.0.2.1"]);
        let (tls, _) = DeviceTls::open_for(&dir, &before, now_s()).expect("open");
        let old = presented(&tls);
        let after = host("nport", &["203.0.113.9"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (reports, mut reported) = tokio::sync::mpsc::unbounded_channel();
            let cancel = CancellationToken::new();
            let task = tokio::spawn(keep_renewed(
                Arc::clone(&tls),
                Duration::from_millis(10),
                {
                    let after = after.clone();
                    move || after.clone()
                },
                move |r| {
                    let _ = reports.send(r.clone());
                },
                cancel.clone(),
            ));
            let renewal = tokio::time::timeout(Duration::from_secs(10), reported.recv())
                .await
                .expect("a renewal within 10 s")
                .expect("a report");
            assert!(
                matches!(
                    &renewal,
                    Renewal::Renewed {
                        reason: RenewReason::HostChanged { .. },
                        ..
                    }
                ),
                "{renewal:?}"
            );
            cancel.cancel();
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the task ends when cancelled")
                .expect("the task did not panic");
            // Its sender is gone with it: nothing else was reported.
            assert!(reported.recv().await.is_none());
        });
        assert_ne!(presented(&tls), old);
        let mut names = tls.current().info().subject_alt_names;
        names.sort();
        assert_eq!(names, sans(&after));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        let sans = vec!["DNS:*.lab.example".to_owned(), "IP:192.0.2.1".to_owned()];
        assert!(covers(&sans, "DNS:a.lab.example"));
        assert!(covers(&sans, "DNS:A.LAB.example"));
        assert!(!covers(&sans, "DNS:a.b.lab.example"));
        assert!(!covers(&sans, "DNS:lab.example"));
        assert!(covers(&sans, "IP:192.0.2.1"));
        assert!(!covers(&sans, "IP:192.0.2.2"));
    }
}
