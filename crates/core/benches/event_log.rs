//! Event log queries and exports against a real store: the queries behind
//! Log View, `ttyward events` and the REST API, on a log of the default
//! size (10,000 entries) and of the largest allowed (1,000,000).
//!
//! Each store is a real `ttyward.db` in a temporary data directory, created
//! and migrated by [`Store::open`] and filled through
//! [`event_log::insert`] on a connection from [`store::open_connection`]
//! (WAL, `synchronous=FULL`), in transactions of 1,024 events as the
//! writer thread batches them. The writer itself ([`event_log::EventLog`])
//! is not used to fill: it stamps every event with the current time, and a
//! log written in a few seconds would make time-range queries meaningless.
//! The entries mimic a busy device: mostly serial sessions, then logins,
//! refused connections, device losses and configuration changes, one every
//! 8 s on average, from a few hundred client addresses and a handful of
//! accounts. Each log is filled to 110 % of its capacity so it has wrapped,
//! as a full log in service has.
//!
//! A store is built once, outside the measured loop, the first time a
//! benchmark of its group runs (so `cargo bench -- 10k` never builds the
//! big one); how long filling took is printed, with each query's number of
//! matches. The data directory is removed at the end of the group (set
//! `TTYWARD_BENCH_KEEP=1` to keep it and look at its query plans).
//!
//! Queries run through [`event_log::query`] and [`event_log::export`] on a
//! connection of their own, as `Service::export_events_blocking` does;
//! the store thread's hop (`Service::query_events`) is not measured.
//!
//! Run: `cargo bench -p ttyward-core --bench event_log`.

use std::cell::OnceCell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::Connection;
use ttyward_core::event_log::{
    self, Category, EventId, EventQuery, ExportFormat, NewEvent, Severity,
};
use ttyward_core::store::{self, Store};

/// Events per transaction while filling: the writer thread's largest batch.
const FILL_BATCH: u32 = 1_024;
/// Events per page in these benchmarks.
const PAGE: u32 = 50;
/// 2026-01-05T00:00:00Z, where the synthetic log starts.
const START_MS: i64 = 1_767_571_200_000;
/// One hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;
/// The client address the text search looks for.
const SEARCHED_ADDRESS: &str = "198.51.100.23";
/// The account the user filter looks for.
const SEARCHED_USER: &str = "alice";

/// How often each event occurs, in thousandths (roughly: the weights are
/// normalised by their sum).
const MIX: &[(EventId, u32)] = &[
    (EventId::PortConnected, 300),
    (EventId::PortDisconnected, 295),
    (EventId::PortConnectionRefused, 30),
    (EventId::PortConnectFailed, 30),
    (EventId::DeviceMissing, 15),
    (EventId::DeviceRecovered, 15),
    (EventId::PortStarted, 10),
    (EventId::PortStopped, 10),
    (EventId::SessionJammed, 5),
    (EventId::SerialSettingRefused, 5),
    (EventId::LoginSucceeded, 60),
    (EventId::LoginFailed, 50),
    (EventId::Logout, 40),
    (EventId::SessionExpired, 20),
    (EventId::AccountLocked, 3),
    (EventId::PasswordChanged, 2),
    (EventId::AllowlistRefused, 40),
    (EventId::DosTriggered, 10),
    (EventId::ConfigChanged, 20),
    (EventId::ConfigImported, 2),
    (EventId::SystemStart, 3),
    (EventId::SystemStop, 3),
    (EventId::ListenerFailed, 1),
];

/// Accounts that log in and change things.
const ACCOUNTS: &[&str] = &["admin", "alice", "bob", "carol", "ops-backup", "operator"];
/// Names typed at failed logins: the accounts, and the usual guesses.
const TYPED: &[&str] = &[
    "admin",
    "alice",
    "root",
    "guest",
    "administrator",
    "Admin",
    "bob",
];
/// The documentation prefixes clients come from (RFC 5737).
const NETS: &[&str] = &["192.0.2", "198.51.100", "203.0.113"];
/// Why a session closed.
const CLOSED: &[&str] = &[
    "closed by peer",
    "inactivity timeout",
    "TCP alive check failed",
    "port reconfigured",
];
/// Configuration paths that change.
const CHANGED: &[&str] = &[
    "ports[0].serial.baud_rate",
    "ports[3].mode",
    "ports[7].serial.flow_control",
    "security.allowlist",
    "services.web",
    "ports[12].mode.max_connections",
];

