//! The Gate: the first thing every accepted connection and every received
//! datagram meets (seed §3.5 Allowlist, §3.7 DoS Defense; security.md
//! CR 7.1/7.2).
//!
//! In order: the allowlist (is this source let in to this kind of
//! service?), then, with DoS defence on, the global connection cap, the
//! per-source connection cap and the per-source accept-rate token bucket.
//! An admitted connection holds a [`GatePermit`] that gives its slot back
//! when dropped. Refusals are counted; only the first of a burst is
//! reported for the log, then one summary with the count per
//! [`REPORT_EVERY`], so a flood cannot flood the event log.
//!
//! The management plane also charges every HTTP request (HTTP/2: every
//! stream) to a second per-source token bucket through
//! [`GatePermit::admit_request`]: one kept-alive connection costs one
//! accept token but may carry any number of requests, and password
//! guessing or scraping over it must meet a limit too. The Gate only
//! decides; answering `429` is the web server's business.
//!
//! One `Gate` serves both planes (the management listeners use
//! [`Gate::handshake_timeout`] for their TLS and HTTP handshakes). Settings
//! change live with [`Gate::update`]; connections already admitted stay.
//! The state sits behind a std `Mutex` held for a few hash-map operations
//! and never across an `.await`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ttyward_core::access::{Allowlist, DosSettings, ServiceKind};

/// At most one refusal report per reason in this period; the refusals in
/// between are counted into the next report.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Sources remembered for their token buckets. Beyond this, idle sources
/// whose buckets have refilled are forgotten; if that is not enough (a
/// flood from more addresses than this), new sources are refused as over
/// the global limit until some are forgotten. A source sending requests
/// holds a connection, so it is never forgotten while it does: the request
/// buckets live in the same bounded table.
const MAX_TRACKED_SOURCES: usize = 16_384;

/// Why a connection, datagram or request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The source is not in the allowlist for this service.
    NotAllowed,
    /// The device holds its maximum number of connections.
    GlobalLimit,
    /// The source holds its maximum number of connections.
    SourceLimit,
    /// The source opens connections faster than its accept rate.
    RateLimit,
    /// The source sends HTTP requests faster than its request rate (on
    /// connections already admitted).
    RequestRate,
}

/// Number of [`Refusal`] kinds: the size of the counter and report arrays.
const REFUSALS: usize = 5;

impl Refusal {
    /// Slot in the counter and report arrays.
    fn index(self) -> usize {
        match self {
            Refusal::NotAllowed => 0,
            Refusal::GlobalLimit => 1,
            Refusal::SourceLimit => 2,
            Refusal::RateLimit => 3,
            Refusal::RequestRate => 4,
        }
    }

    /// True for the allowlist, false for the DoS limits.
    pub fn is_allowlist(self) -> bool {
        self == Refusal::NotAllowed
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAllowed => "not in the allowlist",
            Refusal::GlobalLimit => "DoS defence: too many connections in total",
            Refusal::SourceLimit => "DoS defence: too many connections from this address",
            Refusal::RateLimit => "DoS defence: this address opens connections too fast",
            Refusal::RequestRate => "DoS defence: this address sends requests too fast",
        })
    }
}

/// A refused connection, datagram or request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: Refusal,
    /// `Some(n)` when this refusal should be logged: `n` more of the same
    /// reason were refused (and not logged) since the last report. `None`:
    /// counted only.
    pub report: Option<u64>,
}

/// Refusals since start, by reason, and connections held now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Refused by the allowlist.
    pub not_allowed: u64,
    /// Refused at the global cap.
    pub global_limit: u64,
    /// Refused at the per-source cap.
    pub source_limit: u64,
    /// Refused by the accept-rate bucket.
    pub rate_limit: u64,
    /// Requests refused by the request-rate bucket.
    pub request_rate: u64,
    /// Connections admitted and still open.
    pub active: u64,
}

