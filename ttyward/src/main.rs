//! `ttyward`: the secure serial device server.
//!
//! Subcommands: `run` (the daemon: state in a data directory, accounts,
//! the Gate, live configuration), `admin`, `config` and `events` (host-side
//! work on the data directory, safe while the daemon runs), `bridge`
//! (ad-hoc ports from the command line or a TOML file, no accounts, no data
//! directory) and `demo` (simulated devices on several ports). All run the
//! same engine; `attach` is the other end, a local virtual serial port
//! bridged to a remote one. Exit codes: 0 clean stop, 1 runtime failure, 64 bad
//! configuration or arguments.

mod admin;
mod attach;
mod bridge;
mod config_cmd;
mod daemon;
mod demo;
mod events_cmd;
mod serve;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ttyward_engine::counters::take_moved;
use ttyward_serial::busy_poll::{self, BusyPoll};

/// The daemon's data directory unless `--data-dir` / `TTYWARD_DATA_DIR`
/// says otherwise.
const DATA_DIR: &str = "/var/lib/ttyward";
/// The demo's: a directory under the current one, so the README's first
/// command works unprivileged.
const DEMO_DATA_DIR: &str = "ttyward-demo";

/// Exit code for a configuration that cannot be used (BSD EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "ttyward",
    version,
    about = "Secure serial device server (NPort operation modes)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Tokio worker threads; 1 runs everything on the main thread.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// Microseconds the runtime may busy-poll before it sleeps, while
    /// request/response traffic keeps waking it that soon (adaptive; never
    /// after bulk transfers). Cuts a round trip on virtual machines, where
    /// waking an idle CPU is slow. The default is the kernel's own guest
    /// halt-poll limit. 0 turns it off; only with --workers 1.
    #[arg(long, global = true, env = "TTYWARD_BUSY_POLL", default_value_t = 200, value_parser = clap::value_parser!(u16).range(0..=1000))]
    busy_poll: u16,
    /// Log filter (tracing syntax), e.g. "debug" or "ttyward_engine=debug".
    #[arg(long, global = true, env = "TTYWARD_LOG", default_value = "info")]
    log: String,
    /// Where the daemon keeps its state: default /var/lib/ttyward (run,
    /// admin, config, events), ./ttyward-demo for demo.
    #[arg(long, global = true, env = "TTYWARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the device server (the daemon) on the data directory.
    Run(daemon::Args),
    /// Accounts on this host: create the first Administrator, reset
    /// passwords, lift lockouts.
    #[command(subcommand)]
    Admin(admin::Command),
    /// Show, export or import the configuration (TOML).
    #[command(subcommand)]
    Config(config_cmd::Command),
    /// Read the event log.
    Events(events_cmd::Args),
    /// Serve serial devices ad hoc: DEVICE@HOST:PORT ...
    Bridge(Box<bridge::Args>),
    /// Run simulated devices on several ports, with commands to try them.
    Demo(demo::Args),
    /// A local virtual serial port (a pty linked at --link) bridged to a
    /// remote Real COM or RFC 2217 port: HOST[:PORT].
    Attach(Box<attach::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // A log line that cannot be written (stderr is a file on a full
        // disk, or past RLIMIT_FSIZE) is dropped. Reporting it would go to
        // stderr with eprintln!, whose failure panics the task that
        // logged: every new session, while serial forwarding must go on.
        .log_internal_errors(false)
        .init();
    let (runtime, busy_poll) = match build_runtime(&cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ttyward: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let demo_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEMO_DATA_DIR));
    let data_dir = cli.data_dir.unwrap_or_else(|| PathBuf::from(DATA_DIR));
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bridge(args) => bridge::run(*args).await,
            Command::Attach(args) => attach::run(*args).await,
            Command::Demo(args) => demo::run(open(&demo_dir)?, args).await,
            Command::Run(args) => daemon::run(open(&data_dir)?, args).await,
            Command::Admin(c) => {
                with_service(&data_dir, |s| async move { admin::run(&s, c).await }).await
            }
            Command::Config(c) => {
                with_service(&data_dir, |s| async move { config_cmd::run(&s, c).await }).await
            }
            Command::Events(a) => {
                with_service(&data_dir, |s| async move { events_cmd::run(&s, a).await }).await
            }
        }
    });
    if let Some(p) = busy_poll {
        let stats = p.stats();
        tracing::debug!(
            "busy polling: {} spins, {} caught",
            stats.spins.load(Relaxed),
            stats.caught.load(Relaxed)
        );
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(serve::Failure::Config(msg)) => {
            eprintln!("ttyward: {msg}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(serve::Failure::Runtime(e)) => {
            eprintln!("ttyward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime: the current thread with busy polling (see
/// `ttyward_serial::busy_poll`) for `--workers 1`, else a thread pool.
fn build_runtime(cli: &Cli) -> std::io::Result<(tokio::runtime::Runtime, Option<Arc<BusyPoll>>)> {
    if cli.workers > 1 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.workers.into())
            .enable_all()
            .build()?;
        return Ok((runtime, None));
    }
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    let max = Duration::from_micros(cli.busy_poll.into());
    let (runtime, poller) = busy_poll::build_runtime(&mut builder, max, take_moved)?;
    match poller {
        Ok(p) => {
            tracing::debug!("busy polling up to {max:?}");
            Ok((runtime, Some(p)))
        }
        Err(why) => {
            tracing::debug!("busy polling off: {why}");
            Ok((runtime, None))
        }
    }
}

/// Open the data directory; a stored configuration that does not validate
/// is a configuration error (exit 64), anything else a runtime failure.
fn open(dir: &std::path::Path) -> Result<ttyward_core::service::Service, serve::Failure> {
    use ttyward_core::service::ServiceError;
    use ttyward_core::store::StoreError;
    ttyward_core::service::Service::open(dir).map_err(|e| match e {
        ServiceError::Store(StoreError::Corrupt {
            what: "configuration",
            ..
        }) => serve::Failure::Config(e.to_string()),
        e => serve::Failure::Runtime(e.into()),
    })
}

/// Run a one-shot command on the data directory, then make sure the events
/// it recorded are written before the process exits.
async fn with_service<F, Fut>(dir: &std::path::Path, f: F) -> Result<(), serve::Failure>
where
    F: FnOnce(ttyward_core::service::Service) -> Fut,
    Fut: std::future::Future<Output = Result<(), serve::Failure>>,
{
    let service = open(dir)?;
    let result = f(service.clone()).await;
    if let Err(e) = service.events().flush().await {
        tracing::warn!("event log: {e}");
    }
    result
}
