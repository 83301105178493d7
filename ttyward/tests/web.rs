//! The HTTPS management plane (REST API under `/api/v1`) of the real
//! `ttyward run`, on loopback: TLS versions and the device certificate,
//! first use with the setup code, login lockout, disabled and deleted
//! accounts, what an Operator may not do, CSRF, bad requests, the
//! allowlist guard, the security headers and the trusted CA certificates
//! (API and console). The client is
//! `support::https` (rustls trusting exactly `DIR/certs/system.crt`);
//! TLS versions are probed with the `openssl` command line.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::https::{Client, Response};
use super::support::web_device::{WEB_ONLY, WebDevice as Device, web_addr};
use super::support::*;

/// The web console on loopback, on a port the OS picks.
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "Quartz-Lantern-4711";
const OP: &str = "op";
const OP_PASSWORD: &str = "Violet-Harbour-2290";

/// An Ed25519 public key line (`ssh-keygen -t ed25519`) and the
/// fingerprint `ssh-keygen -l` gives it.
const ED25519_LINE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgzdNIo6oJXUseeUALSSuZnVOVDq+3KVTuztaHHwLsJ alice@host";
const ED25519_FINGERPRINT: &str = "SHA256:KeVboHnXUjBN/Vh0j6TEzqew+VDMOa4WoQP1Dps2z+4";

const LOCALHOST_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOCALHOST_3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Start a daemon with `admin` created from the host, or none (`fresh`:
/// first use).
fn start(tag: &str, extra_toml: &str, fresh: bool) -> Device {
    Device::start(tag, extra_toml, (!fresh).then_some((ADMIN, ADMIN_PASSWORD)))
}

/// Create the Operator `op` through the REST API as `admin` (a bearer
/// token); returns the new account.
fn create_operator(d: &Device, admin: &str) -> Value {
    let r = d.web.json(
        "POST",
        "/api/v1/accounts",
        Some(admin),
        &json!({"name": OP, "group": "Operator", "password": OP_PASSWORD}),
    );
    assert_eq!(r.status, 201, "create op: {}", r.text());
    r.json()
}

/// Poll the event log (`ttyward events`) until every name in `names` is
/// there; returns the events. Panics after `timeout`.
fn wait_for_events(dir: &Path, names: &[&str], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = events_json(dir);
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !events.iter().any(|e| e["event"] == *n))
            .collect();
        if missing.is_empty() {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events {missing:?} not logged within {timeout:?}; logged: {:?}",
            events.iter().map(|e| &e["event"]).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `openssl s_client` to `addr` with `args`; returns (exit code, stdout +
/// stderr).
fn s_client(addr: SocketAddr, args: &[&str]) -> (Option<i32>, String) {
    let (code, out, err) = run_bounded(
        Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string()])
            .args(args),
        b"",
        Duration::from_secs(20),
    );
    (code, format!("{out}\n{err}"))
}

/// The SHA-256 fingerprint `openssl x509` prints for the PEM certificate
/// `pem`.
fn fingerprint(pem: &str) -> String {
    let (code, out, err) = run_bounded(
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256"]),
        pem.as_bytes(),
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "openssl x509: {err}");
    let line = out.trim();
    assert!(line.contains("Fingerprint="), "{line}");
    line.split_once('=').expect("=").1.to_owned()
}

/// The first PEM certificate block in `text`.
fn first_pem(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("no certificate in:\n{text}"));
    let len = text[start..].find(END).expect("end of certificate");
    format!("{}\n", &text[start..start + len + END.len()])
}

/// TLS 1.0 and 1.1 are refused by the server (its alert, not the local
/// library, ends the handshake); 1.2 and 1.3 connect; the certificate
/// presented is the one in `DIR/certs/system.crt`, and a client trusting
/// only that certificate reaches the API under the name "localhost".
#[test]
fn tls_versions_below_1_2_are_refused_and_the_device_certificate_is_presented() {
    let d = start("web-tls", "", false);
    let addr = d.web.addr;
    for old in ["-tls1", "-tls1_1"] {
        // SECLEVEL=0 lets this OpenSSL offer the old version at all, so
        // that the refusal is the server's.
        let (code, out) = s_client(addr, &[old, "-cipher", "DEFAULT:@SECLEVEL=0", "-brief"]);
        assert_ne!(code, Some(0), "{old} connected:\n{out}");
        assert!(!out.contains("CONNECTION ESTABLISHED"), "{old}:\n{out}");
        assert!(
            out.contains("alert"),
            "{old}: the server did not answer with an alert (did the client even try?):\n{out}"
        );
    }
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (code, out) = s_client(addr, &[flag, "-brief"]);
        assert_eq!(code, Some(0), "{flag} failed:\n{out}");
        assert!(
            out.contains(&format!("Protocol version: {version}"))
                || out.contains(&format!("Protocol  : {version}")),
            "{flag} did not negotiate {version}:\n{out}"
        );
    }

    let stored = std::fs::read_to_string(d.dir.join("certs").join("system.crt"))
        .expect("DIR/certs/system.crt");
    let (code, out) = s_client(addr, &["-showcerts"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        fingerprint(&first_pem(&out)),
        fingerprint(&first_pem(&stored)),
        "the server presents another certificate than DIR/certs/system.crt"
    );

    // A client trusting only that certificate, checking the name
    // "localhost", gets through; the API reports the same fingerprint.
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let info = d.web.get("/api/v1/certificate", Some(&admin));
    assert_eq!(info.status, 200, "{}", info.text());
    let normal = |f: &str| f.replace(':', "").to_ascii_uppercase();
    assert_eq!(
        normal(
            info.json()["sha256_fingerprint"]
                .as_str()
                .expect("fingerprint")
        ),
        normal(&fingerprint(&first_pem(&stored))),
        "{}",
        info.text()
    );
}

/// First use: no name/password pair gets in before the first
/// Administrator exists; the setup code works once; a wrong code creates
/// nothing; each step is logged.
#[test]
fn fresh_device_accepts_no_credential_and_the_setup_code_once() {
    let mut d = start("web-fresh", "", true);
    let welcome = d.web.get("/api/v1/login", None);
    assert_eq!(welcome.status, 200, "{}", welcome.text());
    assert_eq!(welcome.json()["setup_required"], true);

    // From another address, so that these failures cannot lock out the
    // real login below.
    let stranger = d.web.with_source(LOCALHOST_3);
    let mut messages = BTreeSet::new();
    for (name, password) in [
        ("admin", "admin"),
        ("root", "root"),
        ("admin", "moxa"),
        ("admin", ""),
    ] {
        let r = stranger.try_login_bearer(name, password);
        assert_eq!(r.status, 401, "{name}/{password:?}: {}", r.text());
        assert_eq!(r.error_code(), "login-failed", "{}", r.text());
        assert!(r.json().get("token").is_none());
        messages.insert(r.json()["error"]["message"].to_string());
    }
    assert_eq!(messages.len(), 1, "refusals differ: {messages:?}");
    let me = d.web.get("/api/v1/me", None);
    assert_eq!(me.status, 401, "{}", me.text());

    let code_file = d.dir.join("setup-code");
    let code = std::fs::read_to_string(&code_file).expect("DIR/setup-code");
    let code = code.trim();
    let wrong = if code.starts_with('A') {
        "BBBBB-BBBBB-BBBBB-BBBBB"
    } else {
        "AAAAA-AAAAA-AAAAA-AAAAA"
    };
    let setup = |code: &str, name: &str| {
        d.web.json(
            "POST",
            "/api/v1/setup",
            None,
            &json!({"setup_code": code, "name": name, "password": ADMIN_PASSWORD}),
        )
    };
    let r = setup(wrong, "intruder");
    assert_eq!(r.status, 409, "wrong code: {}", r.text());
    assert_eq!(
        d.web.get("/api/v1/login", None).json()["setup_required"],
        true
    );
    let accounts = ttyward_cmd(&d.dir, &["admin", "list"], b"");
    assert!(
        !String::from_utf8_lossy(&accounts.stdout).contains("intruder"),
        "a wrong code created an account: {accounts:?}"
    );
    assert_eq!(
        d.web.try_login_bearer("intruder", ADMIN_PASSWORD).status,
        401
    );

    let r = setup(code, "owner");
    assert_eq!(r.status, 201, "right code: {}", r.text());
    let r = setup(code, "second");
    assert_eq!(r.status, 409, "code used twice: {}", r.text());
    assert!(!code_file.exists(), "the setup code file outlived its use");

    let token = d.web.login_bearer("owner", ADMIN_PASSWORD);
    let me = d.web.get("/api/v1/me", Some(&token));
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["name"], "owner");
    assert_eq!(me.json()["group"], "Administrator");
    assert_eq!(d.web.try_login_bearer("second", ADMIN_PASSWORD).status, 401);
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["setup_required"], false, "{applied}");

    wait_for_events(
        &d.dir,
        &[
            "setup-code-used",
            "setup-code-refused",
            "first-admin-created",
        ],
        Duration::from_secs(10),
    );
}

