//! A raw TCP session: network bytes go to the device untouched and device
//! output comes back untouched. Shared by TCP Server and TCP Client mode.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::net::{Conn, NET_READ, SharedStream, read_shared};
use crate::port::Session;

/// After the peer shut down its sending side (`echo cmd | nc host port`),
/// replies still reach it until the device has been quiet this long.
const HALF_CLOSE_LINGER: Duration = Duration::from_millis(500);
/// How long a TLS session's close_notify may take to leave.
const CLOSE_NOTIFY: Duration = Duration::from_secs(1);

/// Forward both ways until one side ends; returns why, in words.
///
/// `inactivity`: close when nothing moved either way for this long (NPort
/// "inactivity time"). `stop`: an extra reason to end (e.g. DSR went off).
pub(crate) async fn pump(
    conn: Conn,
    session: &Session,
    mut initial: Vec<Bytes>,
    inactivity: Option<Duration>,
    cancel: &CancellationToken,
    stop: impl Future<Output = &'static str>,
) -> String {
    let stream = match conn {
        Conn::Plain(s) => s,
        Conn::Tls(tls) => {
            // TLS records are this task's to write: no direct writes.
            let (rd, mut wr) = tokio::io::split(*tls);
            if let Err(why) = session.write_out(&mut wr, &mut initial).await {
                return why;
            }
            let mut rd = Halves(rd);
            let why = forward(&mut rd, &mut wr, session, inactivity, cancel, stop).await;
            // close_notify, so the peer can tell the end from a cut; a peer
            // that stopped reading does not hold the session up.
            let _ = tokio::time::timeout(CLOSE_NOTIFY, wr.shutdown()).await;
            return why;
        }
    };
    pump_plain(stream, session, initial, inactivity, cancel, stop).await
}

async fn pump_plain(
    stream: TcpStream,
    session: &Session,
    initial: Vec<Bytes>,
    inactivity: Option<Duration>,
    cancel: &CancellationToken,
    stop: impl Future<Output = &'static str>,
) -> String {
    let stream = std::sync::Arc::new(stream);
    let mut wr = SharedStream(&stream);
    let mut chunks = initial;
    if let Err(why) = session.write_out(&mut wr, &mut chunks).await {
        return why;
    }
    // Device output is forwarded untouched, so the port may write it to the
    // socket itself while nothing is queued (see `crate::outbox`). Not with
    // an inactivity time: that clock is this task's and must see the data.
    if inactivity.is_none() {
        session.allow_direct_writes(stream.clone());
    }
    let why = forward(&mut &*stream, &mut wr, session, inactivity, cancel, stop).await;
    session.stop_direct_writes();
    why
}

/// The reading side of a connection, as [`forward`] reads it.
pub(crate) trait NetRead {
    /// Append what arrived to `buf`; `Ok(0)` at end of stream. Cancel-safe.
    async fn read_some(&mut self, buf: &mut BytesMut) -> std::io::Result<usize>;
}

impl NetRead for &TcpStream {
    async fn read_some(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        read_shared(self, buf).await
    }
}

/// Any other reader (the read half of a TLS stream).
pub(crate) struct Halves<R>(pub R);

impl<R: AsyncRead + Unpin> NetRead for Halves<R> {
    async fn read_some(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        if buf.capacity() - buf.len() < NET_READ / 2 {
            buf.reserve(NET_READ);
        }
        match self.0.read_buf(buf).await {
            // Most clients (socat, pyserial) close without TLS close_notify:
            // that is their end of the stream, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

async fn forward<W: AsyncWrite + Unpin>(
    rd: &mut impl NetRead,
    wr: &mut W,
    session: &Session,
    inactivity: Option<Duration>,
    cancel: &CancellationToken,
    stop: impl Future<Output = &'static str>,
) -> String {
    let mut chunks = Vec::new();
    let mut rbuf = BytesMut::new();
    let idle = tokio::time::sleep(inactivity.unwrap_or(Duration::MAX / 4));
    let linger = tokio::time::sleep(Duration::MAX / 4);
    let mut peer_done = false;
    let cancelled = cancel.cancelled();
    tokio::pin!(idle, linger, stop, cancelled);
    loop {
        tokio::select! {
            _ = &mut cancelled => return "port stopped".into(),
            r = rd.read_some(&mut rbuf), if !peer_done => match r {
                Ok(0) => {
                    peer_done = true;
                    // The linger clock below must see device output again.
                    session.stop_direct_writes();
                    linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                }
                Ok(_) => {
                    let data = rbuf.split().freeze();
                    if session.send(data).await.is_err() {
                        return "port stopped".into();
                    }
                }
                Err(e) => return format!("read error: {e}"),
            },
            r = session.recv(&mut chunks) => match r {
                Ok(()) => {
                    if let Err(why) = session.write_out(wr, &mut chunks).await {
                        return why;
                    }
                    if peer_done {
                        linger.as_mut().reset(Instant::now() + HALF_CLOSE_LINGER);
                    }
                }
                Err(reason) => return reason.to_string(),
            },
            _ = &mut idle, if inactivity.is_some() => return "inactivity timeout".into(),
            _ = &mut linger, if peer_done => return "closed by peer".into(),
            why = &mut stop => return why.into(),
        }
        if let Some(d) = inactivity {
            idle.as_mut().reset(Instant::now() + d);
        }
    }
}
