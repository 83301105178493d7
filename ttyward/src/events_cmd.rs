//! `ttyward events`: read the event log on the host, filtered, as text,
//! CSV or JSON; `--follow` keeps printing new events as they are stored
//! (by any process: the daemon or another command).

use std::time::Duration;

use ttyward_core::event_log::{
    Category, Event, EventId, EventQuery, ExportFormat, Order, Severity,
};
use ttyward_core::service::{Caller, Service};

use crate::serve::Failure;

/// How often `--follow` looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep printing new events until interrupted.
    #[arg(long, short)]
    follow: bool,
    /// Only this category (system, network, security, maintenance, serial); repeatable.
    #[arg(long)]
    category: Vec<String>,
    /// Only this severity (error, warning, notice, informational); repeatable.
    #[arg(long)]
    severity: Vec<String>,
    /// Only this event (e.g. login-failed); repeatable.
    #[arg(long)]
    event: Vec<String>,
    /// Events at or after this time (RFC 3339, e.g. 2026-11-25T13:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Events before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Text in the message, user or source.
    #[arg(long)]
    text: Option<String>,
    /// Only events of this account.
    #[arg(long)]
    user: Option<String>,
    /// The newest N events (text output; csv and json export everything
    /// that matches).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// text, csv or json.
    #[arg(long, default_value = "text")]
    format: String,
}

fn parse_list<T>(
    given: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, Failure> {
    given
        .iter()
        .map(|s| parse(s).ok_or_else(|| Failure::Config(format!("unknown {what} '{s}'"))))
        .collect()
}

fn query(args: &Args) -> Result<EventQuery, Failure> {
    let time = |t: &Option<String>| -> Result<Option<i64>, Failure> {
        t.as_deref()
            .map(|t| {
                ttyward_core::event_log::export::parse_time(t)
                    .map_err(|e| Failure::Config(e.to_string()))
            })
            .transpose()
    };
    Ok(EventQuery {
        from_ms: time(&args.since)?,
        to_ms: time(&args.until)?,
        categories: parse_list(&args.category, "category", |s| {
            Category::ALL
                .into_iter()
                .find(|c| c.as_str().eq_ignore_ascii_case(s))
        })?,
        severities: parse_list(&args.severity, "severity", |s| {
            Severity::ALL
                .into_iter()
                .find(|v| v.as_str().eq_ignore_ascii_case(s))
        })?,
        events: parse_list(&args.event, "event", EventId::from_name)?,
        text: args.text.clone(),
        user: args.user.clone(),
        limit: args.limit,
        ..EventQuery::default()
    })
}

fn print_text(e: &Event) {
    println!(
        "{} {:<11} {:<13} {:<24} user={} source={} {}",
        ttyward_core::event_log::export::format_time(e.time_ms),
        e.category.as_str(),
        e.severity.as_str(),
        e.event.name(),
        e.user.as_deref().unwrap_or("-"),
        e.source.as_deref().unwrap_or("-"),
        e.message
    );
}

pub async fn run(service: &Service, args: Args) -> Result<(), Failure> {
    let me = Caller::local();
    let q = query(&args)?;
    let err = |e: ttyward_core::service::ServiceError| Failure::Config(e.to_string());
    if args.format != "text" {
        let format: ExportFormat = args
            .format
            .parse()
            .map_err(|e: ttyward_core::event_log::EventLogError| Failure::Config(e.to_string()))?;
        if args.follow {
            return Err(Failure::Config(
                "--follow prints text; leave out --format".into(),
            ));
        }
        let q = EventQuery {
            order: Order::OldestFirst,
            ..q
        };
        service
            .export_events_blocking(&me, q, format, std::io::stdout().lock())
            .map_err(err)?;
        return Ok(());
    }
    // The newest `limit`, printed oldest first like a log file.
    let page = service.query_events(&me, q.clone()).await.map_err(err)?;
    let mut last = page.events.first().map_or(0, |e| e.seq);
    for e in page.events.iter().rev() {
        print_text(e);
    }
    if !args.follow {
        return Ok(());
    }
    if page.events.is_empty() {
        // Nothing matched yet: start after whatever the log holds now.
        let newest = EventQuery {
            limit: 1,
            ..EventQuery::default()
        };
        last = service
            .query_events(&me, newest)
            .await
            .map_err(err)?
            .events
            .first()
            .map_or(0, |e| e.seq);
    }
    let signal = crate::serve::shutdown_signal().map_err(|e| Failure::Runtime(e.into()))?;
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(FOLLOW_POLL);
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tick.tick() => {}
        }
        let next = EventQuery {
            after_seq: Some(last),
            order: Order::OldestFirst,
            limit: ttyward_core::event_log::store::MAX_LIMIT,
            ..q.clone()
        };
        for e in service.query_events(&me, next).await.map_err(err)?.events {
            last = last.max(e.seq);
            print_text(&e);
        }
    }
}
