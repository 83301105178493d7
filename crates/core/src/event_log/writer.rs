//! [`EventLog`]: the daemon's handle for recording events, and the writer
//! thread behind it (security.md CR 2.10: a full or failing log never stops
//! serial forwarding).
//!
//! `record` stamps the time and puts the event into a bounded queue; it
//! never waits, so the serial data path may call it. One thread owns its
//! own database connection and writes whatever has queued up in one
//! transaction per drain. When the queue is full or the database fails
//! (disk full, read-only, locked for longer than the busy timeout), events
//! are dropped and counted, never retried — a retry buffer would only grow
//! while the disk stays full. Once a write works again, one `events-dropped`
//! entry with the count is written ahead of the batch. Stored events are
//! then broadcast to subscribers (`events --follow` in process, syslog).
//!
//! Not here: the table and its queries ([`super::store`]), deciding who
//! recorded what (callers fill in user and source), rate-limiting floods of
//! one kind of event (the Gate counts refusals and records summaries).

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::EventLogError;
use super::catalog::EventId;
use super::settings::EventLogSettings;
use super::store::{Event, NewEvent, store, trim};

/// Events that may wait for the writer; more are dropped and counted.
pub const QUEUE_LEN: usize = 4_096;
/// Most events written in one transaction.
const MAX_BATCH: usize = 1_024;
/// Stored events a slow subscriber may fall behind before it loses the
/// oldest (it then gets `RecvError::Lagged`).
const BROADCAST_LEN: usize = 1_024;
/// How long one write waits for another connection's lock before the
/// batch counts as dropped. Short, because events queue up meanwhile.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

enum Msg {
    Record(NewEvent, i64),
    Flush(oneshot::Sender<()>),
}

/// State shared by every handle and the writer thread.
struct Shared {
    /// Per event (by catalog index): switched off in the settings.
    disabled: Box<[AtomicBool]>,
    capacity: AtomicU32,
    /// Every event lost since start (queue full or write failed).
    dropped: AtomicU64,
    /// Lost at the queue and not yet reported to the writer thread.
    queue_drops: AtomicU64,
    last_error: Mutex<Option<String>>,
    stored: broadcast::Sender<Event>,
}

impl Shared {
    fn set_last_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }
}

/// The handle for recording events; cheap to clone. The writer thread
/// stops when the last handle is dropped (call [`EventLog::flush`] first
/// to be sure everything is written).
#[derive(Clone)]
pub struct EventLog {
    queue: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("dropped", &self.dropped())
            .field("last_error", &self.last_error())
            .finish_non_exhaustive()
    }
}

