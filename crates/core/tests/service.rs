//! The service layer against a real store (SQLite in a temporary data
//! directory) and real Argon2id: first use, login and lockout, sessions,
//! the permission matrix, configuration changes. One test binary for the
//! crate (see style.md).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ttyward_core::config::Config;
use ttyward_core::event_log::{EventId, EventQuery};
use ttyward_core::permission::{Permission, Permissions};
use ttyward_core::service::{Caller, Interface, Principal, Service, ServiceError, Source};
use ttyward_core::session::SessionToken;

const ADMIN_PW: &str = "correct horse battery staple";
const OP_PW: &str = "operator passphrase 2026";

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ttyward-service-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn net(last: u8) -> Source {
    Source::Net(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

fn web(source: Source) -> Caller {
    Caller {
        principal: None,
        source,
        interface: Interface::Web,
    }
}

/// A service with an Administrator `admin` and an Operator `op`.
async fn with_accounts() -> (Service, Dir) {
    let dir = Dir::new();
    let s = Service::open(&dir.0).expect("open");
    s.create_first_admin(&Caller::local(), "admin", ADMIN_PW, None)
        .await
        .expect("first admin");
    s.create_account(&Caller::local(), "op", "Operator", OP_PW)
        .await
        .expect("operator");
    (s, dir)
}

async fn login_as(s: &Service, name: &str, pw: &str, source: Source) -> Caller {
    let ok = s
        .login(name, pw, source, Interface::Web)
        .await
        .expect("login");
    s.authenticate(&ok.token, source, Interface::Web)
        .await
        .expect("session valid")
}

async fn events(s: &Service, id: EventId) -> Vec<String> {
    s.events().flush().await.expect("flush");
    let q = EventQuery {
        events: vec![id],
        limit: 1000,
        ..EventQuery::default()
    };
    s.query_events(&Caller::local(), q)
        .await
        .expect("query")
        .events
        .into_iter()
        .map(|e| format!("{} {}", e.user.unwrap_or_default(), e.message))
        .collect()
}

#[tokio::test]
async fn fresh_data_dir_accepts_no_credential_and_setup_code_is_single_use() {
    let dir = Dir::new();
    let s = Service::open(&dir.0).expect("open");
    assert!(!s.has_administrator().await.expect("q"));
    for (name, pw) in [
        ("admin", "admin"),
        ("admin", ""),
        ("root", "moxa"),
        ("admin", ADMIN_PW),
    ] {
        let r = s.login(name, pw, net(1), Interface::Web).await;
        assert!(
            matches!(r, Err(ServiceError::LoginFailed { .. })),
            "{name}/{pw}: {r:?}"
        );
    }
    let code = s.issue_setup_code().await.expect("issue").expect("a code");
    let file = dir.0.join("setup-code");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // From the network, the code is required and must be right.
    let r = s
        .create_first_admin(&web(net(1)), "admin", ADMIN_PW, None)
        .await;
    assert!(matches!(r, Err(ServiceError::Invalid(_))), "{r:?}");
    let r = s
        .create_first_admin(
            &web(net(1)),
            "admin",
            ADMIN_PW,
            Some("AAAAA-BBBBB-CCCCC-DDDDD"),
        )
        .await;
    assert!(matches!(r, Err(ServiceError::Conflict(_))), "{r:?}");
    s.create_first_admin(&web(net(1)), "admin", ADMIN_PW, Some(&code.to_lowercase()))
        .await
        .expect("the right code, in any case, works once");
    assert!(!file.exists(), "the code file is gone");
    let again = s
        .create_first_admin(&web(net(1)), "second", ADMIN_PW, Some(&code))
        .await;
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    assert!(s.issue_setup_code().await.expect("issue").is_none());
    login_as(&s, "admin", ADMIN_PW, net(1)).await;
    assert_eq!(events(&s, EventId::SetupCodeUsed).await.len(), 1);
    assert_eq!(events(&s, EventId::SetupCodeRefused).await.len(), 1);
}

#[tokio::test]
async fn lockout_refuses_even_the_right_password_then_lifts() {
    let (s, _dir) = with_accounts().await;
    let mut cfg = (*s.config()).clone();
    cfg.security.login.lockout.max_failures = 3;
    cfg.security.login.lockout.lockout_s = 2;
    s.update_config(&Caller::local(), cfg, false)
        .await
        .expect("settings");
    for _ in 0..3 {
        assert!(
            s.login("op", "wrong password", net(9), Interface::Web)
                .await
                .is_err()
        );
    }
    let r = s.login("op", OP_PW, net(9), Interface::Web).await;
    assert!(
        matches!(r, Err(ServiceError::LoginFailed { .. })),
        "locked: {r:?}"
    );
    // Another address is not locked out of the same account.
    login_as(&s, "op", OP_PW, net(10)).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    login_as(&s, "op", OP_PW, net(9)).await;
    assert_eq!(events(&s, EventId::AccountLocked).await.len(), 1);
    assert!(events(&s, EventId::LoginFailed).await.len() >= 4);
}

#[tokio::test]
async fn lockout_survives_a_restart_and_unlock_lifts_it() {
    let (s, dir) = with_accounts().await;
    for _ in 0..5 {
        assert!(
            s.login("admin", "nope", net(7), Interface::Web)
                .await
                .is_err()
        );
    }
    s.events().flush().await.expect("flush");
    drop(s);
    let s = Service::open(&dir.0).expect("reopen");
    assert!(
        s.login("admin", ADMIN_PW, net(7), Interface::Web)
            .await
            .is_err(),
        "still locked"
    );
    s.unlock(&Caller::local(), Some("admin"), Some("127.0.0.7"))
        .await
        .expect("unlock");
    login_as(&s, "admin", ADMIN_PW, net(7)).await;
}

#[tokio::test]
async fn disabling_or_deleting_an_account_ends_its_sessions_at_once() {
    let (s, _dir) = with_accounts().await;
    let admin = login_as(&s, "admin", ADMIN_PW, net(1)).await;
    let ok = s
        .login("op", OP_PW, net(2), Interface::Api)
        .await
        .expect("login");
    s.authenticate(&ok.token, net(2), Interface::Api)
        .await
        .expect("valid");
    s.set_account_active(&admin, "op", false)
        .await
        .expect("disable");
    let r = s.authenticate(&ok.token, net(2), Interface::Api).await;
    assert!(matches!(r, Err(ServiceError::Unauthenticated)), "{r:?}");
    assert!(
        s.login("op", OP_PW, net(2), Interface::Web).await.is_err(),
        "disabled cannot log in"
    );
    s.set_account_active(&admin, "op", true)
        .await
        .expect("enable");
    let ok = s
        .login("op", OP_PW, net(2), Interface::Api)
        .await
        .expect("login");
    s.delete_account(&admin, "op").await.expect("delete");
    assert!(
        s.authenticate(&ok.token, net(2), Interface::Api)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_last_active_administrator_stays() {
    let (s, _dir) = with_accounts().await;
    let me = Caller::local();
    for r in [
        s.set_account_active(&me, "admin", false).await,
        s.delete_account(&me, "admin").await,
        s.set_account_group(&me, "admin", "Operator").await,
    ] {
        assert!(matches!(r, Err(ServiceError::Conflict(_))), "{r:?}");
    }
    s.create_account(&me, "admin2", "Administrator", ADMIN_PW)
        .await
        .expect("second");
    s.set_account_group(&me, "admin", "Operator")
        .await
        .expect("now allowed");
}

#[tokio::test]
async fn sessions_expire_are_limited_and_end_at_logout() {
    let (s, _dir) = with_accounts().await;
    let mut cfg = (*s.config()).clone();
    cfg.security.login.sessions.max_per_account = 2;
    s.update_config(&Caller::local(), cfg, false)
        .await
        .expect("settings");
    let a = s
        .login("op", OP_PW, net(3), Interface::Web)
        .await
        .expect("1");
    s.login("op", OP_PW, net(3), Interface::Web)
        .await
        .expect("2");
    let r = s.login("op", OP_PW, net(3), Interface::Web).await;
    assert!(matches!(r, Err(ServiceError::SessionLimit(_))), "{r:?}");
    let caller = s
        .authenticate(&a.token, net(3), Interface::Web)
        .await
        .expect("valid");
    s.logout(&caller).await.expect("logout");
    assert!(
        s.authenticate(&a.token, net(3), Interface::Web)
            .await
            .is_err(),
        "dead after logout"
    );
    let forged = SessionToken::presented(&"0".repeat(64));
    assert!(
        s.authenticate(&forged, net(3), Interface::Web)
            .await
            .is_err()
    );
    // An administrator lists and ends anyone's session.
    let admin = login_as(&s, "admin", ADMIN_PW, net(1)).await;
    let list = s.sessions(&admin).await.expect("list");
    let theirs = list
        .iter()
        .find(|x| x.account == "op")
        .expect("op's session")
        .id;
    s.end_session(&admin, theirs).await.expect("end");
    assert!(
        s.sessions(&admin)
            .await
            .expect("list")
            .iter()
            .all(|x| x.account != "op")
    );
}

#[tokio::test]
async fn passwords_follow_the_policy_and_own_change_needs_the_old_one() {
    let (s, _dir) = with_accounts().await;
    let me = Caller::local();
    for bad in ["short1!", "password123", "qwertyuiop", "my op2 account!"] {
        let r = s.create_account(&me, "op2", "Operator", bad).await;
        assert!(matches!(r, Err(ServiceError::Password(_))), "{bad}: {r:?}");
    }
    let long = "a sixty-four character passphrase is fine with nothing else 1234";
    assert_eq!(long.chars().count(), 64);
    s.create_account(&me, "op2", "Operator", long)
        .await
        .expect("64-char passphrase");
    let op = login_as(&s, "op2", long, net(4)).await;
    let r = s
        .change_own_password(&op, "not the old one", "another fine passphrase")
        .await;
    assert!(matches!(r, Err(ServiceError::Invalid(_))), "{r:?}");
    s.change_own_password(&op, long, "another fine passphrase")
        .await
        .expect("change");
    login_as(&s, "op2", "another fine passphrase", net(4)).await;
}

#[tokio::test]
async fn expired_password_allows_nothing_but_a_change() {
    let (s, _dir) = with_accounts().await;
    let mut cfg = (*s.config()).clone();
    cfg.security.password_policy.lifetime_days = Some(1);
    s.update_config(&Caller::local(), cfg, false)
        .await
        .expect("settings");
    // Age the password by two days.
    s.store()
        .call(|c| {
            c.execute(
                "UPDATE accounts SET password_changed_at = password_changed_at - 2 * 86400",
                [],
            )?;
            Ok(())
        })
        .await
        .expect("age");
    let ok = s
        .login("op", OP_PW, net(5), Interface::Web)
        .await
        .expect("login still works");
    assert!(ok.must_change_password);
    let op = s
        .authenticate(&ok.token, net(5), Interface::Web)
        .await
        .expect("valid");
    let r = s.query_events(&op, EventQuery::default()).await;
    assert!(matches!(r, Err(ServiceError::PasswordExpired)), "{r:?}");
    s.change_own_password(&op, OP_PW, "a brand new passphrase")
        .await
        .expect("change");
    let op = login_as(&s, "op", "a brand new passphrase", net(5)).await;
    s.query_events(&op, EventQuery::default())
        .await
        .expect("allowed again");
}

/// Every operation guarded by a permission, tried as an Operator: those
/// that need Security or Account Management permissions are refused,
/// the rest are allowed (table-driven over `Permission::ALL`).
#[tokio::test]
async fn operator_is_refused_every_security_and_account_management_action() {
    let (s, _dir) = with_accounts().await;
    let op = login_as(&s, "op", OP_PW, net(6)).await;
    let granted = |p: Permission| {
        op.principal
            .as_ref()
            .is_some_and(|x| x.permissions.contains(&p))
    };
    for p in Permission::ALL {
        let security_or_accounts =
            p.name().starts_with("security.") || p.name().starts_with("accounts.");
        if security_or_accounts {
            assert!(!granted(p), "{p}");
            assert!(
                matches!(op.require(p), Err(ServiceError::Forbidden { .. })),
                "{p}"
            );
        }
    }
    // And through the real operations:
    let denied = |r: Result<(), ServiceError>, what: &str| {
        assert!(
            matches!(r, Err(ServiceError::Forbidden { .. })),
            "{what}: {r:?}"
        );
    };
    denied(s.accounts(&op).await.map(drop), "list accounts");
    denied(
        s.create_account(&op, "x1", "Operator", OP_PW)
            .await
            .map(drop),
        "create account",
    );
    denied(
        s.set_account_active(&op, "admin", false).await,
        "disable account",
    );
    denied(s.delete_account(&op, "admin").await, "delete account");
    denied(
        s.set_account_group(&op, "op", "Administrator").await,
        "change group",
    );
    denied(
        s.set_password(&op, "admin", "a new admin passphrase").await,
        "reset password",
    );
    denied(s.groups(&op).await.map(drop), "list groups");
    denied(
        s.put_group(&op, "g", Permissions::new()).await,
        "create group",
    );
    denied(s.delete_group(&op, "g").await, "delete group");
    denied(s.unlock(&op, Some("admin"), None).await.map(drop), "unlock");
    denied(s.export_config(&op).map(drop), "export config");
    denied(
        s.import_config(&op, "", false).await.map(drop),
        "import config",
    );
    let q = EventQuery {
        categories: vec![ttyward_core::event_log::Category::Security],
        ..EventQuery::default()
    };
    denied(
        s.query_events(&op, q).await.map(drop),
        "read security events",
    );
    let base = (*s.config()).clone();
    for (what, change) in [
        ("password policy", {
            let mut c = base.clone();
            c.security.password_policy.min_length = 16;
            c
        }),
        ("login settings", {
            let mut c = base.clone();
            c.security.login.message = "hello".into();
            c
        }),
        ("lockout", {
            let mut c = base.clone();
            c.security.login.lockout.enabled = false;
            c
        }),
        ("allowlist", {
            let mut c = base.clone();
            c.security.allowlist.enabled = true;
            c
        }),
        ("dos", {
            let mut c = base.clone();
            c.security.dos.enabled = false;
            c
        }),
        ("services", {
            let mut c = base.clone();
            c.services.web.enabled = false;
            c
        }),
        // log.settings alone may not hide Security events.
        ("switching off failed-login events", {
            let mut c = base.clone();
            c.event_log.disabled.push(EventId::LoginFailed);
            c
        }),
    ] {
        denied(s.update_config(&op, change, true).await.map(drop), what);
    }
    // What an Operator may do: serial settings and reading non-security events.
    let mut c = base.clone();
    c.event_log.capacity = 20_000;
    c.event_log.disabled.push(EventId::PortConnected);
    s.update_config(&op, c, false)
        .await
        .expect("operator changes log settings and switches off non-security events");
    let page = s
        .query_events(&op, EventQuery::default())
        .await
        .expect("operator reads the log");
    assert!(
        page.events
            .iter()
            .all(|e| e.category != ttyward_core::event_log::Category::Security)
    );
}

#[tokio::test]
async fn custom_groups_grant_exactly_their_permissions() {
    let (s, _dir) = with_accounts().await;
    let me = Caller::local();
    let perms: Permissions = [Permission::LogView, Permission::LogSecurity]
        .into_iter()
        .collect();
    s.put_group(&me, "auditors", perms).await.expect("group");
    s.create_account(&me, "aud", "auditors", OP_PW)
        .await
        .expect("account");
    let aud = login_as(&s, "aud", OP_PW, net(8)).await;
    let q = EventQuery {
        categories: vec![ttyward_core::event_log::Category::Security],
        ..EventQuery::default()
    };
    s.query_events(&aud, q)
        .await
        .expect("auditors read security events");
    assert!(matches!(
        s.accounts(&aud).await,
        Err(ServiceError::Forbidden { .. })
    ));
    let r = s.delete_group(&me, "auditors").await;
    assert!(
        matches!(r, Err(ServiceError::Conflict(_))),
        "has a member: {r:?}"
    );
    assert!(matches!(
        s.put_group(&me, "Operator", Permissions::new()).await,
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_bad_config_import_changes_nothing_and_names_every_field() {
    let (s, _dir) = with_accounts().await;
    let before = s.export_config(&Caller::local()).expect("export");
    let bad = r#"
[[ports]]
number = 1
device = "sim:echo"
serial = { baud = 7, parity = "purple" }
mode = { type = "tcp-server", max_connections = 0 }

[security.login.lockout]
max_failures = 0

[security.password_policy]
min_length = 4

[event_log]
capacity = 5
"#;
    let r = s.import_config(&Caller::local(), bad, false).await;
    let Err(ServiceError::Config(e)) = r else {
        panic!("expected config errors, got {r:?}");
    };
    let paths: Vec<&str> = e.errors.iter().map(|f| f.path.as_str()).collect();
    for want in [
        "ports[0].serial.baud",
        "ports[0].serial.parity",
        "ports[0].mode.max_connections",
        "security.login.lockout.max_failures",
        "security.password_policy.min_length",
        "event_log.capacity",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert_eq!(s.export_config(&Caller::local()).expect("export"), before);
    for garbage in ["\u{0}\u{1}\u{2}binary", "[[[[", &"x".repeat(100_000)] {
        let r = s.import_config(&Caller::local(), garbage, false).await;
        let Err(ServiceError::Config(e)) = r else {
            panic!("expected an error for garbage, got {r:?}");
        };
        assert!(!e.to_string().is_empty());
    }
}

#[tokio::test]
async fn allowlist_change_that_locks_out_the_caller_needs_force() {
    let (s, _dir) = with_accounts().await;
    let admin = login_as(&s, "admin", ADMIN_PW, net(1)).await;
    let mut c = (*s.config()).clone();
    c.security.allowlist = Config::from_toml(
        "[security.allowlist]\nenabled = true\nentries = [{ address = \"10.0.0.0\", netmask = \"255.0.0.0\" }]\n",
    )
    .expect("valid")
    .security
    .allowlist;
    let r = s.update_config(&admin, c.clone(), false).await;
    assert!(
        matches!(r, Err(ServiceError::Conflict(ref m)) if m.contains("127.0.0.1")),
        "{r:?}"
    );
    s.update_config(&admin, c, true).await.expect("forced");
}

#[tokio::test]
async fn config_changes_are_audited_with_who_and_what() {
    let (s, _dir) = with_accounts().await;
    let admin = login_as(&s, "admin", ADMIN_PW, net(1)).await;
    let c = Config::from_toml(
        "[[ports]]\nnumber = 3\ndevice = \"sim:echo\"\nmode = { type = \"tcp-server\", local_port = 0 }\n",
    )
    .expect("valid");
    let change = s.update_config(&admin, c, false).await.expect("change");
    assert_eq!(change.changed, ["port 3 added (tcp-server)",]);
    let logged = events(&s, EventId::ConfigChanged).await;
    assert!(
        logged
            .iter()
            .any(|m| m.starts_with("admin ") && m.contains("port 3 added")),
        "{logged:?}"
    );
}

#[allow(dead_code)]
fn _principal_is_public(p: Principal) -> String {
    p.name
}

#[tokio::test]
async fn api_tokens_act_as_their_account_until_revoked_or_disabled() {
    let (s, _dir) = with_accounts().await;
    let me = Caller::local();
    let (info, token) = s
        .create_api_token(&me, "nightly backup", "op", Some(30))
        .await
        .expect("created");
    assert_eq!(info.account, "op");
    let presented = SessionToken::presented(&token);
    let caller = s
        .authenticate(&presented, net(9), Interface::Api)
        .await
        .expect("token works");
    assert!(caller.may(Permission::SerialChange));
    assert!(
        !caller.may(Permission::SecurityChange),
        "an Operator's token has an Operator's rights"
    );
    // An Operator cannot mint tokens (not even for itself).
    let r = s.create_api_token(&caller, "mine", "op", None).await;
    assert!(matches!(r, Err(ServiceError::Forbidden { .. })), "{r:?}");
    // Disabling the account stops the token; enabling brings it back.
    s.set_account_active(&me, "op", false)
        .await
        .expect("disable");
    assert!(
        s.authenticate(&presented, net(9), Interface::Api)
            .await
            .is_err()
    );
    s.set_account_active(&me, "op", true).await.expect("enable");
    assert!(
        s.authenticate(&presented, net(9), Interface::Api)
            .await
            .is_ok()
    );
    let listed = s.api_tokens(&me).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_source.as_deref(), Some("127.0.0.9"));
    s.revoke_api_token(&me, info.id).await.expect("revoke");
    assert!(
        s.authenticate(&presented, net(9), Interface::Api)
            .await
            .is_err()
    );
    let r = s.create_api_token(&me, "", "op", None).await;
    assert!(matches!(r, Err(ServiceError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn factory_reset_forgets_accounts_and_configuration_but_keeps_the_log() {
    let (s, _dir) = with_accounts().await;
    let me = Caller::local();
    let mut cfg = (*s.config()).clone();
    cfg.security.login.message = "before the reset".into();
    cfg.services.web.https_port = 8443;
    s.update_config(&me, cfg, false).await.expect("settings");
    let op = login_as(&s, "op", OP_PW, net(5)).await;
    let r = s.factory_reset(&op).await;
    assert!(
        matches!(r, Err(ServiceError::Forbidden { .. })),
        "an Operator may not reset: {r:?}"
    );
    let admin = login_as(&s, "admin", ADMIN_PW, net(1)).await;
    s.factory_reset(&admin).await.expect("reset");
    assert!(
        !s.has_administrator().await.expect("query"),
        "no account is left"
    );
    assert!(s.accounts(&me).await.expect("list").is_empty());
    assert!(
        s.authenticate(&SessionToken::presented("x"), net(1), Interface::Web)
            .await
            .is_err()
    );
    let after = s.config();
    assert_eq!(
        after.security.login.message, "",
        "settings are back to their defaults"
    );
    assert_eq!(
        after.services.web.https_port, 8443,
        "the console stays where it was"
    );
    // The log kept what happened before, and says who reset.
    s.events().flush().await.expect("flush");
    let page = s
        .query_events(
            &me,
            EventQuery {
                limit: 1000,
                ..EventQuery::default()
            },
        )
        .await
        .expect("log");
    assert!(
        page.events
            .iter()
            .any(|e| e.event == EventId::LoginSucceeded)
    );
    let reset = page
        .events
        .iter()
        .find(|e| e.event == EventId::FactoryReset)
        .expect("factory-reset recorded");
    assert_eq!(reset.user.as_deref(), Some("admin"));
    // First use again: the setup code works once more.
    assert!(s.issue_setup_code().await.expect("code").is_some());
}