/// Count a refusal on the port it was meant for and report it when the
/// Gate says it is due (shared by every serial front-end).
pub(crate) fn count_refusal(
    port: &crate::port::PortHandle,
    events: &crate::event::EventSink,
    peer: std::net::SocketAddr,
    refused: Refused,
) {
    crate::counters::add(&port.counters().connections_refused, 1);
    if let Some(suppressed) = refused.report {
        events.emit(
            port.number(),
            crate::event::EventKind::GateRefused {
                peer,
                reason: refused.reason,
                suppressed,
            },
        );
    }
}

/// The next connection on a serial port's listener that the Gate admits
/// (shared by every serial accept loop); `None` once `cancel` fires.
/// Refusals are counted and reported; a failing accept (EMFILE and
/// friends) backs off instead of spinning.
pub(crate) async fn next_admitted(
    listener: &tokio::net::TcpListener,
    gate: &Gate,
    port: &crate::port::PortHandle,
    events: &crate::event::EventSink,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr, GatePermit)> {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return None,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(port = port.number(), "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // The Gate first: a refused source must not use up one of the
        // port's connection slots, even for a moment.
        match gate.admit(peer.ip(), ServiceKind::Serial) {
            Ok(permit) => return Some((stream, peer, permit)),
            Err(refused) => count_refusal(port, events, peer, refused),
        }
    }
}

/// A request refused by the request-rate bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// The refusal, with [`Refusal::RequestRate`] and whether to report it.
    pub refused: Refused,
    /// How long until the source's bucket holds a token again (what the
    /// `Retry-After` header says, rounded up to whole seconds).
    pub retry_after: Duration,
}

/// The clonable handle on the one Gate of the process.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Mutex<State>>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("stats", &self.stats())
            .finish()
    }
}

struct State {
    allowlist: Allowlist,
    dos: DosSettings,
    active: u64,
    sources: HashMap<IpAddr, Source>,
    refused: [u64; REFUSALS],
    reports: [Report; REFUSALS],
}

/// One source address's connections and token buckets.
struct Source {
    active: u32,
    /// Accept bucket: one token per new connection.
    tokens: f64,
    refilled: Instant,
    /// Request bucket: one token per HTTP request (management plane).
    requests: f64,
    requests_refilled: Instant,
}

impl Source {
    /// A source seen for the first time: a full request bucket, and an
    /// accept bucket holding `tokens`.
    fn new(tokens: f64, dos: &DosSettings, now: Instant) -> Source {
        Source {
            active: 0,
            tokens,
            refilled: now,
            requests: f64::from(dos.request_burst),
            requests_refilled: now,
        }
    }
}

#[derive(Default)]
struct Report {
    last: Option<Instant>,
    unreported: u64,
}

/// An admitted connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct GatePermit {
    gate: Gate,
    source: IpAddr,
}

impl GatePermit {
    /// Charge one HTTP request (HTTP/2: one stream) arriving on this
    /// connection to its source's request bucket. With DoS defence off
    /// every request passes.
    pub fn admit_request(&self) -> Result<(), Throttled> {
        self.admit_request_at(Instant::now())
    }

    fn admit_request_at(&self, now: Instant) -> Result<(), Throttled> {
        self.gate.lock().charge_request(self.source, now)
    }

    /// The source address this permit was given to (IPv4-mapped addresses
    /// as plain IPv4).
    pub fn source(&self) -> IpAddr {
        self.source
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.active = s.active.saturating_sub(1);
        if let Some(src) = s.sources.get_mut(&self.source) {
            src.active = src.active.saturating_sub(1);
        }
    }
}

impl Gate {
    /// A Gate applying these settings.
    pub fn new(allowlist: &Allowlist, dos: &DosSettings) -> Gate {
        Gate {
            inner: Arc::new(Mutex::new(State {
                allowlist: allowlist.clone(),
                dos: *dos,
                active: 0,
                sources: HashMap::new(),
                refused: [0; REFUSALS],
                reports: Default::default(),
            })),
        }
    }