impl EventLog {
    /// Start the writer thread. `open` opens a connection to the database
    /// whose schema is already migrated (`crate::store::open_connection`);
    /// it is called on the writer thread at the first write and again after
    /// every failed one, so a database that comes back is used again. The
    /// writer sets its own busy timeout on the connection.
    pub fn start<F, E>(settings: &EventLogSettings, mut open: F) -> Result<EventLog, EventLogError>
    where
        F: FnMut() -> Result<Connection, E> + Send + 'static,
        E: Display,
    {
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        let (stored, _) = broadcast::channel(BROADCAST_LEN);
        let shared = Arc::new(Shared {
            disabled: EventId::ALL
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
            capacity: AtomicU32::new(settings.capacity),
            dropped: AtomicU64::new(0),
            queue_drops: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stored,
        });
        let log = EventLog { queue, shared };
        log.update_settings(settings);
        let writer = Writer {
            shared: Arc::clone(&log.shared),
            open: Box::new(move || open().map_err(|e| e.to_string())),
            conn: None,
            unreported: 0,
        };
        std::thread::Builder::new()
            .name("ttyward-event-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| EventLogError::Spawn { source })?;
        Ok(log)
    }

    /// Record `event` now. Never waits: when the queue is full or the
    /// writer has stopped, the event is dropped and counted. Disabled
    /// events are ignored.
    pub fn record(&self, event: NewEvent) {
        if !self.is_enabled(event.event) {
            return;
        }
        if self.queue.try_send(Msg::Record(event, now_ms())).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.shared.queue_drops.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether `event` is recorded under the settings in force (callers
    /// may skip building a costly message when not).
    pub fn is_enabled(&self, event: EventId) -> bool {
        self.shared
            .disabled
            .get(event.index())
            .is_none_or(|d| !d.load(Ordering::Relaxed))
    }

    /// Apply new settings at once: events recorded from now on are
    /// filtered by them, and the next write trims to the new capacity.
    /// Recording that the settings changed (who, what) is the caller's
    /// job.
    pub fn update_settings(&self, settings: &EventLogSettings) {
        self.shared
            .capacity
            .store(settings.capacity.max(1), Ordering::Relaxed);
        for &event in EventId::ALL {
            if let Some(flag) = self.shared.disabled.get(event.index()) {
                flag.store(
                    event.can_disable() && !settings.is_enabled(event),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Wait until everything recorded before this call has been written
    /// (or dropped, if the database failed).
    pub async fn flush(&self) -> Result<(), EventLogError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Msg::Flush(done))
            .await
            .map_err(|_| EventLogError::Closed)?;
        wait.await.map_err(|_| EventLogError::Closed)
    }

    /// [`EventLog::flush`] for code outside the async runtime (the command
    /// line, tests). Panics if called from inside an async task, as tokio's
    /// blocking calls do.
    pub fn flush_blocking(&self) -> Result<(), EventLogError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .blocking_send(Msg::Flush(done))
            .map_err(|_| EventLogError::Closed)?;
        wait.blocking_recv().map_err(|_| EventLogError::Closed)
    }

    /// Events as they are stored. A subscriber that falls more than 1,024
    /// events behind loses the oldest (`RecvError::Lagged` says how many);
    /// the writer never waits for it.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.stored.subscribe()
    }

    /// Events lost since start because the queue was full or the database
    /// failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Why the last write failed, while the database is failing; `None`
    /// once a write works.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type Open = Box<dyn FnMut() -> Result<Connection, String> + Send>;

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    open: Open,
    conn: Option<Connection>,
    /// Lost and not yet written down as an `events-dropped` entry.
    unreported: u64,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut messages = Vec::with_capacity(MAX_BATCH);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut flushed = Vec::new();
        // Ends when every handle is gone and the queue is empty.
        while rx.blocking_recv_many(&mut messages, MAX_BATCH) > 0 {
            for msg in messages.drain(..) {
                match msg {
                    Msg::Record(event, time_ms) => batch.push((event, time_ms)),
                    Msg::Flush(done) => flushed.push(done),
                }
            }
            self.write(&batch);
            batch.clear();
            for done in flushed.drain(..) {
                let _ = done.send(());
            }
        }
        // Last chance to write down what was lost.
        self.write(&[]);
    }

    /// Write `batch` in one transaction, preceded by an `events-dropped`
    /// entry when events were lost since the last successful write.
    fn write(&mut self, batch: &[(NewEvent, i64)]) {
        self.unreported += self.shared.queue_drops.swap(0, Ordering::AcqRel);
        if batch.is_empty() && self.unreported == 0 {
            return;
        }
        match self.try_write(batch) {
            Ok(stored) => {
                self.unreported = 0;
                self.shared.set_last_error(None);
                for event in stored {
                    // No subscriber is not an error.
                    let _ = self.shared.stored.send(event);
                }
            }
            Err(error) => {
                // Reopen next time: the file may have been replaced, or
                // the connection be left in a bad state.
                self.conn = None;
                let lost = u64::try_from(batch.len()).unwrap_or(u64::MAX);
                self.unreported = self.unreported.saturating_add(lost);
                self.shared.dropped.fetch_add(lost, Ordering::Relaxed);
                self.shared.set_last_error(Some(error));
            }
        }
    }

    fn try_write(&mut self, batch: &[(NewEvent, i64)]) -> Result<Vec<Event>, String> {
        if self.conn.is_none() {
            let conn = (self.open)()?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("no connection".to_owned());
        };
        let capacity = self.shared.capacity.load(Ordering::Relaxed);
        let unreported = self.unreported;
        let last_error = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let result = (|| {
            let tx = conn.transaction()?;
            let mut stored = Vec::with_capacity(batch.len() + 1);
            if unreported > 0 {
                stored.push(store(
                    &tx,
                    &dropped_event(unreported, last_error.as_deref()),
                    now_ms(),
                )?);
            }
            for (event, time_ms) in batch {
                stored.push(store(&tx, event, *time_ms)?);
            }
            if let Some(last) = stored.last() {
                trim(&tx, last.seq, capacity)?;
            }
            tx.commit()?;
            Ok::<_, EventLogError>(stored)
        })();
        result.map_err(|e| e.to_string())
    }
}

/// The entry that reports `count` lost events.
fn dropped_event(count: u64, cause: Option<&str>) -> NewEvent {
    let noun = if count == 1 {
        "event was"
    } else {
        "events were"
    };
    let message = match cause {
        Some(cause) => format!("{count} {noun} not recorded: the event log store failed ({cause})"),
        None => format!("{count} {noun} not recorded: the event log could not keep up"),
    };
    NewEvent::new(EventId::EventsDropped, message).with_source("local")
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    use super::*;
    use crate::event_log::store::{EventQuery, Order, SCHEMA, query};

    struct TempDb {
        dir: PathBuf,
    }

    impl TempDb {
        fn new(name: &str) -> TempDb {
            let dir = std::env::temp_dir().join(format!(
                "ttyward-evlog-{name}-{}-{}",
                std::process::id(),
                now_ms()
            ));
            std::fs::create_dir_all(&dir).expect("tempdir");
            let db = TempDb { dir };
            db.open().execute_batch(SCHEMA).expect("schema");
            db
        }

        fn path(&self) -> PathBuf {
            self.dir.join("ttyward.db")
        }

        fn open(&self) -> Connection {
            open_wal(&self.path()).expect("open")
        }

        fn opener(&self) -> impl FnMut() -> Result<Connection, rusqlite::Error> + Send + 'static {
            let path = self.path();
            move || open_wal(&path)
        }

        fn all(&self) -> Vec<Event> {
            let conn = self.open();
            let mut events = Vec::new();
            let mut q = EventQuery {
                order: Order::OldestFirst,
                limit: 1_000,
                ..EventQuery::default()
            };
            for _ in 0..1_000 {
                let page = query(&conn, &q).expect("query").events;
                let Some(last) = page.last() else { break };
                q.after_seq = Some(last.seq);
                events.extend(page);
            }
            events
        }

        /// Make every insert fail, as a full disk would.
        fn break_writes(&self) {
            self.open()
                .execute_batch(
                    "CREATE TRIGGER full BEFORE INSERT ON events
                     BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
                )
                .expect("trigger");
        }

        fn mend_writes(&self) {
            self.open()
                .execute_batch("DROP TRIGGER full;")
                .expect("drop trigger");
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn open_wal(path: &Path) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Ok(conn)
    }

    /// The count an `events-dropped` message reports.
    fn count_in(message: &str) -> u64 {
        message
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {message:?}"))
    }

    #[test]
    fn stores_recorded_events_once_flushed() {
        let db = TempDb::new("store");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        for i in 0..10 {
            log.record(
                NewEvent::new(EventId::PortConnected, format!("client {i}"))
                    .with_source("192.0.2.1:5000"),
            );
        }
        log.flush_blocking().expect("flush");
        let events = db.all();
        assert_eq!(events.len(), 10);
        assert_eq!(events[9].message, "client 9");
        assert_eq!(events[9].source.as_deref(), Some("192.0.2.1:5000"));
        assert!(events.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
        assert_eq!(log.dropped(), 0);
        assert_eq!(log.last_error(), None);
    }

    #[test]
    fn does_not_store_disabled_events_and_applies_settings_live() {
        let db = TempDb::new("disabled");
        let settings = EventLogSettings {
            capacity: 10_000,
            disabled: vec![EventId::PortConnected],
        };
        let log = EventLog::start(&settings, db.opener()).expect("start");
        assert!(!log.is_enabled(EventId::PortConnected));
        log.record(NewEvent::new(EventId::PortConnected, "not stored"));
        log.record(NewEvent::new(EventId::LoginFailed, "stored"));
        log.update_settings(&EventLogSettings {
            capacity: 1_000,
            disabled: vec![EventId::LoginFailed],
        });
        log.record(NewEvent::new(EventId::PortConnected, "stored now"));
        log.record(NewEvent::new(EventId::LoginFailed, "not stored now"));
        log.flush_blocking().expect("flush");
        let messages: Vec<String> = db.all().into_iter().map(|e| e.message).collect();
        assert_eq!(messages, ["stored", "stored now"]);
        for i in 0..1_500 {
            log.record(NewEvent::new(EventId::PortConnected, format!("{i}")));
            if i % 1_000 == 0 {
                log.flush_blocking().expect("flush");
            }
        }
        log.flush_blocking().expect("flush");
        let events = db.all();
        assert_eq!(events.len(), 1_000, "the new capacity is in force");
        assert_eq!(events.last().map(|e| e.message.as_str()), Some("1499"));
    }

    #[test]
    fn cannot_disable_the_events_that_report_on_the_log_itself() {
        let db = TempDb::new("mandatory");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        log.update_settings(&EventLogSettings {
            capacity: 10_000,
            disabled: vec![EventId::EventLogSettingsChanged],
        });
        assert!(log.is_enabled(EventId::EventLogSettingsChanged));
    }

    #[test]
    fn record_never_blocks_while_the_database_fails() {
        let db = TempDb::new("failing");
        db.break_writes();
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        let start = Instant::now();
        for i in 0..100_000 {
            log.record(NewEvent::new(EventId::PortConnected, format!("client {i}")));
        }
        let took = start.elapsed();
        // A record that waited for the database (tens of microseconds at
        // best, with a sync per commit) would take many seconds.
        assert!(
            took < Duration::from_secs(5),
            "100,000 records took {took:?}"
        );
        log.flush_blocking().expect("flush");
        assert_eq!(log.dropped(), 100_000);
        assert!(
            log.last_error().is_some_and(|e| e.contains("disk is full")),
            "{:?}",
            log.last_error()
        );
        assert!(db.all().is_empty());
    }

    #[test]
    fn records_how_many_were_dropped_once_writing_works_again() {
        let db = TempDb::new("recover");
        db.break_writes();
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        let mut stored = log.subscribe();
        for i in 0..10 {
            log.record(NewEvent::new(EventId::LoginFailed, format!("lost {i}")));
        }
        log.flush_blocking().expect("flush");
        assert_eq!(log.dropped(), 10);
        db.mend_writes();
        log.record(NewEvent::new(EventId::LoginFailed, "kept"));
        log.flush_blocking().expect("flush");
        let events = db.all();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].event, EventId::EventsDropped);
        assert_eq!(count_in(&events[0].message), 10);
        assert!(
            events[0].message.contains("disk is full"),
            "{}",
            events[0].message
        );
        assert_eq!(events[1].message, "kept");
        assert_eq!(log.last_error(), None);
        // Subscribers see exactly what was stored, with sequence numbers.
        assert_eq!(stored.try_recv().expect("dropped event"), events[0]);
        assert_eq!(stored.try_recv().expect("kept event"), events[1]);
        assert!(stored.try_recv().is_err());
    }

    #[test]
    fn reopens_a_database_that_could_not_be_opened() {
        let db = TempDb::new("reopen");
        let available = Arc::new(AtomicBool::new(false));
        let mut open = db.opener();
        let gate = Arc::clone(&available);
        let log = EventLog::start(&EventLogSettings::default(), move || {
            if gate.load(Ordering::SeqCst) {
                open().map_err(|e| e.to_string())
            } else {
                Err("unable to open database file: read-only file system".to_owned())
            }
        })
        .expect("start");
        log.record(NewEvent::new(EventId::SystemStart, "lost"));
        log.flush_blocking().expect("flush");
        assert!(log.last_error().is_some_and(|e| e.contains("read-only")));
        available.store(true, Ordering::SeqCst);
        log.record(NewEvent::new(EventId::SystemStop, "kept"));
        log.flush_blocking().expect("flush");
        let events: Vec<(EventId, String)> =
            db.all().into_iter().map(|e| (e.event, e.message)).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0, EventId::EventsDropped);
        assert!(
            events[0].1.starts_with("1 event was not recorded"),
            "{}",
            events[0].1
        );
        assert_eq!(events[1], (EventId::SystemStop, "kept".to_owned()));
    }

