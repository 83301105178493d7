//! Password hashing with Argon2id (security requirement CR 1.5; the
//! answer to CVE-2023-5627's recoverable password storage).
//!
//! Parameters follow OWASP's Argon2id baseline: m = 19456 KiB, t = 2,
//! p = 1, a 16-byte salt from the OS and a 32-byte output, stored as a PHC
//! string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). Verification reads
//! the parameters from the stored string, so they can be raised later and
//! old hashes still verify ([`PasswordHash::needs_rehash`] tells when to
//! store a new one).
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU, so the async side
//! ([`PasswordHasher`]) runs on tokio's blocking pool behind a semaphore: a
//! burst of logins queues instead of exhausting memory or starving the
//! serial data path. The `*_blocking` functions are for the command line.
//!
//! Not here: which account a hash belongs to, the policy a password must
//! meet ([`super::policy`]), login lockout. Passwords are copied into the
//! blocking task and not zeroed afterwards (no `zeroize` dependency yet).

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use super::policy::MAX_PASSWORD_CHARS;

/// Argon2 memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19_456;
/// Argon2 passes over the memory.
pub const T_COST: u32 = 2;
/// Argon2 lanes.
pub const P_COST: u32 = 1;

const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

/// A password longer than this many bytes cannot be one that
/// [`MAX_PASSWORD_CHARS`] let through, so it is refused without hashing.
const MAX_PASSWORD_BYTES: usize = MAX_PASSWORD_CHARS * 4;

// A stored hash names its own cost. One from a damaged store or an import
// could ask for gigabytes and hang or kill the daemon; anything above these
// limits (13× today's memory, 8× its passes) is refused instead.
const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;
const MAX_VERIFY_T_COST: u32 = 16;
const MAX_VERIFY_P_COST: u32 = 16;

const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_BYTES)) {
    Ok(params) => params,
    // Evaluated at compile time: a bad constant fails the build.
    Err(_) => panic!("invalid Argon2 parameters"),
};

/// The hash of a random password nobody knows, with today's parameters:
/// [`PasswordHasher::verify_dummy`] verifies against it so that an unknown
/// account name costs exactly as much as a known one.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$MlLdAwKWktgD8k5DjOERHQ$gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMNU";

/// Hashes and verifies passwords off the async runtime, at most
/// `max_concurrent` at a time. Cloning is cheap and clones share the limit.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once (at least
    /// one; each needs 19 MiB while it runs).
    pub fn new(max_concurrent: usize) -> Self {
        let permits = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        PasswordHasher {
            permits: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Hash a new password with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<PasswordHash, HashError> {
        let password = password.to_owned();
        self.run(move || PasswordHasher::hash_blocking(&password))
            .await
            .unwrap_or(Err(HashError::TaskFailed))
    }

    /// Whether `password` matches `hash`. A malformed or unsupported stored
    /// hash, or one asking for an unreasonable cost, gives `false`.
    pub async fn verify(&self, password: &str, hash: &PasswordHash) -> bool {
        self.verify_phc(password, hash.as_str()).await
    }

    /// Spend what a [`verify`](Self::verify) costs and return `false`: for
    /// login attempts with an unknown account name, so that response times
    /// do not tell which names exist.
    pub async fn verify_dummy(&self, password: &str) -> bool {
        // The result is false unless someone guessed a random 256-bit
        // password; it is discarded all the same.
        let _ = self.verify_phc(password, DUMMY_PHC).await;
        false
    }

    /// [`hash`](Self::hash) on the calling thread, without the concurrency
    /// limit: for the command line, never from async code.
    pub fn hash_blocking(password: &str) -> Result<PasswordHash, HashError> {
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(HashError::TooLong {
                max_chars: MAX_PASSWORD_CHARS,
            });
        }
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|source| HashError::Rng { source })?;
        let phc = argon2id()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|source| HashError::Argon2 { source })?;
        Ok(PasswordHash(phc.to_string()))
    }

    /// [`verify`](Self::verify) on the calling thread, without the
    /// concurrency limit: for the command line, never from async code.
    pub fn verify_blocking(password: &str, hash: &PasswordHash) -> bool {
        verify_now(password, hash.as_str())
    }

    async fn verify_phc(&self, password: &str, stored: &str) -> bool {
        // Refused before queueing: such a password was never accepted, and
        // a flood of huge ones must not occupy the hashing slots. The same
        // check happens for real and dummy verifications.
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let password = password.to_owned();
        let stored = stored.to_owned();
        self.run(move || verify_now(&password, &stored))
            .await
            .unwrap_or(false)
    }

    /// Run `work` on the blocking pool once a permit is free; `None` if the
    /// task died (a panic, or the runtime shutting down).
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        // The permit moves into the task: if the caller stops waiting, the
        // hash still runs to its end and keeps its slot until then, so the
        // limit holds for memory actually in use.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .ok()
    }
}

fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

fn verify_now(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = phc::PasswordHash::new(stored) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    // Algorithm, version and parameters come from the stored string; the
    // output comparison is constant-time.
    argon2id()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A stored password hash: a PHC string. Its `Debug` shows the algorithm
/// and parameters only, never the salt or the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wrap a PHC string read from the store. Not checked here: a malformed
    /// one simply never verifies.
    pub fn from_stored(phc: String) -> Self {
        PasswordHash(phc)
    }

    /// The PHC string, for the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the hash was made with other parameters than today's, so the
    /// password should be hashed again after a successful login.
    pub fn needs_rehash(&self) -> bool {
        let Ok(parsed) = phc::PasswordHash::new(&self.0) else {
            return true;
        };
        let current = Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == M_COST_KIB
                && p.t_cost() == T_COST
                && p.p_cost() == P_COST
                && p.output_len() == Some(OUTPUT_BYTES)
        });
        !(current
            && parsed.algorithm == argon2::ARGON2ID_IDENT
            && parsed.version == Some(Version::V0x13.into())
            && parsed.salt.is_some_and(|s| s.len() >= SALT_BYTES))
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PasswordHash");
        match phc::PasswordHash::new(&self.0) {
            Ok(parsed) => d
                .field("algorithm", &parsed.algorithm.as_str())
                .field("version", &parsed.version)
                .field("params", &parsed.params.as_str()),
            Err(_) => d.field("malformed", &true),
        };
        d.finish_non_exhaustive()
    }
}

