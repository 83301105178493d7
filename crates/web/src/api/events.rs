//! Diagnostics > System Log: query with filters and paging, export as CSV
//! or JSON. Security events are left out for callers without
//! `log.security` (the service narrows every query).

use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use ttyward_core::event_log::export::parse_time;
use ttyward_core::event_log::store::MAX_LIMIT;
use ttyward_core::event_log::{Category, EventId, EventQuery, ExportFormat, Order, Severity};
use ttyward_core::service::ServiceError;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Auth, QueryArg};
use crate::api::error::ErrorBody;

/// Filters, all optional; lists are comma-separated.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Oldest time, RFC 3339 (e.g. `2026-05-01T12:00:00Z`).
    pub from: Option<String>,
    /// Newest time, RFC 3339.
    pub to: Option<String>,
    /// Categories: system, network, security, maintenance, serial.
    pub category: Option<String>,
    /// Severities: error, warning, notice, informational.
    pub severity: Option<String>,
    /// Event names from the catalog, e.g. `login-failed`.
    pub event: Option<String>,
    /// Text the message contains (case-insensitive).
    pub text: Option<String>,
    /// The user recorded with the event.
    pub user: Option<String>,
    /// `newest` (default) or `oldest` first.
    pub order: Option<String>,
    /// Events per page (1–1000, default 100).
    pub limit: Option<u32>,
    /// Events to skip (paging).
    pub offset: Option<u64>,
    /// Only events after this sequence number (following the log).
    pub after: Option<i64>,
}

fn list<T: FromStr>(given: Option<&str>, what: &str) -> Result<Vec<T>, ApiError> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    given
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::from(ServiceError::Invalid(format!(
                    "unknown {what} '{}'",
                    s.chars().take(64).collect::<String>()
                )))
            })
        })
        .collect()
}

fn time(given: Option<&str>) -> Result<Option<i64>, ApiError> {
    given
        .map(|t| parse_time(t).map_err(|e| ApiError::from(ServiceError::Invalid(e.to_string()))))
        .transpose()
}

impl EventFilter {
    fn query(&self) -> Result<EventQuery, ApiError> {
        let order = match self.order.as_deref() {
            None | Some("newest") => Order::NewestFirst,
            Some("oldest") => Order::OldestFirst,
            Some(_) => {
                return Err(ServiceError::Invalid("order is 'newest' or 'oldest'".into()).into());
            }
        };
        let limit = self.limit.unwrap_or(EventQuery::default().limit);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::Invalid(format!("limit is 1–{MAX_LIMIT}")).into());
        }
        Ok(EventQuery {
            from_ms: time(self.from.as_deref())?,
            to_ms: time(self.to.as_deref())?,
            categories: list::<Category>(self.category.as_deref(), "category")?,
            severities: list::<Severity>(self.severity.as_deref(), "severity")?,
            events: list::<EventId>(self.event.as_deref(), "event")?,
            text: self.text.clone(),
            user: self.user.clone(),
            after_seq: self.after,
            before_seq: None,
            order,
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// One page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// The events: seq, time (RFC 3339 UTC), category, severity, event,
    /// user, source, message.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<ttyward_core::event_log::Event>,
    /// How many match the filters in total.
    pub total: u64,
}

/// Query the event log (needs `log.view`; Security events need
/// `log.security` too and are otherwise left out).
#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter),
    responses(
        (status = 200, body = EventsPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "A filter is invalid"),
    ))]
pub async fn query_events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    QueryArg(filter): QueryArg<EventFilter>,
) -> Result<Json<EventsPage>, ApiError> {
    let page = state.service.query_events(&caller, filter.query()?).await?;
    Ok(Json(EventsPage {
        events: page.events,
        total: page.total,
    }))
}

/// Export format (the filters are those of `GET /events`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportOptions {
    /// `csv` or `json`.
    pub format: String,
}

/// Every event matching the filters, as a CSV or JSON download (needs
/// `log.view`).
#[utoipa::path(get, path = "/events/export", tag = "events", params(ExportOptions, EventFilter),
    responses(
        (status = 200, description = "The events", content(
            (String = "text/csv"),
            (String = "application/json"),
        )),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn export_events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    QueryArg(options): QueryArg<ExportOptions>,
    QueryArg(filter): QueryArg<EventFilter>,
) -> Result<Response, ApiError> {
    let format: ExportFormat =
        options
            .format
            .parse()
            .map_err(|e: ttyward_core::event_log::EventLogError| {
                ApiError::from(ServiceError::Invalid(e.to_string()))
            })?;
    let query = EventQuery {
        offset: 0,
        ..filter.query()?
    };
    let service = state.service.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        service
            .export_events_blocking(&caller, query, format, &mut out)
            .map(|_| out)
    })
    .await
    .map_err(ApiError::internal)??;
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = match format {
        ExportFormat::Csv => "attachment; filename=\"ttyward-events.csv\"",
        ExportFormat::Json => "attachment; filename=\"ttyward-events.json\"",
    };
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(disposition),
    );
    Ok(response)
}
