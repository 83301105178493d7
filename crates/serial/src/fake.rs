//! A fake serial device for tests: [`FakeDevice`] is what the engine opens,
//! [`FakeHandle`] is what the test holds.
//!
//! The handle records everything the engine does to the device (bytes
//! written, settings applied, DTR/RTS, breaks, flushes, opens) and lets the
//! test drive what a pty cannot show: data sent by the device, the input
//! modem lines (CTS, DSR, DCD, RI) and unplugging. It checks nothing:
//! every setting, RS-485 and DTR/DSR flow included, is recorded as given.
//!
//! * [`FakeHandle::unplug`]: every open `FakeDevice` fails from then on
//!   (reads and writes with `EIO`, which [`crate::error::io_is_missing`]
//!   calls "gone"), and [`crate::open`] fails with a missing-device error
//!   until [`FakeHandle::plug`]. Devices opened before the unplug stay dead,
//!   like a tty of a re-plugged USB adapter.
//! * Opening raises DTR and RTS, as the kernel does for a tty.
//! * Bytes given to [`FakeHandle::device_output`] while no device is open
//!   wait for the next device.
//!
//! Waiting is event driven: [`FakeHandle::wait_for`] and
//! [`FakeHandle::wait_device_input`] wake on every change, with a timeout.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;

use crate::device::SerialDevice;
use crate::error::SerialError;
use crate::modem::{FlushDirection, ModemStatus};
use crate::settings::SerialSettings;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Default)]
struct FakeState {
    plugged: bool,
    /// Bumped by every unplug; devices of an older generation are dead.
    generation: u64,
    to_engine: VecDeque<u8>,
    from_engine: Vec<u8>,
    settings: Option<SerialSettings>,
    applies: usize,
    has_modem_lines: bool,
    apply_error: Option<&'static str>,
    lines: ModemStatus,
    break_on: bool,
    breaks_on: usize,
    flushes: Vec<FlushDirection>,
    output_held: bool,
    opens: usize,
    readers: Vec<Waker>,
}

#[derive(Debug)]
struct Shared {
    id: u64,
    // A std Mutex: never held across an await.
    state: Mutex<FakeState>,
    changed: Notify,
}

/// The test's side of a fake device. Clones share the same device.
#[derive(Clone)]
pub struct FakeHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for FakeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeHandle")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they drive the same fake.
impl PartialEq for FakeHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for FakeHandle {}

