//! Running a configuration in the foreground until a signal: start the
//! engine, print the machine-readable ready line, wait for SIGINT/SIGTERM,
//! drain. Shared by `bridge`, `demo` and `run`.

use std::io::Write;
use std::time::Duration;

use ttyward_core::config::Config;
use ttyward_engine::{Engine, EventSink};

/// How long stopping may take before tasks are abandoned.
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// Why a subcommand failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or configuration (exit code 64).
    Config(String),
    /// Anything else (exit code 1).
    Runtime(anyhow::Error),
}

impl From<ttyward_core::config::ConfigError> for Failure {
    fn from(e: ttyward_core::config::ConfigError) -> Self {
        Failure::Config(e.to_string())
    }
}

/// Start `config`; `announce` runs once everything listens.
pub async fn run(
    config: &Config,
    tls: Option<std::sync::Arc<dyn ttyward_engine::tls::TlsSource>>,
    on_ready: impl FnOnce(&Engine),
) -> Result<(), Failure> {
    survive_file_size_limit();
    let engine = Engine::start_with_tls(config, EventSink::new(256), tls)
        .map_err(|e| Failure::Config(e.to_string()))?;
    let stop = shutdown_signal().map_err(|e| Failure::Runtime(e.into()))?;
    announce(&engine, "ready", serde_json::json!({}));
    on_ready(&engine);
    tokio::pin!(stop);
    tokio::select! {
        () = release_startup_pages(&engine) => stop.await,
        () = &mut stop => {}
    }
    tracing::info!("stopping");
    log_counters(&engine);
    if !engine.shutdown(DRAIN_GRACE).await {
        tracing::warn!("some sessions did not finish within {DRAIN_GRACE:?}");
    }
    Ok(())
}

/// A file-size limit (RLIMIT_FSIZE) must make a write fail with EFBIG,
/// which the event log counts and a log line is dropped for, instead of
/// killing the process and every serial port with it. A registered handler
/// replaces SIGXFSZ's default action for the life of the process (tokio
/// never restores it), so the stream itself need not be kept.
pub fn survive_file_size_limit() {
    let xfsz = tokio::signal::unix::SignalKind::from_raw(nix::sys::signal::Signal::SIGXFSZ as i32);
    if let Err(e) = tokio::signal::unix::signal(xfsz) {
        tracing::warn!(
            "SIGXFSZ keeps its default action (a file-size limit would stop ttyward): {e}"
        );
    }
}

/// How long ports may take to open their devices before start-up pages
/// are released anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Once everything listens and every port has opened its device (or found
/// it missing): unmap the executable's pages that only start-up used (see
/// `ttyward_serial::resident`). Best effort; a failure costs memory,
/// nothing else.
pub async fn release_startup_pages(engine: &Engine) {
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    for port in engine.ports() {
        let mut state = port.watch_state();
        let opened = state.wait_for(|s| !matches!(s, ttyward_engine::PortState::Starting));
        if tokio::time::timeout_at(deadline, opened).await.is_err() {
            break;
        }
    }
    match ttyward_serial::resident::release_executable_pages() {
        Ok(kb) => tracing::debug!("released {kb} KiB of start-up pages"),
        Err(e) => tracing::debug!("start-up pages kept: {e}"),
    }
}

/// Print one JSON line with the bound addresses (and `extra`'s fields):
/// `"event": "ready"` once everything listens, `"event": "applied"` after
/// each live configuration change, so a script or test can wait for them
/// instead of parsing logs.
pub fn announce(engine: &Engine, event: &str, extra: serde_json::Value) {
    let listeners: Vec<serde_json::Value> = engine
        .listeners()
        .iter()
        .map(|l| {
            serde_json::json!({"port": l.port, "mode": l.mode, "transport": l.transport, "channel": l.channel, "addr": l.addr.to_string()})
        })
        .collect();
    let mut line =
        serde_json::json!({"event": event, "pid": std::process::id(), "listeners": listeners});
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    // Not println!: stdout may be a file on a full disk or a closed pipe,
    // and a line that cannot be written must not panic a running daemon.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// One log line per port with its counters (at stop).
pub fn log_counters(engine: &Engine) {
    for port in engine.ports() {
        let c = port.counters().snapshot();
        tracing::info!(
            port = port.number(),
            "{}: {} bytes from the device ({} with nobody connected), {} to it; {} connections, {} refused, {} dropped as jammed; device lost {} times",
            port.device(),
            c.device_rx_bytes,
            c.device_rx_discarded,
            c.device_tx_bytes,
            c.connections_total,
            c.connections_refused,
            c.sessions_jammed,
            c.device_lost
        );
    }
}

/// Catch SIGTERM and SIGINT from now on; the returned future completes at
/// the first of them. Call it before announcing readiness: a signal sent
/// right after the ready line must drain, not kill.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