/// A data directory that is removed when dropped, unless
/// `TTYWARD_BENCH_KEEP` is set (to look at the database with `sqlite3`,
/// e.g. `EXPLAIN QUERY PLAN`; the path is printed).
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ttyward-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TTYWARD_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// SplitMix64: a fixed seed gives the same log on every run, so results
/// compare across runs and machines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }
}

/// Makes the entries of a busy device, oldest first.
struct Generator {
    rng: Rng,
    time_ms: i64,
    revision: u64,
    weights: u32,
}

impl Generator {
    fn new() -> Generator {
        Generator {
            rng: Rng(0x7474_7977_6172_6421),
            time_ms: START_MS,
            revision: 1,
            weights: MIX.iter().map(|(_, w)| w).sum(),
        }
    }

    /// A client address: one of about 760 hosts.
    fn address(&mut self) -> String {
        let net = self.rng.pick(NETS);
        format!("{net}.{}", 1 + self.rng.below(254))
    }

    fn next_event(&mut self) -> (NewEvent, i64) {
        // 0–16 s apart: one event every 8 s on average.
        self.time_ms += i64::try_from(self.rng.below(16_000)).unwrap_or(0);
        let mut roll = u32::try_from(self.rng.below(u64::from(self.weights))).unwrap_or(0);
        let mut event = EventId::PortConnected;
        for &(id, weight) in MIX {
            if roll < weight {
                event = id;
                break;
            }
            roll -= weight;
        }
        let port = 1 + self.rng.below(16);
        let peer = self.address();
        let e = match event {
            EventId::PortConnected => NewEvent::new(
                event,
                format!(
                    "port {port}: session opened from {peer}:{}",
                    49_152 + self.rng.below(16_000)
                ),
            )
            .with_source(peer),
            EventId::PortDisconnected => {
                let why = self.rng.pick(CLOSED);
                NewEvent::new(
                    event,
                    format!(
                        "port {port}: session {peer}:{} closed: {why}",
                        49_152 + self.rng.below(16_000)
                    ),
                )
                .with_source(peer)
            }
            EventId::PortConnectionRefused => NewEvent::new(
                event,
                format!("port {port}: connection from {peer} refused: max connections reached"),
            )
            .with_source(peer),
            EventId::PortConnectFailed => NewEvent::new(
                event,
                format!(
                    "port {port}: connect to 10.20.0.{port}:502 failed: Connection refused (os error 111)"
                ),
            ),
            EventId::DeviceMissing => NewEvent::new(
                event,
                format!(
                    "port {port}: device missing: /dev/ttyUSB{}: No such device (os error 19)",
                    port - 1
                ),
            ),
            EventId::DeviceRecovered => {
                NewEvent::new(event, format!("port {port}: device recovered"))
            }
            EventId::PortStarted => NewEvent::new(event, format!("port {port}: device opened")),
            EventId::PortStopped => NewEvent::new(
                event,
                format!("port {port}: port stopped: reconfigured"),
            ),
            EventId::SessionJammed => {
                NewEvent::new(event, format!("port {port}: session dropped: not taking data"))
            }
            EventId::SerialSettingRefused => NewEvent::new(
                event,
                format!("port {port}: serial setting refused: baud rate 31250 not supported"),
            ),
            EventId::LoginSucceeded => NewEvent::new(event, "logged in via web")
                .with_user(self.rng.pick(ACCOUNTS))
                .with_source(peer),
            EventId::LoginFailed => NewEvent::new(event, "wrong account or password")
                .with_user(self.rng.pick(TYPED))
                .with_source(peer),
            EventId::Logout => NewEvent::new(event, "logged out")
                .with_user(self.rng.pick(ACCOUNTS))
                .with_source(peer),
            EventId::SessionExpired => NewEvent::new(event, "session ended after 15 min idle")
                .with_user(self.rng.pick(ACCOUNTS))
                .with_source(peer),
            EventId::AccountLocked => NewEvent::new(
                event,
                format!("too many failed logins from {peer}: locked for 15 min"),
            )
            .with_user(self.rng.pick(TYPED))
            .with_source(peer),
            EventId::PasswordChanged => NewEvent::new(event, "password changed")
                .with_user(self.rng.pick(ACCOUNTS))
                .with_source(peer),
            EventId::AllowlistRefused => NewEvent::new(
                event,
                format!("web console: connection from {peer} refused: not in the allowlist"),
            )
            .with_source(peer),
            EventId::DosTriggered => NewEvent::new(
                event,
                format!(
                    "port {port}: connection from {peer} refused: too many connections from one source ({} more refused for this reason since the last report)",
                    self.rng.below(40)
                ),
            )
            .with_source(peer),
            EventId::ConfigChanged | EventId::ConfigImported => {
                self.revision += 1;
                let what = self.rng.pick(CHANGED);
                let user = self.rng.pick(ACCOUNTS);
                NewEvent::new(
                    event,
                    format!("configuration revision {}: {what}", self.revision),
                )
                .with_user(user)
                .with_source(peer)
            }
            EventId::ListenerFailed => NewEvent::new(
                event,
                "cannot listen on 0.0.0.0:443: Address in use (os error 98)",
            ),
            _ => NewEvent::new(event, "ttyward 0.1.0").with_source("local"),
        };
        (e, self.time_ms)
    }
}

