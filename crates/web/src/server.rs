//! The HTTPS accept loop (mini-redis's shape: bound listeners in, a
//! shutdown token, one tracked task per connection).
//!
//! Per connection, in order: the Gate admits the source for the
//! `management` service (allowlist, DoS caps and accept rate) or the
//! connection is closed at once; the TLS handshake must finish within the
//! DoS settings' handshake timeout; then HTTP/1.1 or HTTP/2 (by ALPN) is
//! served with a header-read timeout (slowloris) and a cap on concurrent
//! HTTP/2 streams. The peer address reaches handlers as `ConnectInfo`.
//!
//! Per request (HTTP/2: per stream), before any route, login or static
//! file: the Gate charges the source's request bucket; over the limit the
//! answer is `429 Too Many Requests` with `Retry-After` and the API's JSON
//! error (`rate-limited`), and no handler runs. A kept-alive connection
//! stays open, so the client may go on after waiting, unless the refused
//! request was an HTTP/1 one with a body: that body is not read, so the
//! answer ends the connection (`Connection: close`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ttyward_core::access::ServiceKind;
use ttyward_core::event_log::EventId;
use ttyward_core::service::Service;
use ttyward_core::services::WebService;
use ttyward_engine::gate::{Gate, GatePermit, Refused, Throttled};

use crate::api::error::{ErrorBody, ErrorDetail};

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
    /// Answers every request it gets with 429 (see [`too_many_requests`]),
    /// behind the same security headers as `app`.
    throttled: Router,
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
            throttled: Router::new()
                .fallback(too_many_requests)
                .layer(axum::middleware::from_fn(crate::headers::security_headers)),
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
                report_refusal(&conn.service, peer, "connection", refused);
                continue;
            }
        };
        let c = conn.clone();
        tracker.spawn(serve(stream, peer, c, Arc::new(permit)));
    }
}

/// Log a Gate refusal when the Gate says it is due (the first of a burst,
/// then one summary per period with the count), as the serial front-ends
/// do.
fn report_refusal(service: &Service, peer: SocketAddr, what: &str, refused: Refused) {
    let Some(suppressed) = refused.report else {
        return;
    };
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
    service.record_from(
        event,
        peer.ip(),
        format!(
            "web console: {what} from {peer} refused: {}{more}",
            refused.reason
        ),
    );
}

/// Charge one request to the source's request bucket; a refusal is
/// reported and its `Retry-After` in whole seconds returned.
fn admit_request(permit: &GatePermit, service: &Service, peer: SocketAddr) -> Option<u64> {
    match permit.admit_request() {
        Ok(()) => None,
        Err(Throttled {
            refused,
            retry_after,
        }) => {
            report_refusal(service, peer, "request", refused);
            // Rounded up: a client that waits exactly this long finds a
            // token; 0 would invite an immediate retry.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            Some(secs.max(1))
        }
    }
}

/// A refused request, as a request extension for [`too_many_requests`].
#[derive(Clone, Copy, Debug)]
struct RateLimited {
    /// `Retry-After`, in seconds.
    retry_after_s: u64,
    /// An HTTP/1 request whose body is left unread: hyper cannot find the
    /// next request after it and ends the connection, so the answer says
    /// so (`Connection: close`) instead of leaving the client to find out.
    close: bool,
}

impl RateLimited {
    fn of(request: &hyper::Request<hyper::body::Incoming>, retry_after_s: u64) -> RateLimited {
        RateLimited {
            retry_after_s,
            close: request.version() < hyper::Version::HTTP_2
                && !hyper::body::Body::is_end_stream(request.body()),
        }
    }
}

/// The answer to a request over the source's request rate: the API's
/// error body, whatever was asked (a page, a static file, the API).
async fn too_many_requests(request: Request) -> Response {
    let limited = request
        .extensions()
        .get::<RateLimited>()
        .copied()
        .unwrap_or(RateLimited {
            retry_after_s: 1,
            close: false,
        });
    let secs = limited.retry_after_s;
    let body = ErrorBody {
        error: ErrorDetail {
            code: "rate-limited",
            message: format!(
                "too many requests from this address; wait {secs} s (Retry-After) and try again"
            ),
            fields: Vec::new(),
        },
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    if limited.close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// One connection: its permit lives as long as this task (and every
/// request charges it).
async fn serve(stream: TcpStream, peer: SocketAddr, conn: Conn, permit: Arc<GatePermit>) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = conn.tls.clone() else {
        redirect(stream, peer, conn, permit).await;
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
    let (app, throttled, reporter) = (
        conn.app.clone(),
        conn.throttled.clone(),
        conn.service.clone(),
    );
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // Before routing, so that logins and static files count too and
            // a refused request costs no handler.
            let target = match admit_request(&permit, &reporter, peer) {
                None => app.clone(),
                Some(secs) => {
                    let limited = RateLimited::of(&request, secs);
                    request.extensions_mut().insert(limited);
                    throttled.clone()
                }
            };
            tower::ServiceExt::oneshot(target, request)
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
/// in clear. Requests count against the source's request rate here too.
async fn redirect(stream: TcpStream, peer: SocketAddr, conn: Conn, permit: Arc<GatePermit>) {
    let port = conn.https_port;
    let reporter = conn.service.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let throttled = admit_request(&permit, &reporter, peer);
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
                let response = if let Some(secs) = throttled {
                    hyper::Response::builder()
                        .status(hyper::StatusCode::TOO_MANY_REQUESTS)
                        .header(hyper::header::RETRY_AFTER, secs)
                        .body("too many requests; wait and try again\n".to_owned())
                } else {
                    match target.and_then(|t| hyper::header::HeaderValue::from_str(&t).ok()) {
                        Some(location) => hyper::Response::builder()
                            .status(hyper::StatusCode::MOVED_PERMANENTLY)
                            .header(hyper::header::LOCATION, location)
                            .body(String::new()),
                        None => hyper::Response::builder()
                            .status(hyper::StatusCode::BAD_REQUEST)
                            .body("use https\n".to_owned()),
                    }
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
