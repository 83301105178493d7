//! Per-source request rate limiting on the HTTPS management plane (the
//! Gate's request bucket) against the real `ttyward run` on loopback: one
//! kept-alive HTTP/1.1 connection and one HTTP/2 connection (curl) meet the
//! limit with `429` + `Retry-After` and the API's JSON error, before login
//! and for static files too; another source address is not affected; after
//! the wait the same connection is served again; the refusals reach the
//! event log as `dos-triggered`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::https::Response;
use super::support::web_device::WebDevice as Device;
use super::support::*;

/// A small request budget: 20 at once, then one per second.
const SMALL_BUDGET: &str = "[security.dos]\nrequest_burst = 20\nrequest_rate = 1\n";
const BURST: usize = 20;
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "Copper-Meadow-5521";
const LOCALHOST_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// More requests than any test here needs to meet the limit: a bound for
/// every loop, not an expectation.
const MAX_REQUESTS: usize = 200;

/// Start a daemon with `toml` (which must not repeat the web section) and
/// the Administrator.
fn start(tag: &str, toml: &str) -> Device {
    Device::start(tag, toml, Some((ADMIN, ADMIN_PASSWORD)))
}

/// The `Retry-After` of a 429, in seconds; panics unless it is a whole
/// number of seconds from 1 to 5 (the budget refills one per second).
fn retry_after(r: &Response) -> u64 {
    let value = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After:\n{}", r.whole()));
    let secs: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not whole seconds"));
    assert!((1..=5).contains(&secs), "Retry-After {secs}");
    secs
}

/// Checks a refusal: 429, `Retry-After`, the API's JSON error body and the
/// security headers every answer has.
fn assert_rate_limited(r: &Response, what: &str) -> u64 {
    assert_eq!(r.status, 429, "{what}:\n{}", r.whole());
    assert_eq!(r.error_code(), "rate-limited", "{what}: {}", r.text());
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("too many requests") && message.contains("Retry-After"),
        "{what}: the message says what happened and what to do: {message:?}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{what}: {}",
        r.head
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{}", r.head);
    assert!(
        r.header("strict-transport-security").is_some(),
        "{}",
        r.head
    );
    retry_after(r)
}

