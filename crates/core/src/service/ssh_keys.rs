//! SSH public keys for the reverse SSH consoles: which keys an account may
//! log in with instead of its password, and the public-key login itself.
//!
//! A key is stored as its normalised OpenSSH line "type base64" (the
//! comment apart), unique per account, and goes with its account when that
//! is deleted. Accepted: Ed25519, ECDSA (P-256/384/521) and RSA of at least
//! 2048 bits (signed with rsa-sha2 only; the SSH server refuses SHA-1).
//! Not accepted: `authorized_keys` options (`from=`, `command=` ...),
//! certificates and security-key (`sk-`) keys.
//!
//! An account manages its own keys; `accounts.change` manages anyone's
//! (`accounts.view` lists them). A public-key login goes through the same
//! lockout as a password (a locked account or source is refused even with
//! the right key) and is recorded the same way.

use base64ct::Encoding as _;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Caller, Interface, LoginOk, Service, ServiceError, Source};
use crate::account::{self, Account};
use crate::event_log::EventId;
use crate::lockout;
use crate::permission::Permission;
use crate::store::{format_time as fmt_time, now_s};

/// Keys one account may have.
pub const MAX_KEYS_PER_ACCOUNT: i64 = 32;
/// Longest comment kept with a key.
const MAX_COMMENT_CHARS: usize = 128;
/// Longest key line accepted (a 16384-bit RSA key is about 2.8 KB).
const MAX_LINE: usize = 8 * 1024;
/// Shortest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// An authorized key as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SshKeyInfo {
    /// Row id (to remove it).
    pub id: i64,
    /// The account it belongs to.
    pub account: String,
    /// The key, "type base64".
    pub key: String,
    /// The comment given with it (often user@host).
    pub comment: String,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// When it was added (Unix seconds).
    pub created_at: i64,
}

/// A public key line, checked and normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyLine {
    /// "type base64", base64 re-encoded canonically.
    pub key: String,
    /// What followed the key on the line, trimmed (may be empty).
    pub comment: String,
    /// `SHA256:...` of the key blob.
    pub fingerprint: String,
}

/// Why a public key line is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadKey(String);

impl BadKey {
    fn new(why: impl Into<String>) -> BadKey {
        BadKey(why.into())
    }
}

/// Key types accepted.
const KEY_TYPES: [&str; 5] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// Check an OpenSSH public key line ("type base64 [comment]", as in a
/// `.pub` file) and normalise it.
pub fn parse_public_key(line: &str) -> Result<PublicKeyLine, BadKey> {
    let line = line.trim();
    if line.len() > MAX_LINE {
        return Err(BadKey::new(format!(
            "the key line is longer than {MAX_LINE} bytes; give one public key (the .pub file)"
        )));
    }
    let mut parts = line.splitn(3, char::is_whitespace);
    let kind = parts.next().unwrap_or_default();
    if !KEY_TYPES.contains(&kind) {
        let why = if kind.starts_with("sk-") {
            "security-key (sk-) keys are not supported; use an ed25519, ecdsa or rsa key".to_owned()
        } else if kind.contains("-cert-v01@openssh.com") {
            "certificates are not supported; give the plain public key".to_owned()
        } else if kind.contains('=') || kind.contains(',') {
            "authorized_keys options (from=, command=, ...) are not supported; give the key alone"
                .to_owned()
        } else if kind.is_empty() {
            "no key given; give an OpenSSH public key line such as the contents of id_ed25519.pub"
                .to_owned()
        } else {
            format!(
                "unsupported key type {:?}; use one of: {}",
                kind.chars().take(40).collect::<String>(),
                KEY_TYPES.join(", ")
            )
        };
        return Err(BadKey(why));
    }
    let data = parts.next().unwrap_or_default();
    let blob = base64ct::Base64::decode_vec(data)
        .map_err(|_| BadKey::new("the key's base64 part is damaged; copy the whole .pub line"))?;
    check_blob(kind, &blob)?;
    let comment = parts.next().unwrap_or_default().trim();
    if comment.chars().count() > MAX_COMMENT_CHARS || comment.chars().any(char::is_control) {
        return Err(BadKey::new(format!(
            "the comment after the key must be at most {MAX_COMMENT_CHARS} printable characters"
        )));
    }
    Ok(PublicKeyLine {
        key: format!("{kind} {}", base64ct::Base64::encode_string(&blob)),
        comment: comment.to_owned(),
        fingerprint: fingerprint_of(&blob),
    })
}

