//! Diagnostics > System Log: reading and exporting the event log (seed
//! §3.6, security.md CR 2.8–2.10, 3.9).
//!
//! Reading needs `log.view`; Security events need `log.security` as well —
//! without it they are left out of every result, as if filtered. Nobody can
//! edit or delete single entries: there is no operation for it.

use std::io::Write;

use super::{Caller, Service, ServiceError};
use crate::event_log::{Category, EventPage, EventQuery, ExportFormat};
use crate::permission::Permission;

impl Service {
    /// One page of events matching `query`.
    pub async fn query_events(
        &self,
        caller: &Caller,
        query: EventQuery,
    ) -> Result<EventPage, ServiceError> {
        let query = self.visible(caller, query)?;
        self.inner
            .store
            .call(move |c| Ok(crate::event_log::query(c, &query)))
            .await?
            .map_err(from_log_error)
    }

    /// Write every event matching `query` to `out` (blocking; reads through
    /// a connection of its own so a long export holds up nothing else).
    pub fn export_events_blocking(
        &self,
        caller: &Caller,
        query: EventQuery,
        format: ExportFormat,
        out: impl Write,
    ) -> Result<u64, ServiceError> {
        let query = self.visible(caller, query)?;
        let conn = crate::store::open_connection(self.inner.store.path())?;
        crate::event_log::export(&conn, &query, format, out).map_err(from_log_error)
    }

    /// The query, narrowed to what the caller may read. Its text filters
    /// are checked here too, so a bad one is the caller's error, not a
    /// store failure.
    fn visible(&self, caller: &Caller, mut query: EventQuery) -> Result<EventQuery, ServiceError> {
        caller.require(Permission::LogView)?;
        if !caller.may(Permission::LogSecurity) {
            if query.categories.is_empty() {
                query.categories = Category::ALL.to_vec();
            }
            query.categories.retain(|c| *c != Category::Security);
            if query.categories.is_empty() {
                // Only Security events were asked for (an empty list would
                // mean "any").
                return Err(ServiceError::Forbidden {
                    permission: Permission::LogSecurity,
                });
            }
        }
        Ok(query)
    }
}

/// A query the caller got wrong is `Invalid`; anything else is the store's.
fn from_log_error(e: crate::event_log::EventLogError) -> ServiceError {
    use crate::event_log::EventLogError as E;
    match e {
        E::TextTooLong { .. } | E::BadTime { .. } | E::UnknownFormat { .. } => {
            ServiceError::Invalid(e.to_string())
        }
        other => ServiceError::Store(crate::store::StoreError::Corrupt {
            what: "event log",
            detail: other.to_string(),
        }),
    }
}