    #[test]
    fn a_locked_database_neither_blocks_record_nor_loses_count() {
        let db = TempDb::new("locked");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        let holder = db.open();
        holder.execute_batch("BEGIN EXCLUSIVE;").expect("lock");
        let start = Instant::now();
        for i in 0..100_000 {
            log.record(NewEvent::new(EventId::PortDisconnected, format!("{i}")));
        }
        let took = start.elapsed();
        holder.execute_batch("COMMIT;").expect("unlock");
        assert!(
            took < Duration::from_secs(5),
            "100,000 records took {took:?}"
        );
        log.flush_blocking().expect("flush");
        // What waited for the lock is either stored or counted, and the
        // count is written down.
        log.record(NewEvent::new(EventId::SystemStop, "after"));
        log.flush_blocking().expect("flush");
        let events = db.all();
        let kept = events
            .iter()
            .filter(|e| e.event == EventId::PortDisconnected)
            .count();
        let reported: u64 = events
            .iter()
            .filter(|e| e.event == EventId::EventsDropped)
            .map(|e| count_in(&e.message))
            .sum();
        assert!(log.dropped() > 0, "the queue cannot hold 100,000");
        assert_eq!(reported, log.dropped());
        assert_eq!(u64::try_from(kept).expect("count") + log.dropped(), 100_000);
    }