/// `SHA256:...` of a normalised key ("type base64"); empty if it is not one.
pub fn fingerprint(key: &str) -> String {
    key.split_once(' ')
        .and_then(|(_, b64)| base64ct::Base64::decode_vec(b64).ok())
        .map(|blob| fingerprint_of(&blob))
        .unwrap_or_default()
}

fn fingerprint_of(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64ct::Base64Unpadded::encode_string(&Sha256::digest(blob))
    )
}

/// The key blob (RFC 4253 §6.6) must be of the type the line names, whole,
/// and an RSA modulus at least [`MIN_RSA_BITS`] long.
fn check_blob(kind: &str, blob: &[u8]) -> Result<(), BadKey> {
    let damaged = || BadKey::new("the key data is damaged; copy the whole .pub line");
    let mut r = blob;
    if ssh_string(&mut r).ok_or_else(damaged)? != kind.as_bytes() {
        return Err(BadKey::new(
            "the key data is of another type than the line says",
        ));
    }
    match kind {
        "ssh-ed25519" => {
            if ssh_string(&mut r).ok_or_else(damaged)?.len() != 32 {
                return Err(damaged());
            }
        }
        "ssh-rsa" => {
            let _e = ssh_string(&mut r).ok_or_else(damaged)?;
            let n = ssh_string(&mut r).ok_or_else(damaged)?;
            let n = match n.iter().position(|&b| b != 0) {
                Some(i) => n.get(i..).unwrap_or_default(),
                None => &[],
            };
            let bits = n.first().map_or(0, |&top| {
                (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
            });
            if bits < MIN_RSA_BITS {
                return Err(BadKey::new(format!(
                    "RSA keys shorter than {MIN_RSA_BITS} bits are refused (this one has {bits}); make a new key with ssh-keygen -t ed25519"
                )));
            }
        }
        _ => {
            // ecdsa-sha2-<curve>: the curve name again, then the point.
            let curve = kind.trim_start_matches("ecdsa-sha2-");
            if ssh_string(&mut r).ok_or_else(damaged)? != curve.as_bytes() {
                return Err(damaged());
            }
            ssh_string(&mut r).ok_or_else(damaged)?;
        }
    }
    if r.is_empty() { Ok(()) } else { Err(damaged()) }
}

/// One SSH `string` (u32 length, bytes) from the front of `r`.
fn ssh_string<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = r.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (s, rest) = rest.split_at_checked(len)?;
    *r = rest;
    Some(s)
}

impl Service {
    /// The keys of `account_name`: one's own, or anyone's with
    /// `accounts.view`.
    pub async fn ssh_keys(
        &self,
        caller: &Caller,
        account_name: &str,
    ) -> Result<Vec<SshKeyInfo>, ServiceError> {
        let target = self.account_named(account_name).await?;
        require_own_or(caller, &target, Permission::AccountsView)?;
        let (id, name) = (target.id, target.name.clone());
        Ok(self.inner.store.call(move |c| list(c, id, &name)).await?)
    }

