//! The REST API under `/api/v1` (issue 4): JSON in and out, described by
//! the OpenAPI document at `/api/v1/openapi.json`, which utoipa generates
//! from the handlers themselves so it cannot drift from them.
//!
//! Authentication: `POST /api/v1/login` returns a session either as an
//! HttpOnly `__Host-` cookie (browsers) or, when asked with `"bearer":
//! true`, as a token for `Authorization: Bearer` (scripts). Cookie-
//! authenticated requests that change state must carry an `Origin` equal to
//! the server's own (CSRF; the cookie is also `SameSite=Strict`).
//!
//! Errors are `{"error": {"code", "message"[, "fields"]}}` with a stable
//! code; they never carry stack traces, paths or versions.

mod accounts;
mod auth;
mod certificate;
mod config;
mod document;
pub(crate) mod error;
mod events;
pub(crate) mod maintenance;
mod ports;
mod ssh_keys;
mod system;
mod tokens;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::routing::get;
use serde::de::DeserializeOwned;
use ttyward_core::service::{Caller, Interface, Service, Source};
use ttyward_core::session::SessionToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

/// The session cookie. `__Host-`: the browser only accepts it over HTTPS,
/// for this exact host, with `Path=/` — no subdomain can plant or read it.
pub const SESSION_COOKIE: &str = "__Host-ttyward";

/// The `Set-Cookie` value that ends the session cookie (logout, reset).
pub const CLEAR_SESSION_COOKIE: &str =
    "__Host-ttyward=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";

/// Largest request body accepted (a configuration of 256 ports is well
/// below this).
pub const MAX_BODY: usize = 1024 * 1024;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The service layer: every operation goes through it.
    pub service: Service,
    /// When the daemon started (uptime).
    pub started: Instant,
    /// The device certificate (Security > Certificate swaps it live).
    pub tls: Arc<crate::tls::DeviceTls>,
    /// The trusted CA certificates (Security > Certificate).
    pub authorities: Arc<crate::ca::CaStore>,
    /// The ports the engine runs now (the daemon publishes after every
    /// change).
    pub ports: PortsView,
}

/// The running ports, as the daemon last published them.
pub type PortsView = tokio::sync::watch::Receiver<Arc<Vec<ttyward_engine::PortHandle>>>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ttyward REST API",
        // The API's version, not the software's: the document is public
        // and must not help fingerprint a build.
        version = "1",
        description = "Manage a ttyward serial device server: accounts, sessions, configuration, event log."
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    tags(
        (name = "session", description = "Log in and out, first use"),
        (name = "accounts", description = "Account Management: accounts, groups, sessions, lockouts, SSH keys"),
        (name = "security", description = "Security: the device certificate and the trusted CA certificates"),
        (name = "config", description = "The configuration: ports, services, security settings, event log settings"),
        (name = "events", description = "Diagnostics > System Log"),
        (name = "system", description = "System information"),
        (name = "ports", description = "Serial ports: live state and counters"),
        (name = "maintenance", description = "Maintenance: factory reset"),
    )
)]
struct ApiDoc;

/// The API routes and their OpenAPI document.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::welcome, auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::setup))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(system::system))
        .routes(routes!(ports::list_ports))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(accounts::update_account, accounts::delete_account))
        .routes(routes!(accounts::list_groups))
        .routes(routes!(accounts::put_group, accounts::delete_group))
        .routes(routes!(accounts::list_sessions))
        .routes(routes!(accounts::end_session))
        .routes(routes!(accounts::unlock))
        .routes(routes!(ssh_keys::list_ssh_keys, ssh_keys::add_ssh_key))
        .routes(routes!(ssh_keys::remove_ssh_key))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(certificate::get_certificate))
        .routes(routes!(certificate::export_certificate))
        .routes(routes!(certificate::regenerate_certificate))
        .routes(routes!(certificate::import_certificate))
        .routes(routes!(
            certificate::list_authorities,
            certificate::add_authority
        ))
        .routes(routes!(certificate::remove_authority))
        .routes(routes!(config::get_config, config::patch_config))
        .routes(routes!(config::export_config))
        .routes(routes!(config::import_config))
        .routes(routes!(events::query_events))
        .routes(routes!(events::export_events))
        .routes(routes!(maintenance::factory_reset))
        .split_for_parts()
}