    /// Apply new settings from now on; admitted connections stay.
    pub fn update(&self, allowlist: &Allowlist, dos: &DosSettings) {
        let mut s = self.lock();
        s.allowlist = allowlist.clone();
        s.dos = *dos;
    }

    /// Admit a new connection from `peer` to a `service` listener, or say
    /// why not.
    pub fn admit(&self, peer: IpAddr, service: ServiceKind) -> Result<GatePermit, Refused> {
        self.admit_at(peer, service, Instant::now())
    }

    fn admit_at(
        &self,
        peer: IpAddr,
        service: ServiceKind,
        now: Instant,
    ) -> Result<GatePermit, Refused> {
        // An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d;
        // the allowlist and the per-source state see it as a.b.c.d.
        let peer = peer.to_canonical();
        let mut s = self.lock();
        if !s.allowlist.allows(peer, service) {
            return Err(s.refuse(Refusal::NotAllowed, now));
        }
        let dos = s.dos;
        if dos.enabled {
            if s.active >= u64::from(dos.max_connections) {
                return Err(s.refuse(Refusal::GlobalLimit, now));
            }
            if !s.sources.contains_key(&peer) && !s.make_room(now) {
                return Err(s.refuse(Refusal::GlobalLimit, now));
            }
            let src = s
                .sources
                .entry(peer)
                .or_insert_with(|| Source::new(f64::from(dos.accept_burst), &dos, now));
            if src.active >= u32::from(dos.per_source_connections) {
                return Err(s.refuse(Refusal::SourceLimit, now));
            }
            src.refill(&dos, now);
            if src.tokens < 1.0 {
                return Err(s.refuse(Refusal::RateLimit, now));
            }
            src.tokens -= 1.0;
            src.active += 1;
        } else {
            s.sources
                .entry(peer)
                .or_insert_with(|| Source::new(0.0, &dos, now))
                .active += 1;
        }
        s.active += 1;
        drop(s);
        Ok(GatePermit {
            gate: self.clone(),
            source: peer,
        })
    }

    /// The allowlist check alone, for connectionless traffic (UDP mode):
    /// a datagram holds no slot and opens nothing, so the DoS limits on
    /// connections do not apply to it.
    pub fn check_datagram(&self, peer: IpAddr, service: ServiceKind) -> Result<(), Refused> {
        let peer = peer.to_canonical();
        let mut s = self.lock();
        if s.allowlist.allows(peer, service) {
            Ok(())
        } else {
            Err(s.refuse(Refusal::NotAllowed, Instant::now()))
        }
    }

    /// How long a TLS, SSH or HTTP handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.lock().dos.handshake_timeout()
    }

    /// Refusals since start and connections held now.
    pub fn stats(&self) -> GateStats {
        let s = self.lock();
        let [
            not_allowed,
            global_limit,
            source_limit,
            rate_limit,
            request_rate,
        ] = s.refused;
        GateStats {
            not_allowed,
            global_limit,
            source_limit,
            rate_limit,
            request_rate,
            active: s.active,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent across a panic elsewhere: every
        // critical section is a handful of counter updates.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn refuse(&mut self, reason: Refusal, now: Instant) -> Refused {
        let i = reason.index();
        if let Some(n) = self.refused.get_mut(i) {
            *n += 1;
        }
        let report = self.reports.get_mut(i).and_then(|r| {
            let due = r
                .last
                .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
            if due {
                r.last = Some(now);
                Some(std::mem::take(&mut r.unreported))
            } else {
                r.unreported += 1;
                None
            }
        });
        Refused { reason, report }
    }

    /// Forget idle sources whose buckets are full again, when the table is
    /// at its size limit. False when no room could be made.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.sources.len() < MAX_TRACKED_SOURCES {
            return true;
        }
        let dos = self.dos;
        // Keeping a source whose request bucket is still low means a client
        // cannot get a fresh burst by closing its connections and coming
        // back.
        self.sources.retain(|_, src| {
            src.refill(&dos, now);
            src.refill_requests(&dos, now);
            src.active > 0
                || src.tokens < f64::from(dos.accept_burst)
                || src.requests < f64::from(dos.request_burst)
        });
        self.sources.len() < MAX_TRACKED_SOURCES
    }

    /// Take one request token from `peer`'s bucket, or say how long until
    /// there is one.
    fn charge_request(&mut self, peer: IpAddr, now: Instant) -> Result<(), Throttled> {
        let dos = self.dos;
        if !dos.enabled {
            return Ok(());
        }
        // The permit that asks keeps its source in the table (`active` > 0
        // is never forgotten); a missing entry would be a bug here, and
        // letting the request through is the safe way to be wrong.
        let Some(src) = self.sources.get_mut(&peer) else {
            return Ok(());
        };
        src.refill_requests(&dos, now);
        if src.requests >= 1.0 {
            src.requests -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - src.requests;
        let retry_after = Duration::from_secs_f64(missing / f64::from(dos.request_rate.max(1)));
        Err(Throttled {
            refused: self.refuse(Refusal::RequestRate, now),
            retry_after,
        })
    }
}

