//! The ttyward management plane: the HTTPS listener, the REST API under
//! `/api/v1` described by OpenAPI 3, and (coming) the web console.
//!
//! * [`tls`]: rustls configuration (TLS 1.2/1.3, Mozilla intermediate
//!   suites) and the hot-swappable certificate;
//! * [`cert`]: the device certificate (self-signed or imported);
//! * [`ca`]: the trusted CA certificates an Administrator uploads;
//! * [`server`]: the accept loop — every connection passes the engine's
//!   Gate, then a TLS handshake with a deadline, then HTTP/1.1 or HTTP/2
//!   with header-read timeouts;
//! * [`api`]: the REST API, one thin handler per service operation; every
//!   request authenticates (session cookie or bearer token) and the
//!   service checks the caller's permissions;
//! * [`console`]: the web console's pages (askama templates, one
//!   stylesheet, one script, no inline script);
//! * [`headers`]: security headers on every response.
//!
//! Nothing here decides who may do what: that is `ttyward_core::service`.
//! This crate translates HTTP to service calls and back.

pub mod api;
pub mod ca;
pub mod cert;
pub mod console;
pub mod data_tls;
pub mod headers;
pub mod server;
pub mod tls;

pub use server::{WebError, WebServer};
