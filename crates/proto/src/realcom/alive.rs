//! Alive polling (spec §4.15): after a quiet spell the server sends
//! `27 01 id` and counts the polls the host leaves unanswered; too many and
//! the connection is dead. [`AlivePoller`] holds the timing; the caller
//! passes the time in and sends what it is told.
//!
//! Moxa does this only on connections whose alive flag PORT_INIT or
//! NOTIFY_ON set, and only in Real COM (driver) mode. It is independent of
//! TCP keepalive (§8) and of the UDP DSCI probes (§9).

use std::time::{Duration, Instant};

use super::Reply;

/// Alive-polling timing (§4.15, §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AliveTiming {
    /// Time without data activity before the first poll.
    pub idle: Duration,
    /// Time between polls while they go unanswered.
    pub interval: Duration,
    /// Unanswered polls after which the host is dead (0 acts as 1).
    pub max_misses: u8,
}

impl Default for AliveTiming {
    /// Moxa's: 40 s, 3 s, 4 misses; a silent host is dropped about 52 s
    /// after the last activity.
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(40),
            interval: Duration::from_secs(3),
            max_misses: 4,
        }
    }
}

/// What [`AlivePoller::poll`] asks the caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliveAction {
    /// Nothing is due.
    Nothing,
    /// Send this [`Reply::Poll`] on the command connection.
    Send(Reply),
    /// The host left `max_misses` polls unanswered: close the command and
    /// data connections of this slot. Reported once.
    Dead,
}

/// One command connection's alive polling. Polls count as misses until the
/// host answers; any `28 01 id` (the id is not checked, as Moxa does not)
/// clears them, and so does data moving on the port.
#[derive(Debug)]
pub struct AlivePoller {
    timing: AliveTiming,
    enabled: bool,
    /// Start of the current quiet spell: last data activity, alive reply
    /// or enabling.
    quiet_since: Instant,
    /// When the last poll was sent (meaningful while `misses > 0`).
    last_poll: Instant,
    /// Polls sent and not answered.
    misses: u8,
    /// Id of the next poll; never 0.
    next_id: u8,
    /// `Dead` was reported; nothing more is due.
    dead: bool,
}

impl AlivePoller {
    /// A poller with polling disabled until [`set_enabled`](Self::set_enabled).
    pub fn new(timing: AliveTiming, now: Instant) -> Self {
        Self {
            timing,
            enabled: false,
            quiet_since: now,
            last_poll: now,
            misses: 0,
            next_id: 1,
            dead: false,
        }
    }

    /// PORT_INIT and NOTIFY_ON turn polling on, NOTIFY_OFF turns it off.
    /// Turning it on starts a quiet spell at `now`; turning it on again
    /// while on changes nothing.
    pub fn set_enabled(&mut self, on: bool, now: Instant) {
        if on && !self.enabled {
            self.quiet_since = now;
        }
        if on != self.enabled {
            self.misses = 0;
            self.dead = false;
        }
        self.enabled = on;
    }

    /// Data moved on the port (received from or sent to the host): the
    /// host is there. Resets the quiet spell and the misses.
    pub fn activity(&mut self, now: Instant) {
        self.quiet_since = now;
        self.misses = 0;
        self.dead = false;
    }

    /// The host answered a poll (`28 01 id`). Resets the misses; the next
    /// poll comes after another full quiet spell, so a live but idle host
    /// is asked once per `idle` rather than every `interval`.
    pub fn alive_reply(&mut self, now: Instant) {
        self.activity(now);
    }

    /// Call at or after [`next_deadline`](Self::next_deadline) (calling
    /// earlier is harmless and returns [`AliveAction::Nothing`]).
    pub fn poll(&mut self, now: Instant) -> AliveAction {
        match self.next_deadline() {
            Some(deadline) if now >= deadline => {}
            _ => return AliveAction::Nothing,
        }
        if self.misses >= self.timing.max_misses.max(1) {
            self.dead = true;
            return AliveAction::Dead;
        }
        let id = self.next_id;
        self.next_id = match id.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        self.misses = self.misses.saturating_add(1);
        self.last_poll = now;
        AliveAction::Send(Reply::Poll { id })
    }