    #[test]
    fn keeps_the_newest_ten_thousand_of_twelve_thousand() {
        let db = TempDb::new("capacity");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        for i in 1..=12_000 {
            log.record(NewEvent::new(EventId::PortConnected, format!("{i}")));
            if i % 2_000 == 0 {
                // Stay within the queue so that nothing is dropped.
                log.flush_blocking().expect("flush");
            }
        }
        log.flush_blocking().expect("flush");
        let events = db.all();
        assert_eq!(log.dropped(), 0);
        assert_eq!(events.len(), 10_000);
        assert_eq!(events.first().map(|e| e.seq), Some(2_001));
        assert_eq!(events.last().map(|e| e.seq), Some(12_000));
    }

    #[tokio::test]
    async fn flush_and_subscribe_work_inside_the_runtime() {
        let db = TempDb::new("async");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        let mut stored = log.subscribe();
        log.record(NewEvent::new(EventId::DeviceMissing, "port 1: gone").with_user("alice"));
        log.flush().await.expect("flush");
        let event = stored.recv().await.expect("event");
        assert_eq!((event.seq, event.event), (1, EventId::DeviceMissing));
        assert_eq!(event.user.as_deref(), Some("alice"));
    }

    #[test]
    fn the_writer_stops_with_the_last_handle() {
        let db = TempDb::new("stop");
        let log = EventLog::start(&EventLogSettings::default(), db.opener()).expect("start");
        let mut stored = log.subscribe();
        log.record(NewEvent::new(EventId::SystemStop, "bye"));
        drop(log);
        // The queue is drained before the thread ends; then the channel
        // closes.
        assert_eq!(stored.blocking_recv().expect("stored").message, "bye");
        assert!(matches!(
            stored.blocking_recv(),
            Err(broadcast::error::RecvError::Closed)
        ));
    }
}