/// A filled store and a connection to query it with.
struct Fixture {
    /// Dropped before `_dir`, so the database is closed before it goes.
    conn: Connection,
    capacity: u32,
    /// The oldest and newest entry's time.
    first_ms: i64,
    last_ms: i64,
    _dir: TempDir,
}

impl Fixture {
    /// A store of `capacity` entries, filled to 110 % of it.
    fn build(label: &str, capacity: u32) -> Fixture {
        let dir = TempDir::new(label);
        let started = Instant::now();
        let path = migrated_store(&dir.0);
        let mut conn = store::open_connection(&path).expect("open a connection to the store");
        let total = capacity + capacity / 10;
        let mut generator = Generator::new();
        let mut written = 0;
        while written < total {
            let tx = conn.transaction().expect("begin");
            for _ in 0..FILL_BATCH.min(total - written) {
                let (event, time_ms) = generator.next_event();
                event_log::insert(&tx, &event, time_ms, capacity).expect("insert");
            }
            tx.commit().expect("commit");
            written += FILL_BATCH.min(total - written);
        }
        let took = started.elapsed();
        let (first_ms, last_ms, count): (i64, i64, i64) = conn
            .query_row(
                "SELECT MIN(time_ms), MAX(time_ms), COUNT(*) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("span of the log");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        eprintln!(
            "{label}: wrote {total} events (keeping {count}) in {:.1} s, {:.0} events/s; \
             {:.1} days of log, database {:.0} MiB",
            took.as_secs_f64(),
            f64::from(total) / took.as_secs_f64(),
            (last_ms - first_ms) as f64 / 86_400_000.0,
            size as f64 / 1_048_576.0,
        );
        let fixture = Fixture {
            conn,
            capacity,
            first_ms,
            last_ms,
            _dir: dir,
        };
        for case in Case::ALL {
            let page = event_log::query(&fixture.conn, &case.query(&fixture)).expect("query");
            assert!(
                !page.events.is_empty(),
                "{label}/{} matches nothing: the generated log does not fit the query",
                case.name()
            );
            eprintln!("{label}/{}: {} matching", case.name(), page.total);
        }
        fixture
    }
}

