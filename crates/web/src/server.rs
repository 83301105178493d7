//! The HTTPS accept loop (mini-redis's shape: bound listeners in, a
//! shutdown token, one tracked task per connection).
//!
//! Per connection, in order: the Gate admits the source for the
//! `management` service (allowlist, DoS caps and accept rate) or the
//! connection is closed at once; the TLS handshake must finish within the
//! DoS settings' handshake timeout; then HTTP/1.1 or HTTP/2 (by ALPN) is
//! served with a header-read timeout (slowloris) and a cap on concurrent
//! HTTP/2 streams. The peer address reaches handlers as `ConnectInfo`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::access::ServiceKind;
use ttyward_core::event_log::EventId;
use ttyward_core::service::Service;
use ttyward_core::services::WebService;
use ttyward_engine::gate::Gate;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 32;
/// How long open connections may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// Why the web server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// An address could not be bound.
    #[error(
        "web console: cannot listen on {addr}: {source} (is another program using it, or does binding it need CAP_NET_BIND_SERVICE? see docs/deployment.md)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("web console: TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The device certificate could not be made or loaded.
    #[error("web console: {0}")]
    Cert(#[from] crate::cert::CertError),
}

/// Bind the HTTPS listeners `web` asks for (nothing when it is off). A
/// host without IPv6 skips the IPv6 wildcard.
pub fn bind(web: &WebService) -> Result<Vec<TcpListener>, WebError> {
    if !web.enabled {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for ip in &web.bind {
        let addr = SocketAddr::new(*ip, web.https_port);
        match ttyward_engine::net::bind_tcp(addr) {
            Ok(l) => out.push(l),
            Err(e) if ip.is_unspecified() && ip.is_ipv6() && ipv6_missing(&e) => {
                tracing::warn!("IPv6 unavailable, web console not listening on {addr}: {e}");
            }
            Err(source) => return Err(WebError::Bind { addr, source }),
        }
    }
    Ok(out)
}

fn ipv6_missing(e: &std::io::Error) -> bool {
    /// Linux EAFNOSUPPORT: the kernel has no IPv6.
    const EAFNOSUPPORT: i32 = 97;
    e.kind() == std::io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(EAFNOSUPPORT)
}

/// The running HTTPS server.
#[derive(Debug)]
pub struct WebServer {
    addrs: Vec<SocketAddr>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// What every connection task needs.
#[derive(Clone)]
struct Conn {
    app: Router,
    tls: TlsAcceptor,
    gate: Gate,
    service: Service,
    cancel: CancellationToken,
}

impl WebServer {
    /// Serve `app` over TLS on already bound `listeners`.
    pub fn start(
        listeners: Vec<TcpListener>,
        app: Router,
        tls: Arc<rustls::ServerConfig>,
        gate: Gate,
        service: Service,
    ) -> WebServer {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let addrs = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let conn = Conn {
            app,
            tls: TlsAcceptor::from(tls),
            gate,
            service,
            cancel: cancel.clone(),
        };
        for listener in listeners {
            tracker.spawn(accept_loop(listener, conn.clone(), tracker.clone()));
        }
        WebServer {
            addrs,
            cancel,
            tracker,
        }
    }

    /// The addresses actually bound.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stop accepting, let open requests finish for a moment, then end.
    /// True when everything ended in time.
    pub async fn stop(self) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(DRAIN + Duration::from_secs(1), self.tracker.wait())
            .await
            .is_ok()
    }
}

async fn accept_loop(listener: TcpListener, conn: Conn, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = conn.cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("web console: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match conn.gate.admit(peer.ip(), ServiceKind::Management) {
            Ok(p) => p,
            Err(refused) => {
                if let Some(suppressed) = refused.report {
                    let event = if refused.reason.is_allowlist() {
                        EventId::AllowlistRefused
                    } else {
                        EventId::DosTriggered
                    };
                    let more = if suppressed > 0 {
                        format!(" ({suppressed} more refused since the last report)")
                    } else {
                        String::new()
                    };
                    conn.service.record_from(
                        event,
                        peer.ip(),
                        format!(
                            "web console: connection from {peer} refused: {}{more}",
                            refused.reason
                        ),
                    );
                }
                continue;
            }
        };
        let c = conn.clone();
        tracker.spawn(async move {
            serve(stream, peer, c).await;
            drop(permit);
        });
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, conn: Conn) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(conn.gate.handshake_timeout(), conn.tls.accept(stream));
    let tls = tokio::select! {
        () = conn.cancel.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!("web console: TLS handshake with {peer} failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("web console: TLS handshake with {peer} timed out");
                return;
            }
        },
    };
    let app = conn.app.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    tokio::select! {
        r = connection.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("web console: connection with {peer}: {e}");
            }
        }
        () = conn.cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, connection).await;
        }
    }
}