impl Default for FakeHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHandle {
    /// A plugged-in fake with modem lines, all inputs off.
    pub fn new() -> FakeHandle {
        FakeHandle {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                state: Mutex::new(FakeState {
                    plugged: true,
                    has_modem_lines: true,
                    ..Default::default()
                }),
                changed: Notify::new(),
            }),
        }
    }

    /// `fake:N`, unique per handle.
    pub fn describe(&self) -> String {
        format!("fake:{}", self.shared.id)
    }

    /// Opens a new device connected to this handle, as [`crate::open`] does.
    pub fn open_device(&self, settings: &SerialSettings) -> Result<FakeDevice, SerialError> {
        let mut state = self.lock();
        if !state.plugged {
            return Err(SerialError::Open {
                path: self.describe().into(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        if let Some(what) = state.apply_error {
            return Err(SerialError::Unsupported { what });
        }
        state.opens += 1;
        state.lines.dtr = true;
        state.lines.rts = true;
        state.settings = Some(settings.clone());
        state.applies += 1;
        let generation = state.generation;
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(FakeDevice {
            handle: self.clone(),
            generation,
        })
    }

    // --- what the device sends and receives ---

    /// Bytes the "device" sends; the engine reads them.
    pub fn device_output(&self, data: &[u8]) {
        self.update(|s| s.to_engine.extend(data));
    }

    /// Takes the bytes the engine wrote to the device so far.
    pub fn take_device_input(&self) -> Vec<u8> {
        std::mem::take(&mut self.lock().from_engine)
    }

    /// Waits until at least `n_bytes` were written to the device, or
    /// `timeout`; then takes everything written so far (possibly fewer
    /// bytes after a timeout).
    pub async fn wait_device_input(&self, n_bytes: usize, timeout: Duration) -> Vec<u8> {
        self.wait_for(timeout, |h| h.lock().from_engine.len() >= n_bytes)
            .await;
        self.take_device_input()
    }

    /// Waits until `condition` holds (checked now and after every change to
    /// the fake) or `timeout` passes; returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&FakeHandle) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before checking, so no change is missed.
            notified.as_mut().enable();
            if condition(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return condition(self);
            }
        }
    }

    // --- what the engine did ---

    /// The settings last applied (at open or by `apply`).
    pub fn settings(&self) -> Option<SerialSettings> {
        self.lock().settings.clone()
    }

    /// How many times settings were applied, opens included.
    pub fn applies(&self) -> usize {
        self.lock().applies
    }

    /// DTR as last set.
    pub fn dtr(&self) -> bool {
        self.lock().lines.dtr
    }

    /// RTS as last set.
    pub fn rts(&self) -> bool {
        self.lock().lines.rts
    }

    /// Whether a break is being sent.
    pub fn break_state(&self) -> bool {
        self.lock().break_on
    }

    /// How many times a break was started.
    pub fn breaks_on(&self) -> usize {
        self.lock().breaks_on
    }

    /// Every flush, in order.
    pub fn flushes(&self) -> Vec<FlushDirection> {
        self.lock().flushes.clone()
    }

    /// Whether output is held (Real COM SETXOFF) right now.
    pub fn output_held(&self) -> bool {
        self.lock().output_held
    }

    /// How many devices were opened.
    pub fn opens(&self) -> usize {
        self.lock().opens
    }

    /// Whether the device is plugged in.
    pub fn is_plugged(&self) -> bool {
        self.lock().plugged
    }

    // --- what the test drives ---

    /// Sets the CTS input.
    pub fn set_cts(&self, on: bool) {
        self.update(|s| s.lines.cts = on);
    }

    /// Sets the DSR input.
    pub fn set_dsr(&self, on: bool) {
        self.update(|s| s.lines.dsr = on);
    }

    /// Sets the DCD input.
    pub fn set_dcd(&self, on: bool) {
        self.update(|s| s.lines.dcd = on);
    }

    /// Sets the RI input.
    pub fn set_ri(&self, on: bool) {
        self.update(|s| s.lines.ri = on);
    }

    /// Makes the device behave like a pty: no modem lines (DTR/RTS kept in
    /// software, inputs read false, `has_modem_lines()` false). Affects
    /// devices opened later.
    pub fn set_has_modem_lines(&self, present: bool) {
        self.update(|s| s.has_modem_lines = present);
    }

    /// Makes `open` and `apply` fail with [`SerialError::Unsupported`]
    /// naming `what` (`None` to accept again).
    pub fn set_apply_error(&self, what: Option<&'static str>) {
        self.update(|s| s.apply_error = what);
    }

    /// Unplugs the device: open devices fail, opens fail until
    /// [`FakeHandle::plug`].
    pub fn unplug(&self) {
        self.update(|s| {
            s.plugged = false;
            s.generation += 1;
        });
    }

    /// Plugs the device back in; only newly opened devices work.
    pub fn plug(&self) {
        self.update(|s| s.plugged = true);
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state, then wakes readers and waiters.
    fn update(&self, change: impl FnOnce(&mut FakeState)) {
        let mut state = self.lock();
        change(&mut state);
        let readers = std::mem::take(&mut state.readers);
        drop(state);
        readers.into_iter().for_each(Waker::wake);
        self.shared.changed.notify_waiters();
    }
}

/// A device opened from a [`FakeHandle`].
#[derive(Debug)]
pub struct FakeDevice {
    handle: FakeHandle,
    generation: u64,
}

impl FakeDevice {
    /// The handle this device reports to.
    pub fn handle(&self) -> &FakeHandle {
        &self.handle
    }

    fn gone(&self, state: &FakeState) -> bool {
        !state.plugged || state.generation != self.generation
    }

    /// Locks the state, failing with EIO once unplugged.
    fn live(&self) -> io::Result<MutexGuard<'_, FakeState>> {
        let state = self.handle.lock();
        if self.gone(&state) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(state)
    }

    fn record(&self, change: impl FnOnce(&mut FakeState)) -> Result<(), SerialError> {
        drop(self.live()?);
        self.handle.update(change);
        Ok(())
    }
}

impl SerialDevice for FakeDevice {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut state = match self.live() {
            Ok(state) => state,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if state.to_engine.is_empty() {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if !state.readers.iter().any(|w| w.will_wake(cx.waker())) {
                state.readers.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = buf.len().min(state.to_engine.len());
        for (slot, byte) in buf.iter_mut().zip(state.to_engine.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Err(e) = self.live() {
            return Poll::Ready(Err(e));
        }
        self.handle.update(|s| s.from_engine.extend_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn apply(&self, settings: &SerialSettings) -> Result<(), SerialError> {
        if let Some(what) = self.live()?.apply_error {
            return Err(SerialError::Unsupported { what });
        }
        self.record(|s| {
            s.settings = Some(settings.clone());
            s.applies += 1;
        })
    }

    fn set_dtr(&self, on: bool) -> Result<(), SerialError> {
        self.record(|s| s.lines.dtr = on)
    }

    fn set_rts(&self, on: bool) -> Result<(), SerialError> {
        self.record(|s| s.lines.rts = on)
    }

    fn modem_status(&self) -> Result<ModemStatus, SerialError> {
        let state = self.live()?;
        if state.has_modem_lines {
            Ok(state.lines)
        } else {
            Ok(ModemStatus {
                dtr: state.lines.dtr,
                rts: state.lines.rts,
                ..ModemStatus::default()
            })
        }
    }

    fn set_break(&self, on: bool) -> Result<(), SerialError> {
        self.record(|s| {
            if on && !s.break_on {
                s.breaks_on += 1;
            }
            s.break_on = on;
        })
    }

    fn flush(&self, dir: FlushDirection) -> Result<(), SerialError> {
        self.record(|s| {
            if matches!(dir, FlushDirection::Input | FlushDirection::Both) {
                s.to_engine.clear();
            }
            s.flushes.push(dir);
        })
    }

    fn hold_output(&self, on: bool) -> Result<(), SerialError> {
        self.record(|s| s.output_held = on)
    }

    fn has_modem_lines(&self) -> bool {
        self.handle.lock().has_modem_lines
    }

    fn describe(&self) -> String {
        self.handle.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{BaudRate, Interface};

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn round_trips_data_both_ways() {
        let handle = FakeHandle::new();
        let device: Box<dyn SerialDevice> =
            Box::new(handle.open_device(&SerialSettings::default()).unwrap());
        handle.device_output(b"from device");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(WAIT, device.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"from device");
        device.write_all(b"to device").await.unwrap();
        assert_eq!(handle.wait_device_input(9, WAIT).await, b"to device");
    }

    #[tokio::test]
    async fn a_waiting_read_wakes_on_output() {
        let handle = FakeHandle::new();
        let device: Box<dyn SerialDevice> =
            Box::new(handle.open_device(&SerialSettings::default()).unwrap());
        let mut buf = [0u8; 8];
        let (n, ()) = tokio::join!(device.read(&mut buf), async {
            tokio::task::yield_now().await;
            handle.device_output(b"ab");
        });
        assert_eq!(n.unwrap(), 2);
    }

    #[tokio::test]
    async fn records_settings_lines_breaks_and_flushes() {
        let handle = FakeHandle::new();
        let device = handle.open_device(&SerialSettings::default()).unwrap();
        assert_eq!((handle.opens(), handle.applies()), (1, 1));
        assert!(handle.dtr() && handle.rts());
        let rs485 = SerialSettings {
            baud: BaudRate::new(250_000).unwrap(),
            interface: Interface::Rs485FourWire,
            ..Default::default()
        };
        device.apply(&rs485).unwrap();
        assert_eq!(handle.settings(), Some(rs485));
        device.set_dtr(false).unwrap();
        assert!(!handle.dtr());
        device.set_break(true).unwrap();
        device.set_break(false).unwrap();
        device.set_break(true).unwrap();
        assert_eq!(handle.breaks_on(), 2);
        assert!(handle.break_state());
        device.flush(FlushDirection::Both).unwrap();
        assert_eq!(handle.flushes(), vec![FlushDirection::Both]);
        handle.set_cts(true);
        handle.set_ri(true);
        let m = device.modem_status().unwrap();
        assert!(m.cts && m.ri && !m.dsr && !m.dcd && !m.dtr && m.rts);
        assert_eq!(m.rfc2217_bits(), 0x50);
    }

    #[tokio::test]
    async fn unplug_kills_open_devices_until_reopened() {
        let handle = FakeHandle::new();
        let device: Box<dyn SerialDevice> =
            Box::new(handle.open_device(&SerialSettings::default()).unwrap());
        let mut buf = [0u8; 8];
        let (read, ()) = tokio::join!(device.read(&mut buf), async {
            tokio::task::yield_now().await;
            handle.unplug();
        });
        let err = read.unwrap_err();
        assert!(crate::error::io_is_missing(&err));
        assert!(SerialError::from(err).is_missing());
        let open_err = handle.open_device(&SerialSettings::default()).unwrap_err();
        assert!(open_err.is_missing(), "{open_err}");
        handle.plug();
        // The old device stays dead; a new one works.
        assert!(device.set_dtr(true).is_err());
        let fresh = handle.open_device(&SerialSettings::default()).unwrap();
        fresh.set_dtr(true).unwrap();
        assert_eq!(handle.opens(), 2);
    }

    #[tokio::test]
    async fn wait_for_times_out_and_succeeds() {
        let handle = FakeHandle::new();
        assert!(
            !handle
                .wait_for(Duration::from_millis(10), |h| h.breaks_on() > 0)
                .await
        );
        let device = handle.open_device(&SerialSettings::default()).unwrap();
        let (seen, ()) = tokio::join!(handle.wait_for(WAIT, |h| !h.rts()), async {
            tokio::task::yield_now().await;
            device.set_rts(false).unwrap();
        });
        assert!(seen);
    }

    #[test]
    fn can_pretend_to_be_a_pty() {
        let handle = FakeHandle::new();
        handle.set_has_modem_lines(false);
        handle.set_cts(true);
        let device = handle.open_device(&SerialSettings::default()).unwrap();
        assert!(!device.has_modem_lines());
        let m = device.modem_status().unwrap();
        assert!(m.dtr && m.rts && !m.cts);
        handle.set_apply_error(Some("RS-485 mode"));
        assert!(matches!(
            device.apply(&SerialSettings::default()),
            Err(SerialError::Unsupported { .. })
        ));
    }
}