/// The whole application: `/api/v1/...` with its OpenAPI document, body
/// limit and security headers.
pub fn app(state: AppState) -> Router {
    let (api, mut doc) = routes();
    document::complete_errors(&mut doc);
    doc.paths.paths = doc
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| (format!("/api/v1{path}"), item))
        .collect();
    // Rendered once: the document cannot change while the process runs.
    let doc: Arc<str> = doc.to_json().unwrap_or_default().into();
    let api = api.route(
        "/openapi.json",
        get(move || {
            let doc = Arc::clone(&doc);
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    doc.to_string(),
                )
            }
        }),
    );
    let api = api.method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::console::routes())
        .fallback(|| async { ApiError::not_found("no such page or API route") })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(crate::headers::security_headers))
}

/// The peer's address (set by the server for every request).
fn peer(parts: &Parts) -> Result<IpAddr, ApiError> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
        .ok_or_else(|| ApiError::internal("request without peer address"))
}

/// The authenticated caller of a request.
#[derive(Debug)]
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = peer(parts)?;
        let (token, interface) = if let Some(token) = bearer(parts) {
            (token, Interface::Api)
        } else if let Some(token) = cookie(parts, SESSION_COOKIE) {
            if !is_safe(&parts.method) {
                check_origin(parts)?;
            }
            (token, Interface::Web)
        } else {
            return Err(ApiError::unauthenticated());
        };
        let caller = state
            .service
            .authenticate(&SessionToken::presented(&token), Source::Net(ip), interface)
            .await?;
        Ok(Auth(caller))
    }
}

/// The source address of an unauthenticated request (login, setup).
#[derive(Debug)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Peer(peer(parts)?))
    }
}

/// Cross-site request forgery check for unauthenticated POSTs made by a
/// browser (login, setup): when an `Origin` is sent it must be ours.
#[derive(Debug)]
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::ORIGIN) {
            check_origin(parts)?;
        }
        Ok(SameOrigin)
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the request's `Origin` is this server: `https://` + the address
/// the browser used (the Host header, or the request's authority on
/// HTTP/2).
pub(crate) fn own_origin(parts: &Parts) -> bool {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(&format!("https://{h}")))
}

fn check_origin(parts: &Parts) -> Result<(), ApiError> {
    if own_origin(parts) {
        Ok(())
    } else {
        Err(ApiError::csrf())
    }
}

/// A path parameter whose rejection (`/sessions/not-a-number`) is an API
/// error in our format.
#[derive(Debug)]
pub struct PathArg<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathArg<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PathArg(v))
            .map_err(|r| ApiError::bad_request(r.body_text()))
    }
}

/// Query parameters whose rejection (`?limit=lots`) is an API error in our
/// format.
#[derive(Debug)]
pub struct QueryArg<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArg<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| QueryArg(v))
            .map_err(|r| ApiError::bad_request(r.body_text()))
    }
}

/// A JSON request body whose rejections (malformed JSON, wrong content
/// type, too large) become API errors in our format.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(ApiError::from(rejection)),
        };
        // serde would fill a struct from an array, field by field in
        // order; every body of this API is an object.
        if !value.is_object() {
            return Err(ApiError::from(
                ttyward_core::service::ServiceError::Invalid(
                    "the body must be a JSON object".into(),
                ),
            ));
        }
        serde_json::from_value(value).map(Body).map_err(|e| {
            ApiError::from(ttyward_core::service::ServiceError::Invalid(format!(
                "the JSON does not have the expected fields: {}",
                e.to_string().chars().take(200).collect::<String>()
            )))
        })
    }
}
