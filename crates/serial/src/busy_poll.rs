//! Busy polling: the runtime's thread stays on its CPU for a few
//! microseconds before it sleeps, as long as it keeps being woken that soon.
//!
//! A request/response exchange through a pty crosses CPUs four times per
//! round trip (network → bridge → pty worker → device, and back), and each
//! crossing wakes a task on a CPU that went idle. On a virtual machine an
//! idle vCPU halts, and waking it costs a VM exit and an interrupt injection:
//! 10–45 µs a time on the machines we measure, most of a 60–170 µs round
//! trip. Polling the runtime's epoll instance instead of sleeping takes the
//! bridge's own wake-up out of the path and leaves its CPU free to run the
//! pty worker the other side wakes (1-byte round trip of the benchmark's
//! quick runs: 60–65 µs → 47–50 µs on one host; 160–170 µs → 59–68 µs on
//! another, where the answer takes about 100 µs to come back and only a
//! window of 200 µs — the binary's default, as the kernel's
//! `guest_halt_poll_ns` — catches it; see docs/BENCHMARKS.md).
//!
//! Spinning costs CPU, so it is only done while it pays:
//!
//! - the window adapts as the kernel's haltpoll cpuidle governor does: a
//!   sleep cut short within `max` grows it, a longer sleep shrinks it. A
//!   real serial device answering in milliseconds, or an idle port, brings
//!   it to zero within a few wake-ups;
//! - while a transfer goes on (a spell of work moved [`BULK`] bytes or more
//!   within [`BULK_QUIET`]) it does not spin at all: a transfer amortises
//!   its wake-ups over kilobytes, and spinning would only turn waiting time
//!   into CPU time;
//! - the spin yields the CPU on every turn, so a kernel worker woken onto
//!   this CPU (the pty's flush work) runs at once instead of waiting out the
//!   spinner's time slice.
//!
//! Tokio has no busy-poll mode, so this hooks into the runtime's park and
//! unpark callbacks and polls (level-triggered, consuming nothing) a
//! duplicate of the descriptor of the epoll instance the runtime built. That
//! instance is found by comparing the process's epoll descriptors before and
//! after the runtime is built (mio holds two descriptors of it; `kcmp` tells
//! they are one); with anything but one new instance, or without `/proc`,
//! busy polling stays off and the runtime runs as before.

use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::sys;

/// Bytes moved since the last park from which a spell counts as bulk.
pub const BULK: u64 = 1024;
/// How long after a bulk spell the thread does not spin: a transfer also
/// has spells that move nothing (data queued behind a full device, a
/// writability event), and they must not spin either.
pub const BULK_QUIET: Duration = Duration::from_millis(1);
/// The window a short sleep grows a closed window to.
pub const START: Duration = Duration::from_micros(10);

/// What a park turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Work arrived while spinning: the thread never slept.
    Caught,
    /// The thread slept; `parked` is the whole time from park to unpark,
    /// spin included.
    Slept {
        /// From park to unpark.
        parked: Duration,
    },
}

/// The spin window and how it adapts (sans-IO: the caller measures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    window: Duration,
    max: Duration,
    /// When a spell last moved bulk data.
    bulk_at: Option<Instant>,
}

impl Policy {
    /// A closed window that may grow up to `max`.
    pub fn new(max: Duration) -> Self {
        Self {
            window: Duration::ZERO,
            max,
            bulk_at: None,
        }
    }

    /// The current window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long to spin before sleeping, at `now`, after a spell of work
    /// that moved `moved` bytes.
    pub fn budget(&mut self, moved: u64, now: Instant) -> Duration {
        if moved >= BULK {
            self.bulk_at = Some(now);
        }
        match self.bulk_at {
            Some(at) if now.saturating_duration_since(at) < BULK_QUIET => Duration::ZERO,
            _ => self.window,
        }
    }

    /// Adapt to how the last park ended.
    pub fn learn(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Caught => {}
            Outcome::Slept { parked } if parked <= self.max => {
                self.window = (self.window * 2).max(START).min(self.max);
            }
            Outcome::Slept { .. } => {
                self.window /= 2;
                if self.window < START {
                    self.window = Duration::ZERO;
                }
            }
        }
    }
}

/// Spins taken and caught, for diagnostics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Parks that spun.
    pub spins: AtomicU64,
    /// Spins that saw work arrive.
    pub caught: AtomicU64,
}

