//! Who may connect, and how much (seed §3.5 Allowlist, §3.7 DoS Defense):
//! the settings both planes' listeners are filtered by.
//!
//! * [`allowlist`]: address + netmask entries, per service, and the rule
//!   that a change may not shut out the address making it;
//! * [`dos`]: per-source and global connection caps, the accept-rate token
//!   bucket, the handshake timeout.
//!
//! These are configuration and decisions only; the engine's `gate` module
//! enforces them on sockets.

pub mod allowlist;
pub mod dos;

pub use allowlist::{
    AllowEntry, AllowEntryError, Allowlist, MAX_ALLOWLIST_ENTRIES, SelfLockout, ServiceKind,
};
pub use dos::DosSettings;

pub(crate) use allowlist::read_allowlist;
pub(crate) use dos::read_dos;