impl Source {
    fn refill(&mut self, dos: &DosSettings, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * f64::from(dos.accept_rate)).min(f64::from(dos.accept_burst));
        self.refilled = now;
    }

    fn refill_requests(&mut self, dos: &DosSettings, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.requests_refilled)
            .as_secs_f64();
        self.requests = (self.requests + elapsed * f64::from(dos.request_rate))
            .min(f64::from(dos.request_burst));
        self.requests_refilled = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ttyward_core::access::AllowEntry;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn dos(per_source: u16, max: u16, rate: u16, burst: u16) -> DosSettings {
        DosSettings {
            enabled: true,
            per_source_connections: per_source,
            max_connections: max,
            accept_rate: rate,
            accept_burst: burst,
            request_rate: 1000,
            request_burst: 1000,
            handshake_timeout_s: 10,
        }
    }

    /// Generous connection limits and this request bucket.
    fn requests(rate: u16, burst: u16) -> DosSettings {
        DosSettings {
            request_rate: rate,
            request_burst: burst,
            ..dos(1000, u16::MAX, 10_000, 10_000)
        }
    }

    fn only(addr: &str, mask: &str, services: Vec<ServiceKind>) -> Allowlist {
        Allowlist {
            enabled: true,
            entries: vec![AllowEntry::new(ip(addr), ip(mask), services).expect("entry")],
        }
    }

    #[test]
    fn allowlist_refuses_outsiders_per_service() {
        let gate = Gate::new(
            &only("192.168.1.0", "255.255.255.0", vec![ServiceKind::Serial]),
            &DosSettings::default(),
        );
        assert!(gate.admit(ip("192.168.1.77"), ServiceKind::Serial).is_ok());
        let r = gate
            .admit(ip("192.168.2.1"), ServiceKind::Serial)
            .expect_err("outside");
        assert_eq!(r.reason, Refusal::NotAllowed);
        let r = gate
            .admit(ip("192.168.1.77"), ServiceKind::Management)
            .expect_err("service");
        assert_eq!(r.reason, Refusal::NotAllowed);
        assert_eq!(gate.stats().not_allowed, 2);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_entries() {
        let gate = Gate::new(
            &only("127.0.0.1", "255.255.255.255", vec![]),
            &DosSettings::default(),
        );
        assert!(
            gate.admit(ip("::ffff:127.0.0.1"), ServiceKind::Serial)
                .is_ok()
        );
        assert!(
            gate.admit(ip("::ffff:127.0.0.2"), ServiceKind::Serial)
                .is_err()
        );
    }

    #[test]
    fn per_source_cap_frees_a_slot_when_a_permit_drops() {
        let gate = Gate::new(&Allowlist::default(), &dos(2, 100, 1000, 1000));
        let a = gate.admit(ip("10.0.0.1"), ServiceKind::Serial).expect("1");
        let _b = gate.admit(ip("10.0.0.1"), ServiceKind::Serial).expect("2");
        let r = gate
            .admit(ip("10.0.0.1"), ServiceKind::Serial)
            .expect_err("3");
        assert_eq!(r.reason, Refusal::SourceLimit);
        // Another source is not affected.
        assert!(gate.admit(ip("10.0.0.2"), ServiceKind::Serial).is_ok());
        drop(a);
        assert!(gate.admit(ip("10.0.0.1"), ServiceKind::Serial).is_ok());
    }

    #[test]
    fn global_cap_counts_every_source() {
        let gate = Gate::new(&Allowlist::default(), &dos(10, 2, 1000, 1000));
        let _a = gate.admit(ip("10.0.0.1"), ServiceKind::Serial).expect("1");
        let _b = gate
            .admit(ip("10.0.0.2"), ServiceKind::Management)
            .expect("2");
        let r = gate
            .admit(ip("10.0.0.3"), ServiceKind::Serial)
            .expect_err("3");
        assert_eq!(r.reason, Refusal::GlobalLimit);
        assert_eq!(gate.stats().active, 2);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let gate = Gate::new(&Allowlist::default(), &dos(100, 100, 10, 3));
        let t0 = Instant::now();
        let src = ip("10.0.0.1");
        for i in 0..3 {
            drop(
                gate.admit_at(src, ServiceKind::Serial, t0)
                    .unwrap_or_else(|e| panic!("{i}: {e:?}")),
            );
        }
        let r = gate
            .admit_at(src, ServiceKind::Serial, t0)
            .expect_err("bucket empty");
        assert_eq!(r.reason, Refusal::RateLimit);
        // 10 per second: one token after 100 ms, not before.
        assert!(
            gate.admit_at(src, ServiceKind::Serial, t0 + Duration::from_millis(50))
                .is_err()
        );
        assert!(
            gate.admit_at(src, ServiceKind::Serial, t0 + Duration::from_millis(150))
                .is_ok()
        );
    }

    #[test]
    fn reports_the_first_refusal_then_a_summary_per_period() {
        let gate = Gate::new(
            &only("10.0.0.1", "255.255.255.255", vec![]),
            &DosSettings::default(),
        );
        let t0 = Instant::now();
        let outsider = ip("10.0.0.9");
        let first = gate
            .admit_at(outsider, ServiceKind::Serial, t0)
            .expect_err("refused");
        assert_eq!(first.report, Some(0));
        for _ in 0..1000 {
            let r = gate
                .admit_at(outsider, ServiceKind::Serial, t0 + Duration::from_secs(1))
                .expect_err("refused");
            assert_eq!(r.report, None);
        }
        let later = gate
            .admit_at(outsider, ServiceKind::Serial, t0 + REPORT_EVERY)
            .expect_err("refused");
        assert_eq!(later.report, Some(1000));
        assert_eq!(gate.stats().not_allowed, 1002);
    }

    #[test]
    fn dos_off_leaves_only_the_allowlist() {
        let mut d = dos(1, 1, 1, 1);
        d.enabled = false;
        let gate = Gate::new(&Allowlist::default(), &d);
        let held: Vec<_> = (0..50)
            .map(|_| {
                gate.admit(ip("10.0.0.1"), ServiceKind::Serial)
                    .expect("no limit")
            })
            .collect();
        assert_eq!(gate.stats().active, 50);
        drop(held);
        assert_eq!(gate.stats().active, 0);
    }

    #[test]
    fn update_applies_to_new_connections_only() {
        let gate = Gate::new(&Allowlist::default(), &DosSettings::default());
        let held = gate
            .admit(ip("10.0.0.5"), ServiceKind::Serial)
            .expect("open");
        gate.update(
            &only("10.0.0.1", "255.255.255.255", vec![]),
            &DosSettings::default(),
        );
        assert!(gate.admit(ip("10.0.0.5"), ServiceKind::Serial).is_err());
        assert_eq!(gate.stats().active, 1, "the admitted connection stays");
        drop(held);
        assert!(
            gate.check_datagram(ip("10.0.0.1"), ServiceKind::Serial)
                .is_ok()
        );
        assert!(
            gate.check_datagram(ip("10.0.0.5"), ServiceKind::Serial)
                .is_err()
        );
    }

    #[test]
    fn forgets_idle_sources_when_the_table_is_full() {
        let gate = Gate::new(&Allowlist::default(), &dos(10, u16::MAX, 1000, 1));
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_SOURCES as u32 {
            let peer = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(
                gate.admit_at(peer, ServiceKind::Serial, t0)
                    .expect("admitted"),
            );
        }
        // Every bucket is empty (burst 1): nothing can be forgotten yet.
        let r = gate
            .admit_at(ip("11.0.0.1"), ServiceKind::Serial, t0)
            .expect_err("full");
        assert_eq!(r.reason, Refusal::GlobalLimit);
        // A millisecond later every bucket has refilled.
        assert!(
            gate.admit_at(
                ip("11.0.0.1"),
                ServiceKind::Serial,
                t0 + Duration::from_millis(2)
            )
            .is_ok()
        );
    }

    #[test]
    fn request_bucket_allows_a_burst_then_the_rate() {
        let gate = Gate::new(&Allowlist::default(), &requests(10, 3));
        let t0 = Instant::now();
        let conn = gate
            .admit_at(ip("10.0.0.1"), ServiceKind::Management, t0)
            .expect("admitted");
        for i in 0..3 {
            conn.admit_request_at(t0)
                .unwrap_or_else(|e| panic!("request {i}: {e:?}"));
        }
        let r = conn.admit_request_at(t0).expect_err("bucket empty");
        assert_eq!(r.refused.reason, Refusal::RequestRate);
        // 10 per second: the next token is 100 ms away.
        assert_eq!(r.retry_after, Duration::from_millis(100));
        let r = conn
            .admit_request_at(t0 + Duration::from_millis(50))
            .expect_err("half a token");
        assert!(
            r.retry_after > Duration::from_millis(49) && r.retry_after < Duration::from_millis(51),
            "{:?}",
            r.retry_after
        );
        assert!(
            conn.admit_request_at(t0 + Duration::from_millis(150))
                .is_ok()
        );
        // A long pause refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for i in 0..3 {
            conn.admit_request_at(later)
                .unwrap_or_else(|e| panic!("request {i} after the pause: {e:?}"));
        }
        assert!(conn.admit_request_at(later).is_err());
        assert_eq!(gate.stats().request_rate, 3);
        // Requests do not spend the connection budget.
        assert_eq!(gate.stats().rate_limit, 0);
    }

    #[test]
    fn request_buckets_are_per_source_and_shared_by_its_connections() {
        let gate = Gate::new(&Allowlist::default(), &requests(1, 2));
        let t0 = Instant::now();
        let a1 = gate
            .admit_at(ip("10.0.0.1"), ServiceKind::Management, t0)
            .expect("a1");
        let a2 = gate
            .admit_at(ip("::ffff:10.0.0.1"), ServiceKind::Management, t0)
            .expect("a2");
        let b = gate
            .admit_at(ip("10.0.0.2"), ServiceKind::Management, t0)
            .expect("b");
        assert_eq!(a2.source(), ip("10.0.0.1"));
        assert!(a1.admit_request_at(t0).is_ok());
        assert!(a2.admit_request_at(t0).is_ok());
        // Both connections of 10.0.0.1 drew from one bucket...
        assert!(a1.admit_request_at(t0).is_err());
        assert!(a2.admit_request_at(t0).is_err());
        // ...and 10.0.0.2 has its own, full.
        assert!(b.admit_request_at(t0).is_ok());
        assert!(b.admit_request_at(t0).is_ok());
        assert!(b.admit_request_at(t0).is_err());
        // A new connection does not bring new request tokens.
        drop(a1);
        let a3 = gate
            .admit_at(ip("10.0.0.1"), ServiceKind::Management, t0)
            .expect("a3");
        assert!(a3.admit_request_at(t0).is_err());
    }

    #[test]
    fn request_refusals_are_reported_once_per_period() {
        let gate = Gate::new(&Allowlist::default(), &requests(1, 1));
        let t0 = Instant::now();
        let conn = gate
            .admit_at(ip("10.0.0.1"), ServiceKind::Management, t0)
            .expect("admitted");
        assert!(conn.admit_request_at(t0).is_ok());
        let first = conn.admit_request_at(t0).expect_err("empty");
        assert_eq!(first.refused.report, Some(0));
        for _ in 0..500 {
            let r = conn.admit_request_at(t0).expect_err("empty");
            assert_eq!(r.refused.report, None);
        }
        let later = t0 + REPORT_EVERY;
        assert!(conn.admit_request_at(later).is_ok(), "refilled");
        let summary = conn.admit_request_at(later).expect_err("empty");
        assert_eq!(summary.refused.report, Some(500));
        assert_eq!(gate.stats().request_rate, 502);
    }

    #[test]
    fn dos_off_lets_every_request_through() {
        let mut d = requests(1, 1);
        d.enabled = false;
        let gate = Gate::new(&Allowlist::default(), &d);
        let conn = gate
            .admit(ip("10.0.0.1"), ServiceKind::Management)
            .expect("admitted");
        for _ in 0..1000 {
            assert!(conn.admit_request().is_ok());
        }
        // Turned on later: the source starts with a full bucket.
        d.enabled = true;
        gate.update(&Allowlist::default(), &d);
        assert!(conn.admit_request().is_ok());
        assert!(conn.admit_request().is_err());
        assert_eq!(gate.stats().request_rate, 1);
    }

    #[test]
    fn lowered_request_limits_apply_to_open_connections() {
        let gate = Gate::new(&Allowlist::default(), &requests(1, 100));
        let t0 = Instant::now();
        let conn = gate
            .admit_at(ip("10.0.0.1"), ServiceKind::Management, t0)
            .expect("admitted");
        assert!(conn.admit_request_at(t0).is_ok());
        gate.update(&Allowlist::default(), &requests(1, 2));
        assert!(conn.admit_request_at(t0).is_ok());
        assert!(conn.admit_request_at(t0).is_ok());
        assert!(conn.admit_request_at(t0).is_err());
    }

    #[test]
    fn keeps_sources_until_their_request_bucket_refilled() {
        // Connections refill in a tenth of a millisecond, requests in 1 s.
        let mut d = requests(1, 1);
        d.accept_rate = 10_000;
        d.accept_burst = 1;
        let gate = Gate::new(&Allowlist::default(), &d);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_SOURCES as u32 {
            let peer = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let conn = gate
                .admit_at(peer, ServiceKind::Management, t0)
                .expect("admitted");
            conn.admit_request_at(t0).expect("one request");
        }
        assert_eq!(gate.stats().active, 0, "every connection closed");
        // The accept buckets are full again, the request buckets are not:
        // the table stays full rather than forget them.
        let r = gate
            .admit_at(
                ip("11.0.0.1"),
                ServiceKind::Management,
                t0 + Duration::from_millis(10),
            )
            .expect_err("table full");
        assert_eq!(r.reason, Refusal::GlobalLimit);
        assert_eq!(gate.lock().sources.len(), MAX_TRACKED_SOURCES);
        // A second later every bucket is full and the sources go.
        let late = t0 + Duration::from_millis(1_100);
        let conn = gate
            .admit_at(ip("11.0.0.1"), ServiceKind::Management, late)
            .expect("room made");
        assert!(conn.admit_request_at(late).is_ok());
        assert!(gate.lock().sources.len() <= MAX_TRACKED_SOURCES);
    }
}
