//! API errors: an HTTP status, a stable machine code and one human
//! sentence; validation errors add every bad field with its path. Internal
//! failures are logged here and answered with a generic message — no
//! stack traces, file paths or versions reach the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ttyward_core::service::ServiceError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `unauthenticated`, `forbidden`, `invalid-config`.
    pub code: &'static str,
    /// One sentence for a person: what was wrong and what to do.
    pub message: String,
    /// For validation errors: every bad field (`path`, `message`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// One bad field of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Where, e.g. `ports[0].serial.baud`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                fields: Vec::new(),
            },
        }
    }

    /// 401: no session.
    pub fn unauthenticated() -> ApiError {
        ApiError::from(ServiceError::Unauthenticated)
    }

    /// 403: a cookie-authenticated change without our Origin.
    pub fn csrf() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin",
            "request refused: it did not come from this device's own pages (Origin check)",
        )
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 400: a request that cannot be understood.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", cut(&message.into()))
    }

    /// 405: the route exists, not with this method.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "this API route does not take that method; the OpenAPI document lists the methods",
        )
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            message,
        )
    }

    /// 500: logged, answered without details.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!("API internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the device could not complete the request; the event log or the daemon's log may say more",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            ServiceError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ServiceError::PasswordExpired => (StatusCode::FORBIDDEN, "password-expired"),
            ServiceError::LoginFailed { .. } => (StatusCode::UNAUTHORIZED, "login-failed"),
            ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ServiceError::SessionLimit(_) => (StatusCode::TOO_MANY_REQUESTS, "session-limit"),
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found"),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ServiceError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ServiceError::Password(_) => (StatusCode::UNPROCESSABLE_ENTITY, "password-rejected"),
            ServiceError::Config(c) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-config",
                    format!(
                        "{} field(s) are invalid; nothing was changed",
                        c.errors.len()
                    ),
                );
                err.detail.fields = c
                    .errors
                    .iter()
                    .map(|f| FieldProblem {
                        path: f.path.clone(),
                        message: f.message.clone(),
                    })
                    .collect();
                return err;
            }
            ServiceError::Store(_) => return ApiError::internal(message),
        };
        ApiError::new(status, code, message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let (status, code, message) = match &r {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json".to_owned(),
            ),
            JsonRejection::JsonSyntaxError(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                format!("the body is not valid JSON: {}", r.body_text()),
            ),
            JsonRejection::JsonDataError(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!(
                    "the JSON does not have the expected fields: {}",
                    r.body_text()
                ),
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the body is larger than {} bytes", super::MAX_BODY),
            ),
            _ => (r.status(), "bad-request", r.body_text()),
        };
        ApiError::new(status, code, cut(&message))
    }
}

/// Messages quoting client input stay short.
fn cut(s: &str) -> String {
    s.chars().take(300).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.detail })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