    /// When [`poll`](Self::poll) has something to do next; `None` while
    /// polling is disabled, after `Dead`, or if the deadline is too far to
    /// represent.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.enabled || self.dead {
            return None;
        }
        if self.misses == 0 {
            self.quiet_since.checked_add(self.timing.idle)
        } else {
            self.last_poll.checked_add(self.timing.interval)
        }
    }

    /// Polls sent and not yet answered.
    pub fn misses(&self) -> u8 {
        self.misses
    }

    /// Whether polling is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const TIMING: AliveTiming = AliveTiming {
        idle: Duration::from_secs(40),
        interval: Duration::from_secs(3),
        max_misses: 4,
    };

    fn enabled(start: Instant) -> AlivePoller {
        let mut poller = AlivePoller::new(TIMING, start);
        poller.set_enabled(true, start);
        poller
    }

    fn sent(id: u8) -> AliveAction {
        AliveAction::Send(Reply::Poll { id })
    }

    #[test]
    fn default_timing_is_moxas() {
        assert_eq!(AliveTiming::default(), TIMING);
    }

    #[test]
    fn polls_after_40_s_then_every_3_s_and_gives_up_after_4_misses() {
        let t0 = Instant::now();
        let mut poller = enabled(t0);
        assert_eq!(poller.next_deadline(), Some(t0 + secs(40)));
        assert_eq!(poller.poll(t0 + secs(39)), AliveAction::Nothing);
        assert_eq!(
            poller.poll(t0 + secs(40) - Duration::from_millis(1)),
            AliveAction::Nothing
        );
        assert_eq!(poller.poll(t0 + secs(40)), sent(1));
        assert_eq!(poller.next_deadline(), Some(t0 + secs(43)));
        assert_eq!(poller.poll(t0 + secs(42)), AliveAction::Nothing);
        assert_eq!(poller.poll(t0 + secs(43)), sent(2));
        assert_eq!(poller.poll(t0 + secs(46)), sent(3));
        assert_eq!(poller.poll(t0 + secs(49)), sent(4));
        assert_eq!(poller.misses(), 4);
        assert_eq!(poller.next_deadline(), Some(t0 + secs(52)));
        assert_eq!(poller.poll(t0 + secs(51)), AliveAction::Nothing);
        assert_eq!(poller.poll(t0 + secs(52)), AliveAction::Dead);
        // Reported once; nothing more is due.
        assert_eq!(poller.next_deadline(), None);
        assert_eq!(poller.poll(t0 + secs(60)), AliveAction::Nothing);
    }

    #[test]
    fn an_alive_reply_clears_the_misses_and_restarts_the_quiet_spell() {
        let t0 = Instant::now();
        let mut poller = enabled(t0);
        assert_eq!(poller.poll(t0 + secs(40)), sent(1));
        assert_eq!(poller.poll(t0 + secs(43)), sent(2));
        poller.alive_reply(t0 + secs(44));
        assert_eq!(poller.misses(), 0);
        assert_eq!(poller.next_deadline(), Some(t0 + secs(84)));
        assert_eq!(poller.poll(t0 + secs(83)), AliveAction::Nothing);
        assert_eq!(poller.poll(t0 + secs(84)), sent(3));
    }

    #[test]
    fn data_activity_resets_the_idle_timer_and_misses() {
        let t0 = Instant::now();
        let mut poller = enabled(t0);
        poller.activity(t0 + secs(30));
        assert_eq!(poller.poll(t0 + secs(40)), AliveAction::Nothing);
        assert_eq!(poller.poll(t0 + secs(70)), sent(1));
        poller.activity(t0 + secs(71));
        assert_eq!(poller.misses(), 0);
        assert_eq!(poller.next_deadline(), Some(t0 + secs(111)));
    }

    #[test]
    fn ids_skip_zero_after_255() {
        let t0 = Instant::now();
        let mut poller = enabled(t0);
        let mut now = t0;
        let mut ids = Vec::new();
        for _ in 0..257 {
            now += secs(40);
            match poller.poll(now) {
                AliveAction::Send(Reply::Poll { id }) => ids.push(id),
                other => panic!("expected a poll, got {other:?}"),
            }
            poller.alive_reply(now);
        }
        let expected: Vec<u8> = (1..=255).chain([1, 2]).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn disabled_polling_has_no_deadline() {
        let t0 = Instant::now();
        let mut poller = AlivePoller::new(TIMING, t0);
        assert!(!poller.is_enabled());
        assert_eq!(poller.next_deadline(), None);
        assert_eq!(poller.poll(t0 + secs(1000)), AliveAction::Nothing);

        // NOTIFY_OFF in the middle of polling stops it and forgets misses.
        poller.set_enabled(true, t0);
        assert_eq!(poller.poll(t0 + secs(40)), sent(1));
        poller.set_enabled(false, t0 + secs(41));
        assert_eq!(poller.next_deadline(), None);
        assert_eq!(poller.misses(), 0);
    }

    #[test]
    fn enabling_starts_the_quiet_spell_and_enabling_again_does_not() {
        let t0 = Instant::now();
        let mut poller = AlivePoller::new(TIMING, t0);
        poller.set_enabled(true, t0 + secs(100));
        assert_eq!(poller.next_deadline(), Some(t0 + secs(140)));
        // A second PORT_INIT is not data activity.
        poller.set_enabled(true, t0 + secs(120));
        assert_eq!(poller.next_deadline(), Some(t0 + secs(140)));
    }

    #[test]
    fn zero_max_misses_still_polls_once() {
        let t0 = Instant::now();
        let mut poller = AlivePoller::new(
            AliveTiming {
                max_misses: 0,
                ..TIMING
            },
            t0,
        );
        poller.set_enabled(true, t0);
        assert_eq!(poller.poll(t0 + secs(40)), sent(1));
        assert_eq!(poller.poll(t0 + secs(43)), AliveAction::Dead);
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let t0 = Instant::now();
        let mut poller = AlivePoller::new(
            AliveTiming {
                idle: Duration::MAX,
                interval: Duration::MAX,
                max_misses: 4,
            },
            t0,
        );
        poller.set_enabled(true, t0);
        assert_eq!(poller.next_deadline(), None);
        assert_eq!(poller.poll(t0 + secs(1_000_000)), AliveAction::Nothing);
    }
}