    /// Authorize a public key (an OpenSSH `.pub` line) for `account_name`:
    /// one's own, or anyone's with `accounts.change`.
    pub async fn add_ssh_key(
        &self,
        caller: &Caller,
        account_name: &str,
        line: &str,
    ) -> Result<SshKeyInfo, ServiceError> {
        let target = self.account_named(account_name).await?;
        require_own_or(caller, &target, Permission::AccountsChange)?;
        let parsed = parse_public_key(line).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let (id, name, p) = (target.id, target.name.clone(), parsed.clone());
        let added = self
            .inner
            .store
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let count: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM ssh_keys WHERE account_id = ?1",
                    params![id],
                    |r| r.get(0),
                )?;
                let exists: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM ssh_keys WHERE account_id = ?1 AND key = ?2",
                        params![id, p.key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(existing) = exists {
                    return Ok(Err(format!(
                        "account '{name}' has this key already (key {existing})"
                    )));
                }
                if count >= MAX_KEYS_PER_ACCOUNT {
                    return Ok(Err(format!(
                        "account '{name}' has {MAX_KEYS_PER_ACCOUNT} keys already; remove one first"
                    )));
                }
                let now = now_s();
                tx.execute(
                    "INSERT INTO ssh_keys (account_id, key, comment, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, p.key, p.comment, now],
                )?;
                let key_id = tx.last_insert_rowid();
                tx.commit()?;
                Ok(Ok(SshKeyInfo {
                    id: key_id,
                    account: name,
                    key: p.key,
                    comment: p.comment,
                    fingerprint: p.fingerprint,
                    created_at: now,
                }))
            })
            .await?;
        let info = added.map_err(ServiceError::Conflict)?;
        self.audit(
            caller,
            EventId::SshKeyAdded,
            format!(
                "SSH key {} ({}) added to account '{}'",
                info.id, info.fingerprint, info.account
            ),
        );
        Ok(info)
    }

    /// Remove key `id` of `account_name`: one's own, or anyone's with
    /// `accounts.change`.
    pub async fn remove_ssh_key(
        &self,
        caller: &Caller,
        account_name: &str,
        id: i64,
    ) -> Result<(), ServiceError> {
        let target = self.account_named(account_name).await?;
        require_own_or(caller, &target, Permission::AccountsChange)?;
        let account_id = target.id;
        let removed: Option<String> = self
            .inner
            .store
            .call(move |c| {
                let key: Option<String> = c
                    .query_row(
                        "SELECT key FROM ssh_keys WHERE id = ?1 AND account_id = ?2",
                        params![id, account_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if key.is_some() {
                    c.execute("DELETE FROM ssh_keys WHERE id = ?1", params![id])?;
                }
                Ok(key)
            })
            .await?;
        let Some(key) = removed else {
            return Err(ServiceError::NotFound {
                what: "SSH key",
                name: format!("{id} of account '{}'", target.name),
            });
        };
        self.audit(
            caller,
            EventId::SshKeyRemoved,
            format!(
                "SSH key {id} ({}) removed from account '{}'",
                fingerprint(&key),
                target.name
            ),
        );
        Ok(())
    }

    /// Whether `key` (normalised, "type base64") is authorized for the
    /// active account `name`. No login and no event: an SSH client offers
    /// keys before it proves it holds one (RFC 4252 §7), and an offer of a
    /// key the account does not have is not a failed login.
    pub async fn ssh_key_authorized(&self, name: &str, key: &str) -> Result<bool, ServiceError> {
        let (name, key) = (name.to_owned(), key.to_owned());
        Ok(self
            .inner
            .store
            .call(move |c| {
                let Some(a) = account::find(c, &name)?.filter(|a| a.active) else {
                    return Ok(false);
                };
                key_of(c, a.id, &key).map(|k| k.is_some())
            })
            .await?)
    }

    /// Log in with a public key the client proved it holds (the SSH server
    /// checked the signature). Refused, as a password login, when the
    /// account or source is locked out, the account is unknown or disabled,
    /// or the key is not one of the account's; each refusal counts toward
    /// the lockout.
    pub async fn login_with_key(
        &self,
        name: &str,
        key: &str,
        source: Source,
        interface: Interface,
    ) -> Result<LoginOk, ServiceError> {
        let config = self.config();
        let login = &config.security.login;
        let failed = || ServiceError::LoginFailed {
            message: login.failure_message().to_owned(),
        };
        let src = source.to_string();
        let caller = Caller {
            principal: None,
            source,
            interface,
        };
        let print = fingerprint(key);
        let (n, k, s) = (name.to_owned(), key.to_owned(), src.clone());
        let found = self
            .inner
            .store
            .call(move |c| {
                if let Some(until) = lockout::locked_until(c, &n, &s, now_s())? {
                    return Ok(Err(until));
                }
                let Some(a) = account::find(c, &n)?.filter(|a| a.active) else {
                    return Ok(Ok(None));
                };
                Ok(Ok(key_of(c, a.id, &k)?.map(|_| a)))
            })
            .await?;
        let account: Option<Account> = match found {
            Err(until) => {
                self.audit_login_failure(
                    &caller,
                    name,
                    &format!("refused: locked out until {}", fmt_time(until)),
                );
                return Err(failed());
            }
            Ok(a) => a,
        };
        let Some(account) = account else {
            let why = format!("public key {print} is not authorized for this account");
            return Err(self.refuse_login(&caller, name, &why).await);
        };
        let how = format!("logged in via {} with public key {print}", interface.name());
        let (_, token, session_id) = self.open_login_session(caller, &account, how).await?;
        Ok(LoginOk {
            token,
            session_id,
            account: account.name,
            // A key login does not use the password, so its age does not
            // matter here.
            must_change_password: false,
        })
    }
}

/// The caller may act on `target`'s keys: its own, or with `permission`.
fn require_own_or(
    caller: &Caller,
    target: &Account,
    permission: Permission,
) -> Result<(), ServiceError> {
    match &caller.principal {
        Some(p) if p.account_id == target.id => {
            if p.must_change_password {
                Err(ServiceError::PasswordExpired)
            } else {
                Ok(())
            }
        }
        _ => caller.require(permission),
    }
}

fn key_of(
    c: &rusqlite::Connection,
    account_id: i64,
    key: &str,
) -> Result<Option<i64>, crate::store::StoreError> {
    Ok(c.query_row(
        "SELECT id FROM ssh_keys WHERE account_id = ?1 AND key = ?2",
        params![account_id, key],
        |r| r.get(0),
    )
    .optional()?)
}

fn list(
    c: &rusqlite::Connection,
    account_id: i64,
    account: &str,
) -> Result<Vec<SshKeyInfo>, crate::store::StoreError> {
    let mut stmt = c.prepare(
        "SELECT id, key, comment, created_at FROM ssh_keys WHERE account_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![account_id], |r| {
        let key: String = r.get(1)?;
        Ok(SshKeyInfo {
            id: r.get(0)?,
            account: account.to_owned(),
            fingerprint: fingerprint(&key),
            key,
            comment: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-keygen -t ed25519` output, and its `ssh-keygen -lf` fingerprint.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ alice@host";
    const ED25519_FINGERPRINT: &str = "SHA256:KeVboHnXUjBN/Vh0j6TEzqew+VDMOa4WoQP1Dps2z+4";

    fn blob(parts: &[&[u8]]) -> String {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(&u32::try_from(p.len()).expect("len").to_be_bytes());
            b.extend_from_slice(p);
        }
        base64ct::Base64::encode_string(&b)
    }

    #[test]
    fn normalises_a_pub_line_and_keeps_the_comment() {
        let k = parse_public_key(&format!("  {ED25519}\n")).expect("valid");
        assert_eq!(
            k.key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ"
        );
        assert_eq!(k.comment, "alice@host");
        assert_eq!(k.fingerprint, ED25519_FINGERPRINT);
        assert_eq!(fingerprint(&k.key), k.fingerprint);
    }

    #[test]
    fn refuses_options_certificates_sk_keys_and_damage() {
        let cases = [
            (format!("from=\"10.0.0.1\" {ED25519}"), "options"),
            (
                "ssh-dss AAAAB3NzaC1kc3MAAACBAP".to_owned(),
                "unsupported key type",
            ),
            ("sk-ssh-ed25519@openssh.com AAAA".to_owned(), "security-key"),
            (
                "ssh-ed25519-cert-v01@openssh.com AAAA".to_owned(),
                "certificates",
            ),
            ("ssh-ed25519 !!!!".to_owned(), "base64"),
            (String::new(), "no key given"),
            (
                format!("ssh-rsa {}", blob(&[b"ssh-ed25519", &[0u8; 32]])),
                "another type",
            ),
            (
                format!("ssh-ed25519 {}", blob(&[b"ssh-ed25519", &[0u8; 31]])),
                "damaged",
            ),
            (
                format!("ssh-ed25519 {}", blob(&[b"ssh-ed25519", &[0u8; 32], b"x"])),
                "damaged",
            ),
        ];
        for (line, why) in cases {
            let err = parse_public_key(&line).expect_err(&line);
            assert!(err.to_string().contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn refuses_rsa_below_2048_bits() {
        let mut n1024 = vec![0u8];
        n1024.extend(std::iter::repeat_n(0xC5, 128));
        let err = parse_public_key(&format!(
            "ssh-rsa {}",
            blob(&[b"ssh-rsa", &[1, 0, 1], &n1024])
        ))
        .expect_err("short");
        assert!(err.to_string().contains("has 1024"), "{err}");
        let mut n2048 = vec![0u8];
        n2048.extend(std::iter::repeat_n(0xC5, 256));
        parse_public_key(&format!(
            "ssh-rsa {}",
            blob(&[b"ssh-rsa", &[1, 0, 1], &n2048])
        ))
        .expect("2048 bits");
    }

    #[test]
    fn checks_the_ecdsa_curve() {
        let point = [4u8; 65];
        parse_public_key(&format!(
            "ecdsa-sha2-nistp256 {}",
            blob(&[b"ecdsa-sha2-nistp256", b"nistp256", &point])
        ))
        .expect("p256");
        parse_public_key(&format!(
            "ecdsa-sha2-nistp256 {}",
            blob(&[b"ecdsa-sha2-nistp256", b"nistp384", &point])
        ))
        .expect_err("curve mismatch");
    }

    /// A service with an Administrator `admin` and an Operator `op`, and
    /// the caller `op` logged in on the web console.
    async fn service(dir: &std::path::Path) -> (Service, Caller) {
        let s = Service::open(dir).expect("open");
        s.create_first_admin(
            &Caller::local(),
            "admin",
            "correct horse battery staple",
            None,
        )
        .await
        .expect("admin");
        s.create_account(
            &Caller::local(),
            "op",
            "Operator",
            "operator passphrase 2026",
        )
        .await
        .expect("op");
        let from = Source::Net(std::net::Ipv4Addr::LOCALHOST.into());
        let ok = s
            .login("op", "operator passphrase 2026", from, Interface::Web)
            .await
            .expect("login");
        let op = s
            .authenticate(&ok.token, from, Interface::Web)
            .await
            .expect("session");
        (s, op)
    }

    #[tokio::test]
    async fn an_account_manages_its_own_keys_and_logs_in_with_them_within_the_lockout() {
        let dir = crate::testutil::tempdir();
        let (s, op) = service(&dir).await;
        // Its own: yes; someone else's: needs accounts.change.
        let key = s.add_ssh_key(&op, "op", ED25519).await.expect("own key");
        assert_eq!(key.fingerprint, ED25519_FINGERPRINT);
        assert!(matches!(
            s.add_ssh_key(&op, "admin", ED25519).await,
            Err(ServiceError::Forbidden { .. })
        ));
        assert!(matches!(
            s.add_ssh_key(&op, "op", ED25519).await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(matches!(
            s.ssh_keys(&op, "admin").await,
            Err(ServiceError::Forbidden { .. })
        ));
        assert_eq!(s.ssh_keys(&op, "op").await.expect("list").len(), 1);
        s.add_ssh_key(&Caller::local(), "admin", ED25519)
            .await
            .expect("an administrator adds anyone's");

        let from = Source::Net(std::net::Ipv4Addr::new(127, 0, 0, 9).into());
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ";
        assert!(s.ssh_key_authorized("op", line).await.expect("known"));
        assert!(!s.ssh_key_authorized("nobody", line).await.expect("unknown"));
        let ok = s
            .login_with_key("op", line, from, Interface::Ssh)
            .await
            .expect("key login");
        assert_eq!(ok.account, "op");
        // Five wrong passwords lock the account from that address: the
        // key is refused too, until the lock is lifted.
        for _ in 0..5 {
            let _ = s
                .login("op", "wrong wrong wrong", from, Interface::Ssh)
                .await;
        }
        assert!(matches!(
            s.login_with_key("op", line, from, Interface::Ssh).await,
            Err(ServiceError::LoginFailed { .. })
        ));
        s.unlock(&Caller::local(), Some("op"), Some("127.0.0.9"))
            .await
            .expect("unlock");
        s.login_with_key("op", line, from, Interface::Ssh)
            .await
            .expect("key login after unlock");

        s.remove_ssh_key(&op, "op", key.id).await.expect("remove");
        assert!(!s.ssh_key_authorized("op", line).await.expect("gone"));
        assert!(matches!(
            s.remove_ssh_key(&op, "op", key.id).await,
            Err(ServiceError::NotFound { .. })
        ));
        s.events().flush().await.expect("flush");
    }
}
