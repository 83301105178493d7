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

/// Which events come first.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderParam {
    /// Newest first (the Log View).
    #[default]
    Newest,
    /// Oldest first (following the log with `after`).
    Oldest,
}

/// Filters, all optional; lists are comma-separated.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Oldest time, RFC 3339 (e.g. `2026-05-01T12:00:00Z`).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Newest time, RFC 3339.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Categories: system, network, security, maintenance, serial.
    #[param(
        pattern = r"^(system|network|security|maintenance|serial)(,(system|network|security|maintenance|serial))*$"
    )]
    pub category: Option<String>,
    /// Severities: error, warning, notice, informational.
    #[param(
        pattern = r"^(error|warning|notice|informational)(,(error|warning|notice|informational))*$"
    )]
    pub severity: Option<String>,
    /// Event names from the catalog, e.g. `login-failed` (a name the
    /// catalog does not have matches nothing).
    #[param(pattern = r"^[a-z0-9-]+(,[a-z0-9-]+)*$")]
    pub event: Option<String>,
    /// Text the message contains (case-insensitive).
    #[param(max_length = 256)]
    pub text: Option<String>,
    /// The user recorded with the event.
    #[param(max_length = 256)]
    pub user: Option<String>,
    /// `newest` (default) or `oldest` first.
    #[param(inline)]
    pub order: Option<OrderParam>,
    /// Events per page (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Events to skip (paging).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Only events after this sequence number (following the log).
    pub after: Option<i64>,
}

fn list<T: FromStr>(given: Option<&str>, what: &str) -> Result<Vec<T>, ApiError> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    if given.trim().is_empty() {
        return Err(
            ServiceError::Invalid(format!("{what} is empty; leave it out to match any")).into(),
        );
    }
    given
        .split(',')
        .map(str::trim)
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

/// Event names; `None` when names were given and none is in the catalog
/// (the filter then matches nothing).
fn event_names(given: Option<&str>) -> Result<Option<Vec<EventId>>, ApiError> {
    let Some(given) = given else {
        return Ok(Some(Vec::new()));
    };
    let mut known = Vec::new();
    for name in given.split(',') {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ServiceError::Invalid(
                "event is a comma-separated list of event names such as login-failed".into(),
            )
            .into());
        }
        known.extend(EventId::from_name(name));
    }
    Ok((!known.is_empty()).then_some(known))
}

impl EventFilter {
    /// The query, or `None` when it can match nothing.
    fn query(&self) -> Result<Option<EventQuery>, ApiError> {
        let order = match self.order.unwrap_or_default() {
            OrderParam::Newest => Order::NewestFirst,
            OrderParam::Oldest => Order::OldestFirst,
        };
        let limit = self.limit.unwrap_or(EventQuery::default().limit);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::Invalid(format!("limit is 1–{MAX_LIMIT}")).into());
        }
        for (name, value) in [("text", &self.text), ("user", &self.user)] {
            if value.as_deref().is_some_and(|v| v.chars().count() > 256) {
                return Err(
                    ServiceError::Invalid(format!("{name} is at most 256 characters")).into(),
                );
            }
        }
        let offset = u64::try_from(self.offset.unwrap_or(0))
            .map_err(|_| ApiError::from(ServiceError::Invalid("offset is 0 or more".into())))?;
        let query = EventQuery {
            from_ms: time(self.from.as_deref())?,
            to_ms: time(self.to.as_deref())?,
            categories: list::<Category>(self.category.as_deref(), "category")?,
            severities: list::<Severity>(self.severity.as_deref(), "severity")?,
            events: Vec::new(),
            text: self.text.clone(),
            user: self.user.clone(),
            after_seq: self.after,
            before_seq: None,
            order,
            limit,
            offset,
        };
        Ok(event_names(self.event.as_deref())?.map(|events| EventQuery { events, ..query }))
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
    let Some(query) = filter.query()? else {
        // Still checks that the caller may read the log at all.
        caller.require(ttyward_core::permission::Permission::LogView)?;
        return Ok(Json(EventsPage {
            events: Vec::new(),
            total: 0,
        }));
    };
    let page = state.service.query_events(&caller, query).await?;
    Ok(Json(EventsPage {
        events: page.events,
        total: page.total,
    }))
}

/// Export formats.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatParam {
    /// RFC 4180 CSV with a header line.
    Csv,
    /// A JSON array of events.
    Json,
}

/// Export format (the filters are those of `GET /events`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportOptions {
    /// `csv` or `json`.
    #[param(inline)]
    pub format: FormatParam,
}

/// Every event matching the filters, as a CSV or JSON download (needs
/// `log.view`).
#[utoipa::path(get, path = "/events/export", tag = "events", params(ExportOptions, EventFilter),
    responses(
        (status = 200, description = "The events", content(
            (String = "text/csv"),
            (serde_json::Value = "application/json"),
        )),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
pub async fn export_events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    QueryArg(options): QueryArg<ExportOptions>,
    QueryArg(filter): QueryArg<EventFilter>,
) -> Result<Response, ApiError> {
    let format = match options.format {
        FormatParam::Csv => ExportFormat::Csv,
        FormatParam::Json => ExportFormat::Json,
    };
    let query = match filter.query()? {
        Some(q) => EventQuery { offset: 0, ..q },
        // Nothing can match (only unknown event names): a query past the
        // newest event exports an empty list the normal way.
        None => EventQuery {
            after_seq: Some(i64::MAX),
            ..EventQuery::default()
        },
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
