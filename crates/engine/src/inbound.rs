//! Network data and control requests on their way to the device.
//!
//! Everything the sessions of a port send goes through one queue, in arrival
//! order, and the port actor writes it to the device; a control request
//! (baud, DTR, break, ...) takes effect after the data queued before it.
//!
//! Fast path, the mirror of the outbox's direct writes: while nothing is
//! queued — no data, no control request, and the actor is not in the middle
//! of a chunk — a session writes its data to the device itself, without
//! waiting, under the lock the actor also takes for each of its writes. What
//! the device does not take at once is queued, and everything sent later
//! queues behind it, so order holds. This saves the actor's wake-up per
//! chunk on the network→device path (and on every request of a round trip).
//!
//! The queue is the source of truth: `queued` counts items sent and not yet
//! finished by the actor, and is changed only together with the queue, under
//! the lock, so a direct write can never overtake queued data.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::sync::{mpsc, oneshot};
use ttyward_serial::SerialDevice;

use crate::port::{Control, ControlError, PortSnapshot};

/// One queued item.
pub(crate) enum Inbound {
    Data(Bytes),
    Control(Control, oneshot::Sender<Result<PortSnapshot, ControlError>>),
}

/// The port actor has ended.
#[derive(Debug)]
pub(crate) struct Stopped;

#[derive(Default)]
struct DirectState {
    /// The open device, while the actor serves it.
    device: Option<Arc<dyn SerialDevice>>,
    /// Items in the queue or being written by the actor.
    queued: usize,
}

#[derive(Default)]
struct Direct {
    state: Mutex<DirectState>,
}

impl Direct {
    fn lock(&self) -> MutexGuard<'_, DirectState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sessions' side: clonable.
#[derive(Clone)]
pub(crate) struct InboundSender {
    tx: mpsc::Sender<Inbound>,
    direct: Arc<Direct>,
}

impl std::fmt::Debug for InboundSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSender").finish_non_exhaustive()
    }
}

/// The port actor's side.
pub(crate) struct InboundReceiver {
    rx: mpsc::Receiver<Inbound>,
    direct: Arc<Direct>,
}

/// A queue holding `capacity` items (backpressure to the network beyond).
pub(crate) fn channel(capacity: usize) -> (InboundSender, InboundReceiver) {
    let (tx, rx) = mpsc::channel(capacity);
    let direct = Arc::new(Direct::default());
    (
        InboundSender {
            tx,
            direct: direct.clone(),
        },
        InboundReceiver { rx, direct },
    )
}

impl InboundSender {
    /// Send data toward the device; returns how many bytes were written to
    /// the device directly (the rest is queued).
    pub(crate) async fn data(&self, mut data: Bytes) -> Result<usize, Stopped> {
        // The slot is taken first so the decision and the enqueue below
        // happen under one lock, with no await in between.
        let permit = self.tx.reserve().await.map_err(|_| Stopped)?;
        let mut state = self.direct.lock();
        let mut written = 0;
        if state.queued == 0
            && let Some(device) = &state.device
        {
            written = write_now(&**device, &data);
            data.advance(written);
        }
        if !data.is_empty() {
            state.queued += 1;
            permit.send(Inbound::Data(data));
        }
        Ok(written)
    }

    /// Queue a control request behind all data sent before it.
    pub(crate) async fn control(
        &self,
        control: Control,
        reply: oneshot::Sender<Result<PortSnapshot, ControlError>>,
    ) -> Result<(), Stopped> {
        let permit = self.tx.reserve().await.map_err(|_| Stopped)?;
        let mut state = self.direct.lock();
        state.queued += 1;
        permit.send(Inbound::Control(control, reply));
        Ok(())
    }
}

impl InboundReceiver {
    /// The next item; call [`InboundReceiver::finished`] once done with it.
    /// Cancel-safe. `None` when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv().await
    }

    /// Items (data chunks, control requests) sent and not yet done with.
    pub(crate) fn items_queued(&self) -> usize {
        self.direct.lock().queued
    }

    /// A handle for writing while `recv` is borrowed elsewhere.
    pub(crate) fn writer(&self) -> InboundWriter {
        InboundWriter {
            direct: self.direct.clone(),
        }
    }
}

/// The actor's handle on the fast path's shared state.
pub(crate) struct InboundWriter {
    direct: Arc<Direct>,
}

impl InboundWriter {
    /// Offer `device` to direct writers (`None` while it is not open).
    pub(crate) fn set_device(&self, device: Option<Arc<dyn SerialDevice>>) {
        self.direct.lock().device = device;
    }

    /// One item received is done with (written, applied or dropped).
    pub(crate) fn finished(&self) {
        let mut state = self.direct.lock();
        state.queued = state.queued.saturating_sub(1);
    }

    /// Write (the rest of) the current data item, under the lock direct
    /// writers take. A write that takes the whole buffer finishes the item
    /// in the same critical section.
    pub(crate) fn poll_write(
        &self,
        cx: &mut Context<'_>,
        device: &dyn SerialDevice,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.direct.lock();
        let r = device.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n >= buf.len()
        {
            state.queued = state.queued.saturating_sub(1);
        }
        r
    }
}

