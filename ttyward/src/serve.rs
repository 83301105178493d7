//! Running a configuration in the foreground until a signal: start the
//! engine, print the machine-readable ready line, wait for SIGINT/SIGTERM,
//! drain. Shared by `bridge` and `demo`.

use std::time::Duration;

use ttyward_core::config::Config;
use ttyward_engine::{Engine, EventSink};

/// How long stopping may take before tasks are abandoned.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

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
pub async fn run(config: &Config, announce: impl FnOnce(&Engine)) -> Result<(), Failure> {
    let engine =
        Engine::start(config, EventSink::new(256)).map_err(|e| Failure::Config(e.to_string()))?;
    let listeners: Vec<serde_json::Value> = engine
        .listeners()
        .iter()
        .map(|l| {
            serde_json::json!({"port": l.port, "mode": l.mode, "transport": l.transport, "addr": l.addr.to_string()})
        })
        .collect();
    // One line a script or test can wait for instead of parsing logs.
    println!(
        "{}",
        serde_json::json!({"event": "ready", "pid": std::process::id(), "listeners": listeners})
    );
    announce(&engine);
    wait_for_signal()
        .await
        .map_err(|e| Failure::Runtime(e.into()))?;
    tracing::info!("stopping");
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
    if !engine.shutdown(DRAIN_GRACE).await {
        tracing::warn!("some sessions did not finish within {DRAIN_GRACE:?}");
    }
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
