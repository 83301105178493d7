//! System Settings > General (seed §3, the NPort's "Identity" and "Date &
//! Time" tabs): the device's identity — server name, location,
//! description, contact — and the time zone the console shows times in.
//!
//! The identity is what SNMP's sysName / sysLocation / sysContact (and
//! sysDescr's free part) and the syslog HOSTNAME will carry once those
//! services exist; today the console shows the server name in every
//! page's header and title, so a user with several devices sees which one
//! they are on. An empty server name means "use the host's name": the host
//! operating system owns its hostname, as it owns its clock.
//!
//! The time zone is for *display only*. The host's clock and its
//! synchronisation (NTP) belong to the operating system, and the NPort's
//! date, time and NTP fields have no counterpart here. The event log, its
//! CSV/JSON exports and the REST API keep UTC (RFC 3339 with `Z`): stored
//! and exchanged times must not change meaning when someone changes a
//! display setting, and a script comparing devices must not need to know
//! each one's zone. The console shows times in the zone, with its offset
//! and abbreviation, and reads the times typed into its filters in it.
//!
//! Zones are looked up in the IANA time zone database compiled into the
//! binary (jiff's bundled copy), never in `/usr/share/zoneinfo`: a minimal
//! host may have none, and validation must not depend on the host. The
//! price is a rebuild to follow a change of a country's rules.
//!
//! This module reads and checks the `[system]` section and converts times
//! for display; it does not set the clock or the hostname.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::config::walk::{Obj, Walk, kind};

/// Longest server name: one DNS label, so that it can become a host name.
pub const MAX_NAME_CHARS: usize = 63;
/// Longest location, description or contact, in characters.
pub const MAX_TEXT_CHARS: usize = 128;
/// Longest location, description or contact in UTF-8 bytes: SNMP's
/// DisplayString (sysLocation, sysContact) holds at most 255 octets.
pub const MAX_TEXT_BYTES: usize = 255;

/// System Settings > General: the `[system]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SystemSettings {
    /// The server name (SNMP sysName, syslog HOSTNAME, the console's
    /// header); empty: the host's name. 1–63 ASCII letters, digits, `-`,
    /// `_`, `.` and spaces (not at either end) when set: SNMP's
    /// DisplayString and syslog's HOSTNAME are ASCII.
    pub name: String,
    /// Where the device is (SNMP sysLocation); free text.
    pub location: String,
    /// What the device is for; free text.
    pub description: String,
    /// Who looks after it (SNMP sysContact); free text.
    pub contact: String,
    /// The zone the console shows times in; default UTC.
    pub time_zone: DisplayZone,
}

impl SystemSettings {
    /// The name the device goes by: the server name, or `host_name` when
    /// none is set.
    pub fn server_name<'a>(&'a self, host_name: &'a str) -> &'a str {
        if self.name.is_empty() {
            host_name
        } else {
            &self.name
        }
    }
}

/// An IANA time zone known to the bundled database, used to show times.
/// Two are equal when their names are.
#[derive(Clone, Debug)]
pub struct DisplayZone {
    /// The database's spelling of the name (lookups ignore ASCII case).
    name: String,
    zone: TimeZone,
}

/// A time zone name the database does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {given:?}; use an IANA name such as \"Europe/Berlin\"")]
pub struct UnknownTimeZone {
    /// What was given (cut to 64 characters).
    pub given: String,
}

/// A time typed into a filter that is neither RFC 3339 nor a local date
/// and time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a time such as 2026-01-31 08:00 (in {zone}) or 2026-01-31T08:00:00Z; give a date, optionally a time, optionally Z or an offset"
)]
pub struct BadLocalTime {
    /// What was given (cut to 64 characters).
    pub given: String,
    /// The zone a time without offset is read in.
    pub zone: String,
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The database every lookup uses: the copy compiled into the binary, so
/// that the host's files (or their absence) change nothing.
fn database() -> TimeZoneDatabase {
    TimeZoneDatabase::bundled()
}

impl Default for DisplayZone {
    fn default() -> Self {
        DisplayZone::utc()
    }
}

impl PartialEq for DisplayZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for DisplayZone {}

impl Serialize for DisplayZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl DisplayZone {
    /// Coordinated Universal Time, the default.
    pub fn utc() -> DisplayZone {
        DisplayZone {
            name: "UTC".into(),
            zone: TimeZone::UTC,
        }
    }

