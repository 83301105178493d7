//! The queue of device output waiting for one network session.
//!
//! The port actor pushes every chunk it reads from the device into the outbox
//! of each attached session; the session task pops and writes to its socket.
//! The policy that keeps one slow session from hurting the others:
//!
//! * Above [`SOFT_LIMIT`] a session counts as *behind*. The actor stops
//!   reading the device only when **every** session is behind: then the
//!   network as a whole is slower than the device and backpressure (the
//!   kernel tty buffer, then flow control) is the right answer. Nobody loses
//!   a byte.
//! * A session that is behind while others keep up is left behind: its queue
//!   grows up to the port's `queue_bytes`. If it would overflow, or the
//!   session has not taken anything for `jam_timeout`, the actor closes it
//!   ([`CloseReason::Jammed`]). The others never wait for it.
//!
//! Fast path: a raw TCP session lends the outbox its socket
//! ([`Outbox::set_direct`]). While nothing is queued and the session is not
//! in the middle of a write, [`Outbox::push`] writes the chunk to the socket
//! itself, so streaming device output costs one `send` per chunk and no task
//! wake-up; what the socket does not take is queued as usual, so order holds.
//!
//! The NPort's "ignore jammed IP = no" (everyone waits for the slowest) is
//! deliberately not offered; see `ttyward_core::config`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Queued bytes above which a session is "behind".
pub const SOFT_LIMIT: usize = 64 * 1024;

/// Why a session's outbox was closed by the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The session did not take data for too long, or its queue overflowed.
    Jammed,
    /// The serial device disappeared (e.g. USB unplug).
    DeviceMissing,
    /// The port is being stopped or reconfigured.
    PortStopped,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::Jammed => "session jammed (not reading)",
            CloseReason::DeviceMissing => "serial device missing",
            CloseReason::PortStopped => "port stopped",
        })
    }
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued; the session is keeping up.
    Ok,
    /// Queued; the session is behind (above the soft limit).
    Behind,
    /// Not queued: the queue would exceed its hard limit. Close the session.
    Overflow,
    /// Not queued: the session is gone.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    closed: Option<CloseReason>,
    /// The session task dropped its end.
    detached: bool,
    /// Last time the session took data (or the queue became non-empty).
    /// When the jam clock was last (re)started; see [`Outbox::is_jammed`].
    clock: Instant,
    /// The session took data, or data arrived in an empty queue, since the
    /// clock was last looked at. A flag instead of a timestamp keeps
    /// `clock_gettime` out of the per-chunk path.
    progressed: bool,
    /// The session's socket, when the session allows the actor to write to
    /// it directly (raw TCP sessions; see [`Outbox::push`]).
    direct: Option<Arc<TcpStream>>,
    /// The session holds popped chunks it has not finished writing; a
    /// direct write now would overtake them.
    writing: bool,
}

/// One session's queue, shared by the port actor and the session task.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    hard_limit: usize,
    /// Wakes the session: data queued or closed.
    data: Notify,
    /// Wakes the port actor when a behind session caught up (shared by all
    /// outboxes of a port).
    drained: Arc<Notify>,
    /// Fired when the session is dropped as jammed: its task is most likely
    /// blocked writing to a full socket and must give up that write.
    jammed: CancellationToken,
}

