//! Socket set-up shared by the front-ends: listeners bound exactly where the
//! configuration says, and per-connection options (no Nagle delay, NPort
//! style TCP alive check).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Bind a TCP listener. IPv6 sockets are IPv6-only so that `0.0.0.0` and
/// `::` can be bound side by side on the same port.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

/// Bind a UDP socket (IPv6-only for IPv6 addresses, as for TCP).
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Per-connection options: TCP_NODELAY (serial replies are small and must
/// not wait for Nagle), and the NPort "TCP alive check": Moxa's firmware
/// probes after 7 s idle every 3 s, with as many probes as fit in the
/// configured minutes (at most 127), so a dead peer is noticed after about
/// `minutes` and the port is free for the next client.
pub fn configure_stream(stream: &TcpStream, alive_check_min: u8) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if alive_check_min > 0 {
        let total = 60 * u32::from(alive_check_min);
        let probes = total.saturating_sub(7).div_ceil(3).clamp(1, 127);
        let ka = TcpKeepalive::new()
            .with_time(Duration::from_secs(7))
            .with_interval(Duration::from_secs(3))
            .with_retries(probes);
        SockRef::from(stream).set_tcp_keepalive(&ka)?;
    }
    Ok(())
}

/// Write every chunk, several per system call.
pub async fn write_chunks<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    chunks: &mut Vec<Bytes>,
) -> io::Result<()> {
    if let [only] = chunks.as_slice() {
        // The common case on a quiet line: no iovec array to build.
        w.write_all(only).await?;
        chunks.clear();
        return Ok(());
    }
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<io::IoSlice<'_>> = chunks[first..]
            .iter()
            .take(64)
            .map(|c| io::IoSlice::new(c))
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && first < chunks.len() {
            let len = chunks[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                bytes::Buf::advance(&mut chunks[first], n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(())
}

/// An accepted or opened data connection, with or without TLS.
pub(crate) enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS on TCP (boxed: the TLS state is large).
    Tls(Box<crate::tls::TlsStream>),
}

/// The writing side of a [`TcpStream`] that is shared (behind an `Arc`)
/// with the port actor, which may write to it directly (see
/// [`crate::outbox`]). tokio's own write halves need `&mut` or ownership;
/// this needs only `&TcpStream`.
pub(crate) struct SharedStream<'a>(pub &'a TcpStream);

/// Bytes read from a socket at most per call.
pub(crate) const NET_READ: usize = 16 * 1024;

/// Read from a shared stream into the spare capacity of `buf` (no
/// zero-fill). Cancel-safe: nothing is read unless it returns.
///
/// Room for [`NET_READ`] bytes is set aside only once the socket is
/// readable, so a connected but quiet session holds no read buffer.
pub(crate) async fn read_shared(sock: &TcpStream, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    loop {
        sock.readable().await?;
        if buf.capacity() - buf.len() < NET_READ / 2 {
            buf.reserve(NET_READ);
        }
        // A short read emptied the receive queue: clear the readiness now
        // (as tokio's own `poll_read` does) instead of learning it from a
        // recv(2) that says EAGAIN — one syscall less per request of a
        // round trip. try_io clears the readiness when its closure says
        // WouldBlock, so a short read is reported that way and kept aside.
        let space = buf.capacity() - buf.len();
        let mut short = None;
        let r = sock.try_io(Interest::READABLE, || match sock.try_read_buf(buf) {
            Ok(n) if n > 0 && n < space => {
                short = Some(n);
                Err(io::ErrorKind::WouldBlock.into())
            }
            r => r,
        });
        match (short, r) {
            (Some(n), _) => return Ok(n),
            (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (None, r) => return r,
        }
    }
}

impl tokio::io::AsyncWrite for SharedStream<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return std::task::Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return std::task::Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(SockRef::from(self.0).shutdown(std::net::Shutdown::Write))
    }
}