/// A runtime's busy poller: call [`park`](Self::park) and
/// [`unpark`](Self::unpark) from its park hooks.
#[derive(Debug)]
pub struct BusyPoll {
    reactor: OwnedFd,
    state: Mutex<State>,
    stats: Stats,
}

#[derive(Debug)]
struct State {
    policy: Policy,
    parked: Option<(Instant, bool)>,
}

impl BusyPoll {
    /// Busy polling on the epoll instance `reactor` refers to.
    pub fn new(reactor: OwnedFd, max: Duration) -> Self {
        Self {
            reactor,
            state: Mutex::new(State {
                policy: Policy::new(max),
                parked: None,
            }),
            stats: Stats::default(),
        }
    }

    /// The thread is about to sleep after a spell that moved `moved` bytes:
    /// spin while the policy says so, or until the reactor has work.
    pub fn park(&self, moved: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let start = Instant::now();
        let budget = state.policy.budget(moved, start);
        let caught = if budget.is_zero() {
            false
        } else {
            self.stats.spins.fetch_add(1, Relaxed);
            let caught = self.spin(start + budget);
            if caught {
                self.stats.caught.fetch_add(1, Relaxed);
            }
            caught
        };
        state.parked = Some((start, caught));
    }

    /// The thread woke up.
    pub fn unpark(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some((start, caught)) = state.parked.take() {
            let outcome = if caught {
                Outcome::Caught
            } else {
                Outcome::Slept {
                    parked: start.elapsed(),
                }
            };
            state.policy.learn(outcome);
        }
    }

    /// Spins taken and caught so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn spin(&self, until: Instant) -> bool {
        loop {
            let mut fds = [PollFd::new(self.reactor.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            if Instant::now() >= until {
                return false;
            }
            sys::yield_cpu();
        }
    }
}

/// The process's epoll descriptors now (from `/proc/self/fd`).
pub fn epoll_descriptors() -> io::Result<Vec<RawFd>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed since the directory was read
        };
        if target.as_os_str() == "anon_inode:[eventpoll]"
            && let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok())
        {
            found.push(fd);
        }
    }
    Ok(found)
}

/// The one epoll instance behind `descriptors` (mio keeps a duplicate of
/// its epoll descriptor for its registry, so a runtime shows two).
fn one_instance(descriptors: &[RawFd]) -> Result<RawFd, String> {
    let Some((&first, rest)) = descriptors.split_first() else {
        return Err("the runtime's epoll instance was not found".into());
    };
    for &other in rest {
        match sys::same_file(first, other) {
            Ok(true) => {}
            Ok(false) => return Err("the runtime's epoll instance is ambiguous".into()),
            Err(e) => return Err(format!("cannot compare epoll descriptors: {e}")),
        }
    }
    Ok(first)
}

