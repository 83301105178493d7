//! System Settings > General against the real `ttyward run` on loopback:
//! the `[system]` section (identity and display time zone) through the
//! REST API and the console. The zone is Asia/Kolkata (UTC+05:30, no
//! daylight saving time), so the expected local times are simple sums,
//! computed here without the code under test.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::https::{Client, Response};
use super::support::web_device::WebDevice as Device;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "Saffron-Lattice-6034";
const ZONE: &str = "Asia/Kolkata";
/// Asia/Kolkata's offset from UTC, in minutes.
const KOLKATA_MIN: i64 = 5 * 60 + 30;
const NAME: &str = "Plant 3 line-2";

fn start(tag: &str) -> Device {
    Device::start(tag, "", Some((ADMIN, ADMIN_PASSWORD)))
}

/// A console page, with the session cookie.
fn page(web: &Client, cookie: &str, path: &str) -> Response {
    web.request("GET", path, &[("Cookie", cookie)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `s` as `application/x-www-form-urlencoded` (and a query string) want it.
fn encode(s: &str) -> String {
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

/// Submit a console form from our own origin.
fn post_form(web: &Client, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Response {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let origin = format!("https://{}", web.host());
    web.request(
        "POST",
        path,
        &[
            ("Cookie", cookie),
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// The value of the first `name="csrf"` field of a console page.
fn csrf_of(page: &str) -> String {
    const FIELD: &str = r#"name="csrf" value=""#;
    let start = page
        .find(FIELD)
        .unwrap_or_else(|| panic!("no CSRF field in:\n{page}"))
        + FIELD.len();
    let len = page[start..].find('"').expect("end of the CSRF value");
    page[start..start + len].to_owned()
}

/// The `system` section of `GET /api/v1/config`.
fn system_section(web: &Client, token: &str) -> Value {
    let r = web.get("/api/v1/config", Some(token));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["system"].clone()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-05-01T12:00:00.250Z` (what the API gives) as Unix milliseconds.
fn utc_ms(rfc3339: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| -> i64 {
        rfc3339
            .get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 UTC time with milliseconds: {rfc3339}"))
    };
    assert!(
        rfc3339.len() == 24 && rfc3339.ends_with('Z'),
        "the API's times are UTC with milliseconds: {rfc3339}"
    );
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// Unix milliseconds as the wall clock `offset_min` minutes east of UTC:
/// `2026-05-01 17:30:00.250`.
fn wall(ms: i64, offset_min: i64) -> String {
    let local = ms + offset_min * 60_000;
    let (days, in_day) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let s = in_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        in_day % 1000
    )
}

/// Kolkata's wall clock at `ms`.
fn kolkata(ms: i64) -> String {
    wall(ms, KOLKATA_MIN)
}

/// `ms` as the API writes times: `2026-05-01T12:00:00.250Z`.
fn rfc3339(ms: i64) -> String {
    format!("{}Z", wall(ms, 0).replace(' ', "T"))
}

#[test]
fn the_date_oracle_agrees_with_known_dates() {
    assert_eq!(utc_ms("1970-01-01T00:00:00.000Z"), 0);
    assert_eq!(rfc3339(1_777_636_800_250), "2026-05-01T12:00:00.250Z");
    assert_eq!(utc_ms("2026-05-01T12:00:00.250Z"), 1_777_636_800_250);
    assert_eq!(kolkata(1_777_636_800_250), "2026-05-01 17:30:00.250");
    // Across midnight and the end of a leap February.
    assert_eq!(
        kolkata(utc_ms("2028-02-28T20:00:00.000Z")),
        "2028-02-29 01:30:00.000"
    );
}

/// The newest `config-changed` event, waited for (the log's writer thread
/// stores events a moment after the change).
fn newest_config_change(web: &Client, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = web.get("/api/v1/events?event=config-changed&limit=1", Some(token));
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        if let Some(e) = body["events"].get(0)
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("identity and time zone"))
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the change of the system section was not logged: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// PATCH the `system` section (name and Asia/Kolkata) over the REST API:
/// GET /config and GET /system show it, the API's times stay UTC; the
/// console shows the name in the title and header, the General page the
/// clock in both zones, and the log view the change's event at
/// Kolkata's time with +05:30 IST; the log's filter reads a time without
/// offset in Kolkata and its export links carry UTC. A bad zone, from the
/// API or the General page, is refused naming `system.time_zone`, and
/// nothing changes; the General page's identity form saves a new name.
#[test]
fn system_name_and_time_zone_round_trip_and_the_console_shows_kolkata_time() {
    let d = start("system-settings");
    let token = d.web.login_bearer(ADMIN, ADMIN_PASSWORD);

    let defaults = system_section(&d.web, &token);
    assert_eq!(
        defaults,
        json!({"name": "", "location": "", "description": "", "contact": "", "time_zone": "UTC"})
    );
    let info = d.web.get("/api/v1/system", Some(&token)).json();
    assert_eq!(info["time_zone"], "UTC", "{info}");
    assert_eq!(info["name"], info["hostname"], "no name: the host's {info}");

    let section = json!({
        "name": NAME,
        "location": "Hall 2, cabinet 14",
        "contact": "ops@example.com",
        "time_zone": ZONE,
    });
    let r = d.web.json(
        "PATCH",
        "/api/v1/config",
        Some(&token),
        &json!({ "system": section }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["changed"], json!(["identity and time zone"]));
    let mut expected = section.clone();
    expected["description"] = json!("");
    assert_eq!(system_section(&d.web, &token), expected);
    let info = d.web.get("/api/v1/system", Some(&token)).json();
    assert_eq!(info["name"], NAME, "{info}");
    assert_eq!(info["time_zone"], ZONE, "{info}");
    let api_time = info["time"].as_str().expect("time");
    assert!(api_time.ends_with('Z'), "the API stays UTC: {api_time}");

    let r = d.web.json(
        "PATCH",
        "/api/v1/config",
        Some(&token),
        &json!({"system": {"name": "Other", "time_zone": "Mars/Base"}}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "invalid-config");
    let fields = r.json()["error"]["fields"].clone();
    assert_eq!(
        fields,
        json!([{
            "path": "system.time_zone",
            "message": "unknown time zone \"Mars/Base\"; use an IANA name such as \"Europe/Berlin\"",
        }])
    );
    assert_eq!(
        system_section(&d.web, &token),
        expected,
        "a refused change changed something"
    );

    // The event of the change, as the API gives it: UTC.
    let event = newest_config_change(&d.web, &token);
    let seq = event["seq"].as_i64().expect("seq");
    let at = utc_ms(event["time"].as_str().expect("time"));
    let local = kolkata(at);

    let cookie = d.web.login_cookie(ADMIN, ADMIN_PASSWORD);
    let general = page(&d.web, &cookie, "/system/general");
    assert_eq!(general.status, 200, "{}", general.text());
    let html = general.text();
    assert!(
        html.contains(&format!("<title>General · {NAME} · ttyward</title>")),
        "the title lacks the server name:\n{html}"
    );
    assert!(
        html.contains(r#"<span id="server-name""#) && html.contains(&format!(">{NAME}</span>")),
        "the header lacks the server name:\n{html}"
    );
    for want in [
        "Asia/Kolkata (UTC+05:30, IST)",
        r#"name="time_zone" value="Asia/Kolkata""#,
        r#"<option value="Europe/Berlin">"#,
        r#"name="location" maxlength="128" value="Hall 2, cabinet 14""#,
        "owns the clock",
        "NTP",
    ] {
        assert!(
            html.contains(want),
            "the General page lacks {want:?}:\n{html}"
        );
    }
    let cell = |id: &str| -> String {
        let start = html
            .find(&format!(r#"id="{id}">"#))
            .unwrap_or_else(|| panic!("no #{id} on the General page"))
            + id.len()
            + 6;
        let len = html[start..].find('<').expect("end of the cell");
        html[start..start + len].to_owned()
    };
    let (clock_local, clock_utc) = (cell("time-local"), cell("time-utc"));
    assert!(clock_local.ends_with(" +05:30 IST"), "{clock_local}");
    assert!(clock_utc.ends_with(" +00:00 UTC"), "{clock_utc}");
    // The two clocks are the same instant: 5 h 30 min apart on the wall.
    let as_utc = |wall: &str| utc_ms(&format!("{}T{}.000Z", &wall[..10], &wall[11..19]));
    assert_eq!(
        as_utc(&clock_local) - as_utc(&clock_utc),
        KOLKATA_MIN * 60_000,
        "{clock_local} vs {clock_utc}"
    );

    let dashboard = page(&d.web, &cookie, "/dashboard").text();
    assert!(
        dashboard.contains(&format!("<title>Dashboard · {NAME} · ttyward</title>")),
        "{dashboard}"
    );
    assert!(dashboard.contains(" +05:30 IST</td>"), "{dashboard}");

    // The log view: the event at Kolkata's time; a filter of one minute
    // around it, typed as Kolkata wall time, finds it (read as UTC it
    // would lie 5 h 30 min later and find nothing).
    let minute = |ms: i64| kolkata(ms)[..16].to_owned();
    let path = format!(
        "/log?from={}&to={}",
        encode(&minute(at - 60_000)),
        encode(&minute(at + 120_000)),
    );
    let log = page(&d.web, &cookie, &path);
    assert_eq!(log.status, 200, "{}", log.text());
    let html = log.text();
    let row = format!(r#"<td>{seq}</td><td class="time">{local} +05:30 IST</td>"#);
    assert!(html.contains(&row), "no {row:?} in the log view:\n{html}");
    assert!(
        html.contains("Times are shown in Asia/Kolkata (UTC+05:30, IST)"),
        "the log view does not say its zone:\n{html}"
    );
    // "2026-05-01 17:29" in Kolkata is 11:59 UTC.
    let from_local = minute(at - 60_000);
    let from_ms =
        utc_ms(&format!("{}:00.000Z", from_local.replace(' ', "T"))) - KOLKATA_MIN * 60_000;
    let export_from = format!("from={}", encode(&rfc3339(from_ms)));
    let link = html
        .split(r#"href="/api/v1/events/export?format=csv"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSV export link:\n{html}"));
    assert!(
        link.contains(&export_from),
        "the export link does not carry the filter in UTC ({export_from}): {link}"
    );
    // The export itself stays UTC.
    let csv = d.web.get(
        &format!("/api/v1/events/export?format=csv&{export_from}"),
        Some(&token),
    );
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(
        csv.text().contains(event["time"].as_str().expect("time")),
        "the export lacks the event at its UTC time:\n{}",
        csv.text()
    );

    // The General page's forms: a bad zone is named and changes nothing;
    // a new name is saved and shown at once.
    let csrf = csrf_of(&html);
    let r = post_form(
        &d.web,
        &cookie,
        "/system/general/time",
        &[("csrf", &csrf), ("time_zone", "Mars/Base")],
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("<code>system.time_zone</code>") && text.contains("Mars/Base"),
        "the refusal does not name the field:\n{text}"
    );
    assert_eq!(system_section(&d.web, &token), expected);
    let r = post_form(
        &d.web,
        &cookie,
        "/system/general/identity",
        &[
            ("csrf", &csrf),
            ("name", " Line 4 "),
            ("location", "Hall 2, cabinet 14"),
            ("description", ""),
            ("contact", "ops@example.com"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<title>General · Line 4 · ttyward</title>"),
        "the answer does not show the new name:\n{}",
        r.text()
    );
    let mut renamed = expected.clone();
    renamed["name"] = json!("Line 4");
    assert_eq!(system_section(&d.web, &token), renamed);
}