    /// The zone called `name` in the bundled IANA database (ASCII case is
    /// ignored; the database's spelling is kept).
    pub fn parse(name: &str) -> Result<DisplayZone, UnknownTimeZone> {
        let unknown = || UnknownTimeZone { given: cut(name) };
        // "Etc/Unknown" is jiff's marker for "no idea", not a place.
        let zone = database()
            .get(name)
            .ok()
            .filter(|z| !z.is_unknown())
            .ok_or_else(unknown)?;
        let name = zone.iana_name().unwrap_or(name).to_owned();
        Ok(DisplayZone { name, zone })
    }

    /// The IANA name, e.g. `Europe/Berlin`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every zone name the database knows, sorted (for the console's
    /// list of suggestions).
    pub fn names() -> &'static [String] {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        NAMES.get_or_init(|| {
            let mut names: Vec<String> = database()
                .available()
                .map(|n| n.as_str().to_owned())
                .collect();
            names.sort();
            names
        })
    }

    /// The zone's offset from UTC at `ts` (`+05:30`) and its abbreviation
    /// when it has a real one (`IST`, `CEST`; many zones only have a number
    /// such as `+04`, which would repeat the offset).
    fn offset_at(&self, ts: Timestamp) -> (String, Option<String>) {
        let info = self.zone.to_offset_info(ts);
        let seconds = info.offset().seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.unsigned_abs() / 60;
        let offset = format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60);
        let abbreviation = info.abbreviation();
        let named = abbreviation.starts_with(|c: char| c.is_ascii_alphabetic());
        (offset, named.then(|| abbreviation.to_owned()))
    }

    /// `at_ms` (Unix milliseconds) as local time in this zone, with its
    /// offset and abbreviation: `2026-05-01 17:30:00.250 +05:30 IST`. A
    /// time outside the years ±9999 (only a hand-edited database has one)
    /// falls back to the UTC form of the event log.
    pub fn format(&self, at_ms: i64) -> String {
        self.show(at_ms, true)
    }

    /// [`DisplayZone::format`] to the second, for clocks and dates that
    /// have no milliseconds: `2026-05-01 17:30:00 +05:30 IST`.
    pub fn format_s(&self, at_s: i64) -> String {
        self.show(at_s.saturating_mul(1000), false)
    }

    fn show(&self, at_ms: i64, millis: bool) -> String {
        let Ok(ts) = Timestamp::from_millisecond(at_ms) else {
            return crate::event_log::export::format_time(at_ms);
        };
        let local = self.zone.to_datetime(ts);
        let (offset, abbreviation) = self.offset_at(ts);
        let mut out = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            local.year(),
            local.month(),
            local.day(),
            local.hour(),
            local.minute(),
            local.second(),
        );
        if millis {
            out.push_str(&format!(".{:03}", local.millisecond()));
        }
        out.push(' ');
        out.push_str(&offset);
        if let Some(a) = abbreviation {
            out.push(' ');
            out.push_str(&a);
        }
        out
    }

    /// The zone as a user reads it at `at_ms`: `Asia/Kolkata (UTC+05:30,
    /// IST)`; UTC itself is just `UTC`.
    pub fn describe(&self, at_ms: i64) -> String {
        if *self == DisplayZone::utc() {
            return self.name.clone();
        }
        let ts = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        match self.offset_at(ts) {
            (offset, Some(a)) if a != self.name => format!("{} (UTC{offset}, {a})", self.name),
            (offset, _) => format!("{} (UTC{offset})", self.name),
        }
    }

    /// A time typed by a user, as Unix milliseconds: RFC 3339 with `Z` or
    /// an offset is taken as it is; a date (`2026-01-31`) or a date and
    /// time without offset (`2026-01-31 08:00`, `2026-01-31T08:00:00`) is
    /// read in this zone. A local time that a daylight saving change skips
    /// moves forward by the gap (02:30 becomes 03:30), one it repeats is the
    /// earlier of its two instants (Temporal's "compatible" rule).
    pub fn parse_local(&self, text: &str) -> Result<i64, BadLocalTime> {
        if let Ok(ms) = crate::event_log::export::parse_time(text) {
            return Ok(ms);
        }
        let bad = || BadLocalTime {
            given: cut(text),
            zone: self.name.clone(),
        };
        let local: DateTime = text.trim().parse().map_err(|_| bad())?;
        self.zone
            .to_ambiguous_timestamp(local)
            .compatible()
            .map(Timestamp::as_millisecond)
            .map_err(|_| bad())
    }
}