/// Lockout: after `max_failures` wrong passwords the right one is refused
/// too, from that address only, until the lockout time has passed.
#[test]
fn lockout_after_n_failures_even_with_the_right_password_then_lifts() {
    // The store counts lockout time in whole seconds: a 3 s lockout holds
    // for at least 2 s, time enough to look at it on a busy machine.
    let d = start(
        "web-lockout",
        "[security.login.lockout]\nmax_failures = 3\nlockout_s = 3\n",
        false,
    );
    let mut third_sent = Instant::now();
    for i in 0..3 {
        third_sent = Instant::now();
        let r = d.web.try_login_bearer(ADMIN, "not-the-password");
        assert_eq!(r.status, 401, "wrong password {i}: {}", r.text());
    }
    // The lock began no earlier than `third_sent`, so it holds at least
    // until `third_sent` + 2 s.
    let surely_locked_until = third_sent + Duration::from_secs(2);
    let r = d.web.try_login_bearer(ADMIN, ADMIN_PASSWORD);
    assert_eq!(r.status, 401, "right password while locked: {}", r.text());
    assert_eq!(r.error_code(), "login-failed");

    // The lock is for (account, 127.0.0.1): the same account from another
    // address gets in meanwhile, and 127.0.0.1 is still locked after that.
    let elsewhere = d.web.with_source(LOCALHOST_2);
    let r = elsewhere.try_login_bearer(ADMIN, ADMIN_PASSWORD);
    assert_eq!(
        r.status,
        200,
        "from 127.0.0.2 during the lock: {}",
        r.text()
    );
    let r = d.web.try_login_bearer(ADMIN, ADMIN_PASSWORD);
    assert!(
        Instant::now() < surely_locked_until,
        "too slow to look at the lock ({:?} since it began)",
        third_sent.elapsed()
    );
    assert_eq!(
        r.status,
        401,
        "127.0.0.1 after 127.0.0.2 logged in: {}",
        r.text()
    );

    let deadline = third_sent + Duration::from_secs(6);
    let mut tries = 0;
    loop {
        tries += 1;
        let r = d.web.try_login_bearer(ADMIN, ADMIN_PASSWORD);
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "still locked {:?} after a 3 s lockout ({tries} tries)",
            third_sent.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        Instant::now() >= surely_locked_until,
        "the lock lifted after {:?}, before its time",
        third_sent.elapsed()
    );
    wait_for_events(&d.dir, &["account-locked"], Duration::from_secs(10));
}

/// Disabling an account ends its sessions at once and refuses its logins;
/// so does deleting it.
#[test]
fn disabled_account_loses_its_sessions_at_once() {
    let d = start("web-disable", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    assert_eq!(create_operator(&d, &admin)["group"], "Operator");

    let op = d.web.login_bearer(OP, OP_PASSWORD);
    let me = d.web.get("/api/v1/me", Some(&op));
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["name"], OP);

    let r = d.web.json(
        "PATCH",
        "/api/v1/accounts/op",
        Some(&admin),
        &json!({"active": false}),
    );
    assert_eq!(r.status, 204, "disable: {}", r.text());
    let me = d.web.get("/api/v1/me", Some(&op));
    assert_eq!(me.status, 401, "disabled account's session: {}", me.text());
    let r = d.web.try_login_bearer(OP, OP_PASSWORD);
    assert_eq!(r.status, 401, "disabled account's login: {}", r.text());

    let r = d.web.json(
        "PATCH",
        "/api/v1/accounts/op",
        Some(&admin),
        &json!({"active": true}),
    );
    assert_eq!(r.status, 204, "enable: {}", r.text());
    let op = d.web.login_bearer(OP, OP_PASSWORD);
    assert_eq!(d.web.get("/api/v1/me", Some(&op)).status, 200);
    let r = d
        .web
        .request(
            "DELETE",
            "/api/v1/accounts/op",
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        )
        .expect("DELETE");
    assert_eq!(r.status, 204, "delete: {}", r.text());
    let me = d.web.get("/api/v1/me", Some(&op));
    assert_eq!(me.status, 401, "deleted account's session: {}", me.text());
    let r = d.web.try_login_bearer(OP, OP_PASSWORD);
    assert_eq!(r.status, 401, "deleted account's login: {}", r.text());
    let accounts = d.web.get("/api/v1/accounts", Some(&admin)).json();
    assert!(
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .all(|a| a["name"] != OP),
        "{accounts}"
    );
}

/// A request body for the table.
enum Body {
    None,
    Json(Value),
    Toml(&'static str),
}

/// One row of the route table: a route of the OpenAPI document, a
/// concrete request to it, and what an Operator and a caller without a
/// session get.
struct Route {
    method: &'static str,
    /// The path as the OpenAPI document spells it.
    path: &'static str,
    /// What is requested (placeholders filled in).
    url: String,
    body: Body,
    operator: u16,
    anonymous: u16,
}

impl Route {
    fn send(&self, client: &Client, token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        let bytes = match &self.body {
            Body::None => Vec::new(),
            Body::Json(v) => {
                headers.push(("Content-Type", "application/json"));
                serde_json::to_vec(v).expect("json")
            }
            Body::Toml(t) => {
                headers.push(("Content-Type", "application/toml"));
                t.as_bytes().to_vec()
            }
        };
        client
            .request(self.method, &self.url, &headers, &bytes)
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.url))
    }
}