impl Outbox {
    /// A new queue holding at most `hard_limit` bytes.
    pub fn new(hard_limit: usize, drained: Arc<Notify>) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                closed: None,
                detached: false,
                clock: Instant::now(),
                progressed: false,
                direct: None,
                writing: false,
            }),
            hard_limit,
            data: Notify::new(),
            drained,
            jammed: CancellationToken::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Actor side: queue a chunk for the session.
    pub fn push(&self, mut chunk: Bytes) -> Push {
        let mut s = self.lock();
        if s.closed.is_some() || s.detached {
            return Push::Closed;
        }
        if s.bytes + chunk.len() > self.hard_limit {
            return Push::Overflow;
        }
        if s.queue.is_empty() {
            // The jam clock measures how long queued data waits, not idle time.
            s.progressed = true;
            if !s.writing
                && let Some(sock) = &s.direct
            {
                // Fast path: nothing is queued or being written, so the
                // chunk can go to the socket now, without waking the session
                // task. Whatever the socket does not take is queued as usual;
                // an error is left for the session's own write to find.
                match sock.try_write(&chunk) {
                    Ok(n) if n == chunk.len() => return Push::Ok,
                    Ok(n) => chunk.advance(n),
                    Err(_) => {}
                }
            }
        }
        s.bytes += chunk.len();
        s.queue.push_back(chunk);
        let behind = s.bytes > SOFT_LIMIT;
        drop(s);
        self.data.notify_one();
        if behind { Push::Behind } else { Push::Ok }
    }

    /// Actor side: is the session above the soft limit?
    pub fn is_behind(&self) -> bool {
        self.lock().bytes > SOFT_LIMIT
    }

    /// Actor side, called periodically: has the session taken nothing while
    /// data waited for at least `timeout`?
    ///
    /// The clock restarts at the first call after any progress, so with
    /// calls every `tick` a jam is seen between `timeout` and
    /// `timeout + tick` after the data started waiting.
    pub fn is_jammed(&self, now: Instant, timeout: Duration) -> bool {
        let mut s = self.lock();
        if s.progressed || s.bytes == 0 {
            s.progressed = false;
            s.clock = now;
            return false;
        }
        now.saturating_duration_since(s.clock) >= timeout
    }

    /// Actor side: the session task has gone away.
    pub fn is_detached(&self) -> bool {
        self.lock().detached
    }

    /// Actor side: close with a reason; the session sees it after the data
    /// already queued unless the reason is `Jammed` (a jammed session would
    /// never take it).
    pub fn close(&self, reason: CloseReason) {
        let mut s = self.lock();
        let jammed = reason == CloseReason::Jammed;
        if jammed {
            s.queue.clear();
            s.bytes = 0;
        }
        s.closed.get_or_insert(reason);
        drop(s);
        self.data.notify_one();
        if jammed {
            self.jammed.cancel();
        }
    }

    /// Session side: resolves when the port dropped this session as jammed.
    pub async fn jammed(&self) {
        self.jammed.cancelled().await;
    }

    /// Session side: wait for data and move all of it into `into`.
    /// Returns the close reason once the queue is closed and empty.
    /// Cancel-safe: nothing is taken unless it returns.
    pub async fn pop_all(&self, into: &mut Vec<Bytes>) -> Result<(), CloseReason> {
        loop {
            let notified = self.data.notified();
            if self.try_pop_all(into)? {
                return Ok(());
            }
            notified.await;
        }
    }

    /// Session side: take whatever is queued without waiting; `Ok(false)` if
    /// nothing was.
    pub fn try_pop_all(&self, into: &mut Vec<Bytes>) -> Result<bool, CloseReason> {
        let mut s = self.lock();
        // The session asks again only after writing all it took before.
        s.writing = !s.queue.is_empty();
        if s.queue.is_empty() {
            return match &s.closed {
                Some(reason) => Err(reason.clone()),
                None => Ok(false),
            };
        }
        let was_behind = s.bytes > SOFT_LIMIT;
        into.extend(s.queue.drain(..));
        s.bytes = 0;
        s.progressed = true;
        drop(s);
        if was_behind {
            self.drained.notify_one();
        }
        Ok(true)
    }

    /// Session side: let the actor write device output straight to `sock`
    /// while nothing is queued (`None` withdraws it). Only for sessions
    /// that send device output unchanged.
    pub fn set_direct(&self, sock: Option<Arc<TcpStream>>) {
        self.lock().direct = sock;
    }

    /// Session side: the session is ending; the actor forgets the outbox.
    pub fn detach(&self) {
        let mut s = self.lock();
        s.detached = true;
        s.direct = None;
        s.queue.clear();
        s.bytes = 0;
        drop(s);
        self.drained.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(limit: usize) -> Arc<Outbox> {
        Outbox::new(limit, Arc::new(Notify::new()))
    }

    #[tokio::test]
    async fn delivers_in_order_and_reports_behind() {
        let o = outbox(1 << 20);
        assert_eq!(o.push(Bytes::from_static(b"ab")), Push::Ok);
        assert_eq!(o.push(Bytes::from(vec![0u8; SOFT_LIMIT])), Push::Behind);
        assert!(o.is_behind());
        let mut got = Vec::new();
        o.pop_all(&mut got).await.expect("open");
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..], b"ab");
        assert!(!o.is_behind());
    }

    #[test]
    fn refuses_what_would_overflow() {
        let o = outbox(10);
        assert_eq!(o.push(Bytes::from_static(b"12345678")), Push::Ok);
        assert_eq!(o.push(Bytes::from_static(b"abc")), Push::Overflow);
    }

    #[tokio::test]
    async fn close_after_data_is_seen_after_the_data() {
        let o = outbox(100);
        o.push(Bytes::from_static(b"x"));
        o.close(CloseReason::DeviceMissing);
        let mut got = Vec::new();
        assert_eq!(o.pop_all(&mut got).await, Ok(()));
        assert_eq!(o.pop_all(&mut got).await, Err(CloseReason::DeviceMissing));
    }

    #[test]
    fn jam_clock_runs_only_while_data_waits_untaken() {
        let o = outbox(100);
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!o.is_jammed(at(10), second), "empty queue is never jammed");
        o.push(Bytes::from_static(b"x"));
        assert!(
            !o.is_jammed(at(11), second),
            "clock starts at the first look"
        );
        assert!(!o.is_jammed(at(11), second));
        assert!(o.is_jammed(at(12), second), "a second with nothing taken");
        let mut got = Vec::new();
        assert_eq!(o.try_pop_all(&mut got), Ok(true));
        o.push(Bytes::from_static(b"y"));
        assert!(
            !o.is_jammed(at(20), second),
            "taking data restarts the clock"
        );
        assert!(o.is_jammed(at(21), second));
    }

    #[tokio::test]
    async fn direct_writes_never_overtake_what_the_session_holds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let sock = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (peer, _) = listener.accept().await.expect("accept");
        let sock = Arc::new(sock);
        let received = |want: &[u8]| {
            let mut buf = vec![0u8; 64];
            let n = peer.try_read(&mut buf).unwrap_or(0);
            assert_eq!(&buf[..n], want);
        };
        let o = outbox(1 << 20);
        o.set_direct(Some(sock.clone()));
        assert_eq!(o.push(Bytes::from_static(b"one")), Push::Ok);
        peer.readable().await.expect("readable");
        received(b"one");
        let mut held = Vec::new();
        assert_eq!(
            o.try_pop_all(&mut held),
            Ok(false),
            "sent directly, not queued"
        );

        // The session takes a chunk and is still writing it: new output
        // must queue behind it rather than go straight to the socket.
        o.set_direct(None);
        o.push(Bytes::from_static(b"two"));
        assert_eq!(o.try_pop_all(&mut held), Ok(true));
        o.set_direct(Some(sock.clone()));
        assert_eq!(o.push(Bytes::from_static(b"three")), Push::Ok);
        received(b"");
        assert_eq!(o.try_pop_all(&mut held), Ok(true));
        let held: Vec<&[u8]> = held.iter().map(|c| &c[..]).collect();
        assert_eq!(held, [&b"two"[..], &b"three"[..]]);

        // Coming back for more with nothing queued means all was written.
        assert_eq!(o.try_pop_all(&mut Vec::new()), Ok(false));
        o.push(Bytes::from_static(b"four"));
        peer.readable().await.expect("readable");
        received(b"four");
    }

    #[test]
    fn detached_outbox_takes_nothing() {
        let o = outbox(100);
        o.detach();
        assert_eq!(o.push(Bytes::from_static(b"x")), Push::Closed);
    }
}