/// Read the `system` section.
pub(crate) fn read_system(w: &mut Walk, path: String, value: Option<&Value>) -> SystemSettings {
    let mut o = Obj::new(w, path, value);
    let name = server_name(w, &mut o);
    let location = free_text(w, &mut o, "location");
    let description = free_text(w, &mut o, "description");
    let contact = free_text(w, &mut o, "contact");
    let time_zone = time_zone(w, &mut o);
    o.finish(w);
    SystemSettings {
        name,
        location,
        description,
        contact,
        time_zone,
    }
}

/// A string field, or `None` after reporting a value of another kind.
fn string<'v>(w: &mut Walk, o: &mut Obj<'v>, key: &'static str) -> Option<&'v str> {
    let v = o.get(key)?;
    let s = v.as_str();
    if s.is_none() {
        w.err(&o.at(key), format!("expected a string, found {}", kind(v)));
    }
    s
}

fn server_name(w: &mut Walk, o: &mut Obj<'_>) -> String {
    let Some(s) = string(w, o, "name") else {
        return String::new();
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ');
    let valid = s.is_empty()
        || (s.chars().count() <= MAX_NAME_CHARS
            && s.chars().all(allowed)
            && !s.starts_with(' ')
            && !s.ends_with(' '));
    if valid {
        return s.to_owned();
    }
    w.err(
        &o.at("name"),
        format!(
            "{:?} is not a server name; use 1–{MAX_NAME_CHARS} ASCII letters, digits, '-', '_', '.' or spaces (none at either end), or \"\" for the host's name",
            cut(s)
        ),
    );
    String::new()
}

fn free_text(w: &mut Walk, o: &mut Obj<'_>, key: &'static str) -> String {
    let Some(s) = string(w, o, key) else {
        return String::new();
    };
    let problem = if s.chars().count() > MAX_TEXT_CHARS {
        Some(format!(
            "longer than {MAX_TEXT_CHARS} characters; shorten it"
        ))
    } else if s.len() > MAX_TEXT_BYTES {
        Some(format!(
            "longer than {MAX_TEXT_BYTES} bytes in UTF-8 (what SNMP can carry); shorten it or use fewer non-ASCII characters"
        ))
    } else if s.chars().any(char::is_control) {
        Some(
            "contains a control character (a line break, tab, ...); write one line of plain text"
                .into(),
        )
    } else {
        None
    };
    match problem {
        None => s.to_owned(),
        Some(p) => {
            w.err(&o.at(key), p);
            String::new()
        }
    }
}

fn time_zone(w: &mut Walk, o: &mut Obj<'_>) -> DisplayZone {
    let Some(s) = string(w, o, "time_zone") else {
        return DisplayZone::utc();
    };
    DisplayZone::parse(s).unwrap_or_else(|e| {
        w.err(&o.at("time_zone"), e.to_string());
        DisplayZone::utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: &Value) -> (SystemSettings, Vec<String>) {
        let mut w = Walk::default();
        let s = read_system(&mut w, "system".into(), Some(v));
        (s, w.errors.iter().map(|e| e.to_string()).collect())
    }

    fn zone(name: &str) -> DisplayZone {
        DisplayZone::parse(name).expect("a zone of the bundled database")
    }

    /// 2026-05-01T12:00:00.250Z
    const MAY_DAY: i64 = 1_777_636_800_250;

    #[test]
    fn defaults_are_no_name_and_utc() {
        let (s, errors) = read(&json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s, SystemSettings::default());
        assert_eq!(s.time_zone.name(), "UTC");
        assert_eq!(s.server_name("host-7"), "host-7");
        let mut w = Walk::default();
        assert_eq!(
            read_system(&mut w, "system".into(), None),
            SystemSettings::default()
        );
        assert!(w.errors.is_empty());
    }

    #[test]
    fn a_valid_section_is_read_and_round_trips() {
        let doc = json!({
            "name": "NP6150 line-3_a.b",
            "location": "Hall 2, cabinet 14 — Zürich",
            "description": "weighbridge terminals",
            "contact": "ops@example.com, +41 44 000 00 00",
            "time_zone": "Asia/Kolkata",
        });
        let (s, errors) = read(&doc);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.name, "NP6150 line-3_a.b");
        assert_eq!(s.server_name("host-7"), "NP6150 line-3_a.b");
        assert_eq!(s.time_zone.name(), "Asia/Kolkata");
        assert_eq!(serde_json::to_value(&s).expect("serialise"), doc);
    }

    #[test]
    fn zone_names_are_looked_up_without_regard_to_case_and_kept_canonical() {
        let (s, errors) = read(&json!({"time_zone": "europe/berlin"}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.time_zone.name(), "Europe/Berlin");
        assert_eq!(zone("utc"), DisplayZone::utc());
    }

    #[test]
    fn reports_every_bad_field_with_its_path() {
        let (s, errors) = read(&json!({
            "name": "tab\there",
            "location": "x".repeat(MAX_TEXT_CHARS + 1),
            "description": "two\nlines",
            "contact": 42,
            "time_zone": "Mars/Base",
            "ntp_server": "pool.ntp.org",
        }));
        let fields = [
            "name",
            "location",
            "description",
            "contact",
            "time_zone",
            "ntp_server",
        ];
        assert_eq!(errors.len(), fields.len(), "{errors:?}");
        for (e, f) in errors.iter().zip(fields) {
            assert!(e.starts_with(&format!("system.{f}: ")), "{e}");
        }
        assert_eq!(
            errors[4],
            "system.time_zone: unknown time zone \"Mars/Base\"; use an IANA name such as \"Europe/Berlin\""
        );
        assert!(
            errors[3].ends_with("expected a string, found a number"),
            "{}",
            errors[3]
        );
        // Bad fields fall back to defaults so the walk can go on.
        assert_eq!(s, SystemSettings::default());
    }

    #[test]
    fn server_names_are_one_label_of_ascii() {
        for good in ["a", "NPort-6150", "plant 3.line_2", &"x".repeat(63)] {
            let (s, errors) = read(&json!({ "name": good }));
            assert!(errors.is_empty(), "{good:?}: {errors:?}");
            assert_eq!(s.name, good);
        }
        for bad in [
            " lead",
            "trail ",
            "Zürich",
            "a/b",
            "semi;colon",
            &"x".repeat(64),
        ] {
            let (_, errors) = read(&json!({ "name": bad }));
            assert_eq!(errors.len(), 1, "{bad:?} was accepted");
            assert!(errors[0].starts_with("system.name: "), "{}", errors[0]);
            assert!(errors[0].contains("host's name"), "{}", errors[0]);
        }
    }

    #[test]
    fn free_text_is_limited_in_characters_and_in_snmp_bytes() {
        let (s, errors) = read(&json!({ "location": "é".repeat(MAX_TEXT_CHARS) }));
        assert_eq!(errors.len(), 1, "256 bytes fit SNMP: {errors:?}");
        assert!(errors[0].contains("255 bytes"), "{}", errors[0]);
        assert_eq!(s.location, "");
        let (s, errors) = read(&json!({ "location": "é".repeat(127) }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.location.chars().count(), 127);
        let (_, errors) = read(&json!({ "contact": "DEL\u{7f}" }));
        assert!(errors[0].contains("control character"), "{errors:?}");
    }

    #[test]
    fn the_bundled_database_does_not_depend_on_the_host() {
        // Zones the host may lack and the marker jiff uses for "unknown".
        assert!(DisplayZone::parse("Antarctica/Troll").is_ok());
        assert!(DisplayZone::parse("Etc/Unknown").is_err());
        assert!(DisplayZone::parse("../../etc/passwd").is_err());
        assert!(DisplayZone::parse("").is_err());
        let names = DisplayZone::names();
        assert!(names.len() > 300, "{} zones", names.len());
        assert!(names.iter().any(|n| n == "Asia/Kolkata"));
        assert!(names.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn times_are_shown_with_offset_and_abbreviation() {
        assert_eq!(
            zone("Asia/Kolkata").format(MAY_DAY),
            "2026-05-01 17:30:00.250 +05:30 IST"
        );
        assert_eq!(
            DisplayZone::utc().format(MAY_DAY),
            "2026-05-01 12:00:00.250 +00:00 UTC"
        );
        assert_eq!(
            zone("Europe/Berlin").format(MAY_DAY),
            "2026-05-01 14:00:00.250 +02:00 CEST"
        );
        // Winter: standard time.
        assert_eq!(
            zone("Europe/Berlin").format(1_767_268_800_000),
            "2026-01-01 13:00:00.000 +01:00 CET"
        );
        // A zone whose abbreviation is only a number shows it once.
        assert_eq!(
            zone("Asia/Dubai").format(MAY_DAY),
            "2026-05-01 16:00:00.250 +04:00"
        );
        assert_eq!(
            zone("America/St_Johns").format(MAY_DAY),
            "2026-05-01 09:30:00.250 -02:30 NDT"
        );
        assert_eq!(
            zone("Asia/Kolkata").format_s(MAY_DAY / 1000),
            "2026-05-01 17:30:00 +05:30 IST"
        );
        // Out of range: the event log's own form.
        assert_eq!(zone("Asia/Kolkata").format(i64::MAX), i64::MAX.to_string());
        assert_eq!(
            zone("Asia/Kolkata").describe(MAY_DAY),
            "Asia/Kolkata (UTC+05:30, IST)"
        );
        assert_eq!(DisplayZone::utc().describe(MAY_DAY), "UTC");
        assert_eq!(
            zone("Europe/London").describe(1_767_268_800_000),
            "Europe/London (UTC+00:00, GMT)"
        );
    }

    #[test]
    fn typed_times_are_read_in_the_zone_unless_they_carry_an_offset() {
        let kolkata = zone("Asia/Kolkata");
        let noon_utc = 1_777_636_800_000;
        for local in [
            "2026-05-01 17:30",
            "2026-05-01T17:30:00",
            " 2026-05-01 17:30:00.000 ",
        ] {
            assert_eq!(kolkata.parse_local(local), Ok(noon_utc), "{local}");
        }
        // Local midnight is 18:30 UTC the day before.
        assert_eq!(kolkata.parse_local("2026-05-01"), Ok(1_777_573_800_000));
        assert_eq!(kolkata.parse_local("2026-05-01T12:00:00Z"), Ok(noon_utc));
        assert_eq!(
            kolkata.parse_local("2026-05-01T14:00:00+02:00"),
            Ok(noon_utc)
        );
        let e = kolkata.parse_local("yesterday").expect_err("not a time");
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
        assert!(e.to_string().contains("Asia/Kolkata"), "{e}");
        // 02:30 does not exist in Berlin on 2026-03-29: it is read as 03:30
        // CEST; 02:30 on 2026-10-25 happens twice: the first (CEST) counts.
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            berlin.parse_local("2026-03-29 02:30"),
            berlin.parse_local("2026-03-29T01:30:00Z")
        );
        assert_eq!(
            berlin.parse_local("2026-10-25 02:30"),
            berlin.parse_local("2026-10-25T00:30:00Z")
        );
    }
}