/// Write as much of `data` as the device takes without waiting. A write
/// error is left for the actor to meet on its own write (it reports the
/// device lost); here it only ends the fast path.
fn write_now(device: &dyn SerialDevice, data: &[u8]) -> usize {
    // Nobody waits on this context: a device that is full just says
    // Pending, and the rest goes to the actor, which polls with its own.
    let mut cx = Context::from_waker(Waker::noop());
    let mut written = 0;
    while let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
        match device.poll_write(&mut cx, rest) {
            Poll::Ready(Ok(n)) if n > 0 => written += n,
            _ => break,
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use ttyward_serial::{FlushDirection, ModemStatus, SerialError, SerialSettings};

    use super::*;

    /// A device that takes at most `room` more bytes, and records them.
    #[derive(Default)]
    struct Tank {
        room: Mutex<usize>,
        taken: Mutex<Vec<u8>>,
    }

    impl Tank {
        fn with_room(room: usize) -> Arc<Tank> {
            let tank = Tank::default();
            *tank.room.lock().unwrap() = room;
            Arc::new(tank)
        }
        fn taken(&self) -> Vec<u8> {
            self.taken.lock().unwrap().clone()
        }
        fn add_room(&self, n: usize) {
            *self.room.lock().unwrap() += n;
        }
    }

    impl SerialDevice for Tank {
        fn poll_read(&self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_write(&self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let mut room = self.room.lock().unwrap();
            let n = buf.len().min(*room);
            if n == 0 {
                return Poll::Pending;
            }
            *room -= n;
            self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn apply(&self, _: &SerialSettings) -> Result<(), SerialError> {
            Ok(())
        }
        fn set_dtr(&self, _: bool) -> Result<(), SerialError> {
            Ok(())
        }
        fn set_rts(&self, _: bool) -> Result<(), SerialError> {
            Ok(())
        }
        fn modem_status(&self) -> Result<ModemStatus, SerialError> {
            Ok(ModemStatus::default())
        }
        fn set_break(&self, _: bool) -> Result<(), SerialError> {
            Ok(())
        }
        fn flush(&self, _: FlushDirection) -> Result<(), SerialError> {
            Ok(())
        }
        fn has_modem_lines(&self) -> bool {
            false
        }
        fn describe(&self) -> String {
            "tank".into()
        }
    }

    /// Play the actor for one data item: write all of it.
    async fn actor_writes(rx: &mut InboundReceiver, tank: &Tank) -> Vec<u8> {
        let Some(Inbound::Data(mut data)) = rx.recv().await else {
            panic!("expected data");
        };
        let writer = rx.writer();
        let item = data.to_vec();
        while !data.is_empty() {
            tank.add_room(data.len());
            let n = poll_fn(|cx| writer.poll_write(cx, tank, &data))
                .await
                .unwrap();
            data.advance(n);
        }
        item
    }

    #[tokio::test]
    async fn writes_directly_while_nothing_is_queued() {
        let (tx, rx) = channel(4);
        let tank = Tank::with_room(100);
        rx.writer().set_device(Some(tank.clone()));
        assert_eq!(tx.data(Bytes::from_static(b"hello")).await.unwrap(), 5);
        assert_eq!(tank.taken(), b"hello");
        assert_eq!(rx.direct.lock().queued, 0);
    }

    #[tokio::test]
    async fn queues_what_the_device_does_not_take_and_keeps_order() {
        let (tx, mut rx) = channel(4);
        let tank = Tank::with_room(3);
        rx.writer().set_device(Some(tank.clone()));
        // "abc" goes straight in; "def" waits for the actor.
        assert_eq!(tx.data(Bytes::from_static(b"abcdef")).await.unwrap(), 3);
        // The device has room again, but "def" is ahead: no overtaking.
        tank.add_room(100);
        assert_eq!(tx.clone().data(Bytes::from_static(b"gh")).await.unwrap(), 0);
        assert_eq!(actor_writes(&mut rx, &tank).await, b"def");
        assert_eq!(actor_writes(&mut rx, &tank).await, b"gh");
        assert_eq!(tank.taken(), b"abcdefgh");
        // Everything finished: direct again.
        assert_eq!(tx.data(Bytes::from_static(b"i")).await.unwrap(), 1);
        assert_eq!(tank.taken(), b"abcdefghi");
    }

    #[tokio::test]
    async fn data_after_a_control_request_waits_for_it() {
        let (tx, mut rx) = channel(4);
        let tank = Tank::with_room(100);
        rx.writer().set_device(Some(tank.clone()));
        let (reply, _) = oneshot::channel();
        tx.control(Control::Dtr(true), reply).await.unwrap();
        assert_eq!(tx.data(Bytes::from_static(b"x")).await.unwrap(), 0);
        assert!(tank.taken().is_empty());
        assert!(matches!(rx.recv().await, Some(Inbound::Control(..))));
        rx.writer().finished();
        assert_eq!(actor_writes(&mut rx, &tank).await, b"x");
        assert_eq!(tx.data(Bytes::from_static(b"y")).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn queues_everything_while_no_device_is_open() {
        let (tx, rx) = channel(4);
        assert_eq!(tx.data(Bytes::from_static(b"z")).await.unwrap(), 0);
        assert_eq!(rx.direct.lock().queued, 1);
    }
}
