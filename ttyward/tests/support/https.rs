//! A small blocking HTTPS/1.1 client for the web tests: std `TcpStream`
//! (optionally bound to a source address) + `rustls::StreamOwned`, one
//! request per connection (`Connection: close`), or several one after
//! another on one kept-alive connection ([`KeepAlive`]). It trusts exactly
//! the device certificate from the data directory and checks the name
//! "localhost". Every read and write has a deadline.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// How long one request may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response accepted (a runaway answer must not eat the memory).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// A TLS stream to the server.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Talks to one HTTPS server.
#[derive(Clone)]
pub struct Client {
    /// The server's address.
    pub addr: SocketAddr,
    config: Arc<ClientConfig>,
    source: Option<IpAddr>,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in the order received (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding undone).
    pub body: Vec<u8>,
    /// Status line and headers as received (for "does the answer leak").
    pub head: String,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the status and body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer {} is not JSON ({e}): {}", self.status, self.text()))
    }

    /// `error.code` of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {} {}", self.status, self.text()))
            .to_owned()
    }

    /// Everything received, head and body, as text.
    pub fn whole(&self) -> String {
        format!("{}\r\n\r\n{}", self.head, self.text())
    }
}

/// A client configuration trusting only the certificate(s) in `pem_path`.
pub fn trusting(pem_path: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_file_iter(pem_path).expect("read the device certificate") {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("certificate usable as a trust anchor");
        n += 1;
    }
    assert!(n > 0, "no certificate in {}", pem_path.display());
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Client {
    /// A client of `addr` trusting the device certificate in
    /// `DATA_DIR/certs/system.crt`.
    pub fn new(addr: SocketAddr, data_dir: &Path) -> Client {
        Client {
            addr,
            config: trusting(&data_dir.join("certs").join("system.crt")),
            source: None,
        }
    }

    /// The same client, connecting from source address `ip` (any of
    /// 127/8 works on Linux loopback).
    pub fn with_source(&self, ip: IpAddr) -> Client {
        Client {
            source: Some(ip),
            ..self.clone()
        }
    }

    /// The same client for another server address (same trust).
    pub fn at(&self, addr: SocketAddr) -> Client {
        Client {
            addr,
            ..self.clone()
        }
    }

    /// The `Host` header this client sends.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Connect and finish the TLS handshake; an error when the server
    /// closes or refuses the connection before the handshake is done.
    pub fn connect(&self) -> std::io::Result<Tls> {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let socket = Socket::new(
            Domain::for_address(self.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        if let Some(ip) = self.source {
            socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
        }
        socket.connect_timeout(&SockAddr::from(self.addr), TIMEOUT)?;
        let mut tcp = TcpStream::from(socket);
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let name = ServerName::try_from("localhost").expect("server name");
        let mut conn =
            ClientConnection::new(Arc::clone(&self.config), name).map_err(std::io::Error::other)?;
        let deadline = Instant::now() + TIMEOUT;
        while conn.is_handshaking() {
            if Instant::now() > deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let (read, written) = conn.complete_io(&mut tcp)?;
            if read == 0 && written == 0 && conn.is_handshaking() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    /// Send one request and read the answer. `headers` come after `Host`,
    /// `Connection: close` and (with a body) `Content-Length`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut tls = self.connect()?;
        exchange(&mut tls, &self.host(), true, method, path, headers, body)
    }

    /// Connect and keep the connection for [`KeepAlive::request`]s.
    pub fn keep_alive(&self) -> std::io::Result<KeepAlive> {
        Ok(KeepAlive {
            tls: self.connect()?,
            host: self.host(),
        })
    }

    /// GET `path`, with a bearer token if given.
    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        self.request("GET", path, &headers, b"")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `method path` with a JSON body (or none for `Value::Null`) and a
    /// bearer token if given.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            headers.push(("Content-Type", "application/json"));
            serde_json::to_vec(body).expect("serialise")
        };
        self.request(method, path, &headers, &bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Log in and return the bearer token; panics unless it worked.
    pub fn login_bearer(&self, name: &str, password: &str) -> String {
        let r = self.try_login_bearer(name, password);
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        r.json()["token"].as_str().expect("token").to_owned()
    }

    /// Log in as a browser does; returns the `__Host-ttyward=...` cookie
    /// pair. Panics unless it worked.
    pub fn login_cookie(&self, name: &str, password: &str) -> String {
        let r = self.json(
            "POST",
            "/api/v1/login",
            None,
            &serde_json::json!({"name": name, "password": password}),
        );
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        let set_cookie = r.header("set-cookie").expect("Set-Cookie");
        set_cookie
            .split(';')
            .next()
            .expect("name=value")
            .trim()
            .to_owned()
    }

    /// `POST /api/v1/login` asking for a bearer token.
    pub fn try_login_bearer(&self, name: &str, password: &str) -> Response {
        self.json(
            "POST",
            "/api/v1/login",
            None,
            &serde_json::json!({"name": name, "password": password, "bearer": true}),
        )
    }
}

/// Accepts whatever certificate the server presents (the caller wants to
/// know which one it is, not to trust it), but still checks the
/// handshake's signature with it: a server that presents a certificate
/// without holding its key does not get through.
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::WebPkiSupportedAlgorithms);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The leaf certificate the server at `addr` presents in a fresh TLS
/// handshake, whichever it is (regenerated, imported): nothing is trusted,
/// only the handshake's signature is checked against it.
pub fn served_certificate(addr: SocketAddr) -> std::io::Result<CertificateDer<'static>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = Client {
        addr,
        config: Arc::new(config),
        source: None,
    };
    let tls = client.connect()?;
    tls.conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.clone().into_owned())
        .ok_or_else(|| std::io::Error::other("the server presented no certificate"))
}