/// Every (METHOD, path) of the OpenAPI document.
fn openapi_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The Operator (built-in group without Security, Account Management,
/// Security events and configuration import/export) is refused every such
/// action with 403, and may do the rest; without a session everything but
/// the public routes is 401. The table covers exactly the routes of the
/// OpenAPI document, so a new route without an expectation fails here.
#[test]
fn operator_is_refused_every_security_and_account_management_action() {
    let d = start("web-operator", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    create_operator(&d, &admin);
    let admin_session = d.web.get("/api/v1/me", Some(&admin)).json()["session_id"]
        .as_i64()
        .expect("admin session id");
    let op = d.web.login_bearer(OP, OP_PASSWORD);
    // The admin's logins made Security events; an Administrator sees them.
    let all = d.web.get("/api/v1/events?limit=1000", Some(&admin));
    assert_eq!(all.status, 200, "{}", all.text());
    assert!(
        all.json()["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["category"] == "security"),
        "no security event to hide: {}",
        all.text()
    );
    let csv = d
        .web
        .get("/api/v1/events/export?format=csv", Some(&admin))
        .text();
    assert!(csv.contains(",security,"), "{csv}");

    let openapi = d.web.get("/api/v1/openapi.json", None);
    assert_eq!(openapi.status, 200, "{}", openapi.text());
    let documented = openapi_routes(&openapi.json());

    let route = |method, path, url: &str, body, operator, anonymous| Route {
        method,
        path,
        url: url.to_owned(),
        body,
        operator,
        anonymous,
    };
    let op_login = json!({"name": OP, "password": OP_PASSWORD, "bearer": true});
    let setup = json!({"setup_code": "AAAAA-AAAAA-AAAAA-AAAAA", "name": "mallory", "password": OP_PASSWORD});
    // The wrong old password: refused for that, not for want of a permission.
    let own_password =
        json!({"old_password": "not-my-password", "new_password": "Another-Long-Pass-9"});
    let new_admin = json!({"name": "mallory", "group": "Administrator", "password": OP_PASSWORD});
    let escalate = json!({"permissions": ["security.change", "accounts.change"]});
    let end_admin = format!("/api/v1/sessions/{admin_session}");
    let r = d.web.json(
        "POST",
        "/api/v1/api-tokens",
        Some(&admin),
        &json!({"name": "nightly backup", "account": ADMIN}),
    );
    assert_eq!(r.status, 201, "admin creates an API token: {}", r.text());
    let api_token = r.json()["token"].as_str().expect("token").to_owned();
    let revoke = format!("/api/v1/api-tokens/{}", r.json()["info"]["id"]);
    let backdoor = json!({"name": "backdoor", "account": OP});
    let port = json!([{"number": 1, "device": "sim:echo",
        "mode": {"type": "tcp-server", "bind": ["127.0.0.1"], "local_port": 0}}]);
    let some_ca = format!("/api/v1/certificate/authorities/{}", ["AB"; 32].join(":"));
    let r = d.web.json(
        "POST",
        "/api/v1/accounts/admin/ssh-keys",
        Some(&admin),
        &json!({"key": ED25519_LINE}),
    );
    assert_eq!(r.status, 201, "admin adds an SSH key: {}", r.text());
    let admin_key = format!("/api/v1/accounts/admin/ssh-keys/{}", r.json()["id"]);
    let j = |v: Value| Body::Json(v);
    // (method, OpenAPI path, request, body, as Operator, without a session)
    #[rustfmt::skip]
    let table = vec![
        route("GET", "/api/v1/login", "/api/v1/login", Body::None, 200, 200),
        route("POST", "/api/v1/login", "/api/v1/login", j(op_login), 200, 200),
        route("POST", "/api/v1/setup", "/api/v1/setup", j(setup), 409, 409),
        route("GET", "/api/v1/me", "/api/v1/me", Body::None, 200, 401),
        route("PUT", "/api/v1/me/password", "/api/v1/me/password", j(own_password), 422, 401),
        route("GET", "/api/v1/system", "/api/v1/system", Body::None, 200, 401),
        route("GET", "/api/v1/ports", "/api/v1/ports", Body::None, 200, 401),
        route("GET", "/api/v1/accounts", "/api/v1/accounts", Body::None, 403, 401),
        route("POST", "/api/v1/accounts", "/api/v1/accounts", j(new_admin), 403, 401),
        route("PATCH", "/api/v1/accounts/{name}", "/api/v1/accounts/admin", j(json!({"active": false})), 403, 401),
        route("PATCH", "/api/v1/accounts/{name}", "/api/v1/accounts/admin", j(json!({"password": "Operator-Owns-You-1"})), 403, 401),
        route("PATCH", "/api/v1/accounts/{name}", "/api/v1/accounts/op", j(json!({"group": "Administrator"})), 403, 401),
        route("DELETE", "/api/v1/accounts/{name}", "/api/v1/accounts/admin", Body::None, 403, 401),
        route("GET", "/api/v1/groups", "/api/v1/groups", Body::None, 403, 401),
        route("PUT", "/api/v1/groups/{name}", "/api/v1/groups/escalate", j(escalate), 403, 401),
        route("DELETE", "/api/v1/groups/{name}", "/api/v1/groups/Operator", Body::None, 403, 401),
        route("GET", "/api/v1/sessions", "/api/v1/sessions", Body::None, 200, 401),
        route("DELETE", "/api/v1/sessions/{id}", &end_admin, Body::None, 403, 401),
        route("GET", "/api/v1/api-tokens", "/api/v1/api-tokens", Body::None, 403, 401),
        route("POST", "/api/v1/api-tokens", "/api/v1/api-tokens", j(backdoor), 403, 401),
        route("DELETE", "/api/v1/api-tokens/{id}", &revoke, Body::None, 403, 401),
        route("POST", "/api/v1/lockouts/unlock", "/api/v1/lockouts/unlock", j(json!({"account": ADMIN})), 403, 401),
        route("GET", "/api/v1/accounts/{name}/ssh-keys", "/api/v1/accounts/admin/ssh-keys", Body::None, 403, 401),
        route("GET", "/api/v1/accounts/{name}/ssh-keys", "/api/v1/accounts/op/ssh-keys", Body::None, 200, 401),
        route("POST", "/api/v1/accounts/{name}/ssh-keys", "/api/v1/accounts/admin/ssh-keys", j(json!({"key": ED25519_LINE})), 403, 401),
        route("DELETE", "/api/v1/accounts/{name}/ssh-keys/{id}", &admin_key, Body::None, 403, 401),
        route("GET", "/api/v1/certificate", "/api/v1/certificate", Body::None, 403, 401),
        route("GET", "/api/v1/certificate/export", "/api/v1/certificate/export", Body::None, 403, 401),
        route("POST", "/api/v1/certificate/regenerate", "/api/v1/certificate/regenerate", Body::None, 403, 401),
        route("POST", "/api/v1/certificate/import", "/api/v1/certificate/import", j(json!({"certificate": "x", "key": "y"})), 403, 401),
        route("GET", "/api/v1/certificate/authorities", "/api/v1/certificate/authorities", Body::None, 403, 401),
        route("POST", "/api/v1/certificate/authorities", "/api/v1/certificate/authorities", j(json!({"pem": "x"})), 403, 401),
        route("DELETE", "/api/v1/certificate/authorities/{fingerprint}", &some_ca, Body::None, 403, 401),
        route("GET", "/api/v1/config", "/api/v1/config", Body::None, 200, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"security": {"login": {"message": "the operator was here"}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"security": {"login": {"lockout": {"enabled": false}}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"security": {"allowlist": {"enabled": true, "entries": [{"address": "127.0.0.1", "netmask": "255.0.0.0"}]}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"security": {"dos": {"enabled": false}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"security": {"password_policy": {"min_length": 12}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"services": {"web": {"bind": ["127.0.0.1"], "https_port": 0, "enabled": false}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config?force=true", j(json!({"ports": port.clone(), "security": {"login": {"message": "smuggled"}}})), 403, 401),
        route("PATCH", "/api/v1/config", "/api/v1/config", j(json!({"ports": port})), 200, 401),
        route("GET", "/api/v1/config/export", "/api/v1/config/export", Body::None, 403, 401),
        route("POST", "/api/v1/config/import", "/api/v1/config/import", Body::Toml(WEB_ONLY), 403, 401),
        route("GET", "/api/v1/events", "/api/v1/events?limit=1000", Body::None, 200, 401),
        route("GET", "/api/v1/events/export", "/api/v1/events/export?format=json", Body::None, 200, 401),
        route("GET", "/api/v1/events/export", "/api/v1/events/export?format=csv", Body::None, 200, 401),
        route("POST", "/api/v1/maintenance/factory-reset", "/api/v1/maintenance/factory-reset", j(json!({"confirm": "delete everything"})), 403, 401),
        // Last: it ends the Operator's session.
        route("POST", "/api/v1/logout", "/api/v1/logout", Body::None, 204, 401),
    ];

    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without an expectation: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "expectations for undocumented routes: {stale:?}"
    );

    let mut wrong = Vec::new();
    for r in &table {
        let got = r.send(&d.web, Some(&op));
        if got.status != r.operator {
            wrong.push(format!(
                "Operator {} {}: expected {}, got {} {}",
                r.method,
                r.url,
                r.operator,
                got.status,
                got.text()
            ));
            continue;
        }
        if got.status == 403 {
            assert_eq!(got.error_code(), "forbidden", "{} {}", r.method, r.url);
        }
        match (r.method, r.path) {
            ("GET", "/api/v1/config") => {
                let config = got.json();
                let sections: BTreeSet<&str> = config
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert!(
                    !sections.contains("security") && !sections.contains("services"),
                    "the Operator sees {sections:?}"
                );
            }
            ("GET", "/api/v1/events") => {
                let events = got.json();
                let events = events["events"].as_array().expect("events");
                assert!(!events.is_empty(), "the Operator sees no event at all");
                assert!(
                    events.iter().all(|e| e["category"] != "security"),
                    "the Operator sees Security events: {events:?}"
                );
            }
            ("GET", "/api/v1/events/export") if r.url.ends_with("json") => {
                let events = got.json();
                let events = events.as_array().expect("exported events");
                assert!(
                    events.iter().all(|e| e["category"] != "security"),
                    "the Operator exports Security events: {events:?}"
                );
            }
            ("GET", "/api/v1/events/export") => {
                let csv = got.text();
                assert!(
                    !csv.to_ascii_lowercase().contains(",security,"),
                    "the Operator exports Security events:\n{csv}"
                );
            }
            ("GET", "/api/v1/sessions") => {
                let sessions = got.json();
                assert!(
                    sessions
                        .as_array()
                        .expect("sessions")
                        .iter()
                        .all(|s| s["account"] == OP),
                    "the Operator sees others' sessions: {sessions}"
                );
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Nothing the Operator was refused happened.
    let accounts = d.web.get("/api/v1/accounts", Some(&admin));
    assert_eq!(
        accounts.status,
        200,
        "the admin's session survived: {}",
        accounts.text()
    );
    let config = d.web.get("/api/v1/config", Some(&admin)).json();
    assert_eq!(config["security"]["login"]["message"], "", "{config}");
    assert_eq!(
        config["ports"].as_array().map(Vec::len),
        Some(1),
        "the Operator's port change did not happen: {config}"
    );
    assert_eq!(
        config["security"]["allowlist"]["enabled"], false,
        "{config}"
    );
    let me = d.web.get("/api/v1/me", Some(&api_token));
    assert_eq!(
        me.status,
        200,
        "the admin's API token survived: {}",
        me.text()
    );
    let keys = d.web.get("/api/v1/accounts/admin/ssh-keys", Some(&admin));
    assert_eq!(
        keys.json().as_array().map(Vec::len),
        Some(1),
        "the admin's SSH key survived: {}",
        keys.text()
    );
    // The Administrator can still log in (login_bearer asserts it).
    d.web.login_bearer(ADMIN, ADMIN_PASSWORD);

    for r in &table {
        let got = r.send(&d.web, None);
        if got.status != r.anonymous {
            wrong.push(format!(
                "no session {} {}: expected {}, got {} {}",
                r.method,
                r.url,
                r.anonymous,
                got.status,
                got.text()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A session cookie alone does not authorise a change: a POST needs this
/// device's own Origin. Form-encoded logins (what a cross-site form can
/// send without preflight) are refused.
#[test]
fn csrf_cross_origin_posts_are_refused() {
    let d = start("web-csrf", "", false);
    let r = d.web.json(
        "POST",
        "/api/v1/login",
        None,
        &json!({"name": ADMIN, "password": ADMIN_PASSWORD}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json().get("token").is_none(),
        "a cookie login put the token in the body"
    );
    let set_cookie = r.header("set-cookie").expect("Set-Cookie").to_owned();
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let pair = set_cookie.split(';').next().expect("name=value").trim();
    assert!(pair.starts_with("__Host-ttyward="), "{set_cookie}");
    let ours = format!("https://{}", d.web.host());

    let post = |origin: Option<&str>| {
        let mut headers = vec![("Cookie", pair)];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        d.web
            .request("POST", "/api/v1/logout", &headers, b"")
            .expect("POST /logout")
    };
    let me = || {
        d.web
            .request("GET", "/api/v1/me", &[("Cookie", pair)], b"")
            .expect("GET /me")
    };
    assert_eq!(me().status, 200, "the cookie works");
    let r = post(Some("https://evil.example"));
    assert_eq!(r.status, 403, "foreign Origin: {}", r.text());
    assert_eq!(r.error_code(), "cross-origin");
    let r = post(None);
    assert_eq!(r.status, 403, "no Origin: {}", r.text());
    assert_eq!(r.error_code(), "cross-origin");
    let r = post(Some(&format!("http://{}", d.web.host())));
    assert_eq!(r.status, 403, "plain-http Origin: {}", r.text());
    assert_eq!(me().status, 200, "a refused logout ended the session");
    let r = post(Some(&ours));
    assert_eq!(r.status, 204, "own Origin: {}", r.text());
    assert_eq!(me().status, 401, "the session outlived its logout");

    let form = format!("name={ADMIN}&password={ADMIN_PASSWORD}");
    let r = d
        .web
        .request(
            "POST",
            "/api/v1/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .expect("form POST");
    assert_eq!(r.status, 415, "form login: {}", r.text());
    assert!(r.header("set-cookie").is_none(), "form login set a cookie");
    // A login posted from another site's page.
    let body =
        serde_json::to_vec(&json!({"name": ADMIN, "password": ADMIN_PASSWORD})).expect("json");
    let r = d
        .web
        .request(
            "POST",
            "/api/v1/login",
            &[
                ("Content-Type", "application/json"),
                ("Origin", "https://evil.example"),
            ],
            &body,
        )
        .expect("cross-site login");
    assert_eq!(r.status, 403, "cross-site login: {}", r.text());
    assert!(
        r.header("set-cookie").is_none(),
        "cross-site login set a cookie"
    );
}

/// (what, method, path, headers, body, status, error code or "*" for any)
type BadRequest<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

/// Bad requests get a JSON error with a 4xx status and a stable code, and
/// never a 5xx, a panic message, a source path or the version.
#[test]
fn bad_requests_get_json_errors_and_never_a_5xx() {
    let d = start("web-bad", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let bearer = format!("Bearer {admin}");
    let json_type = ("Content-Type", "application/json");
    let huge = {
        let mut b = br#"{"name":"admin","password":""#.to_vec();
        b.resize(2 * 1024 * 1024, b'x');
        b.extend_from_slice(br#""}"#);
        b
    };
    let bad_fields = json!({
        "ports": [{"device": "sim:echo", "serial": {"baud": 10, "parity": "purple"}}],
        "security": {"dos": {"accept_rate": 0}},
        "event_log": {"capacity": 5},
    });
    let bad_fields_body = serde_json::to_vec(&bad_fields).expect("json");
    let auth = ("Authorization", bearer.as_str());
    let toml_type = ("Content-Type", "application/toml");
    let text_type = ("Content-Type", "text/plain");
    let b = |s: &[u8]| s.to_vec();
    // (what, method, path, headers, body, status, error code or "*" for any)
    #[rustfmt::skip]
    let cases: Vec<BadRequest> = vec![
        ("malformed JSON", "POST", "/api/v1/login", vec![json_type], b(br#"{"name": "admin", "password": "#), 400, "malformed-json"),
        ("not JSON at all", "POST", "/api/v1/login", vec![json_type], b(b"\xff\xfe garbage"), 400, "malformed-json"),
        ("wrong shape", "POST", "/api/v1/login", vec![json_type], b(br#"{"name": 5, "password": ["x"]}"#), 422, "invalid"),
        ("unknown field", "POST", "/api/v1/login", vec![json_type], b(br#"{"name": "admin", "password": "x", "role": "root"}"#), 422, "invalid"),
        ("wrong content type", "POST", "/api/v1/login", vec![text_type], b(br#"{"name": "admin", "password": "x"}"#), 415, "unsupported-media-type"),
        ("no content type", "POST", "/api/v1/login", vec![], b(br#"{"name": "admin", "password": "x"}"#), 415, "unsupported-media-type"),
        ("2 MiB body", "POST", "/api/v1/login", vec![json_type], huge, 413, "too-large"),
        ("unknown API route", "GET", "/api/v1/no-such-route", vec![], vec![], 404, "not-found"),
        ("unknown page", "GET", "/no/such/page.php", vec![], vec![], 404, "not-found"),
        ("path traversal", "GET", "/api/v1/../../etc/passwd", vec![], vec![], 404, "not-found"),
        ("several bad fields", "PATCH", "/api/v1/config", vec![json_type, auth], bad_fields_body, 422, "invalid-config"),
        ("config that is not an object", "PATCH", "/api/v1/config", vec![json_type, auth], b(b"[1, 2]"), 422, "invalid"),
        ("import sent as JSON", "POST", "/api/v1/config/import", vec![json_type, auth], b(b"{}"), 415, "unsupported-media-type"),
        ("import of broken TOML", "POST", "/api/v1/config/import", vec![toml_type, auth], b(b"ports = [[[\n"), 422, "invalid-config"),
        ("bad event filter", "GET", "/api/v1/events?severity=apocalyptic", vec![auth], vec![], 422, "invalid"),
        ("bad query value", "GET", "/api/v1/events?limit=lots", vec![auth], vec![], 400, "bad-request"),
        ("bad force flag", "PATCH", "/api/v1/config?force=perhaps", vec![json_type, auth], b(b"{}"), 400, "bad-request"),
        ("bad session id", "DELETE", "/api/v1/sessions/not-a-number", vec![auth], vec![], 400, "bad-request"),
        ("bad API token id", "DELETE", "/api/v1/api-tokens/x", vec![auth], vec![], 400, "bad-request"),
        ("wrong method", "DELETE", "/api/v1/login", vec![], vec![], 405, "*"),
    ];
    let version = env!("CARGO_PKG_VERSION");
    let mut wrong = Vec::new();
    for (what, method, path, headers, body, status, code) in &cases {
        let r = d
            .web
            .request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{what}: {method} {path}: {e}"));
        let whole = r.whole();
        assert!(r.status < 500, "{what}: {}", whole);
        for leak in ["panicked", "/src/", ".rs", version] {
            assert!(
                !whole.contains(leak),
                "{what}: the answer contains {leak:?}:\n{whole}"
            );
        }
        let got_code = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        let code_ok = got_code.as_deref() == Some(*code) || (*code == "*" && got_code.is_some());
        if r.status != *status || !code_ok {
            wrong.push(format!(
                "{what}: {method} {path}: expected {status} {code}, got {} {:?} (Content-Type {:?}) {}",
                r.status,
                got_code,
                r.header("content-type"),
                r.text()
            ));
            continue;
        }
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}: {:?}",
            r.header("content-type")
        );
        if *what == "several bad fields" {
            let error = r.json();
            let paths: BTreeSet<&str> = error["error"]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|f| f["path"].as_str().expect("path"))
                .collect();
            for expected in [
                "ports[0].serial.baud",
                "ports[0].serial.parity",
                "security.dos.accept_rate",
                "event_log.capacity",
            ] {
                assert!(paths.contains(expected), "{expected} not in {paths:?}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing changed, and the server still answers.
    let config = d.web.get("/api/v1/config", Some(&admin));
    assert_eq!(config.status, 200);
    assert_eq!(config.json()["event_log"]["capacity"], 10_000);
}

/// The allowlist may not shut out the address that changes it unless the
/// change is forced; forced, the next connection from that address is
/// closed before the TLS handshake completes, and that is logged.
#[test]
fn allowlist_change_that_would_lock_out_the_caller_is_refused_unless_forced() {
    let mut d = start("web-allowlist", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let patch = json!({"security": {"allowlist": {"enabled": true,
        "entries": [{"address": "10.0.0.1", "netmask": "255.255.255.255"}]}}});
    let r = d.web.json("PATCH", "/api/v1/config", Some(&admin), &patch);
    assert_eq!(r.status, 409, "unforced lock-out: {}", r.text());
    assert_eq!(r.error_code(), "conflict");
    let config = d.web.get("/api/v1/config", Some(&admin)).json();
    assert_eq!(
        config["security"]["allowlist"]["enabled"], false,
        "{config}"
    );

    let r = d
        .web
        .json("PATCH", "/api/v1/config?force=true", Some(&admin), &patch);
    assert_eq!(r.status, 200, "forced: {}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(
        web_addr(&applied),
        d.web.addr,
        "the web console moved: the refusal below would prove nothing"
    );

    for client in [d.web.clone(), d.web.with_source(LOCALHOST_2)] {
        assert!(
            client.connect().is_err(),
            "a TLS handshake completed from a source the allowlist refuses"
        );
        assert!(
            client.request("GET", "/api/v1/login", &[], b"").is_err(),
            "a request was answered from a source the allowlist refuses"
        );
    }
    let events = wait_for_events(&d.dir, &["allowlist-refused"], Duration::from_secs(10));
    let refused = events
        .iter()
        .find(|e| e["event"] == "allowlist-refused")
        .expect("allowlist-refused");
    assert!(
        refused["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.")),
        "{refused}"
    );
    wait_for_events(&d.dir, &["allowlist-changed"], Duration::from_secs(10));
}

/// HSTS, a strict CSP, nosniff and a Referrer-Policy on answers of every
/// kind.
#[test]
fn security_headers_on_every_response() {
    let d = start("web-headers", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let responses = [
        ("200", d.web.get("/api/v1/login", None)),
        ("200 with a session", d.web.get("/api/v1/me", Some(&admin))),
        ("401", d.web.get("/api/v1/me", None)),
        (
            "403 / forbidden-origin",
            d.web
                .request(
                    "POST",
                    "/api/v1/logout",
                    &[("Cookie", "__Host-ttyward=0000")],
                    b"",
                )
                .expect("POST"),
        ),
        ("404", d.web.get("/no/such/page", None)),
        (
            "415",
            d.web
                .request(
                    "POST",
                    "/api/v1/login",
                    &[("Content-Type", "text/plain")],
                    b"x",
                )
                .expect("POST"),
        ),
        ("openapi", d.web.get("/api/v1/openapi.json", None)),
    ];
    for (what, r) in &responses {
        let hsts = r.header("strict-transport-security").unwrap_or_default();
        let max_age: u64 = hsts
            .split(';')
            .find_map(|p| p.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(max_age >= 31_536_000, "{what}: HSTS {hsts:?}\n{}", r.head);
        let csp = r.header("content-security-policy").unwrap_or_default();
        for directive in [
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{what}: CSP without {directive}: {csp:?}"
            );
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{what}: {csp}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}\n{}",
            r.head
        );
        let referrer = r.header("referrer-policy").unwrap_or_default();
        assert!(
            [
                "no-referrer",
                "same-origin",
                "strict-origin",
                "strict-origin-when-cross-origin"
            ]
            .contains(&referrer),
            "{what}: Referrer-Policy {referrer:?}"
        );
    }
    assert_eq!(responses[0].1.status, 200);
    assert_eq!(responses[1].1.status, 200);
    assert_eq!(responses[2].1.status, 401);
    assert_eq!(responses[3].1.status, 403);
    assert_eq!(responses[4].1.status, 404);
    assert_eq!(responses[5].1.status, 415);
}

/// The optional plain-HTTP port answers every request with a redirect to
/// the same path over HTTPS and serves nothing in clear.
#[test]
fn plain_http_port_only_redirects_to_https() {
    let redirect_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let d = start(
        "web-redirect",
        &format!("http_redirect_port = {redirect_port}\n"),
        false,
    );
    let https_port = web_addr(&d.daemon.ready).port();
    for path in ["/dashboard?x=1", "/api/v1/openapi.json"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", redirect_port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{redirect_port}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut s, &mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 301"), "{path}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains(
                &format!("location: https://127.0.0.1:{https_port}{path}\r\n").to_ascii_lowercase()
            ),
            "{path}: {answer}"
        );
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(body.is_empty(), "nothing is served in clear: {answer}");
    }
}

/// 10,000 connections from one source that never start a TLS handshake:
/// the Gate refuses all but the per-source cap at once, the handshake
/// timeout ends the rest, another source still gets the console, and an
/// established serial session keeps forwarding throughout.
#[test]
fn ten_thousand_idle_connections_from_one_source_do_not_stop_serial_forwarding() {
    const FLOOD: usize = 10_000;
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    assert!(
        soft >= FLOOD as u64 + 1_000,
        "this test needs {} open files; raise `ulimit -n` (now {soft})",
        FLOOD + 1_000
    );
    let serial = "\n[security.dos]\nhandshake_timeout_s = 2\n\n[[ports]]\nnumber = 1\ndevice = \"sim:echo\"\n[ports.mode]\ntype = \"tcp-server\"\nbind = [\"127.0.0.1\"]\nlocal_port = 0\n";
    let d = start("web-slow-flood", serial, false);
    let port = d
        .daemon
        .listeners
        .iter()
        .find(|(n, _)| *n == 1)
        .map(|(_, p)| *p)
        .expect("serial port 1 listens");
    let web_port = web_addr(&d.daemon.ready).port();
    let mut session = std::net::TcpStream::connect(("127.0.0.1", port)).expect("serial session");
    let echo = |s: &mut std::net::TcpStream, i: usize| {
        let msg = format!("<still here {i}>");
        s.write_all(msg.as_bytes()).expect("serial write");
        assert_eq!(
            read_exact_timeout(s, msg.len(), Duration::from_secs(10)),
            msg.as_bytes(),
            "the serial session stopped forwarding during the flood"
        );
    };
    echo(&mut session, 0);

    let started = std::time::Instant::now();
    let mut idle = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        // The kernel may make a connect wait while the listen backlog is
        // full; the server drains it, so this never stalls for long.
        match std::net::TcpStream::connect(("127.0.0.1", web_port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} to the web port failed: {e}"),
        }
        if i % 1_000 == 999 {
            echo(&mut session, i);
        }
    }
    // Another source is not affected by this one's cap.
    let other = d.web.with_source(LOCALHOST_2);
    assert_eq!(
        other.get("/api/v1/login", None).status,
        200,
        "another address gets the console"
    );
    echo(&mut session, FLOOD);

    // Every idle connection ends: refused at once by the Gate, or closed
    // when the 2 s handshake timeout passes.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut open = idle.len();
    while open > 0 && std::time::Instant::now() < deadline {
        open = 0;
        for s in &idle {
            s.set_nonblocking(true).expect("nonblocking");
            let mut byte = [0u8; 1];
            match std::io::Read::read(&mut &*s, &mut byte) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
                _ => {}
            }
        }
        if open > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        open, 0,
        "idle connections the server kept past the handshake timeout"
    );
    echo(&mut session, FLOOD + 1);
    let dos = wait_for_events(&d.dir, &["dos-triggered"], Duration::from_secs(10));
    let reports = dos.iter().filter(|e| e["event"] == "dos-triggered").count();
    // At most one report per reason (per-source cap, accept rate) per 10 s.
    let allowed = 2 * (started.elapsed().as_secs() as usize / 10 + 2);
    assert!(
        reports <= allowed,
        "refusals flooded the log: {reports} dos-triggered entries in {:?}",
        started.elapsed()
    );
}

/// Factory reset from the API: confirmed by its phrase, it ends every
/// session, turns the ports off, issues a new setup code that works once,
/// and leaves the event log (with who reset) in place.
#[test]
fn factory_reset_returns_the_device_to_first_use() {
    let serial = "\n[[ports]]\nnumber = 1\ndevice = \"sim:echo\"\n[ports.mode]\ntype = \"tcp-server\"\nbind = [\"127.0.0.1\"]\nlocal_port = 0\n";
    let mut d = start("web-reset", serial, false);
    assert!(
        !d.daemon.listeners.is_empty(),
        "port 1 serves before the reset"
    );
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let pki = TempDir::new("web-reset-pki");
    let ca = openssl_ca(pki.path(), "ca", "ttyward reset test CA", "CA:TRUE");
    let r = d
        .web
        .json("POST", CA_API, Some(&admin), &json!({"pem": ca}));
    assert_eq!(r.status, 201, "a trusted CA before the reset: {}", r.text());
    let r = d.web.json(
        "POST",
        "/api/v1/maintenance/factory-reset",
        Some(&admin),
        &json!({"confirm": "yes"}),
    );
    assert_eq!(
        r.status,
        422,
        "a wrong phrase changes nothing: {}",
        r.text()
    );
    assert_eq!(d.web.get("/api/v1/me", Some(&admin)).status, 200);
    let r = d.web.json(
        "POST",
        "/api/v1/maintenance/factory-reset",
        Some(&admin),
        &json!({"confirm": "delete everything"}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    let applied = if applied["setup_required"] == true {
        applied
    } else {
        d.daemon.wait_event("applied", Duration::from_secs(10))
    };
    assert_eq!(applied["setup_required"], true, "{applied}");
    assert!(
        listeners_of(&applied).is_empty(),
        "every serial port is off after the reset: {applied}"
    );
    assert_eq!(
        d.web.get("/api/v1/me", Some(&admin)).status,
        401,
        "the session died"
    );
    let code = std::fs::read_to_string(d.dir.join("setup-code")).expect("a new setup code");
    let r = d.web.json(
        "POST",
        "/api/v1/setup",
        None,
        &json!({"setup_code": code.trim(), "name": "again", "password": "Fresh-Start-Harbour-9"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let again = d.web.login_bearer("again", "Fresh-Start-Harbour-9");
    let cas = d.web.get(CA_API, Some(&again));
    assert_eq!(cas.status, 200, "{}", cas.text());
    assert_eq!(cas.json(), json!([]), "the reset kept a trusted CA");
    assert!(!d.dir.join("ca").exists(), "the reset left DIR/ca behind");
    let events = wait_for_events(
        &d.dir,
        &["factory-reset", "login-succeeded", "ca-certificate-removed"],
        Duration::from_secs(10),
    );
    let reset = events
        .iter()
        .find(|e| e["event"] == "factory-reset")
        .expect("factory-reset event");
    assert_eq!(reset["user"], ADMIN);
    let removed = events
        .iter()
        .find(|e| e["event"] == "ca-certificate-removed")
        .expect("ca-certificate-removed event");
    assert_eq!(removed["user"], ADMIN, "{removed}");
    assert!(
        removed["message"]
            .as_str()
            .is_some_and(|m| m.contains("factory reset") && m.contains("ttyward reset test CA")),
        "{removed}"
    );
}

/// The trusted CA certificates' API route.
const CA_API: &str = "/api/v1/certificate/authorities";

/// A CA certificate (PEM) made by `openssl req -x509` in `dir`: ECDSA
/// P-256, CN `subject`, key usage keyCertSign and cRLSign, the basic
/// constraints `basic_constraints` (`CA:TRUE`, `CA:FALSE`).
fn openssl_ca(dir: &Path, tag: &str, subject: &str, basic_constraints: &str) -> String {
    let cnf = dir.join(format!("{tag}.cnf"));
    std::fs::write(
        &cnf,
        format!(
            "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n\
             [dn]\nCN = {subject}\n\
             [ext]\nbasicConstraints = critical, {basic_constraints}\n\
             keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
        ),
    )
    .expect("openssl configuration");
    let (code, out, err) = run_bounded(
        Command::new("openssl")
            .arg("req")
            .arg("-x509")
            .arg("-config")
            .arg(&cnf)
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(dir.join(format!("{tag}.key")))
            .args(["-days", "30"]),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "openssl req for {tag}: {err}");
    assert!(out.contains("-----BEGIN CERTIFICATE-----"), "{out}");
    out
}

/// `s` as `application/x-www-form-urlencoded` wants it.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the first `name="csrf"` field of a console page.
fn csrf_of(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no CSRF field in:\n{page}"))
        + r#"name="csrf" value=""#.len();
    let len = page[start..].find('"').expect("end of the CSRF value");
    page[start..start + len].to_owned()
}

/// Trusted CA certificates over the REST API of the real daemon: an
/// Administrator uploads one (the fingerprint is openssl's), the same one
/// again is a conflict, a non-CA certificate is refused saying why; an
/// Operator may neither add nor remove one; the CA is still trusted after
/// a restart (a 0600 file in `DIR/ca`); removing it by its fingerprint
/// deletes the file; both changes are in the event log with who made them.
#[test]
fn trusted_ca_certificates_are_added_kept_across_a_restart_and_removed() {
    let d = start("web-ca", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    create_operator(&d, &admin);
    let op = d.web.login_bearer(OP, OP_PASSWORD);
    let pki = TempDir::new("web-ca-pki");
    const SUBJECT: &str = "ttyward web test CA";
    let ca = openssl_ca(pki.path(), "ca", SUBJECT, "CA:TRUE");
    let other = openssl_ca(pki.path(), "other", "ttyward other CA", "CA:TRUE");
    let leaf = openssl_ca(pki.path(), "leaf", "not a CA", "CA:FALSE");
    let expected = fingerprint(&ca);

    let empty = d.web.get(CA_API, Some(&admin));
    assert_eq!(empty.status, 200, "{}", empty.text());
    assert_eq!(empty.json(), json!([]));

    let r = d
        .web
        .json("POST", CA_API, Some(&admin), &json!({"pem": ca}));
    assert_eq!(r.status, 201, "upload: {}", r.text());
    let added = r.json();
    assert_eq!(added["subject"], format!("CN={SUBJECT}"), "{added}");
    assert_eq!(added["key_algorithm"], "ECDSA P-256", "{added}");
    assert_eq!(added["sha256_fingerprint"], expected.as_str(), "{added}");

    let r = d
        .web
        .json("POST", CA_API, Some(&admin), &json!({"pem": ca}));
    assert_eq!(r.status, 409, "the same CA again: {}", r.text());
    assert_eq!(r.error_code(), "conflict");
    assert!(r.text().contains("already trusted"), "{}", r.text());
    let r = d
        .web
        .json("POST", CA_API, Some(&admin), &json!({"pem": leaf}));
    assert_eq!(r.status, 422, "not a CA: {}", r.text());
    assert!(r.text().contains("CA:TRUE"), "{}", r.text());

    let r = d
        .web
        .json("POST", CA_API, Some(&op), &json!({"pem": other}));
    assert_eq!(r.status, 403, "Operator upload: {}", r.text());
    assert_eq!(r.error_code(), "forbidden");
    let by_fingerprint = format!("{CA_API}/{expected}");
    let r = d
        .web
        .request(
            "DELETE",
            &by_fingerprint,
            &[("Authorization", &format!("Bearer {op}"))],
            b"",
        )
        .expect("DELETE");
    assert_eq!(r.status, 403, "Operator removal: {}", r.text());
    assert_eq!(d.web.get(CA_API, Some(&op)).status, 403, "Operator list");

    let list = d.web.get(CA_API, Some(&admin)).json();
    assert_eq!(list, json!([added]), "after the refusals");
    let file = d.dir.join("ca").join(format!(
        "{}.pem",
        expected.replace(':', "").to_ascii_lowercase()
    ));
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("stat").permissions())
            & 0o777
    };
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(&d.dir.join("ca")), 0o700);
    assert_eq!(
        fingerprint(&std::fs::read_to_string(&file).expect("read")),
        expected
    );

    // A restart: the CA is still trusted.
    let d = d.restart();
    let (dir, web) = (&d.dir, &d.web);
    let admin = web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let list = web.get(CA_API, Some(&admin));
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json(), json!([added]), "after the restart");

    let r = web
        .request(
            "DELETE",
            &by_fingerprint,
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        )
        .expect("DELETE");
    assert_eq!(r.status, 204, "removal: {}", r.text());
    assert_eq!(web.get(CA_API, Some(&admin)).json(), json!([]));
    assert!(!file.exists(), "{} outlived its removal", file.display());
    let r = web
        .request(
            "DELETE",
            &by_fingerprint,
            &[("Authorization", &format!("Bearer {admin}"))],
            b"",
        )
        .expect("DELETE");
    assert_eq!(r.status, 404, "removed twice: {}", r.text());
    assert_eq!(r.error_code(), "not-found");

    let events = wait_for_events(
        dir,
        &["ca-certificate-added", "ca-certificate-removed"],
        Duration::from_secs(10),
    );
    for name in ["ca-certificate-added", "ca-certificate-removed"] {
        let logged: Vec<&Value> = events.iter().filter(|e| e["event"] == name).collect();
        assert_eq!(logged.len(), 1, "{name}: {logged:?}");
        assert_eq!(logged[0]["user"], ADMIN, "{}", logged[0]);
        let message = logged[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(SUBJECT) && message.contains(&expected),
            "{name}: {message}"
        );
    }
}

/// Security > Certificate's "CA certificates" section with a browser's
/// requests (session cookie, CSRF token, own Origin): a CA certificate
/// pasted into the form is listed with its fingerprint, a non-CA one is
/// refused with the reason on the page and the text kept, and the row's
/// Remove button removes it.
#[test]
fn console_adds_lists_and_removes_a_trusted_ca_certificate() {
    let d = start("web-ca-console", "", false);
    let cookie = d.web.login_cookie(ADMIN, ADMIN_PASSWORD);
    let origin = format!("https://{}", d.web.host());
    let page = |path: &str| {
        let r = d
            .web
            .request("GET", path, &[("Cookie", &cookie)], b"")
            .expect("GET");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.text()
    };
    let post = |path: &str, fields: &[(&str, &str)]| {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        d.web
            .request(
                "POST",
                path,
                &[
                    ("Cookie", &cookie),
                    ("Origin", &origin),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
            .expect("POST")
    };
    let pki = TempDir::new("web-ca-console-pki");
    let ca = openssl_ca(pki.path(), "ca", "ttyward console CA", "CA:TRUE");
    let leaf = openssl_ca(pki.path(), "leaf", "ttyward console leaf", "CA:FALSE");
    let expected = fingerprint(&ca);

    let before = page("/security/certificate");
    assert!(before.contains("CA certificates"), "{before}");
    assert!(before.contains(r#"id="no-authorities""#), "{before}");
    let csrf = csrf_of(&before);

    let r = post(
        "/security/certificate/authorities",
        &[("csrf", &csrf), ("pem", &leaf)],
    );
    assert_eq!(r.status, 422, "a non-CA certificate: {}", r.text());
    let refused = r.text();
    assert!(refused.contains("not a CA certificate"), "{refused}");
    assert!(
        refused.contains("-----BEGIN CERTIFICATE-----"),
        "the refused text is kept for correction: {refused}"
    );

    let r = post(
        "/security/certificate/authorities",
        &[("csrf", &csrf), ("pem", &ca)],
    );
    assert_eq!(r.status, 200, "upload: {}", r.text());
    let listed = r.text();
    assert!(
        listed.contains("CA certificate added") && listed.contains("ttyward console CA"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!(r#"data-fingerprint="{expected}""#)),
        "{listed}"
    );
    assert!(
        page("/security/certificate").contains(&format!(r#"value="{expected}""#)),
        "the row's Remove form names the fingerprint"
    );
    // The form needs the session's token.
    let r = post(
        "/security/certificate/authorities/remove",
        &[("csrf", "not-the-token"), ("fingerprint", &expected)],
    );
    assert_eq!(r.status, 403, "a forged removal: {}", r.text());

    let r = post(
        "/security/certificate/authorities/remove",
        &[("csrf", &csrf), ("fingerprint", &expected)],
    );
    assert_eq!(r.status, 200, "removal: {}", r.text());
    let after = r.text();
    assert!(after.contains("is no longer trusted"), "{after}");
    assert!(after.contains(r#"id="no-authorities""#), "{after}");
}

/// Port 1 as the Real COM tests find it: a TCP Server of the echo
/// simulator on loopback, any free port. The discovery responder is off:
/// its UDP 4800 belongs to the host, not to one test.
const LOOPBACK_PORT: &str = "\n[services.realcom_discovery]\nenabled = false\n\n[[ports]]\nnumber = 1\ndevice = \"sim:echo\"\n[ports.mode]\ntype = \"tcp-server\"\nbind = [\"127.0.0.1\"]\nlocal_port = 0\n";

/// A browser's session on the console: its cookie, and the Origin its
/// POSTs carry.
struct ConsoleSession<'a> {
    web: &'a Client,
    cookie: String,
    origin: String,
}

impl<'a> ConsoleSession<'a> {
    fn login(web: &'a Client) -> ConsoleSession<'a> {
        ConsoleSession {
            web,
            cookie: web.login_cookie(ADMIN, ADMIN_PASSWORD),
            origin: format!("https://{}", web.host()),
        }
    }

    /// The page at `path` (it must answer 200).
    fn page(&self, path: &str) -> String {
        let r = self
            .web
            .request("GET", path, &[("Cookie", &self.cookie)], b"")
            .expect("GET");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.text()
    }

    /// Submit a form to `path`, as the page's form would.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.web
            .request(
                "POST",
                path,
                &[
                    ("Cookie", &self.cookie),
                    ("Origin", &self.origin),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
            .expect("POST")
    }
}

/// The listeners of `line` (ready or applied) with this channel, as
/// (mode, address).
fn listeners_on(line: &Value, channel: &str) -> Vec<(String, SocketAddr)> {
    line["listeners"]
        .as_array()
        .unwrap_or_else(|| panic!("no listeners in {line}"))
        .iter()
        .filter(|l| l["channel"] == channel)
        .map(|l| {
            let addr = l["addr"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("a listener without an address: {l}"));
            (l["mode"].as_str().unwrap_or_default().to_owned(), addr)
        })
        .collect()
}

/// Operation Modes in the console, with a browser's requests: a command
/// port of 70000 is refused naming the field (and kept in the form,
/// nothing stored); Real COM on two chosen ports is stored with them
/// (the listen address carried over from the TCP Server) and the daemon
/// listens on both, the command port as a `command` channel; back to TCP
/// Server, its optional command port listens too. Security > Services
/// then turns the discovery responder on at any free port, and refuses
/// port 70000 naming it.
#[test]
fn console_switches_a_port_to_real_com_and_its_command_port_listens() {
    let mut d = start("web-realcom-console", LOOPBACK_PORT, false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let console = ConsoleSession::login(&d.web);
    let page = console.page("/serial/modes");
    assert!(
        page.contains(r#"<option value="real-com">Real COM</option>"#),
        "{page}"
    );
    // NPort's defaults for port 1, shown until Real COM is chosen.
    for default in [r#"value="950""#, r#"value="966""#] {
        assert!(page.contains(default), "{default} not shown: {page}");
    }
    let csrf = csrf_of(&page);
    let base = free_port_base(3);
    let (data, command, server_command) = (base + 1, base + 2, base + 3);
    let real_com = |command_port: &str| {
        console.post(
            "/serial/modes/1",
            &[
                ("csrf", &csrf),
                ("mode", "real-com"),
                ("data_port", &data.to_string()),
                ("command_port", command_port),
                ("max_connections", "2"),
                ("alive_check_min", "7"),
                ("allow_driver_control", "on"),
                ("connection_down_rts", "goes-low"),
                ("connection_down_dtr", "always-high"),
            ],
        )
    };
    let mode = |web: &Client| {
        let config = web.get("/api/v1/config", Some(&admin));
        assert_eq!(config.status, 200, "{}", config.text());
        config.json()["ports"][0]["mode"].clone()
    };

    let r = real_com("70000");
    assert_eq!(r.status, 422, "command port 70000: {}", r.text());
    let refused = r.text();
    assert!(refused.contains("ports[0].mode.command_port"), "{refused}");
    assert!(
        refused.contains(r#"value="70000""#),
        "the refused port is kept for correction: {refused}"
    );
    assert_eq!(
        mode(&d.web)["type"],
        "tcp-server",
        "a refused change was stored"
    );

    let r = real_com(&command.to_string());
    assert_eq!(r.status, 200, "Real COM: {}", r.text());
    assert!(
        r.text().contains("Port 1 restarted in its new mode."),
        "{}",
        r.text()
    );
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["failed"], json!([]), "{applied}");
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(
        listeners_on(&applied, "data"),
        [("real-com".to_owned(), at(data))],
        "{applied}"
    );
    assert_eq!(
        listeners_on(&applied, "command"),
        [("real-com".to_owned(), at(command))],
        "{applied}"
    );
    assert_eq!(
        mode(&d.web),
        json!({
            "type": "real-com", "bind": ["127.0.0.1"], "data_port": data,
            "command_port": command, "max_connections": 2, "alive_check_min": 7,
            "allow_driver_control": true, "connection_down_rts": "goes-low",
            "connection_down_dtr": "always-high",
        })
    );
    let shown = console.page("/serial/modes");
    assert!(
        shown.contains(r#"<option value="real-com" selected>"#)
            && shown.contains(&format!(r#"value="{command}""#)),
        "{shown}"
    );

    let r = console.post(
        "/serial/modes/1",
        &[
            ("csrf", &csrf),
            ("mode", "tcp-server"),
            ("local_port", "0"),
            ("max_connections", "1"),
            ("alive_check_min", "7"),
            ("inactivity_ms", "0"),
            ("server_command_port", &server_command.to_string()),
        ],
    );
    assert_eq!(r.status, 200, "TCP Server: {}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(
        listeners_on(&applied, "command"),
        [("tcp-server".to_owned(), at(server_command))],
        "{applied}"
    );
    let stored = mode(&d.web);
    assert_eq!(stored["command_port"], server_command, "{stored}");
    assert_eq!(stored["bind"], json!(["127.0.0.1"]), "{stored}");
    assert!(stored.get("data_port").is_none(), "{stored}");

    // Back to Real COM on any free ports, then the discovery responder.
    let r = console.post(
        "/serial/modes/1",
        &[
            ("csrf", &csrf),
            ("mode", "real-com"),
            ("data_port", "0"),
            ("command_port", "0"),
            ("max_connections", "1"),
            ("alive_check_min", "7"),
            ("connection_down_rts", "always-high"),
            ("connection_down_dtr", "always-high"),
        ],
    );
    assert_eq!(r.status, 200, "Real COM on any free ports: {}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert!(
        listeners_on(&applied, "dsci").is_empty(),
        "discovery is off: {applied}"
    );
    let services = console.page("/security/services");
    assert!(
        services.contains("Real COM discovery (UDP 4800)")
            && services.contains(
                r#"name="discovery_port" type="number" min="0" max="65535" value="4800""#
            ),
        "{services}"
    );
    let discovery = |port: &str| {
        console.post(
            "/security/services",
            &[
                ("csrf", &csrf),
                ("section", "discovery"),
                ("discovery_enabled", "on"),
                ("discovery_port", port),
            ],
        )
    };
    let r = discovery("70000");
    assert_eq!(r.status, 422, "discovery port 70000: {}", r.text());
    assert!(
        r.text().contains("services.realcom_discovery.port"),
        "{}",
        r.text()
    );
    let r = discovery("0");
    assert_eq!(r.status, 200, "discovery on: {}", r.text());
    assert!(
        r.text().contains("Real COM discovery follows"),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains(r#"id="moved""#),
        "the console did not move: {}",
        r.text()
    );
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    let dsci = listeners_on(&applied, "dsci");
    assert!(
        dsci.len() == 1 && dsci[0].1.ip() == at(0).ip() && dsci[0].1.port() != 0,
        "one responder on the Real COM port's address: {applied}"
    );
    assert_eq!(web_addr(&applied), d.web.addr, "{applied}");
    let config = d.web.get("/api/v1/config", Some(&admin)).json();
    assert_eq!(
        config["services"]["realcom_discovery"],
        json!({"enabled": true, "port": 0}),
        "{config}"
    );
}

/// The REST API stores a Real COM port with the defaults filled in, gives
/// it back in the same shape (sent back unchanged, it changes nothing),
/// names a bad line level, and the daemon listens on its data and command
/// ports.
#[test]
fn rest_api_round_trips_a_real_com_port() {
    let mut d = start(
        "web-realcom-api",
        "\n[services.realcom_discovery]\nenabled = false\n",
        false,
    );
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let port = |mode: Value| json!({"ports": [{"number": 1, "device": "sim:echo", "mode": mode}]});
    let sent = json!({"type": "real-com", "bind": ["127.0.0.1"], "data_port": 0,
        "command_port": 0, "connection_down_dtr": "goes-low"});
    let r = d
        .web
        .json("PATCH", "/api/v1/config", Some(&admin), &port(sent));
    assert_eq!(r.status, 200, "{}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["failed"], json!([]), "{applied}");
    for channel in ["data", "command"] {
        let bound = listeners_on(&applied, channel);
        assert!(
            bound.len() == 1 && bound[0].0 == "real-com" && bound[0].1.port() != 0,
            "one {channel} listener: {applied}"
        );
    }

    let config = d.web.get("/api/v1/config", Some(&admin));
    assert_eq!(config.status, 200, "{}", config.text());
    let config = config.json();
    let stored = config["ports"][0]["mode"].clone();
    assert_eq!(
        stored,
        json!({
            "type": "real-com", "bind": ["127.0.0.1"], "data_port": 0, "command_port": 0,
            "max_connections": 1, "alive_check_min": 7, "allow_driver_control": false,
            "connection_down_rts": "always-high", "connection_down_dtr": "goes-low",
        })
    );
    let r = d.web.json(
        "PATCH",
        "/api/v1/config",
        Some(&admin),
        &json!({"ports": config["ports"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["changed"], json!([]), "the same document again");

    let mut bad = stored.clone();
    bad["connection_down_rts"] = json!("sideways");
    let r = d
        .web
        .json("PATCH", "/api/v1/config", Some(&admin), &port(bad));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "invalid-config");
    let fields = r.json()["error"]["fields"].clone();
    assert_eq!(
        fields[0]["path"], "ports[0].mode.connection_down_rts",
        "{fields}"
    );
    assert_eq!(
        d.web.get("/api/v1/config", Some(&admin)).json()["ports"][0]["mode"],
        stored
    );
}

/// A new key pair made by `ssh-keygen` in `dir` (`args`: the type and
/// size); returns the public key line and its fingerprint as
/// `ssh-keygen -l` prints it.
fn ssh_keygen(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let key = dir.join(name);
    let (code, _, err) = run_bounded(
        Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", &format!("{name}@ttyward")])
            .args(args)
            .arg("-f")
            .arg(&key),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "ssh-keygen {args:?}: {err}");
    let public = key.with_extension("pub");
    let line = std::fs::read_to_string(&public).expect("the .pub file");
    let (code, out, err) = run_bounded(
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&public),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "ssh-keygen -l: {err}");
    let fingerprint = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {out:?}"))
        .to_owned();
    (line.trim().to_owned(), fingerprint)
}

/// SSH keys over the REST API: the Operator adds, lists and removes its
/// own (the fingerprint is ssh-keygen's, the comment kept), may neither
/// list nor add another account's (403), and the same key twice is a
/// conflict; an Administrator adds one to the Operator's account and
/// removes it; a damaged key, a short RSA key and a private key are
/// refused with 422 saying what is wrong; the changes are in the event
/// log.
#[test]
fn rest_api_ssh_keys_own_for_an_operator_anyones_for_an_administrator() {
    let d = start("web-ssh-keys", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    create_operator(&d, &admin);
    let op = d.web.login_bearer(OP, OP_PASSWORD);
    let keys = TempDir::new("web-ssh-keys-pairs");
    let (own_line, own_print) = ssh_keygen(keys.path(), "laptop", &["-t", "ed25519"]);
    let (rsa_line, rsa_print) = ssh_keygen(keys.path(), "server", &["-t", "rsa", "-b", "3072"]);
    let (short_line, _) = ssh_keygen(keys.path(), "old", &["-t", "rsa", "-b", "1024"]);
    let private = std::fs::read_to_string(keys.path().join("laptop")).expect("private key");

    const OWN: &str = "/api/v1/accounts/op/ssh-keys";
    const ADMINS: &str = "/api/v1/accounts/admin/ssh-keys";
    let add = |url: &str, token: &str, key: &str| {
        d.web.json("POST", url, Some(token), &json!({ "key": key }))
    };
    let list = |url: &str, token: &str| {
        let r = d.web.get(url, Some(token));
        assert_eq!(r.status, 200, "GET {url}: {}", r.text());
        r.json().as_array().expect("a list").clone()
    };

    let r = add(OWN, &op, &own_line);
    assert_eq!(r.status, 201, "the Operator adds its own key: {}", r.text());
    let added = r.json();
    assert_eq!(added["account"], OP, "{added}");
    assert_eq!(added["type"], "ssh-ed25519", "{added}");
    assert_eq!(added["fingerprint"], own_print.as_str(), "{added}");
    assert_eq!(added["comment"], "laptop@ttyward", "{added}");
    assert!(
        own_line.starts_with(added["key"].as_str().expect("key")),
        "{added}"
    );
    let listed = list(OWN, &op);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], added["id"]);
    assert_eq!(listed[0]["fingerprint"], own_print.as_str());

    let r = add(OWN, &op, &own_line);
    assert_eq!(r.status, 409, "the same key twice: {}", r.text());
    assert!(r.text().contains("has this key already"), "{}", r.text());

    let r = add(ADMINS, &op, &rsa_line);
    assert_eq!(
        r.status,
        403,
        "the Operator adds a key to admin: {}",
        r.text()
    );
    assert_eq!(r.error_code(), "forbidden");
    let r = d.web.get(ADMINS, Some(&op));
    assert_eq!(
        r.status,
        403,
        "the Operator lists admin's keys: {}",
        r.text()
    );
    assert!(list(ADMINS, &admin).is_empty(), "a refused key was added");

    let r = add(OWN, &admin, &rsa_line);
    assert_eq!(r.status, 201, "admin adds a key to op: {}", r.text());
    let rsa = r.json();
    assert_eq!(
        (rsa["type"].as_str(), rsa["fingerprint"].as_str()),
        (Some("ssh-rsa"), Some(rsa_print.as_str())),
        "{rsa}"
    );
    assert_eq!(list(OWN, &op).len(), 2, "the Operator sees it");
    let r = d.web.get("/api/v1/accounts/nobody/ssh-keys", Some(&admin));
    assert_eq!(r.status, 404, "{}", r.text());

    for (bad, why) in [
        ("ssh-ed25519 !!!!not-base64", "base64"),
        (short_line.as_str(), "RSA keys shorter than 2048 bits"),
        (private.as_str(), "unsupported key type"),
        ("", "no key given"),
    ] {
        let r = add(OWN, &op, bad);
        assert_eq!(r.status, 422, "{why}: {}", r.text());
        assert_eq!(r.error_code(), "invalid", "{why}");
        assert!(r.text().contains(why), "{why}: {}", r.text());
    }
    let r = d.web.json(
        "POST",
        OWN,
        Some(&op),
        &json!({"key": own_line, "options": "command=/bin/sh"}),
    );
    assert_eq!(r.status, 422, "an unknown field: {}", r.text());

    let remove = |id: &Value, token: &str| {
        d.web
            .request(
                "DELETE",
                &format!("{OWN}/{id}"),
                &[("Authorization", &format!("Bearer {token}"))],
                b"",
            )
            .expect("DELETE")
    };
    let r = remove(&rsa["id"], &admin);
    assert_eq!(r.status, 204, "admin removes op's key: {}", r.text());
    let r = remove(&added["id"], &op);
    assert_eq!(r.status, 204, "the Operator removes its own: {}", r.text());
    let r = remove(&added["id"], &op);
    assert_eq!(r.status, 404, "removed twice: {}", r.text());
    assert!(list(OWN, &op).is_empty());

    let events = wait_for_events(
        &d.dir,
        &["ssh-key-added", "ssh-key-removed"],
        Duration::from_secs(10),
    );
    let text = |e: &Value| e.to_string();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "ssh-key-added" && text(e).contains(&own_print)),
        "no event names the added key: {events:?}"
    );
}

/// The console's "SSH keys" page with a browser's requests: the Operator
/// reaches its own from the header, adds a key (the session's CSRF token
/// required), sees its type, fingerprint and comment; a damaged key is
/// refused saying why and kept in the form, a pasted private key is
/// refused and not sent back; another account's keys are refused (403).
/// The Administrator opens the Operator's keys from the Accounts page and
/// removes the key.
#[test]
fn console_adds_and_removes_an_ssh_key_with_the_sessions_csrf_token() {
    let d = start("web-ssh-keys-console", "", false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    create_operator(&d, &admin);
    let op = ConsoleSession {
        web: &d.web,
        cookie: d.web.login_cookie(OP, OP_PASSWORD),
        origin: format!("https://{}", d.web.host()),
    };

    let dashboard = op.page("/dashboard");
    assert!(
        dashboard.contains(r#"id="my-ssh-keys" href="/account/ssh-keys""#),
        "no SSH keys link in the header: {dashboard}"
    );
    let page = op.page("/account/ssh-keys");
    assert!(
        page.contains("My SSH keys") && page.contains(r#"id="no-keys""#),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let add = |csrf: &str, key: &str| {
        op.post(
            "/account/ssh-keys",
            &[("csrf", csrf), ("account", OP), ("key", key)],
        )
    };

    let r = add("not-the-token", ED25519_LINE);
    assert_eq!(r.status, 403, "a forged form: {}", r.text());
    let r = add(&csrf, "ssh-ed25519 AAAAdamaged");
    assert_eq!(r.status, 422, "a damaged key: {}", r.text());
    let refused = r.text();
    assert!(refused.contains("copy the whole .pub line"), "{refused}");
    assert!(
        refused.contains("ssh-ed25519 AAAAdamaged</textarea>"),
        "the refused key is kept for correction: {refused}"
    );
    let secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";
    let r = add(&csrf, secret);
    assert_eq!(r.status, 422, "a private key: {}", r.text());
    assert!(r.text().contains("That is a private key"), "{}", r.text());
    assert!(
        !r.text()
            .contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
        "the private key was sent back"
    );

    let r = add(&csrf, &format!("# my laptop\n{ED25519_LINE}\n"));
    assert_eq!(r.status, 200, "add: {}", r.text());
    let listed = r.text();
    assert!(
        listed.contains(&format!("({ED25519_FINGERPRINT}) added to account"))
            && listed.contains("it logs in on Reverse SSH ports"),
        "{listed}"
    );
    for shown in ["<td>ssh-ed25519</td>", ED25519_FINGERPRINT, "alice@host"] {
        assert!(listed.contains(shown), "{shown} not listed: {listed}");
    }
    let keys = d
        .web
        .get("/api/v1/accounts/op/ssh-keys", Some(&admin))
        .json();
    let id = keys[0]["id"].as_i64().expect("the key's id");
    assert_eq!(keys[0]["fingerprint"], ED25519_FINGERPRINT, "{keys}");

    // Not another account's: the page, adding, removing.
    let r = d
        .web
        .request(
            "GET",
            "/account/ssh-keys?account=admin",
            &[("Cookie", &op.cookie)],
            b"",
        )
        .expect("GET");
    assert_eq!(
        r.status,
        403,
        "the Operator opens admin's keys: {}",
        r.text()
    );
    let r = op.post(
        "/account/ssh-keys",
        &[("csrf", &csrf), ("account", ADMIN), ("key", ED25519_LINE)],
    );
    assert_eq!(r.status, 403, "the Operator adds to admin: {}", r.text());

    let console = ConsoleSession::login(&d.web);
    let accounts = console.page("/accounts");
    assert!(
        accounts.contains(r#"href="/account/ssh-keys?account=op""#),
        "no link to op's keys: {accounts}"
    );
    let theirs = console.page("/account/ssh-keys?account=op");
    assert!(
        theirs.contains("SSH keys of op") && theirs.contains(ED25519_FINGERPRINT),
        "{theirs}"
    );
    let r = console.post(
        "/account/ssh-keys/remove",
        &[
            ("csrf", &csrf_of(&theirs)),
            ("account", OP),
            ("id", &id.to_string()),
        ],
    );
    assert_eq!(r.status, 200, "admin removes op's key: {}", r.text());
    let after = r.text();
    assert!(
        after.contains(&format!("Key {id} removed from account"))
            && after.contains(r#"id="no-keys""#),
        "{after}"
    );
    assert_eq!(
        d.web
            .get("/api/v1/accounts/op/ssh-keys", Some(&admin))
            .json(),
        json!([])
    );
}

/// Operation Modes in the console, with a browser's requests: Reverse SSH
/// and Reverse Telnet are offered with the groups as checkboxes (Telnet
/// with its clear-text warning); Reverse SSH without a group is refused
/// naming the field; with an Operator and a custom group it is stored so
/// (the listen address carried over) and the daemon's applied line lists
/// the port's listener, which speaks SSH; then Reverse Telnet keeps the
/// shared fields.
#[test]
fn console_sets_a_port_to_reverse_ssh_for_the_chosen_groups_and_it_listens() {
    let mut d = start("web-reverse-console", LOOPBACK_PORT, false);
    let admin = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);
    let r = d.web.json(
        "PUT",
        "/api/v1/groups/consoles",
        Some(&admin),
        &json!({"permissions": ["serial.view"]}),
    );
    assert_eq!(r.status, 204, "create the group: {}", r.text());
    let console = ConsoleSession::login(&d.web);
    let page = console.page("/serial/modes");
    for offered in [
        r#"<option value="reverse-telnet">Reverse Telnet</option>"#,
        r#"<option value="reverse-ssh">Reverse SSH</option>"#,
        r#"name="groups" value="consoles""#,
        r#"name="groups" value="Administrator" checked"#,
        r#"<option value="cr-lf" selected>CR-LF</option>"#,
        "Telnet sends user names and passwords in clear text; prefer Reverse SSH.",
    ] {
        assert!(page.contains(offered), "{offered} not on the page: {page}");
    }
    let csrf = csrf_of(&page);
    let mode = |web: &Client| {
        let config = web.get("/api/v1/config", Some(&admin));
        assert_eq!(config.status, 200, "{}", config.text());
        config.json()["ports"][0]["mode"].clone()
    };
    let reverse = |kind: &str, groups: &[&str]| {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("mode", kind),
            ("local_port", "0"),
            ("max_connections", "2"),
            ("inactivity_min", "5"),
            ("map_crlf", "lf"),
        ];
        fields.extend(groups.iter().map(|g| ("groups", *g)));
        console.post("/serial/modes/1", &fields)
    };

    let r = reverse("reverse-ssh", &[]);
    assert_eq!(r.status, 422, "no group: {}", r.text());
    assert!(r.text().contains("ports[0].mode.groups"), "{}", r.text());
    assert_eq!(
        mode(&d.web)["type"],
        "tcp-server",
        "a refused change was stored"
    );

    let r = reverse("reverse-ssh", &["Operator", "consoles"]);
    assert_eq!(r.status, 200, "Reverse SSH: {}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    assert_eq!(applied["failed"], json!([]), "{applied}");
    let data = listeners_on(&applied, "data");
    assert!(
        data.len() == 1
            && data[0].0 == "reverse-ssh"
            && data[0].1.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)
            && data[0].1.port() != 0,
        "one Reverse SSH listener on 127.0.0.1: {applied}"
    );
    assert_eq!(
        mode(&d.web),
        json!({
            "type": "reverse-ssh", "bind": ["127.0.0.1"], "local_port": 0,
            "max_connections": 2, "inactivity_min": 5, "map_crlf": "lf",
            "groups": ["Operator", "consoles"],
        })
    );
    // The listener is an SSH server: it greets with its version line
    // (RFC 4253 §4.2).
    let mut ssh = std::net::TcpStream::connect_timeout(&data[0].1, Duration::from_secs(5))
        .expect("connect to the Reverse SSH port");
    ssh.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut banner = [0u8; 8];
    std::io::Read::read_exact(&mut ssh, &mut banner).expect("the SSH banner");
    assert_eq!(
        &banner,
        b"SSH-2.0-",
        "{:?}",
        String::from_utf8_lossy(&banner)
    );
    drop(ssh);

    let shown = console.page("/serial/modes");
    for kept in [
        r#"<option value="reverse-ssh" selected>"#,
        r#"name="groups" value="Operator" checked"#,
        r#"name="groups" value="consoles" checked"#,
        r#"<option value="lf" selected>LF</option>"#,
        r#"name="inactivity_min" type="number" min="0" max="99" value="5""#,
    ] {
        assert!(shown.contains(kept), "{kept} not shown: {shown}");
    }
    assert!(
        !shown.contains(r#"name="groups" value="Administrator" checked"#),
        "{shown}"
    );

    let r = reverse("reverse-telnet", &["Administrator"]);
    assert_eq!(r.status, 200, "Reverse Telnet: {}", r.text());
    let applied = d.daemon.wait_event("applied", Duration::from_secs(10));
    let data = listeners_on(&applied, "data");
    assert!(
        data.len() == 1 && data[0].0 == "reverse-telnet",
        "{applied}"
    );
    let stored = mode(&d.web);
    assert_eq!(stored["bind"], json!(["127.0.0.1"]), "{stored}");
    assert_eq!(stored["groups"], json!(["Administrator"]), "{stored}");
}
