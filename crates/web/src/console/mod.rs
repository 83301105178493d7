//! The web console (issue 4, seed §3 page names): server-rendered pages
//! (askama), one small stylesheet and one small script served from the
//! device itself, no inline script (the CSP forbids it), usable on a
//! phone and a desktop.
//!
//! Pages authenticate with the same `__Host-ttyward` session cookie as the
//! REST API. Every form carries a CSRF token derived from the session
//! token (SHA-256 of a label and the token: unguessable without the
//! HttpOnly cookie) and every POST must come with our own `Origin`; the
//! cookie is also `SameSite=Strict`. Pages a group may not view are left
//! out of its navigation and answer 403 when asked for directly.
//!
//! The pages call the same `Service` operations as the API; nothing is
//! decided here.

mod nav;
mod pages;

use std::net::IpAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use ttyward_core::permission::Permission;
use ttyward_core::service::{Caller, Interface, ServiceError, Source};
use ttyward_core::session::SessionToken;

use crate::api::{AppState, SESSION_COOKIE};
pub use nav::Nav;

/// The console's routes (merged with the API's by [`crate::api::app`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .merge(pages::routes())
}

async fn css() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    )
}

async fn js() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    )
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}

/// The CSRF token of the session holding `token`.
fn csrf_for(token: &str) -> String {
    let digest = Sha256::digest(format!("ttyward console csrf\0{token}").as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

fn session_cookie(parts: &Parts) -> Option<String> {
    crate::api::cookie(parts, SESSION_COOKIE)
}

/// Whether a POST came from our own pages (Origin equals our address).
fn same_origin(parts: &Parts) -> bool {
    crate::api::own_origin(parts)
}

/// A POST from our own pages (for the forms used before a session exists:
/// login and first-use setup). HTTP/2 carries the address in the request's
/// authority rather than a Host header.
#[derive(Debug)]
pub struct OwnOrigin;

impl<S: Send + Sync> FromRequestParts<S> for OwnOrigin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, PageError> {
        if same_origin(parts) {
            Ok(OwnOrigin)
        } else {
            Err(PageError::Csrf)
        }
    }
}

/// A logged-in page visitor: the caller, the CSRF token for its forms and
/// the navigation its group may see.
#[derive(Debug)]
pub struct Visitor {
    /// Who.
    pub caller: Caller,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The menu for this caller.
    pub nav: Nav,
    /// The device's identity and display time zone, for the page chrome.
    pub system: ttyward_core::system::SystemSettings,
}

impl Visitor {
    /// Fail with the 403 page unless the caller may do `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        self.caller.require(permission).map_err(PageError::from)
    }

    /// Check a submitted form's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        // Both are hex of fixed length; the comparison time reveals
        // nothing useful, but keep it constant anyway.
        let a = self.csrf.as_bytes();
        let b = submitted.as_bytes();
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same { Ok(()) } else { Err(PageError::Csrf) }
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let ip = peer_ip(parts).ok_or(PageError::Internal)?;
        let Some(token) = session_cookie(parts) else {
            return Err(PageError::Login);
        };
        if parts.method == axum::http::Method::POST && !same_origin(parts) {
            return Err(PageError::Csrf);
        }
        let caller = state
            .service
            .authenticate(
                &SessionToken::presented(&token),
                Source::Net(ip),
                Interface::Web,
            )
            .await
            .map_err(|e| match e {
                ServiceError::Unauthenticated => PageError::Login,
                other => PageError::from(other),
            })?;
        let nav = Nav::for_caller(&caller);
        Ok(Visitor {
            csrf: csrf_for(&token),
            caller,
            nav,
            system: state.service.config().system.clone(),
        })
    }
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in: go to the login page.
    Login,
    /// The caller's group lacks this page's permission.
    Forbidden(String),
    /// The password has expired: only the password page works.
    PasswordExpired,
    /// A form without our CSRF token or Origin.
    Csrf,
    /// Something named does not exist.
    NotFound(String),
    /// Anything else; logged, shown without details.
    Internal,
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> PageError {
        match e {
            ServiceError::Unauthenticated => PageError::Login,
            ServiceError::Forbidden { .. } => PageError::Forbidden(e.to_string()),
            ServiceError::PasswordExpired => PageError::PasswordExpired,
            ServiceError::NotFound { .. } => PageError::NotFound(e.to_string()),
            other => {
                tracing::error!("console: {other}");
                PageError::Internal
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::Login => return Redirect::to("/login").into_response(),
            PageError::PasswordExpired => return Redirect::to("/account/password").into_response(),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.as_str()),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "The form did not come from this device's own pages. Reload the page and try again.",
            ),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.as_str()),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The device could not complete the request; the event log may say more.",
            ),
        };
        let page = ErrorPage { title, message };
        (status, render(&page)).into_response()
    }
}

/// Render a template; a template error (a bug) becomes a plain 500.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("console template: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}
