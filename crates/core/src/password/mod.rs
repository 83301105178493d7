//! Passwords: the policy a new password must meet (seed §3.4 "Password
//! Policy", security requirement CR 1.7), the blocklist of common passwords
//! it always applies, and Argon2id hashing (CR 1.5, CVE-2023-5627).
//!
//! * [`policy`] — [`PasswordPolicy`] (the `security.password_policy` section)
//!   and its check, which lists every problem of a refused password at once;
//! * [`blocklist`]: [`is_common`], the 10,000 most common passwords and
//!   their simple variants;
//! * [`hash`]: [`PasswordHasher`], Argon2id with bounded concurrency, and
//!   the stored [`PasswordHash`].
//!
//! This module does not know accounts, the store or logins: callers pass the
//! account name and the time in, and keep the hash where they like.

pub mod blocklist;
pub mod hash;
pub mod policy;

pub use blocklist::is_common;
pub use hash::{HashError, PasswordHash, PasswordHasher};
pub(crate) use policy::read_policy;
pub use policy::{MAX_PASSWORD_CHARS, PasswordPolicy, PasswordProblem, PasswordRejected};