/// The queries measured.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// Log View as an Administrator opens it: newest first, no filter.
    FirstPage,
    /// What an Operator's Log View asks: the service narrows every query
    /// of a caller without `log.security` to the other four categories.
    FirstPageWithoutSecurity,
    /// Security warnings (failed logins, lockouts, refused connections).
    CategorySeverity,
    /// Everything mentioning one client address.
    Text,
    /// One hour in the middle of the log.
    TimeRange,
    /// The same hour as an Operator asks for it (narrowed to the four
    /// categories other than Security).
    TimeRangeWithoutSecurity,
    /// Everything one account did.
    User,
    /// The last page by offset, as Log View's "next" links reach it.
    DeepPage,
}

impl Case {
    const ALL: [Case; 8] = [
        Case::FirstPage,
        Case::FirstPageWithoutSecurity,
        Case::CategorySeverity,
        Case::Text,
        Case::TimeRange,
        Case::TimeRangeWithoutSecurity,
        Case::User,
        Case::DeepPage,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::FirstPage => "first_page",
            Case::FirstPageWithoutSecurity => "first_page_without_security",
            Case::CategorySeverity => "category_severity",
            Case::Text => "text",
            Case::TimeRange => "time_range_1h_middle",
            Case::TimeRangeWithoutSecurity => "time_range_1h_middle_without_security",
            Case::User => "user",
            Case::DeepPage => "deep_page",
        }
    }

    fn query(self, f: &Fixture) -> EventQuery {
        let page = EventQuery {
            limit: PAGE,
            ..EventQuery::default()
        };
        let middle = f.first_ms + (f.last_ms - f.first_ms) / 2;
        let hour = EventQuery {
            from_ms: Some(middle),
            to_ms: Some(middle + HOUR_MS),
            ..page.clone()
        };
        let without_security: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|c| *c != Category::Security)
            .collect();
        match self {
            Case::FirstPage => page,
            Case::FirstPageWithoutSecurity => EventQuery {
                categories: without_security,
                ..page
            },
            Case::CategorySeverity => EventQuery {
                categories: vec![Category::Security],
                severities: vec![Severity::Warning],
                ..page
            },
            Case::Text => EventQuery {
                text: Some(SEARCHED_ADDRESS.into()),
                ..page
            },
            Case::TimeRange => hour,
            Case::TimeRangeWithoutSecurity => EventQuery {
                categories: without_security,
                ..hour
            },
            Case::User => EventQuery {
                user: Some(SEARCHED_USER.into()),
                ..page
            },
            Case::DeepPage => EventQuery {
                offset: u64::from(f.capacity - PAGE),
                ..page
            },
        }
    }
}

/// Create and migrate the store as the daemon does; returns the database
/// file. The store's thread ends with the handle.
fn migrated_store(dir: &Path) -> PathBuf {
    let store = Store::open(dir).expect("create the store");
    store.path().to_owned()
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Every query on a log of `capacity` entries, plus (when `exports`) both
/// exports of the whole log.
fn bench_log(c: &mut Criterion, label: &str, capacity: u32, exports: bool) {
    let fixture: OnceCell<Fixture> = OnceCell::new();
    let get = || fixture.get_or_init(|| Fixture::build(label, capacity));
    let mut group = c.benchmark_group(format!("event_log_{label}"));
    configure(&mut group);
    for case in Case::ALL {
        group.bench_function(case.name(), |b| {
            let f = get();
            let q = case.query(f);
            b.iter(|| event_log::query(&f.conn, black_box(&q)).expect("query"));
        });
    }
    if exports {
        group.throughput(Throughput::Elements(u64::from(capacity)));
        for (name, format) in [
            ("export_csv", ExportFormat::Csv),
            ("export_json", ExportFormat::Json),
        ] {
            group.bench_function(name, |b| {
                let f = get();
                let q = EventQuery::default();
                b.iter(|| {
                    let written =
                        event_log::export(&f.conn, &q, format, std::io::sink()).expect("export");
                    assert_eq!(written, u64::from(capacity));
                });
            });
        }
    }
    group.finish();
}

fn default_size(c: &mut Criterion) {
    bench_log(c, "10k", 10_000, true);
}

fn largest_size(c: &mut Criterion) {
    bench_log(c, "1m", 1_000_000, false);
}

criterion_group!(benches, default_size, largest_size);
criterion_main!(benches);