/// Hashing a new password failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The password is longer than any policy accepts.
    #[error("the password is longer than {max_chars} characters; choose a shorter one")]
    TooLong {
        /// [`MAX_PASSWORD_CHARS`].
        max_chars: usize,
    },
    /// No salt: the OS random number generator failed.
    #[error(
        "the operating system's random number generator failed ({source}); check that getrandom(2) works on this host and retry"
    )]
    Rng {
        /// The error from `getrandom`.
        source: getrandom::Error,
    },
    /// Argon2 refused its inputs (a bug: the parameters are fixed).
    #[error("Argon2 could not hash the password ({source}); this is a bug, please report it")]
    Argon2 {
        /// The error from `argon2`.
        source: argon2::password_hash::Error,
    },
    /// The hashing task stopped before finishing.
    #[error(
        "the password hashing task stopped before finishing (is the daemon shutting down?); retry"
    )]
    TaskFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

    #[tokio::test]
    async fn hash_then_verify_accepts_right_password_and_refuses_wrong_one() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("fjord walnut lighthouse").await.expect("hash");
        assert!(hasher.verify("fjord walnut lighthouse", &hash).await);
        assert!(!hasher.verify("fjord walnut lighthouse ", &hash).await);
        assert!(!hasher.verify("", &hash).await);
    }

    #[test]
    fn hash_is_argon2id_phc_with_random_16_byte_salt() {
        let a = PasswordHasher::hash_blocking("same password").expect("hash");
        let b = PasswordHasher::hash_blocking("same password").expect("hash");
        for h in [&a, &b] {
            assert!(h.as_str().starts_with(PHC_PREFIX), "{}", h.as_str());
            let parsed = phc::PasswordHash::new(h.as_str()).expect("phc");
            assert_eq!(parsed.salt.map(|s| s.len()), Some(16));
            assert_eq!(parsed.hash.map(|o| o.len()), Some(32));
            assert!(!h.needs_rehash());
        }
        assert_ne!(a, b, "salts differ");
    }

    #[test]
    fn unicode_password_round_trips() {
        let password = "Grüße, 東京の灯台 🐟";
        let hash = PasswordHasher::hash_blocking(password).expect("hash");
        assert!(PasswordHasher::verify_blocking(password, &hash));
        // Another normalisation of "ü" is another password.
        assert!(!PasswordHasher::verify_blocking(
            "Gru\u{308}ße, 東京の灯台 🐟",
            &hash
        ));
    }

    #[tokio::test]
    async fn malformed_or_unreasonable_stored_hash_never_verifies() {
        let hasher = PasswordHasher::new(1);
        let cases = [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$MlLdAwKWktgD8k5DjOERHQ$",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!$gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMNU",
            "$argon2id$v=19$m=99999999,t=2,p=1$MlLdAwKWktgD8k5DjOERHQ$gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMNU",
            "$argon2id$v=19$m=19456,t=4000000000,p=1$MlLdAwKWktgD8k5DjOERHQ$gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMNU",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$argon2id$v=19$m=19456,t=2,p=1$MlLdAwKWktgD8k5DjOERHQ$gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMN\u{0}",
        ];
        for stored in cases {
            let hash = PasswordHash::from_stored(stored.to_owned());
            assert!(!hasher.verify("anything", &hash).await, "{stored:?}");
            assert!(hash.needs_rehash(), "{stored:?}");
            assert!(format!("{hash:?}").starts_with("PasswordHash"));
        }
    }

    #[tokio::test]
    async fn verify_dummy_is_false_and_uses_todays_parameters() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify_dummy("anything").await);
        let dummy = PasswordHash::from_stored(DUMMY_PHC.to_owned());
        // Same cost as verifying a hash made today.
        assert!(!dummy.needs_rehash());
    }

    #[tokio::test]
    async fn oversized_password_is_refused_without_hashing() {
        let hasher = PasswordHasher::new(1);
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let dummy = PasswordHash::from_stored(DUMMY_PHC.to_owned());
        // No permit is free, so this returns only because it never queues.
        let _held = Arc::clone(&hasher.permits)
            .acquire_owned()
            .await
            .expect("permit");
        assert!(!hasher.verify(&huge, &dummy).await);
        assert!(!hasher.verify_dummy(&huge).await);
        assert!(matches!(
            PasswordHasher::hash_blocking(&"x".repeat(MAX_PASSWORD_CHARS + 1)),
            Err(HashError::TooLong { max_chars: 1024 })
        ));
    }

    #[tokio::test]
    async fn hashing_waits_for_a_free_slot() {
        let hasher = PasswordHasher::new(1);
        let held = Arc::clone(&hasher.permits)
            .acquire_owned()
            .await
            .expect("permit");
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash("fjord walnut lighthouse").await })
        };
        // With the only permit held here, the hash cannot have started,
        // however long the scheduler lets it try.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        assert_eq!(hasher.permits.available_permits(), 0);
        drop(held);
        let hash = waiting.await.expect("join").expect("hash");
        assert!(PasswordHasher::verify_blocking(
            "fjord walnut lighthouse",
            &hash
        ));
        assert_eq!(hasher.permits.available_permits(), 1);
    }

    #[test]
    fn debug_shows_parameters_but_not_salt_or_hash() {
        let hash = PasswordHash::from_stored(DUMMY_PHC.to_owned());
        let debug = format!("{hash:?}");
        assert!(
            debug.contains("argon2id") && debug.contains("m=19456,t=2,p=1"),
            "{debug}"
        );
        assert!(!debug.contains("MlLdAwKWktgD8k5DjOERHQ"), "{debug}");
        assert!(
            !debug.contains("gZNyDyN1kZMLm0Gs3oMaVrKtDke7BUZiseci2bzBMNU"),
            "{debug}"
        );
    }

    #[test]
    fn older_parameters_still_verify_but_ask_for_a_rehash() {
        let weak = Params::new(64, 1, 1, Some(OUTPUT_BYTES)).expect("params");
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak)
            .hash_password_with_salt(b"fjord walnut", &[7u8; SALT_BYTES])
            .expect("hash")
            .to_string();
        let hash = PasswordHash::from_stored(phc);
        assert!(PasswordHasher::verify_blocking("fjord walnut", &hash));
        assert!(!PasswordHasher::verify_blocking("fjord walnu", &hash));
        assert!(hash.needs_rehash());
    }

    #[test]
    fn zero_concurrency_still_allows_one_hash() {
        assert_eq!(PasswordHasher::new(0).permits.available_permits(), 1);
    }
}
