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

/// The sockets of the web service, bound before anything starts.
#[derive(Debug, Default)]
pub struct Bound {
    /// HTTPS.
    pub https: Vec<TcpListener>,
    /// Plain HTTP that only redirects to HTTPS (off by default).
    pub redirect: Vec<TcpListener>,
}

/// Bind the listeners `web` asks for (nothing when it is off). A host
/// without IPv6 skips the IPv6 wildcard.
pub fn bind(web: &WebService) -> Result<Bound, WebError> {
    let mut out = Bound::default();
    if !web.enabled {
        return Ok(out);
    }
    for ip in &web.bind {
        if let Some(l) = bind_one(SocketAddr::new(*ip, web.https_port))? {
            out.https.push(l);
        }
    }
    // The redirect names the HTTPS port actually bound (0 in the
    // configuration means "any").
    if let Some(port) = web.http_redirect_port {
        for ip in &web.bind {
            if let Some(l) = bind_one(SocketAddr::new(*ip, port))? {
                out.redirect.push(l);
            }
        }
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr) -> Result<Option<TcpListener>, WebError> {
    match ttyward_engine::net::bind_tcp(addr) {
        Ok(l) => Ok(Some(l)),
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && ipv6_missing(&e) => {
            tracing::warn!("IPv6 unavailable, web console not listening on {addr}: {e}");
            Ok(None)
        }
        Err(source) => Err(WebError::Bind { addr, source }),
    }
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
    /// `None`: the plain-HTTP redirect listener, answering every request
    /// with a redirect to this HTTPS port.
    tls: Option<TlsAcceptor>,
    https_port: u16,
    gate: Gate,
    service: Service,
    cancel: CancellationToken,
}

impl WebServer {
    /// Serve `app` over TLS on already bound listeners (and the redirect on
    /// the plain-HTTP ones).
    pub fn start(
        bound: Bound,
        app: Router,
        tls: Arc<rustls::ServerConfig>,
        gate: Gate,
        service: Service,
    ) -> WebServer {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let addrs = bound
            .https
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let https_port = bound
            .https
            .first()
            .and_then(|l| l.local_addr().ok())
            .map_or(443, |a| a.port());
        let conn = Conn {
            app,
            tls: Some(TlsAcceptor::from(tls)),
            https_port,
            gate,
            service,
            cancel: cancel.clone(),
        };
        for listener in bound.https {
            tracker.spawn(accept_loop(listener, conn.clone(), tracker.clone()));
        }
        for listener in bound.redirect {
            let plain = Conn {
                tls: None,
                ..conn.clone()
            };
            tracker.spawn(accept_loop(listener, plain, tracker.clone()));
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
    let Some(acceptor) = conn.tls.clone() else {
        redirect(stream, peer, conn).await;
        return;
    };
    let handshake = tokio::time::timeout(conn.gate.handshake_timeout(), acceptor.accept(stream));
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

/// The plain-HTTP listener: every request is answered with a permanent
/// redirect to the same host and path over HTTPS; nothing else is served
/// in clear.
async fn redirect(stream: TcpStream, peer: SocketAddr, conn: Conn) {
    let port = conn.https_port;
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let host = request
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(host_without_port)
                .unwrap_or_default();
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let target = if host.is_empty() || host.contains(['/', '\\', '@']) {
                None
            } else if port == 443 {
                Some(format!("https://{host}{path}"))
            } else {
                Some(format!("https://{host}:{port}{path}"))
            };
            async move {
                let response =
                    match target.and_then(|t| hyper::header::HeaderValue::from_str(&t).ok()) {
                        Some(location) => hyper::Response::builder()
                            .status(hyper::StatusCode::MOVED_PERMANENTLY)
                            .header(hyper::header::LOCATION, location)
                            .body(String::new()),
                        None => hyper::Response::builder()
                            .status(hyper::StatusCode::BAD_REQUEST)
                            .body("use https\n".to_owned()),
                    };
                response.map_err(|e| std::io::Error::other(e.to_string()))
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(16 * 1024);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        r = connection => {
            if let Err(e) = r {
                tracing::debug!("web console redirect: connection with {peer}: {e}");
            }
        }
        () = conn.cancel.cancelled() => {}
    }
}

/// `example.org:80` → `example.org`, `[::1]:80` → `[::1]`.
fn host_without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}