/// The SHA-256 fingerprint of a DER certificate as the console and
/// `openssl x509 -fingerprint -sha256` show it: upper-case hex bytes
/// joined by colons.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite");
    suite
        .common
        .hash_provider
        .hash(der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One kept-alive HTTP/1.1 connection: requests go one after another on
/// the same TLS stream, without `Connection: close`. One at a time (no
/// pipelining), so nothing is ever read past an answer.
pub struct KeepAlive {
    tls: Tls,
    host: String,
}

impl KeepAlive {
    /// Send one request on this connection and read the answer; `headers`
    /// come after `Host` and (with a body) `Content-Length`.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        exchange(
            &mut self.tls,
            &self.host,
            false,
            method,
            path,
            headers,
            body,
        )
    }

    /// GET `path` on this connection, with a bearer token if given.
    pub fn get(&mut self, path: &str, token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        self.request("GET", path, &headers, b"")
            .unwrap_or_else(|e| panic!("GET {path} on the kept-alive connection: {e}"))
    }
}

/// Write one request on `tls` and read its answer. `headers` come after
/// `Host`, `Connection: close` (if `close`) and (with a body)
/// `Content-Length`.
fn exchange(
    tls: &mut Tls,
    host: &str,
    close: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if !chunked && (!body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes())?;
    // A server may answer (413, 415...) and close before reading a
    // large body: a failed write is not the end, the answer may be
    // waiting.
    let sent = tls.write_all(body).and_then(|()| tls.flush());
    match read_response(&mut ReadOnly(tls), method == "HEAD") {
        Ok(r) => Ok(r),
        Err(e) => Err(sent.err().unwrap_or(e)),
    }
}

/// Reads a TLS stream without first flushing what is still to be sent
/// (`StreamOwned::read` does, and fails with EPIPE once the server has
/// closed on a body it did not want to read, losing its answer).
struct ReadOnly<'a>(&'a mut Tls);

impl Read for ReadOnly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Tls { conn, sock } = &mut *self.0;
        // Each round reads from the socket (or sees its end), so this ends.
        loop {
            match conn.reader().read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            conn.read_tls(sock)?;
            conn.process_new_packets().map_err(std::io::Error::other)?;
        }
    }
}

/// Read one response (skipping 1xx interim answers) from `r`, with the
/// module's deadline.
fn read_response(r: &mut impl Read, head_only: bool) -> std::io::Result<Response> {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut chunk = [0u8; 16 * 1024];
    let mut fill = |buf: &mut Vec<u8>, eof: &mut bool| -> std::io::Result<()> {
        if *eof {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before the answer was complete: {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(500)])
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        if buf.len() > MAX_RESPONSE {
            return Err(std::io::Error::other("answer too large"));
        }
        match r.read(&mut chunk) {
            Ok(0) => *eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A peer that closes without close_notify: the end all the same.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => *eof = true,
            Err(e) => return Err(e),
        }
        Ok(())
    };
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            fill(&mut buf, &mut eof)?;
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        buf.drain(..end + 4);
        if (100..200).contains(&status) {
            continue;
        }
        let value = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let no_body = head_only || status == 204 || status == 304;
        let body = if no_body {
            Vec::new()
        } else if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                match dechunk(&buf)? {
                    Some(body) => break body,
                    None => fill(&mut buf, &mut eof)?,
                }
            }
        } else if let Some(len) = value("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad Content-Length {len:?}")))?;
            while buf.len() < len {
                fill(&mut buf, &mut eof)?;
            }
            buf[..len].to_vec()
        } else {
            while !eof {
                fill(&mut buf, &mut eof)?;
            }
            std::mem::take(&mut buf)
        };
        return Ok(Response {
            status,
            headers,
            body,
            head,
        });
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Undo chunked transfer coding; `None` while incomplete.
fn dechunk(buf: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[at..at + eol]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| std::io::Error::other(format!("bad chunk size {size_text:?}")))?;
        at += eol + 2;
        if size == 0 {
            // Trailers (usually none), then an empty line.
            loop {
                let Some(eol) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(out));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(std::io::Error::other("chunk without CRLF"));
        }
        at += size + 2;
    }
}

#[test]
fn dechunk_reassembles_and_waits_for_the_end() {
    let wire = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
    assert_eq!(
        dechunk(wire).expect("valid").as_deref(),
        Some(&b"Wikipedia in \r\n\r\nchunks."[..])
    );
    for cut in 0..wire.len() {
        assert_eq!(
            dechunk(&wire[..cut]).expect("valid prefix"),
            None,
            "prefix {cut}"
        );
    }
}