/// Builds `builder` (a current-thread runtime) with busy polling of at most
/// `max` per park, where `moved` returns (and resets) the bytes moved since
/// it was last called. Returns the poller too, or the reason busy polling
/// is off: `max` is zero, or the runtime's epoll instance could not be
/// found or told apart (the runtime then runs without it).
pub fn build_runtime(
    builder: &mut tokio::runtime::Builder,
    max: Duration,
    moved: fn() -> u64,
) -> io::Result<(tokio::runtime::Runtime, Result<Arc<BusyPoll>, String>)> {
    if max.is_zero() {
        return Ok((builder.build()?, Err("turned off".into())));
    }
    // Busy polling is an optimisation: nothing here may keep the runtime
    // from starting (no /proc, no kcmp), it only stays off.
    let before = match epoll_descriptors() {
        Ok(fds) => fds,
        Err(e) => {
            return Ok((
                builder.build()?,
                Err(format!("cannot list descriptors: {e}")),
            ));
        }
    };
    // The hooks are set before the runtime (and so its epoll instance)
    // exists; they find the poller here once it does.
    let cell: Arc<OnceLock<Arc<BusyPoll>>> = Arc::default();
    let (on_park, on_unpark) = (cell.clone(), cell.clone());
    let runtime = builder
        .on_thread_park(move || {
            if let Some(p) = on_park.get() {
                p.park(moved());
            }
        })
        .on_thread_unpark(move || {
            if let Some(p) = on_unpark.get() {
                p.unpark();
            }
        })
        .build()?;
    let poller = epoll_descriptors()
        .map_err(|e| format!("cannot list descriptors: {e}"))
        .and_then(|after| {
            let new: Vec<RawFd> = after
                .into_iter()
                .filter(|fd| !before.contains(fd))
                .collect();
            one_instance(&new)
        })
        .and_then(|fd| {
            sys::dup_foreign(fd).map_err(|e| format!("cannot duplicate the epoll descriptor: {e}"))
        })
        .map(|reactor| {
            let poller = Arc::new(BusyPoll::new(reactor, max));
            let _ = cell.set(poller.clone());
            poller
        });
    Ok((runtime, poller))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);

    fn slept(us: u64) -> Outcome {
        Outcome::Slept {
            parked: Duration::from_micros(us),
        }
    }

    #[test]
    fn short_sleeps_open_the_window_up_to_max() {
        let mut p = Policy::new(MAX);
        let now = Instant::now();
        assert_eq!(p.budget(1, now), Duration::ZERO, "closed at start");
        let mut seen = Vec::new();
        for _ in 0..6 {
            p.learn(slept(30));
            seen.push(p.budget(1, now).as_micros());
        }
        assert_eq!(seen, [10, 20, 40, 50, 50, 50]);
    }

    #[test]
    fn caught_work_keeps_the_window() {
        let mut p = Policy::new(MAX);
        p.learn(slept(30));
        p.learn(slept(30));
        p.learn(Outcome::Caught);
        assert_eq!(p.window(), Duration::from_micros(20));
    }

    #[test]
    fn long_sleeps_close_the_window() {
        let mut p = Policy::new(MAX);
        for _ in 0..4 {
            p.learn(slept(30));
        }
        assert_eq!(p.window(), MAX);
        let mut seen = Vec::new();
        for _ in 0..4 {
            p.learn(slept(5_000));
            seen.push(p.window().as_micros());
        }
        // 50 → 25 → 12 (µs, rounded down) → 6 is below START: closed.
        assert_eq!(seen, [25, 12, 0, 0]);
    }

    #[test]
    fn no_spin_during_a_bulk_transfer_nor_just_after() {
        let mut p = Policy::new(MAX);
        for _ in 0..4 {
            p.learn(slept(30));
        }
        let t0 = Instant::now();
        assert_eq!(p.budget(BULK, t0), Duration::ZERO, "a bulk spell");
        let soon = t0 + BULK_QUIET / 2;
        assert_eq!(
            p.budget(0, soon),
            Duration::ZERO,
            "an empty spell within it"
        );
        assert_eq!(
            p.budget(BULK - 1, t0 + BULK_QUIET),
            MAX,
            "after the quiet time"
        );
    }

    #[test]
    fn the_spin_sees_work_on_the_epoll_instance_and_consumes_none() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let epoll = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC)
            .expect("epoll");
        let (mut a, b) = UnixStream::pair().expect("socket pair");
        epoll
            .add(
                &b,
                nix::sys::epoll::EpollEvent::new(nix::sys::epoll::EpollFlags::EPOLLIN, 7),
            )
            .expect("register");
        let poller = BusyPoll::new(epoll.0.try_clone().expect("dup"), MAX);
        let far = Instant::now() + Duration::from_millis(1);
        assert!(!poller.spin(far), "nothing to read: the spin runs out");
        a.write_all(b"x").expect("write");
        assert!(poller.spin(Instant::now() + Duration::from_secs(5)));
        // The event is still there for the runtime's epoll_wait.
        let mut events = [nix::sys::epoll::EpollEvent::empty()];
        let n = epoll
            .wait(&mut events, nix::sys::epoll::EpollTimeout::ZERO)
            .expect("wait");
        assert_eq!((n, events[0].data()), (1, 7));
    }

    #[test]
    fn duplicates_of_one_epoll_instance_are_one_instance_and_two_are_not() {
        use nix::sys::epoll::{Epoll, EpollCreateFlags};
        use std::os::fd::AsRawFd;
        let first = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
        let dup = first.0.try_clone().expect("dup");
        let other = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
        let (a, b, c) = (first.0.as_raw_fd(), dup.as_raw_fd(), other.0.as_raw_fd());
        assert_eq!(one_instance(&[a, b]), Ok(a));
        assert!(one_instance(&[a, b, c]).is_err());
        assert!(one_instance(&[]).is_err());
        // And the process-wide scan sees all three.
        let seen = epoll_descriptors().expect("scan /proc/self/fd");
        assert!([a, b, c].iter().all(|fd| seen.contains(fd)), "{seen:?}");
    }
}