/// Polls the event log until a `dos-triggered` entry from `source` whose
/// message contains `text` is there (bounded).
fn wait_for_dos_event(dir: &Path, source: &str, text: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = events_json(dir)
            .into_iter()
            .filter(|e| {
                e["event"] == "dos-triggered"
                    && e["source"] == source
                    && e["message"].as_str().is_some_and(|m| m.contains(text))
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no dos-triggered event from {source} saying {text:?} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Requests one after another on ONE kept-alive connection from 127.0.0.1
/// (a page's assets and the API alike) are served up to the burst, then
/// answered 429 with Retry-After and `rate-limited`, without running the
/// handler: a correct login is refused too. 127.0.0.2 is still served
/// meanwhile; after Retry-After the same connection is served again; the
/// event log says why, once per burst rather than once per request.
#[test]
fn one_keep_alive_connection_meets_the_request_limit_other_sources_do_not() {
    let d = start("rate-limit-h1", SMALL_BUDGET);
    let mut conn = d.web.keep_alive().expect("connect");
    // A console page, its assets and the API alike.
    let paths = [
        "/login",
        "/static/app.css",
        "/static/app.js",
        "/api/v1/login",
    ];
    let started = Instant::now();
    let mut served = 0;
    let mut refused = None;
    for i in 0..MAX_REQUESTS {
        let path = paths[i % paths.len()];
        let r = conn.get(path, None);
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "GET {path} (request {i}):\n{}", r.whole());
        served += 1;
    }
    let elapsed = started.elapsed();
    let refused =
        refused.unwrap_or_else(|| panic!("no 429 within {MAX_REQUESTS} requests ({elapsed:?})"));
    // The burst, plus what one per second refilled meanwhile.
    let most = BURST + elapsed.as_secs() as usize + 1;
    assert!(
        (BURST..=most).contains(&served),
        "{served} requests served before the first 429 in {elapsed:?}; expected {BURST}..={most}"
    );
    assert_rate_limited(&refused, "the request over the limit");

    // Over the limit nothing runs: static files are no exception, and the
    // kept-alive connection stays open. (Each check is retried in the
    // unlikely case that a stalled machine let a token refill in between:
    // it is the 429 that is checked.)
    let css = until_refused(|| conn.get("/static/app.css", None));
    let mut wait = assert_rate_limited(&css, "a static file over the limit");
    assert_eq!(css.header("connection"), None, "{}", css.head);
    // Nor authentication: the right password gets 429, not a session. Its
    // body is left unread, so the answer ends that connection and says so
    // (a second kept-alive connection here, so that `conn` stays).
    let login_body = json!({"name": ADMIN, "password": ADMIN_PASSWORD, "bearer": true}).to_string();
    let mut logins_served = 0;
    let login = loop {
        let r = d
            .web
            .keep_alive()
            .and_then(|mut c| {
                c.request(
                    "POST",
                    "/api/v1/login",
                    &[("Content-Type", "application/json")],
                    login_body.as_bytes(),
                )
            })
            .expect("login on a kept-alive connection");
        if r.status != 200 || logins_served == MAX_REQUESTS {
            break r;
        }
        logins_served += 1;
    };
    wait = wait.max(assert_rate_limited(&login, "a login over the limit"));
    assert_eq!(login.header("connection"), Some("close"), "{}", login.head);

    // Another source address has its own budget, on a new connection...
    let mut other = d
        .web
        .with_source(LOCALHOST_2)
        .keep_alive()
        .expect("connect from 127.0.0.2");
    for path in paths {
        let r = other.get(path, None);
        assert_eq!(r.status, 200, "127.0.0.2 GET {path}:\n{}", r.whole());
    }
    let token = d
        .web
        .with_source(LOCALHOST_2)
        .login_bearer(ADMIN, ADMIN_PASSWORD);
    assert_eq!(other.get("/api/v1/me", Some(&token)).status, 200);

    // ...and 127.0.0.1's kept-alive connection is served again once the
    // time it was told to wait has passed (the server did not close it).
    std::thread::sleep(Duration::from_secs(wait));
    let again = conn.get("/api/v1/login", None);
    assert_eq!(
        again.status,
        200,
        "after waiting {wait} s as Retry-After said:\n{}",
        again.whole()
    );

    // Logged as the Gate logs its refusals: the first one at once, the
    // rest counted into a summary at most every 10 s.
    let events = wait_for_dos_event(&d.dir, "127.0.0.1", "sends requests too fast");
    let allowed = 1 + started.elapsed().as_secs() as usize / 10;
    assert!(
        events.len() <= allowed,
        "refusals flooded the log: {} reports in {:?}: {events:?}",
        events.len(),
        started.elapsed()
    );
    assert!(
        events_json(&d.dir)
            .iter()
            .all(|e| e["event"] != "dos-triggered" || e["source"] == "127.0.0.1"),
        "127.0.0.2 was never refused"
    );
    // The refused login ran no authentication: no login event for it.
    let logins_from_1 = events_json(&d.dir)
        .into_iter()
        .filter(|e| {
            e["source"] == "127.0.0.1"
                && e["event"].as_str().is_some_and(|n| n.starts_with("login-"))
        })
        .count();
    assert_eq!(
        logins_from_1, logins_served,
        "a login over the limit reached the service"
    );
}

/// Send until the answer is not 200 (bounded); returns that answer.
fn until_refused(mut send: impl FnMut() -> Response) -> Response {
    for _ in 0..MAX_REQUESTS {
        let r = send();
        if r.status != 200 {
            return r;
        }
    }
    panic!("still served after {MAX_REQUESTS} requests");
}

/// HTTP/2 counts every stream: curl fetching many URLs over ONE HTTP/2
/// connection gets the burst served, then 429 with Retry-After on the
/// same connection.
#[test]
fn http2_streams_on_one_connection_meet_the_request_limit() {
    let d = start("rate-limit-h2", SMALL_BUDGET);
    let port = d.web.addr.port();
    let base = format!("https://localhost:{port}");
    let crt = d.dir.join("certs").join("system.crt");
    let mut cmd = Command::new("curl");
    cmd.args(["--http2", "-sS", "--max-time", "60", "--cacert"])
        .arg(&crt)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args([
            "-w",
            "%{http_version} %{http_code} %{num_connects} [%header{retry-after}]\\n",
        ]);
    const URLS: usize = 60;
    for i in 0..URLS {
        let path = if i % 2 == 0 {
            "/static/app.css"
        } else {
            "/api/v1/login"
        };
        cmd.arg(format!("{base}{path}")).args(["-o", "/dev/null"]);
    }
    let started = Instant::now();
    let (code, out, err) = run_bounded(&mut cmd, b"", Duration::from_secs(90));
    let elapsed = started.elapsed();
    assert_eq!(code, Some(0), "curl failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), URLS, "one line per URL:\n{out}\n{err}");

    let mut connects = 0;
    // Served before the first refusal, and in all (a token refills each
    // second, so a later stream may be served again).
    let mut first_served = None;
    let mut served = 0;
    let mut refused = 0;
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [version, status, new_connections, retry] = fields[..] else {
            panic!("unexpected curl line {line:?}");
        };
        assert_eq!(version, "2", "transfer {i} not over HTTP/2: {line}");
        connects += new_connections.parse::<u32>().expect("num_connects");
        match status {
            "200" => served += 1,
            "429" => {
                first_served.get_or_insert(served);
                refused += 1;
                let secs: u64 = retry
                    .trim_matches(['[', ']'])
                    .parse()
                    .unwrap_or_else(|_| panic!("429 without Retry-After seconds: {line}"));
                assert!((1..=5).contains(&secs), "{line}");
            }
            _ => panic!("transfer {i}: {line} (after {served} served, {refused} refused)"),
        }
    }
    assert_eq!(connects, 1, "curl used one connection for all:\n{out}");
    assert!(refused > 0, "no stream was refused:\n{out}");
    let most = BURST + elapsed.as_secs() as usize + 1;
    let first = first_served.unwrap_or(served);
    assert!(
        first >= BURST && served <= most,
        "{first} streams served before the first 429, {served} in all in {elapsed:?}; \
         expected at least {BURST} and at most {most}:\n{out}"
    );
    wait_for_dos_event(&d.dir, "127.0.0.1", "sends requests too fast");
}
